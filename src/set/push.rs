//! Push delivery ([RFC 8935]): SETs POSTed to each configured receiver.
//!
//! Each receiver has its own bounded queue and task: a SET is sent with
//! `Content-Type: application/secevent+jwt`; a 2xx answer (RFC 8935 says 202) removes it, a
//! 400 (the receiver refused it, RFC 8935 §2.3) removes it and logs the receiver's error;
//! anything else (unreachable, 5xx, a timeout) keeps it at the head and retries with
//! back-off (100 ms doubling to [`PushOptions::max_backoff`], 500 ms by default, so a
//! receiver that comes back gets its backlog, then new events, within a second). SETs are
//! sent one at a time, in the order the store emitted them: in order per grant, and
//! overall. A SET is kept for [`PushOptions::retention`] (default one hour, at least five
//! minutes) or until the queue holds [`PushOptions::capacity`] newer ones; what is dropped
//! is logged. Pushing never blocks the revocation that caused it.
//!
//! [RFC 8935]: https://www.rfc-editor.org/rfc/rfc8935

use std::{
    collections::VecDeque,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use tokio::sync::Notify;

use super::{follow, Set, SetIssuer, CONTENT_TYPE};
use crate::store::{log::EventLog, GrantId, StoreError, TokenStore};

/// How a [`Pusher`] delivers.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The most SETs kept per receiver (default 100,000).
    pub capacity: usize,
    /// How long an undelivered SET is retried (default one hour; at least five minutes).
    pub retention: Duration,
    /// The longest wait between two attempts (default 500 ms).
    pub max_backoff: Duration,
    /// The time one attempt may take (default 5 s).
    pub timeout: Duration,
    /// TLS for `https` receivers (default: the webpki roots).
    pub tls: Option<rustls::ClientConfig>,
    /// Delivering from a durable log ([`Pusher::follow`]): how long a node's hold on a
    /// receiver lasts unless renewed (default 5 s). A node that dies holds it that long at
    /// most; then another node delivers.
    pub lease: Duration,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            retention: Duration::from_secs(3600),
            max_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            tls: None,
            lease: Duration::from_secs(5),
        }
    }
}

struct Queued {
    set: Set,
    added: Instant,
}

pub(super) struct Receiver {
    pub(super) url: Uri,
    queue: Mutex<VecDeque<Queued>>,
    arrived: Notify,
    pub(super) delivered: std::sync::atomic::AtomicU64,
}

/// Pushes SETs to receivers; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Pusher {
    receivers: Arc<[Arc<Receiver>]>,
    capacity: usize,
    /// Delivering from a durable log: nothing is queued in memory.
    follows: bool,
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field(
                "receivers",
                &self.receivers.iter().map(|r| &r.url).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A receiver URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReceiver(pub String);

impl fmt::Display for InvalidReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid event receiver URL: {}", self.0)
    }
}

impl std::error::Error for InvalidReceiver {}

/// Why [`Pusher::follow`] could not start.
#[derive(Debug)]
pub enum FollowError {
    /// A receiver URL cannot be used.
    Receiver(InvalidReceiver),
    /// The store did not answer.
    Store(StoreError),
}

impl fmt::Display for FollowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FollowError::Receiver(e) => e.fmt(f),
            FollowError::Store(e) => write!(f, "cannot read the event log: {e}"),
        }
    }
}

impl std::error::Error for FollowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FollowError::Receiver(e) => Some(e),
            FollowError::Store(e) => Some(e),
        }
    }
}

