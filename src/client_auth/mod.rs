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
//! use tower_oauth_revoke::body::Body;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = MemoryClientRegistry::new([Client::confidential("app", "secret")]);
//! let svc = ServiceBuilder::new()
//!     .layer(FormLayer::new())
//!     .layer(ClientAuthLayer::new(registry).realm("example"))
//!     .service(service_fn(|req: Request<Body>| async move {
//!         let client = req.extensions().get::<AuthenticatedClient>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Body::from(client.id().to_owned())))
//!     }));
//!
//! let request = Request::post("/token")
//!     .header("authorization", "Basic YXBwOnNlY3JldA==") // app:secret
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Body::from("grant_type=client_credentials"))
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

#[cfg(feature = "jwt")]
mod assertion;
mod authenticate;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod credentials;
mod layer;
mod limiter;
#[cfg(feature = "mtls")]
#[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
pub mod mtls;
mod remote_addr;

#[cfg(feature = "jwt")]
pub(crate) use self::assertion::claimed_client;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use self::assertion::{AssertionError, ClientAssertions};
pub(crate) use self::authenticate::{authenticate_in, AuthContext};
pub(crate) use self::layer::authenticate_request;

/// The client certificate a request presented, as authentication reads it: the mutual-TLS
/// certificate with the feature `mtls`, a type with no value without.
#[cfg(feature = "mtls")]
pub(crate) type PresentedCertificate = mtls::ClientCertificate;
/// The client certificate a request presented: none without the feature `mtls`.
#[cfg(not(feature = "mtls"))]
pub(crate) type PresentedCertificate = std::convert::Infallible;

/// The certificate in a request's extensions, if any.
pub(crate) fn presented_certificate(
    extensions: &http::Extensions,
) -> Option<&PresentedCertificate> {
    #[cfg(feature = "mtls")]
    return mtls::ClientCertificate::from_extensions(extensions);
    #[cfg(not(feature = "mtls"))]
    {
        let _ = extensions;
        None
    }
}
pub use self::{
    authenticate::{authenticate, authenticate_basic, AuthError},
    credentials::{decode_basic, encode_basic, ClientCredentials, CredentialsError, JWT_BEARER},
    layer::{ClientAuth, ClientAuthLayer},
    limiter::{AuthAttempt, AuthFailureLimiter},
    remote_addr::RemoteAddr,
};
pub use crate::future::ResponseFuture;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use crate::jose::ClientKeys;
pub use crate::registry::{
    AuthenticatedClient, CertificateAuth, Client, ClientAuthMethod, ClientKind, ClientRegistry,
    MemoryClientRegistry, RegistryError, SecretDigest,
};
