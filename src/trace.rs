//! Request spans that never carry a token: for `tower_http::trace`.
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
//! let revoke = RevocationEndpoint::builder()
//!     .clients(MemoryClientRegistry::new([Client::public("spa")]))
//!     .store(MemoryStore::new())
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

use http::Request;
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, TraceLayer},
};
use tracing::{Level, Span};

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
