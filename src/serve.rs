//! Serving a service on the open internet: the connection limits hyper leaves to the host
//! (feature `serve`).
//!
//! hyper serves connections; the accept loop around it is the host's, and the loop most
//! examples show has no limits: a client that opens connections and sends nothing (or half
//! an HTTP/2 preface, or nothing after a TLS handshake) holds a descriptor forever, and once
//! the process runs out of them `accept` fails in a tight loop. [`Server`] is that loop with
//! the limits in place, built on hyper-util's `auto::Builder` (HTTP/1 and HTTP/2):
//!
//! - **Idle timeout** (default 10 s): a connection on which no request is in flight for that
//!   long is closed gracefully, whatever its stage (before the first byte, mid-preface,
//!   after a TLS handshake, between HTTP/1 keep-alive requests, an idle HTTP/2 connection).
//!   TLS handshakes get as long; HTTP/1 request heads as long (hyper's
//!   `header_read_timeout`); HTTP/2 peers are pinged and dropped if they stop answering.
//! - **Connection cap** (default: three quarters of the process's descriptor limit less 64,
//!   at most 10,000): at the cap, connections idle for a second or more are closed to make
//!   room, and no new connection is accepted until one has.
//! - **Accept errors** (out of descriptors, say) back off from 10 ms to 1 s, and are logged
//!   at most once a second.
//! - Each request carries the peer's [`RemoteAddr`], for the failure limiter, and (with
//!   `Server::serve_tls`, feature `mtls`) the client certificate of mutual TLS.
//! - Shutdown is graceful: in-flight requests finish, within the idle timeout.
//!
//! A body that trickles in is not a connection matter: bound it with
//! `tower_http::timeout::RequestBodyDeadlineLayer` in the service.
//!
//! ```no_run
//! use tower_oauth_revoke::{
//!     client_auth::{Client, MemoryClientRegistry},
//!     serve::Server,
//!     store::MemoryStore,
//!     RevocationEndpoint,
//! };
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let revoke = RevocationEndpoint::builder(MemoryClientRegistry::new([Client::confidential("app", "app-secret")]), MemoryStore::new())
//!     .build()
//!     .unwrap();
//! let app = axum::Router::new().route_service("/oauth2/revoke", revoke);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! Server::new()
//!     .serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify, Semaphore},
};
use tower_service::Service;

#[cfg(feature = "mtls")]
use crate::client_auth::mtls::MtlsAcceptor;
use crate::{body::BoxError, client_auth::RemoteAddr};

/// How long a connection may go without a request in flight, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A service [`Server`] can serve: a tower service of hyper requests that never fails and
/// is cloned per connection, answering with a body hyper can send. Every such service has
/// it (axum's `Router`, this crate's endpoints, `tower::service_fn` closures).
pub trait HttpService:
    Service<
        Request<Incoming>,
        Response = Response<Self::Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
    /// The response body.
    type Body: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Body = B;
}

/// The accept loop with connection limits; see the [module docs](self).
#[derive(Clone)]
pub struct Server {
    builder: auto::Builder<TokioExecutor>,
    idle_timeout: Duration,
    max_connections: usize,
}

debug_fields!(Server {
    idle_timeout,
    max_connections
});

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// Three quarters of the descriptor limit less 64 (the listener, stdio, a store's
/// connections), at least 16 and at most 10,000.
fn default_max_connections() -> usize {
    let limit = rlimit::Resource::NOFILE
        .get_soft()
        .unwrap_or(1024)
        .min(1 << 20) as usize;
    (limit.saturating_sub(64) * 3 / 4).clamp(16, 10_000)
}

impl Server {
    /// A server with the default limits, serving HTTP/1 and HTTP/2.
    pub fn new() -> Self {
        let mut server = Self {
            builder: auto::Builder::new(TokioExecutor::new()),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: default_max_connections(),
        };
        server.configure_builder();
        server
    }

    fn configure_builder(&mut self) {
        let idle = self.idle_timeout;
        self.builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(idle);
        self.builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(idle)
            .keep_alive_timeout(idle);
    }

