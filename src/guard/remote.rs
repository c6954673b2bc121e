//! A guard for resource servers that do not share the store: tokens checked by
//! introspection ([RFC 7662]) at the authorization server, found from its metadata
//! ([RFC 8414]) (feature `remote`).
//!
//! [`RemoteGuard`] is a [`TokenCheck`]: mount it with
//! [`BearerGuardLayer::new(guard)`](super::BearerGuardLayer), which answers as it does for
//! a shared store and puts the token's [`TokenRecord`] in the request's extensions.
//!
//! - **Connections**: one pooled HTTP client (hyper-util, rustls with the web PKI roots),
//!   every call bounded by a timeout.
//! - **One call for many**: concurrent requests carrying the same token share one
//!   introspection call.
//! - **Cache**: answers are kept by the token's hash (never the token) for at most the
//!   configured TTL and never past the token's `exp`; inactive answers for at most 5
//!   seconds; at most `capacity` entries, expired ones dropped first, then the oldest.
//! - **Failure**: the authorization server unreachable, slow or answering an error, and the
//!   token not confirmed within the TTL: [`TokenCheckError`], which the guard answers 503
//!   with `Retry-After`, never a 200.
//! - **Invalidation** by token, grant, client or subject, for revocation events.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_oauth_revoke::guard::{remote::RemoteGuard, BearerGuardLayer};
//!
//! let guard = RemoteGuard::builder("https://as.example.com", "resource-server", "rs-secret")
//!     .cache_ttl(Duration::from_secs(60))
//!     .build()
//!     .unwrap();
//! let api = axum::Router::new()
//!     .route("/api", axum::routing::get(|| async { "hello" }))
//!     .layer(BearerGuardLayer::new(guard));
//! # let _: axum::Router = api;
//! ```
//!
//! [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
//! [RFC 8414]: https://www.rfc-editor.org/rfc/rfc8414

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures_util::future::{FutureExt, Shared};
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

use super::{TokenCheck, TokenCheckError};
use crate::{
    client_auth::encode_basic,
    store::{Clock, Confirmation, GrantId, SystemClock, TokenHash, TokenKind, TokenRecord},
};

/// The longest an inactive answer is kept.
const INACTIVE_TTL: Duration = Duration::from_secs(5);
/// The largest introspection answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a [`RemoteGuard`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteGuardError(String);

impl fmt::Display for RemoteGuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteGuardError {}

/// Builds a [`RemoteGuard`].
#[must_use]
pub struct RemoteGuardBuilder {
    issuer: String,
    client_id: String,
    client_secret: String,
    cache_ttl: Duration,
    capacity: usize,
    timeout: Duration,
    tls: Option<rustls::ClientConfig>,
    clock: Box<dyn Clock>,
}

debug_fields!(RemoteGuardBuilder {
    issuer,
    client_id,
    cache_ttl,
    capacity,
    timeout
});

impl RemoteGuardBuilder {
    setters! {
        /// How long an active answer may be reused (default 60 s; never past the token's `exp`).
        /// A revoked token is refused within this time when no event reaches the guard.
        pub fn cache_ttl(ttl: Duration) => cache_ttl;

        /// The most answers kept (default 10,000, at least 16).
        pub fn capacity(capacity: usize) => capacity = capacity.max(16);

        /// The bound on one call to the authorization server (default 2 s).
        pub fn timeout(timeout: Duration) => timeout;

        /// The TLS configuration for the authorization server (default: the web PKI roots).
        pub fn tls_config(config: rustls::ClientConfig) => tls = Some(config);

        /// The clock the cache's expiry reads (default the system clock); tests pass a
        /// [`ManualClock`](crate::store::ManualClock).
        pub fn clock(clock: impl Clock) => clock = Box::new(clock);
    }

    /// Builds the guard. The authorization server's metadata is read on first use, and again
    /// until it is read once, so the guard starts while the server is down.
    pub fn build(self) -> Result<RemoteGuard, RemoteGuardError> {
        let metadata: Uri = format!(
            "{}/.well-known/oauth-authorization-server",
            self.issuer.trim_end_matches('/')
        )
        .parse()
        .map_err(|e| RemoteGuardError(format!("issuer {:?}: {e}", self.issuer)))?;
        let connector = match self.tls {
            Some(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config),
            None => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        }
        .https_or_http()
        .enable_http1()
        .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let authorization = encode_basic(&self.client_id, &self.client_secret);
        Ok(RemoteGuard {
            inner: Arc::new(Inner {
                client,
                metadata,
                endpoint: OnceLock::new(),
                authorization,
                cache_ttl: self.cache_ttl,
                capacity: self.capacity,
                timeout: self.timeout,
                cache: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
                clock: self.clock,
                calls: AtomicU64::new(0),
            }),
        })
    }
}

/// Introspection at a remote authorization server as a [`TokenCheck`]; see the
/// [module docs](self). Clones share the cache and the connections.
#[derive(Clone)]
pub struct RemoteGuard {
    inner: Arc<Inner>,
}

