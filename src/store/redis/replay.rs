//! The Redis store's one-time values: a `SET NX PXAT` each.

use std::time::SystemTime;

use crate::store::{replay, ReplayCache, StoreError};

use super::RedisStore;

impl ReplayCache for RedisStore {
    /// `SET {P}:jti:<hash> 1 NX PXAT <until>`: the key expires with the value.
    async fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> Result<bool, StoreError> {
        let key = replay::replay_key(scope, id);
        let mut name = format!("{}jti:", self.config.tag);
        for byte in key {
            use std::fmt::Write as _;
            let _ = write!(name, "{byte:02x}");
        }
        let until_ms = until
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let set: Option<String> = self
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&name)
                    .arg(1)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(until_ms.max(1))
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }
}
