//! Revocations of live tokens per second on every store, as mounted, in one run.
//!
//! ```text
//! cargo bench --features redis,postgres --bench stores
//! STORES_CONNS=16,64 cargo bench --features redis,postgres --bench stores   # a concurrency sweep
//! ```
//!
//! This process serves, on 127.0.0.1, the revocation endpoint as the demo mounts it (an
//! axum `Router` route served by `serve::Server`; CORS, JSON-P, a realm, the failure
//! limiter, client authentication with Basic, the form, the revocation) once per store:
//! `MemoryStore`, `RedisStore` (`REDIS_URL`, keys under a random prefix, deleted at the end)
//! and `PostgresStore` (a scratch database `tor_bench_<random>` on the server of
//! `DATABASE_URL`, dropped at the end). Before each round it mints, outside the timing,
//! enough fresh access tokens for that round (each in a grant of its own, owned by one of
//! 1,000 users), and hands them to the load generator, which is this benchmark re-executed
//! as a separate process (`--load-client`), on its stdin. Every request revokes one of them:
//! a live token, never reused, so every answer is a 200 that deleted a token and (on Redis
//! and PostgreSQL) wrote an outbox entry. Rounds visit the stores in the order M R P, then
//! P R M, ... so that machine drift cancels in the per-round ratios.
//!
//! Printed per round and as medians per store: requests/s, p50 and p99 latency, CPU per
//! request of this process (the node), of the store's server processes and of the load
//! generator; the ratios Redis/memory and PostgreSQL/memory (medians of per-round ratios).
//! For PostgreSQL also where its time goes: commits and WAL flushes per revocation
//! (`pg_stat_database`, `pg_stat_wal`), the functions' own time per call
//! (`pg_stat_user_functions`), and what the pool's backends were doing, sampled every
//! 10 ms from `pg_stat_activity` (running, waiting for the WAL flush, for a lock, or idle
//! waiting for the node). For Redis, the script's time per call inside Redis
//! (`INFO commandstats`). With `STORES_FLOOR=1` (default), each round also runs three
//! `pgbench` floors on the scratch database with as many connections (fewer if the server
//! has not that many free): a transaction of one `INSERT` (the commit's WAL flush, which
//! group commit shares between concurrent transactions); the same with a `NOTIFY`, as every
//! revocation sends one (PostgreSQL queues notifications in commit order under a lock held
//! through the commit); and the `INSERT` under the outbox's advisory lock (7009, 0), held
//! to commit as every revocation holds it (commits one after another).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `STORES_ROUNDS` | 3 | rounds (each visits every store) |
//! | `STORES_SECS` | 3 | measured seconds per store and round |
//! | `STORES_WARMUP_MS` | 300 | unmeasured warm-up at the start of each |
//! | `STORES_CONNS` | 16 | keep-alive connections; a comma list (`16,64`) sweeps, one set of rounds each |
//! | `STORES_PG_POOL` | = connections | `PostgresStore::pool_size` |
//! | `STORES_ONLY` | `memory,redis,postgres` | the stores to run (memory is the baseline of the ratios) |
//! | `STORES_FLOOR` | 1 | 0: no pgbench floors |
//! | `STORES_PG_ASYNC` | 0 | 1: also PostgreSQL on a second scratch database with `synchronous_commit = off`, to show what the commit's flush costs (at the first connection count of a sweep). **Not durable**: a measurement, never a configuration of the store |
//! | `STORES_SERVER_THREADS` | 1 | the node's runtime worker threads |
//! | `STORES_CLIENT_THREADS` | 1 | the load generator's runtime threads |

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tower_oauth_revoke::{
    client_auth::{encode_basic, AuthFailureLimiter, Client, MemoryClientRegistry},
    serve::Server,
    store::{
        generate_token, GrantId, MemoryStore, PostgresStore, RedisStore, TokenHash, TokenKind,
        TokenRecord, TokenStore,
    },
    RevocationEndpoint,
};

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "k3V9qZr2xP8wL5tN1mB7cD4fG6hJ0sA2";
/// The length of [`generate_token`]'s tokens: 256 bits in unpadded base64url.
const TOKEN_LEN: usize = 43;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--load-client") {
        client::main(&args[i + 1..]);
        return;
    }
    let threads: usize = env_or("STORES_SERVER_THREADS", 1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(server_main());
}

// ---------------------------------------------------------------------------------------
// The node: one endpoint per store.