    /// How long a connection may go without a request in flight (default 10 s); also the
    /// bound on a TLS handshake, on reading a request head, and on graceful shutdown.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "the idle timeout must not be zero");
        self.idle_timeout = timeout;
        self.configure_builder();
        self
    }

    /// The most connections served at once (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The most connections served at once.
    pub fn connection_limit(&self) -> usize {
        self.max_connections
    }

    /// hyper-util's connection builder, for protocol settings beyond these (the timers are
    /// already set).
    pub fn builder_mut(&mut self) -> &mut auto::Builder<TokioExecutor> {
        &mut self.builder
    }

    /// Serves `service` on `listener` over plain TCP until `shutdown` resolves, then lets
    /// in-flight requests finish (within the idle timeout).
    pub async fn serve<S>(
        self,
        listener: TcpListener,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: HttpService,
    {
        self.serve_with(listener, |stream| async { Ok(stream) }, service, shutdown)
            .await
    }

    /// As [`serve`](Self::serve), with each accepted stream first passed through `accept`:
    /// a TLS handshake, say (`tokio_rustls::TlsAcceptor::accept`). It gets the idle timeout
    /// to finish.
    pub async fn serve_with<S, A, F, T>(
        self,
        listener: TcpListener,
        accept: A,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: HttpService,
        A: Fn(TcpStream) -> F + Clone + Send + 'static,
        F: Future<Output = io::Result<T>> + Send,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let accept = move |stream| {
            let handshake = accept(stream);
            async move { Ok((handshake.await?, None::<()>)) }
        };
        self.serve_connections(listener, accept, service, shutdown)
            .await
    }

    /// As [`serve`](Self::serve), over TLS with client certificates (feature `mtls`): each
    /// request carries the [`ClientCertificate`](crate::client_auth::mtls::ClientCertificate)
    /// its client presented in the handshake, if any, as it carries [`RemoteAddr`]. See
    /// [`MtlsAcceptor`] for the two ways to trust a client certificate.
    ///
    /// ```no_run
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower_oauth_revoke::{body::Body, client_auth::mtls::{ClientCertificate, MtlsAcceptor}, serve::Server};
    ///
    /// # async fn run(acceptor: MtlsAcceptor) -> std::io::Result<()> {
    /// let app = tower::service_fn(|req: Request<hyper::body::Incoming>| async move {
    ///     let subject = ClientCertificate::from_extensions(req.extensions())
    ///         .and_then(|certificate| certificate.subject_dn())
    ///         .unwrap_or("no certificate")
    ///         .to_owned();
    ///     Ok::<_, Infallible>(Response::new(Body::from(subject)))
    /// });
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
    /// Server::new()
    ///     .serve_tls(listener, acceptor, app, async { let _ = tokio::signal::ctrl_c().await; })
    ///     .await
    /// # }
    /// ```
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub async fn serve_tls<S>(
        self,
        listener: TcpListener,
        acceptor: MtlsAcceptor,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: HttpService,
    {
        let accept = move |stream| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(stream).await }
        };
        self.serve_connections(listener, accept, service, shutdown)
            .await
    }

    /// The accept loop: `accept` sets each connection up, and gives what each of its
    /// requests carries besides its [`RemoteAddr`].
    async fn serve_connections<S, A, F, T, E>(
        self,
        listener: TcpListener,
        accept: A,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: HttpService,
        A: Fn(TcpStream) -> F + Clone + Send + 'static,
        F: Future<Output = io::Result<(T, Option<E>)>> + Send,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        E: Clone + Send + Sync + 'static,
    {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopped) = watch::channel(false);
        let shed = Arc::new(Notify::new());
        let mut accept_errors = AcceptErrors::default();
        tokio::pin!(shutdown);
        loop {
            // At the cap, close idle connections to make room, and wait for one to go.
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    shed.notify_waiters();
                    tokio::select! {
                        permit = permits.clone().acquire_owned() => permit.expect("never closed"),
                        _ = tokio::time::sleep(SHED_AFTER) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => {
                        accept_errors.reset();
                        pair
                    }
                    Err(err) => {
                        let pause = accept_errors.failed(&err);
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => continue,
                            _ = &mut shutdown => break,
                        }
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                builder: self.builder.clone(),
                idle_timeout: self.idle_timeout,
                peer,
                stopped: stopped.clone(),
                shed: shed.clone(),
            };
            let (accept, service) = (accept.clone(), service.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let (io, extension) =
                    match tokio::time::timeout(connection.idle_timeout, accept(stream)).await {
                        Ok(Ok(accepted)) => accepted,
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, "connection set-up failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("connection set-up timed out");
                            return;
                        }
                    };
                connection.run(io, extension, service).await;
            });
        }
        drop(listener);
        let _ = stop.send(true);
        // Every connection holds a permit until it ends; graceful shutdown ends each within
        // the idle timeout (twice: once to finish, once as the hard stop).
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(self.idle_timeout * 2, permits.acquire_many(all)).await;
        Ok(())
    }
}

