//! CORS for browser apps that revoke tokens ([Fetch standard, CORS protocol]), built on
//! [`tower_http::cors`].
//!
//! [`CorsPolicy`] holds the configured origins (exact origins, parsed with
//! [`Origin::parse`](origin::Origin::parse): a bad one is an error when configuring, never a panic later), the
//! preflight max age, and whether `GET` (JSONP) is allowed. From it come two layers:
//!
//! - [`CorsPolicy::layer`] / [`CorsPolicy::layer_with_clients`], the outermost layer: it
//!   answers preflights itself and adds CORS headers to every response, errors included.
//!   An origin is allowed when it is configured, or when a registered client lists it
//!   ([`ClientRegistry::origin_registered`](crate::client_auth::ClientRegistry::origin_registered)); the allowed origin is echoed in
//!   `Access-Control-Allow-Origin`, never `*`, never `null`, never an origin that is not
//!   allowed, and credentials (cookies) are never allowed. Allowed methods are `POST`
//!   (and `GET` with [`CorsPolicy::allow_get`]), allowed request headers `Authorization`
//!   and `Content-Type`; `WWW-Authenticate`, `Retry-After` and
//!   [`X-Original-Status`](crate::jsonp::X_ORIGINAL_STATUS) are exposed to scripts;
//!   `Vary: Origin` is always set. A response to an origin that is not allowed carries no
//!   `Access-Control-*` header at all.
//! - [`CorsPolicy::origin_check`], placed after client authentication: a request whose
//!   `Origin` is allowed neither globally nor for the authenticated client is refused with
//!   400 `invalid_request` before the inner service runs. Requests without `Origin`
//!   (servers, `<script>` JSONP requests) pass.
//!
//! Browsers send `Origin` on same-origin `POST`s too: an app served from the endpoint's own
//! origin must list that origin as well.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth_revoke::client_auth::{Client, MemoryClientRegistry};
//! use tower_oauth_revoke::cors::CorsPolicy;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = MemoryClientRegistry::new([
//!     Client::public("spa").with_origins(["https://spa.example.com"]).unwrap(),
//! ]);
//! let policy = CorsPolicy::new()
//!     .origins(["https://app.example.com"])
//!     .expect("valid origins")
//!     .max_age(Duration::from_secs(600));
//! let svc = ServiceBuilder::new()
//!     .layer(policy.layer_with_clients(registry))
//!     .service(service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
//!     }));
//!
//! let preflight = Request::options("/oauth2/revoke")
//!     .header("origin", "https://spa.example.com")
//!     .header("access-control-request-method", "POST")
//!     .body(Full::default())
//!     .unwrap();
//! let response = svc.oneshot(preflight).await.unwrap();
//! assert_eq!(response.headers()["access-control-allow-origin"], "https://spa.example.com");
//! # }
//! ```
//!
//! [Fetch standard, CORS protocol]: https://fetch.spec.whatwg.org/#http-cors-protocol

mod check;
mod policy;

/// Web origins: [`crate::origin`], public under this path too.
pub use crate::origin;

