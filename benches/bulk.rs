//! Bulk revocation: is a subject holding 100,000 grants revoked in the time of a subject
//! holding one? And what do cut-offs cost every other token's `inspect`?
//!
//! ```text
//! cargo bench --bench bulk
//! ```
//!
//! For `MemoryStore` and `RedisStore`:
//!
//! - `revoke_subject` of a subject with 1 grant, and of one with 10,000 and with 100,000
//!   grants (one access token each). Every timed call is a first revocation of its subject,
//!   so it writes the cut-off and counts the grants it revoked: each memory run uses a fresh
//!   store; between Redis runs the subjects' cut-off keys are deleted.
//! - `inspect` of one active token, with no cut-off in the store, then with 10,000 cut-offs
//!   of other subjects.
//!
//! Medians over `BULK_RUNS` runs (default 7). Redis is `REDIS_URL` (default
//! `redis://127.0.0.1:6379`); its keys go under a fresh prefix and are deleted at the end.
//! Without a Redis, its part is skipped with a note.

use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use redis::AsyncCommands as _;
use tower_oauth_revoke::{
    events::Initiator,
    store::{GrantId, MemoryStore, RedisStore, TokenHash, TokenKind, TokenRecord, TokenStore},
};

/// The sizes of the subjects revoked: grants each.
const SIZES: [usize; 3] = [1, 10_000, 100_000];
const CUT_OFFS: usize = 10_000;
const MEMORY_INSPECTS: u32 = 200_000;
const REDIS_INSPECTS: u32 = 2_000;

fn runs() -> usize {
    std::env::var("BULK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn show(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn subject(run: usize, grants: usize) -> String {
    format!("subject-{run}-{grants}")
}

/// Gives `owner` `grants` grants of one access token each, 512 at a time.
async fn issue_grants<S: TokenStore>(store: &S, owner: &str, grants: usize) {
    let expires = SystemTime::now() + Duration::from_secs(1800);
    let ids: Vec<usize> = (0..grants).collect();
    for chunk in ids.chunks(512) {
        join_all(chunk.iter().map(|i| {
            let record =
                TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires)
                    .with_owner(owner);
            store.issue(TokenHash::of(&format!("{owner}-{i}")), record)
        }))
        .await
        .into_iter()
        .for_each(|r| r.expect("issue"));
    }
}

/// Times one `revoke_subject`: how long until a token of the subject is refused (the
/// one write), and how long until the call returns (the write, then the count of what it
/// revoked, which reads the subject's index). Checks what it counted.
async fn time_revocation<S: TokenStore>(
    store: &S,
    owner: &str,
    grants: usize,
) -> (Duration, Duration) {
    let token = TokenHash::of(&format!("{owner}-0"));
    assert!(store.inspect(&token).await.unwrap().is_some());
    let start = Instant::now();
    let call = tokio::spawn({
        let (store, owner) = (store.clone(), owner.to_owned());
        async move { store.revoke_subject(&owner, Initiator::System).await }
    });
    // Polled from the other worker while the call runs.
    while store.inspect(&token).await.unwrap().is_some() {
        tokio::task::yield_now().await;
    }
    let refused = start.elapsed();
    let revoked = call.await.unwrap().expect("revoke_subject");
    let answered = start.elapsed();
    assert_eq!(revoked, grants, "{owner}: every grant counted once");
    (refused, answered)
}

async fn time_inspect<S: TokenStore>(store: &S, calls: u32) -> Duration {
    let token = TokenHash::of("reader-0");
    let start = Instant::now();
    for _ in 0..calls {
        let record = store.inspect(&token).await.expect("inspect");
        assert!(std::hint::black_box(record).is_some());
    }
    start.elapsed() / calls
}

/// Gives `reader` one active token in both stores and `gone-N` cut-offs in `cut`, then
/// times `inspect` of that token in each, alternating (clean, cut, cut, clean, ...) so that
/// other load weighs on both alike. The medians, clean first.
async fn compare_inspects<S: TokenStore>(clean: &S, cut: &S, calls: u32) -> (Duration, Duration) {
    issue_grants(clean, "reader", 1).await;
    issue_grants(cut, "reader", 1).await;
    let names: Vec<String> = (0..CUT_OFFS).map(|i| format!("gone-{i}")).collect();
    for chunk in names.chunks(512) {
        join_all(
            chunk
                .iter()
                .map(|name| cut.revoke_subject(name, Initiator::System)),
        )
        .await
        .into_iter()
        .for_each(|r| {
            r.expect("revoke_subject");
        });
    }
    // Warm-up: scripts loaded, caches filled.
    time_inspect(clean, calls / 10).await;
    time_inspect(cut, calls / 10).await;
    let (mut clean_samples, mut cut_samples) = (Vec::new(), Vec::new());
    for run in 0..runs() {
        if run % 2 == 0 {
            clean_samples.push(time_inspect(clean, calls).await);
            cut_samples.push(time_inspect(cut, calls).await);
        } else {
            cut_samples.push(time_inspect(cut, calls).await);
            clean_samples.push(time_inspect(clean, calls).await);
        }
    }
    (median(clean_samples), median(cut_samples))
}

