//! Counting failed client authentications, to stop brute force.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv6Addr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use super::RemoteAddr;

/// Limits failed client authentications per client id and remote address.
///
/// After `max_failures` failures within `window` for one (client id, address) pair,
/// further attempts of that pair are answered 429 with `Retry-After` until the window ends,
/// without even asking the registry. Another address is counted apart, so a stranger
/// cannot lock a client out. A success clears the pair's count.
///
/// - **Addresses**: an IPv4 address counts alone; an IPv6 address counts by its `/64`
///   prefix (one site, which could otherwise rotate through 2^64 addresses); an
///   IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from dual-stack listeners) counts as the
///   IPv4 address.
/// - **Concurrency**: [`begin`](Self::begin) spends one unit of the budget *before* the
///   registry is asked, atomically with the check, so that many concurrent attempts cannot
///   overspend the budget while a slow registry answers. A pair that has authenticated
///   within the window, and not failed since, is *proven*: its attempts are not charged
///   in advance, so a busy client is never limited by its own concurrency.
/// - **Memory** is bounded: at most `capacity` pairs are tracked (default 10,000), each with
///   a client id cut to 256 bytes. When the table is full, expired windows are dropped
///   first, then the eighth of the pairs with the fewest failures, so a flood of new pairs
///   cannot push out a pair that is locked or close to it.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth_revoke::client_auth::AuthFailureLimiter;
///
/// let limiter = AuthFailureLimiter::new(2, Duration::from_secs(60));
/// for _ in 0..2 {
///     let attempt = limiter.begin("app", None).expect("within budget");
///     attempt.failed();
/// }
/// let retry_after = limiter.begin("app", None).unwrap_err();
/// assert!((1..=60).contains(&retry_after));
/// ```
#[derive(Clone)]
pub struct AuthFailureLimiter {
    inner: Arc<LimiterInner>,
}

type Key = (Box<str>, IpAddr);

struct LimiterInner {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    counts: Mutex<HashMap<Key, Window>>,
    /// Whether the limiter has warned that requests come without an address.
    warned_no_addr: AtomicBool,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
    /// Until when the pair counts as proven: it authenticated, and has not failed since.
    proven_until: Option<Instant>,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            failures: 0,
            proven_until: None,
        }
    }
}

debug_fields!(AuthFailureLimiter {
    max_failures: inner.max_failures,
    window: inner.window,
    capacity: inner.capacity
});

const UNKNOWN_ADDR: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The longest client id kept as a key, in bytes.
const MAX_ID_BYTES: usize = 256;

/// The address a failure counts against: IPv4 alone, IPv6 by `/64`.
fn address_key(addr: Option<RemoteAddr>) -> IpAddr {
    let Some(RemoteAddr(addr)) = addr else {
        return UNKNOWN_ADDR;
    };
    match addr.ip().to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

fn id_key(client_id: &str) -> Box<str> {
    let mut end = client_id.len().min(MAX_ID_BYTES);
    while !client_id.is_char_boundary(end) {
        end -= 1;
    }
    client_id[..end].into()
}

/// Seconds until `remaining` has passed, rounded up, at least 1.
fn retry_after(remaining: Duration) -> u64 {
    (remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0)).max(1)
}

