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
    sync::Arc,
    time::{Duration, SystemTime},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    Client, IntoConnectionInfo,
};
use sha2::{Digest, Sha256};

use crate::events::{Events, Initiator, RevocationEvent};

use super::{
    backend::{
        Applied, Backend, Bulk, CutOff, Facts, GrantPage, GrantState, GrantTarget, Held, TokenRule,
    },
    hex_string, GrantId, RevocationScope, StoreError, TokenHash, TokenKind, TokenRecord,
};

mod delivery;
mod relay;
mod replay;
mod scripts;

use relay::{
    binding_code, binding_of, from_secs, initiator_code, kind_code, kind_of, malformed,
    relay_events, scope_code, to_secs,
};
use scripts::{GRANTS, ISSUE, LOOKUP, REVOKE, REVOKE_BULK, REVOKE_CLIENT_FOR_OWNER, REVOKE_GRANT};

/// A [`TokenStore`](super::TokenStore) in Redis, so that a token revoked on one node is refused by every
/// other node at once.
///
/// # Key layout
///
/// Every key of a store starts with the hash tag `{P}`, where `P` is the
/// [key prefix](RedisStoreBuilder::key_prefix) (default `oauth-revoke`):
///
/// | key | type | fields | expires |
/// |---|---|---|---|
/// | `{P}:t:<token hash>` | hash | `k` kind (`a`/`r`), `g` grant, `e` expiry, `i` issue time (Unix seconds), `b` the key a bound token is bound to ([`Confirmation`](super::Confirmation), `<cnf member>:<thumbprint in base64url>`, e.g. `jkt:…`; absent for a bearer token) | with the token |
/// | `{P}:g:<grant>` | hash | `c` client id, `o` owner (if any), `e` latest expiry of its tokens, `r` = `1` once revoked, `ct` when it was created (µs, Redis's clock) | with its longest-lived token; once revoked, at the later of that and [`tombstone_ttl`](RedisStoreBuilder::tombstone_ttl) from revocation |
/// | `{P}:o:<owner digest>` | sorted set | grant ids, scored by their latest expiry | with its longest-lived grant |
/// | `{P}:ci:<client SHA-1>` | sorted set | a client's grant ids, scored by their latest expiry (to count what [`revoke_client`](super::TokenStore::revoke_client) revoked) | with its longest-lived grant |
/// | `{P}:log` | stream | one entry per change (`e`: its facts as JSON; `i`: its stable id, 32 hex digits) | entries after a day; the key a day after its last entry |
/// | `{P}:cursors` | hash | per delivery cursor, under the SHA-256 of its name in hex: `<d>:p` position (a stream id), `<d>:h` lease holder, `<d>:l` lease end (µs, Redis's clock), `<d>:a` entries acknowledged past the position | a day after the last change logged or cursor step |
/// | `{P}:cs:<subject SHA-1>`, `{P}:cc:<client SHA-1>` | string | a bulk revocation's cut-off (µs, Redis's clock): grants created at or before it are revoked | with the longest-lived grant it covered, at least [`tombstone_ttl`](RedisStoreBuilder::tombstone_ttl) |
///
/// Events: every script that revokes also appends the facts of its change to the stream
/// `{P}:log` (JSON, no token value), in the same atomic step: a change and its record are
/// written together or not at all. The node that revoked announces its own
/// [event](crate::events) before it answers; every other node reads the stream from where it
/// last read and relays each change to its [`events`](super::TokenStore::events)
/// subscribers, building each event by the same rules, so every node hears every node. A
/// node that lost its connection reads on from its last entry once back: at least once,
/// while Redis keeps the entries (a day; the stream is trimmed by entry time and expires a
/// day after its last entry) and its data (a Redis without persistence loses the log with
/// everything else when it restarts).
///
/// Delivery: the store is an [`EventLog`](super::log::EventLog) over the same stream, so
/// that Security Event Tokens are pushed and polled from it by cursor
/// ([`Pusher::follow`](crate::set::push::Pusher::follow),
/// [`SetQueue::follow`](crate::set::poll::SetQueue::follow)), at least once whatever node
/// dies. An entry's position is its stream id `<ms>-<seq>` as one integer,
/// `ms << 20 | seq` (the scripts never give an entry a `seq` of 2^20 or more: they move to
/// the next millisecond), so positions increase in script order; its id is 128 random bits
/// the node sends with the script, so that a Redis emptied and filled again never repeats
/// a `jti`. Each cursor step is one script; leases run by Redis's clock.
///
/// `<token hash>` is [`TokenHash::to_hex`] (a token is never sent to Redis), `<grant>` is
/// the 16 hex digits of the [`GrantId`], and `<owner digest>` the SHA-256 of the owner name
/// in hex (the owner's name itself is kept only inside its grants' hashes, to answer
/// [`inspect`](super::TokenStore::inspect)). Every key carries a TTL, so Redis holds nothing past
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
/// A script may only touch keys of one slot. [`inspect`](super::TokenStore::inspect) and
/// [`revoke`](super::TokenStore::revoke) know only a token's hash, so a token key's slot can
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

