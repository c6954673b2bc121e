//! The composed revocation endpoint and its builder.
//!
//! The endpoint runs, in order: CORS ([`crate::cors`]), form ([`crate::form`]), JSONP
//! ([`crate::jsonp`]), client authentication ([`crate::client_auth`]), the origin check
//! ([`crate::cors`]) and revocation ([`crate::revoke`]); each step answers as its layer
//! does. The steps after CORS run in one future, with no request extension and no clone of
//! a service per request. Composing the layers gives the same answers
//! (`tests/equivalence.rs` checks it on generated requests), one boxed future and one clone
//! per layer dearer.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{request::Parts, HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    body::BoxError,
    client_auth::{
        authenticate_request, AuthFailureLimiter, ClientAuthLayer, ClientRegistry, RemoteAddr,
    },
    cors::{
        add_vary, check_origin, is_cors_request, CorsPolicy, CorsPolicyService, DEFAULT_MAX_AGE,
    },
    form::{read_form, FormLayer, FormParams, FormPlan, DEFAULT_LIMIT},
    jsonp::{find_callback, wrap, JsonpBody},
    origin::Origin,
    revoke::{execute, read_request, RevocationPolicy},
    store::TokenStore,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The RFC 7009 revocation endpoint: CORS, form, JSONP, client authentication, the origin
/// check and revocation composed into one `Clone + Send + Sync` service with
/// `Error = Infallible`, ready for `axum::Router::route_service` or hyper-util's
/// `TowerToHyperService`.
///
/// Build it with [`RevocationEndpoint::builder`].
///
/// # Browsers
///
/// CORS is always on, for the origins given to
/// [`cors_origins`](RevocationEndpointBuilder::cors_origins) and those each client lists
/// ([`Client::with_origins`](crate::client_auth::Client::with_origins)); see
/// [`crate::cors`]. A request that carries an `Origin` allowed neither globally nor for
/// the authenticated client is refused with 400 `invalid_request` before anything is
/// revoked. Requests without `Origin` (servers) are not affected.
///
/// With [`jsonp(true)`](RevocationEndpointBuilder::jsonp) the endpoint also answers
/// `GET ?token=...&client_id=...&callback=...` ([RFC 7009 §2.3]) and wraps answers for a
/// `callback` given in the query or the form body; see [`crate::jsonp`]. A `GET` puts the
/// token in the URL, where access logs, proxies and browser history keep it: prefer `POST`
/// with CORS, and enable JSONP only for callers that cannot use it. `client_secret` is never
/// accepted in a URL (400). Without `callback`, `GET` stays 405.
///
/// [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3
pub struct RevocationEndpoint<R, S> {
    steps: Steps<R, S>,
    cors: Arc<CorsPolicyService<Steps<R, S>>>,
}

impl<R, S> Clone for RevocationEndpoint<R, S> {
    fn clone(&self) -> Self {
        Self {
            steps: self.steps.clone(),
            cors: self.cors.clone(),
        }
    }
}

impl<R, S> fmt::Debug for RevocationEndpoint<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpoint").finish_non_exhaustive()
    }
}

impl RevocationEndpoint<(), ()> {
    /// A builder: set [`clients`](RevocationEndpointBuilder::clients) and
    /// [`store`](RevocationEndpointBuilder::store), then [`build`](RevocationEndpointBuilder::build).
    pub fn builder() -> RevocationEndpointBuilder<(), ()> {
        RevocationEndpointBuilder {
            clients: (),
            store: (),
            body_limit: DEFAULT_LIMIT,
            realm: crate::error::DEFAULT_REALM.to_owned(),
            policy: RevocationPolicy::default(),
            limiter: None,
            cors_origins: Vec::new(),
            cors_max_age: DEFAULT_MAX_AGE,
            jsonp: false,
            annotate: false,
        }
    }
}

