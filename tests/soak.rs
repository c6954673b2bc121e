//! A bounded soak: many revocations at many concurrent connections against the memory
//! store, over real HTTP.
//!
//! Every 200 must mean the token is refused afterwards (by the store, and by the bearer
//! guard for a sample), no request may fail, and once the short-lived tokens have expired
//! and been purged, the store's size returns to its starting level. The heap is measured
//! by a counting allocator: the store alone, and the composed endpoint in-process, return
//! to their level.
//!
//! It runs 100,000 revocations at 256 connections, in the normal suite (about half a minute
//! in a debug build on two cores) and as `cargo test --release --test soak`;
//! `SOAK_REVOCATIONS=N` changes the count.
//!
//! Time is a [`ManualClock`] the tests move: however slowly the machine runs a round, no
//! token expires before the round ends, and none is waited for afterwards.

use std::{
    alloc::System,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::{net::TcpListener, sync::Notify};
use tower::{service_fn, Layer, Service};
use tower_oauth_revoke::{
    client_auth::{encode_basic, AuthFailureLimiter, Client, MemoryClientRegistry, RemoteAddr},
    guard::BearerGuardLayer,
    store::{
        GrantId, ManualClock, MemoryStore, RevocationOutcome, RevocationRequest, TokenHash,
        TokenKind, TokenRecord, TokenStore,
    },
    RevocationEndpoint,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live on the heap now. `stats_alloc` already counts a reallocation's growth in
/// `bytes_allocated` (and its shrinking in `bytes_deallocated`); `bytes_reallocated` is the
/// same delta again, so it is not added.
fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

const CONNECTIONS: usize = 256;
const SHORT_EXPIRY: Duration = Duration::from_secs(2);
/// Long-lived tokens present before and after the soak.
const RESIDENT: usize = 1000;

fn revocations() -> usize {
    if let Some(n) = std::env::var("SOAK_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    100_000
}

/// Open server connections, and a signal when one closes.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

/// Serves `/oauth2/revoke` and a guarded `/userinfo` on a free loopback port.
async fn serve(store: MemoryStore, connections: Arc<Connections>) -> SocketAddr {
    let registry = MemoryClientRegistry::new([Client::confidential("app", "app-secret")]);
    let revoke = RevocationEndpoint::builder(registry, store.clone())
        .limit_failures(AuthFailureLimiter::new(20, Duration::from_secs(60)))
        .build()
        .unwrap();
    let userinfo =
        BearerGuardLayer::new(store).layer(service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let (revoke, userinfo) = (revoke.clone(), userinfo.clone());
            let connections = connections.clone();
            connections.open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(RemoteAddr(peer));
                    let (mut revoke, mut userinfo) = (revoke.clone(), userinfo.clone());
                    async move {
                        if req.uri().path() == "/userinfo" {
                            let r = userinfo.call(req).await?;
                            Ok::<_, Infallible>(r.map(|b| b.boxed_unsync()))
                        } else {
                            let r = revoke.call(req).await?;
                            Ok(r.map(|b| b.boxed_unsync()))
                        }
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                connections.open.fetch_sub(1, Ordering::SeqCst);
                connections.closed.notify_waiters();
            });
        }
    });
    addr
}

#[derive(Debug, Default)]
struct Tally {
    revoked: usize,
    guard_checks: usize,
    errors: usize,
    latest_expiry: Option<SystemTime>,
    slowest: Duration,
}

async fn connection(
    addr: SocketAddr,
    store: MemoryStore,
    clock: ManualClock,
    worker: usize,
    count: usize,
) -> Tally {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let basic = encode_basic("app", "app-secret");
    let mut tally = Tally::default();
    for i in 0..count {
        let token = format!("soak-{worker}-{i}-{:016x}", rand::random::<u64>());
        let hash = TokenHash::of(&token);
        let kind = if i % 10 == 0 {
            TokenKind::RefreshToken
        } else {
            TokenKind::AccessToken
        };
        let expires = clock.now() + SHORT_EXPIRY;
        store
            .issue(
                hash,
                TokenRecord::new(kind, "app", GrantId::random(), expires),
            )
            .await
            .unwrap();
        tally.latest_expiry = tally.latest_expiry.max(Some(expires));
        let sampled = i % 100 == 1;
        if sampled {
            assert_eq!(
                guard(&mut sender, &token).await,
                StatusCode::OK,
                "active before"
            );
        }

        let request = Request::post("/oauth2/revoke")
            .header("host", "127.0.0.1")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic.clone())
            .body(Full::new(Bytes::from(format!("token={token}"))))
            .unwrap();
        let start = Instant::now();
        let status = match send(&mut sender, request).await {
            Some(status) => status,
            None => {
                tally.errors += 1;
                continue;
            }
        };
        tally.slowest = tally.slowest.max(start.elapsed());
        if status != StatusCode::OK {
            tally.errors += 1;
            continue;
        }
        assert!(
            store.inspect(&hash).await.unwrap().is_none(),
            "a 200 left the token active"
        );
        tally.revoked += 1;
        if sampled {
            assert_eq!(
                guard(&mut sender, &token).await,
                StatusCode::UNAUTHORIZED,
                "the guard still admits a revoked token"
            );
            tally.guard_checks += 1;
        }
    }
    drop(sender);
    let _ = driver.await;
    tally
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Option<StatusCode> {
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status();
    response.into_body().collect().await.ok()?;
    Some(status)
}

