//! The schema migrations, embedded, and their runner.

use deadpool_postgres::Client;

use crate::store::StoreError;

/// The version of the schema this library migrates a database to (the number of the last
/// file of `migrations/postgres/`).
pub const SCHEMA_VERSION: i32 = 4;

/// Every migration, in order: its version and its SQL (one transaction each).
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_store.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_replay.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_confirmation.sql"),
    ),
];

/// As the migration files create it.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)";

/// Brings the store's schema to [`SCHEMA_VERSION`]: for each migration, in one transaction
/// under the advisory lock (7009, 1) (so that nodes starting together migrate one at a
/// time), creates the schema and `schema_version` if missing, and applies the migration
/// unless `schema_version` records it. A database already at a later version (migrated by
/// a newer node) is left as it is.
pub(super) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    for &(version, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(StoreError::new)?;
        // `IF NOT EXISTS` notices are not news.
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7009, 1)",
        )
        .await
        .map_err(StoreError::new)?;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&schema],
            )
            .await
            .map_err(StoreError::new)?
            .get(0);
        if !exists {
            // The name was checked by the builder: lowercase letters, digits and `_`.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(StoreError::new)?;
        }
        tx.batch_execute(VERSION_TABLE)
            .await
            .map_err(StoreError::new)?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(StoreError::new)?
            .get(0);
        if current < version {
            tx.batch_execute(sql).await.map_err(|e| {
                StoreError::new(format!("migrating the schema to version {version}: {e}"))
            })?;
            tracing::info!(schema, version, "migrated the token store's schema");
        }
        tx.commit().await.map_err(StoreError::new)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_record_their_version() {
        for (i, &(version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(version, i as i32 + 1);
            assert!(sql.contains(&format!(
                "INSERT INTO schema_version (version, description) VALUES ({version},"
            )));
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
