//! The Redis token store: revocation state shared by many nodes.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_oauth_revoke::store::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = RedisStore::builder()
//!     .key_prefix("auth-prod")
//!     .operation_timeout(Duration::from_millis(1500))
//!     .connect("redis://127.0.0.1:6379")
//!     .await
//!     .expect("Redis answers");
//! # let _ = store;
//! # }
//! ```

use std::{
    fmt,
    future::Future,
    sync::{Arc, LazyLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt as _;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    Client, IntoConnectionInfo, Script,
};
use sha2::{Digest, Sha256};

use crate::events::{Events, Initiator, RevocationEvent, Revoked};

use super::{
    hex_string, GrantId, IssueError, OwnerGrants, RevocationOutcome, RevocationRequest,
    RevocationScope, StoreError, TokenHash, TokenKind, TokenRecord, TokenStore,
};

/// A [`TokenStore`] in Redis, so that a token revoked on one node is refused by every
/// other node at once.
///
/// # Key layout
///
/// Every key of a store starts with the hash tag `{P}`, where `P` is the
/// [key prefix](RedisStoreBuilder::key_prefix) (default `oauth-revoke`):
///
/// | key | type | fields | expires |
/// |---|---|---|---|
/// | `{P}:t:<token hash>` | hash | `k` kind (`a`/`r`), `g` grant, `e` expiry, `i` issue time (Unix seconds) | with the token |
/// | `{P}:g:<grant>` | hash | `c` client id, `o` owner (if any), `e` latest expiry of its tokens, `r` = `1` once revoked, `ct` when it was created (µs, Redis's clock) | with its longest-lived token; once revoked, at the later of that and [`tombstone_ttl`](RedisStoreBuilder::tombstone_ttl) from revocation |
/// | `{P}:o:<owner digest>` | sorted set | grant ids, scored by their latest expiry | with its longest-lived grant |
/// | `{P}:ci:<client SHA-1>` | sorted set | a client's grant ids, scored by their latest expiry (to count what [`revoke_client`](TokenStore::revoke_client) revoked) | with its longest-lived grant |
/// | `{P}:cs:<subject SHA-1>`, `{P}:cc:<client SHA-1>` | string | a bulk revocation's cut-off (µs, Redis's clock): grants created at or before it are revoked | with the longest-lived grant it covered, at least [`tombstone_ttl`](RedisStoreBuilder::tombstone_ttl) |
///
/// Events: every script that revokes also publishes the [event](crate::events) on the
/// channel `{P}:events` (JSON, no token value), in the same atomic step; each store relays
/// that channel to its [`events`](TokenStore::events) subscribers, so every node hears every
/// node. Publishing is at most once: a node that lost its connection to Redis misses what
/// was published meanwhile (it logs the reconnection).
///
/// `<token hash>` is [`TokenHash::to_hex`] (a token is never sent to Redis), `<grant>` is
/// the 16 hex digits of the [`GrantId`], and `<owner digest>` the SHA-256 of the owner name
/// in hex (the owner's name itself is kept only inside its grants' hashes, to answer
/// [`inspect`](TokenStore::inspect)). Every key carries a TTL, so Redis holds nothing past
/// the life of the tokens it describes.
///
/// Revoking a grant sets one flag (`r`) that every token of it consults, so the cascade
/// costs one write whether the grant holds one token or ten thousand.
///
/// # Atomicity and round trips
///
/// Each operation is one Lua script run with `EVALSHA` (the script is loaded on the first
/// `NOSCRIPT` answer, e.g. after a Redis restart): one round trip, atomic, cascade included.
/// Registering a token and revoking its grant are both scripts on the grant's key, so they
/// are serialised by Redis: the token is either refused or revoked with the grant.
///
/// # Redis Cluster
///
/// A script may only touch keys of one slot. [`inspect`](TokenStore::inspect) and
/// [`revoke`](TokenStore::revoke) know only a token's hash, so a token key's slot can
/// depend on nothing else; yet the token must share its slot with its grant (the cascade
/// flag), and so with every other token of that grant, whatever their hashes:
/// only a constant slot satisfies both. Owner-wide revocation likewise needs all grants of
/// an owner in one slot. So all keys of one store share one hash tag, `{P}`, and therefore
/// one slot: every operation, cascade and owner-wide revocation included, stays one atomic
/// script on one node. On a cluster, one store thus lives on one shard (with its replicas
/// for fail-over); spread load by giving tenants distinct prefixes. The scripts declare the
/// key they start from and derive the others (a token's grant, an owner's grants) with the
/// same hash tag, so every key they touch lies in the declared slot.
///
/// Tested against a standalone Redis 7.0 only; the cluster layout follows from the hash
/// tags above but has not been run against a Redis Cluster.
///
/// # Failures
///
/// Every operation is bounded by [`operation_timeout`](RedisStoreBuilder::operation_timeout)
/// (default 2 s), connection attempts by
/// [`connection_timeout`](RedisStoreBuilder::connection_timeout) (500 ms) and
/// [`reconnect_attempts`](RedisStoreBuilder::reconnect_attempts) (2): while Redis is
/// unreachable, operations fail fast with a [`StoreError`]
/// (which the revocation endpoint answers with 503 `temporarily_unavailable` and
/// `Retry-After`); the connection is re-established in the background, so the store
/// recovers by itself when Redis returns. An operation that timed out may or may not have
/// been applied; it is never reported as done.
///
/// # Operating Redis
///
/// - `maxmemory-policy noeviction`: every key has a TTL, so a `volatile-*` or `allkeys-*`
///   policy could evict a revoked grant's tombstone under memory pressure.
/// - A token unknown to Redis is inactive, so losing Redis's data (a restart without
///   persistence) fails closed: every token then reads as revoked. Use replication or AOF
///   where that is not acceptable.
/// - Expiry times are kept with one-second precision. Expiry is judged by this node's clock
///   (`now` is sent with each script), the TTLs by Redis's clock: keep clocks in sync.
///
/// ```no_run
/// use tower_oauth_revoke::{
///     client_auth::{Client, MemoryClientRegistry},
///     store::RedisStore,
///     RevocationEndpoint,
/// };
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = RedisStore::builder()
///     .key_prefix("auth-prod")
///     .connect("redis://127.0.0.1:6379")
///     .await
///     .expect("Redis answers");
/// let revoke = RevocationEndpoint::builder(MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]), store)
///     .build()
///     .expect("valid configuration");
/// # let _ = revoke;
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    config: Arc<Config>,
    events: Events,
}

