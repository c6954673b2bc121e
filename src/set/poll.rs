//! Poll delivery ([RFC 8936]): a queue of SETs and the endpoint receivers poll.
//!
//! A receiver POSTs `{"ack":[JTI…],"setErrs":{…},"maxEvents":N,"returnImmediately":bool}`
//! (all optional) with HTTP Basic credentials of a client allowed to read events (one
//! [`with_introspection`](crate::client_auth::Client::with_introspection): a resource
//! server); the answer is `{"sets":{"JTI":"SET",…},"moreAvailable":bool}`. Acknowledged
//! SETs (and those reported in `setErrs`) are removed; every other one is returned again,
//! oldest first, by each later poll until acknowledged, for at least
//! [`SetQueue::retention`] (default one hour). Without `returnImmediately: true` a poll
//! with nothing to return waits up to 15 s for an event (long polling).
//!
//! A queue in memory ([`SetQueue::new`]) serves one receiver (or receivers that share
//! acknowledgements); give each receiver its own queue and endpoint otherwise. A queue that
//! [follows](SetQueue::follow) a store's durable log keeps one cursor per receiving client,
//! in the store: each client gets every SET and acknowledges its own.
//!
//! [RFC 8936]: https://www.rfc-editor.org/rfc/rfc8936

use std::{
    collections::{HashSet, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tower_service::Service;

use super::{follow::LogQueue, Set, SetIssuer};
use crate::client_auth::{AuthFailureLimiter, ClientRegistry, RemoteAddr};
use crate::store::{log::EventLog, StoreError, TokenStore};

const MAX_REQUEST: usize = 256 * 1024;

struct Entry {
    set: Set,
    added: Instant,
}

struct Inner {
    entries: Mutex<VecDeque<Entry>>,
    arrived: Notify,
    capacity: usize,
    retention: Duration,
}

/// SETs waiting for a poll: bounded, shared by clones; or, made by
/// [`follow`](Self::follow), a cursor on a store's durable log.
#[derive(Clone)]
pub struct SetQueue {
    inner: Arc<Inner>,
    log: Option<Arc<LogQueue>>,
}

impl fmt::Debug for SetQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetQueue")
            .field("pending", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for SetQueue {
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(3600))
    }
}

impl SetQueue {
    /// A queue holding at most `capacity` SETs, each for at most `retention` unless
    /// acknowledged earlier. When full, the oldest is dropped (and logged).
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(VecDeque::new()),
                arrived: Notify::new(),
                capacity: capacity.max(1),
                retention,
            }),
            log: None,
        }
    }

    /// A queue that reads `store`'s durable log ([`EventLog`]) instead of memory, with a
    /// cursor in the store for each receiving client (`"poll <name> <client id>"`): every
    /// client gets every SET, and acknowledges only its own. A client's cursor is created
    /// at the log's end by its first poll, or earlier by [`open`](Self::open) (the
    /// [snapshot](super::snapshot::SnapshotService) a new receiver reads first opens it
    /// before it reads the history, so that nothing falls between the two). Every node
    /// serving the same `name` answers a client the same SETs: acknowledgements are
    /// recorded in the store, and an unacknowledged SET is returned again (with the same
    /// `jti`), by any node, after any restart, for as long as the store keeps its log.
    /// [`push`](Self::push) does nothing on it; capacity and retention are the store's.
    pub fn follow<S>(store: S, issuer: SetIssuer, name: &str) -> Self
    where
        S: EventLog + TokenStore,
    {
        let mut queue = Self::new(1, Duration::ZERO);
        queue.log = Some(Arc::new(LogQueue {
            events: store.events().clone(),
            log: Arc::new(store),
            issuer,
            prefix: format!("poll {name}"),
        }));
        queue
    }

    /// Creates `client`'s cursor, if the queue [follows](Self::follow) a log and the
    /// client has none: every SET logged from then on is kept for it. Its position in the
    /// log, or `None` for a queue in memory (which keeps every SET since it was made, for
    /// every client).
    pub async fn open(&self, client: &str) -> Result<Option<u64>, StoreError> {
        match &self.log {
            Some(log) => log.open(client).await.map(Some),
            None => Ok(None),
        }
    }

    /// How long an unacknowledged SET is kept.
    pub fn retention(&self) -> Duration {
        self.inner.retention
    }

    /// How many SETs wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a SET at the end (unless the queue [follows](Self::follow) a log).
    pub fn push(&self, set: Set) {
        if self.log.is_some() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.inner.capacity {
            entries.pop_front();
            tracing::warn!("the poll queue of security events is full; the oldest was dropped");
        }
        entries.push_back(Entry {
            set,
            added: Instant::now(),
        });
        drop(entries);
        self.inner.arrived.notify_waiters();
    }

    /// Removes the acknowledged SETs and those past retention, then returns up to `max` of
    /// the oldest left, and whether more are left.
    pub fn poll(&self, ack: &HashSet<String>, max: usize) -> (Vec<Set>, bool) {
        let mut entries = self.lock();
        let now = Instant::now();
        let retention = self.inner.retention;
        entries.retain(|e| !ack.contains(&*e.set.jti) && now.duration_since(e.added) < retention);
        let sets: Vec<Set> = entries.iter().take(max).map(|e| e.set.clone()).collect();
        let more = entries.len() > sets.len();
        (sets, more)
    }

    /// What a poll answers: acknowledges, then up to `max` SETs and whether more are
    /// left, waiting up to `wait` when there is none.
    async fn take(
        &self,
        client: &str,
        ack: &HashSet<String>,
        max: usize,
        wait: Option<Duration>,
    ) -> Result<(Vec<Set>, bool), StoreError> {
        if let Some(log) = &self.log {
            return log
                .poll(client, ack.iter().map(String::as_str), max, wait)
                .await;
        }
        let (mut sets, mut more) = self.poll(ack, max);
        if let (true, true, Some(wait)) = (sets.is_empty(), max > 0, wait) {
            self.wait(wait).await;
            (sets, more) = self.poll(&HashSet::new(), max);
        }
        Ok((sets, more))
    }

    async fn wait(&self, deadline: Duration) {
        let arrived = self.inner.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        if !self.is_empty() {
            return;
        }
        let _ = tokio::time::timeout(deadline, arrived).await;
    }
}