/// The endpoint as the demo mounts it, over `store`.
fn mounted<S: TokenStore>(store: S) -> axum::Router {
    let registry = MemoryClientRegistry::new([Client::confidential(CLIENT_ID, CLIENT_SECRET)]);
    let revoke = RevocationEndpoint::builder(registry, store)
        .realm("bench")
        .limit_failures(AuthFailureLimiter::new(20, Duration::from_secs(60)))
        .cors_origins(["https://app.example.com"])
        .jsonp(true)
        .build()
        .expect("the endpoint builds");
    axum::Router::new().route_service("/oauth2/revoke", revoke)
}

/// Serves `app` on a free loopback port with the demo's `Server`, until the sender is used
/// or dropped.
async fn serve(app: axum::Router) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let server = Server::new().idle_timeout(Duration::from_secs(10));
        let _ = server
            .serve(listener, app, async {
                let _ = stopped.await;
            })
            .await;
    });
    (addr, stop)
}

#[derive(Clone)]
enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Registers `n` fresh access tokens, each in a grant of its own, 64 at a time; returns
    /// them.
    async fn mint(&self, n: usize) -> Vec<String> {
        match self {
            Store::Memory(s) => mint(s, n).await,
            Store::Redis(s) => mint(s, n).await,
            Store::Postgres(s) => mint(s, n).await,
        }
    }
}

async fn mint<S: TokenStore>(store: &S, n: usize) -> Vec<String> {
    let tokens: Vec<String> = (0..n).map(|_| generate_token()).collect();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, token)| {
            let record = TokenRecord::new(
                TokenKind::AccessToken,
                CLIENT_ID,
                GrantId::random(),
                expires,
            )
            .with_owner(format!("user{}", i % 1000));
            store.issue(TokenHash::of(token), record)
        })
        .buffer_unordered(64)
        .for_each(|r| {
            r.expect("issue");
            async {}
        })
        .await;
    tokens
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Memory,
    Redis,
    Postgres,
    PostgresAsync,
    FloorCommit,
    FloorNotify,
    FloorLocked,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Redis => "redis",
            Kind::Postgres => "postgres",
            Kind::PostgresAsync => "postgres sync_commit=off",
            Kind::FloorCommit => "floor: pgbench commit",
            Kind::FloorNotify => "floor: pgbench commit+NOTIFY",
            Kind::FloorLocked => "floor: pgbench locked commit",
        }
    }
}

/// One thing a round measures: an endpoint over a store, or a pgbench floor.
struct Target {
    kind: Kind,
    addr: Option<SocketAddr>,
    store: Option<Store>,
    /// The scratch database's URL (PostgreSQL and the floors).
    db_url: Option<String>,
    db_name: Option<String>,
    /// The tokens to mint next round: grows with the measured rate.
    budget: usize,
    _stop: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Clone, Default)]
struct RoundResult {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    node_cpu_us: f64,
    store_cpu_us: f64,
    client_cpu_us: f64,
    errors: u64,
    exhausted: bool,
    /// Extra figures, name → value per request.
    extra: BTreeMap<&'static str, f64>,
    /// PostgreSQL backends' states, sampled: state → share of samples.
    waits: BTreeMap<String, f64>,
}

/// CPU time (user + system, in µs) of the processes whose command name is `comm`.
fn processes_cpu_us(comm: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim_end() == comm) {
            if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let fields: Vec<&str> = rest.split_whitespace().collect();
                for i in [11, 12] {
                    ticks += fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
        }
    }
    ticks as f64 * 10_000.0
}

/// CPU time used by this whole process, in µs.
fn own_cpu_us() -> f64 {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total as f64 / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers");
    tokio::spawn(connection);
    client
}

/// Counters of the scratch database and the cluster's WAL, for deltas around a round.
async fn pg_counters(db: &tokio_postgres::Client, name: &str) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let row = db
        .query_one(
            "SELECT xact_commit::float8 FROM pg_stat_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("pg_stat_database");
    out.insert("commits", row.get::<_, f64>(0));
    let row = db
        .query_one(
            "SELECT wal_records::float8, wal_write::float8, wal_sync::float8, \
             wal_sync_time::float8 FROM pg_stat_wal",
            &[],
        )
        .await
        .expect("pg_stat_wal");
    out.insert("wal records", row.get::<_, f64>(0));
    out.insert("wal writes", row.get::<_, f64>(1));
    out.insert("wal flushes", row.get::<_, f64>(2));
    out.insert("wal flush ms", row.get::<_, f64>(3));
    for row in db
        .query(
            "SELECT funcname::text, calls::float8, total_time, self_time \
             FROM pg_stat_user_functions WHERE funcname IN ('tor_revoke', 'tor_log')",
            &[],
        )
        .await
        .expect("pg_stat_user_functions")
    {
        let name: String = row.get(0);
        let (calls, total, own): (f64, f64, f64) = (row.get(1), row.get(2), row.get(3));
        let (c, t, s) = match name.as_str() {
            "tor_revoke" => ("tor_revoke calls", "tor_revoke ms", "tor_revoke self ms"),
            _ => ("tor_log calls", "tor_log ms", "tor_log self ms"),
        };
        out.insert(c, calls);
        out.insert(t, total);
        out.insert(s, own);
    }
    out
}

