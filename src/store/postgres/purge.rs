//! Deleting what has expired, a short batch at a time.

use std::{sync::Weak, time::Duration};

use super::{Config, PostgresStore};
use crate::store::StoreError;

/// Rows deleted by one statement: each batch is its own short transaction, so a purge
/// never holds a lock for long and skips rows that another transaction holds.
const BATCH: i32 = 1000;

/// What [`PostgresStore::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired tokens, grants, tombstones and cut-offs.
    pub rows: u64,
    /// Outbox rows older than the log retention.
    pub log_rows: u64,
}

impl PostgresStore {
    /// Deletes every expired token, grant, tombstone and cut-off, and the outbox rows older
    /// than the [log retention](super::PostgresStoreBuilder::log_retention), in batches of
    /// 1,000 rows, each one round trip and one short transaction. Expired rows are inactive
    /// at once whether purged or not; the purge only gives the space back.
    ///
    /// The store runs it by itself every
    /// [`purge_interval`](super::PostgresStoreBuilder::purge_interval).
    pub async fn purge_expired(&self) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        loop {
            let rows = self
                .query("SELECT tor_purge_expired($1)", &[&BATCH])
                .await?;
            let n: i32 = rows.first().map_or(0, |r| r.get(0));
            purged.rows += n.max(0) as u64;
            if n < BATCH {
                break;
            }
        }
        let keep = self.config.log_retention.as_secs_f64();
        loop {
            let rows = self
                .query(
                    "SELECT tor_purge_log(make_interval(secs => $1), $2)",
                    &[&keep, &BATCH],
                )
                .await?;
            let n: i32 = rows.first().map_or(0, |r| r.get(0));
            purged.log_rows += n.max(0) as u64;
            if n < BATCH {
                return Ok(purged);
            }
        }
    }
}

/// Purges every `interval` until the store and all its clones are gone.
pub(super) async fn purge_periodically(store: PostgresStore, interval: Duration) {
    let (pool, events, config): (_, _, Weak<Config>) = (
        store.pool.clone(),
        store.events.clone(),
        std::sync::Arc::downgrade(&store.config),
    );
    drop(store);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(config) = config.upgrade() else {
            return;
        };
        // Only the clones' pool and settings: the store itself is not kept alive by this task.
        let store = PostgresStore {
            pool: pool.clone(),
            config,
            events: events.clone(),
        };
        match store.purge_expired().await {
            Ok(purged) => tracing::debug!(rows = purged.rows, log_rows = purged.log_rows, "purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired rows in PostgreSQL"),
        }
    }
}