fn report_revocations(store: &str, what: &str, medians: &[(usize, Duration)]) {
    println!("  {store}: {what}");
    let (_, one) = medians[0];
    for &(grants, time) in medians {
        let ratio = time.as_secs_f64() / one.as_secs_f64();
        let per_grant = if grants > 1 {
            format!(
                ", {:.0} ns a grant",
                time.saturating_sub(one).as_nanos() as f64 / (grants - 1) as f64
            )
        } else {
            String::new()
        };
        println!(
            "  {store:<12} revoke_subject, {grants:>7} grants: {:>10}  ({ratio:.0}x one grant{per_grant})",
            show(time)
        );
    }
}

fn report_both(store: &str, samples: Vec<Vec<(Duration, Duration)>>) {
    let refused: Vec<(usize, Duration)> = SIZES
        .iter()
        .zip(&samples)
        .map(|(&g, s)| (g, median(s.iter().map(|p| p.0).collect())))
        .collect();
    let answered: Vec<(usize, Duration)> = SIZES
        .iter()
        .zip(&samples)
        .map(|(&g, s)| (g, median(s.iter().map(|p| p.1).collect())))
        .collect();
    report_revocations(
        store,
        "until a token of the subject is refused (the write)",
        &refused,
    );
    report_revocations(
        store,
        "until the call returns (the write, then the count)",
        &answered,
    );
}

fn report_inspects(store: &str, clean: Duration, cut: Duration) {
    println!(
        "  {store:<12} inspect, no cut-off: {:>10}   {CUT_OFFS} cut-offs of other subjects: {:>10}  ({:.2}x)",
        show(clean),
        show(cut),
        cut.as_secs_f64() / clean.as_secs_f64()
    );
}

async fn memory() {
    let mut samples: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); SIZES.len()];
    for run in 0..runs() {
        let store = MemoryStore::new();
        for &grants in &SIZES {
            issue_grants(&store, &subject(run, grants), grants).await;
        }
        for (i, &grants) in SIZES.iter().enumerate() {
            samples[i].push(time_revocation(&store, &subject(run, grants), grants).await);
        }
    }
    report_both("MemoryStore", samples);

    let (clean, cut) =
        compare_inspects(&MemoryStore::new(), &MemoryStore::new(), MEMORY_INSPECTS).await;
    report_inspects("MemoryStore", clean, cut);
}

async fn redis_part() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tor-bench-bulk-{:016x}", rand::random::<u64>());
    let store = match RedisStore::builder()
        .key_prefix(&prefix)
        .operation_timeout(Duration::from_secs(30))
        .connect(url.as_str())
        .await
    {
        Ok(store) => store,
        Err(e) => {
            println!("  RedisStore   skipped: no Redis at {url}: {e}");
            return;
        }
    };
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let issuing = Instant::now();
    for &grants in &SIZES {
        issue_grants(&store, &subject(0, grants), grants).await;
    }
    eprintln!(
        "  (Redis: {} grants issued in {:.1} s)",
        SIZES.iter().sum::<usize>(),
        issuing.elapsed().as_secs_f64()
    );
    let cut_off_keys = format!("{{{prefix}}}:cs:*");
    let mut samples: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); SIZES.len()];
    for _ in 0..runs() {
        // Each run revokes the subjects for the first time: their cut-offs are deleted.
        let keys = keys_matching(&mut conn, &cut_off_keys).await;
        if !keys.is_empty() {
            let _: () = conn.del(keys).await.unwrap();
        }
        for (i, &grants) in SIZES.iter().enumerate() {
            samples[i].push(time_revocation(&store, &subject(0, grants), grants).await);
        }
    }
    report_both("RedisStore", samples);

    // Two more stores on the same Redis: one without cut-offs, one with.
    let (clean_prefix, cut_prefix) = (format!("{prefix}-clean"), format!("{prefix}-cut"));
    let mut stores = Vec::new();
    for p in [&clean_prefix, &cut_prefix] {
        stores.push(
            RedisStore::builder()
                .key_prefix(p)
                .connect(url.as_str())
                .await
                .expect("Redis answers"),
        );
    }
    let (clean, cut) = compare_inspects(&stores[0], &stores[1], REDIS_INSPECTS).await;
    report_inspects("RedisStore", clean, cut);

    for p in [&prefix, &clean_prefix, &cut_prefix] {
        let keys = keys_matching(&mut conn, &format!("{{{p}}}:*")).await;
        for chunk in keys.chunks(1000) {
            let _: () = conn.del(chunk).await.unwrap();
        }
    }
}

async fn keys_matching(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut iter: redis::AsyncIter<'_, String> = conn
        .scan_options(
            redis::ScanOptions::default()
                .with_pattern(pattern)
                .with_count(1000),
        )
        .await
        .unwrap();
    while let Some(key) = iter.next_item().await {
        keys.push(key.unwrap());
    }
    keys
}

fn main() {
    // Two workers: one runs the revocation, the other watches for the refusal.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "bulk revocation: medians of {} runs, each revocation the subject's first",
        runs()
    );
    runtime.block_on(async {
        memory().await;
        redis_part().await;
    });
}