async fn guard(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    token: &str,
) -> StatusCode {
    let request = Request::get("/userinfo")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    send(sender, request).await.expect("guard request failed")
}

/// The heap is measured process-wide: the tests of this file run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn soak_revocations_at_256_connections() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak());
}

/// Runs `total` revocations spread over [`CONNECTIONS`] connections, then waits for every
/// server connection to close. Returns the tally and how long the load took.
async fn load(
    addr: SocketAddr,
    store: &MemoryStore,
    clock: &ManualClock,
    connections: &Connections,
    total: usize,
) -> (Tally, Duration) {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONNECTIONS {
        let count = total / CONNECTIONS + usize::from(worker < total % CONNECTIONS);
        workers.spawn(connection(
            addr,
            store.clone(),
            clock.clone(),
            worker,
            count,
        ));
    }
    let mut tally = Tally::default();
    while let Some(t) = workers.join_next().await {
        let t = t.expect("a connection task panicked");
        tally.revoked += t.revoked;
        tally.guard_checks += t.guard_checks;
        tally.errors += t.errors;
        tally.latest_expiry = tally.latest_expiry.max(t.latest_expiry);
        tally.slowest = tally.slowest.max(t.slowest);
    }
    let elapsed = started.elapsed();
    loop {
        let closed = connections.closed.notified();
        if connections.open.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .expect("server connections did not close");
    }
    (tally, elapsed)
}

/// Moves the clock past the short expiry of the last token issued (the store counts whole
/// seconds), then purges.
fn expire_and_purge(store: &MemoryStore, clock: &ManualClock, tally: &Tally) {
    let latest = tally.latest_expiry.expect("tokens were issued");
    clock.set(clock.now().max(latest + Duration::from_secs(1)));
    store.purge_expired();
}

async fn soak() {
    let total = revocations();
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let far = clock.now() + Duration::from_secs(3600);
    for i in 0..RESIDENT {
        let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), far);
        store
            .issue(TokenHash::of(&format!("resident-{i}")), record)
            .await
            .unwrap();
    }
    let connections = Arc::new(Connections::default());
    let addr = serve(store.clone(), connections.clone()).await;

    // A warm-up round sets the level: lazily built runtime, timer and connection
    // structures, and the store's tables at their working size.
    let (warm_up, _) = load(addr, &store, &clock, &connections, 4 * CONNECTIONS).await;
    assert_eq!(warm_up.errors, 0);
    expire_and_purge(&store, &clock, &warm_up);
    let start_len = store.len();
    let start_heap = live_heap();

    let (tally, elapsed) = load(addr, &store, &clock, &connections, total).await;
    let peak_len = store.len();
    let peak_heap = live_heap();
    expire_and_purge(&store, &clock, &tally);
    let end_len = store.len();
    let end_heap = live_heap();

    println!(
        "soak: {} revocations at {CONNECTIONS} connections in {:.2?} ({:.0}/s), slowest {:.2?}, \
         {} guard checks, {} errors; store {start_len} -> {peak_len} -> {end_len} entries; \
         heap {} KiB -> {} KiB -> {} KiB",
        tally.revoked,
        elapsed,
        tally.revoked as f64 / elapsed.as_secs_f64(),
        tally.slowest,
        tally.guard_checks,
        tally.errors,
        start_heap / 1024,
        peak_heap / 1024,
        end_heap / 1024,
    );
    assert_eq!(tally.errors, 0);
    assert_eq!(tally.revoked, total);
    assert!(tally.guard_checks > 0);
    assert_eq!(start_len, RESIDENT);
    assert!(
        peak_len > start_len,
        "the soak's revoked tokens are held until they expire"
    );
    assert_eq!(end_len, start_len, "the store returned to its level");
    // Over HTTP the heap also holds tokio's and hyper's reusable buffers: allow 1 MiB of
    // slack; the endpoint's and the store's own shares are asserted exactly in process by
    // `endpoint_heap_returns_to_its_level` and `store_memory_returns_to_its_level`.
    assert!(
        end_heap - start_heap < 1 << 20,
        "the heap returned to its level: {start_heap} -> {peak_heap} -> {end_heap} bytes"
    );
}

