//! The outbox as an [`EventLog`]: delivery cursors in `event_cursors` (schema version 2),
//! one function call each.

use std::time::Duration;

use futures_util::{future::BoxFuture, FutureExt};
use tokio_postgres::Row;

use crate::store::{
    log::{EventLog, Logged},
    StoreError,
};

use super::{malformed, relay::event_of, PostgresStore};

const COLUMNS: &str = "seq, kind, token_hash, token_kind, grant_id, client_id, subject, jti, \
    initiator, at, expires_at, node, replace(event_id::text, '-', '') AS event_id";

const CURSOR: &str = "SELECT tor_cursor($1)";
const CLAIM: &str = "SELECT tor_claim($1, $2, $3)";
const ADVANCE: &str = "SELECT tor_advance($1, $2, $3, $4)";
const RELEASE: &str = "SELECT tor_release($1, $2)";
const ACKNOWLEDGE: &str = "SELECT tor_acknowledge($1, $2, $3::text[]::uuid[])";

fn read_after_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("SELECT {COLUMNS} FROM tor_log_since($1, $2)"))
}

fn unacknowledged_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("SELECT {COLUMNS} FROM tor_unacknowledged($1, $2)"))
}

fn position_arg(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

fn lease_arg(lease: Duration) -> i32 {
    i32::try_from(lease.as_millis()).unwrap_or(i32::MAX).max(1)
}

fn limit_arg(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

fn position_of(row: &Row, column: usize) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = row.try_get(column).map_err(StoreError::new)?;
    seq.map(|s| u64::try_from(s).map_err(|_| malformed("outbox position")))
        .transpose()
}

/// The entries of outbox rows; a malformed row is logged and skipped, as the relay does.
fn entries(rows: &[Row]) -> Result<Vec<Logged>, StoreError> {
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let position = position_of(row, 0)?.ok_or_else(|| malformed("outbox position"))?;
        let id: &str = row.try_get("event_id").map_err(StoreError::new)?;
        let id = u128::from_str_radix(id, 16).map_err(|_| malformed("outbox event id"))?;
        match event_of(row) {
            Ok(event) => entries.push(Logged {
                position,
                id,
                event,
            }),
            Err(e) => {
                tracing::warn!(seq = position, error = %e, "a malformed revocation outbox row")
            }
        }
    }
    Ok(entries)
}

impl EventLog for PostgresStore {
    fn cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        async move {
            let rows = self.query(CURSOR, &[&name]).await?;
            let row = rows.first().ok_or_else(|| malformed("cursor"))?;
            position_of(row, 0)?.ok_or_else(|| malformed("cursor"))
        }
        .boxed()
    }

    fn read_after(
        &self,
        position: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Logged>, StoreError>> {
        async move {
            let rows = self
                .query(
                    read_after_sql(),
                    &[&position_arg(position), &limit_arg(limit)],
                )
                .await?;
            entries(&rows)
        }
        .boxed()
    }

    fn claim<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        async move {
            let rows = self
                .query(CLAIM, &[&name, &holder, &lease_arg(lease)])
                .await?;
            match rows.first() {
                Some(row) => position_of(row, 0),
                None => Err(malformed("claim")),
            }
        }
        .boxed()
    }

    fn advance<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        position: u64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let rows = self
                .query(
                    ADVANCE,
                    &[&name, &holder, &position_arg(position), &lease_arg(lease)],
                )
                .await?;
            let row = rows.first().ok_or_else(|| malformed("advance"))?;
            row.try_get(0).map_err(StoreError::new)
        }
        .boxed()
    }

    fn release<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.query(RELEASE, &[&name, &holder]).await?;
            Ok(())
        }
        .boxed()
    }

    fn unacknowledged<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        async move {
            let rows = self
                .query(unacknowledged_sql(), &[&name, &limit_arg(limit)])
                .await?;
            entries(&rows)
        }
        .boxed()
    }

    fn acknowledge<'a>(
        &'a self,
        name: &'a str,
        acknowledged: &'a [(u64, u128)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let seqs: Vec<i64> = acknowledged.iter().map(|&(p, _)| position_arg(p)).collect();
            let ids: Vec<String> = acknowledged
                .iter()
                .map(|&(_, id)| format!("{id:032x}"))
                .collect();
            self.query(ACKNOWLEDGE, &[&name, &seqs, &ids]).await?;
            Ok(())
        }
        .boxed()
    }
}