// The connection info may hold a password: never shown.
debug_fields!(RedisStore {
    key_tag: config.tag,
    operation_timeout: config.operation_timeout
});

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

    setters! {
        /// The longest an operation may take, reconnection included (default 2 s); past it the
        /// operation fails with a [`StoreError`].
        pub fn operation_timeout(timeout: Duration) => operation_timeout;

        /// The longest one connection attempt may take (default 500 ms).
        pub fn connection_timeout(timeout: Duration) => connection_timeout;

        /// How many times a lost connection is retried, with exponential back-off from 50 ms,
        /// before the waiting operations fail (default 2); the next operation starts a new
        /// round.
        pub fn reconnect_attempts(attempts: usize) => reconnect_attempts;

        /// The least time a revoked grant is remembered (default one hour), so that a token
        /// registered into it later is refused; a grant whose tokens live longer is remembered
        /// until the last of them expires.
        pub fn tombstone_ttl(ttl: Duration) => tombstone_ttl;
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
/// 128 random bits (hex) for a script that logs changes: each entry's stable id is drawn
/// from them.
fn entry_seed() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now_secs() -> u64 {
    to_secs(SystemTime::now())
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| malformed(what))
}

fn grant_id(hex: &str) -> Result<GrantId, StoreError> {
    u64::from_str_radix(hex, 16)
        .map(GrantId::from_u64)
        .map_err(|_| malformed("grant id"))
}

fn name(value: &str) -> Option<Arc<str>> {
    (!value.is_empty()).then(|| value.into())
}

fn cut_off(value: &str) -> Result<Option<u64>, StoreError> {
    match value {
        "" => Ok(None),
        v => parse(v, "cut-off").map(Some),
    }
}

/// A grant's state from the six fields the scripts return for it, after its client.
fn grant_state(fields: &[String]) -> Result<GrantState, StoreError> {
    let [revoked, expires, created, subject, client] = fields else {
        return Err(malformed("grant record"));
    };
    Ok(GrantState {
        revoked: revoked == "1",
        expires_at: from_secs(parse(expires, "grant expiry")?),
        created_us: parse(created, "grant creation time")?,
        subject_cut_off: cut_off(subject)?,
        client_cut_off: cut_off(client)?,
    })
}

impl Backend for RedisStore {
    fn events(&self) -> &Events {
        &self.events
    }

    async fn register(&self, token: TokenHash, record: TokenRecord) -> Result<bool, StoreError> {
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
                    .arg(tag)
                    .arg(binding_code(record.confirmation.as_ref()));
                if let Some(owner) = &record.owner {
                    call.arg(&**owner);
                }
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(registered == 1)
    }

    async fn lookup(&self, token: &TokenHash) -> Result<Option<Held>, StoreError> {
        let key = self.token_key(token);
        let tag = &self.config.tag;
        let found: Option<Vec<String>> = self
            .run(|mut conn| async move { LOOKUP.key(&key).arg(tag).invoke_async(&mut conn).await })
            .await?;
        let Some(fields) = found else {
            return Ok(None);
        };
        let [kind, grant, expires, issued, binding, client, owner, state @ ..] = fields.as_slice()
        else {
            return Err(malformed("token record"));
        };
        Ok(Some(Held {
            record: TokenRecord {
                kind: kind_of(kind).ok_or_else(|| malformed("token kind"))?,
                client_id: client.as_str().into(),
                grant: grant_id(grant)?,
                owner: name(owner),
                expires_at: from_secs(parse(expires, "token expiry")?),
                issued_at: from_secs(parse(issued, "token issue time")?),
                confirmation: binding_of(binding)?,
            },
            grant: grant_state(state)?,
        }))
    }

