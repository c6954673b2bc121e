//! WSO2 Identity Server's `OAuthAdminService` for resource owners, over SOAP: the two
//! operations its user portal calls, for the clients (generated stubs, scripts) written
//! against it.
//!
//! | operation | what it does |
//! |---|---|
//! | `getAppsAuthorizedByUser` | one `return` (`OAuthConsumerAppDTO`: `applicationName`, `oauthConsumerKey`) per client the owner has a live grant with |
//! | `revokeAuthzForAppsByResoureOwner` (WSO2's spelling; `revokeAuthzForAppsByResourceOwner` too) | revokes every grant of the named applications (`revokeRequestDTO/apps`, by name) for the owner, as the REST owner API does ([`TokenStore::revoke_client_for_owner`]); `return/error` `false`. No names: `error` `true`, `errorCode` `invalid_request` |
//!
//! Document/literal, SOAP 1.1 (`text/xml`, `SOAPAction`) and SOAP 1.2
//! (`application/soap+xml; action=...`); namespaces as WSO2's: the service
//! [`SERVICE_NS`], the operations' wrappers [`WRAPPER_NS`], the DTOs' fields [`DTO_NS`].
//! `GET ...?wsdl` serves the description ([`WSDL`]), from which a generic client calls
//! both. `authzUser`, `consumerKey` and `consumerSecret` are read and ignored: the owner is
//! the one the host authenticated, in a [`ResourceOwner`] request extension, as for
//! [`OwnerAuthorizations`](crate::owner::OwnerAuthorizations); without one the answer is
//! 401 with a fault and `WWW-Authenticate: Basic`. An application name that matches none
//! of the owner's clients revokes nothing (as revoking twice does).
//!
//! Every refusal is a SOAP fault of the request's version (`Client`/`Sender` with a 4xx, a
//! store failure `Server`/`Receiver` with 503 and `Retry-After`), never a stack trace and
//! never naming a user. The body is read up to 64 KiB (413 beyond), under the host's body
//! deadline ([`deadline`](crate::deadline)); the parser ([`envelope::parse`]) refuses DTDs
//! and entities (no XXE, no entity expansion), processing instructions, nesting deeper than
//! 32 and more than 1,024 elements.
//!
//! ```
//! use tower_oauth_revoke::client_auth::MemoryClientRegistry;
//! use tower_oauth_revoke::owner::ResourceOwner;
//! use tower_oauth_revoke::soap::OAuthAdminService;
//! use tower_oauth_revoke::store::MemoryStore;
//! use tower::ServiceBuilder;
//! use tower_http::add_extension::AddExtensionLayer;
//!
//! let soap = OAuthAdminService::new(MemoryStore::new(), MemoryClientRegistry::default())
//!     .address("https://id.example/services/OAuthAdminService");
//! // The host's own login layer puts the ResourceOwner in (here a fixed one).
//! let app: axum::Router = axum::Router::new().route_service(
//!     "/services/OAuthAdminService",
//!     ServiceBuilder::new()
//!         .layer(AddExtensionLayer::new(ResourceOwner::new("alice")))
//!         .service(soap),
//! );
//! # let _ = app;
//! ```

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;

use crate::{
    body::{Body, BoxError},
    events::Initiator,
    form::{read_body, FormRejection},
    owner::ResourceOwner,
    registry::ClientRegistry,
    store::TokenStore,
};

pub mod envelope;
mod wire;

pub use envelope::{Operation, Refusal, RefusalKind, Spelling};
pub use wire::{apps_response, fault, revoke_response, ConsumerApp, FaultCode, WSDL};

/// The service's namespace (the WSDL's target namespace).
pub const SERVICE_NS: &str = "http://oauth.identity.carbon.wso2.org";
/// The namespace of the operations' wrapper elements.
pub const WRAPPER_NS: &str = "http://org.apache.axis2/xsd";
/// The namespace of the DTOs' fields.
pub const DTO_NS: &str = "http://dto.oauth.identity.carbon.wso2.org/xsd";
/// The largest request body read.
pub const MAX_BODY: usize = 64 * 1024;