/// The RFC 8936 endpoint over a [`SetQueue`]; see the [module docs](self).
#[derive(Clone)]
pub struct PollService<R> {
    queue: SetQueue,
    registry: R,
    limiter: Option<AuthFailureLimiter>,
    realm: Arc<str>,
    /// Receivers may authenticate by an access token of theirs.
    tokens: Option<super::receiver_auth::BearerTokens>,
    long_poll: Duration,
}

debug_fields!(PollService<R> { queue });

impl<R: ClientRegistry + Clone> PollService<R> {
    /// Serves `queue` to the clients of `registry` that may introspect any token.
    pub fn new(queue: SetQueue, registry: R) -> Self {
        Self {
            queue,
            registry,
            limiter: None,
            realm: crate::error::DEFAULT_REALM.into(),
            tokens: None,
            long_poll: Duration::from_secs(15),
        }
    }

    /// Limits failed authentications, as the other endpoints do.
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The realm of the `WWW-Authenticate` challenge.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.into();
        self
    }

    /// Lets a receiver authenticate by an active access token of its own,
    /// `Authorization: Bearer TOKEN` checked by `tokens` (RFC 8936 §2.2), besides HTTP
    /// Basic: a token got by `private_key_jwt` or mutual TLS, say. The client it was issued
    /// to must be allowed to introspect any token; a bound token is refused unless bound to
    /// the connection's client certificate.
    pub fn bearer_tokens(mut self, tokens: impl crate::guard::TokenCheck) -> Self {
        self.tokens = Some(super::receiver_auth::BearerTokens::new(tokens));
        self
    }

    /// How long a poll without `returnImmediately` waits for an event (default 15 s).
    pub fn long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait;
        self
    }
}

