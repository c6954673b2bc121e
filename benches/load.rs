//! Load comparison: the full revocation endpoint against a bare hyper service, one run.
//!
//! ```text
//! cargo bench --bench load
//! ```
//!
//! This process serves, on 127.0.0.1, (A) a bare hyper 1.x service that reads the body and
//! answers 200, and (B) the full endpoint stack (form, client authentication, revoke) over a
//! `MemoryStore` holding `LOAD_TOKENS` issued tokens. For each round it re-executes itself
//! as the load generator (`--load-client`), in a separate process with its own runtime, and
//! drives A, then B, then A, then B... with the same keep-alive connections and the same
//! request mix, so that machine drift cancels in the ratios. Every request carries valid
//! Basic credentials; half of them revoke unknown tokens, a quarter revoke real access
//! tokens (the token alone) and a quarter real refresh tokens (the whole grant).
//!
//! Printed per round and as medians: requests/s, p50 and p99 latency, the server's CPU time
//! per request, and the ratios B/A.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LOAD_ROUNDS` | 3 | A/B pairs |
//! | `LOAD_SECS` | 4 | measured seconds per round |
//! | `LOAD_WARMUP_MS` | 500 | unmeasured warm-up per round |
//! | `LOAD_CONNS` | 16 | keep-alive connections |
//! | `LOAD_TOKENS` | 1000000 | tokens in the store (access + refresh per grant) |
//! | `LOAD_SERVER_THREADS` | 1 | server runtime worker threads |
//! | `LOAD_CLIENT_THREADS` | 1 | load generator runtime threads |
//! | `LOAD_BARE_EXTRA_NS` | 0 | calibration: A also spins this long per request, to show what a known cost does to the ratios |
//! | `LOAD_FLOOR` | 0 | 1: B is not the endpoint but the floor, a hand-written handler doing only the work no revocation can skip (see `floor`) |
//! | `LOAD_INTROSPECT` | 0 | 1: B is the introspection endpoint (the pipeline with `Introspector`) answering the same requests |
//!
//! The server's CPU per request is also split into user and kernel time
//! (`/proc/self/task/*/stat`, in 10 ms ticks): what the endpoint adds is user time; the
//! kernel's share grows too when the load generator, waiting on a slower server, has to be
//! woken more often.

use std::{
    convert::Infallible,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower_oauth_revoke::{
    client_auth::{decode_basic, encode_basic, Client, ClientRegistry, MemoryClientRegistry},
    endpoint::{Endpoint, EndpointStep},
    form::FormParams,
    introspect::Introspector,
    store::{
        GrantId, MemoryStore, RevocationRequest, RevocationScope, TokenHash, TokenKind,
        TokenRecord, TokenStore,
    },
    RevocationEndpoint,
};

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "k3V9qZr2xP8wL5tN1mB7cD4fG6hJ0sA2";
const UNKNOWN_BASE: u64 = 1 << 60;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The real tokens of grant `index`: an access token and a refresh token, 43 characters
/// like a 256-bit base64url token.
fn access_token(index: u64) -> String {
    format!("at.{index:040}")
}

fn refresh_token(index: u64) -> String {
    format!("rt.{index:040}")
}

fn unknown_token(index: u64) -> String {
    format!("un.{index:040}")
}

/// The full stack under test. CORS and JSONP, once the builder has them, are added here
/// (`.cors_origins([...])`, `.jsonp(true)`), so that B stays "the full stack".
fn full_endpoint(
    registry: MemoryClientRegistry,
    store: MemoryStore,
) -> RevocationEndpoint<MemoryClientRegistry, MemoryStore> {
    // The whole stack: CORS (requests without Origin pass through it) and JSONP included.
    RevocationEndpoint::builder(registry, store)
        .cors_origins(["https://app.example.com"])
        .jsonp(true)
        .build()
        .expect("the endpoint builds")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--load-client") {
        client::main(&args[i + 1..]);
        return;
    }
    server_main();
}

// ---------------------------------------------------------------------------------------
// The servers and the coordinator.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Bare,
    Full,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Bare => "A bare hyper",
            Target::Full if floor_mode() => "B floor",
            Target::Full if introspect_mode() => "B introspection",
            Target::Full => "B full stack",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RoundResult {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    user_us_per_req: f64,
    sys_us_per_req: f64,
    client_cpu_us_per_req: f64,
    errors: u64,
    real: u64,
}

