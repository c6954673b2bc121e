//! The pipeline every OAuth endpoint of the crate shares, generic over its last step.
//!
//! A request flows through it once, outside in, and nothing is parsed twice:
//!
//! ```text
//! request
//!   -> CORS            tower_http::cors: configured origins and each client's own
//!   -> form            reads the bounded urlencoded body once; rejects duplicates
//!   -> JSONP           takes `callback`, validates it, wraps the response (opt-in)
//!   -> client auth     Basic / body credentials / public client_id; the registry; the limiter
//!   -> origin check    a browser origin must be allowed for that client
//!   -> STEP            revoke (RevocationEndpoint) | the host's own (EndpointStep)
//! ```
//!
//! [`Endpoint`] runs the steps after CORS in one future per request, with no request
//! extension and no clone of a service per request; each step answers as its public layer
//! does, and [`EndpointBuilder::build_layered`] composes those layers from the same
//! configuration (`tests/equivalence.rs` checks on generated requests that the two answer
//! alike).
//!
//! [`RevocationEndpoint`](crate::RevocationEndpoint) is the pipeline with the
//! [`Revoker`](crate::revoke::Revoker) step; a host's token endpoint is the pipeline with
//! its own [`EndpointStep`].

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{
    body::BoxError,
    client_auth::ClientRegistry,
    cors::{is_cors_request, CorsPolicyService},
};

mod body;
mod builder;
mod pipeline;
mod step;

use self::pipeline::{Fused, Pipeline};
pub use self::{
    body::{EndpointBody, EndpointFuture},
    builder::{BuildError, EndpointBuilder, LayeredEndpoint},
    step::{EndpointStep, StepRequest, StepService},
};

/// An OAuth endpoint: CORS, form, JSONP, client authentication, the origin check and a last
/// step `T`, composed into one `Clone + Send + Sync` service with `Error = Infallible`,
/// ready for `axum::Router::route_service` or hyper-util's `TowerToHyperService`.
///
/// Build the revocation endpoint with [`RevocationEndpoint::builder`](crate::RevocationEndpoint),
/// any other with [`Endpoint::with_step`].
///
/// # Browsers
///
/// CORS is always on, for the origins given to
/// [`cors_origins`](EndpointBuilder::cors_origins) and those each client lists
/// ([`Client::with_origins`](crate::client_auth::Client::with_origins)); see
/// [`crate::cors`]. A request whose `Origin` nothing allows is refused with 400
/// `invalid_request` before its credentials are read; one whose `Origin` is not allowed
/// for the authenticated client, before the step runs. Requests without `Origin` (servers)
/// are not affected.
///
/// With [`jsonp(true)`](EndpointBuilder::jsonp) the endpoint also answers
/// `GET ?token=...&client_id=...&callback=...` ([RFC 7009 §2.3]) and wraps answers for a
/// `callback` given in the query or the form body; see [`crate::jsonp`]. A `GET` puts the
/// token in the URL, where access logs, proxies and browser history keep it: prefer `POST`
/// with CORS, and enable JSONP only for callers that cannot use it. `client_secret` is never
/// accepted in a URL (400). Without `callback`, `GET` stays 405.
///
/// [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3
pub struct Endpoint<R, T> {
    pipeline: Arc<Pipeline<R, T>>,
    cors: Arc<CorsPolicyService<Fused<R, T>>>,
}

impl<R, T> Clone for Endpoint<R, T> {
    fn clone(&self) -> Self {
        Self {
            pipeline: self.pipeline.clone(),
            cors: self.cors.clone(),
        }
    }
}

impl<R, T: EndpointStep> Endpoint<R, T> {
    /// The client authentication methods this endpoint accepts, as authorization server
    /// metadata lists them ([RFC 8414 §2]): `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt` when given client assertions, the two mutual-TLS methods when it
    /// reads client certificates, and `none` when its step accepts public clients.
    ///
    /// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
    pub fn auth_methods_supported(&self) -> Vec<&'static str> {
        let mut methods = vec!["client_secret_basic", "client_secret_post"];
        if self.pipeline.auth.config().accepts_assertions() {
            methods.push("private_key_jwt");
        }
        if self.pipeline.auth.config().accepts_certificates() {
            methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
        }
        if self.pipeline.step.accepts_public_clients() {
            methods.push("none");
        }
        methods
    }

    /// The last step.
    pub fn step(&self) -> &T {
        &self.pipeline.step
    }
}

