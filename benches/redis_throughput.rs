//! Revocations per second through the full endpoint, Redis store beside memory store.
//!
//! Real HTTP/1.1 over loopback: `CONNECTIONS` keep-alive connections, each sending its
//! requests one after another; every request revokes a distinct, active access token
//! registered beforehand (outside the timing). Runs alternate memory/Redis in the order
//! M R R M M R R M ... so that drift (CPU frequency, other load) weighs on both alike.
//!
//! ```text
//! cargo bench --features redis --bench redis_throughput
//! ```
//!
//! Redis is `REDIS_URL` (default `redis://127.0.0.1:6379`); keys go under a fresh prefix and
//! are deleted at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use redis::AsyncCommands;
use tokio::net::TcpStream;
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    store::{GrantId, MemoryStore, RedisStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

const CONNECTIONS: usize = 32;
const REQUESTS_PER_RUN: usize = 8_000;
const PAIRS: usize = 4;

fn endpoint<S: TokenStore>(store: S) -> RevocationEndpoint<MemoryClientRegistry, S> {
    RevocationEndpoint::builder(
        MemoryClientRegistry::new([Client::confidential("app", "app-secret")]),
        store,
    )
    .build()
    .unwrap()
}

/// Registers `n` fresh access tokens and returns them.
async fn issue_tokens<S: TokenStore>(store: &S, run: usize, n: usize) -> Vec<String> {
    let tokens: Vec<String> = (0..n)
        .map(|i| format!("bench-{run}-{i}-{:016x}", rand::random::<u64>()))
        .collect();
    let expires = SystemTime::now() + Duration::from_secs(300);
    let grants: Vec<GrantId> = (0..CONNECTIONS).map(|_| GrantId::random()).collect();
    for chunk in tokens.chunks(512) {
        join_all(chunk.iter().enumerate().map(|(i, t)| {
            store.issue(
                TokenHash::of(t),
                TokenRecord::new(
                    TokenKind::AccessToken,
                    "app",
                    grants[i % CONNECTIONS],
                    expires,
                ),
            )
        }))
        .await
        .into_iter()
        .for_each(|r| r.expect("issue"));
    }
    tokens
}

/// Revokes every token over `CONNECTIONS` keep-alive connections; returns the elapsed time.
async fn revoke_all(addr: SocketAddr, tokens: Vec<String>) -> Duration {
    let authorization = common::basic("app", "app-secret");
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); CONNECTIONS];
    for (i, t) in tokens.into_iter().enumerate() {
        shares[i % CONNECTIONS].push(t);
    }
    // Connect first, so that the timing covers requests only.
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let started = Instant::now();
    let tasks = senders.into_iter().zip(shares).map(|(mut sender, share)| {
        let authorization = authorization.clone();
        tokio::spawn(async move {
            for token in share {
                sender.ready().await.unwrap();
                let req = Request::post("/oauth2/revoke")
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", &authorization)
                    .body(Full::new(Bytes::from(format!("token={token}"))))
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                resp.into_body().collect().await.unwrap();
            }
        })
    });
    for task in join_all(tasks).await {
        task.unwrap();
    }
    started.elapsed()
}

async fn delete_keys(url: &str, prefix: &str) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<'_, String> =
            conn.scan_match(format!("{{{prefix}}}:*")).await.unwrap();
        while let Some(key) = iter.next_item().await {
            keys.push(key.unwrap());
        }
    }
    for chunk in keys.chunks(1000) {
        let _: () = conn.del(chunk).await.unwrap();
    }
}

fn rate(requests: usize, took: Duration) -> f64 {
    requests as f64 / took.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("tor-bench-{:016x}", rand::random::<u64>());
        let redis = match RedisStore::builder()
            .key_prefix(&prefix)
            .connect(url.as_str())
            .await
        {
            Ok(store) => store,
            Err(e) => {
                eprintln!("skipped: no Redis at {url}: {e}");
                return;
            }
        };
        let memory = MemoryStore::new();
        let memory_addr = common::serve(endpoint(memory.clone())).await;
        let redis_addr = common::serve(endpoint(redis.clone())).await;
        println!(
            "{CONNECTIONS} keep-alive connections, {REQUESTS_PER_RUN} revocations per run, \
             {PAIRS} runs each (after one warm-up each), order M R R M ..."
        );

        // Warm-up: connections, scripts loaded, allocator.
        let t = issue_tokens(&memory, 0, REQUESTS_PER_RUN / 4).await;
        revoke_all(memory_addr, t).await;
        let t = issue_tokens(&redis, 0, REQUESTS_PER_RUN / 4).await;
        revoke_all(redis_addr, t).await;

        let (mut memory_time, mut redis_time) = (Duration::ZERO, Duration::ZERO);
        for run in 1..=PAIRS {
            let redis_first = run % 2 == 0;
            for second in [false, true] {
                if redis_first != second {
                    let t = issue_tokens(&redis, run, REQUESTS_PER_RUN).await;
                    let took = revoke_all(redis_addr, t).await;
                    println!(
                        "run {run} redis : {:>9.0} req/s",
                        rate(REQUESTS_PER_RUN, took)
                    );
                    redis_time += took;
                } else {
                    let t = issue_tokens(&memory, run, REQUESTS_PER_RUN).await;
                    let took = revoke_all(memory_addr, t).await;
                    println!(
                        "run {run} memory: {:>9.0} req/s",
                        rate(REQUESTS_PER_RUN, took)
                    );
                    memory_time += took;
                }
            }
        }
        let total = REQUESTS_PER_RUN * PAIRS;
        let (m, r) = (rate(total, memory_time), rate(total, redis_time));
        println!("memory: {m:.0} req/s");
        println!("redis : {r:.0} req/s");
        println!("ratio redis/memory: {:.2}", r / m);
        delete_keys(&url, &prefix).await;
    });
}