/// A SOAP version, as the request's content type names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    /// SOAP 1.1: `text/xml`, the action in `SOAPAction`.
    Soap11,
    /// SOAP 1.2: `application/soap+xml`, the action in its `action` parameter.
    Soap12,
}

impl SoapVersion {
    /// The version a request's `Content-Type` names, if it names one.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("text/xml") {
            Some(SoapVersion::Soap11)
        } else if media.eq_ignore_ascii_case("application/soap+xml") {
            Some(SoapVersion::Soap12)
        } else {
            None
        }
    }

    /// The action the request names, unquoted: `SOAPAction` (1.1) or the content type's
    /// `action` parameter (1.2); `None` when it names none (or an empty one).
    pub fn action(self, headers: &HeaderMap) -> Option<String> {
        let raw = match self {
            SoapVersion::Soap11 => headers.get("soapaction")?.to_str().ok()?.to_owned(),
            SoapVersion::Soap12 => {
                let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
                value.split(';').skip(1).find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("action")
                        .then(|| v.trim().to_owned())
                })?
            }
        };
        let action = raw.trim().trim_matches('"').trim();
        (!action.is_empty()).then(|| action.to_owned())
    }
}

/// The fault of `status` for a request with these headers: its version's, SOAP 1.1 when
/// it names none; `Client`/`Sender` for a 4xx, `Server`/`Receiver` otherwise. For a host's
/// own refusals before the service (say, too many failed passwords: 429).
pub fn fault_for(headers: &HeaderMap, status: StatusCode, reason: &str) -> Response<Body> {
    let version = SoapVersion::of(headers).unwrap_or(SoapVersion::Soap11);
    let code = if status.is_client_error() {
        FaultCode::Client
    } else {
        FaultCode::Server
    };
    fault(version, status, code, reason)
}

/// The `OAuthAdminService` endpoint; see the [module docs](self).
#[derive(Clone)]
pub struct OAuthAdminService<S, R> {
    store: S,
    registry: R,
    address: Option<Arc<str>>,
}

debug_fields!(OAuthAdminService < S, R > { address });

impl<S, R> OAuthAdminService<S, R> {
    /// Revokes in `store`; names applications from `registry`.
    pub fn new(store: S, registry: R) -> Self {
        Self {
            store,
            registry,
            address: None,
        }
    }

    /// The service's URL as the WSDL gives it (its ports add WSO2's suffixes,
    /// `.OAuthAdminServiceHttpsSoap11Endpoint/` and `...Soap12Endpoint/`). By default
    /// `https://` and the request's `Host`, then `/services/OAuthAdminService`.
    #[must_use]
    pub fn address(mut self, url: &str) -> Self {
        self.address = Some(Arc::from(url.trim_end_matches('/')));
        self
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

fn wants_wsdl(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("wsdl")))
}

fn unauthorized(version: SoapVersion) -> Response<Body> {
    let mut response = fault(
        version,
        StatusCode::UNAUTHORIZED,
        FaultCode::Client,
        "authentication failed",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"users\""),
    );
    response
}

fn unavailable(version: SoapVersion, err: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %err, "token store unavailable");
    let mut response = fault(
        version,
        StatusCode::SERVICE_UNAVAILABLE,
        FaultCode::Server,
        "the service is unavailable; try again later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

impl<S, R, B> tower_service::Service<Request<B>> for OAuthAdminService<S, R>
where
    S: TokenStore,
    R: ClientRegistry,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(req).await) })
    }
}