impl fmt::Debug for RemoteGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteGuard")
            .field("metadata", &self.inner.metadata)
            .field("cached", &self.cached())
            .finish_non_exhaustive()
    }
}

type Answer = Result<Option<TokenRecord>, TokenCheckError>;
type SharedCall = Shared<Pin<Box<dyn Future<Output = Answer> + Send>>>;

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    metadata: Uri,
    endpoint: OnceLock<Uri>,
    authorization: HeaderValue,
    cache_ttl: Duration,
    capacity: usize,
    timeout: Duration,
    cache: Mutex<HashMap<TokenHash, Cached>>,
    in_flight: Mutex<HashMap<TokenHash, SharedCall>>,
    clock: Box<dyn Clock>,
    calls: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    record: Option<TokenRecord>,
    until: SystemTime,
    stored: SystemTime,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RemoteGuard {
    /// A builder for the authorization server `issuer`, authenticating as `client_id` with
    /// `client_secret` (a client the server lets introspect any token).
    pub fn builder(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> RemoteGuardBuilder {
        RemoteGuardBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl: Duration::from_secs(60),
            capacity: 10_000,
            timeout: Duration::from_secs(2),
            tls: None,
            clock: Box::new(SystemClock),
        }
    }

    /// How many answers are cached.
    pub fn cached(&self) -> usize {
        lock(&self.inner.cache).len()
    }

    /// How many introspection calls the guard has made.
    pub fn introspection_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Forgets the answer for one token.
    pub fn invalidate_token(&self, token: &TokenHash) {
        lock(&self.inner.cache).remove(token);
    }

    /// Forgets the answers for every token of a grant.
    pub fn invalidate_grant(&self, grant: GrantId) {
        self.invalidate_where(|r| r.grant == grant);
    }

    /// Forgets the answers for every token of a client.
    pub fn invalidate_client(&self, client_id: &str) {
        self.invalidate_where(|r| &*r.client_id == client_id);
    }

    /// Forgets the answers for every token of a resource owner.
    pub fn invalidate_subject(&self, subject: &str) {
        self.invalidate_where(|r| r.owner.as_deref() == Some(subject));
    }

    fn invalidate_where(&self, matches: impl Fn(&TokenRecord) -> bool) {
        lock(&self.inner.cache).retain(|_, c| !c.record.as_ref().is_some_and(&matches));
    }
}

impl Inner {
    fn cached(&self, hash: &TokenHash) -> Option<Option<TokenRecord>> {
        let now = self.clock.now();
        let cache = lock(&self.cache);
        let entry = cache.get(hash)?;
        (entry.until > now).then(|| entry.record.clone())
    }

    fn store(&self, hash: TokenHash, record: Option<TokenRecord>) {
        let now = self.clock.now();
        let ttl = if record.is_some() {
            self.cache_ttl
        } else {
            self.cache_ttl.min(INACTIVE_TTL)
        };
        let mut until = now + ttl;
        if let Some(record) = &record {
            until = until.min(record.expires_at);
        }
        let mut cache = lock(&self.cache);
        if cache.len() >= self.capacity && !cache.contains_key(&hash) {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= self.capacity {
                // Still full of live answers: drop the oldest eighth.
                let mut stored: Vec<SystemTime> = cache.values().map(|c| c.stored).collect();
                let cut = (self.capacity / 8).max(1);
                stored.select_nth_unstable(cut - 1);
                let oldest = stored[cut - 1];
                cache.retain(|_, c| c.stored > oldest);
            }
        }
        cache.insert(
            hash,
            Cached {
                record,
                until,
                stored: now,
            },
        );
    }

    /// The introspection endpoint, read from the metadata until that succeeds once.
    async fn endpoint(&self) -> Result<Uri, TokenCheckError> {
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint.clone());
        }
        let request = Request::get(self.metadata.clone())
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|_| TokenCheckError)?;
        let json = self.call(request, "metadata").await?;
        let endpoint = json
            .get("introspection_endpoint")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Uri>().ok())
            .ok_or_else(|| {
                tracing::error!("the metadata has no valid introspection_endpoint");
                TokenCheckError
            })?;
        Ok(self.endpoint.get_or_init(|| endpoint).clone())
    }

    /// One call to the authorization server, bounded by the timeout: its JSON answer.
    async fn call(
        &self,
        request: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<serde_json::Value, TokenCheckError> {
        let answer = tokio::time::timeout(self.timeout, async {
            let response = self.client.request(request).await.map_err(|err| {
                tracing::warn!(error = %err, what, "authorization server unreachable");
                TokenCheckError
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| TokenCheckError)?
                .to_bytes();
            if status != StatusCode::OK {
                tracing::warn!(
                    status = status.as_u16(),
                    what,
                    "authorization server refused"
                );
                return Err(TokenCheckError);
            }
            serde_json::from_slice(&body).map_err(|_| {
                tracing::warn!(what, "authorization server answered no JSON");
                TokenCheckError
            })
        })
        .await;
        answer.unwrap_or_else(|_| {
            tracing::warn!(what, "authorization server timed out");
            Err(TokenCheckError)
        })
    }

    /// Asks the authorization server about `token`.
    async fn introspect(&self, token: &str) -> Answer {
        let endpoint = self.endpoint().await?;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(endpoint)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| TokenCheckError)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let json = self.call(request, "introspection").await?;
        Ok(record_of(&json, self.clock.now()))
    }
}