#[derive(Debug)]
struct Config {
    /// `{P}:`, the start of every key.
    tag: String,
    operation_timeout: Duration,
    tombstone_secs: u64,
    /// This store's id in the events it publishes (the last argument of every script that
    /// revokes).
    node: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password: never shown.
        f.debug_struct("RedisStore")
            .field("key_tag", &self.config.tag)
            .field("operation_timeout", &self.config.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    prefix: String,
    operation_timeout: Duration,
    connection_timeout: Duration,
    reconnect_attempts: usize,
    tombstone_ttl: Duration,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: "oauth-revoke".to_owned(),
            operation_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_millis(500),
            reconnect_attempts: 2,
            tombstone_ttl: Duration::from_secs(3600),
        }
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `oauth-revoke`): give tenants, environments and
    /// tests their own, so that they never collide. It becomes the hash tag `{prefix}`.
    ///
    /// # Panics
    ///
    /// If `prefix` is empty or contains `{` or `}`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        assert!(
            !prefix.is_empty() && !prefix.contains(['{', '}']),
            "a Redis key prefix must be non-empty and free of braces"
        );
        self.prefix = prefix;
        self
    }

    /// The longest an operation may take, reconnection included (default 2 s); past it the
    /// operation fails with a [`StoreError`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default 500 ms).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How many times a lost connection is retried, with exponential back-off from 50 ms,
    /// before the waiting operations fail (default 2); the next operation starts a new
    /// round.
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// The least time a revoked grant is remembered (default one hour), so that a token
    /// registered into it later is refused; a grant whose tokens live longer is remembered
    /// until the last of them expires.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }

    fn parts(
        self,
        info: impl IntoConnectionInfo,
    ) -> Result<(Client, ConnectionManagerConfig, Config), StoreError> {
        let info = info.into_connection_info().map_err(StoreError::new)?;
        let client = Client::open(info).map_err(StoreError::new)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.operation_timeout))
            .set_number_of_retries(self.reconnect_attempts)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let config = Config {
            tag: format!("{{{}}}:", self.prefix),
            operation_timeout: self.operation_timeout,
            tombstone_secs: self.tombstone_ttl.as_secs().max(1),
            node: crate::store::generate_token(),
        };
        Ok((client, manager, config))
    }

    /// Connects to Redis (e.g. `redis://127.0.0.1:6379`, `redis://:password@host/2`);
    /// fails if it does not answer within the operation timeout.
    pub async fn connect(self, info: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        let (client, manager, config) = self.parts(info)?;
        let timeout = config.operation_timeout;
        let conn = tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), manager),
        )
        .await
        .map_err(|_| StoreError::new("timed out connecting to Redis"))?
        .map_err(StoreError::new)?;
        Ok(RedisStore::assemble(conn, config, client))
    }

    /// A store that connects on its first operation, so that a node can start while Redis
    /// is down. Fails only on an invalid connection address.
    ///
    /// Must be called within a Tokio runtime.
    pub fn connect_lazy(self, info: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        let (client, manager, config) = self.parts(info)?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(StoreError::new)?;
        Ok(RedisStore::assemble(conn, config, client))
    }
}