/// Samples what the store's backends in database `name` are doing, every 10 ms, until
/// `running` is cleared: state → samples.
async fn sample_waits(
    url: String,
    name: String,
    running: Arc<AtomicBool>,
) -> BTreeMap<String, u64> {
    let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
    else {
        return BTreeMap::new();
    };
    tokio::spawn(connection);
    let statement = client
        .prepare(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'tower-oauth-revoke' \
             AND backend_type = 'client backend' AND query NOT LIKE 'LISTEN%'",
        )
        .await
        .expect("prepare");
    let mut counts = BTreeMap::new();
    while running.load(Ordering::Relaxed) {
        for row in client.query(&statement, &[&name]).await.unwrap_or_default() {
            let state: Option<String> = row.get(0);
            let kind: Option<String> = row.get(1);
            let event: Option<String> = row.get(2);
            let label = match (state.as_deref(), kind, event) {
                (Some("active"), None, _) => "active: running".to_owned(),
                (Some("active"), Some(k), Some(e)) => format!("active: waiting {k}/{e}"),
                (Some("idle"), _, _) => "idle: waiting for the node".to_owned(),
                (s, k, e) => format!(
                    "{}: {}/{}",
                    s.unwrap_or("?"),
                    k.unwrap_or_default(),
                    e.unwrap_or_default()
                ),
            };
            *counts.entry(label).or_insert(0) += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counts
}

/// `INFO commandstats` of Redis: (calls, µs) of EVALSHA.
async fn redis_script_stats(url: &str) -> (f64, f64) {
    let mut conn = redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    let line = info.lines().find(|l| l.starts_with("cmdstat_evalsha:"));
    let field = |name: &str| -> f64 {
        line.and_then(|l| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
    };
    (field("calls"), field("usec"))
}

/// Runs the load generator against `addr` with `tokens`; returns its result line's fields.
fn run_client(addr: SocketAddr, conns: usize, tokens: &[String]) -> BTreeMap<String, f64> {
    let secs: f64 = env_or("STORES_SECS", 3.0);
    let warmup_ms: u64 = env_or("STORES_WARMUP_MS", 300);
    let threads: usize = env_or("STORES_CLIENT_THREADS", 1);
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .arg("--load-client")
        .arg(addr.to_string())
        .arg(conns.to_string())
        .arg(secs.to_string())
        .arg(warmup_ms.to_string())
        .arg(threads.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the load generator");
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        for token in tokens {
            stdin.write_all(token.as_bytes()).expect("write tokens");
            stdin.write_all(b"\n").expect("write tokens");
        }
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the result");
    let status = child.wait().expect("wait for the load generator");
    assert!(status.success(), "the load generator failed: {status}");
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
        .collect()
}

/// One round of one endpoint target.
async fn measure_endpoint(t: &mut Target, conns: usize) -> RoundResult {
    let store = t.store.clone().expect("a store");
    let tokens = store.mint(t.budget).await;
    let redis_url = redis_url();
    let pg = match (&t.db_url, &t.db_name) {
        (Some(url), Some(name)) => Some((pg_connect(url).await, name.clone())),
        _ => None,
    };
    if pg.is_some() {
        // The minting's statistics reach the shared counters within a second of each
        // backend's last transaction: not to be counted as the round's.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let before_pg = match &pg {
        Some((db, name)) => Some(pg_counters(db, name).await),
        None => None,
    };
    let before_script = match t.kind {
        Kind::Redis => Some(redis_script_stats(&redis_url).await),
        _ => None,
    };
    let running = Arc::new(AtomicBool::new(true));
    let sampler = pg.as_ref().map(|(_, name)| {
        let url = format!("{}/postgres", common::postgres_server_url());
        tokio::spawn(sample_waits(url, name.clone(), running.clone()))
    });
    let store_comm = match t.kind {
        Kind::Redis => "redis-server",
        Kind::Memory => "",
        _ => "postgres",
    };
    let (node0, store0) = (own_cpu_us(), processes_cpu_us(store_comm));
    let addr = t.addr.expect("an address");
    let fields = tokio::task::spawn_blocking(move || run_client(addr, conns, &tokens))
        .await
        .expect("the load generator ran");
    let (node1, store1) = (own_cpu_us(), processes_cpu_us(store_comm));
    running.store(false, Ordering::Relaxed);
    let count = fields["count"];
    // CPU windows include the warm-up and the tail: scale by every request sent.
    let sent = fields["sent"].max(1.0);
    let mut result = RoundResult {
        rps: count / fields["secs"],
        p50_us: fields["p50_ns"] / 1000.0,
        p99_us: fields["p99_ns"] / 1000.0,
        node_cpu_us: (node1 - node0) / sent,
        store_cpu_us: (store1 - store0) / sent,
        client_cpu_us: fields["cpu_ns"] / 1000.0 / sent,
        errors: fields["errors"] as u64,
        exhausted: fields["exhausted"] > 0.0,
        ..RoundResult::default()
    };
    if let Some(sampler) = sampler {
        let counts = sampler.await.expect("the sampler ran");
        let total: u64 = counts.values().sum();
        for (label, n) in counts {
            result.waits.insert(label, n as f64 / total.max(1) as f64);
        }
    }
    if let (Some((db, name)), Some(before)) = (&pg, before_pg) {
        // Statistics reach the shared counters within a second of each backend's last
        // transaction.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let after = pg_counters(db, name).await;
        let delta =
            |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
        result.extra.insert("commits/rev", delta("commits") / sent);
        result
            .extra
            .insert("wal flushes/rev", delta("wal flushes") / sent);
        result
            .extra
            .insert("wal records/rev", delta("wal records") / sent);
        let flushes = delta("wal flushes").max(1.0);
        result
            .extra
            .insert("µs/wal flush", delta("wal flush ms") * 1000.0 / flushes);
        let calls = delta("tor_revoke calls").max(1.0);
        result.extra.insert(
            "tor_revoke µs/call",
            delta("tor_revoke ms") * 1000.0 / calls,
        );
        result.extra.insert(
            "tor_revoke self µs",
            delta("tor_revoke self ms") * 1000.0 / calls,
        );
        result.extra.insert(
            "tor_log µs/call (lock wait in)",
            delta("tor_log ms") * 1000.0 / delta("tor_log calls").max(1.0),
        );
    }
    if let Some((calls0, usec0)) = before_script {
        let (calls1, usec1) = redis_script_stats(&redis_url).await;
        result.extra.insert("scripts/rev", (calls1 - calls0) / sent);
        result.extra.insert(
            "script µs/call",
            (usec1 - usec0) / (calls1 - calls0).max(1.0),
        );
    }
    // Next round: enough tokens for the rate seen, with room.
    let secs: f64 = env_or("STORES_SECS", 3.0);
    let warm: f64 = env_or::<f64>("STORES_WARMUP_MS", 300.0) / 1000.0;
    let wanted = (result.rps * (secs + warm) * 1.5) as usize + conns * 8;
    t.budget = if result.exhausted {
        (t.budget * 2).max(wanted)
    } else {
        t.budget.max(wanted)
    }
    .min(3_000_000);
    result
}

/// Connections the server can still take, keeping 10 spare (the pools of the stores stay
/// open while a floor runs).
async fn free_connections(url: &str) -> usize {
    let db = pg_connect(url).await;
    let row = db
        .query_one(
            "SELECT current_setting('max_connections')::int - count(*)::int - 10 \
             FROM pg_stat_activity",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    usize::try_from(row.get::<_, i32>(0)).unwrap_or(1).max(1)
}

/// One round of a pgbench floor on the scratch database, with `conns` connections.
fn measure_floor(t: &Target, conns: usize) -> RoundResult {
    let secs: f64 = env_or("STORES_SECS", 3.0);
    let script = match t.kind {
        Kind::FloorCommit => "INSERT INTO bench_floor VALUES (1);\n",
        Kind::FloorNotify => {
            "BEGIN;\nINSERT INTO bench_floor VALUES (1);\nSELECT pg_notify('bench_floor', '1');\nCOMMIT;\n"
        }
        _ => "BEGIN;\nSELECT pg_advisory_xact_lock(7009, 0);\nINSERT INTO bench_floor VALUES (1);\nCOMMIT;\n",
    };
    let path = std::env::temp_dir().join(format!("tor-bench-floor-{}.sql", std::process::id()));
    std::fs::write(&path, script).expect("write the pgbench script");
    let pg0 = processes_cpu_us("postgres");
    let output = Command::new("pgbench")
        .args(["-n", "-j", "1", "-M", "prepared"])
        .arg(format!("-c{conns}"))
        .arg(format!("-T{}", secs.round().max(1.0) as u64))
        .arg("-f")
        .arg(&path)
        .arg(t.db_url.as_deref().expect("a database"))
        .stderr(Stdio::null())
        .output();
    let pg1 = processes_cpu_us("postgres");
    let _ = std::fs::remove_file(&path);
    let Ok(output) = output else {
        return RoundResult {
            rps: f64::NAN,
            ..RoundResult::default()
        };
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let number_after = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let tps = number_after("tps = ");
    let done = number_after("number of transactions actually processed: ");
    RoundResult {
        rps: tps,
        p50_us: number_after("latency average = ") * 1000.0,
        p99_us: f64::NAN,
        store_cpu_us: (pg1 - pg0) / done,
        ..RoundResult::default()
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A scratch database, with the statistics the figures need turned on.
async fn scratch_database(async_commit: bool) -> Option<common::Database> {
    let db = common::Database::create("tor_bench")?;
    let admin = pg_connect(&format!("{}/postgres", common::postgres_server_url())).await;
    let name = db.url().rsplit_once('/').expect("a name").1.to_owned();
    let mut settings = vec!["track_functions = 'pl'", "track_wal_io_timing = on"];
    if async_commit {
        settings.push("synchronous_commit = off");
    }
    for setting in settings {
        admin
            .batch_execute(&format!("ALTER DATABASE {name} SET {setting}"))
            .await
            .expect("ALTER DATABASE");
    }
    Some(db)
}

async fn postgres_target(kind: Kind, db: &common::Database, pool: usize) -> Target {
    let store = PostgresStore::builder()
        .pool_size(pool)
        .connect(&db.url())
        .await
        .expect("PostgresStore connects");
    let (addr, stop) = serve(mounted(store.clone())).await;
    Target {
        kind,
        addr: Some(addr),
        store: Some(Store::Postgres(store)),
        db_url: Some(db.url()),
        db_name: db.url().rsplit_once('/').map(|(_, n)| n.to_owned()),
        budget: 4_000,
        _stop: Some(stop),
    }
}

async fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut keys: Vec<String> = Vec::new();
    if let Ok(mut iter) = conn
        .scan_match::<_, String>(format!("{{{prefix}}}:*"))
        .await
    {
        while let Some(Ok(key)) = iter.next_item().await {
            keys.push(key);
        }
    }
    for chunk in keys.chunks(1000) {
        let _: Result<(), _> = conn.del(chunk).await;
    }
}

async fn server_main() {
    let rounds: usize = env_or("STORES_ROUNDS", 3);
    let secs: f64 = env_or("STORES_SECS", 3.0);
    let warmup_ms: u64 = env_or("STORES_WARMUP_MS", 300);
    let sweep: Vec<usize> = std::env::var("STORES_CONNS")
        .unwrap_or_else(|_| "16".into())
        .split(',')
        .map(|c| c.trim().parse().expect("STORES_CONNS: numbers"))
        .collect();
    let only = std::env::var("STORES_ONLY").unwrap_or_else(|_| "memory,redis,postgres".into());
    let wants = |name: &str| only.split(',').any(|s| s.trim() == name);
    let floors = env_or::<u8>("STORES_FLOOR", 1) == 1 && wants("postgres");
    let pg_async = env_or::<u8>("STORES_PG_ASYNC", 0) == 1;

    println!(
        "stores: live access tokens, one revoked per request, {rounds} rounds, {secs} s each \
         after {warmup_ms} ms warm-up, load generator in a separate process, node {} thread(s), \
         {} core(s)",
        env_or::<usize>("STORES_SERVER_THREADS", 1),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut targets: Vec<Target> = Vec::new();
    let memory = MemoryStore::new();
    let (addr, stop) = serve(mounted(memory.clone())).await;
    targets.push(Target {
        kind: Kind::Memory,
        addr: Some(addr),
        store: Some(Store::Memory(memory)),
        db_url: None,
        db_name: None,
        budget: 100_000,
        _stop: Some(stop),
    });
    let prefix = format!("tor-bench-{:016x}", rand::random::<u64>());
    if wants("redis") {
        match RedisStore::builder()
            .key_prefix(&prefix)
            .connect(redis_url().as_str())
            .await
        {
            Ok(redis) => {
                let (addr, stop) = serve(mounted(redis.clone())).await;
                targets.push(Target {
                    kind: Kind::Redis,
                    addr: Some(addr),
                    store: Some(Store::Redis(redis)),
                    db_url: None,
                    db_name: None,
                    budget: 10_000,
                    _stop: Some(stop),
                });
            }
            Err(e) => println!("redis: skipped, no Redis at {}: {e}", redis_url()),
        }
    }
    let database = if wants("postgres") {
        scratch_database(false).await
    } else {
        None
    };
    let async_database = if wants("postgres") && pg_async {
        scratch_database(true).await
    } else {
        None
    };
    if wants("postgres") && database.is_none() {
        println!(
            "postgres: skipped, no PostgreSQL at {}",
            common::postgres_server_url()
        );
    }
    if let Some(db) = &database {
        let admin = pg_connect(&db.url()).await;
        admin
            .batch_execute("CREATE TABLE bench_floor (id int)")
            .await
            .expect("the floor's table");
        let version: String = admin
            .query_one("SELECT current_setting('server_version') || ', synchronous_commit ' || current_setting('synchronous_commit') || ', fsync ' || current_setting('fsync') || ', wal_sync_method ' || current_setting('wal_sync_method') || ', commit_delay ' || current_setting('commit_delay')", &[])
            .await
            .expect("settings")
            .get(0);
        println!("postgres: {version}; scratch database {}", db.url());
    }

    for &conns in &sweep {
        let pool: usize = env_or("STORES_PG_POOL", conns);
        targets.retain(|t| matches!(t.kind, Kind::Memory | Kind::Redis));
        // The previous pools close with their servers.
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(db) = &database {
            targets.push(postgres_target(Kind::Postgres, db, pool).await);
            if floors {
                for kind in [Kind::FloorCommit, Kind::FloorNotify, Kind::FloorLocked] {
                    targets.push(Target {
                        kind,
                        addr: None,
                        store: None,
                        db_url: Some(db.url()),
                        db_name: None,
                        budget: 0,
                        _stop: None,
                    });
                }
            }
        }
        // The second PostgreSQL store at the first connection count only: two pools of 64
        // would not fit under the server's default 100 connections.
        if let Some(db) = async_database.as_ref().filter(|_| conns == sweep[0]) {
            targets.push(postgres_target(Kind::PostgresAsync, db, pool).await);
        }
        targets.sort_by_key(|t| t.kind);
        println!();
        println!("== {conns} keep-alive connections, PostgreSQL pool {pool} ==");
        // Warm-up: connections, scripts, prepared statements, and a first rate for the
        // budgets.
        for t in targets.iter_mut().filter(|t| t.store.is_some()) {
            let warm = measure_endpoint(t, conns).await;
            println!("warm-up {:<28} {:>9.0} req/s", t.kind.name(), warm.rps);
        }
        println!(
            "{:<34} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6}",
            "round", "req/s", "p50 µs", "p99 µs", "node", "store", "client", "errors"
        );
        println!(
            "{:<34} {:>9} {:>8} {:>8} {:>23}",
            "", "", "", "", "(CPU µs per request)"
        );
        let mut results: BTreeMap<Kind, Vec<RoundResult>> = BTreeMap::new();
        for round in 0..rounds {
            let order: Vec<usize> = if round % 2 == 0 {
                (0..targets.len()).collect()
            } else {
                (0..targets.len()).rev().collect()
            };
            for i in order {
                let t = &mut targets[i];
                let result = if t.store.is_some() {
                    measure_endpoint(t, conns).await
                } else {
                    let free = free_connections(t.db_url.as_deref().expect("a database")).await;
                    let t: &Target = t;
                    let mut r = tokio::task::block_in_place(|| measure_floor(t, conns.min(free)));
                    r.extra.insert("connections", conns.min(free) as f64);
                    r
                };
                println!(
                    "{:<34} {:>9.0} {:>8.1} {:>8.1} {:>7.1} {:>7.1} {:>7.1} {:>6}{}",
                    format!("{}.{}", round + 1, t.kind.name()),
                    result.rps,
                    result.p50_us,
                    result.p99_us,
                    result.node_cpu_us,
                    result.store_cpu_us,
                    result.client_cpu_us,
                    result.errors,
                    if result.exhausted {
                        "  (tokens ran out)"
                    } else {
                        ""
                    }
                );
                results.entry(t.kind).or_default().push(result);
            }
        }
        summarize(conns, pool, &results);
    }

    if targets.iter().any(|t| t.kind == Kind::Redis) {
        delete_redis_keys(&redis_url(), &prefix).await;
    }
    drop(targets);
    // Let the pools close before the databases are dropped (they are dropped WITH FORCE).
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(async_database);
    drop(database);
}

fn summarize(conns: usize, pool: usize, results: &BTreeMap<Kind, Vec<RoundResult>>) {
    let col = |kind: Kind, f: &dyn Fn(&RoundResult) -> f64| -> f64 {
        median(
            results
                .get(&kind)
                .map_or(Vec::new(), |r| r.iter().map(f).collect()),
        )
    };
    println!("medians over the rounds ({conns} connections, PostgreSQL pool {pool}):");
    for (&kind, _) in results.iter() {
        println!(
            "  {:<30} {:>9.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  CPU/req: node {:>6.1} µs, \
             store {:>6.1} µs, load generator {:>5.1} µs",
            kind.name(),
            col(kind, &|r| r.rps),
            col(kind, &|r| r.p50_us),
            col(kind, &|r| r.p99_us),
            col(kind, &|r| r.node_cpu_us),
            col(kind, &|r| r.store_cpu_us),
            col(kind, &|r| r.client_cpu_us),
        );
    }
    let Some(memory) = results.get(&Kind::Memory) else {
        return;
    };
    for (kind, goal) in [
        (Kind::Redis, Some(0.6)),
        (Kind::Postgres, Some(0.5)),
        (Kind::PostgresAsync, None),
        (Kind::FloorCommit, None),
        (Kind::FloorNotify, None),
        (Kind::FloorLocked, None),
    ] {
        let Some(rows) = results.get(&kind) else {
            continue;
        };
        let ratio = |f: &dyn Fn(&RoundResult) -> f64| {
            median(rows.iter().zip(memory).map(|(r, m)| f(r) / f(m)).collect())
        };
        let rps = ratio(&|r| r.rps);
        let verdict = match goal {
            Some(g) if rps >= g => format!("  (goal >= {g}: met)"),
            Some(g) => format!("  (goal >= {g}: MISSED)"),
            None => String::new(),
        };
        println!(
            "  {}/memory: req/s {rps:.3}  p50 {:.1}  p99 {:.1}{verdict}",
            kind.name(),
            ratio(&|r| r.p50_us),
            ratio(&|r| r.p99_us),
        );
    }
    for (&kind, rows) in results.iter() {
        let mut extra: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut waits: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for r in rows {
            for (k, v) in &r.extra {
                extra.entry(k).or_default().push(*v);
            }
            for (k, v) in &r.waits {
                waits.entry(k).or_default().push(*v);
            }
        }
        if !extra.is_empty() {
            let figures: Vec<String> = extra
                .into_iter()
                .map(|(k, v)| format!("{k} {:.2}", median(v)))
                .collect();
            println!("  {}: {}", kind.name(), figures.join(", "));
        }
        if !waits.is_empty() {
            let mut shares: Vec<(f64, &str)> =
                waits.into_iter().map(|(k, v)| (median(v), k)).collect();
            shares.sort_by(|a, b| b.0.total_cmp(&a.0));
            let shares: Vec<String> = shares
                .into_iter()
                .map(|(v, k)| format!("{k} {:.0}%", v * 100.0))
                .collect();
            println!(
                "  {} backends (sampled): {}",
                kind.name(),
                shares.join(", ")
            );
        }
    }
    let errors: u64 = results.values().flatten().map(|r| r.errors).sum();
    if errors > 0 {
        println!("  WARNING: {errors} responses were not 200");
    }
}

// ---------------------------------------------------------------------------------------
// The load generator (a separate process).

mod client {
    use super::*;

    pub(super) fn main(args: &[String]) {
        let arg = |i: usize| args.get(i).expect("missing load generator argument");
        let addr: SocketAddr = arg(0).parse().expect("addr");
        assert!(addr.ip().is_loopback(), "loopback only");
        let conns: usize = arg(1).parse().expect("conns");
        let secs: f64 = arg(2).parse().expect("secs");
        let warmup = Duration::from_millis(arg(3).parse().expect("warm-up"));
        let threads: usize = arg(4).parse().expect("threads");
        // The tokens, one a line, all of one length: read whole before the clock starts.
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .expect("read the tokens");
        let tokens: Vec<u8> = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .inspect(|l| assert_eq!(l.len(), TOKEN_LEN, "tokens of one length"))
            .flatten()
            .copied()
            .collect();
        let tokens: Arc<[u8]> = tokens.into();
        let rt = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
        }
        .expect("runtime");
        rt.block_on(run(addr, conns, secs, warmup, tokens));
    }

    struct ConnResult {
        latencies: Vec<u32>,
        errors: u64,
        sent: u64,
        last_done: Instant,
    }

    async fn run(addr: SocketAddr, conns: usize, secs: f64, warmup: Duration, tokens: Arc<[u8]>) {
        let authorization = encode_basic(CLIENT_ID, CLIENT_SECRET);
        let authorization: Arc<str> = authorization.to_str().expect("ascii").into();
        let next = Arc::new(AtomicUsize::new(0));
        // Connect first, so that the clock covers requests only.
        let mut streams = Vec::new();
        for _ in 0..conns {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            streams.push(stream);
        }
        let start = Instant::now();
        let measure_from = start + warmup;
        let until = measure_from + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|stream| {
                let (authorization, next, tokens) =
                    (authorization.clone(), next.clone(), tokens.clone());
                tokio::spawn(async move {
                    connection(
                        stream,
                        addr,
                        &authorization,
                        &next,
                        &tokens,
                        measure_from,
                        until,
                    )
                    .await
                })
            })
            .collect();
        let (mut latencies, mut errors, mut sent) = (Vec::new(), 0, 0);
        let mut last_done = start;
        for task in tasks {
            let r = task.await.expect("connection task");
            latencies.extend(r.latencies);
            errors += r.errors;
            sent += r.sent;
            last_done = last_done.max(r.last_done);
        }
        let exhausted = next.load(Ordering::Relaxed) * TOKEN_LEN >= tokens.len();
        let window = if exhausted {
            last_done.min(until).max(measure_from)
        } else {
            until
        };
        let window = (window - measure_from).as_secs_f64().max(1e-3);
        latencies.sort_unstable();
        let pct = |p: f64| -> u32 {
            if latencies.is_empty() {
                return 0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i]
        };
        println!(
            "count={} errors={errors} sent={sent} exhausted={} p50_ns={} p99_ns={} secs={window} cpu_ns={}",
            latencies.len(),
            u8::from(exhausted),
            pct(0.50),
            pct(0.99),
            own_cpu_us() * 1000.0
        );
    }

    async fn connection(
        mut stream: TcpStream,
        addr: SocketAddr,
        authorization: &str,
        next: &AtomicUsize,
        tokens: &[u8],
        measure_from: Instant,
        until: Instant,
    ) -> ConnResult {
        // One request template, the token patched in place.
        let body = format!(
            "token={}&token_type_hint=access_token",
            "x".repeat(TOKEN_LEN)
        );
        let head = format!(
            "POST /oauth2/revoke HTTP/1.1\r\nhost: {addr}\r\nauthorization: {authorization}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let at = head.len() + "token=".len();
        let mut request = (head + &body).into_bytes();
        let mut buf = vec![0u8; 4096];
        let mut result = ConnResult {
            latencies: Vec::with_capacity(1 << 14),
            errors: 0,
            sent: 0,
            last_done: Instant::now(),
        };
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(token) = tokens.get(i * TOKEN_LEN..(i + 1) * TOKEN_LEN) else {
                break;
            };
            let sent = Instant::now();
            if sent >= until {
                break;
            }
            request[at..at + TOKEN_LEN].copy_from_slice(token);
            stream.write_all(&request).await.expect("write");
            let status = read_response(&mut stream, &mut buf).await;
            let done = Instant::now();
            result.sent += 1;
            result.last_done = done;
            if sent >= measure_from {
                result
                    .latencies
                    .push((done - sent).as_nanos().min(u32::MAX as u128) as u32);
                if status != 200 {
                    result.errors += 1;
                }
            }
        }
        result
    }

    /// Reads one response whole; returns its status.
    async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = stream.read(&mut buf[filled..]).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let length: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while filled < end + 4 + length {
                    if filled == buf.len() {
                        buf.resize(buf.len() * 2, 0);
                    }
                    let n = stream.read(&mut buf[filled..]).await.expect("read");
                    assert!(n > 0, "the server closed the connection");
                    filled += n;
                }
                return status;
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}
