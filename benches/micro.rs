//! Micro-benchmarks of the hot steps of a revocation.
//!
//! ```text
//! cargo bench --bench micro
//! cargo bench --bench micro -- store   # a filter
//! ```
//!
//! - Basic header decoding and form parsing.
//! - JSONP callback validation, and wrapping a 64-byte JSON error frame by frame.
//! - `MemoryStore` look-up and revocation at 1,000 and 1,000,000 tokens: the two sizes
//!   should cost the same (O(1); what grows is cache misses, not work).
//! - Revoking a grant of 100 tokens by its refresh token, against a grant of 1: one flag,
//!   whatever the count.
//! - One whole request through `RevocationEndpoint` in process (no socket), against a
//!   service that only reads the body: what the endpoint adds to the HTTP server's work.
//! - A token check by the bearer guard over a shared `MemoryStore`, and by the remote guard
//!   when its answer is cached (the common case at a resource server that does not share
//!   the store).

use std::{
    hint::black_box,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use futures_util::FutureExt;
use http::HeaderValue;
use http_body::Body as _;
use http_body_util::Full;
use tower_oauth_revoke::{
    client_auth::{decode_basic, encode_basic},
    form::FormParams,
    jsonp::{Callback, JsonpBody},
    store::{
        GrantId, MemoryStore, RevocationOutcome, RevocationRequest, RevocationScope, TokenHash,
        TokenKind, TokenRecord, TokenStore,
    },
};

const CLIENT_ID: &str = "bench-client";

/// Runs a store operation that completes at once (the memory store never waits).
fn now<F: std::future::Future>(f: F) -> F::Output {
    f.now_or_never()
        .expect("the memory store completes at once")
}

fn expires() -> SystemTime {
    SystemTime::now() + Duration::from_secs(24 * 3600)
}

fn token(i: u64) -> String {
    format!("tok.{i:040}")
}

/// A store of `n` access tokens, one grant each; token `i` is `token(i)`.
fn store_of(n: u64) -> MemoryStore {
    let store = MemoryStore::new();
    let expires = expires();
    for i in 0..n {
        now(store.issue(
            TokenHash::of(&token(i)),
            TokenRecord::new(
                TokenKind::AccessToken,
                CLIENT_ID,
                GrantId::from_u64(i),
                expires,
            )
            .with_owner("alice"),
        ))
        .unwrap();
    }
    store
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let basic = encode_basic(CLIENT_ID, "k3V9qZr2xP8wL5tN1mB7cD4fG6hJ0sA2");
    group.bench_function("decode_basic", |b| {
        b.iter(|| decode_basic(black_box(&basic)))
    });
    let escaped = HeaderValue::from_static("Basic bXkrY2xpZW50OnMzY3IlM0F0JTJCKyUyNng=");
    group.bench_function("decode_basic_escaped", |b| {
        b.iter(|| decode_basic(black_box(&escaped)))
    });
    let body = format!("token={}&token_type_hint=refresh_token", token(7));
    group.bench_function("form_parse_revocation", |b| {
        b.iter(|| FormParams::parse(black_box(body.as_bytes())))
    });
    let post = "token=a%2Bb%2Fc%3D&token_type_hint=access_token&client_id=my+client&client_secret=s3cr%3At";
    group.bench_function("form_parse_escaped_post_auth", |b| {
        b.iter(|| FormParams::parse(black_box(post.as_bytes())))
    });
    group.finish();
}

fn jsonp(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonp");
    group.bench_function("callback_valid", |b| {
        b.iter(|| Callback::parse(black_box("package.myCallback")))
    });
    group.bench_function("callback_hostile", |b| {
        b.iter(|| Callback::parse(black_box("alert(1)//<script>")))
    });
    let callback = Callback::parse("package.myCallback").unwrap();
    let error = Bytes::from_static(
        br#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
    );
    group.bench_function("wrap_64_byte_error", |b| {
        b.iter(|| {
            let body = JsonpBody::wrapped(Full::new(error.clone()), &callback);
            let mut body = std::pin::pin!(body);
            let mut out = 0usize;
            while let Some(frame) = now(std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))) {
                out += frame.unwrap().into_data().map_or(0, |d| d.len());
            }
            black_box(out)
        })
    });
    group.finish();
}

