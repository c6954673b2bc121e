//! Memory: heap bytes per stored token in `MemoryStore`, and allocations per revocation
//! request on the endpoint path, counted by a counting global allocator.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Heap is counted as bytes requested from the allocator and not yet freed (the allocator's
//! own per-chunk overhead is not included). `MEM_TOKENS` sets the store size (default
//! 1,000,000); `MEM_REQUESTS` the requests per kind driven through the endpoint (default
//! 10,000).

use std::{
    alloc::System,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::FutureExt;
use http::Request;
use http_body_util::Full;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tower::ServiceExt;
use tower_oauth_revoke::{
    client_auth::{encode_basic, Client, MemoryClientRegistry},
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "k3V9qZr2xP8wL5tN1mB7cD4fG6hJ0sA2";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a store operation that completes at once (the memory store never waits).
fn now<F: std::future::Future>(f: F) -> F::Output {
    f.now_or_never()
        .expect("the memory store completes at once")
}

fn live_bytes(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64
}

/// How the tokens of the store are spread over grants and owners.
#[derive(Clone, Copy)]
struct Mix {
    name: &'static str,
    tokens_per_grant: u64,
    /// Resource owners; 0: no owner (`client_credentials` grants).
    owners: u64,
}

fn issue_all(store: &MemoryStore, tokens: u64, mix: Mix, owner_names: &[Arc<str>]) {
    let expires = SystemTime::now() + Duration::from_secs(24 * 3600);
    for t in 0..tokens {
        let g = t / mix.tokens_per_grant;
        let kind = if mix.tokens_per_grant > 1 && t % mix.tokens_per_grant == 1 {
            TokenKind::RefreshToken
        } else {
            TokenKind::AccessToken
        };
        let mut record =
            TokenRecord::new(kind, CLIENT_ID, GrantId::from_u64(g ^ 0x5bd1_e995), expires);
        if mix.owners > 0 {
            record = record.with_owner(owner_names[(g % mix.owners) as usize].clone());
        }
        now(store.issue(TokenHash::of(&format!("tok.{t:040}")), record)).expect("issue");
    }
}

fn store_memory(tokens: u64) {
    println!("MemoryStore heap at {tokens} tokens (bytes requested and still held):");
    let mixes = [
        Mix {
            name: "1 token per grant, 100k owners (worst case)",
            tokens_per_grant: 1,
            owners: 100_000,
        },
        Mix {
            name: "1 token per grant, no owner",
            tokens_per_grant: 1,
            owners: 0,
        },
        Mix {
            name: "access + refresh per grant, 100k owners",
            tokens_per_grant: 2,
            owners: 100_000,
        },
    ];
    for mix in mixes {
        // Owner names are the host's strings: made outside the measured region, then
        // interned by the store (which keeps one copy of each).
        let owner_names: Vec<Arc<str>> = (0..mix.owners)
            .map(|i| Arc::from(format!("user{i}")))
            .collect();
        let region = Region::new(GLOBAL);
        let store = MemoryStore::new();
        issue_all(&store, tokens, mix, &owner_names);
        let bytes = live_bytes(&region);
        assert_eq!(store.len() as u64, tokens);
        println!(
            "  {:<46} {:>11} bytes  {:>6.1} bytes/token",
            mix.name,
            bytes,
            bytes as f64 / tokens as f64
        );
        drop(store);
    }
    println!("  (budget: <= 160 bytes/token at 1,000,000 tokens)");
}

/// The sawtooth of hash-table growth: bytes per token at several sizes, one mix.
fn store_memory_curve() {
    println!("bytes/token by store size (1 token per grant, 100k owners):");
    let owner_names: Vec<Arc<str>> = (0..100_000)
        .map(|i| Arc::from(format!("user{i}")))
        .collect();
    let mix = Mix {
        name: "",
        tokens_per_grant: 1,
        owners: 100_000,
    };
    for tokens in [250_000u64, 450_000, 500_000, 750_000, 900_000, 1_000_000] {
        let region = Region::new(GLOBAL);
        let store = MemoryStore::new();
        issue_all(&store, tokens, mix, &owner_names);
        let bytes = live_bytes(&region);
        println!(
            "  {tokens:>9} tokens: {:>6.1} bytes/token",
            bytes as f64 / tokens as f64
        );
        drop(store);
    }
}

/// The full stack measured. CORS and JSONP, once the builder has them, are added here
/// (`.cors_origins([...])`, `.jsonp(true)`).
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

fn endpoint_allocations(requests: u64) {
    let tokens = 2 * requests + 10_000;
    let store = MemoryStore::new();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    for g in 0..tokens / 2 {
        let grant = GrantId::from_u64(g);
        now(store.issue(
            TokenHash::of(&format!("at.{g:040}")),
            TokenRecord::new(TokenKind::AccessToken, CLIENT_ID, grant, expires).with_owner("alice"),
        ))
        .unwrap();
        now(store.issue(
            TokenHash::of(&format!("rt.{g:040}")),
            TokenRecord::new(TokenKind::RefreshToken, CLIENT_ID, grant, expires)
                .with_owner("alice"),
        ))
        .unwrap();
    }
    let registry = MemoryClientRegistry::new([Client::confidential(CLIENT_ID, CLIENT_SECRET)]);
    let endpoint = full_endpoint(registry, store);
    let authorization = encode_basic(CLIENT_ID, CLIENT_SECRET);
    let request = |token: String, hint: &str| {
        Request::post("/oauth2/revoke")
            .header("authorization", authorization.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "token={token}&token_type_hint={hint}"
            ))))
            .unwrap()
    };
    println!("allocations per revocation request (endpoint driven in-process with oneshot):");
    type MakeRequest<'a> = &'a dyn Fn(u64) -> Request<Full<Bytes>>;
    let kinds: [(&str, MakeRequest<'_>); 3] = [
        ("unknown token", &|i| {
            request(format!("un.{i:040}"), "access_token")
        }),
        ("real access token (token alone)", &|i| {
            request(format!("at.{i:040}"), "access_token")
        }),
        ("real refresh token (whole grant)", &|i| {
            request(format!("rt.{i:040}"), "refresh_token")
        }),
    ];
    for (name, make) in kinds {
        // Requests are built before counting: the HTTP server made them, not the endpoint.
        let reqs: Vec<_> = (0..requests).map(make).collect();
        let region = Region::new(GLOBAL);
        for req in reqs {
            let response = now(endpoint.clone().oneshot(req)).unwrap();
            assert_eq!(response.status(), 200);
            drop(response);
        }
        let c = region.change();
        println!(
            "  {:<34} {:>5.2} allocations, {:>6.0} bytes allocated per request",
            name,
            (c.allocations + c.reallocations) as f64 / requests as f64,
            c.bytes_allocated as f64 / requests as f64
        );
    }
}

fn main() {
    let tokens: u64 = env_or("MEM_TOKENS", 1_000_000);
    let requests: u64 = env_or("MEM_REQUESTS", 10_000);
    store_memory(tokens);
    if std::env::var_os("MEM_CURVE").is_some() {
        store_memory_curve();
    }
    endpoint_allocations(requests);
}