impl AuthFailureLimiter {
    /// Allows `max_failures` failures per pair within each `window` (`max_failures` is at
    /// least 1).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, 10_000)
    }

    /// As [`new`](Self::new), tracking at most `capacity` pairs (at least 8).
    pub fn with_capacity(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::new(LimiterInner {
                max_failures: max_failures.max(1),
                window,
                capacity: capacity.max(8),
                counts: Mutex::new(HashMap::new()),
                warned_no_addr: AtomicBool::new(false),
            }),
        }
    }

    fn key(&self, client_id: &str, addr: Option<RemoteAddr>) -> Key {
        if addr.is_none() && !self.inner.warned_no_addr.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "AuthFailureLimiter: a request carries no RemoteAddr, so every such request \
                 shares one failure budget and anyone can lock a client out; insert \
                 RemoteAddr (or serve axum with ConnectInfo<SocketAddr>)"
            );
        }
        (id_key(client_id), address_key(addr))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Window>> {
        // Every write is a single insert, update or removal: a poisoned map is consistent.
        self.inner.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pair's live window, if any, with the time it has run.
    fn live<'a>(
        &self,
        counts: &'a HashMap<Key, Window>,
        key: &Key,
        now: Instant,
    ) -> Option<(&'a Window, Duration)> {
        let w = counts.get(key)?;
        let elapsed = now.saturating_duration_since(w.started);
        (elapsed < self.inner.window).then_some((w, elapsed))
    }

    /// If the pair has spent its budget, the seconds until it may try again.
    pub fn check(&self, client_id: &str, addr: Option<RemoteAddr>) -> Option<u64> {
        let key = self.key(client_id, addr);
        let counts = self.lock();
        let (w, elapsed) = self.live(&counts, &key, Instant::now())?;
        (w.failures >= self.inner.max_failures).then(|| retry_after(self.inner.window - elapsed))
    }

    /// Starts an authentication attempt of the pair: `Err(seconds)` if the pair has spent
    /// its budget, else the attempt, which has already spent one unit of the budget.
    ///
    /// End it with [`AuthAttempt::succeeded`] (the pair's count is cleared),
    /// [`AuthAttempt::failed`], or [`AuthAttempt::abandon`] (the unit is given back, for
    /// an attempt that could not be judged, e.g. the registry was unavailable). An attempt
    /// dropped without a verdict (the client went away mid-check) stays counted.
    pub fn begin(&self, client_id: &str, addr: Option<RemoteAddr>) -> Result<AuthAttempt, u64> {
        let key = self.key(client_id, addr);
        let now = Instant::now();
        let mut counts = self.lock();
        if let Some((w, elapsed)) = self.live(&counts, &key, now) {
            if w.failures >= self.inner.max_failures {
                return Err(retry_after(self.inner.window - elapsed));
            }
            if let Some(until) = w.proven_until.filter(|&until| now < until) {
                return Ok(AuthAttempt {
                    limiter: self.clone(),
                    key: Some(key),
                    charged: false,
                    // A success renews the proof once half of it has run: a client that
                    // keeps succeeding stays proven, at one write per half window rather
                    // than one per request.
                    renew: until.saturating_duration_since(now) < self.inner.window / 2,
                });
            }
        }
        self.count_failure(&mut counts, key.clone(), now);
        Ok(AuthAttempt {
            limiter: self.clone(),
            key: Some(key),
            charged: true,
            renew: true,
        })
    }

    /// Records a failure of the pair.
    pub fn record_failure(&self, client_id: &str, addr: Option<RemoteAddr>) {
        let key = self.key(client_id, addr);
        let now = Instant::now();
        let mut counts = self.lock();
        self.count_failure(&mut counts, key, now);
    }

    fn count_failure(&self, counts: &mut HashMap<Key, Window>, key: Key, now: Instant) {
        if !counts.contains_key(&key) && counts.len() >= self.inner.capacity {
            self.make_room(counts, now);
        }
        let window = self.inner.window;
        let w = counts.entry(key).or_insert(Window::new(now));
        if now.saturating_duration_since(w.started) >= window {
            *w = Window::new(now);
        }
        w.failures = w.failures.saturating_add(1);
        w.proven_until = None;
    }

    /// The pair authenticated: its failures are forgiven and it is proven for a window.
    fn prove(&self, key: Key) {
        let now = Instant::now();
        let mut counts = self.lock();
        if !counts.contains_key(&key) && counts.len() >= self.inner.capacity {
            self.make_room(&mut counts, now);
        }
        counts.insert(
            key,
            Window {
                started: now,
                failures: 0,
                proven_until: Some(now + self.inner.window),
            },
        );
    }

    /// Drops expired windows; if that is not enough, the eighth of the pairs with the
    /// fewest failures (the oldest first among equals). Amortised, this is constant work
    /// per new pair.
    fn make_room(&self, counts: &mut HashMap<Key, Window>, now: Instant) {
        let window = self.inner.window;
        counts.retain(|_, w| now.saturating_duration_since(w.started) < window);
        if counts.len() < self.inner.capacity {
            return;
        }
        let evict = (self.inner.capacity / 8).max(1);
        let mut ranked: Vec<(u32, Instant, &Key)> = counts
            .iter()
            .map(|(k, w)| (w.failures, w.started, k))
            .collect();
        ranked.select_nth_unstable_by_key(evict - 1, |&(failures, started, _)| (failures, started));
        let victims: Vec<Key> = ranked[..evict].iter().map(|&(_, _, k)| k.clone()).collect();
        for key in victims {
            counts.remove(&key);
        }
    }

    /// Clears the pair's count after a success (and marks it proven, see
    /// [`begin`](Self::begin)).
    pub fn record_success(&self, client_id: &str, addr: Option<RemoteAddr>) {
        self.prove(self.key(client_id, addr));
    }

    fn refund(&self, key: &Key) {
        let mut counts = self.lock();
        if let Some(w) = counts.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
            if w.failures == 0 {
                counts.remove(key);
            }
        }
    }

    /// How many pairs are tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// The most pairs ever tracked at once.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }
}