/// The record of an active access token, from an introspection answer.
fn record_of(json: &serde_json::Value, now: SystemTime) -> Option<TokenRecord> {
    if !json.get("active")?.as_bool()? {
        return None;
    }
    // A refresh token is no bearer credential.
    if json.get("token_type").and_then(|t| t.as_str()) == Some("refresh_token") {
        return None;
    }
    let client_id = json.get("client_id")?.as_str()?;
    let exp = UNIX_EPOCH + Duration::from_secs(json.get("exp")?.as_u64()?);
    if exp <= now {
        return None;
    }
    let grant = json
        .get("grant_id")
        .and_then(|g| g.as_str())
        .and_then(|g| u64::from_str_radix(g, 16).ok())
        .map_or(GrantId::from_u64(0), GrantId::from_u64);
    let mut record = TokenRecord::new(TokenKind::AccessToken, client_id, grant, exp);
    if let Some(iat) = json.get("iat").and_then(|i| i.as_u64()) {
        record.issued_at = UNIX_EPOCH + Duration::from_secs(iat);
    }
    // `sub` is the user, or the client itself for client_credentials.
    record.owner = json
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|sub| *sub != client_id)
        .map(Into::into);
    // A binding this guard cannot read is a token it cannot confirm: not admitted.
    if let Some(cnf) = json.get("cnf") {
        let mut members = cnf.as_object()?.iter();
        let (member, value) = members.next()?;
        if members.next().is_some() {
            return None;
        }
        record.confirmation = Some(Confirmation::from_member(member, value.as_str()?)?);
    }
    Some(record)
}

impl TokenCheck for RemoteGuard {
    fn check(&self, token: &str) -> impl Future<Output = Answer> + Send + 'static {
        let hash = TokenHash::of(token);
        let cached = self.inner.cached(&hash);
        let call = cached.is_none().then(|| {
            let mut in_flight = lock(&self.inner.in_flight);
            in_flight
                .entry(hash)
                .or_insert_with(|| {
                    // The first request for this token asks; the others wait for its answer.
                    let inner = self.inner.clone();
                    let token = token.to_owned();
                    let call: Pin<Box<dyn Future<Output = Answer> + Send>> = Box::pin(async move {
                        let answer = inner.introspect(&token).await;
                        if let Ok(record) = &answer {
                            inner.store(hash, record.clone());
                        }
                        lock(&inner.in_flight).remove(&hash);
                        answer
                    });
                    call.shared()
                })
                .clone()
        });
        async move {
            match (cached, call) {
                (Some(record), _) => Ok(record),
                (None, Some(call)) => call.await,
                (None, None) => Err(TokenCheckError),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_introspection_answers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let active = serde_json::json!({
            "active": true, "client_id": "app", "token_type": "Bearer", "exp": 2_000,
            "iat": 900, "sub": "alice", "grant_id": "000000000000002a"
        });
        let record = record_of(&active, now).unwrap();
        assert_eq!(&*record.client_id, "app");
        assert_eq!(record.owner.as_deref(), Some("alice"));
        assert_eq!(record.grant, GrantId::from_u64(42));
        assert_eq!(record.issued_at, UNIX_EPOCH + Duration::from_secs(900));
        let mut cc = active.clone();
        cc["sub"] = "app".into();
        assert_eq!(record_of(&cc, now).unwrap().owner, None);
        let jkt = Confirmation::Jkt([7; 32]);
        let mut bound = active.clone();
        bound["cnf"] = serde_json::json!({"jkt": jkt.to_base64url()});
        assert_eq!(record_of(&bound, now).unwrap().confirmation, Some(jkt));
        for inactive in [
            serde_json::json!({"active": false}),
            serde_json::json!({"active": "true", "client_id": "app", "exp": 2_000}),
            serde_json::json!({"active": true, "client_id": "app", "exp": 999}),
            serde_json::json!({"active": true, "client_id": "app"}),
            serde_json::json!({"active": true, "client_id": "app", "exp": 2_000, "token_type": "refresh_token"}),
            serde_json::json!({"active": true, "client_id": "app", "exp": 2_000, "cnf": {"x5t": "AAAA"}}),
            serde_json::json!({"active": true, "client_id": "app", "exp": 2_000, "cnf": {"jkt": "short"}}),
        ] {
            assert!(record_of(&inactive, now).is_none(), "{inactive}");
        }
    }
}
