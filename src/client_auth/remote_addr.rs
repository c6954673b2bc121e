//! The remote address of a request, which the failure limiter counts by.

use std::net::SocketAddr;

use http::Extensions;

/// The remote address of a request's connection, as a request extension.
///
/// The host inserts it, so that [`AuthFailureLimiter`](super::AuthFailureLimiter) counts failures per client id
/// **and** address. Without it every request counts as coming from one unknown address,
/// anyone could lock a client out, and the limiter says so once, at `warn` level.
///
/// - **hyper**: the accept loop has the peer's address; insert it in each request (see
///   `examples/hyper.rs`).
/// - **axum** (feature `axum`): serve with
///   `into_make_service_with_connect_info::<SocketAddr>()`; the crate reads axum's
///   `ConnectInfo<SocketAddr>` as well as `RemoteAddr`, so nothing else is needed.
///
/// Behind a reverse proxy, the connection's address is the proxy's: insert the client's
/// address from the proxy's header instead, and only from a proxy you trust.
///
/// ```
/// use std::net::SocketAddr;
/// use tower_oauth_revoke::client_auth::RemoteAddr;
///
/// let mut request = http::Request::new(());
/// let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
/// request.extensions_mut().insert(RemoteAddr(peer));
/// assert_eq!(RemoteAddr::from_extensions(request.extensions()), Some(RemoteAddr(peer)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

impl RemoteAddr {
    /// The remote address a request carries: its `RemoteAddr` extension, else (feature
    /// `axum`) axum's `ConnectInfo<SocketAddr>`.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        if let Some(addr) = extensions.get::<RemoteAddr>() {
            return Some(*addr);
        }
        #[cfg(feature = "axum")]
        if let Some(axum::extract::ConnectInfo(addr)) =
            extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(RemoteAddr(*addr));
        }
        None
    }
}
