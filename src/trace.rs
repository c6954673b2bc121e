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

/// A value a request controls (a client id, a user name, a path segment), made safe to log:
/// at most 128 characters (then `...`), with control characters, line and paragraph
/// separators, quotes and backslashes escaped as Rust escapes them (`\n`, `\u{1b}`,
/// `\u{2028}`), so that no value can forge or break a log line.
///
/// ```
/// use tower_oauth_revoke::trace::Escaped;
///
/// assert_eq!(Escaped("app\nlevel=ERROR forged").to_string(), "app\\nlevel=ERROR forged");
/// assert_eq!(Escaped("\u{1b}[31m\u{2028}").to_string(), "\\u{1b}[31m\\u{2028}");
/// assert_eq!(Escaped(&"a".repeat(200)).to_string().len(), 128 + 3);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(128) {
            std::fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}
