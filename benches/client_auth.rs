//! The cost per request of each client authentication, in one run, through the same stack
//! (`FormLayer`, `ClientAuthLayer` over a `MemoryClientRegistry`, a service that answers
//! 200): `client_secret_basic` (the baseline: base64, one SHA-256, a constant-time
//! compare), then `private_key_jwt` signed with each kind of key registered inline (ES256,
//! EdDSA, PS256 with 2048-bit RSA), with a `jwks_uri` whose keys are cached, and with a
//! `jwks_uri` fetched for the request (cold: a new key set, read from a loopback server).
//! Every assertion carries a fresh `jti`, recorded in a `MemoryStore`'s replay cache;
//! assertions are signed before the clock starts.
//!
//! Then the resource server's side: `BearerGuardLayer` over a `MemoryStore`, a bearer token
//! (the baseline) against a DPoP-bound token with a proof (ES256, EdDSA) checked by a
//! `DpopVerifier` whose replay cache is the same store. A DPoP key comes in its proof, so
//! there is no key to cache: every check is cold.
//!
//! ```text
//! cargo bench --all-features --bench client_auth
//! ```
//!
//! Medians of 7 runs of `AUTH_CALLS` calls each (default 5,000; a tenth of that for the
//! cold case).

use std::{
    convert::Infallible,
    hint::black_box,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::json;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_oauth_revoke::{
    body::Body,
    client_auth::{
        encode_basic, Client, ClientAssertions, ClientAuthLayer, ClientKeys, MemoryClientRegistry,
        JWT_BEARER,
    },
    form::FormLayer,
    jose::{KeySet, RemoteKeySet, SigningKey},
    store::MemoryStore,
};

const ISSUER: &str = "https://as.example";
const RSA_DER: &[u8] = include_bytes!("../src/client_auth/assertion/rsa-test-key.der");
const RSA_JWKS: &str = include_str!("../src/client_auth/assertion/rsa-test-key.jwks.json");

fn calls() -> usize {
    std::env::var("AUTH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn claims(client: &str) -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": client, "sub": client, "aud": ISSUER, "exp": now + 300,
        "jti": format!("{:032x}", rand::random::<u128>()),
    })
}

fn form(body: String) -> Request<Body> {
    Request::post("/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn assertion_request(assertion: &str) -> Request<Body> {
    form(format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        form_urlencoded::byte_serialize(JWT_BEARER.as_bytes()).collect::<String>()
    ))
}

/// A loopback server answering every GET with `jwks`.
async fn jwks_server(jwks: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { jwks }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
    runtime.block_on(guard());
}

async fn run() {
    let n = calls();
    let ec = SigningKey::from_pkcs8_pem(
        &p256::SecretKey::from_slice(&[3u8; 32])
            .unwrap()
            .to_sec1_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    let ed = SigningKey::generate();
    let rsa = jsonwebtoken::EncodingKey::from_rsa_der(RSA_DER);
    let uri = jwks_server(ec.jwks()).await;
    let cached = RemoteKeySet::new(&uri, None).unwrap();
    cached.refresh(true).await.unwrap();
    let registry = MemoryClientRegistry::new([
        Client::confidential("basic", "a-long-random-client-secret-0123456789"),
        Client::private_key_jwt(
            "es256",
            ClientKeys::inline(KeySet::from_jwks(&ec.jwks()).unwrap()),
        ),
        Client::private_key_jwt(
            "eddsa",
            ClientKeys::inline(KeySet::from_jwks(&ed.jwks()).unwrap()),
        ),
        Client::private_key_jwt("ps256", ClientKeys::from_jwks(RSA_JWKS).unwrap()),
        Client::private_key_jwt("uri-cached", ClientKeys::remote(cached)),
    ]);
    let assertions = ClientAssertions::new(ISSUER, MemoryStore::new());
    let ok = service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut service = ServiceBuilder::new()
        .layer(FormLayer::new())
        .layer(ClientAuthLayer::new(registry).assertions(assertions.clone()))
        .service(ok);

    type Case<'a> = (&'a str, usize, Box<dyn Fn() -> Request<Body> + 'a>);
    let basic = encode_basic("basic", "a-long-random-client-secret-0123456789");
    let cases: Vec<Case<'_>> = vec![
        (
            "client_secret_basic",
            n,
            Box::new(|| {
                let mut req = form("grant_type=client_credentials".into());
                req.headers_mut().insert("authorization", basic.clone());
                req
            }),
        ),
        (
            "private_key_jwt ES256, inline keys",
            n,
            Box::new(|| assertion_request(&ec.sign("JWT", &claims("es256")).unwrap())),
        ),
        (
            "private_key_jwt EdDSA, inline keys",
            n,
            Box::new(|| assertion_request(&ed.sign("JWT", &claims("eddsa")).unwrap())),
        ),
        (
            "private_key_jwt PS256 (RSA 2048), inline keys",
            n,
            Box::new(|| {
                let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                assertion_request(&jsonwebtoken::encode(&header, &claims("ps256"), &rsa).unwrap())
            }),
        ),
        (
            "private_key_jwt ES256, jwks_uri cached",
            n,
            Box::new(|| assertion_request(&ec.sign("JWT", &claims("uri-cached")).unwrap())),
        ),
    ];
    println!("client authentication, per request (median of 7 runs):");
    let mut baseline = None;
    for (name, count, make) in &cases {
        let mut samples = Vec::new();
        for _ in 0..7 {
            let requests: Vec<_> = (0..*count).map(|_| make()).collect();
            let start = Instant::now();
            for req in requests {
                let response = ServiceExt::<Request<Body>>::ready(&mut service)
                    .await
                    .unwrap()
                    .call(req)
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{name}");
                black_box(response);
            }
            samples.push(start.elapsed() / *count as u32);
        }
        report(name, median(samples), &mut baseline);
    }

    // Cold: each request finds the client's key set empty and fetches it.
    let cold = (calls() / 10).max(10);
    let mut samples = Vec::new();
    for _ in 0..7 {
        let mut requests = Vec::new();
        for _ in 0..cold {
            let keys = ClientKeys::remote(RemoteKeySet::new(&uri, None).unwrap());
            let registry = MemoryClientRegistry::new([Client::private_key_jwt("uri-cold", keys)]);
            let service = ServiceBuilder::new()
                .layer(FormLayer::new())
                .layer(ClientAuthLayer::new(registry).assertions(assertions.clone()))
                .service(ok);
            requests.push((
                service,
                assertion_request(&ec.sign("JWT", &claims("uri-cold")).unwrap()),
            ));
        }
        let start = Instant::now();
        for (service, req) in requests {
            let response = service.oneshot(req).await.unwrap();
            assert_eq!(response.status(), 200, "cold");
        }
        samples.push(start.elapsed() / cold as u32);
    }
    report(
        "private_key_jwt ES256, jwks_uri cold (fetched)",
        median(samples),
        &mut baseline,
    );
}