impl RedisStore {
    fn assemble(conn: ConnectionManager, config: Config, client: Client) -> Self {
        let config = Arc::new(config);
        let events = Events::default();
        // Every node hears every node's events: the scripts that revoke publish them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(relay_events(
                client,
                Arc::downgrade(&config),
                events.clone(),
            ));
        }
        RedisStore {
            conn,
            config,
            events,
        }
    }

    /// A builder, to set the key prefix and timeouts before connecting.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects with the default configuration (key prefix `oauth-revoke`).
    pub async fn connect(info: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::builder().connect(info).await
    }

    /// The start of every key of this store, `{prefix}:`.
    pub fn key_tag(&self) -> &str {
        &self.config.tag
    }

    fn token_key(&self, token: &TokenHash) -> String {
        format!("{}t:{}", self.config.tag, token.to_hex())
    }

    fn grant_key(&self, grant: GrantId) -> String {
        format!("{}g:{grant}", self.config.tag)
    }

    fn owner_key(&self, owner: &str) -> String {
        format!(
            "{}o:{}",
            self.config.tag,
            hex_string(&Sha256::digest(owner.as_bytes()))
        )
    }

    /// Runs one script invocation under the operation timeout.
    async fn run<T, F>(&self, call: impl FnOnce(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.config.operation_timeout, call(self.conn.clone())).await {
            Ok(result) => result.map_err(StoreError::new),
            Err(_) => Err(StoreError::new("Redis did not answer in time")),
        }
    }
}

fn now_secs() -> u64 {
    to_secs(SystemTime::now())
}

fn to_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn kind_code(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::AccessToken => "a",
        TokenKind::RefreshToken => "r",
    }
}