/// Builds a [`RevocationEndpoint`].
#[must_use]
pub struct RevocationEndpointBuilder<R, S> {
    clients: R,
    store: S,
    body_limit: usize,
    realm: String,
    policy: RevocationPolicy,
    limiter: Option<AuthFailureLimiter>,
    cors_origins: Vec<String>,
    cors_max_age: Duration,
    jsonp: bool,
    annotate: bool,
}

impl<R, S> fmt::Debug for RevocationEndpointBuilder<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpointBuilder")
            .field("body_limit", &self.body_limit)
            .field("realm", &self.realm)
            .field("policy", &self.policy)
            .field("cors_origins", &self.cors_origins)
            .field("cors_max_age", &self.cors_max_age)
            .field("jsonp", &self.jsonp)
            .field("annotate", &self.annotate)
            .finish_non_exhaustive()
    }
}

/// A configuration the builder cannot build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    message: String,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

impl<R, S> RevocationEndpointBuilder<R, S> {
    /// The client registry that authenticates clients.
    pub fn clients<R2: ClientRegistry>(self, clients: R2) -> RevocationEndpointBuilder<R2, S> {
        RevocationEndpointBuilder {
            clients,
            store: self.store,
            body_limit: self.body_limit,
            realm: self.realm,
            policy: self.policy,
            limiter: self.limiter,
            cors_origins: self.cors_origins,
            cors_max_age: self.cors_max_age,
            jsonp: self.jsonp,
            annotate: self.annotate,
        }
    }

    /// The token store that revokes.
    pub fn store<S2: TokenStore>(self, store: S2) -> RevocationEndpointBuilder<R, S2> {
        RevocationEndpointBuilder {
            clients: self.clients,
            store,
            body_limit: self.body_limit,
            realm: self.realm,
            policy: self.policy,
            limiter: self.limiter,
            cors_origins: self.cors_origins,
            cors_max_age: self.cors_max_age,
            jsonp: self.jsonp,
            annotate: self.annotate,
        }
    }

    /// The body limit in bytes (default 8 KiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The realm of `WWW-Authenticate: Basic realm="..."` (default
    /// [`DEFAULT_REALM`](crate::error::DEFAULT_REALM), `oauth`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The revocation policy.
    pub fn policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Limits failed client authentications per client id and remote address.
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Browser origins allowed for every client (CORS), such as `https://app.example.com`:
    /// exact origins, no path, no `*`, not `null`. Clients' own origins are allowed too.
    /// An invalid origin makes [`build`](Self::build) fail.
    pub fn cors_origins<I, T>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.cors_origins = origins.into_iter().map(|o| o.as_ref().to_owned()).collect();
        self
    }

    /// How long browsers may cache a CORS preflight answer (default 10 minutes).
    pub fn cors_max_age(mut self, max_age: Duration) -> Self {
        self.cors_max_age = max_age;
        self
    }

    /// Turns JSONP on ([RFC 7009 §2.3]): responses are wrapped for a valid `callback`, and
    /// `GET` with `callback` is accepted, its parameters taken from the query string. Off
    /// by default. See [`RevocationEndpoint`] on tokens in URLs.
    ///
    /// [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3
    pub fn jsonp(mut self, enabled: bool) -> Self {
        self.jsonp = enabled;
        self
    }

    /// Puts, for request logs, the [`AuthenticatedClient`] and the [`RevocationOutcome`]
    /// of each revocation in the response's extensions (as [`ClientAuth`] and
    /// [`RevokeService`] do). Off by default: it costs four allocations per request.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::ServiceExt;
    /// use tower_oauth_revoke::{
    ///     client_auth::{encode_basic, AuthenticatedClient, Client, MemoryClientRegistry},
    ///     store::{MemoryStore, RevocationOutcome},
    ///     RevocationEndpoint,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let endpoint = RevocationEndpoint::builder()
    ///     .clients(MemoryClientRegistry::new([Client::confidential("app", "s3cret")]))
    ///     .store(MemoryStore::new())
    ///     .annotate_responses(true)
    ///     .build()
    ///     .unwrap();
    /// let request = http::Request::post("/oauth2/revoke")
    ///     .header("authorization", encode_basic("app", "s3cret"))
    ///     .header("content-type", "application/x-www-form-urlencoded")
    ///     .body(Full::new(Bytes::from_static(b"token=unknown")))
    ///     .unwrap();
    /// let response = endpoint.oneshot(request).await.unwrap();
    /// assert_eq!(response.extensions().get::<AuthenticatedClient>().unwrap().id(), "app");
    /// assert_eq!(
    ///     response.extensions().get::<RevocationOutcome>(),
    ///     Some(&RevocationOutcome::NotActive)
    /// );
    /// # }
    /// ```
    ///
    /// [`AuthenticatedClient`]: crate::client_auth::AuthenticatedClient
    /// [`RevocationOutcome`]: crate::store::RevocationOutcome
    /// [`ClientAuth`]: crate::client_auth::ClientAuth
    /// [`RevokeService`]: crate::revoke::RevokeService
    pub fn annotate_responses(mut self, enabled: bool) -> Self {
        self.annotate = enabled;
        self
    }
}