async fn bare(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _body = req.into_body().collect().await;
    let extra = *BARE_EXTRA_NS.get_or_init(|| env_or("LOAD_BARE_EXTRA_NS", 0));
    if extra > 0 {
        // Calibration only: a known amount of work per request.
        let start = Instant::now();
        while start.elapsed() < Duration::from_nanos(extra) {
            std::hint::spin_loop();
        }
    }
    Ok(Response::new(Full::default()))
}

async fn serve_bare(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(bare))
                .await;
        });
    }
}

/// The floor (`LOAD_FLOOR=1`): only the work no revocation endpoint can skip, written out
/// with this crate's public parsers and no framework: decode Basic, find the client, check
/// its secret's digest, parse the form, hash the token, revoke in the store, answer with the
/// `no-store` headers. No CORS, no JSONP, no error bodies, no logs: the load sends valid
/// requests only.
async fn floor(
    req: Request<Incoming>,
    registry: MemoryClientRegistry,
    store: MemoryStore,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut response = Response::new(Full::default());
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    let credentials = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(decode_basic);
    if let Some((id, secret)) = credentials {
        let client = registry.find_client(&id).await.ok().flatten();
        let token = FormParams::parse(&bytes).ok();
        let token = token.as_ref().and_then(|p| p.get("token"));
        if let (Some(client), Some(token)) = (client, token) {
            if client.verify_secret(&secret) {
                let request = RevocationRequest {
                    client_id: &id,
                    hint: None,
                    access_token_scope: RevocationScope::Token,
                    jti: None,
                };
                if store.revoke(&TokenHash::of(token), request).await.is_ok() {
                    *response.status_mut() = http::StatusCode::OK;
                }
            }
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

async fn serve_floor(listener: TcpListener, registry: MemoryClientRegistry, store: MemoryStore) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (registry, store) = (registry.clone(), store.clone());
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    hyper::service::service_fn(move |req| {
                        floor(req, registry.clone(), store.clone())
                    }),
                )
                .await;
        });
    }
}

/// The introspection endpoint under the same load (`LOAD_INTROSPECT=1`): the pipeline with
/// the introspection step, CORS and JSON-P as for revocation.
fn introspection_endpoint(
    registry: MemoryClientRegistry,
    store: MemoryStore,
) -> Endpoint<MemoryClientRegistry, Introspector<MemoryStore>> {
    Endpoint::with_step(
        registry,
        Introspector::new(store).issuer("https://as.example"),
    )
    .cors_origins(["https://app.example.com"])
    .jsonp(true)
    .build()
    .expect("the endpoint builds")
}

/// Whether B is the introspection endpoint (`LOAD_INTROSPECT=1`).
fn introspect_mode() -> bool {
    env_or::<u8>("LOAD_INTROSPECT", 0) == 1
}

