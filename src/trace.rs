//! Request logs and spans that never carry a token.
//!
//! [`RequestLogLayer`] is a request log of its own: one `INFO` line per request, with the
//! client and the revocation outcome the endpoints annotate their responses with, that
//! costs nothing when `INFO` is off. The rest of this module is for `tower_http::trace`.
//!
//! tower-http's default span records the whole URI. A JSON-P `GET` to the revocation
//! endpoint carries the token in its query string (`/oauth2/revoke?token=…&callback=…`),
//! so the default span writes tokens into access logs. [`PathSpan`] records the method,
//! the path and the HTTP version, never the query string or any header; [`layer`] is
//! tower-http's `TraceLayer` with it.
//!
//! ```
//! use tower_oauth_revoke::{
//!     client_auth::{Client, MemoryClientRegistry},
//!     store::MemoryStore,
//!     RevocationEndpoint,
//! };
//!
//! let revoke = RevocationEndpoint::builder(MemoryClientRegistry::new([Client::public("spa")]), MemoryStore::new())
//!     .jsonp(true)
//!     .build()
//!     .unwrap();
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/oauth2/revoke", revoke)
//!     .layer(tower_oauth_revoke::trace::layer());
//! # let _ = app;
//! ```
//!
//! Or keep your own `TraceLayer` and give it the span:
//! `TraceLayer::new_for_http().make_span_with(PathSpan::new())`.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Instant,
};

use http::{Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, TraceLayer},
};
use tower_layer::Layer;
use tower_service::Service;
use tracing::{Level, Span};

pub use crate::escape::Escaped;
use crate::{registry::AuthenticatedClient, store::RevocationOutcome};

/// A [`MakeSpan`] that records `method`, `path` and `version`: never the query string,
/// never a header.
///
/// The span is named `request`, at `DEBUG` unless [`level`](Self::level) says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct PathSpan {
    level: Level,
}

impl PathSpan {
    /// A span at `DEBUG`, as tower-http's default.
    pub fn new() -> Self {
        Self {
            level: Level::DEBUG,
        }
    }

    /// Sets the span's level.
    #[must_use]
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }
}

impl Default for PathSpan {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> MakeSpan<B> for PathSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        macro_rules! span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    version = ?request.version(),
                )
            };
        }
        match self.level {
            Level::ERROR => span!(Level::ERROR),
            Level::WARN => span!(Level::WARN),
            Level::INFO => span!(Level::INFO),
            Level::DEBUG => span!(Level::DEBUG),
            Level::TRACE => span!(Level::TRACE),
        }
    }
}

/// tower-http's [`TraceLayer`] for HTTP, with [`PathSpan`] in place of its default span.
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, PathSpan> {
    TraceLayer::new_for_http().make_span_with(PathSpan::new())
}

/// The request log: one `INFO` event per request, with what an operator reads in an access
/// log and nothing a token could hide in.
///
/// Each event (target `tower_oauth_revoke::trace`, message `request`) carries
///
/// - `method` and `path`: never the query string, which carries the token of a JSON-P
///   `GET`;
/// - `client_id`: the client the endpoint authenticated, from the response's
///   [`AuthenticatedClient`] (the endpoints put it
///   there with [`annotate_responses(true)`](crate::endpoint::EndpointBuilder::annotate_responses)),
///   or a [`LoggedClient`] any other service may put there; `-` when there is none;
/// - `status`, and `outcome`: `revoked`, `not_active` or `foreign_token` from the
///   response's [`RevocationOutcome`], else `ok` for a success and `error` otherwise;
/// - `latency_us`: from the call to the response head.
///
/// Path and client id are written through [`Escaped`], so that no value can forge a line.
///
/// It costs nothing when the event is off (`RUST_LOG=warn`, say): the level is checked
/// once per request, before anything is read. When it is on it reads the response's
/// extensions without copying them, and its future is not boxed. With the endpoints'
/// annotations on, turn their own outcome events off
/// ([`log_outcomes(false)`](crate::endpoint::EndpointBuilder::log_outcomes)): one line per
/// request.
///
/// Mount it outside the router, so that it wraps the router once rather than every route:
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_oauth_revoke::{
///     client_auth::{Client, MemoryClientRegistry},
///     store::MemoryStore,
///     trace::RequestLogLayer,
///     RevocationEndpoint,
/// };
///
/// let revoke = RevocationEndpoint::builder(
///     MemoryClientRegistry::new([Client::confidential("app", "app-secret")]),
///     MemoryStore::new(),
/// )
/// .annotate_responses(true)
/// .log_outcomes(false)
/// .build()
/// .unwrap();
/// let router: axum::Router = axum::Router::new().route_service("/oauth2/revoke", revoke);
/// let app = ServiceBuilder::new().layer(RequestLogLayer::new()).service(router);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer {
    _priv: (),
}

impl RequestLogLayer {
    /// The request log layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Debug, Clone, Copy)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S> RequestLog<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    inner_service_accessors!(S);
}

/// A response extension that names the client in the request log when no
/// [`AuthenticatedClient`] does: a bearer-protected
/// route may put the token's client there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedClient(pub Arc<str>);

impl<S, B, ResBody> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestLogFuture<S::Future>;

    forward_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = tracing::enabled!(Level::INFO).then(|| Started {
            method: req.method().clone(),
            // A clone of the URI shares its bytes: no copy. Only its path is logged.
            uri: req.uri().clone(),
            at: Instant::now(),
        });
        RequestLogFuture {
            inner: self.inner.call(req),
            started,
        }
    }
}

struct Started {
    method: Method,
    uri: Uri,
    at: Instant,
}

pin_project! {
    /// The future of [`RequestLog`].
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: F,
        started: Option<Started>,
    }
}

opaque_debug!(RequestLogFuture<F>);

impl<F, ResBody, E> Future for RequestLogFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Some(started), Ok(response)) = (this.started.take(), &result) {
            log_request(&started, response);
        }
        Poll::Ready(result)
    }
}

fn log_request<B>(started: &Started, response: &Response<B>) {
    let extensions = response.extensions();
    let client_id = match extensions.get::<AuthenticatedClient>() {
        Some(client) => client.id(),
        None => extensions.get::<LoggedClient>().map_or("-", |c| &c.0),
    };
    let status = response.status();
    let outcome = match extensions.get::<RevocationOutcome>() {
        Some(RevocationOutcome::Revoked { .. }) => "revoked",
        Some(RevocationOutcome::NotActive) => "not_active",
        Some(RevocationOutcome::IssuedToAnotherClient) => "foreign_token",
        None if status.is_success() => "ok",
        None => "error",
    };
    tracing::info!(
        method = %started.method,
        path = %Escaped(started.uri.path()),
        client_id = %Escaped(client_id),
        status = status.as_u16(),
        outcome,
        latency_us = started.at.elapsed().as_micros() as u64,
        "request"
    );
}
