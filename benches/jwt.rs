//! The bearer guard's cost per request for each kind of token, in one run: an opaque token
//! looked up in `MemoryStore`; a JWT seen before (warm: its verified claims cached by the
//! token's digest), then looked up by `(iss, jti)` (`JwtCheck`, a server sharing the
//! store); a JWT never seen (cold: the Ed25519 signature and claims checked, `validate`)
//! then checked against a replica of revocations (`set::replica::Revocations`, a resource
//! server elsewhere: no network call); a JWT seen before at such a resource server
//! (`RemoteTokenCheck`, warm: its keys fetched once from a loopback issuer, the claims
//! cached); and reading a key set from its JWKS document.
//!
//! ```text
//! cargo bench --all-features --bench jwt
//! ```
//!
//! Medians of 7 runs of `JWT_CALLS` calls each (default 20,000).

use std::{
    hint::black_box,
    time::{Duration, Instant, SystemTime},
};

use tower_oauth_revoke::{
    guard::remote::RemoteGuard,
    guard::TokenCheck,
    jose::{KeySet, SigningKey},
    jwt::{validate, JwtAccessTokens, JwtCheck},
    set::{
        receive::SetVerifier,
        replica::{RemoteTokenCheck, Revocations},
    },
    store::{GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
};

fn calls() -> u32 {
    std::env::var("JWT_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn per_call(samples: Vec<Duration>, calls: u32) -> f64 {
    median(samples).as_nanos() as f64 / calls as f64 / 1000.0
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

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = calls();
    runtime.block_on(async {
        let store = MemoryStore::new();
        // A realistic store: 100,000 other tokens.
        for _ in 0..100_000 {
            store.mint(record()).await.unwrap();
        }
        let key = SigningKey::generate();
        let jwts = JwtAccessTokens::new("https://as.example", "https://api.example", key.clone());
        let opaque = store.mint(record()).await.unwrap();
        let jwt = jwts.issue(&store, record()).await.unwrap();
        let shared = JwtCheck::new(store.clone(), jwts.clone());
        let keys = KeySet::from_jwks(&key.jwks()).unwrap();
        let revocations = Revocations::default();
        let (remote, remote_jwt) = resource_server(&key).await;

        let (mut o, mut s, mut r, mut c) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut w = Vec::new();
        for _ in 0..7 {
            let start = Instant::now();
            for _ in 0..calls {
                black_box(store.check(black_box(&opaque)).await.unwrap().unwrap());
            }
            o.push(start.elapsed());

            let start = Instant::now();
            for _ in 0..calls {
                black_box(shared.check(black_box(&jwt)).await.unwrap().unwrap());
            }
            s.push(start.elapsed());

            let start = Instant::now();
            for _ in 0..calls {
                let claims = validate(&keys, black_box(&jwt), "https://as.example", None).unwrap();
                assert!(!revocations.is_revoked(&claims));
                black_box(claims.to_record());
            }
            r.push(start.elapsed());

            let start = Instant::now();
            for _ in 0..calls {
                black_box(remote.check(black_box(&remote_jwt)).await.unwrap().unwrap());
            }
            w.push(start.elapsed());

            let jwks = key.jwks();
            let start = Instant::now();
            for _ in 0..calls / 10 {
                black_box(KeySet::from_jwks(black_box(&jwks)).unwrap());
            }
            c.push(start.elapsed());
        }
        let opaque = per_call(o, calls);
        println!("bearer guard, per call (medians of 7 runs of {calls}):");
        println!("  opaque token, MemoryStore look-up            {opaque:>7.2} µs  (1.00x)");
        let shared = per_call(s, calls);
        println!(
            "  JWT seen before (warm) + look-up (iss, jti)  {shared:>7.2} µs  ({:.2}x)",
            shared / opaque
        );
        let replica = per_call(r, calls);
        println!(
            "  JWT never seen (cold: signature) + replica   {replica:>7.2} µs  ({:.2}x)",
            replica / opaque
        );
        let warm = per_call(w, calls);
        println!(
            "  JWT seen before at a resource server (warm)  {warm:>7.2} µs  ({:.2}x)",
            warm / opaque
        );
        let cold = per_call(c, calls / 10);
        println!("  cold: reading the key set from its JWKS      {cold:>7.2} µs  (once per key set fetch)");
    });
}

/// A resource server's check of the JWTs an issuer on loopback signs with `key` (it serves
/// its metadata and JWKS, nothing else), and one such JWT, checked once (warm).
async fn resource_server(key: &SigningKey) -> (RemoteTokenCheck, String) {
    use axum::{routing::get, Json, Router};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let metadata = serde_json::json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let jwks: serde_json::Value = serde_json::from_str(&key.jwks()).unwrap();
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || std::future::ready(Json(metadata.clone()))),
        )
        .route("/jwks", get(move || std::future::ready(Json(jwks.clone()))));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let introspection = RemoteGuard::builder(&issuer, "rs", "secret")
        .build()
        .unwrap();
    let check = RemoteTokenCheck::new(
        SetVerifier::new(&issuer, None).unwrap(),
        Revocations::default(),
        introspection,
    );
    let jwts = JwtAccessTokens::new(issuer.as_str(), "https://api.example", key.clone());
    let jwt = jwts.issue(&MemoryStore::new(), record()).await.unwrap();
    assert!(check.check(&jwt).await.unwrap().is_some(), "the JWT checks");
    (check, jwt)
}
