//! CORS for browser apps that revoke tokens ([Fetch standard, CORS protocol]), built on
//! [`tower_http::cors`].
//!
//! [`CorsPolicy`] holds the configured origins (exact origins, parsed with
//! [`Origin::parse`]: a bad one is an error when configuring, never a panic later), the
//! preflight max age, and whether `GET` (JSONP) is allowed. From it come two layers:
//!
//! - [`CorsPolicy::layer`] / [`CorsPolicy::layer_with_clients`], the outermost layer: it
//!   answers preflights itself and adds CORS headers to every response, errors included.
//!   An origin is allowed when it is configured, or when a registered client lists it
//!   ([`ClientRegistry::origin_registered`]); the allowed origin is echoed in
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

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use http::{header, request::Parts, HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::trace::Escaped;
use crate::{
    body::ResponseBody,
    client_auth::{AuthenticatedClient, ClientRegistry},
    error::OAuthError,
    future::ResponseFuture,
    jsonp::X_ORIGINAL_STATUS,
    origin::{InvalidOrigin, Origin},
};

/// The default preflight max age: 10 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS configuration of an OAuth endpoint; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct CorsPolicy {
    origins: Arc<[Origin]>,
    max_age: Duration,
    allow_get: bool,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl CorsPolicy {
    /// No configured origin (only clients' origins, with
    /// [`layer_with_clients`](Self::layer_with_clients)), max age 10 minutes, `POST` only.
    pub fn new() -> Self {
        Self {
            origins: Arc::from(Vec::new()),
            max_age: DEFAULT_MAX_AGE,
            allow_get: false,
        }
    }

    /// Sets the origins allowed for every client: exact origins such as
    /// `https://app.example.com` (no path, no trailing `/`, no `*`, not `null`).
    ///
    /// Fails on the first origin that is not a valid origin (see [`Origin::parse`]).
    pub fn origins<I, T>(mut self, origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|o| Origin::parse(o.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.origins = Arc::from(origins);
        Ok(self)
    }

    /// Sets how long browsers may cache a preflight answer (`Access-Control-Max-Age`).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Also allows `GET` (for JSONP endpoints). Off by default.
    pub fn allow_get(mut self, allow: bool) -> Self {
        self.allow_get = allow;
        self
    }

    /// The configured origins.
    pub fn configured_origins(&self) -> &[Origin] {
        &self.origins
    }

    /// Whether `origin` is one of the configured origins.
    pub fn allows_globally(&self, origin: &HeaderValue) -> bool {
        self.origins.iter().any(|o| o.matches(origin))
    }

    fn base(&self) -> CorsLayer {
        let mut methods = vec![Method::POST];
        if self.allow_get {
            methods.push(Method::GET);
        }
        CorsLayer::new()
            .allow_methods(methods)
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
                X_ORIGINAL_STATUS,
            ])
            .max_age(self.max_age)
            .allow_credentials(false)
    }

    /// The CORS layer for the configured origins only.
    pub fn layer(&self) -> CorsPolicyLayer {
        let list = self.origins.iter().map(|o| o.as_header_value().clone());
        CorsPolicyLayer {
            inner: self.base().allow_origin(AllowOrigin::list(list)),
        }
    }

    /// The CORS layer for the configured origins and every origin a client of `registry`
    /// lists. The registry is asked only for well-formed origins that are not configured.
    pub fn layer_with_clients<R: ClientRegistry>(&self, registry: R) -> CorsPolicyLayer {
        let origins = self.origins.clone();
        let allow = AllowOrigin::async_predicate(move |origin: HeaderValue, _: &Parts| {
            async move {
                if origins.iter().any(|o| o.matches(&origin)) {
                    return true;
                }
                // `null`, `*` and anything else that is not an origin never reach the registry.
                let well_formed = origin.to_str().is_ok_and(|s| Origin::parse(s).is_ok());
                if !well_formed {
                    return false;
                }
                match registry.origin_registered(&origin).await {
                    Ok(registered) => registered,
                    Err(err) => {
                        tracing::warn!(error = %err, "client registry unavailable for a CORS origin check");
                        false
                    }
                }
            }
        });
        CorsPolicyLayer {
            inner: self.base().allow_origin(allow),
        }
    }

    /// Refuses (400 `invalid_request`) a request that repeats `Origin`, or whose `Origin` is
    /// neither configured here nor listed by a client of `registry`: the check
    /// [`ClientAuthLayer::cors`](crate::client_auth::ClientAuthLayer::cors) makes before
    /// looking at credentials, for endpoints that authenticate someone else (a resource
    /// owner's password, say) and must not let a page on another site spend that budget.
    /// A registry failure is 503.
    pub async fn refuse_unknown_origin<R: ClientRegistry>(
        &self,
        registry: &R,
        headers: &http::HeaderMap,
    ) -> Result<(), OAuthError> {
        crate::client_auth::known_origin(registry, &self.origins, headers).await
    }

    /// The layer that refuses, after client authentication, an origin allowed neither
    /// globally nor for the authenticated client.
    pub fn origin_check(&self) -> OriginCheckLayer {
        OriginCheckLayer {
            origins: self.origins.clone(),
        }
    }
}

