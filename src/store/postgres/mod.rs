//! The PostgreSQL token store: durable revocation state shared by many nodes.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_oauth_revoke::store::PostgresStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = PostgresStore::builder()
//!     .schema("auth_prod")
//!     .pool_size(8)
//!     .operation_timeout(Duration::from_millis(1500))
//!     .connect("postgres://revoker@127.0.0.1:5432/auth")
//!     .await
//!     .expect("PostgreSQL answers");
//! # let _ = store;
//! # }
//! ```

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{types::ToSql, NoTls, Row};

use crate::events::Events;

use super::StoreError;

mod backend;
mod delivery;
mod migrate;
mod purge;
mod relay;

pub use migrate::SCHEMA_VERSION;
pub use purge::Purged;

/// A [`TokenStore`](super::TokenStore) in PostgreSQL, so that a token revoked on one node is
/// refused by every other node at once, and stays revoked across restarts.
///
/// # Schema
///
/// The tables and functions are those of `migrations/postgres/` in this crate (its README
/// describes them), embedded in the library and applied by
/// [`connect`](PostgresStoreBuilder::connect): under the advisory lock `(7009, 1)`, so that
/// nodes starting together migrate one at a time, each missing version in one transaction,
/// recorded in `schema_version`. Objects live in the [schema](PostgresStoreBuilder::schema)
/// of the store (default `public`), which every connection puts first in its
/// `search_path`. A token is stored only as its SHA-256 ([`TokenHash`](super::TokenHash),
/// `bytea`), a [`GrantId`](super::GrantId) as the `bigint` of the same 64 bits, a bound
/// token's [`Confirmation`](super::Confirmation) as its `cnf` member name and thumbprint
/// (`cnf_member`, `cnf`; schema version 4).
///
/// # Atomicity and round trips
///
/// Each primitive of the [`Backend`](super::backend::Backend) is one call of one PL/pgSQL
/// function: one prepared statement (kept per pooled connection), one round trip, one
/// transaction, its outbox row included. Registering a token and revoking its grant both
/// lock the grant's row, so a token registered while its grant is revoked is either refused
/// or revoked with it.
///
/// # Clocks
///
/// Expiry (of tokens, grants, tombstones and cut-offs) is judged by this node's clock:
/// [`Backend::now`](super::backend::Backend::now), the system clock, is sent with every
/// call, so that the database and the store's rules agree. Creation times and cut-offs,
/// which order registrations against [bulk revocations](super::TokenStore::revoke_subject),
/// come from the database's clock, one for every node. Keep the clocks in sync.
///
/// # Events
///
/// Every function that revokes writes a row into the outbox table `revocation_log` and
/// sends `NOTIFY tor_revocations` in the same transaction. The node that revoked announces
/// its own [event](crate::events) before it answers; every node also listens on a
/// connection of its own and reads the outbox rows after the last it has seen, by `seq`
/// (the table is the truth, the notification only the wake-up), relaying the other nodes'
/// changes to its [`events`](super::TokenStore::events) subscribers (`relayed = true`),
/// built by the same rules. After a lost connection it reconnects with back-off and reads
/// on from its last `seq`: nothing committed meanwhile is missed (while the outbox keeps
/// it, see `tor_purge_log`).
///
/// # Failures
///
/// Every operation (waiting for a pooled connection, connecting, the call itself) is
/// bounded by [`operation_timeout`](PostgresStoreBuilder::operation_timeout) (default
/// 2 s): while PostgreSQL is unreachable, operations fail with a [`StoreError`] (which the
/// revocation endpoint answers with 503 `temporarily_unavailable` and `Retry-After`), and
/// broken connections are replaced, so the store recovers by itself when the database
/// returns. An operation that failed or timed out may or may not have been applied; it is
/// never reported as done.
///
/// # Operating PostgreSQL
///
/// - Connections are plain TCP (`NoTls`): run the store on the database's host or a
///   private network, or put TLS in front of it (a local proxy or tunnel); TLS to the
///   database is the deployment's concern.
/// - Expired rows are inactive at once; the store deletes them every
///   [`purge_interval`](PostgresStoreBuilder::purge_interval) (default a minute), and the
///   outbox rows older than the [`log_retention`](PostgresStoreBuilder::log_retention)
///   (default a day: set it to the longest token lifetime a replica may still need an
///   event for), in batches of 1,000 rows, each one short transaction
///   ([`purge_expired`](PostgresStore::purge_expired)).
///
/// ```no_run
/// use tower_oauth_revoke::{
///     client_auth::{Client, MemoryClientRegistry},
///     store::PostgresStore,
///     RevocationEndpoint,
/// };
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = PostgresStore::connect("postgres://revoker@127.0.0.1/auth")
///     .await
///     .expect("PostgreSQL answers");
/// let registry = MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]);
/// let revoke = RevocationEndpoint::builder(registry, store)
///     .build()
///     .expect("valid configuration");
/// # let _ = revoke;
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    config: Arc<Config>,
    events: Events,
}

