//! The CORS policy and its `tower_http::cors` layer.

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

use super::OriginCheckLayer;
use crate::{
    error::OAuthError,
    jsonp::X_ORIGINAL_STATUS,
    origin::{InvalidOrigin, Origin},
    registry::ClientRegistry,
};

/// The default preflight max age: 10 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS configuration of an OAuth endpoint; see the [module docs](crate::cors).
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
        let origins = Origin::parse_all(origins)?;
        self.origins = Arc::from(origins);
        Ok(self)
    }

    setters! {
        /// Sets how long browsers may cache a preflight answer (`Access-Control-Max-Age`).
        pub fn max_age(max_age: Duration) => max_age;

        /// Also allows `GET` (for JSONP endpoints). Off by default.
        pub fn allow_get(allow: bool) => allow_get;
    }

    /// The configured origins.
    pub fn configured_origins(&self) -> &[Origin] {
        &self.origins
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
                let well_formed = Origin::is_well_formed(&origin);
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
        super::known_origin(registry, &self.origins, headers).await
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

    forward_ready!();

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

opaque_debug!(CorsFuture<F>);

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