/// The endpoint in-process (no sockets), 4 rounds of 20,000 revocations of short-lived
/// tokens, each followed by expiry and a purge: the heap should come back to its level
/// after every round.
#[test]
fn endpoint_heap_returns_to_its_level() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = ManualClock::new();
        let store = MemoryStore::with_clock(clock.clone());
        let registry = MemoryClientRegistry::new([Client::confidential("app", "app-secret")]);
        let endpoint = RevocationEndpoint::builder(registry, store.clone())
            .build()
            .unwrap();
        let basic = encode_basic("app", "app-secret");
        const PER_ROUND: usize = 20_000;
        let mut level = 0;
        for round in 0..4 {
            let expires = clock.now() + Duration::from_secs(1);
            for i in 0..PER_ROUND {
                let token = format!("in-process-{round}-{i}");
                let record =
                    TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires);
                store.issue(TokenHash::of(&token), record).await.unwrap();
                let mut request = Request::post("/oauth2/revoke")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", basic.clone())
                    .body(Full::new(Bytes::from(format!("token={token}"))))
                    .unwrap();
                request
                    .extensions_mut()
                    .insert(RemoteAddr("127.0.0.1:40000".parse().unwrap()));
                let response = tower::ServiceExt::oneshot(endpoint.clone(), request)
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.into_body().collect().await.unwrap();
            }
            clock.advance(Duration::from_secs(2));
            store.purge_expired();
            if round == 0 {
                level = live_heap();
                continue;
            }
            let grown = live_heap() - level;
            println!(
                "endpoint: round {round}: heap {} KiB above the level",
                grown / 1024
            );
            assert!(
                grown < (round * PER_ROUND * 32) as i64,
                "{} bytes kept per request",
                grown / (round * PER_ROUND) as i64
            );
        }
    });
}

/// The store alone, without HTTP: 100,000 tokens issued with a short expiry and revoked
/// from 256 concurrent tasks; after expiry and a purge, its size is back at its level and
/// the heap within a few bytes per token of it.
#[test]
fn store_memory_returns_to_its_level() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = ManualClock::new();
        let store = MemoryStore::with_clock(clock.clone());
        let round = |round: usize| {
            let (store, clock) = (store.clone(), clock.clone());
            async move {
                let expires = clock.now() + SHORT_EXPIRY;
                let mut tasks = tokio::task::JoinSet::new();
                for task in 0..CONNECTIONS {
                    let store = store.clone();
                    tasks.spawn(async move {
                        for i in 0..revocations() / CONNECTIONS {
                            let hash = TokenHash::of(&format!("{round}-{task}-{i}"));
                            let kind = if i % 10 == 0 {
                                TokenKind::RefreshToken
                            } else {
                                TokenKind::AccessToken
                            };
                            let record = TokenRecord::new(kind, "app", GrantId::random(), expires);
                            store.issue(hash, record).await.unwrap();
                            let request = RevocationRequest::new("app");
                            let outcome = store.revoke(&hash, request).await.unwrap();
                            assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
                            assert!(store.inspect(&hash).await.unwrap().is_none());
                        }
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
                clock.set(expires + Duration::from_secs(1));
                store.purge_expired();
            }
        };
        // The first round brings the shard tables to their floor.
        round(0).await;
        let (start_len, start_heap) = (store.len(), live_heap());
        round(1).await;
        let (end_len, end_heap) = (store.len(), live_heap());
        println!(
            "store: {} revocations; {start_len} -> {end_len} entries; heap {} KiB -> {} KiB",
            revocations(),
            start_heap / 1024,
            end_heap / 1024
        );
        assert_eq!(end_len, start_len);
        // A store that kept its entries would hold about 100 bytes per token; what is
        // left (runtime and timer structures) is a few bytes per token at most.
        let bound = (revocations() * 16) as i64;
        assert!(
            end_heap - start_heap < bound,
            "the heap grew by {} KiB",
            (end_heap - start_heap) / 1024
        );
    });
}