#[derive(Debug)]
struct Config {
    operation_timeout: Duration,
    /// The least time a revoked grant or a cut-off is kept, in µs.
    tombstone_us: i64,
    /// This store's id in the outbox rows it writes.
    node: String,
    /// How long outbox rows are kept.
    log_retention: Duration,
    schema: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection parameters may hold a password: never shown.
        f.debug_struct("PostgresStore")
            .field("schema", &self.config.schema)
            .field("operation_timeout", &self.config.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`PostgresStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    schema: String,
    pool_size: usize,
    operation_timeout: Duration,
    tombstone_ttl: Duration,
    log_retention: Duration,
    purge_interval: Duration,
}

impl Default for PostgresStoreBuilder {
    fn default() -> Self {
        Self {
            schema: "public".to_owned(),
            pool_size: 16,
            operation_timeout: Duration::from_secs(2),
            tombstone_ttl: Duration::from_secs(3600),
            log_retention: Duration::from_secs(24 * 3600),
            purge_interval: Duration::from_secs(60),
        }
    }
}

impl PostgresStoreBuilder {
    /// The schema of the store's tables and functions (default `public`), created if
    /// missing: give tenants, environments and tests their own.
    ///
    /// # Panics
    ///
    /// Unless `schema` is 1 to 63 characters of lowercase ASCII letters, digits and `_`,
    /// starting with a letter or `_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        let schema = schema.into();
        let valid = (1..=63).contains(&schema.len())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        assert!(
            valid,
            "a PostgreSQL schema name must be lowercase letters, digits and _"
        );
        self.schema = schema;
        self
    }

    /// The most connections the store opens for its operations (default 16); the event
    /// listener has one more of its own.
    ///
    /// # Panics
    ///
    /// If `size` is 0.
    pub fn pool_size(mut self, size: usize) -> Self {
        assert!(size > 0, "a connection pool needs at least one connection");
        self.pool_size = size;
        self
    }

    setters! {
        /// The longest an operation may take, waiting for a connection and connecting
        /// included (default 2 s); past it the operation fails with a [`StoreError`].
        pub fn operation_timeout(timeout: Duration) => operation_timeout;

        /// The least time a revoked grant is remembered (default one hour), so that a token
        /// registered into it later is refused; a grant whose tokens live longer is
        /// remembered until the last of them expires. Cut-offs are kept as long, at least.
        pub fn tombstone_ttl(ttl: Duration) => tombstone_ttl;

        /// How long the outbox keeps each revocation's row (default a day): at least the
        /// longest lifetime of a token whose revocation a replica may still need to learn.
        pub fn log_retention(retention: Duration) => log_retention;

        /// How often the store deletes expired rows (default a minute; `Duration::ZERO`
        /// never, leaving it to [`PostgresStore::purge_expired`] called by the host).
        pub fn purge_interval(interval: Duration) => purge_interval;
    }

