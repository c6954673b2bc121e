//! Client authentication ([RFC 6749 §2.3]) as a layer.
//!
//! [`ClientAuthLayer`] reads the client's credentials from the `Authorization: Basic` header
//! (id and secret each form-urlencoded before base64, [RFC 6749 §2.3.1]), from
//! `client_id` + `client_secret` in the form body, or, for a public client, from `client_id`
//! alone. It asks the [`ClientRegistry`], verifies the secret in constant time, and passes
//! the [`AuthenticatedClient`] on in the request's extensions. The form parameters come from
//! [`FormLayer`](crate::form::FormLayer) placed before it; without it only Basic works.
//!
//! | request | answer |
//! |---|---|
//! | no credentials, unknown client, wrong secret, method not allowed for the client | 401 `invalid_client` |
//! | the same, with an `Authorization` header | 401 `invalid_client` + `WWW-Authenticate: Basic realm="..."` |
//! | Basic plus body credentials, or a body `client_id` other than the Basic one | 400 `invalid_request` |
//! | too many failures from this client id and address ([`AuthFailureLimiter`]) | 429 + `Retry-After` |
//! | the registry fails | 503 `temporarily_unavailable` + `Retry-After` |
//!
//! An unknown client costs the same work as a wrong secret.
//!
//! ```
//! use tower_oauth_revoke::client_auth::{AuthenticatedClient, Client, ClientAuthLayer, MemoryClientRegistry};
//! use tower_oauth_revoke::form::FormLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = MemoryClientRegistry::new([Client::confidential("app", "secret")]);
//! let svc = ServiceBuilder::new()
//!     .layer(FormLayer::new())
//!     .layer(ClientAuthLayer::new(registry).realm("example"))
//!     .service(service_fn(|req: Request<Full<Bytes>>| async move {
//!         let client = req.extensions().get::<AuthenticatedClient>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(client.id().to_owned()))))
//!     }));
//!
//! let request = Request::post("/token")
//!     .header("authorization", "Basic YXBwOnNlY3JldA==") // app:secret
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Full::new(Bytes::from("grant_type=client_credentials")))
//!     .unwrap();
//! assert_eq!(svc.oneshot(request).await.unwrap().status(), 200);
//! # }
//! ```
//!
//! # Your own token endpoint in axum
//!
//! The same two layers, failure limiter included, in front of an axum handler that reads
//! what they found with `Extension`. Wrap the handler with `ServiceBuilder` and mount it
//! with `route_service`: chaining `.layer(..)` on a `MethodRouter` cannot infer the
//! handler's error type (`E0283`). With the feature `axum`, a handler may return
//! `Result<_, OAuthError>`. `examples/axum.rs` is the whole app.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use axum::{handler::HandlerWithoutStateExt, Extension, Json, Router};
//! use tower::ServiceBuilder;
//! use tower_oauth_revoke::{
//!     client_auth::{AuthFailureLimiter, AuthenticatedClient, Client, ClientAuthLayer, MemoryClientRegistry},
//!     error::OAuthError,
//!     form::{FormLayer, FormParams},
//!     store::{GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
//! };
//!
//! let registry = MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]);
//! let limiter = AuthFailureLimiter::new(20, Duration::from_secs(60));
//! let store = MemoryStore::new();
//!
//! let handler = {
//!     let store = store.clone();
//!     move |Extension(client): Extension<AuthenticatedClient>,
//!           Extension(params): Extension<FormParams>| async move {
//!         if params.get("grant_type") != Some("client_credentials") {
//!             return Err(OAuthError::invalid_request("grant_type must be client_credentials"));
//!         }
//!         let expires_at = SystemTime::now() + Duration::from_secs(3600);
//!         let record = TokenRecord::new(TokenKind::AccessToken, client.id(), GrantId::random(), expires_at);
//!         let token = store
//!             .mint(record)
//!             .await
//!             .map_err(|_| OAuthError::temporarily_unavailable("the store is unavailable", 1))?;
//!         // A real token response also sets `Cache-Control: no-store` (RFC 6749 §5.1).
//!         Ok(Json(serde_json::json!({ "access_token": token, "token_type": "Bearer" })))
//!     }
//! };
//! let token_endpoint = ServiceBuilder::new()
//!     .layer(FormLayer::new())
//!     .layer(ClientAuthLayer::new(registry).limit_failures(limiter))
//!     .service(handler.into_service());
//! let app: Router = Router::new().route_service("/oauth2/token", token_endpoint);
//! # let _ = app;
//! ```
//!
//! [RFC 6749 §2.3]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3
//! [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1

