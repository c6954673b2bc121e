//! One-time values: the `jti` of a client assertion ([RFC 7523 §3]) or of a DPoP proof
//! ([RFC 9449 §11.1]) may be used once, across every node. [`ReplayCache`] remembers each
//! one until it expires; every store implements it, so that the nodes sharing a store share
//! the cache too.
//!
//! A value is kept as the SHA-256 of its scope (the client, the key) and itself, never in
//! clear, and only until the time its token stops being acceptable anyway.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::store::{MemoryStore, ReplayCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let until = SystemTime::now() + Duration::from_secs(60);
//! assert!(store.first_use("client-a", "jti-1", until).await.unwrap());
//! assert!(!store.first_use("client-a", "jti-1", until).await.unwrap(), "a replay");
//! assert!(store.first_use("client-b", "jti-1", until).await.unwrap(), "another scope");
//! # }
//! ```
//!
//! [RFC 7523 §3]: https://www.rfc-editor.org/rfc/rfc7523#section-3
//! [RFC 9449 §11.1]: https://www.rfc-editor.org/rfc/rfc9449#section-11.1

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use sha2::{Digest, Sha256};

use super::StoreError;

/// Remembers one-time values until they expire; see the [module docs](self).
pub trait ReplayCache: Send + Sync + 'static {
    /// Records `id` within `scope` as used until `until`: `Ok(true)` the first time,
    /// `Ok(false)` if it was recorded before and has not expired. Atomic: of two concurrent
    /// calls with the same value, on any nodes sharing the cache, one only sees `true`.
    fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: ReplayCache> ReplayCache for Arc<T> {
    fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).first_use(scope, id, until)
    }
}

/// The key a value is kept under: SHA-256 of the scope's length, the scope and the id, so
/// that no two (scope, id) pairs share a key.
pub(crate) fn replay_key(scope: &str, id: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((scope.len() as u64).to_be_bytes());
    hash.update(scope.as_bytes());
    hash.update(id.as_bytes());
    hash.finalize().into()
}

/// A [`ReplayCache`] of one process: what [`MemoryStore`](super::MemoryStore) holds. At
/// most `capacity` live values; once full, expired values are dropped, and if none has
/// expired a new value is refused with a [`StoreError`] (the endpoints answer 503), never
/// accepted unrecorded.
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<[u8; 32], SystemTime>>,
    capacity: usize,
    clock: Box<dyn super::Clock>,
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(1 << 20)
    }
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live values, on the system clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, super::SystemClock)
    }

    /// A cache that reads the time from `clock`.
    pub fn with_clock(capacity: usize, clock: impl super::Clock) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: Box::new(clock),
        }
    }

    /// Records a value; what [`ReplayCache::first_use`] does, synchronously.
    pub fn record(&self, scope: &str, id: &str, until: SystemTime) -> Result<bool, StoreError> {
        self.record_at(scope, id, until, self.clock.now())
    }

    /// Records a value at the time `now` of another clock (the store's).
    pub(crate) fn record_at(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let key = replay_key(scope, id);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(expires) = seen.get(&key) {
            if *expires > now {
                return Ok(false);
            }
        }
        if seen.len() >= self.capacity && !seen.contains_key(&key) {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= self.capacity {
                return Err(StoreError::new(ReplayCacheFull));
            }
        }
        seen.insert(key, until);
        Ok(true)
    }

    /// How many values are held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        std::future::ready(self.record(scope, id, until))
    }
}

#[derive(Debug)]
struct ReplayCacheFull;

impl fmt::Display for ReplayCacheFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the replay cache is full of unexpired values")
    }
}

impl std::error::Error for ReplayCacheFull {}

/// A boxed future of [`SharedReplay`].
pub(crate) type ReplayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

/// A [`ReplayCache`] behind a pointer, for configurations that are not generic over it.
pub(crate) trait DynReplay: Send + Sync + 'static {
    fn first_use_dyn<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: SystemTime,
    ) -> ReplayFuture<'a>;
}

impl<T: ReplayCache> DynReplay for T {
    fn first_use_dyn<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: SystemTime,
    ) -> ReplayFuture<'a> {
        Box::pin(self.first_use(scope, id, until))
    }
}

/// A shared, type-erased replay cache.
pub(crate) type SharedReplay = Arc<dyn DynReplay>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::ManualClock;

    #[test]
    fn values_expire_and_a_full_cache_refuses_rather_than_forgets() {
        let clock = ManualClock::new();
        let cache = MemoryReplayCache::with_clock(2, clock.clone());
        let soon = clock.now() + Duration::from_secs(10);
        assert!(cache.record("c", "1", soon).unwrap());
        assert!(!cache.record("c", "1", soon).unwrap());
        assert!(cache.record("c", "2", soon).unwrap());
        assert!(cache.record("c", "3", soon).is_err(), "full: refused");
        assert!(!cache.record("c", "1", soon).unwrap(), "still a replay");
        clock.advance(Duration::from_secs(10));
        assert!(cache
            .record("c", "3", clock.now() + Duration::from_secs(5))
            .unwrap());
        assert!(
            cache
                .record("c", "1", clock.now() + Duration::from_secs(5))
                .unwrap(),
            "expired"
        );
        assert_eq!(cache.len(), 2, "the expired values were swept");
    }

    #[test]
    fn scope_and_id_do_not_run_together() {
        assert_ne!(replay_key("ab", "c"), replay_key("a", "bc"));
    }
}