    /// Connects to PostgreSQL (a URL such as `postgres://user:password@host:5432/db`, or
    /// `host=… user=… dbname=…`), migrates the schema to [`SCHEMA_VERSION`], and starts
    /// listening for the other nodes' events. Fails if the database does not answer within
    /// the operation timeout (the migration itself may take up to 30 s, waiting for
    /// another node's).
    ///
    /// Must be called within a Tokio runtime.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        let mut pg: tokio_postgres::Config = url.parse().map_err(StoreError::new)?;
        pg.options(format!("-c search_path={}", self.schema))
            .application_name("tower-oauth-revoke")
            .connect_timeout(self.operation_timeout)
            .keepalives_idle(Duration::from_secs(30));
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.operation_timeout))
            .create_timeout(Some(self.operation_timeout))
            .recycle_timeout(Some(self.operation_timeout))
            .build()
            .map_err(StoreError::new)?;
        let mut client = pool.get().await.map_err(StoreError::new)?;
        let migration = migrate::migrate(&mut client, &self.schema);
        let migrate_for = self.operation_timeout.max(Duration::from_secs(30));
        tokio::time::timeout(migrate_for, migration)
            .await
            .map_err(|_| StoreError::new("timed out migrating the PostgreSQL schema"))??;
        // Events are relayed from the outbox's end as it is now.
        let last_seq = tokio::time::timeout(self.operation_timeout, relay::last_seq(&client))
            .await
            .map_err(|_| StoreError::new("PostgreSQL did not answer in time"))??;
        drop(client);
        let config = Arc::new(Config {
            operation_timeout: self.operation_timeout,
            tombstone_us: i64::try_from(self.tombstone_ttl.as_micros())
                .unwrap_or(i64::MAX)
                .max(1_000_000),
            node: crate::store::generate_token(),
            log_retention: self.log_retention,
            schema: self.schema,
        });
        let events = Events::default();
        tokio::spawn(relay::relay_events(
            pg,
            Arc::downgrade(&config),
            events.clone(),
            last_seq,
        ));
        let store = PostgresStore {
            pool,
            config,
            events,
        };
        if !self.purge_interval.is_zero() {
            tokio::spawn(purge::purge_periodically(
                store.clone(),
                self.purge_interval,
            ));
        }
        Ok(store)
    }
}

impl PostgresStore {
    /// A builder, to set the schema, pool size and timeouts before connecting.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Connects with the default configuration (schema `public`): see
    /// [`PostgresStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// The schema of the store's tables and functions.
    pub fn schema(&self) -> &str {
        &self.config.schema
    }

    /// Runs one prepared statement (prepared once per pooled connection) under the
    /// operation timeout: one round trip once prepared.
    async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let call = async {
            let client = self.pool.get().await.map_err(StoreError::new)?;
            let statement = client.prepare_cached(sql).await.map_err(StoreError::new)?;
            client
                .query(&statement, params)
                .await
                .map_err(StoreError::new)
        };
        match tokio::time::timeout(self.config.operation_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new("PostgreSQL did not answer in time")),
        }
    }

    /// The time sent with every call, by which expiry is judged.
    fn now_arg(&self) -> SystemTime {
        super::backend::Backend::now(self)
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::new(format!("malformed {what} from PostgreSQL"))
}

/// Takes a one-time value unless a live row holds it (an expired row is taken over).
const FIRST_USE: &str = "INSERT INTO replay_cache (key, expires_at) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
    WHERE replay_cache.expires_at <= $3 RETURNING 1";

/// Drops some expired values: run now and then, so that the table holds about what is live.
const SWEEP_REPLAY: &str = "DELETE FROM replay_cache WHERE key IN \
    (SELECT key FROM replay_cache WHERE expires_at <= $1 LIMIT 256 FOR UPDATE SKIP LOCKED)";

impl super::ReplayCache for PostgresStore {
    async fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> Result<bool, StoreError> {
        let key = super::replay::replay_key(scope, id);
        let now = self.now_arg();
        let rows = self
            .query(FIRST_USE, &[&key.as_slice(), &until, &now])
            .await?;
        if rand::random::<u8>() == 0 {
            self.query(SWEEP_REPLAY, &[&now]).await?;
        }
        Ok(!rows.is_empty())
    }
}