    async fn revoke_token(
        &self,
        token: &TokenHash,
        rule: TokenRule<'_>,
    ) -> Result<Applied, StoreError> {
        let key = self.token_key(token);
        let config = &self.config;
        let hex = token.to_hex();
        let reply: Vec<String> = self
            .run(|mut conn| async move {
                REVOKE
                    .key(&key)
                    .arg(to_secs(rule.now))
                    .arg(&config.tag)
                    .arg(rule.client_id)
                    .arg(scope_code(rule.scope_for(TokenKind::AccessToken)))
                    .arg(scope_code(rule.scope_for(TokenKind::RefreshToken)))
                    .arg(config.tombstone_secs)
                    .arg(&hex)
                    .arg(rule.jti.unwrap_or(""))
                    .arg(entry_seed())
                    .arg(&config.node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let (scope, rest) = match reply.split_first() {
            Some((code, rest)) if code == "1" => (RevocationScope::Token, rest),
            Some((code, rest)) if code == "2" => (RevocationScope::Grant, rest),
            Some((code, _)) if code == "0" => return Ok(Applied::NotActive),
            Some((code, _)) if code == "3" => return Ok(Applied::IssuedToAnotherClient),
            _ => return Err(malformed("revocation outcome")),
        };
        let [kind, grant, client, owner, expires] = rest else {
            return Err(malformed("revocation outcome"));
        };
        Ok(Applied::Revoked {
            kind: kind_of(kind).ok_or_else(|| malformed("token kind"))?,
            facts: Facts {
                scope,
                grant: grant_id(grant)?,
                client_id: name(client),
                owner: name(owner),
                expires_at: from_secs(parse(expires, "expiry")?),
            },
        })
    }

    async fn revoke_grants(
        &self,
        target: GrantTarget<'_>,
        by: &Initiator,
        now: SystemTime,
    ) -> Result<Vec<Facts>, StoreError> {
        let config = &self.config;
        let now = to_secs(now);
        match target {
            GrantTarget::One(grant) => {
                let key = self.grant_key(grant);
                let reply: Vec<String> = self
                    .run(|mut conn| async move {
                        REVOKE_GRANT
                            .key(&key)
                            .arg(now)
                            .arg(config.tombstone_secs)
                            .arg(&config.tag)
                            .arg(grant.to_string())
                            .arg(entry_seed())
                            .arg(&config.node)
                            .invoke_async(&mut conn)
                            .await
                    })
                    .await?;
                match reply.as_slice() {
                    [code] if code == "0" => Ok(Vec::new()),
                    [code, client, owner, expires] if code == "1" => Ok(vec![Facts {
                        scope: RevocationScope::Grant,
                        grant,
                        client_id: name(client),
                        owner: name(owner),
                        expires_at: from_secs(parse(expires, "grant expiry")?),
                    }]),
                    _ => Err(malformed("grant revocation")),
                }
            }
            GrantTarget::OwnerClient { owner, client_id } => {
                let key = self.owner_key(owner);
                let by = initiator_code(by);
                let reply: Vec<String> = self
                    .run(|mut conn| async move {
                        REVOKE_CLIENT_FOR_OWNER
                            .key(&key)
                            .arg(now)
                            .arg(&config.tag)
                            .arg(client_id)
                            .arg(config.tombstone_secs)
                            .arg(owner)
                            .arg(&by)
                            .arg(entry_seed())
                            .arg(&config.node)
                            .invoke_async(&mut conn)
                            .await
                    })
                    .await?;
                reply
                    .chunks(2)
                    .map(|pair| match pair {
                        [grant, expires] => Ok(Facts {
                            scope: RevocationScope::Grant,
                            grant: grant_id(grant)?,
                            client_id: Some(client_id.into()),
                            owner: Some(owner.into()),
                            expires_at: from_secs(parse(expires, "grant expiry")?),
                        }),
                        _ => Err(malformed("grant revocation")),
                    })
                    .collect()
            }
        }
    }

    async fn cut_off(&self, scope: Bulk<'_>, by: &Initiator) -> Result<Option<CutOff>, StoreError> {
        let (key, kind) = self.index(scope);
        let config = &self.config;
        let by = initiator_code(by);
        let name = scope.name();
        let reply: Vec<String> = self
            .run(|mut conn| async move {
                REVOKE_BULK
                    .key(&key)
                    .arg(now_secs())
                    .arg(&config.tag)
                    .arg(kind)
                    .arg(name)
                    .arg(&by)
                    .arg(config.tombstone_secs)
                    .arg(entry_seed())
                    .arg(&config.node)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let [at, previous, announced] = reply.as_slice() else {
            return Err(malformed("cut-off"));
        };
        let previous: i64 = parse(previous, "cut-off")?;
        Ok(Some(CutOff {
            at_us: parse(at, "cut-off")?,
            previous_us: u64::try_from(previous).ok(),
            announced: announced == "1",
        }))
    }

    async fn grants(&self, scope: Bulk<'_>, cursor: Option<u64>) -> Result<GrantPage, StoreError> {
        const PAGE: u64 = 1000;
        let (key, kind) = self.index(scope);
        let tag = &self.config.tag;
        let offset = cursor.unwrap_or(0);
        let name = scope.name();
        let reply: Vec<String> = self
            .run(|mut conn| async move {
                GRANTS
                    .key(&key)
                    .arg(now_secs())
                    .arg(tag)
                    .arg(kind)
                    .arg(name)
                    .arg(offset)
                    .arg(PAGE)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some((scanned, fields)) = reply.split_first() else {
            return Err(malformed("grant page"));
        };
        let scanned: u64 = parse(scanned, "grant page")?;
        let grants = fields
            .chunks(6)
            .map(|grant| match grant {
                [client, state @ ..] => Ok((client.as_str().into(), grant_state(state)?)),
                [] => Err(malformed("grant page")),
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(GrantPage {
            grants,
            next: (scanned == PAGE).then_some(offset + scanned),
        })
    }

    /// The log from its first entry.
    async fn history(&self) -> Result<Vec<RevocationEvent>, StoreError> {
        let log = format!("{}log", self.config.tag);
        let now = SystemTime::now();
        self.run(|mut conn| async move { relay::history(&mut conn, &log, now).await })
            .await
    }
}

impl RedisStore {
    /// The index key of a bulk scope (the owner's; a client's is found by the script), and
    /// the scope's code.
    fn index(&self, scope: Bulk<'_>) -> (String, &'static str) {
        match scope {
            Bulk::Subject(name) => (self.owner_key(name), "s"),
            Bulk::Client(_) => (format!("{}ci:-", self.config.tag), "c"),
        }
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