fn store_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    for n in [1_000u64, 1_000_000] {
        let store = store_of(n);
        let request = RevocationRequest::new(CLIENT_ID);
        // Look-ups spread over the whole store, as real traffic is: a fixed key would sit
        // in cache and hide the cost of a large table.
        let hashes: Vec<TokenHash> = (0..4096u64)
            .map(|i| TokenHash::of(&token(i.wrapping_mul(2_654_435_761) % n)))
            .collect();
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::new("inspect_active", n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 4095;
                now(store.inspect(black_box(&hashes[k]))).unwrap()
            })
        });
        let unknown: Vec<TokenHash> = (0..4096u64)
            .map(|i| TokenHash::of(&format!("unknown.{i}")))
            .collect();
        group.bench_with_input(BenchmarkId::new("revoke_unknown", n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 4095;
                now(store.revoke(black_box(&unknown[k]), request)).unwrap()
            })
        });
        // Revoke a real access token (the token alone); the setup, not timed, issues a
        // fresh one into an existing grant, so that the store keeps its size.
        let mut fresh = n;
        let expires = expires();
        group.bench_with_input(BenchmarkId::new("revoke_access_token", n), &n, |b, _| {
            b.iter_batched(
                || {
                    fresh += 1;
                    let hash = TokenHash::of(&token(fresh));
                    now(store.issue(
                        hash,
                        TokenRecord::new(
                            TokenKind::AccessToken,
                            CLIENT_ID,
                            GrantId::from_u64(fresh % n),
                            expires,
                        ),
                    ))
                    .unwrap();
                    hash
                },
                |hash| {
                    let outcome = now(store.revoke(&hash, request)).unwrap();
                    debug_assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
                    outcome
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn cascade(c: &mut Criterion) {
    let mut group = c.benchmark_group("cascade");
    // Setting up a grant of 100 tokens costs far more than revoking it: keep the number
    // of iterations (each with its own setup) small.
    group
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(400))
        .sample_size(10);
    let store = store_of(1_000);
    let expires = expires();
    let mut next_grant = 1u64 << 40;
    for size in [1u64, 100] {
        // The grant's access tokens and its refresh token; every iteration re-issues them
        // into a fresh grant (not timed), then revokes the refresh token, which revokes
        // the grant and so every token of it (timed).
        let access: Vec<TokenHash> = (0..size - 1)
            .map(|i| TokenHash::of(&format!("access.{size}.{i}")))
            .collect();
        let refresh = TokenHash::of(&format!("refresh.{size}"));
        let request = RevocationRequest::new(CLIENT_ID);
        group.bench_with_input(
            BenchmarkId::new("revoke_grant_by_refresh_token", size),
            &size,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        next_grant += 1;
                        let grant = GrantId::from_u64(next_grant);
                        for hash in &access {
                            now(store.issue(
                                *hash,
                                TokenRecord::new(TokenKind::AccessToken, CLIENT_ID, grant, expires),
                            ))
                            .unwrap();
                        }
                        now(store.issue(
                            refresh,
                            TokenRecord::new(TokenKind::RefreshToken, CLIENT_ID, grant, expires),
                        ))
                        .unwrap();
                        let started = Instant::now();
                        let outcome = now(store.revoke(black_box(&refresh), request)).unwrap();
                        total += started.elapsed();
                        assert_eq!(
                            outcome,
                            RevocationOutcome::Revoked {
                                kind: TokenKind::RefreshToken,
                                scope: RevocationScope::Grant
                            }
                        );
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

/// A revocation request with valid Basic credentials, as the load benchmark sends.
fn revocation_request(token: &str) -> http::Request<Full<Bytes>> {
    http::Request::post("/oauth2/revoke")
        .header("host", "127.0.0.1")
        .header("authorization", encode_basic(CLIENT_ID, "s3cret-s3cret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!(
            "token={token}&token_type_hint=access_token"
        ))))
        .expect("a valid request")
}

fn endpoint(c: &mut Criterion) {
    use http_body_util::BodyExt;
    use tower::{Service, ServiceExt};
    use tower_oauth_revoke::{
        client_auth::{Client, MemoryClientRegistry},
        RevocationEndpoint,
    };

    let mut group = c.benchmark_group("endpoint");
    let store = store_of(1_000);
    let mut full = RevocationEndpoint::builder(
        MemoryClientRegistry::new([Client::confidential(CLIENT_ID, "s3cret-s3cret")]),
        store,
    )
    .cors_origins(["https://app.example.com"])
    .jsonp(true)
    .build()
    .expect("the endpoint builds");
    let mut bare = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
    });
    let unknown = token(u64::MAX);
    group.bench_function("bare_read_body", |b| {
        b.iter_batched(
            || revocation_request(&unknown),
            |req| now(bare.ready().now_or_never().unwrap().unwrap().call(req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("revoke_unknown_token", |b| {
        b.iter_batched(
            || revocation_request(&unknown),
            |req| {
                let response = now(full.call(req)).unwrap();
                assert_eq!(response.status(), 200);
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The guard's check of an active token: over a shared store, and from the remote guard's
/// cache (filled once by a real introspection call to an in-process authorization server).
fn guard(c: &mut Criterion) {
    use tower_oauth_revoke::{
        client_auth::{Client, MemoryClientRegistry},
        endpoint::Endpoint,
        guard::{remote::RemoteGuard, TokenCheck},
        introspect::Introspector,
        metadata::AuthorizationServerMetadata,
        serve::Server,
    };

    let store = store_of(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let guard = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let clients = MemoryClientRegistry::new([
            Client::confidential("rs", "rs-secret").with_introspection()
        ]);
        let introspect = Endpoint::with_step(clients, Introspector::new(store.clone()))
            .build()
            .unwrap();
        let metadata = AuthorizationServerMetadata::new(issuer.as_str())
            .unwrap()
            .introspection_endpoint("/introspect", &introspect)
            .into_service();
        let app = axum::Router::new()
            .route_service("/introspect", introspect)
            .route_service("/.well-known/oauth-authorization-server", metadata);
        tokio::spawn(Server::new().serve(listener, app, std::future::pending()));
        let guard = RemoteGuard::builder(issuer, "rs", "rs-secret")
            .build()
            .unwrap();
        let filled = guard.check(&token(7)).await.unwrap();
        assert!(
            filled.is_some(),
            "the token is active at the authorization server"
        );
        guard
    });

    let mut group = c.benchmark_group("guard");
    let t = token(7);
    group.bench_function("store_check", |b| {
        b.iter(|| now(black_box(&store).check(black_box(&t))).unwrap())
    });
    group.bench_function("remote_cache_hit", |b| {
        b.iter(|| {
            black_box(&guard)
                .check(black_box(&t))
                .now_or_never()
                .expect("a cached answer completes at once")
                .unwrap()
        })
    });
    group.finish();
    drop(rt);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = parsing, jsonp, store_ops, cascade, endpoint, guard
}
criterion_main!(benches);