pub mod conformance;
mod credentials;
mod limiter;
mod registry;

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

pub use self::{
    credentials::{
        decode_basic, encode_basic, ClientAuthMethod, ClientCredentials, CredentialsError,
    },
    limiter::{AuthAttempt, AuthFailureLimiter, RemoteAddr},
    registry::{
        Client, ClientKind, ClientRegistry, MemoryClientRegistry, RegistryError, SecretDigest,
    },
};
pub use crate::future::ResponseFuture;
use crate::{
    body::ResponseBody,
    error::{challenge, OAuthError, DEFAULT_REALM},
    form::FormParams,
};

/// A presented client id as it goes into logs: an unknown id is attacker text, so it is
/// cut to 64 characters and escaped (no line breaks or control characters reach a log).
struct LoggedId<'a>(&'a str);

impl std::fmt::Display for LoggedId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(64) {
            write!(f, "{}", c.escape_debug())?;
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// The client that authenticated this request, in the request's extensions (and, for
/// request logs, in the response's; from [`RevocationEndpoint`](crate::RevocationEndpoint),
/// with [`annotate_responses`](crate::RevocationEndpointBuilder::annotate_responses)).
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Client,
    method: ClientAuthMethod,
}

impl AuthenticatedClient {
    /// A client that authenticated with `method` (for tests and custom layers).
    pub fn new(client: Client, method: ClientAuthMethod) -> Self {
        Self { client, method }
    }

    /// The client's id.
    pub fn id(&self) -> &str {
        self.client.id()
    }

    /// The registered client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Public or confidential.
    pub fn kind(&self) -> ClientKind {
        self.client.kind()
    }

    /// How it authenticated.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }
}

/// Why a client failed to authenticate; what [`authenticate`] returns.
#[derive(Debug)]
pub enum AuthError {
    /// The credentials are missing, malformed or conflicting.
    Credentials(CredentialsError),
    /// The client is unknown, the secret wrong, or the method not allowed for the client.
    Rejected,
    /// The registry could not be asked.
    Unavailable(RegistryError),
}

/// Authenticates presented credentials against a registry: the pure step of the layer.
///
/// The secret check is constant-time, and an unknown client is checked against a decoy
/// digest so that it costs the same as a wrong secret.
pub async fn authenticate<R: ClientRegistry>(
    registry: &R,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, AuthError> {
    let found = registry
        .find_client(credentials.client_id())
        .await
        .map_err(AuthError::Unavailable)?;
    let presented = credentials.secret().unwrap_or("");
    let Some(client) = found else {
        let _ = registry::DECOY.verify(presented);
        return Err(AuthError::Rejected);
    };
    let method = credentials.method();
    let ok = match client.kind() {
        ClientKind::Public => {
            // A public client has no secret: it may only name itself, by `client_id` or by
            // Basic with an empty secret.
            let _ = registry::DECOY.verify(presented);
            presented.is_empty() && client.auth_methods().contains(&ClientAuthMethod::None)
        }
        ClientKind::Confidential => {
            let verified = client.verify_secret(presented);
            verified && method != ClientAuthMethod::None && client.auth_methods().contains(&method)
        }
    };
    if !ok {
        return Err(AuthError::Rejected);
    }
    let method = match client.kind() {
        ClientKind::Public => ClientAuthMethod::None,
        ClientKind::Confidential => method,
    };
    Ok(AuthenticatedClient { client, method })
}

/// A [`Layer`] that authenticates the OAuth client; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientAuthLayer<R> {
    registry: R,
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    www_authenticate: HeaderValue,
    limiter: Option<AuthFailureLimiter>,
}

