//! Bulk revocation by an administrator: every grant of a user, of a client, or of a user to
//! a client, in one write.
//!
//! [`AdminRevocations`] answers `POST` with a form-urlencoded body, from a client that
//! authenticated by HTTP Basic and has the admin capability
//! ([`Client::with_admin`](crate::client_auth::Client::with_admin)):
//!
//! | parameters | revokes | store operation |
//! |---|---|---|
//! | `subject=USER` | every grant that user gave, to any client | [`TokenStore::revoke_subject`] (one cut-off) |
//! | `client_id=ID` | every grant and token of that client, its own `client_credentials` grants included | [`TokenStore::revoke_client`] (one cut-off) |
//! | both | that client's grants from that user | [`TokenStore::revoke_client_for_owner`] |
//!
//! The answer is 200 `{"revoked_grants": N}`, N the grants of that scope that were still
//! active. `client_id` in the body is always the scope, never credentials: the client
//! authenticates by HTTP Basic, or, with [`client_assertions`](AdminRevocations::client_assertions)
//! (feature `jwt`), by `private_key_jwt` (`client_assertion_type` and `client_assertion` in
//! the form, the client the assertion's `iss` and `sub`). A client without the capability gets 403 `access_denied`;
//! failed authentication 401 (limited as elsewhere); no parameter 400 `invalid_request`.
//! Each revocation emits its [event](crate::events) (initiator [`Initiator::Admin`]).
//!
//! ```
//! use tower_oauth_revoke::{admin::AdminRevocations, client_auth::{Client, MemoryClientRegistry}, store::MemoryStore};
//!
//! let registry = MemoryClientRegistry::new([Client::confidential("admin-client", "s3cret").with_admin()]);
//! let admin = AdminRevocations::new(MemoryStore::new(), registry).realm("demo");
//! let app: axum::Router = axum::Router::new().route_service("/admin/revocations", admin);
//! # let _ = app;
//! ```

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_service::Service;

use crate::{
    client_auth::{authenticate_basic, AuthFailureLimiter, ClientRegistry, RemoteAddr},
    error::{set_no_store, ErrorCode, OAuthError},
    escape::Escaped,
    events::Initiator,
    store::TokenStore,
    urlencoded::FormParams,
};

const MAX_BODY: usize = 16 * 1024;

/// The admin revocation service; see the [module docs](self).
#[derive(Clone)]
pub struct AdminRevocations<S, R> {
    store: S,
    registry: R,
    limiter: Option<AuthFailureLimiter>,
    realm: Arc<str>,
    #[cfg(feature = "jwt")]
    assertions: Option<crate::client_auth::ClientAssertions>,
}

impl<S, R> fmt::Debug for AdminRevocations<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminRevocations").finish_non_exhaustive()
    }
}

impl<S, R> AdminRevocations<S, R> {
    /// Revokes in `store` for the admin clients of `registry`.
    pub fn new(store: S, registry: R) -> Self {
        Self {
            store,
            registry,
            limiter: None,
            realm: crate::error::DEFAULT_REALM.into(),
            #[cfg(feature = "jwt")]
            assertions: None,
        }
    }

    /// Accepts `private_key_jwt` from admin clients registered with keys, checked by
    /// `assertions` (feature `jwt`), besides HTTP Basic.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    #[must_use]
    pub fn client_assertions(mut self, assertions: crate::client_auth::ClientAssertions) -> Self {
        self.assertions = Some(assertions);
        self
    }

    /// Limits failed authentications, as the other endpoints do.
    #[must_use]
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The realm of the `WWW-Authenticate` challenge.
    #[must_use]
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.into();
        self
    }
}

impl<S, R, B> Service<Request<B>> for AdminRevocations<S, R>
where
    S: TokenStore,
    R: ClientRegistry + Clone + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    answer_service!(Request<B>);
}

/// The form body, or why it cannot be read.
async fn read_form<B>(req: Request<B>) -> Result<FormParams, OAuthError>
where
    B: Body,
    B::Error: Into<crate::BoxError>,
{
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or broken"))?
        .to_bytes();
    FormParams::parse(&body)
        .map_err(|e| OAuthError::invalid_request(format!("malformed form body: {e}")))
}