impl<R: ClientRegistry, S: TokenStore> RevocationEndpointBuilder<R, S> {
    /// Builds the endpoint.
    ///
    /// Fails when an origin given to [`cors_origins`](Self::cors_origins) is not a valid
    /// origin.
    pub fn build(self) -> Result<RevocationEndpoint<R, S>, BuildError> {
        let cors = CorsPolicy::new()
            .origins(&self.cors_origins)
            .map_err(|err| BuildError::new(format!("cors_origins: {err}")))?
            .max_age(self.cors_max_age)
            .allow_get(self.jsonp);
        let mut auth = ClientAuthLayer::new(self.clients.clone())
            .realm(&self.realm)
            .cors(&cors);
        if let Some(limiter) = self.limiter {
            auth = auth.limit_failures(limiter);
        }
        let steps = Steps {
            inner: Arc::new(StepsInner {
                form: FormLayer::new()
                    .limit(self.body_limit)
                    .allow_get_with_callback(self.jsonp),
                jsonp: self.jsonp,
                auth,
                origins: cors.configured_origins().into(),
                store: self.store,
                policy: self.policy,
                annotate: self.annotate,
            }),
        };
        let cors = cors.layer_with_clients(self.clients).layer(steps.clone());
        Ok(RevocationEndpoint {
            steps,
            cors: Arc::new(cors),
        })
    }
}

/// The steps after CORS, in one future.
struct Steps<R, S> {
    inner: Arc<StepsInner<R, S>>,
}

impl<R, S> Clone for Steps<R, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct StepsInner<R, S> {
    form: FormLayer,
    jsonp: bool,
    auth: ClientAuthLayer<R>,
    origins: Arc<[Origin]>,
    store: S,
    policy: RevocationPolicy,
    annotate: bool,
}