impl<R> ClientAuthLayer<R> {
    /// Authenticates against `registry`, realm [`DEFAULT_REALM`] (`oauth`), no failure
    /// limit.
    pub fn new(registry: R) -> Self {
        Self {
            registry,
            config: Arc::new(Config {
                www_authenticate: challenge("Basic", DEFAULT_REALM, ""),
                limiter: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the realm of `WWW-Authenticate: Basic realm="..."`. Quotes, backslashes and
    /// control characters are dropped from it.
    pub fn realm(mut self, realm: &str) -> Self {
        self.config_mut().www_authenticate = challenge("Basic", realm, "");
        self
    }

    /// Limits failed authentications per client id and remote address.
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.config_mut().limiter = Some(limiter);
        self
    }
}

impl<S, R: Clone> Layer<S> for ClientAuthLayer<R> {
    type Service = ClientAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAuth {
            inner,
            registry: self.registry.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service of [`ClientAuthLayer`].
#[derive(Debug, Clone)]
pub struct ClientAuth<S, R> {
    inner: S,
    registry: R,
    config: Arc<Config>,
}

impl<S, R> ClientAuth<S, R> {
    /// Wraps `inner`, authenticating against `registry`.
    pub fn new(inner: S, registry: R) -> Self
    where
        R: Clone,
    {
        ClientAuthLayer::new(registry).layer(inner)
    }

    /// The layer for `registry`.
    pub fn layer(registry: R) -> ClientAuthLayer<R> {
        ClientAuthLayer::new(registry)
    }

    inner_service_accessors!(S);
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for ClientAuth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: ClientRegistry,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let registry = self.registry.clone();
        let config = self.config.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::steps(async move {
            let result = authenticate_request(
                &registry,
                &config,
                req.headers(),
                req.extensions().get::<FormParams>(),
                RemoteAddr::from_extensions(req.extensions()),
            )
            .await;
            match result {
                Ok(client) => {
                    req.extensions_mut().insert(client.clone());
                    let mut response = inner.call(req).await?;
                    // For the host's request log: who was served, never how.
                    response.extensions_mut().insert(client);
                    Ok(response.map(ResponseBody::new))
                }
                Err(err) => Ok(err.to_response()),
            }
        })
    }
}

impl<R> ClientAuthLayer<R> {
    /// The registry.
    pub(crate) fn registry(&self) -> &R {
        &self.registry
    }

    /// The configuration shared by the layer's services.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }
}

/// The whole client authentication of a request, failure limit and logs included: the
/// client, or the error to answer with (with `WWW-Authenticate` when the client tried the
/// `Authorization` header).
pub(crate) async fn authenticate_request<R: ClientRegistry>(
    registry: &R,
    config: &Config,
    headers: &HeaderMap,
    params: Option<&FormParams>,
    addr: Option<RemoteAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    let tried_header = headers.contains_key(header::AUTHORIZATION);
    let challenge = |err: OAuthError| -> OAuthError {
        if tried_header && err.status() == StatusCode::UNAUTHORIZED {
            err.with_www_authenticate(config.www_authenticate.clone())
        } else {
            err
        }
    };
    let credentials = match ClientCredentials::from_request(headers, params) {
        Ok(c) => c,
        Err(err) => {
            // Malformed or missing credentials guess no secret: nothing to count.
            let oauth = match err {
                CredentialsError::MultipleMethods => OAuthError::invalid_request(err.to_string()),
                _ => OAuthError::invalid_client(err.to_string()),
            };
            tracing::debug!(outcome = "invalid_client", reason = %err, "client authentication failed");
            return Err(challenge(oauth));
        }
    };
    // The attempt spends its unit of the budget now, before the registry is asked, so that
    // concurrent attempts cannot overspend it.
    let attempt = match config
        .limiter
        .as_ref()
        .map(|l| l.begin(credentials.client_id(), addr))
    {
        None => None,
        Some(Ok(attempt)) => Some(attempt),
        Some(Err(retry)) => {
            tracing::warn!(
                client_id = %LoggedId(credentials.client_id()),
                outcome = "rate_limited",
                "too many failed client authentications"
            );
            return Err(OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                crate::error::ErrorCode::TemporarilyUnavailable,
                "too many failed client authentications; try again later",
            )
            .with_retry_after(retry));
        }
    };
    // Timed only for the debug events below: a clock read is not free.
    let start = tracing::enabled!(tracing::Level::DEBUG).then(std::time::Instant::now);
    let latency_us = || start.map(|s| s.elapsed().as_micros() as u64);
    match authenticate(registry, &credentials).await {
        Ok(client) => {
            if let Some(attempt) = attempt {
                attempt.succeeded();
            }
            tracing::debug!(
                client_id = %client.id(),
                method = client.method().as_str(),
                latency_us = latency_us(),
                "client authenticated"
            );
            Ok(client)
        }
        Err(AuthError::Unavailable(err)) => {
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            tracing::error!(error = %err, "client registry unavailable");
            Err(OAuthError::temporarily_unavailable(
                "the client registry is unavailable; try again later",
                1,
            ))
        }
        Err(_) => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            tracing::debug!(
                client_id = %LoggedId(credentials.client_id()),
                outcome = "invalid_client",
                latency_us = latency_us(),
                "client authentication failed"
            );
            Err(challenge(OAuthError::invalid_client(
                "client authentication failed",
            )))
        }
    }
}
