//! Push delivery latency (RFC 8935): from a revocation's answer to its SET's arrival at a
//! receiver on loopback, one revocation at a time, p50 and p99, against a bare POST of the
//! same size to the same receiver by the same HTTP client (the baseline, in the same run).
//!
//! ```text
//! cargo bench --all-features --bench push
//! ```
//!
//! Two ways to deliver: from `MemoryStore`'s events through a node's queue
//! (`Pusher::spawn`), and from `PostgresStore`'s durable outbox by cursor (`Pusher::follow`:
//! read after the revocation commits, advanced after each delivery), when PostgreSQL answers
//! at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`; a schema of its own,
//! dropped at the end). `PUSH_COUNT` revocations each (default 2,000).

use std::{
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use axum::{body::Bytes, extract::State, http::StatusCode, routing::post, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::sync::mpsc;
use tower_oauth_revoke::{
    jose::SigningKey,
    set::{
        self,
        push::{PushOptions, Pusher},
        SetIssuer,
    },
    store::{
        GrantId, MemoryStore, PostgresStore, RevocationRequest, TokenHash, TokenKind, TokenRecord,
        TokenStore,
    },
};

fn count() -> usize {
    std::env::var("PUSH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn record() -> TokenRecord {
    TokenRecord::new(
        TokenKind::AccessToken,
        "app",
        GrantId::random(),
        SystemTime::now() + Duration::from_secs(3600),
    )
    .with_owner("alice")
}

/// A receiver on loopback that answers 202 and reports each body's arrival.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(Instant, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/events",
            post(
                |State(tx): State<mpsc::UnboundedSender<(Instant, Bytes)>>, body: Bytes| async move {
                    let _ = tx.send((Instant::now(), body));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/events"), rx)
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// Bare POSTs of `size` bytes to the receiver, each awaited, timed to its arrival.
async fn baseline(n: usize, size: usize) -> Vec<Duration> {
    let (url, mut arrivals) = receiver().await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from(vec![b'x'; size]);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let request = http::Request::post(&url)
            .header("content-type", "application/secevent+jwt")
            .body(Full::new(body.clone()))
            .unwrap();
        let start = Instant::now();
        let response = client.request(request).await.unwrap();
        let _ = response.into_body().collect().await;
        let (at, _) = arrivals.recv().await.unwrap();
        samples.push(at - start);
    }
    samples
}

/// Revokes `n` tokens of `store` one at a time and times each SET's arrival from the
/// revocation's answer; the SETs' mean size comes with it.
async fn revocations<S: TokenStore>(
    store: &S,
    arrivals: &mut mpsc::UnboundedReceiver<(Instant, Bytes)>,
    n: usize,
) -> (Vec<Duration>, usize) {
    let mut samples = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let token = store.mint(record()).await.unwrap();
        store
            .revoke(&TokenHash::of(&token), RevocationRequest::new("app"))
            .await
            .unwrap();
        let answered = Instant::now();
        let (at, body) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
            .await
            .expect("a SET within 10 s")
            .unwrap();
        bytes += body.len();
        samples.push(at.saturating_duration_since(answered));
    }
    (samples, bytes / n.max(1))
}

fn row(name: &str, samples: Vec<Duration>, base: (f64, f64)) {
    let (p50, p99) = percentiles(samples);
    println!(
        "  {name:<44} p50 {p50:>7.3} ms  p99 {p99:>7.3} ms  ({:.2}x, {:.2}x the bare POST's)",
        p50 / base.0,
        p99 / base.1
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = count();
    runtime.block_on(async {
        let key = SigningKey::generate();
        let issuer = SetIssuer::new("https://as.example", key);

        // Memory: the node's events, its queue.
        let memory = MemoryStore::new();
        let (url, mut arrivals) = receiver().await;
        let pusher = Pusher::spawn([&url], PushOptions::default()).unwrap();
        set::attach(memory.events(), issuer.clone(), None, Some(pusher));
        let (warm, _) = revocations(&memory, &mut arrivals, 50).await;
        drop(warm);
        let (from_memory, size) = revocations(&memory, &mut arrivals, n).await;

        let bare = baseline(n, size).await;
        let base = percentiles(bare.clone());
        println!("push delivery, revocation answered -> SET received, {n} one at a time:");
        println!(
            "  bare POST of {size} bytes (baseline)             p50 {:>7.3} ms  p99 {:>7.3} ms",
            base.0, base.1
        );
        row("MemoryStore, the node's queue", from_memory, base);

        // PostgreSQL: the outbox, by cursor.
        let url_db = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_push_{}", std::process::id());
        let store = match PostgresStore::builder()
            .schema(&schema)
            .connect(&url_db)
            .await
        {
            Ok(store) => store,
            Err(e) => {
                println!("  PostgreSQL: skipped (no database at {url_db}: {e})");
                return;
            }
        };
        let (url, mut arrivals) = receiver().await;
        let pusher = Pusher::follow(store.clone(), issuer, [&url], PushOptions::default())
            .await
            .unwrap();
        let (warm, _) = revocations(&store, &mut arrivals, 50).await;
        drop(warm);
        let (from_outbox, _) = revocations(&store, &mut arrivals, n).await;
        row("PostgresStore, its outbox by cursor", from_outbox, base);
        drop(pusher);
        drop(store);
        let _ = std::process::Command::new("psql")
            .args([
                &url_db,
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            ])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .status();
    });
}