fn kind_of(code: &str) -> Option<TokenKind> {
    match code {
        "a" => Some(TokenKind::AccessToken),
        "r" => Some(TokenKind::RefreshToken),
        _ => None,
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::new(format!("malformed {what} in Redis"))
}

/// Who asked, as the scripts carry it.
fn initiator_code(by: &Initiator) -> String {
    match by {
        Initiator::Client(id) => format!("c:{id}"),
        Initiator::Owner(name) => format!("o:{name}"),
        Initiator::Admin(id) => format!("a:{id}"),
        Initiator::System => "s".to_owned(),
    }
}

fn initiator_of(code: &str) -> Initiator {
    match code.split_once(':') {
        Some(("c", id)) => Initiator::Client(id.into()),
        Some(("o", name)) => Initiator::Owner(name.into()),
        Some(("a", id)) => Initiator::Admin(id.into()),
        _ => Initiator::System,
    }
}

/// An event as a script publishes it (`cjson`; times as strings of µs, which `cjson` would
/// round).
fn decode_event(payload: &str, node: &str) -> Option<RevocationEvent> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    let grant = || {
        text("g")
            .and_then(|g| u64::from_str_radix(g, 16).ok())
            .map(GrantId::from_u64)
    };
    let revoked = match text("k")? {
        "t" => Revoked::Token {
            token: TokenHash::from_hex(text("t")?)?,
            kind: kind_of(text("tk")?)?,
            grant: grant()?,
        },
        "g" => Revoked::Grant { grant: grant()? },
        "s" => Revoked::Subject,
        "c" => Revoked::Client,
        _ => return None,
    };
    let micros: u64 = text("at")?.parse().ok()?;
    Some(RevocationEvent {
        revoked,
        client_id: text("c").map(Into::into),
        jti: text("j").map(Into::into),
        subject: text("o").map(Into::into),
        initiator: initiator_of(text("b").unwrap_or("s")),
        at: UNIX_EPOCH + Duration::from_micros(micros),
        expires_at: text("x")
            .and_then(|x| x.parse::<u64>().ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
        relayed: text("n") != Some(node),
    })
}

/// Relays the events every node publishes to this node's subscribers, reconnecting with
/// back-off; ends when the store and all its clones are gone.
async fn relay_events(client: Client, config: std::sync::Weak<Config>, events: Events) {
    let mut delay = Duration::from_millis(50);
    loop {
        let Some((channel, node)) = config
            .upgrade()
            .map(|c| (format!("{}events", c.tag), c.node.clone()))
        else {
            return;
        };
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    delay = Duration::from_millis(50);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if config.strong_count() == 0 {
                            return;
                        }
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        match decode_event(&payload, &node) {
                            Some(event) => events.emit(event),
                            None => tracing::warn!("a malformed revocation event in Redis"),
                        }
                    }
                }
                tracing::warn!("lost the Redis revocation event channel; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to Redis revocation events"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Lua shared by the scripts: the time in µs (Redis's clock, the same for every node),
/// whether a bulk revocation covers a grant, and publishing an event.
const LUA_COMMON: &str = r"
local function now_us()
  local tm = redis.call('TIME')
  return tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
local function cut(tag, client, owner, created)
  created = tonumber(created) or 0
  if client then
    local t = tonumber(redis.call('GET', tag .. 'cc:' .. redis.sha1hex(client)) or '-1')
    if created <= t then return true end
  end
  if owner then
    local t = tonumber(redis.call('GET', tag .. 'cs:' .. redis.sha1hex(owner)) or '-1')
    if created <= t then return true end
  end
  return false
end
local function publish(tag, ev)
  ev.at = string.format('%.0f', now_us())
  ev.n = ARGV[#ARGV]
  redis.call('PUBLISH', tag .. 'events', cjson.encode(ev))
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{LUA_COMMON}\n{body}"))
}

/// KEYS: token, grant, [owner index]. ARGV: now, expiry, kind, grant id, client, issued at,
/// key tag, [owner]. Returns 0 if the grant is revoked, 1 once registered.
static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, exp = tonumber(ARGV[1]), tonumber(ARGV[2])
local g = redis.call('HMGET', KEYS[2], 'r', 'e', 'o', 'c', 'ct')
if g[1] == '1' then return 0 end
if exp <= now then return 1 end
local ge, owner, client = tonumber(g[2]), g[3], g[4]
if ge ~= nil and ge > now and cut(ARGV[7], g[4], g[3], g[5]) then return 0 end
local grown = false
if ge == nil or ge <= now then
  redis.call('DEL', KEYS[2])
  local ct = string.format('%.0f', now_us())
  if #KEYS == 3 then
    redis.call('HSET', KEYS[2], 'c', ARGV[5], 'e', exp, 'o', ARGV[8], 'ct', ct)
    owner = ARGV[8]
  else
    redis.call('HSET', KEYS[2], 'c', ARGV[5], 'e', exp, 'ct', ct)
    owner = false
  end
  ge, client, grown = exp, ARGV[5], true
elseif exp > ge then
  redis.call('HSET', KEYS[2], 'e', exp)
  ge, grown = exp, true
end
-- The client's index is scored by the grant's latest expiry, as the owner's: a client's
-- cut-off lives as long as the longest-lived grant it covers.
if grown and client then
  local ci = ARGV[7] .. 'ci:' .. redis.sha1hex(client)
  redis.call('ZADD', ci, ge, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', ci, '-inf', now)
  local last = redis.call('ZRANGE', ci, -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', ci, last[2])
end
redis.call('EXPIREAT', KEYS[2], ge)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'k', ARGV[3], 'g', ARGV[4], 'e', exp, 'i', ARGV[6])
redis.call('EXPIREAT', KEYS[1], exp)
if #KEYS == 3 and owner == ARGV[8] then
  redis.call('ZADD', KEYS[3], ge, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', KEYS[3], last[2])
end
return 1
",
    )
});

/// KEYS: token. ARGV: now, key tag. Returns nil, or {kind, grant, expiry, issued at,
/// client[, owner]} (issued at `0` for a token registered before it was kept).
static INSPECT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local t = redis.call('HMGET', KEYS[1], 'k', 'g', 'e', 'i')
if not t[1] or tonumber(t[3]) <= tonumber(ARGV[1]) then return false end
local g = redis.call('HMGET', ARGV[2] .. 'g:' .. t[2], 'c', 'r', 'o', 'ct')
if not g[1] or g[2] == '1' or cut(ARGV[2], g[1], g[3], g[4]) then return false end
local i = t[4] or '0'
if g[3] then return {t[1], t[2], t[3], i, g[1], g[3]} end
return {t[1], t[2], t[3], i, g[1]}
",
    )
});

