//! Counting failed client authentications, to stop brute force.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The remote address of a request's connection, as a request extension.
///
/// The host inserts it (hyper hands the peer address to the accept loop; axum's
/// `ConnectInfo<SocketAddr>` can be copied into it with a small `map_request`), so that
/// [`AuthFailureLimiter`] counts failures per client id **and** address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// Limits failed client authentications per client id and remote address.
///
/// After `max_failures` failures within `window` for one (client id, IP address) pair,
/// further attempts of that pair are answered 429 with `Retry-After` until the window ends,
/// without even asking the registry. Another address is counted apart, so a stranger
/// cannot lock a client out. A success clears the pair's count.
///
/// Memory is bounded: at most `capacity` pairs are tracked (default 10,000); when full,
/// expired windows are dropped first, then the oldest window.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth_revoke::client_auth::AuthFailureLimiter;
///
/// let limiter = AuthFailureLimiter::new(20, Duration::from_secs(60));
/// # let _ = limiter;
/// ```
#[derive(Clone)]
pub struct AuthFailureLimiter {
    inner: Arc<LimiterInner>,
}

struct LimiterInner {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    counts: Mutex<HashMap<(Box<str>, IpAddr), Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl fmt::Debug for AuthFailureLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFailureLimiter")
            .field("max_failures", &self.inner.max_failures)
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

const UNKNOWN_ADDR: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

impl AuthFailureLimiter {
    /// Allows `max_failures` failures per pair within each `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, 10_000)
    }

    /// As [`new`](Self::new), tracking at most `capacity` pairs.
    pub fn with_capacity(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::new(LimiterInner {
                max_failures,
                window,
                capacity: capacity.max(1),
                counts: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn key(client_id: &str, addr: Option<RemoteAddr>) -> (Box<str>, IpAddr) {
        let id: String = client_id.chars().take(256).collect();
        (id.into_boxed_str(), addr.map_or(UNKNOWN_ADDR, |a| a.0.ip()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Box<str>, IpAddr), Window>> {
        self.inner.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// If the pair has spent its budget, the seconds until it may try again.
    pub fn check(&self, client_id: &str, addr: Option<RemoteAddr>) -> Option<u64> {
        let key = Self::key(client_id, addr);
        let counts = self.lock();
        let w = counts.get(&key)?;
        let elapsed = w.started.elapsed();
        if elapsed >= self.inner.window || w.failures < self.inner.max_failures {
            return None;
        }
        Some((self.inner.window - elapsed).as_secs().max(1))
    }

    /// Records a failure of the pair.
    pub fn record_failure(&self, client_id: &str, addr: Option<RemoteAddr>) {
        let key = Self::key(client_id, addr);
        let now = Instant::now();
        let window = self.inner.window;
        let mut counts = self.lock();
        if !counts.contains_key(&key) && counts.len() >= self.inner.capacity {
            counts.retain(|_, w| now.duration_since(w.started) < window);
            if counts.len() >= self.inner.capacity {
                if let Some(oldest) = counts
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone())
                {
                    counts.remove(&oldest);
                }
            }
        }
        let w = counts.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(w.started) >= window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    /// Clears the pair's count after a success.
    pub fn record_success(&self, client_id: &str, addr: Option<RemoteAddr>) {
        let mut counts = self.lock();
        if !counts.is_empty() {
            counts.remove(&Self::key(client_id, addr));
        }
    }

    /// How many pairs are tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Option<RemoteAddr> {
        Some(RemoteAddr(SocketAddr::from(([127, 0, 0, last], 1000))))
    }

    #[test]
    fn limits_per_pair() {
        let l = AuthFailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(l.check("a", addr(1)), None);
            l.record_failure("a", addr(1));
        }
        let retry = l.check("a", addr(1)).expect("limited");
        assert!((1..=60).contains(&retry));
        assert_eq!(
            l.check("a", addr(2)),
            None,
            "another address is not locked out"
        );
        assert_eq!(
            l.check("b", addr(1)),
            None,
            "another client is not locked out"
        );
        l.record_success("a", addr(1));
        assert_eq!(l.check("a", addr(1)), None);
    }

    #[test]
    fn memory_is_bounded() {
        let l = AuthFailureLimiter::with_capacity(3, Duration::from_secs(60), 100);
        for i in 0..1000 {
            l.record_failure(&format!("c{i}"), addr(1));
        }
        assert!(l.tracked() <= 100);
    }
}