/// One client authentication in progress, from [`AuthFailureLimiter::begin`].
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless it succeeds or is abandoned"]
pub struct AuthAttempt {
    limiter: AuthFailureLimiter,
    key: Option<Key>,
    /// Whether the attempt spent its unit in advance (the pair was not proven).
    charged: bool,
    /// Whether a success must (re)write the pair's proof.
    renew: bool,
}

impl AuthAttempt {
    /// The client authenticated: its pair's count is cleared and the pair is proven.
    pub fn succeeded(mut self) {
        if let Some(key) = self.key.take() {
            if self.renew {
                self.limiter.prove(key);
            }
        }
    }

    /// The client failed to authenticate: the unit stays spent (or is spent now, for a
    /// proven pair, which stops being proven).
    pub fn failed(mut self) {
        if let Some(key) = self.key.take() {
            if !self.charged {
                self.limiter
                    .count_failure(&mut self.limiter.lock(), key, Instant::now());
            }
        }
    }

    /// The attempt could not be judged (the registry was unavailable): the unit is given
    /// back.
    pub fn abandon(mut self) {
        if let Some(key) = self.key.take() {
            if self.charged {
                self.limiter.refund(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn addr(last: u8) -> Option<RemoteAddr> {
        Some(RemoteAddr(SocketAddr::from(([127, 0, 0, last], 1000))))
    }

    fn v6(s: &str) -> Option<RemoteAddr> {
        Some(RemoteAddr(SocketAddr::new(s.parse().unwrap(), 1000)))
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

    /// A client that keeps succeeding stays proven past the first window (its proof is
    /// renewed once half of it has run, not on every request), and is never charged.
    #[test]
    fn a_client_that_keeps_succeeding_stays_proven() {
        let window = Duration::from_secs(1);
        let l = AuthFailureLimiter::new(3, window);
        let first = l.begin("a", addr(1)).unwrap();
        assert!(first.charged);
        first.succeeded();
        let start = Instant::now();
        let mut renewed = 0;
        while start.elapsed() < window + window / 2 {
            std::thread::sleep(window / 8);
            let attempt = l.begin("a", addr(1)).unwrap();
            assert!(!attempt.charged, "charged after {:?}", start.elapsed());
            renewed += usize::from(attempt.renew);
            attempt.succeeded();
        }
        assert!(renewed >= 1, "the proof was renewed");
        assert!(
            renewed <= 3,
            "renewed {renewed} times, not on every success"
        );
        // A failure still ends the proof.
        l.begin("a", addr(1)).unwrap().failed();
        assert!(l.begin("a", addr(1)).unwrap().charged);
    }

    #[test]
    fn begin_spends_the_budget_before_the_verdict() {
        let l = AuthFailureLimiter::new(3, Duration::from_secs(60));
        // Three attempts in flight at once: the fourth is refused before any verdict.
        let pending: Vec<AuthAttempt> = (0..3).map(|_| l.begin("a", addr(1)).unwrap()).collect();
        let retry = l
            .begin("a", addr(1))
            .expect_err("budget spent by attempts in flight");
        assert_eq!(retry, 60);
        assert!(
            l.begin("a", addr(2)).is_ok(),
            "another address has its own budget"
        );
        let mut pending = pending.into_iter();
        pending.next().unwrap().abandon();
        let again = l
            .begin("a", addr(1))
            .expect("an abandoned attempt gives its unit back");
        again.failed();
        pending.next().unwrap().failed();
        drop(pending.next().unwrap()); // dropped without a verdict: stays counted
        assert!(l.begin("a", addr(1)).is_err());
    }

    #[test]
    fn success_clears_the_pair() {
        let l = AuthFailureLimiter::new(2, Duration::from_secs(60));
        l.begin("a", addr(1)).unwrap().failed();
        l.begin("a", addr(1)).unwrap().succeeded();
        l.begin("a", addr(1)).unwrap().failed();
        assert!(
            l.begin("a", addr(1)).is_ok(),
            "one failure since the success"
        );
    }

    #[test]
    fn a_proven_pair_is_not_limited_by_its_own_concurrency() {
        let l = AuthFailureLimiter::new(3, Duration::from_secs(60));
        l.begin("a", addr(1)).unwrap().succeeded();
        // Ten checks in flight at once, all of them honest.
        let pending: Vec<AuthAttempt> = (0..10).map(|_| l.begin("a", addr(1)).unwrap()).collect();
        pending.into_iter().for_each(AuthAttempt::succeeded);
        // One failure ends the proof: attempts are charged in advance again.
        l.begin("a", addr(1)).unwrap().failed();
        let _a = l.begin("a", addr(1)).unwrap();
        let _b = l.begin("a", addr(1)).unwrap();
        assert!(
            l.begin("a", addr(1)).is_err(),
            "1 failure + 2 in flight = 3"
        );
        // Another address is not proven by this one's success.
        let _c = l.begin("a", addr(2)).unwrap();
        let _d = l.begin("a", addr(2)).unwrap();
        let _e = l.begin("a", addr(2)).unwrap();
        assert!(l.begin("a", addr(2)).is_err());
    }

    #[test]
    fn an_expired_window_starts_over() {
        let l = AuthFailureLimiter::new(1, Duration::ZERO);
        for _ in 0..5 {
            l.begin("a", addr(1)).unwrap().failed();
        }
        assert_eq!(l.check("a", addr(1)), None);
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_ipv4_as_ipv4() {
        let l = AuthFailureLimiter::new(2, Duration::from_secs(60));
        l.record_failure("a", v6("2001:db8:1:2::1"));
        l.record_failure("a", v6("2001:db8:1:2:ffff::9"));
        assert!(l.check("a", v6("2001:db8:1:2::77")).is_some(), "same /64");
        assert!(l.check("a", v6("2001:db8:1:3::1")).is_none(), "another /64");

        l.record_failure("b", v6("::ffff:127.0.0.2"));
        l.record_failure("b", addr(2));
        assert!(
            l.check("b", addr(2)).is_some(),
            "mapped and plain IPv4 are one address"
        );
        assert!(
            l.check("b", v6("::ffff:127.0.0.3")).is_none(),
            "mapped IPv4 is not lumped by /64"
        );
    }

    #[test]
    fn long_ids_are_cut_on_a_char_boundary() {
        let l = AuthFailureLimiter::new(1, Duration::from_secs(60));
        let id = "é".repeat(300);
        l.record_failure(&id, addr(1));
        assert!(l.check(&id, addr(1)).is_some());
        assert!(l.lock().keys().all(|(k, _)| k.len() <= MAX_ID_BYTES));
    }

    #[test]
    fn memory_is_bounded() {
        let l = AuthFailureLimiter::with_capacity(3, Duration::from_secs(60), 100);
        for i in 0..1000 {
            l.record_failure(&format!("c{i}"), addr(1));
        }
        assert!(l.tracked() <= 100);
    }

    #[test]
    fn a_flood_of_new_pairs_does_not_evict_a_locked_pair() {
        let l = AuthFailureLimiter::with_capacity(3, Duration::from_secs(60), 64);
        for _ in 0..3 {
            l.begin("victim", addr(9)).unwrap().failed();
        }
        for i in 0..10_000 {
            l.record_failure(&format!("junk{i}"), addr(9));
            assert!(l.tracked() <= 64);
        }
        assert!(
            l.check("victim", addr(9)).is_some(),
            "the attacker could not reset its own budget by flooding the table"
        );
    }
}