opaque_debug!(Endpoint<R, T>);

impl<R, T, B> Service<Request<B>> for Endpoint<R, T>
where
    R: ClientRegistry,
    T: EndpointStep,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EndpointBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    // Every step is always ready.
    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_cors_request(&req) {
            // Preflights and requests with `Origin`: `tower_http::cors` over the pipeline.
            // `Cors` is ready whenever its inner service is, and the pipeline always is.
            EndpointFuture::new(Box::pin(CorsPolicyService::clone(&self.cors).call(req)))
        } else {
            // Not a CORS request: only `Vary`, as `tower_http::cors` would set it.
            EndpointFuture::new(Box::pin(self.pipeline.clone().handle(req, true)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        client_auth::{Client, MemoryClientRegistry},
        store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord},
    };
    use crate::{store::TokenStore, RevocationEndpoint};
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use http_body_util::{BodyExt, Full};
    use std::time::Duration;
    use std::time::SystemTime;
    use tower::ServiceExt;

    fn assert_endpoint<T: Clone + Send + Sync + 'static>(_: &T) {}

    async fn build_endpoint(
        jsonp: bool,
    ) -> (
        RevocationEndpoint<MemoryClientRegistry, MemoryStore>,
        MemoryStore,
    ) {
        let registry = MemoryClientRegistry::new([
            Client::public("spa")
                .with_origins(["http://spa.test"])
                .unwrap(),
            Client::confidential("server", "s3cret"),
            Client::public("other"),
        ]);
        let store = MemoryStore::new();
        for (token, client) in [
            ("t-spa", "spa"),
            ("t-other", "other"),
            ("t-server", "server"),
        ] {
            let expires = SystemTime::now() + Duration::from_secs(600);
            store
                .issue(
                    TokenHash::of(token),
                    TokenRecord::new(TokenKind::AccessToken, client, GrantId::random(), expires),
                )
                .await
                .unwrap();
        }
        let endpoint = RevocationEndpoint::builder(registry, store.clone())
            .cors_origins(["https://app.test"])
            .cors_max_age(Duration::from_secs(42))
            .jsonp(jsonp)
            .build()
            .unwrap();
        (endpoint, store)
    }

    async fn active(store: &MemoryStore, token: &str) -> bool {
        store
            .inspect(&TokenHash::of(token))
            .await
            .unwrap()
            .is_some()
    }

    async fn send(
        endpoint: &RevocationEndpoint<MemoryClientRegistry, MemoryStore>,
        req: Request<Full<Bytes>>,
    ) -> (StatusCode, HeaderMap, String) {
        let response = endpoint.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn post(origin: Option<&str>, body: &'static str) -> Request<Full<Bytes>> {
        let mut req =
            Request::post("/revoke").header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn endpoint_is_clone_send_sync() {
        let (endpoint, _) = build_endpoint(true).await;
        assert_endpoint(&endpoint);
        let body = EndpointBody::default();
        fn assert_body<B: Body + Send + 'static>(_: &B) {}
        assert_body(&body);
    }

    #[test]
    fn invalid_cors_origin_is_a_build_error() {
        let err = RevocationEndpoint::builder(MemoryClientRegistry::default(), MemoryStore::new())
            .cors_origins(["https://app.test", "https://x.test/path"])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("cors_origins"), "{err}");
    }

    #[tokio::test]
    async fn preflight_is_answered_for_global_and_client_origins() {
        let (endpoint, _) = build_endpoint(false).await;
        for origin in ["https://app.test", "http://spa.test"] {
            let req = Request::options("/revoke")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .body(Full::default())
                .unwrap();
            let (status, h, _) = send(&endpoint, req).await;
            assert_eq!(status, 200);
            assert_eq!(h["access-control-allow-origin"], origin);
            assert_eq!(h["access-control-allow-methods"], "POST");
            assert_eq!(h["access-control-max-age"], "42");
        }
        let (endpoint, _) = build_endpoint(true).await;
        let req = Request::options("/revoke")
            .header("origin", "https://app.test")
            .header("access-control-request-method", "GET")
            .body(Full::default())
            .unwrap();
        assert_eq!(
            send(&endpoint, req).await.1["access-control-allow-methods"],
            "POST,GET"
        );
    }

    #[tokio::test]
    async fn origin_not_allowed_for_the_client_is_400_before_revoking() {
        let (endpoint, store) = build_endpoint(false).await;
        // `http://spa.test` passes CORS (it is spa's origin) but is not other's.
        let (status, h, body) = send(
            &endpoint,
            post(Some("http://spa.test"), "token=t-other&client_id=other"),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("invalid_request"));
        assert_eq!(h["access-control-allow-origin"], "http://spa.test");
        assert!(active(&store, "t-other").await);
        let (status, _, _) = send(&endpoint, post(Some("null"), "token=t-spa&client_id=spa")).await;
        assert_eq!(status, 400);
        assert!(active(&store, "t-spa").await);
        // Its own origin and the global one revoke.
        let (status, h, _) = send(
            &endpoint,
            post(Some("http://spa.test"), "token=t-spa&client_id=spa"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(h["access-control-allow-origin"], "http://spa.test");
        assert!(!active(&store, "t-spa").await);
        let (status, _, _) = send(
            &endpoint,
            post(Some("https://app.test"), "token=t-other&client_id=other"),
        )
        .await;
        assert_eq!(status, 200);
        assert!(!active(&store, "t-other").await);
    }

    #[tokio::test]
    async fn cors_headers_on_401() {
        let (endpoint, _) = build_endpoint(false).await;
        let mut req = post(Some("https://app.test"), "token=t-server");
        req.headers_mut()
            .insert("authorization", "Basic c2VydmVyOndyb25n".parse().unwrap()); // server:wrong
        let (status, h, _) = send(&endpoint, req).await;
        assert_eq!(status, 401);
        assert_eq!(h["access-control-allow-origin"], "https://app.test");
        assert!(h.contains_key("www-authenticate"));
        let exposed = h["access-control-expose-headers"].to_str().unwrap();
        assert!(exposed.contains("www-authenticate"), "{exposed}");
    }

    #[tokio::test]
    async fn jsonp_get_revokes_and_wraps() {
        let (endpoint, store) = build_endpoint(true).await;
        let req = Request::get("/revoke?token=t-spa&client_id=spa&callback=package.myCallback")
            .body(Full::default())
            .unwrap();
        let (status, h, body) = send(&endpoint, req).await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/package.myCallback();");
        assert_eq!(h["content-type"], "application/javascript; charset=utf-8");
        assert_eq!(h["x-original-status"], "200");
        assert!(!active(&store, "t-spa").await);
        // An error is wrapped too, and its status kept in the header.
        let req = Request::get("/revoke?token=t-server&client_id=nobody&callback=cb")
            .body(Full::default())
            .unwrap();
        let (status, h, body) = send(&endpoint, req).await;
        assert_eq!(status, 200);
        assert_eq!(h["x-original-status"], "401");
        assert!(
            body.starts_with("/**/cb({\"error\":\"invalid_client\""),
            "{body}"
        );
        // A callback in a POST body, as in the WSO2 example.
        let (status, _, body) = send(
            &endpoint,
            post(
                None,
                "token=t-other&client_id=other&callback=package.myCallback",
            ),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/package.myCallback();");
        assert!(!active(&store, "t-other").await);
    }

    #[tokio::test]
    async fn jsonp_get_rules() {
        let (endpoint, store) = build_endpoint(true).await;
        let get = |uri: &str| Request::get(uri).body(Full::default()).unwrap();
        // Without callback: 405.
        assert_eq!(
            send(&endpoint, get("/revoke?token=t-spa&client_id=spa"))
                .await
                .0,
            405
        );
        // A bad callback: plain 400, nothing revoked.
        let (status, h, body) = send(
            &endpoint,
            get("/revoke?token=t-spa&client_id=spa&callback=alert(1)"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(h["content-type"], "application/json");
        assert!(!body.contains("alert"));
        assert!(active(&store, "t-spa").await);
        // A secret in the URL: 400.
        let (status, _, _) = send(
            &endpoint,
            get("/revoke?token=t-server&client_id=server&client_secret=s3cret&callback=cb"),
        )
        .await;
        assert_eq!(status, 400);
        assert!(active(&store, "t-server").await);
        // JSONP off: GET is 405 even with callback, and a body callback is ignored.
        let (endpoint, _) = build_endpoint(false).await;
        assert_eq!(
            send(
                &endpoint,
                get("/revoke?token=t-spa&client_id=spa&callback=cb")
            )
            .await
            .0,
            405
        );
        let (status, h, body) = send(
            &endpoint,
            post(None, "token=t-spa&client_id=spa&callback=cb"),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
        assert!(h.get("x-original-status").is_none());
    }
}