/// The guard with a bearer token, then with DPoP-bound tokens and their proofs.
async fn guard() {
    use tower_oauth_revoke::{
        dpop::{self, DpopVerifier, JwkThumbprint},
        guard::BearerGuardLayer,
        store::{Confirmation, GrantId, TokenKind, TokenRecord, TokenStore},
    };
    let n = calls();
    let store = MemoryStore::new();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let record = || TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires);
    store
        .issue(
            tower_oauth_revoke::store::TokenHash::of("bearer-token"),
            record(),
        )
        .await
        .unwrap();
    let ec = SigningKey::from_pkcs8_pem(
        &p256::SecretKey::from_slice(&[5u8; 32])
            .unwrap()
            .to_sec1_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    let ed = SigningKey::generate();
    for (token, key) in [("es256-token", &ec), ("eddsa-token", &ed)] {
        let bound =
            record().with_confirmation(Confirmation::Jkt(*JwkThumbprint::of_key(key).as_bytes()));
        store
            .issue(tower_oauth_revoke::store::TokenHash::of(token), bound)
            .await
            .unwrap();
    }
    let ok = service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut service = ServiceBuilder::new()
        .layer(
            BearerGuardLayer::new(store.clone())
                .dpop(DpopVerifier::new(store.clone()), "https://rs.example"),
        )
        .service(ok);
    let get = |token: &str, proof: Option<String>| {
        let scheme = if proof.is_some() { "DPoP" } else { "Bearer" };
        let mut req = Request::get("https://rs.example/api")
            .header("authorization", format!("{scheme} {token}"))
            .body(Body::empty())
            .unwrap();
        if let Some(proof) = proof {
            req.headers_mut().insert("dpop", proof.parse().unwrap());
        }
        req
    };
    let url = "https://rs.example/api";
    type Case<'a> = (&'a str, Box<dyn Fn() -> Request<Body> + 'a>);
    let cases: Vec<Case<'_>> = vec![
        ("bearer token", Box::new(|| get("bearer-token", None))),
        (
            "DPoP-bound token, ES256 proof",
            Box::new(|| {
                let proof = dpop::proof(&ec, &http::Method::GET, url, Some("es256-token")).unwrap();
                get("es256-token", Some(proof))
            }),
        ),
        (
            "DPoP-bound token, EdDSA proof",
            Box::new(|| {
                let proof = dpop::proof(&ed, &http::Method::GET, url, Some("eddsa-token")).unwrap();
                get("eddsa-token", Some(proof))
            }),
        ),
    ];
    println!("resource server guard, per request (median of 7 runs):");
    let mut baseline = None;
    for (name, make) in &cases {
        let mut samples = Vec::new();
        for _ in 0..7 {
            let requests: Vec<_> = (0..n).map(|_| make()).collect();
            let start = Instant::now();
            for req in requests {
                let response = ServiceExt::<Request<Body>>::ready(&mut service)
                    .await
                    .unwrap()
                    .call(req)
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{name}");
            }
            samples.push(start.elapsed() / n as u32);
        }
        let per_call = median(samples);
        let base = *baseline.get_or_insert(per_call);
        println!(
            "  {name:<48} {:>8.2} µs  {:>6.1}× bearer token",
            per_call.as_nanos() as f64 / 1000.0,
            per_call.as_nanos() as f64 / base.as_nanos() as f64
        );
    }
}

fn report(name: &str, per_call: Duration, baseline: &mut Option<Duration>) {
    let base = *baseline.get_or_insert(per_call);
    println!(
        "  {name:<48} {:>8.2} µs  {:>6.1}× client_secret_basic",
        per_call.as_nanos() as f64 / 1000.0,
        per_call.as_nanos() as f64 / base.as_nanos() as f64
    );
}