/// KEYS: token. ARGV: now, key tag, client, access token scope (`t`/`g`), tombstone TTL,
/// token hash (hex), jti (or empty), node. Returns {0, ''} not active, {1, kind} revoked alone,
/// {2, kind} grant revoked, {3, ''} another client's.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local t = redis.call('HMGET', KEYS[1], 'k', 'g', 'e')
if not t[1] or tonumber(t[3]) <= now then return {0, ''} end
local gk = ARGV[2] .. 'g:' .. t[2]
local g = redis.call('HMGET', gk, 'c', 'r', 'e', 'o', 'ct')
if not g[1] or g[2] == '1' or cut(ARGV[2], g[1], g[4], g[5]) then return {0, ''} end
if g[1] ~= ARGV[3] then return {3, ''} end
local ev = {g = t[2], c = g[1], o = g[4] or '', j = ARGV[7], b = 'c:' .. ARGV[3]}
if t[1] == 'r' or ARGV[4] == 'g' then
  redis.call('HSET', gk, 'r', '1')
  redis.call('EXPIREAT', gk, math.max(tonumber(g[3]) or 0, now + tonumber(ARGV[5])))
  ev.k, ev.x = 'g', g[3]
  publish(ARGV[2], ev)
  return {2, t[1]}
end
redis.call('DEL', KEYS[1])
ev.k, ev.t, ev.tk, ev.x = 't', ARGV[6], t[1], t[3]
publish(ARGV[2], ev)
return {1, t[1]}
",
    )
});

/// KEYS: grant. ARGV: now, tombstone TTL, key tag, grant id, node.
static REVOKE_GRANT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local g = redis.call('HMGET', KEYS[1], 'e', 'r', 'c', 'o', 'ct')
local e = tonumber(g[1]) or 0
redis.call('HSET', KEYS[1], 'r', '1')
redis.call('EXPIREAT', KEYS[1], math.max(e, now + tonumber(ARGV[2])))
if g[3] and g[2] ~= '1' and e > now and not cut(ARGV[3], g[3], g[4], g[5]) then
  publish(ARGV[3], {k = 'g', g = ARGV[4], c = g[3], o = g[4] or '', b = 's', x = g[1]})
end
return 1
",
    )
});

/// KEYS: owner index. ARGV: now, key tag, client, tombstone TTL, owner, initiator, node. Returns
/// how many active grants were revoked.
static REVOKE_CLIENT_FOR_OWNER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local revoked = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local gk = ARGV[2] .. 'g:' .. id
  local g = redis.call('HMGET', gk, 'c', 'r', 'e', 'o', 'ct')
  if g[1] == ARGV[3] and g[2] ~= '1' then
    local e = tonumber(g[3]) or 0
    redis.call('HSET', gk, 'r', '1')
    redis.call('EXPIREAT', gk, math.max(e, now + tonumber(ARGV[4])))
    if e > now and not cut(ARGV[2], g[1], g[4], g[5]) then
      revoked = revoked + 1
      publish(ARGV[2], {k = 'g', g = id, c = g[1], o = ARGV[5], b = ARGV[6], x = g[3]})
    end
  end