impl<S, R> AdminRevocations<S, R>
where
    S: TokenStore,
    R: ClientRegistry,
{
    /// The admin client of a `private_key_jwt` assertion in the form: the client it names
    /// (`client_id` is the scope here, never the caller), checked by the configured
    /// assertions.
    #[cfg(feature = "jwt")]
    async fn by_assertion(
        &self,
        params: &FormParams,
        path: &str,
    ) -> Result<crate::client_auth::AuthenticatedClient, OAuthError> {
        use crate::client_auth::AuthError;
        let challenge = crate::error::challenge("Basic", &self.realm, "");
        let refuse =
            |why: String| OAuthError::invalid_client(why).with_www_authenticate(challenge.clone());
        let (Some(assertions), Some(crate::client_auth::JWT_BEARER), Some(assertion)) = (
            self.assertions.as_ref(),
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        ) else {
            return Err(refuse(
                "authenticate with HTTP Basic or a client assertion".into(),
            ));
        };
        let id = crate::client_auth::claimed_client(assertion)
            .ok_or_else(|| refuse("the client assertion names no client".into()))?;
        // The one assertion check every endpoint runs.
        let credentials = crate::client_auth::ClientCredentials::assertion(id, assertion);
        let context = crate::client_auth::AuthContext {
            assertions: Some(assertions),
            path,
            certificate: None,
        };
        match crate::client_auth::authenticate_in(&self.registry, &credentials, context).await {
            Ok(client) => Ok(client),
            Err(AuthError::Unavailable(_)) => Err(OAuthError::temporarily_unavailable(
                "the client registry or token store is unavailable",
                1,
            )),
            Err(AuthError::InvalidAssertion(why)) => Err(refuse(why)),
            Err(_) => Err(refuse("client authentication failed".into())),
        }
    }

    #[cfg(not(feature = "jwt"))]
    async fn by_assertion(
        &self,
        _params: &FormParams,
        _path: &str,
    ) -> Result<crate::client_auth::AuthenticatedClient, OAuthError> {
        Err(OAuthError::invalid_client("authenticate with HTTP Basic"))
    }

    async fn answer<B>(&self, req: Request<B>) -> Response<crate::body::Body>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        self.try_answer(req)
            .await
            .unwrap_or_else(|err| err.to_response())
    }

    async fn try_answer<B>(
        &self,
        req: Request<B>,
    ) -> Result<Response<crate::body::Body>, OAuthError>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        if req.method() != Method::POST {
            return Err(OAuthError::method_not_allowed("POST"));
        }
        let addr = RemoteAddr::from_extensions(req.extensions());
        #[cfg(feature = "jwt")]
        let by_assertion =
            self.assertions.is_some() && !req.headers().contains_key(header::AUTHORIZATION);
        #[cfg(not(feature = "jwt"))]
        let by_assertion = false;
        // Basic is read before the body; an assertion is in it.
        let basic = if by_assertion {
            None
        } else {
            Some(
                authenticate_basic(
                    &self.registry,
                    self.limiter.as_ref(),
                    req.headers(),
                    addr,
                    &self.realm,
                )
                .await?,
            )
        };
        let path = req.uri().path().to_owned();
        let params = read_form(req).await?;
        let client = match basic {
            Some(client) => client,
            None => self.by_assertion(&params, &path).await?,
        };
        if !client.client().is_admin() {
            tracing::warn!(
                client_id = %Escaped(client.id()),
                "a client without the admin capability asked for a bulk revocation"
            );
            return Err(OAuthError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::AccessDenied,
                "this client may not revoke in bulk",
            ));
        }
        let subject = params.get("subject").filter(|s| !s.is_empty());
        let client_id = params.get("client_id").filter(|s| !s.is_empty());
        let by = Initiator::Admin(client.id().into());
        let revoked = match (subject, client_id) {
            (Some(subject), Some(client_id)) => {
                self.store
                    .revoke_client_for_owner(subject, client_id, by)
                    .await
            }
            (Some(subject), None) => self.store.revoke_subject(subject, by).await,
            (None, Some(client_id)) => self.store.revoke_client(client_id, by).await,
            (None, None) => {
                return Err(OAuthError::invalid_request(
                    "give `subject`, `client_id`, or both",
                ))
            }
        };
        let revoked = revoked.map_err(|err| {
            tracing::error!(error = %err, "token store unavailable at the admin endpoint");
            OAuthError::temporarily_unavailable(
                "the token store is unavailable; try again later",
                1,
            )
        })?;
        tracing::info!(
            client_id = %Escaped(client.id()),
            subject = subject.map(|s| Escaped(s).to_string()),
            scope_client = client_id.map(|c| Escaped(c).to_string()),
            revoked_grants = revoked,
            "bulk revocation"
        );
        let mut response = Response::new(crate::body::Body::new(Bytes::from(format!(
            "{{\"revoked_grants\":{revoked}}}"
        ))));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        set_no_store(response.headers_mut());
        Ok(response)
    }
}