pub(super) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pusher {
    /// Starts one delivery task per receiver URL (`http` or `https`). Must be called within
    /// a Tokio runtime.
    pub fn spawn<I, U>(urls: I, options: PushOptions) -> Result<Self, InvalidReceiver>
    where
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let (pusher, client, options) = Self::prepare(urls, options)?;
        for receiver in pusher.receivers.iter() {
            tokio::spawn(run(
                Arc::downgrade(receiver),
                client.clone(),
                options.clone(),
            ));
        }
        Ok(pusher)
    }

    /// Delivers the SETs of `store`'s durable log ([`EventLog`]) to each receiver URL, at
    /// least once, whatever node dies: each receiver has a cursor in the store, every
    /// entry up to it delivered; one node at a time holds it (for
    /// [`PushOptions::lease`], renewed as it delivers) and pushes the entries after it, in
    /// log order, moving the cursor after each one the receiver took (a 2xx) or refused
    /// for good (a 400). A node that dies leaves the cursor where it was: another node, or
    /// the same one restarted, goes on from there once the lease runs out, so a SET may
    /// come twice (with the same `jti`, by which receivers drop it), never not at all.
    ///
    /// Creates each receiver's cursor (at the log's end) before it returns: every event
    /// logged from then on is delivered. [`push`](Self::push) does nothing on such a
    /// pusher, and [`pending`](Self::pending) counts nothing: the log is the queue. Must be
    /// called within a Tokio runtime.
    pub async fn follow<S, I, U>(
        store: S,
        issuer: SetIssuer,
        urls: I,
        options: PushOptions,
    ) -> Result<Self, FollowError>
    where
        S: EventLog + TokenStore,
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let (mut pusher, client, options) =
            Self::prepare(urls, options).map_err(FollowError::Receiver)?;
        for receiver in pusher.receivers.iter() {
            store
                .cursor(&follow::push_cursor(&receiver.url))
                .await
                .map_err(FollowError::Store)?;
        }
        let follower = Arc::new(follow::Follower {
            events: store.events().clone(),
            log: Arc::new(store),
            issuer,
            holder: crate::store::generate_token(),
        });
        for receiver in pusher.receivers.iter() {
            tokio::spawn(follow::push(
                Arc::downgrade(receiver),
                follower.clone(),
                client.clone(),
                options.clone(),
            ));
        }
        pusher.follows = true;
        Ok(pusher)
    }

    fn prepare<I, U>(
        urls: I,
        options: PushOptions,
    ) -> Result<(Self, HttpClient, Arc<PushOptions>), InvalidReceiver>
    where
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let mut receivers = Vec::new();
        for url in urls {
            let url = url.as_ref();
            let uri: Uri = url.parse().map_err(|_| InvalidReceiver(url.to_owned()))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(InvalidReceiver(url.to_owned()));
            }
            receivers.push(Arc::new(Receiver {
                url: uri,
                queue: Mutex::new(VecDeque::new()),
                arrived: Notify::new(),
                delivered: Default::default(),
            }));
        }
        let connector = match options.tls.clone() {
            Some(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config),
            None => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        }
        .https_or_http()
        .enable_http1()
        .build();
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let options = Arc::new(PushOptions {
            retention: options.retention.max(Duration::from_secs(300)),
            lease: options.lease.max(Duration::from_millis(100)),
            ..options
        });
        let pusher = Self {
            receivers: receivers.into(),
            capacity: options.capacity.max(1),
            follows: false,
        };
        Ok((pusher, client, options))
    }

    /// Queues a SET for every receiver; never waits. `grant` is what the order guarantee is
    /// about (every SET is delivered in queue order, so this is informative).
    pub fn push(&self, set: Set, grant: Option<GrantId>) {
        let _ = grant;
        if self.follows {
            return;
        }
        for receiver in self.receivers.iter() {
            let mut queue = lock(&receiver.queue);
            if queue.len() >= self.capacity {
                let dropped = queue.pop_front();
                tracing::error!(
                    receiver = %receiver.url,
                    set = dropped.map(|d| d.set.jti.to_string()).unwrap_or_default(),
                    "event receiver queue full; the oldest event was dropped"
                );
            }
            queue.push_back(Queued {
                set: set.clone(),
                added: Instant::now(),
            });
            drop(queue);
            receiver.arrived.notify_one();
        }
    }

    /// How many SETs wait for each receiver, in the order the URLs were given.
    pub fn pending(&self) -> Vec<usize> {
        self.receivers
            .iter()
            .map(|r| lock(&r.queue).len())
            .collect()
    }

    /// How many SETs each receiver has accepted.
    pub fn delivered(&self) -> Vec<u64> {
        self.receivers
            .iter()
            .map(|r| r.delivered.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    }
}

pub(super) enum Attempt {
    Delivered,
    Refused(String),
    Failed(String),
}

pub(super) async fn attempt(
    client: &HttpClient,
    url: &Uri,
    set: &Set,
    timeout: Duration,
) -> Attempt {
    let request = match Request::post(url.clone())
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::ACCEPT, "application/json")
        .body(Full::new(Bytes::copy_from_slice(set.jws.as_bytes())))
    {
        Ok(request) => request,
        Err(e) => return Attempt::Refused(e.to_string()),
    };
    let sent = tokio::time::timeout(timeout, async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), 4096)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((status, body))
    })
    .await;
    match sent {
        Ok(Ok((status, _))) if status.is_success() => Attempt::Delivered,
        Ok(Ok((status, body))) if status == http::StatusCode::BAD_REQUEST => {
            Attempt::Refused(String::from_utf8_lossy(&body).chars().take(200).collect())
        }
        Ok(Ok((status, _))) => Attempt::Failed(format!("answered {status}")),
        Ok(Err(e)) => Attempt::Failed(e),
        Err(_) => Attempt::Failed("timed out".to_owned()),
    }
}

async fn run(receiver: std::sync::Weak<Receiver>, client: HttpClient, options: Arc<PushOptions>) {
    let first = Duration::from_millis(100);
    let mut backoff = first;
    let mut failing = false;
    loop {
        let Some(r) = receiver.upgrade() else {
            return;
        };
        let head = {
            let mut queue = lock(&r.queue);
            while queue
                .front()
                .is_some_and(|q| q.added.elapsed() > options.retention)
            {
                let dropped = queue.pop_front().expect("a head");
                tracing::error!(
                    receiver = %r.url,
                    set = %dropped.set.jti,
                    "an event could not be delivered within its retention; dropped"
                );
            }
            queue.front().map(|q| q.set.clone())
        };
        let Some(set) = head else {
            // Wake on a new SET (notify_one keeps a permit for a SET queued since the
            // check), or now and then to notice the pusher is gone.
            let _ = tokio::time::timeout(Duration::from_secs(5), r.arrived.notified()).await;
            continue;
        };
        match attempt(&client, &r.url, &set, options.timeout).await {
            Attempt::Delivered => {
                pop_if_head(&r, &set);
                r.delivered
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if failing {
                    tracing::info!(receiver = %r.url, "event receiver reachable again");
                    failing = false;
                }
                backoff = first;
            }
            Attempt::Refused(error) => {
                pop_if_head(&r, &set);
                tracing::error!(
                    receiver = %r.url,
                    set = %set.jti,
                    error = %crate::escape::Escaped(&error),
                    "an event receiver refused an event"
                );
                backoff = first;
            }
            Attempt::Failed(error) => {
                if !failing {
                    tracing::warn!(
                        receiver = %r.url,
                        error = %crate::escape::Escaped(&error),
                        "event receiver unreachable; retrying"
                    );
                    failing = true;
                }
                drop(r);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
            }
        }
    }
}

fn pop_if_head(receiver: &Receiver, set: &Set) {
    let mut queue = lock(&receiver.queue);
    if queue.front().is_some_and(|q| q.set.jti == set.jti) {
        queue.pop_front();
    }
}
