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
//! | no credentials, unknown client, wrong secret, method not allowed for the client | 401 `invalid_client` + `WWW-Authenticate: Basic realm="..."` |
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

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod credentials;
mod limiter;

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

pub use self::{
    credentials::{decode_basic, encode_basic, ClientCredentials, CredentialsError},
    limiter::{AuthAttempt, AuthFailureLimiter, RemoteAddr},
};
pub use crate::future::ResponseFuture;
pub use crate::registry::{
    AuthenticatedClient, Client, ClientAuthMethod, ClientKind, ClientRegistry,
    MemoryClientRegistry, RegistryError, SecretDigest,
};
use crate::{
    body::ResponseBody,
    cors::CorsPolicy,
    error::{challenge, ErrorCode, OAuthError, DEFAULT_REALM},
    escape::Escaped,
    form::FormParams,
    origin::Origin,
};

/// Why a client failed to authenticate; what [`authenticate`] returns.
#[derive(Debug)]
pub enum AuthError {
    /// The credentials are missing, malformed or conflicting.
    Credentials(CredentialsError),
    /// The client is unknown, the secret wrong, or the method not allowed for the client.
    Rejected,
    /// The registry could not be asked.
    Unavailable(RegistryError),
    /// A public client presented a secret: it has none, so there was nothing to check.
    SecretForPublicClient,
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
        let _ = crate::registry::DECOY.verify(presented);
        return Err(AuthError::Rejected);
    };
    let method = credentials.method();
    let ok = match client.kind() {
        ClientKind::Public => {
            // A public client has no secret: it may only name itself, by `client_id` or by
            // Basic with an empty secret.
            let _ = crate::registry::DECOY.verify(presented);
            if !presented.is_empty() {
                return Err(AuthError::SecretForPublicClient);
            }
            client.auth_methods().contains(&ClientAuthMethod::None)
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
    Ok(AuthenticatedClient::new(client, method))
}

/// Authenticates a confidential client by HTTP Basic alone (exactly one `Authorization`
/// header), counting failures in `limiter`: for endpoints whose body is not the client's
/// (an admin API whose `client_id` parameter is what it acts on, a JSON poll). Errors are
/// ready to answer: 401 `invalid_client` with a `Basic` challenge in `realm`, 429 with
/// `Retry-After`, 503 when the registry fails.
///
/// ```
/// use http::HeaderMap;
/// use tower_oauth_revoke::client_auth::{authenticate_basic, encode_basic, Client, MemoryClientRegistry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = MemoryClientRegistry::new([Client::confidential("admin", "s3cret")]);
/// let mut headers = HeaderMap::new();
/// headers.insert(http::header::AUTHORIZATION, encode_basic("admin", "s3cret"));
/// let client = authenticate_basic(&registry, None, &headers, None, "oauth").await.unwrap();
/// assert_eq!(client.id(), "admin");
/// headers.insert(http::header::AUTHORIZATION, encode_basic("admin", "wrong"));
/// let refused = authenticate_basic(&registry, None, &headers, None, "oauth").await.unwrap_err();
/// assert_eq!(refused.status(), 401);
/// # }
/// ```
pub async fn authenticate_basic<R: ClientRegistry>(
    registry: &R,
    limiter: Option<&AuthFailureLimiter>,
    headers: &http::HeaderMap,
    addr: Option<RemoteAddr>,
    realm: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let challenge = challenge("Basic", realm, "");
    let unauthorized = |description: &'static str| {
        OAuthError::invalid_client(description).with_www_authenticate(challenge.clone())
    };
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (id, secret) = match (values.next().and_then(decode_basic), values.next()) {
        (Some(pair), None) => pair,
        _ => return Err(unauthorized("authenticate with HTTP Basic")),
    };
    let credentials = ClientCredentials::basic(&id, &secret);
    let attempt = match limiter {
        Some(limiter) => match limiter.begin(&id, addr) {
            Ok(attempt) => Some(attempt),
            Err(retry) => {
                return Err(OAuthError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::InvalidClient,
                    "too many failed authentications; retry later",
                )
                .with_retry_after(retry))
            }
        },
        None => None,
    };
    match authenticate(registry, &credentials).await {
        Ok(client) if client.kind() == ClientKind::Confidential => {
            if let Some(attempt) = attempt {
                attempt.succeeded();
            }
            Ok(client)
        }
        Err(AuthError::Unavailable(_)) => {
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            Err(OAuthError::temporarily_unavailable(
                "the client registry is unavailable",
                1,
            ))
        }
        _ => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            Err(unauthorized("client authentication failed"))
        }
    }
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
    /// Browser origins allowed for every client, besides each client's own.
    origins: Arc<[Origin]>,
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
                origins: Arc::from(Vec::new()),
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

    /// The browser origins allowed for every client: a [`CorsPolicy`]'s configured origins.
    ///
    /// A request whose `Origin` is neither one of these nor listed by any client of the
    /// registry is refused (400 `invalid_request`) before its credentials are looked at, so
    /// that a page on another site cannot spend a client's failure budget from its
    /// visitor's address. By default only the clients' own origins are allowed. Requests
    /// without `Origin` (servers) are not affected.
    pub fn cors(mut self, policy: &CorsPolicy) -> Self {
        self.config_mut().origins = policy.configured_origins().into();
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
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

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

impl Config {
    /// The `WWW-Authenticate: Basic realm=…` challenge of a 401.
    pub(crate) fn challenge(&self) -> &HeaderValue {
        &self.www_authenticate
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
/// client, or the error to answer with (a 401 always with `WWW-Authenticate: Basic`).
///
/// The failure budget counts only real guesses: a request from an origin nothing allows,
/// malformed credentials, and credentials with no secret to check (a confidential client
/// named alone, a public client with a secret) are refused without spending it.
pub(crate) async fn authenticate_request<R: ClientRegistry>(
    registry: &R,
    config: &Config,
    headers: &HeaderMap,
    params: Option<&FormParams>,
    addr: Option<RemoteAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    crate::cors::known_origin(registry, &config.origins, headers).await?;
    // RFC 9110 §15.5.2: every 401 carries a challenge, whichever way the client tried.
    let challenge = |err: OAuthError| -> OAuthError {
        if err.status() == StatusCode::UNAUTHORIZED {
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
                CredentialsError::MultipleMethods | CredentialsError::RepeatedHeader => {
                    OAuthError::invalid_request(err.to_string())
                }
                _ => OAuthError::invalid_client(err.to_string()),
            };
            tracing::debug!(outcome = "invalid_client", reason = %err, "client authentication failed");
            return Err(challenge(oauth));
        }
    };
    // A secret is a guess. A client named alone guesses nothing (there is nothing to
    // guess), so its budget is left alone.
    let guesses = credentials.secret().is_some_and(|s| !s.is_empty());
    // The attempt spends its unit of the budget now, before the registry is asked, so that
    // concurrent attempts cannot overspend it.
    let attempt = match config
        .limiter
        .as_ref()
        .filter(|_| guesses)
        .map(|l| l.begin(credentials.client_id(), addr))
    {
        None => None,
        Some(Ok(attempt)) => Some(attempt),
        Some(Err(retry)) => {
            tracing::warn!(
                client_id = %Escaped(credentials.client_id()),
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
    let failed = |reason: &'static str| {
        tracing::debug!(
            client_id = %Escaped(credentials.client_id()),
            outcome = "invalid_client",
            reason,
            latency_us = latency_us(),
            "client authentication failed"
        );
        Err(challenge(OAuthError::invalid_client(
            "client authentication failed",
        )))
    };
    match authenticate(registry, &credentials).await {
        Ok(client) => {
            if let Some(attempt) = attempt {
                attempt.succeeded();
            }
            tracing::debug!(
                client_id = %Escaped(client.id()),
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
        Err(AuthError::SecretForPublicClient) => {
            // Nothing was guessed: the unit goes back.
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            failed("a public client sent a secret")
        }
        Err(_) => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            failed(if guesses { "rejected" } else { "no secret" })
        }
    }
}
