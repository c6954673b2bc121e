//! The time a store reads: the system clock, or a clock a test moves by hand.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Where a store reads the current time, to decide which tokens have expired and when to
/// purge them.
///
/// Stores use [`SystemClock`] unless told otherwise. A test that must not depend on how fast
/// the machine runs gives the store a [`ManualClock`] and moves time itself:
///
/// ```
/// use std::time::Duration;
/// use tower_oauth_revoke::store::{
///     GrantId, ManualClock, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore,
/// };
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = ManualClock::new();
/// let store = MemoryStore::with_clock(clock.clone());
/// let expires_at = clock.now() + Duration::from_secs(60);
/// let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires_at);
/// store.issue(TokenHash::of("t"), record).await.unwrap();
///
/// clock.advance(Duration::from_secs(59));
/// assert!(store.inspect(&TokenHash::of("t")).await.unwrap().is_some());
/// clock.advance(Duration::from_secs(1));
/// assert!(store.inspect(&TokenHash::of("t")).await.unwrap().is_none());
/// # }
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock, [`SystemTime::now`]: what stores use by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until it is moved: for tests that must not depend on the
/// machine's speed. Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    /// Nanoseconds since the Unix epoch.
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to the system's current time.
    pub fn new() -> Self {
        Self::at(SystemTime::now())
    }

    /// A clock set to `time` (clamped to the years 1970 to 2554).
    pub fn at(time: SystemTime) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(to_nanos(time))),
        }
    }

    /// The time the clock shows.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `time`, forward or back.
    pub fn set(&self, time: SystemTime) {
        self.nanos.store(to_nanos(time), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        ManualClock::now(self)
    }
}

fn to_nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = ManualClock::at(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }
}