end
return revoked
",
    )
});

/// KEYS: owner index (for a subject; any key for a client). ARGV: now, key tag, `s` or `c`,
/// name, initiator, tombstone TTL, node. Writes the cut-off, then counts the grants of the index
/// it revoked. Returns that count.
static REVOKE_BULK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, tag, subject = tonumber(ARGV[1]), ARGV[2], ARGV[3] == 's'
local us = now_us()
local ck = tag .. (subject and 'cs:' or 'cc:') .. redis.sha1hex(ARGV[4])
local previous = tonumber(redis.call('GET', ck) or '-1')
local index = subject and KEYS[1] or (tag .. 'ci:' .. redis.sha1hex(ARGV[4]))
-- The cut-off lives as long as the longest-lived grant it covers.
local ttl = tonumber(ARGV[6])
local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
if last[2] then ttl = math.max(ttl, tonumber(last[2]) - now + 1) end
-- Whether it revokes anything: the first live grant found ends the look (at most 256).
local live = false
local ids = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf', 'LIMIT', 0, 256)
for _, id in ipairs(ids) do
  local g = redis.call('HMGET', tag .. 'g:' .. id, 'c', 'r', 'e', 'o', 'ct')
  local ct = tonumber(g[5]) or 0
  if g[1] and g[2] ~= '1' and (tonumber(g[3]) or 0) > now and ct > previous
     and not cut(tag, g[1], g[4], g[5]) then
    live = true
    break
  end
end
if #ids == 256 then live = true end
local cutoff = string.format('%.0f', us)
redis.call('SET', ck, cutoff, 'EX', ttl)
if live then
  local ev = {k = subject and 's' or 'c', b = ARGV[5]}
  if subject then ev.o = ARGV[4] else ev.c = ARGV[4] end
  publish(tag, ev)
end
return {cutoff, string.format('%.0f', previous), index}
",
    )
});

/// KEYS: an owner or client index. ARGV: now, key tag, cut-off, previous cut-off, offset,
/// limit. Counts the grants of one page of the index that the cut-off revoked (live,
/// created after the previous cut-off and at or before this one, covered by no other).
/// Returns {count, scanned}.
static COUNT_BULK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, tag = tonumber(ARGV[1]), ARGV[2]
local cutoff, previous = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'LIMIT', ARGV[5], ARGV[6])
local revoked = 0
for _, id in ipairs(ids) do
  local g = redis.call('HMGET', tag .. 'g:' .. id, 'c', 'r', 'e', 'o', 'ct')
  local ct = tonumber(g[5]) or 0
  if g[1] and g[2] ~= '1' and (tonumber(g[3]) or 0) > now and ct > previous and ct <= cutoff then
    -- Covered by this cut-off; not by another scope's earlier one.
    local other = -1
    if ARGV[7] == 's' then
      other = tonumber(redis.call('GET', tag .. 'cc:' .. redis.sha1hex(g[1])) or '-1')
    elseif g[4] then
      other = tonumber(redis.call('GET', tag .. 'cs:' .. redis.sha1hex(g[4])) or '-1')
    end
    if ct > other or other >= cutoff then revoked = revoked + 1 end
  end
end
return {revoked, #ids}
",
    )
});

/// KEYS: owner index. ARGV: now, key tag. Returns {client, count, client, count, ...}.
static CLIENTS_OF_OWNER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local counts, order = {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local g = redis.call('HMGET', ARGV[2] .. 'g:' .. id, 'c', 'r', 'e', 'o', 'ct')
  if g[1] and g[2] ~= '1' and (tonumber(g[3]) or 0) > now and not cut(ARGV[2], g[1], g[4], g[5]) then
    if not counts[g[1]] then
      counts[g[1]] = 0
      table.insert(order, g[1])
    end
    counts[g[1]] = counts[g[1]] + 1
  end
end
local out = {}
for _, c in ipairs(order) do
  table.insert(out, c)
  table.insert(out, counts[c])
end
return out
",
    )
});