pub(super) fn json_response(status: StatusCode, body: Value) -> Response<crate::body::Body> {
    let mut response = Response::new(crate::body::Body::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn poll_error(
    status: StatusCode,
    err: &str,
    description: &str,
) -> Response<crate::body::Body> {
    json_response(status, json!({"err": err, "description": description}))
}

impl<R, B> Service<Request<B>> for PollService<R>
where
    R: ClientRegistry + Clone + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    answer_service!(Request<B>);
}

impl<R: ClientRegistry + Clone> PollService<R> {
    async fn answer<B>(&self, req: Request<B>) -> Response<crate::body::Body>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        if req.method() != Method::POST {
            let mut response = poll_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "poll with POST",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let addr = RemoteAddr::from_extensions(req.extensions());
        let client = match super::receiver_auth::authenticate_receiver(
            &self.registry,
            self.limiter.as_ref(),
            req.headers(),
            addr,
            &self.realm,
            self.tokens.as_ref(),
            crate::guard::certificate_thumbprint(&req),
        )
        .await
        {
            Ok(client) => client,
            Err(err) => return err.to_response(),
        };
        if !client.client().may_introspect_any() {
            return poll_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this client may not read security events",
            );
        }
        let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return poll_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the request body is too large or broken",
                )
            }
        };
        let request: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(Value::Object(o)) => Value::Object(o),
                _ => {
                    return poll_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the body must be a JSON object",
                    )
                }
            }
        };
        let mut ack = HashSet::new();
        match request.get("ack") {
            None | Some(Value::Null) => {}
            Some(Value::Array(ids)) => {
                for id in ids {
                    match id.as_str() {
                        Some(id) => {
                            ack.insert(id.to_owned());
                        }
                        None => {
                            return poll_error(
                                StatusCode::BAD_REQUEST,
                                "invalid_request",
                                "ack must be an array of strings",
                            )
                        }
                    }
                }
            }
            Some(_) => {
                return poll_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "ack must be an array of strings",
                )
            }
        }
        // SETs the receiver could not process are not sent again either (RFC 8936 §2.4.3).
        if let Some(errs) = request.get("setErrs").and_then(|e| e.as_object()) {
            for (jti, err) in errs {
                tracing::warn!(
                    set = %crate::escape::Escaped(jti),
                    error = %crate::escape::Escaped(&err.to_string()),
                    "a receiver could not process a security event"
                );
                ack.insert(jti.clone());
            }
        }
        let max = match request.get("maxEvents") {
            None | Some(Value::Null) => 100,
            Some(v) => match v.as_u64() {
                Some(n) => n.min(1000) as usize,
                None => {
                    return poll_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "maxEvents must be a non-negative integer",
                    )
                }
            },
        };
        let immediately = match request.get("returnImmediately") {
            None | Some(Value::Null) => false,
            Some(&Value::Bool(b)) => b,
            Some(_) => {
                return poll_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "returnImmediately must be a boolean",
                )
            }
        };
        let wait = (!immediately).then_some(self.long_poll);
        let (sets, more) = match self.queue.take(client.client().id(), &ack, max, wait).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event log for a poll");
                let mut response = poll_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the event log is unavailable; poll again",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        };
        let mut map = serde_json::Map::new();
        for set in sets {
            map.insert(set.jti.to_string(), Value::String(set.jws.to_string()));
        }
        json_response(
            StatusCode::OK,
            json!({"sets": Value::Object(map), "moreAvailable": more}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jti: &str) -> Set {
        Set {
            jti: jti.into(),
            jws: format!("jws-{jti}").into(),
        }
    }

    #[test]
    fn unacknowledged_sets_come_back_oldest_first_until_acknowledged() {
        let queue = SetQueue::default();
        for jti in ["a", "b", "c"] {
            queue.push(set(jti));
        }
        let (sets, more) = queue.poll(&HashSet::new(), 2);
        assert_eq!(sets, vec![set("a"), set("b")]);
        assert!(more);
        let (sets, _) = queue.poll(&HashSet::new(), 10);
        assert_eq!(sets.len(), 3, "nothing acknowledged, everything again");
        let ack: HashSet<String> = ["a".to_owned(), "c".to_owned()].into();
        let (sets, more) = queue.poll(&ack, 10);
        assert_eq!(sets, vec![set("b")]);
        assert!(!more);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_retention_expires() {
        let queue = SetQueue::new(2, Duration::from_secs(3600));
        for jti in ["a", "b", "c"] {
            queue.push(set(jti));
        }
        assert_eq!(queue.poll(&HashSet::new(), 10).0, vec![set("b"), set("c")]);
        let queue = SetQueue::new(10, Duration::ZERO);
        queue.push(set("a"));
        assert!(queue.poll(&HashSet::new(), 10).0.is_empty());
    }
}