pub(crate) use self::{
    check::{check_origin, known_origin},
    policy::{add_vary, is_cors_request},
};
pub use self::{
    check::{OriginCheck, OriginCheckLayer},
    policy::{CorsFuture, CorsPolicy, CorsPolicyLayer, CorsPolicyService, DEFAULT_MAX_AGE},
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        body::ResponseBody,
        client_auth::{
            AuthenticatedClient, Client, ClientAuthMethod, ClientRegistry, MemoryClientRegistry,
        },
        error::OAuthError,
    };
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
    use http_body_util::Full;
    use std::convert::Infallible;
    use std::time::Duration;
    use tower::{service_fn, ServiceExt};
    use tower_layer::Layer;
    use tower_service::Service;

    fn registry() -> MemoryClientRegistry {
        MemoryClientRegistry::new([
            Client::public("spa")
                .with_origins(["http://spa.test"])
                .unwrap(),
            Client::public("other"),
        ])
    }

    fn policy() -> CorsPolicy {
        CorsPolicy::new()
            .origins(["https://app.test"])
            .unwrap()
            .max_age(Duration::from_secs(123))
    }

    fn ok_service() -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<ResponseBody<Full<Bytes>>>,
        Error = Infallible,
    > + Clone {
        service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(OAuthError::temporarily_unavailable("down", 3).to_response())
        })
    }

    async fn preflight(layer: CorsPolicyLayer, origin: &str) -> HeaderMap {
        let req = Request::options("/revoke")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Full::default())
            .unwrap();
        let response = layer.layer(ok_service()).oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.headers().clone()
    }

    #[tokio::test]
    async fn request_without_origin_gets_vary_and_no_cors_headers() {
        let req = Request::post("/revoke").body(Full::default()).unwrap();
        let response = policy()
            .layer_with_clients(registry())
            .layer(ok_service())
            .oneshot(req)
            .await
            .unwrap();
        let h = response.headers();
        assert!(h
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("origin")));
        assert!(!h.keys().any(|k| k.as_str().starts_with("access-control-")));
    }

    #[test]
    fn invalid_configured_origin_is_an_error() {
        for bad in ["null", "*", "https://app.test/", "app.test"] {
            assert!(CorsPolicy::new().origins([bad]).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn preflight_from_configured_origin() {
        let h = preflight(policy().layer(), "https://app.test").await;
        assert_eq!(h["access-control-allow-origin"], "https://app.test");
        assert_eq!(h["access-control-allow-methods"], "POST");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert_eq!(h["access-control-max-age"], "123");
        assert!(h
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("origin")));
        assert!(h.get("access-control-allow-credentials").is_none());
    }

    #[tokio::test]
    async fn preflight_allows_get_only_with_jsonp() {
        let h = preflight(policy().allow_get(true).layer(), "https://app.test").await;
        assert_eq!(h["access-control-allow-methods"], "POST,GET");
    }

    #[tokio::test]
    async fn preflight_from_client_origin() {
        let h = preflight(policy().layer_with_clients(registry()), "http://spa.test").await;
        assert_eq!(h["access-control-allow-origin"], "http://spa.test");
        assert_eq!(h["access-control-max-age"], "123");
        // Without the registry the client's origin is unknown.
        let h = preflight(policy().layer(), "http://spa.test").await;
        assert!(h.get("access-control-allow-origin").is_none());
    }

    #[tokio::test]
    async fn preflight_from_other_origins_gets_no_allow_headers() {
        for origin in [
            "https://evil.test",
            "null",
            "https://app.test.evil.test",
            "*",
            "https://APP.test",
        ] {
            let h = preflight(policy().layer_with_clients(registry()), origin).await;
            let cors: Vec<_> = h
                .keys()
                .filter(|k| k.as_str().starts_with("access-control-"))
                .collect();
            assert!(cors.is_empty(), "{origin}: {cors:?}");
            assert!(h
                .get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().contains("origin")));
        }
    }

    /// A registry that claims every origin: the policy must still refuse what is not an
    /// origin.
    #[derive(Clone)]
    struct ClaimsEverything;

    impl ClientRegistry for ClaimsEverything {
        async fn find_client(
            &self,
            _client_id: &str,
        ) -> Result<Option<Client>, crate::client_auth::RegistryError> {
            Ok(None)
        }

        async fn origin_registered(
            &self,
            _origin: &HeaderValue,
        ) -> Result<bool, crate::client_auth::RegistryError> {
            Ok(true)
        }
    }

    #[tokio::test]
    async fn null_and_malformed_origins_are_never_reflected() {
        for origin in [
            "null",
            "*",
            "https://x.test/",
            "javascript:alert(1)",
            "https://X.test",
        ] {
            let h = preflight(policy().layer_with_clients(ClaimsEverything), origin).await;
            assert!(h.get("access-control-allow-origin").is_none(), "{origin}");
        }
        let h = preflight(
            policy().layer_with_clients(ClaimsEverything),
            "https://x.test",
        )
        .await;
        assert_eq!(h["access-control-allow-origin"], "https://x.test");
    }

    #[tokio::test]
    async fn error_responses_carry_cors_and_expose_headers() {
        let req = Request::post("/revoke")
            .header("origin", "http://spa.test")
            .body(Full::default())
            .unwrap();
        let svc = policy().layer_with_clients(registry()).layer(ok_service());
        let response = svc.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 503);
        let h = response.headers();
        assert_eq!(h["access-control-allow-origin"], "http://spa.test");
        let exposed = h["access-control-expose-headers"].to_str().unwrap();
        assert!(
            exposed.contains("www-authenticate") && exposed.contains("retry-after"),
            "{exposed}"
        );
        assert!(h.get("access-control-allow-credentials").is_none());
    }

    async fn check(origin: Option<&str>, client: Option<&str>) -> StatusCode {
        let mut req = Request::post("/revoke");
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let mut req = req.body(Full::<Bytes>::default()).unwrap();
        if let Some(id) = client {
            let client = registry().get(id).unwrap().clone();
            req.extensions_mut()
                .insert(AuthenticatedClient::new(client, ClientAuthMethod::None));
        }
        let svc = policy()
            .origin_check()
            .layer(service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
            }));
        svc.oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn origin_check_after_client_auth() {
        assert_eq!(check(None, Some("spa")).await, 200);
        assert_eq!(check(Some("https://app.test"), Some("other")).await, 200);
        assert_eq!(check(Some("http://spa.test"), Some("spa")).await, 200);
        // Another client's origin, an unknown origin, `null`: refused.
        assert_eq!(check(Some("http://spa.test"), Some("other")).await, 400);
        assert_eq!(check(Some("https://evil.test"), Some("spa")).await, 400);
        assert_eq!(check(Some("null"), Some("spa")).await, 400);
        assert_eq!(check(Some("http://spa.test"), None).await, 400);
    }
}