/// A connection idle at least this long may be closed to make room at the cap.
const SHED_AFTER: Duration = Duration::from_secs(1);

/// Back-off and rate-limited logging for `accept` errors.
#[derive(Default)]
struct AcceptErrors {
    pause: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Records a failure; returns how long to pause before accepting again.
    fn failed(&mut self, err: &io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            tracing::warn!(
                error = %err,
                suppressed = self.unlogged,
                retry_in_ms = self.pause.as_millis() as u64,
                "accept failed"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.pause
    }
}

/// One connection's settings and signals.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    idle_timeout: Duration,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
    shed: Arc<Notify>,
}

impl Connection {
    /// Serves the connection; each request carries `extension`, if any.
    async fn run<T, S, E>(mut self, io: T, extension: Option<E>, service: S)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService,
        E: Clone + Send + Sync + 'static,
    {
        let activity = Arc::new(Activity::new());
        let peer = self.peer;
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(RemoteAddr(peer));
            if let Some(extension) = &extension {
                req.extensions_mut().insert(extension.clone());
            }
            let in_flight = tracked.begin();
            let mut service = service.clone();
            async move {
                let response = service.call(req).await;
                drop(in_flight);
                response
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = activity.idle_for(self.idle_timeout), if !closing => {
                    tracing::debug!("closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = activity.shed(&self.shed), if !closing => {
                    tracing::debug!("closing an idle connection to make room");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = self.stopped.wait_for(|stop| *stop), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                // A peer that ignores the graceful close is dropped.
                _ = tokio::time::sleep(self.idle_timeout), if closing => return,
            }
        }
    }
}

/// What is in flight on a connection, and since when it has been idle. A request costs
/// three atomic operations and a clock read: nothing wakes the connection's task, which
/// looks at these only when its idle timer fires.
struct Activity {
    /// tokio's clock, so that paused time in tests applies.
    created: tokio::time::Instant,
    in_flight: AtomicUsize,
    /// Requests begun so far: an idle period is the same one while this stays put.
    begun: AtomicU64,
    /// Milliseconds after `created` at which the connection last became idle.
    idle_since_ms: AtomicU64,
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since_ms
            .store(activity.elapsed_ms(), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            created: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.created.elapsed().as_millis() as u64
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Acquire);
        self.begun.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// How long the connection has been idle, if nothing is in flight.
    fn idle(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_ms = self
            .elapsed_ms()
            .saturating_sub(self.idle_since_ms.load(Ordering::Relaxed));
        Some(Duration::from_millis(idle_ms))
    }

    /// Resolves once no request has been in flight for `timeout`. It sleeps until the
    /// earliest moment that could be true, then looks.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let begun = self.begun.load(Ordering::Relaxed);
            let wait = match self.idle() {
                Some(idle) if idle >= timeout => return,
                Some(idle) => timeout - idle,
                None => timeout,
            };
            tokio::time::sleep(wait).await;
            if self.begun.load(Ordering::Relaxed) == begun
                && self.idle().is_some_and(|idle| idle >= timeout)
            {
                return;
            }
        }
    }

    /// Resolves when the server sheds idle connections and this one has been idle for at
    /// least [`SHED_AFTER`].
    async fn shed(&self, shed: &Notify) {
        loop {
            shed.notified().await;
            if self.idle().is_some_and(|idle| idle >= SHED_AFTER) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_and_log_once_a_second() {
        let mut errors = AcceptErrors::default();
        let err = io::Error::other("too many open files");
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(&err)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(*pauses.last().unwrap(), Duration::from_secs(1));
        assert_eq!(
            errors.unlogged, 9,
            "one line for ten failures within a second"
        );
        errors.reset();
        assert_eq!(errors.failed(&err), Duration::from_millis(10));
    }

    #[test]
    fn the_default_cap_is_below_the_descriptor_limit() {
        let limit = rlimit::Resource::NOFILE.get_soft().unwrap() as usize;
        let cap = default_max_connections();
        assert!(cap < limit, "{cap} of {limit}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_with_nothing_in_flight() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_secs(10);
        let in_flight = activity.begin();
        let idle = activity.idle_for(timeout);
        tokio::pin!(idle);
        // A request in flight for a minute: not idle.
        assert!(tokio::time::timeout(Duration::from_secs(60), idle.as_mut())
            .await
            .is_err());
        drop(in_flight);
        let start = tokio::time::Instant::now();
        idle.await;
        assert!(start.elapsed() >= timeout);
    }
}