impl RedisStore {
    /// One atomic write (the cut-off, and its event when it revoked anything); then, the
    /// revocation done, a count of what it revoked, a page of the index at a time so that
    /// Redis is never held for long. The count is exact when the scope is quiet meanwhile.
    async fn revoke_bulk(
        &self,
        name: &str,
        subject: bool,
        by: Initiator,
    ) -> Result<usize, StoreError> {
        let key = if subject {
            self.owner_key(name)
        } else {
            format!("{}ci:-", self.config.tag)
        };
        let config = &self.config;
        let by = initiator_code(&by);
        let now = now_secs();
        let kind = if subject { "s" } else { "c" };
        let (cutoff, previous, index): (String, String, String) = self
            .run(|mut conn| async move {
                REVOKE_BULK
                    .key(&key)
                    .arg(now)
                    .arg(&config.tag)
                    .arg(kind)
                    .arg(name)
                    .arg(&by)
                    .arg(config.tombstone_secs)
                    .arg(&config.node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        const PAGE: usize = 1000;
        let mut revoked = 0;
        let mut offset = 0;
        loop {
            let (index, cutoff, previous) = (&index, &cutoff, &previous);
            let (count, scanned): (usize, usize) = self
                .run(|mut conn| async move {
                    COUNT_BULK
                        .key(index)
                        .arg(now)
                        .arg(&config.tag)
                        .arg(cutoff)
                        .arg(previous)
                        .arg(offset)
                        .arg(PAGE)
                        .arg(kind)
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            revoked += count;
            offset += scanned;
            if scanned < PAGE {
                return Ok(revoked);
            }
        }
    }
}

impl TokenStore for RedisStore {
    fn events(&self) -> &Events {
        &self.events
    }

    async fn issue(&self, token: TokenHash, record: TokenRecord) -> Result<(), IssueError> {
        let token_key = self.token_key(&token);
        let grant_key = self.grant_key(record.grant);
        let owner_key = record.owner.as_deref().map(|o| self.owner_key(o));
        let tag = &self.config.tag;
        let registered: i64 = self
            .run(|mut conn| async move {
                let mut call = ISSUE.prepare_invoke();
                call.key(&token_key).key(&grant_key);
                if let Some(owner_key) = &owner_key {
                    call.key(owner_key);
                }
                call.arg(now_secs())
                    .arg(to_secs(record.expires_at))
                    .arg(kind_code(record.kind))
                    .arg(record.grant.to_string())
                    .arg(&*record.client_id)
                    .arg(to_secs(record.issued_at))
                    .arg(tag);
                if let Some(owner) = &record.owner {
                    call.arg(&**owner);
                }
                call.invoke_async(&mut conn).await
            })
            .await?;
        match registered {
            1 => Ok(()),
            _ => Err(IssueError::GrantRevoked),
        }
    }

    async fn inspect(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let key = self.token_key(token);
        let tag = &self.config.tag;
        let found: Option<Vec<String>> = self
            .run(|mut conn| async move {
                INSPECT
                    .key(&key)
                    .arg(now_secs())
                    .arg(tag)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some(fields) = found else {
            return Ok(None);
        };
        let [kind, grant, expires, issued, client, rest @ ..] = fields.as_slice() else {
            return Err(malformed("token record"));
        };
        let kind = kind_of(kind).ok_or_else(|| malformed("token kind"))?;
        let grant = u64::from_str_radix(grant, 16).map_err(|_| malformed("grant id"))?;
        let expires: u64 = expires.parse().map_err(|_| malformed("token expiry"))?;
        let issued: u64 = issued.parse().map_err(|_| malformed("token issue time"))?;
        Ok(Some(TokenRecord {
            kind,
            client_id: client.as_str().into(),
            grant: GrantId::from_u64(grant),
            owner: rest.first().map(|o| o.as_str().into()),
            expires_at: UNIX_EPOCH + Duration::from_secs(expires),
            issued_at: UNIX_EPOCH + Duration::from_secs(issued),
        }))
    }

    async fn revoke(
        &self,
        token: &TokenHash,
        request: RevocationRequest<'_>,
    ) -> Result<RevocationOutcome, StoreError> {
        let key = self.token_key(token);
        let config = &self.config;
        let scope = match request.access_token_scope {
            RevocationScope::Token => "t",
            RevocationScope::Grant => "g",
        };
        let client = request.client_id;
        let hex = token.to_hex();
        let jti = request.jti.unwrap_or("");
        let (code, kind): (i64, String) = self
            .run(|mut conn| async move {
                REVOKE
                    .key(&key)
                    .arg(now_secs())
                    .arg(&config.tag)
                    .arg(client)
                    .arg(scope)
                    .arg(config.tombstone_secs)
                    .arg(&hex)
                    .arg(jti)
                    .arg(&config.node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let kind = || kind_of(&kind).ok_or_else(|| malformed("token kind"));
        Ok(match code {
            0 => RevocationOutcome::NotActive,
            1 => RevocationOutcome::Revoked {
                kind: kind()?,
                scope: RevocationScope::Token,
            },
            2 => RevocationOutcome::Revoked {
                kind: kind()?,
                scope: RevocationScope::Grant,
            },
            3 => RevocationOutcome::IssuedToAnotherClient,
            _ => return Err(malformed("revocation outcome")),
        })
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        let key = self.grant_key(grant);
        let tombstone = self.config.tombstone_secs;
        let (tag, node) = (&self.config.tag, &self.config.node);
        let _: i64 = self
            .run(|mut conn| async move {
                REVOKE_GRANT
                    .key(&key)
                    .arg(now_secs())
                    .arg(tombstone)
                    .arg(tag)
                    .arg(grant.to_string())
                    .arg(node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn revoke_client_for_owner(
        &self,
        owner: &str,
        client_id: &str,
        by: Initiator,
    ) -> Result<usize, StoreError> {
        let key = self.owner_key(owner);
        let config = &self.config;
        let by = initiator_code(&by);
        let revoked: usize = self
            .run(|mut conn| async move {
                REVOKE_CLIENT_FOR_OWNER
                    .key(&key)
                    .arg(now_secs())
                    .arg(&config.tag)
                    .arg(client_id)
                    .arg(config.tombstone_secs)
                    .arg(owner)
                    .arg(&by)
                    .arg(&config.node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(revoked)
    }

    async fn revoke_subject(&self, subject: &str, by: Initiator) -> Result<usize, StoreError> {
        self.revoke_bulk(subject, true, by).await
    }

    async fn revoke_client(&self, client_id: &str, by: Initiator) -> Result<usize, StoreError> {
        self.revoke_bulk(client_id, false, by).await
    }

    async fn clients_of_owner(&self, owner: &str) -> Result<Vec<OwnerGrants>, StoreError> {
        let key = self.owner_key(owner);
        let tag = &self.config.tag;
        let pairs: Vec<(String, usize)> = self
            .run(|mut conn| async move {
                CLIENTS_OF_OWNER
                    .key(&key)
                    .arg(now_secs())
                    .arg(tag)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let mut out: Vec<OwnerGrants> = pairs
            .into_iter()
            .map(|(client, grants)| OwnerGrants {
                client_id: client.into(),
                grants,
            })
            .collect();
        out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_hold_hashes_under_one_hash_tag() {
        let store = RedisStore::builder()
            .key_prefix("tenant-a")
            .connect_lazy("redis://127.0.0.1:1")
            .unwrap();
        let token = store.token_key(&TokenHash::of("secret-token"));
        assert_eq!(
            token,
            format!("{{tenant-a}}:t:{}", TokenHash::of("secret-token").to_hex())
        );
        assert!(!token.contains("secret-token"));
        assert_eq!(
            store.grant_key(GrantId::from_u64(0xab)),
            "{tenant-a}:g:00000000000000ab"
        );
        let owner = store.owner_key("alice@example.com");
        assert!(owner.starts_with("{tenant-a}:o:") && !owner.contains("alice"));
        assert_eq!(owner.len(), "{tenant-a}:o:".len() + 64);
    }

    #[test]
    #[should_panic(expected = "free of braces")]
    fn prefix_with_braces_is_refused() {
        let _ = RedisStore::builder().key_prefix("a}b");
    }
}