/// The CORS [`Layer`] of a [`CorsPolicy`]: [`tower_http::cors::CorsLayer`] configured for
/// OAuth endpoints, plus the guarantee that a refused origin gets no `Access-Control-*`
/// header at all.
#[derive(Debug, Clone)]
#[must_use]
pub struct CorsPolicyLayer {
    inner: CorsLayer,
}

impl<S> Layer<S> for CorsPolicyLayer {
    type Service = CorsPolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsPolicyService {
            inner: self.inner.layer(inner),
        }
    }
}

/// The service of [`CorsPolicyLayer`].
#[derive(Debug, Clone)]
pub struct CorsPolicyService<S> {
    inner: Cors<S>,
}

impl<S> CorsPolicyService<S> {
    /// The layer for `policy`'s configured origins.
    pub fn layer(policy: &CorsPolicy) -> CorsPolicyLayer {
        policy.layer()
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner.into_inner()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsPolicyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !is_cors_request(&req) {
            // Not a CORS request (no `Origin`): there is nothing to allow or expose, so the
            // CORS machinery is skipped; only `Vary` is set, as `tower_http::cors` would.
            // `Cors::poll_ready` only polls the inner service, which is therefore ready.
            return CorsFuture {
                kind: CorsKind::Plain {
                    future: self.inner.get_mut().call(req),
                },
            };
        }
        CorsFuture {
            kind: CorsKind::Cors {
                future: self.inner.call(req),
            },
        }
    }
}

/// `Vary` as `tower_http::cors` sets it by default.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// Whether a request concerns CORS at all: a preflight, or a request with `Origin`.
pub(crate) fn is_cors_request<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS || req.headers().contains_key(header::ORIGIN)
}

/// Adds the `Vary` of a response to a request that is not a CORS request, as
/// `tower_http::cors` would.
pub(crate) fn add_vary(headers: &mut http::HeaderMap) {
    headers.append(header::VARY, VARY);
}

pin_project! {
    /// The response future of [`CorsPolicyService`].
    pub struct CorsFuture<F> {
        #[pin]
        kind: CorsKind<F>,
    }
}

pin_project! {
    #[project = CorsKindProj]
    enum CorsKind<F> {
        Cors { #[pin] future: tower_http::cors::ResponseFuture<F> },
        Plain { #[pin] future: F },
    }
}

impl<F> fmt::Debug for CorsFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            CorsKindProj::Plain { future } => {
                let mut response = ready!(future.poll(cx))?;
                add_vary(response.headers_mut());
                Poll::Ready(Ok(response))
            }
            CorsKindProj::Cors { future } => {
                let mut response = ready!(future.poll(cx))?;
                let headers = response.headers_mut();
                if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
                    for name in [
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        header::ACCESS_CONTROL_MAX_AGE,
                    ] {
                        headers.remove(name);
                    }
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// A [`Layer`] that refuses a request whose `Origin` is allowed neither by the
/// [`CorsPolicy`] nor for the [`AuthenticatedClient`]; place it after client
/// authentication. See the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct OriginCheckLayer {
    origins: Arc<[Origin]>,
}

impl<S> Layer<S> for OriginCheckLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginCheck {
            inner,
            origins: self.origins.clone(),
        }
    }
}

/// The service of [`OriginCheckLayer`].
#[derive(Debug, Clone)]
pub struct OriginCheck<S> {
    inner: S,
    origins: Arc<[Origin]>,
}

impl<S> OriginCheck<S> {
    /// The layer for `policy`.
    pub fn layer(policy: &CorsPolicy) -> OriginCheckLayer {
        policy.origin_check()
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginCheck<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let client = req.extensions().get::<AuthenticatedClient>();
        if let Err(err) = check_origin(&self.origins, req.headers(), client) {
            return ResponseFuture::ready(err.to_response());
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}

/// Refuses a request whose `Origin` is allowed neither in `origins` nor for `client`.
pub(crate) fn check_origin(
    origins: &[Origin],
    headers: &http::HeaderMap,
    client: Option<&AuthenticatedClient>,
) -> Result<(), OAuthError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin.as_bytes() != b"null"
        && (origins.iter().any(|o| o.matches(origin))
            || client.is_some_and(|c| c.client().allows_origin(origin)));
    if allowed {
        return Ok(());
    }
    tracing::info!(
        client_id = %Escaped(client.map_or("-", |c| c.id())),
        outcome = "invalid_request",
        "request from an origin not allowed for the client"
    );
    Err(OAuthError::invalid_request(
        "the request's origin is not allowed for this client",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_auth::{Client, ClientAuthMethod, MemoryClientRegistry};
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use http_body_util::Full;
    use std::convert::Infallible;
    use tower::{service_fn, ServiceExt};

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