async fn serve_full<T: EndpointStep>(
    listener: TcpListener,
    endpoint: Endpoint<MemoryClientRegistry, T>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(endpoint.clone());
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

static BARE_EXTRA_NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Whether B is the floor handler rather than the endpoint (`LOAD_FLOOR=1`).
fn floor_mode() -> bool {
    env_or::<u8>("LOAD_FLOOR", 0) == 1
}

/// User and kernel CPU time of this process, in clock ticks (the sums over its threads).
fn process_user_sys_ticks() -> (u64, u64) {
    let (mut user, mut sys) = (0, 0);
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
                // Fields after the command name, which is in parentheses: utime is the
                // 12th of them, stime the 13th.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let fields: Vec<&str> = rest.split_whitespace().collect();
                user += fields
                    .get(11)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                sys += fields
                    .get(12)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    (user, sys)
}

/// Microseconds per clock tick (`USER_HZ` is 100 on Linux).
const TICK_US: f64 = 10_000.0;

/// CPU time used by this whole process, in nanoseconds (the sum over its threads).
fn process_cpu_ns() -> u64 {
    let mut total = 0;
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
    total
}

fn fill_store(rt: &tokio::runtime::Runtime, store: &MemoryStore, tokens: u64) {
    let expires = SystemTime::now() + Duration::from_secs(24 * 3600);
    rt.block_on(async {
        for g in 0..tokens / 2 {
            let grant = GrantId::from_u64(g.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995);
            let owner: Arc<str> = format!("user{}", g % 100_000).into();
            for (kind, token) in [
                (TokenKind::AccessToken, access_token(g)),
                (TokenKind::RefreshToken, refresh_token(g)),
            ] {
                store
                    .issue(
                        TokenHash::of(&token),
                        TokenRecord::new(kind, CLIENT_ID, grant, expires).with_owner(owner.clone()),
                    )
                    .await
                    .expect("issue");
            }
        }
    });
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn server_main() {
    let rounds: usize = env_or("LOAD_ROUNDS", 3);
    let secs: f64 = env_or("LOAD_SECS", 4.0);
    let warmup_ms: u64 = env_or("LOAD_WARMUP_MS", 500);
    let conns: usize = env_or("LOAD_CONNS", 16);
    let tokens: u64 = env_or("LOAD_TOKENS", 1_000_000);
    let server_threads: usize = env_or("LOAD_SERVER_THREADS", 1);
    let client_threads: usize = env_or("LOAD_CLIENT_THREADS", 1);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");

    let store = MemoryStore::new();
    let started = Instant::now();
    fill_store(&rt, &store, tokens);
    println!(
        "store: {} tokens ({} grants of access + refresh) issued in {:.1?}",
        store.len(),
        tokens / 2,
        started.elapsed()
    );
    let registry = MemoryClientRegistry::new([Client::confidential(CLIENT_ID, CLIENT_SECRET)]);
    let endpoint = full_endpoint(registry.clone(), store.clone());

    let (bare_addr, full_addr) = rt.block_on(async {
        let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addrs = (a.local_addr().unwrap(), b.local_addr().unwrap());
        tokio::spawn(serve_bare(a));
        if floor_mode() {
            tokio::spawn(serve_floor(b, registry, store.clone()));
        } else if introspect_mode() {
            tokio::spawn(serve_full(
                b,
                introspection_endpoint(registry, store.clone()),
            ));
        } else {
            tokio::spawn(serve_full(b, endpoint));
        }
        addrs
    });

    println!(
        "load: {rounds} x (A, B), {secs} s each after {warmup_ms} ms warm-up, {conns} keep-alive \
         connections, server {server_threads} thread(s), load generator {client_threads} \
         thread(s) in a separate process"
    );
    println!(
        "(cpu: CPU µs per request over all threads of each process; the server's is split \
         into user + kernel)"
    );
    let extra = env_or::<u64>("LOAD_BARE_EXTRA_NS", 0);
    if extra > 0 {
        println!("calibration: A spins {extra} ns per request");
    }
    println!(
        "{:<14} {:>10} {:>9} {:>9} {:>23} {:>12} {:>7}",
        "round", "req/s", "p50 µs", "p99 µs", "server cpu = user + sys", "client cpu", "errors"
    );

    let exe = std::env::current_exe().expect("current exe");
    let mut offset: u64 = 0;
    let grants = (tokens / 2).max(1);
    let mut results: Vec<(RoundResult, RoundResult)> = Vec::new();
    for round in 0..rounds {
        let mut pair = [None, None];
        for (slot, target) in [Target::Bare, Target::Full].into_iter().enumerate() {
            let addr: SocketAddr = match target {
                Target::Bare => bare_addr,
                Target::Full => full_addr,
            };
            let cpu_before = process_cpu_ns();
            let ticks_before = process_user_sys_ticks();
            let mut child = Command::new(&exe)
                .arg("--load-client")
                .arg(addr.to_string())
                .arg(conns.to_string())
                .arg(secs.to_string())
                .arg(warmup_ms.to_string())
                .arg(offset.to_string())
                .arg(grants.to_string())
                .arg(client_threads.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn the load generator");
            let mut line = String::new();
            let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
            reader.read_line(&mut line).expect("read result");
            let status = child.wait().expect("wait for the load generator");
            assert!(status.success(), "the load generator failed: {status}");
            let cpu_after = process_cpu_ns();
            let ticks_after = process_user_sys_ticks();
            let fields: Vec<f64> = line
                .split_whitespace()
                .filter_map(|f| f.split_once('=').and_then(|(_, v)| v.parse().ok()))
                .collect();
            assert_eq!(fields.len(), 7, "bad load generator output: {line:?}");
            let (count, errors, real, p50_ns, p99_ns, elapsed) = (
                fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
            );
            // The CPU window includes the warm-up: scale by all requests served in it.
            let served = fields[0] * (secs + warmup_ms as f64 / 1000.0) / secs;
            let client_cpu_us_per_req = fields[6] / 1000.0 / served;
            let result = RoundResult {
                client_cpu_us_per_req,
                rps: count / elapsed,
                p50_us: p50_ns / 1000.0,
                p99_us: p99_ns / 1000.0,
                cpu_us_per_req: (cpu_after - cpu_before) as f64 / 1000.0 / served,
                user_us_per_req: (ticks_after.0 - ticks_before.0) as f64 * TICK_US / served,
                sys_us_per_req: (ticks_after.1 - ticks_before.1) as f64 * TICK_US / served,
                errors: errors as u64,
                real: real as u64,
            };
            if target == Target::Full {
                offset = (offset + result.real / 2 + 1) % grants;
            }
            println!(
                "{:<14} {:>10.0} {:>9.1} {:>9.1} {:>7.2} = {:>5.2} + {:>5.2} {:>12.2} {:>7}",
                format!("{}.{}", round + 1, target.name()),
                result.rps,
                result.p50_us,
                result.p99_us,
                result.cpu_us_per_req,
                result.user_us_per_req,
                result.sys_us_per_req,
                result.client_cpu_us_per_req,
                result.errors
            );
            pair[slot] = Some(result);
        }
        results.push((pair[0].unwrap(), pair[1].unwrap()));
    }

    let col = |f: &dyn Fn(&(RoundResult, RoundResult)) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        median(&mut v)
    };
    let a_rps = col(&|r| r.0.rps);
    let b_rps = col(&|r| r.1.rps);
    let rps_ratio = col(&|r| r.1.rps / r.0.rps);
    let p50_ratio = col(&|r| r.1.p50_us / r.0.p50_us);
    let p99_ratio = col(&|r| r.1.p99_us / r.0.p99_us);
    let cpu_ratio = col(&|r| r.1.cpu_us_per_req / r.0.cpu_us_per_req);
    println!("medians over {rounds} rounds:");
    println!(
        "  A bare hyper : {:>8.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  cpu/req: server {:>6.2} µs \
         (user {:>5.2}, kernel {:>5.2}), load generator {:>6.2} µs",
        a_rps,
        col(&|r| r.0.p50_us),
        col(&|r| r.0.p99_us),
        col(&|r| r.0.cpu_us_per_req),
        col(&|r| r.0.user_us_per_req),
        col(&|r| r.0.sys_us_per_req),
        col(&|r| r.0.client_cpu_us_per_req)
    );
    println!(
        "  {:<13}: {:>8.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  cpu/req: server {:>6.2} µs \
         (user {:>5.2}, kernel {:>5.2}), load generator {:>6.2} µs",
        Target::Full.name(),
        b_rps,
        col(&|r| r.1.p50_us),
        col(&|r| r.1.p99_us),
        col(&|r| r.1.cpu_us_per_req),
        col(&|r| r.1.user_us_per_req),
        col(&|r| r.1.sys_us_per_req),
        col(&|r| r.1.client_cpu_us_per_req)
    );
    println!(
        "  B/A (median of per-round ratios): req/s {rps_ratio:.3}  p50 {p50_ratio:.2}  \
         p99 {p99_ratio:.2}  server cpu/req {cpu_ratio:.2}"
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  budget: req/s B/A >= 0.85: {} ; p99 B/A <= 2: {}",
        verdict(rps_ratio >= 0.85),
        verdict(p99_ratio <= 2.0)
    );
    println!(
        "  store after the run: {} tokens (access tokens revoked alone leave it; refresh tokens \
         revoke their grant in place)",
        store.len()
    );
    let errors: u64 = results.iter().map(|r| r.0.errors + r.1.errors).sum();
    if errors > 0 {
        println!("  WARNING: {errors} responses were not 200");
    }
}

// ---------------------------------------------------------------------------------------
// The load generator (a separate process).

mod client {
    use super::*;

    struct Args {
        addr: SocketAddr,
        conns: usize,
        secs: f64,
        warmup: Duration,
        offset: u64,
        grants: u64,
        threads: usize,
    }

    fn parse(args: &[String]) -> Args {
        let arg = |i: usize| args.get(i).expect("missing load generator argument");
        Args {
            addr: arg(0).parse().expect("addr"),
            conns: arg(1).parse().expect("conns"),
            secs: arg(2).parse().expect("secs"),
            warmup: Duration::from_millis(arg(3).parse().expect("warm-up")),
            offset: arg(4).parse().expect("offset"),
            grants: arg(5).parse().expect("grants"),
            threads: arg(6).parse().expect("threads"),
        }
    }

    pub(super) fn main(args: &[String]) {
        let args = parse(args);
        assert!(args.addr.ip().is_loopback(), "loopback only");
        let rt = if args.threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads)
                .enable_all()
                .build()
        }
        .expect("runtime");
        rt.block_on(run(args));
    }

    struct ConnResult {
        latencies: Vec<u32>,
        errors: u64,
    }

    async fn run(args: Args) {
        let authorization = encode_basic(CLIENT_ID, CLIENT_SECRET);
        let authorization: Arc<str> = authorization.to_str().expect("ascii").into();
        let real = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let measure_from = start + args.warmup;
        let until = measure_from + Duration::from_secs_f64(args.secs);
        let mut tasks = Vec::new();
        for conn in 0..args.conns {
            let authorization = authorization.clone();
            let real = real.clone();
            let (addr, offset, grants) = (args.addr, args.offset, args.grants);
            tasks.push(tokio::spawn(async move {
                connection(
                    conn as u64,
                    addr,
                    &authorization,
                    &real,
                    offset,
                    grants,
                    measure_from,
                    until,
                )
                .await
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let r = task.await.expect("connection task");
            latencies.extend(r.latencies);
            errors += r.errors;
        }
        latencies.sort_unstable();
        let pct = |p: f64| -> u32 {
            if latencies.is_empty() {
                return 0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i]
        };
        println!(
            "count={} errors={} real={} p50_ns={} p99_ns={} secs={} cpu_ns={}",
            latencies.len(),
            errors,
            real.load(Ordering::Relaxed),
            pct(0.50),
            pct(0.99),
            args.secs,
            process_cpu_ns()
        );
    }

    #[allow(clippy::too_many_arguments)]
    async fn connection(
        conn: u64,
        addr: SocketAddr,
        authorization: &str,
        real: &AtomicU64,
        offset: u64,
        grants: u64,
        measure_from: Instant,
        until: Instant,
    ) -> ConnResult {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        // Two request templates (the hints differ in length), each with a 43-byte token
        // patched in place: building a request costs next to nothing.
        let template = |hint: &str| -> (Vec<u8>, usize) {
            let body = format!("token={}&token_type_hint={hint}", unknown_token(0));
            let head = format!(
                "POST /oauth2/revoke HTTP/1.1\r\nhost: {addr}\r\nauthorization: {authorization}\r\n\
                 content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let at = head.len() + "token=".len();
            ((head + &body).into_bytes(), at)
        };
        let (mut access_req, access_at) = template("access_token");
        let (mut refresh_req, refresh_at) = template("refresh_token");
        let mut buf = vec![0u8; 4096];
        let mut latencies = Vec::with_capacity(1 << 16);
        let mut errors = 0;
        let mut unknown = UNKNOWN_BASE + (conn << 32);
        for i in 0u64.. {
            // The mix: every other request revokes an unknown token; the rest revoke real
            // tokens, an access token (alone), then its grant's refresh token (the grant).
            let request: &[u8] = if i.is_multiple_of(2) {
                unknown += 1;
                put_token(&mut access_req[access_at..], b"un.", unknown);
                &access_req
            } else {
                let r = real.fetch_add(1, Ordering::Relaxed);
                let grant = (offset + r / 2) % grants;
                if r.is_multiple_of(2) {
                    put_token(&mut access_req[access_at..], b"at.", grant);
                    &access_req
                } else {
                    put_token(&mut refresh_req[refresh_at..], b"rt.", grant);
                    &refresh_req
                }
            };
            let sent = Instant::now();
            if sent >= until {
                break;
            }
            stream.write_all(request).await.expect("write");
            let status = read_response(&mut stream, &mut buf).await;
            let done = Instant::now();
            if sent >= measure_from {
                latencies.push((done - sent).as_nanos().min(u32::MAX as u128) as u32);
                if status != 200 {
                    errors += 1;
                }
            }
        }
        ConnResult { latencies, errors }
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
                let total = end + 4 + length;
                while filled < total {
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

    /// Writes `prefix` and `index` as 40 zero-padded digits: the tokens of
    /// [`access_token`], [`refresh_token`] and [`unknown_token`].
    fn put_token(out: &mut [u8], prefix: &[u8; 3], mut index: u64) {
        out[..3].copy_from_slice(prefix);
        for d in out[3..43].iter_mut().rev() {
            *d = b'0' + (index % 10) as u8;
            index /= 10;
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}