impl<S: TokenStore, R: ClientRegistry> OAuthAdminService<S, R> {
    async fn answer<B>(self, req: Request<B>) -> Response<Body>
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if req.method() == Method::GET && wants_wsdl(req.uri().query()) {
            let address = match &self.address {
                Some(address) => address.to_string(),
                None => {
                    let host = req
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
                        .unwrap_or("localhost");
                    format!("https://{host}/services/OAuthAdminService")
                }
            };
            return wire::wsdl_response(&address);
        }
        let version = SoapVersion::of(req.headers());
        if req.method() != Method::POST {
            let mut response = fault(
                version.unwrap_or(SoapVersion::Soap11),
                StatusCode::METHOD_NOT_ALLOWED,
                FaultCode::Client,
                "a SOAP request is a POST (or GET ?wsdl for the description)",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return response;
        }
        let Some(version) = version else {
            return fault(
                SoapVersion::Soap11,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                FaultCode::Client,
                "the content type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)",
            );
        };
        let Some(owner) = req.extensions().get::<ResourceOwner>().cloned() else {
            return unauthorized(version);
        };
        let action = version.action(req.headers());
        let bytes = match read_body(req.into_body(), MAX_BODY).await {
            Ok(bytes) => bytes,
            Err(rejection) => {
                let (status, reason) = match rejection {
                    FormRejection::TooLarge => (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the request is larger than 64 KiB",
                    ),
                    FormRejection::TimedOut => (
                        StatusCode::REQUEST_TIMEOUT,
                        "the request was not received in time",
                    ),
                    _ => (StatusCode::BAD_REQUEST, "the request could not be read"),
                };
                return fault(version, status, FaultCode::Client, reason);
            }
        };
        let operation = match envelope::parse(&bytes, version) {
            Ok(operation) => operation,
            Err(refusal) => {
                return fault(
                    version,
                    StatusCode::BAD_REQUEST,
                    refusal.kind.into(),
                    &refusal.reason,
                )
            }
        };
        if let Some(action) = action {
            let named = action.strip_prefix("urn:").unwrap_or(&action);
            if named != operation.name() {
                return fault(
                    version,
                    StatusCode::BAD_REQUEST,
                    FaultCode::Client,
                    "the action does not name the body's operation",
                );
            }
        }
        self.run(version, owner, operation).await
    }

    /// The applications `owner` has live grants with.
    async fn apps(&self, owner: &ResourceOwner) -> Result<Vec<ConsumerApp>, String> {
        let clients = self
            .store
            .clients_of_owner(owner.id())
            .await
            .map_err(|e| e.to_string())?;
        let mut apps = Vec::with_capacity(clients.len());
        for held in clients {
            let name = self
                .registry
                .find_client(&held.client_id)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|c| c.name().map(str::to_owned));
            apps.push(ConsumerApp {
                application_name: name.unwrap_or_else(|| held.client_id.to_string()),
                oauth_consumer_key: held.client_id.to_string(),
            });
        }
        Ok(apps)
    }

    async fn run(
        &self,
        version: SoapVersion,
        owner: ResourceOwner,
        operation: Operation,
    ) -> Response<Body> {
        let apps = match self.apps(&owner).await {
            Ok(apps) => apps,
            Err(err) => return unavailable(version, &err),
        };
        let (names, spelling) = match operation {
            Operation::AppsAuthorizedByUser => return apps_response(version, &apps),
            Operation::Revoke { apps, spelling } => (apps, spelling),
        };
        let name = spelling.operation();
        if names.is_empty() {
            return revoke_response(
                version,
                name,
                Some((
                    "invalid_request",
                    "no application named in revokeRequestDTO/apps",
                )),
            );
        }
        // Each named application, as the owner's list names it: all found first, then
        // revoked; a name that is not on the list has nothing to revoke.
        let clients: Vec<&str> = apps
            .iter()
            .filter(|app| names.contains(&app.application_name))
            .map(|app| app.oauth_consumer_key.as_str())
            .collect();
        let mut grants = 0;
        for client_id in clients {
            let by = Initiator::Owner(owner.id().into());
            match self
                .store
                .revoke_client_for_owner(owner.id(), client_id, by)
                .await
            {
                Ok(n) => grants += n,
                Err(err) => return unavailable(version, &err),
            }
        }
        tracing::info!(
            grants,
            outcome = "owner_revoked",
            "resource owner revoked applications over SOAP"
        );
        revoke_response(version, name, None)
    }
}

/// Parses `body` as a request envelope of each SOAP version; for fuzzing: it must never
/// panic, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_envelope(body: &[u8]) {
    for version in [SoapVersion::Soap11, SoapVersion::Soap12] {
        let _ = envelope::parse(body, version);
    }
}