impl<R: ClientRegistry, S: TokenStore> StepsInner<R, S> {
    /// Form, JSONP, then the rest, with `Vary` when `tower_http::cors` is not in front. As
    /// in the layered stack, the form's refusals and a bad callback are answered unwrapped.
    ///
    /// This is the one future of a request: it takes the steps by `Arc` and keeps across
    /// its awaits only what the later steps read, so that it stays small to move.
    async fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
        vary: bool,
    ) -> Result<Response<JsonpBody<Full<Bytes>>>, Infallible>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let plan = self.form.plan(&parts);
        let Parts {
            uri,
            headers,
            extensions,
            ..
        } = parts;
        let addr = RemoteAddr::from_extensions(&extensions);
        drop(extensions);
        let mut response = 'answer: {
            let params = match plan {
                Ok(FormPlan::Query(params)) => params,
                Ok(FormPlan::Body { limit }) => match read_form(body, limit).await {
                    Ok((_, params)) => params,
                    Err(err) => break 'answer err.to_response(),
                },
                Err(err) => break 'answer err.to_response(),
            };
            let callback = if self.jsonp {
                match find_callback(uri.query(), Some(&params)) {
                    Ok(callback) => callback,
                    Err(err) => break 'answer err.to_response(),
                }
            } else {
                None
            };
            drop(uri);
            let response = self.authenticated(&headers, addr, &params).await;
            match callback {
                Some(callback) => wrap(response, &callback),
                None => response.map(JsonpBody::plain),
            }
        };
        if vary {
            add_vary(response.headers_mut());
        }
        Ok(response)
    }

    /// Client authentication, the origin check and revocation; with
    /// [`annotate_responses`](RevocationEndpointBuilder::annotate_responses), the client and
    /// the outcome go in the response's extensions.
    async fn authenticated(
        &self,
        headers: &HeaderMap,
        addr: Option<RemoteAddr>,
        params: &FormParams,
    ) -> Response<Full<Bytes>> {
        let client = match authenticate_request(
            self.auth.registry(),
            self.auth.config(),
            headers,
            Some(params),
            addr,
        )
        .await
        {
            Ok(client) => client,
            Err(err) => return err.to_response(),
        };
        let checked = check_origin(&self.origins, headers, Some(&client))
            .and_then(|()| read_request(params, &client));
        let (mut response, outcome) = match checked {
            Ok((hash, hint)) => execute(&self.store, &self.policy, &client, &hash, hint).await,
            Err(err) => (err.to_response(), None),
        };
        if self.annotate {
            let extensions = response.extensions_mut();
            if let Some(outcome) = outcome {
                extensions.insert(outcome);
            }
            extensions.insert(client);
        }
        response
    }
}

impl<R, S, B> Service<Request<B>> for Steps<R, S>
where
    R: ClientRegistry,
    S: TokenStore,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<JsonpBody<Full<Bytes>>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(self.inner.clone().handle(req, false))
    }
}

pin_project! {
    /// The response body of [`RevocationEndpoint`]; empty by default.
    #[derive(Default)]
    pub struct EndpointBody {
        #[pin]
        inner: JsonpBody<Full<Bytes>>,
    }
}

impl fmt::Debug for EndpointBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBody").finish_non_exhaustive()
    }
}

impl Body for EndpointBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response future of [`RevocationEndpoint`].
pub struct EndpointFuture {
    inner: BoxFuture<Result<Response<JsonpBody<Full<Bytes>>>, Infallible>>,
}

impl fmt::Debug for EndpointFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointFuture").finish_non_exhaustive()
    }
}

impl Future for EndpointFuture {
    type Output = Result<Response<EndpointBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner
            .as_mut()
            .poll(cx)
            .map(|r| r.map(|response| response.map(|inner| EndpointBody { inner })))
    }
}

impl<R, S, B> Service<Request<B>> for RevocationEndpoint<R, S>
where
    R: ClientRegistry,
    S: TokenStore,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EndpointBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every step is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner: BoxFuture<_> = if is_cors_request(&req) {
            // Preflights and requests with `Origin`: `tower_http::cors` over the steps.
            // `Cors` is ready whenever its inner service is, and the steps always are.
            Box::pin(CorsPolicyService::clone(&self.cors).call(req))
        } else {
            // Not a CORS request: only `Vary`, as `tower_http::cors` would set it.
            Box::pin(self.steps.inner.clone().handle(req, true))
        };
        EndpointFuture { inner }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        client_auth::{Client, MemoryClientRegistry},
        store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord},
    };
    use http::{HeaderMap, StatusCode};
    use http_body_util::BodyExt;
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
        let endpoint = RevocationEndpoint::builder()
            .clients(registry)
            .store(store.clone())
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
        let err = RevocationEndpoint::builder()
            .clients(MemoryClientRegistry::default())
            .store(MemoryStore::new())
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
