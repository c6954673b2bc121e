//! Revocation events over real HTTP: the demo server in its own process pushes Security
//! Event Tokens to a receiver served here (RFC 8935), keeps them for polling (RFC 8936), and
//! the resource server example, in a third process, applies them within a second.

mod common;

use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
use common::{example_binary, Process};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower_oauth_revoke::{
    jose::{KeySet, SigningKey},
    set::{CLIENT_REVOKED, GRANT_REVOKED, SUBJECT_REVOKED, TOKEN_REVOKED},
    store::TokenHash,
};

const APP: (&str, &str) = (
    "YmxD0jDOIfiBkD8TPLYOfxNSIg4a",
    "FJdj7G956wqKw3d4X0BWONMIu00a",
);
const OTHER: (&str, &str) = ("other-client", "other-secret");

/// A pushed SET: its content type and body.
#[derive(Debug)]
struct Pushed {
    content_type: String,
    body: String,
}

/// A webhook receiver on `addr` (port 0 for any): every push is answered 202 and sent on.
async fn receiver(addr: SocketAddr) -> (SocketAddr, mpsc::UnboundedReceiver<Pushed>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/events",
            post(
                |State(tx): State<mpsc::UnboundedSender<Pushed>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(Pushed {
                        content_type,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    axum::http::StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (local, rx)
}

async fn next_push(rx: &mut mpsc::UnboundedReceiver<Pushed>, within: Duration) -> Pushed {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a SET is pushed in time")
        .expect("the receiver lives")
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> Value {
    let reply = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "a token is issued");
    reply.json().await.unwrap()
}

async fn password_grant(
    http: &reqwest::Client,
    base: &str,
    client: (&str, &str),
    user: &str,
) -> Value {
    let password = format!("{user}-password");
    token(
        http,
        base,
        client,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", &password),
        ],
    )
    .await
}

async fn revoke(
    http: &reqwest::Client,
    base: &str,
    client: (&str, &str),
    token: &str,
) -> (u16, Duration) {
    let start = Instant::now();
    let status = http
        .post(format!("{base}/oauth2/revoke"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (status, start.elapsed())
}

async fn keys(http: &reqwest::Client, base: &str) -> KeySet {
    let jwks = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    KeySet::from_jwks(&jwks).unwrap()
}

/// Checks a pushed SET against the published keys and returns (event type, event, claims).
fn open(keys: &KeySet, issuer: &str, pushed: &Pushed, secrets: &[&str]) -> (String, Value, Value) {
    assert_eq!(pushed.content_type, "application/secevent+jwt");
    for secret in secrets {
        assert!(!pushed.body.contains(secret), "no token value in a SET");
    }
    let claims: Value = keys
        .verify(&pushed.body, "secevent+jwt")
        .expect("signed with a published key");
    for secret in secrets {
        assert!(
            !claims.to_string().contains(secret),
            "no token value in a SET"
        );
    }
    assert_eq!(claims["iss"], issuer);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["iat"].as_u64().is_some());
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "one event per SET");
    let (kind, event) = events.iter().next().unwrap();
    assert_eq!(event["subject"]["format"], "complex");
    (kind.clone(), event.clone(), claims.clone())
}

fn member<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event["subject"][name]["id"].as_str()
}

async fn binaries() -> (std::path::PathBuf, std::path::PathBuf) {
    tokio::task::spawn_blocking(|| (example_binary("server"), example_binary("resource_server")))
        .await
        .unwrap()
}

#[tokio::test]
async fn every_revocation_path_pushes_exactly_its_sets() {
    let (hook, mut pushes) = receiver("127.0.0.1:0".parse().unwrap()).await;
    let (server, _) = binaries().await;
    let webhook = format!("http://{hook}/events");
    let issuer = issuer_pushing_to(&server, &webhook, false);
    let base = issuer.url.clone();
    let http = reqwest::Client::new();
    let keys = keys(&http, &base).await;
    let quick = Duration::from_secs(1);

    // The revocation endpoint, an access token alone.
    let pair = password_grant(&http, &base, APP, "alice").await;
    let (access, refresh) = (
        pair["access_token"].as_str().unwrap().to_owned(),
        pair["refresh_token"].as_str().unwrap().to_owned(),
    );
    // Nothing active is revoked by an unknown token or another client's: no SET.
    revoke(&http, &base, APP, "no-such-token").await;
    revoke(&http, &base, OTHER, &access).await;
    assert_eq!(revoke(&http, &base, APP, &access).await.0, 200);
    let (kind, event, _) = open(
        &keys,
        &base,
        &next_push(&mut pushes, quick).await,
        &[&access, &refresh],
    );
    assert_eq!(kind, TOKEN_REVOKED);
    assert_eq!(member(&event, "application"), Some(APP.0));
    assert_eq!(member(&event, "user"), Some("alice"));
    assert_eq!(
        member(&event, "token"),
        Some(TokenHash::of(&access).to_hex().as_str())
    );
    let grant = member(&event, "grant").unwrap().to_owned();
    assert_eq!(event["initiating_entity"], "policy");

    // A refresh token's cascade: its grant.
    assert_eq!(revoke(&http, &base, APP, &refresh).await.0, 200);
    let (kind, event, _) = open(
        &keys,
        &base,
        &next_push(&mut pushes, quick).await,
        &[&refresh],
    );
    assert_eq!(kind, GRANT_REVOKED);
    assert_eq!(member(&event, "grant"), Some(grant.as_str()));
    // Revoking it again changes nothing and sends nothing (checked by the next SET below).
    revoke(&http, &base, APP, &refresh).await;

    // The resource owner, one client: one SET per grant.
    let a = password_grant(&http, &base, APP, "alice").await;
    let b = password_grant(&http, &base, APP, "alice").await;
    let other = password_grant(&http, &base, OTHER, "alice").await;
    let status = http
        .delete(format!("{base}/users/me/authorizations/{}", APP.0))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let mut grants = HashSet::new();
    for _ in 0..2 {
        let (kind, event, _) = open(&keys, &base, &next_push(&mut pushes, quick).await, &[]);
        assert_eq!(kind, GRANT_REVOKED);
        assert_eq!(event["initiating_entity"], "user");
        assert_eq!(member(&event, "application"), Some(APP.0));
        grants.insert(member(&event, "grant").unwrap().to_owned());
    }
    assert_eq!(grants.len(), 2, "each grant once");
    let _ = (a, b);

    // The resource owner, every client: one SET, the user.
    let status = http
        .delete(format!("{base}/users/me/authorizations"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let (kind, event, _) = open(
        &keys,
        &base,
        &next_push(&mut pushes, quick).await,
        &[other["access_token"].as_str().unwrap()],
    );
    assert_eq!(kind, SUBJECT_REVOKED);
    assert_eq!(member(&event, "user"), Some("alice"));
    assert!(event["event_timestamp"].as_f64().is_some());

    // The admin, a client: one SET, the application.
    token(&http, &base, OTHER, &[("grant_type", "client_credentials")]).await;
    let reply = http
        .post(format!("{base}/admin/revocations"))
        .basic_auth("admin-client", Some("admin-secret"))
        .form(&[("client_id", OTHER.0)])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (kind, event, _) = open(&keys, &base, &next_push(&mut pushes, quick).await, &[]);
    assert_eq!(kind, CLIENT_REVOKED);
    assert_eq!(member(&event, "application"), Some(OTHER.0));
    assert_eq!(event["initiating_entity"], "admin");

    // Nothing else was pushed.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), pushes.recv())
            .await
            .is_err(),
        "no SET for what revoked nothing"
    );
}

#[tokio::test]
async fn a_webhook_that_was_down_gets_every_event_in_order_and_never_slows_revocation() {
    // A port nobody listens on yet.
    let port = free_port();
    let (server, _) = binaries().await;
    let webhook = format!("http://{port}/events");
    let issuer = issuer_pushing_to(&server, &webhook, false);
    let base = issuer.url.clone();
    let http = reqwest::Client::new();
    let keys = keys(&http, &base).await;

    let mut order = Vec::new();
    for _ in 0..5 {
        let access = token(&http, &base, OTHER, &[("grant_type", "client_credentials")]).await;
        let access = access["access_token"].as_str().unwrap().to_owned();
        let (status, took) = revoke(&http, &base, OTHER, &access).await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_millis(500),
            "revocation answered in {took:?} while the webhook was down"
        );
        order.push(TokenHash::of(&access).to_hex());
    }
    // Down for a minute (the scenario itself, not a wait for a signal): the pusher keeps
    // retrying with back-off, capped at 500 ms.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (_, mut pushes) = receiver(port).await;
    for expected in &order {
        let (kind, event, _) = open(
            &keys,
            &base,
            &next_push(&mut pushes, Duration::from_secs(5)).await,
            &[],
        );
        assert_eq!(kind, TOKEN_REVOKED);
        assert_eq!(member(&event, "token"), Some(expected.as_str()), "in order");
    }
    // Back up: a new event arrives within a second.
    let access = token(&http, &base, OTHER, &[("grant_type", "client_credentials")]).await;
    let access = access["access_token"].as_str().unwrap().to_owned();
    revoke(&http, &base, OTHER, &access).await;
    let (_, event, _) = open(
        &keys,
        &base,
        &next_push(&mut pushes, Duration::from_secs(1)).await,
        &[&access],
    );
    assert_eq!(
        member(&event, "token"),
        Some(TokenHash::of(&access).to_hex().as_str())
    );
}

async fn poll(
    http: &reqwest::Client,
    base: &str,
    who: (&str, &str),
    body: Value,
) -> reqwest::Response {
    http.post(format!("{base}/oauth2/events"))
        .basic_auth(who.0, Some(who.1))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn polling_returns_each_set_until_it_is_acknowledged() {
    let (server, _) = binaries().await;
    let issuer = Process::start(&server, &["--plain", "--listen", "127.0.0.1:0"]);
    let base = issuer.url.clone();
    let http = reqwest::Client::new();
    let keys = keys(&http, &base).await;
    let rs = ("resource-server", "rs-secret");

    for _ in 0..2 {
        let access = token(&http, &base, OTHER, &[("grant_type", "client_credentials")]).await;
        revoke(
            &http,
            &base,
            OTHER,
            access["access_token"].as_str().unwrap(),
        )
        .await;
    }
    let first: Value = poll(&http, &base, rs, json!({"returnImmediately": true}))
        .await
        .json()
        .await
        .unwrap();
    let sets = first["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(first["moreAvailable"], false);
    for (jti, set) in sets {
        let pushed = Pushed {
            content_type: "application/secevent+jwt".into(),
            body: set.as_str().unwrap().to_owned(),
        };
        let (_, _, claims) = open(&keys, &base, &pushed, &[]);
        assert_eq!(claims["jti"], jti.as_str(), "keyed by its jti");
    }
    let one: Value = poll(
        &http,
        &base,
        rs,
        json!({"returnImmediately": true, "maxEvents": 1}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["sets"].as_object().unwrap().len(), 1);
    assert_eq!(one["moreAvailable"], true);
    let again: Value = poll(&http, &base, rs, json!({"returnImmediately": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["sets"], first["sets"],
        "unacknowledged: the same SETs again"
    );
    let jtis: Vec<&String> = sets.keys().collect();
    let after: Value = poll(
        &http,
        &base,
        rs,
        json!({"ack": [jtis[0]], "returnImmediately": true}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        after["sets"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![jtis[1]]
    );
    let empty: Value = poll(
        &http,
        &base,
        rs,
        json!({"ack": [jtis[1]], "returnImmediately": true}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        empty["sets"].as_object().unwrap().is_empty(),
        "acknowledged: never again"
    );

    // A long poll answers as soon as an event arrives.
    let waiting = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            let start = Instant::now();
            let reply: Value = poll(&http, &base, rs, json!({}))
                .await
                .json()
                .await
                .unwrap();
            (reply, start.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let access = token(&http, &base, OTHER, &[("grant_type", "client_credentials")]).await;
    revoke(
        &http,
        &base,
        OTHER,
        access["access_token"].as_str().unwrap(),
    )
    .await;
    let (reply, took) = waiting.await.unwrap();
    assert_eq!(reply["sets"].as_object().unwrap().len(), 1);
    assert!(took < Duration::from_secs(5));

    // Only a resource server may poll, by Basic.
    assert_eq!(poll(&http, &base, OTHER, json!({})).await.status(), 403);
    assert_eq!(
        poll(&http, &base, ("resource-server", "wrong"), json!({}))
            .await
            .status(),
        401
    );
    let bad = poll(&http, &base, rs, json!({"ack": "not-a-list"})).await;
    assert_eq!(bad.status(), 400);
}

async fn api(http: &reqwest::Client, rs: &str, token: &str) -> u16 {
    http.get(format!("{rs}/api"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn refused_within(
    http: &reqwest::Client,
    rs: &str,
    token: &str,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if api(http, rs, token).await == 401 {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_a_resource_server_within_a_second_by_push_or_poll() {
    let (server, rs_binary) = binaries().await;
    // The pushed resource server's port is known before the issuer starts.
    let pushed_port = free_port();
    let webhook = format!("http://{pushed_port}/events");
    let issuer = issuer_pushing_to(&server, &webhook, true);
    let pushed = Process::start(
        &rs_binary,
        &[
            "--issuer",
            &issuer.url,
            "--listen",
            &pushed_port.to_string(),
            "--cache-ttl",
            "3600",
        ],
    );
    let polling = Process::start(
        &rs_binary,
        &[
            "--issuer",
            &issuer.url,
            "--listen",
            "127.0.0.1:0",
            "--cache-ttl",
            "3600",
            "--poll",
        ],
    );
    let http = reqwest::Client::new();
    for rs in [&pushed.url, &polling.url] {
        // A JWT, checked locally.
        let pair = password_grant(&http, &issuer.url, APP, "alice").await;
        let jwt = pair["access_token"].as_str().unwrap().to_owned();
        assert!(jwt.starts_with("eyJ"), "--jwt issues JWTs");
        assert_eq!(api(&http, rs, &jwt).await, 200);
        assert_eq!(revoke(&http, &issuer.url, APP, &jwt).await.0, 200);
        let took = refused_within(&http, rs, &jwt, Duration::from_secs(1)).await;
        eprintln!("JWT refused at {rs} {took:?} after its revocation");

        // A grant's revocation reaches a JWT of it: the refresh token revokes its grant.
        let pair = password_grant(&http, &issuer.url, APP, "bob").await;
        let jwt = pair["access_token"].as_str().unwrap().to_owned();
        assert_eq!(api(&http, rs, &jwt).await, 200);
        revoke(
            &http,
            &issuer.url,
            APP,
            pair["refresh_token"].as_str().unwrap(),
        )
        .await;
        refused_within(&http, rs, &jwt, Duration::from_secs(1)).await;

        // A client's revocation reaches its JWTs; one issued afterwards works.
        let cc = token(
            &http,
            &issuer.url,
            OTHER,
            &[("grant_type", "client_credentials")],
        )
        .await;
        let jwt = cc["access_token"].as_str().unwrap().to_owned();
        assert_eq!(api(&http, rs, &jwt).await, 200);
        let reply = http
            .post(format!("{}/admin/revocations", issuer.url))
            .basic_auth("admin-client", Some("admin-secret"))
            .form(&[("client_id", OTHER.0)])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        refused_within(&http, rs, &jwt, Duration::from_secs(1)).await;
        let fresh = token(
            &http,
            &issuer.url,
            OTHER,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(
            api(&http, rs, fresh["access_token"].as_str().unwrap()).await,
            200
        );
    }
}

#[tokio::test]
async fn opaque_tokens_cached_for_an_hour_are_refused_within_a_second_once_revoked() {
    let (server, rs_binary) = binaries().await;
    let port = free_port();
    let webhook = format!("http://{port}/events");
    let issuer = issuer_pushing_to(&server, &webhook, false);
    let rs = Process::start(
        &rs_binary,
        &[
            "--issuer",
            &issuer.url,
            "--listen",
            &port.to_string(),
            "--cache-ttl",
            "3600",
        ],
    );
    let http = reqwest::Client::new();
    let pair = password_grant(&http, &issuer.url, APP, "alice").await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        api(&http, &rs.url, &access).await,
        200,
        "introspected, now cached"
    );
    revoke(&http, &issuer.url, APP, &access).await;
    refused_within(&http, &rs.url, &access, Duration::from_secs(1)).await;
}

/// The demo server, pushing its events to `webhook`; with `--jwt` if `jwt`.
fn issuer_pushing_to(server: &std::path::Path, webhook: &str, jwt: bool) -> Process {
    let mut args = vec![
        "--plain",
        "--listen",
        "127.0.0.1:0",
        "--event-webhook",
        webhook,
    ];
    if jwt {
        args.push("--jwt");
    }
    Process::start(server, &args)
}

/// A loopback address nobody listens on (yet).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The demo server with `--jwt` and a signing key the test knows, to sign with the real key
/// what the server must still refuse.
async fn issuer_with_known_key() -> (Process, SigningKey) {
    let key_file = tempdir().join("signing.pem");
    let key = SigningKey::generate();
    std::fs::write(&key_file, key.to_pkcs8_pem()).unwrap();
    let (server, _) = binaries().await;
    let issuer = Process::start(
        &server,
        &[
            "--plain",
            "--listen",
            "127.0.0.1:0",
            "--jwt",
            "--signing-key",
            key_file.to_str().unwrap(),
        ],
    );
    (issuer, key)
}

/// A SET signed by `key`, with these claims.
fn forge(key: &SigningKey, claims: &Value) -> String {
    key.sign("secevent+jwt", claims).unwrap()
}

#[tokio::test]
async fn forged_events_are_refused_and_change_nothing() {
    let (issuer, key) = issuer_with_known_key().await;
    let (_, rs_binary) = binaries().await;
    let rs = Process::start(
        &rs_binary,
        &["--issuer", &issuer.url, "--listen", "127.0.0.1:0"],
    );
    let http = reqwest::Client::new();
    let pair = password_grant(&http, &issuer.url, APP, "alice").await;
    let jwt = pair["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api(&http, &rs.url, &jwt).await, 200);
    let claims: Value = keys(&http, &issuer.url)
        .await
        .verify(&jwt, "at+jwt")
        .unwrap();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event = |iss: &str, jti: &str| {
        json!({
            "iss": iss, "jti": jti, "iat": now,
            "events": {GRANT_REVOKED: {
                "subject": {"format": "complex",
                            "application": {"format": "opaque", "id": APP.0},
                            "user": {"format": "opaque", "id": "alice"},
                            "grant": {"format": "opaque", "id": claims["grant_id"]},
                            "jti": {"format": "opaque", "id": claims["jti"]}},
                "event_timestamp": now as f64,
                "initiating_entity": "admin"}}
        })
    };
    let push = |body: String, content_type: &'static str| {
        let (http, url) = (http.clone(), format!("{}/events", rs.url));
        async move {
            http.post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let genuine_claims = event(&issuer.url, "set-genuine");
    let unsigned = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "secevent+jwt", "kid": key.kid()}).to_string()),
        b64.encode(genuine_claims.to_string())
    );
    let other_key = SigningKey::generate();
    let signed = forge(&key, &genuine_claims);
    let mut tampered: Vec<&str> = signed.split('.').collect();
    let swapped_payload = b64.encode(event(&issuer.url, "set-tampered").to_string());
    tampered[1] = &swapped_payload;
    let forgeries = [
        (unsigned, "application/secevent+jwt", "alg none"),
        (
            forge(&other_key, &genuine_claims),
            "application/secevent+jwt",
            "another key",
        ),
        (
            tampered.join("."),
            "application/secevent+jwt",
            "a tampered payload",
        ),
        (
            forge(&key, &event("http://evil.example", "set-evil")),
            "application/secevent+jwt",
            "another issuer",
        ),
        (
            forge(
                &key,
                &json!({"iss": issuer.url, "jti": "x", "iat": now, "events": {}}),
            ),
            "application/secevent+jwt",
            "no event",
        ),
        (
            "not a jwt".to_owned(),
            "application/secevent+jwt",
            "garbage",
        ),
        (signed.clone(), "application/json", "the wrong media type"),
    ];
    for (body, content_type, what) in forgeries {
        let reply = push(body, content_type).await;
        assert_eq!(reply.status(), 400, "{what} is refused");
        let error: Value = reply.json().await.unwrap();
        assert!(error["err"].as_str().is_some(), "{what}: an RFC 8935 error");
        assert_eq!(
            api(&http, &rs.url, &jwt).await,
            200,
            "{what} changed nothing"
        );
    }
    // The genuine SET (signed with the issuer's key) is taken once; its replay is refused.
    assert_eq!(
        push(signed.clone(), "application/secevent+jwt")
            .await
            .status(),
        202
    );
    assert_eq!(
        api(&http, &rs.url, &jwt).await,
        401,
        "a genuine event applies at once"
    );
    assert_eq!(
        push(signed, "application/secevent+jwt").await.status(),
        400,
        "replayed"
    );
}

#[tokio::test]
async fn forged_jwts_are_unknown_tokens_and_nothing_is_stored() {
    let (issuer, key) = issuer_with_known_key().await;
    let base = issuer.url.clone();
    let http = reqwest::Client::new();
    let pair = password_grant(&http, &base, APP, "alice").await;
    let jwt = pair["access_token"].as_str().unwrap().to_owned();
    let claims: Value = keys(&http, &base).await.verify(&jwt, "at+jwt").unwrap();

    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        c
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(with(&|c| c["sub"] = json!("bob")).to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "at+jwt", "kid": key.kid()}).to_string()),
        parts[1]
    );
    let other = SigningKey::generate();
    let forgeries = [
        (tampered, "a tampered payload"),
        (none, "alg none"),
        (
            other.sign("at+jwt", &claims).unwrap(),
            "a key not in the key set",
        ),
        (
            key.sign(
                "at+jwt",
                &with(&|c| c["iss"] = json!("http://evil.example")),
            )
            .unwrap(),
            "another issuer",
        ),
        (
            key.sign("at+jwt", &with(&|c| c["exp"] = json!(1_000_000_000u64)))
                .unwrap(),
            "expired",
        ),
        (key.sign("JWT", &claims).unwrap(), "not typ at+jwt"),
    ];
    let rs = ("resource-server", "rs-secret");
    for (forged, what) in &forgeries {
        let (status, _) = revoke(&http, &base, APP, forged).await;
        assert_eq!(status, 200, "{what}: revoking an unknown token answers 200");
        let introspected: Value = http
            .post(format!("{base}/oauth2/introspect"))
            .basic_auth(rs.0, Some(rs.1))
            .form(&[("token", forged.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(introspected, json!({"active": false}), "{what}: inactive");
        let userinfo = http
            .get(format!("{base}/userinfo"))
            .bearer_auth(forged)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(userinfo, 401, "{what}: refused at /userinfo");
    }
    // The genuine token lives, and no revocation event was emitted.
    let userinfo: Value = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], "alice");
    let polled: Value = poll(&http, &base, rs, json!({"returnImmediately": true}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        polled["sets"].as_object().unwrap().is_empty(),
        "nothing was revoked"
    );

    // Introspection of the genuine JWT gives its jti; its revocation is by its own client only.
    let introspected: Value = http
        .post(format!("{base}/oauth2/introspect"))
        .basic_auth(rs.0, Some(rs.1))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["jti"], claims["jti"]);
    assert_eq!(
        revoke(&http, &base, OTHER, &jwt).await.0,
        400,
        "another client's JWT: invalid_grant"
    );
    assert_eq!(revoke(&http, &base, APP, &jwt).await.0, 200);
    let status = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "revoked at once");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tor-events-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_jwt_is_checked_locally_with_no_introspection_call_and_refused_once_revoked() {
    use tower_oauth_revoke::{
        guard::{remote::RemoteGuard, TokenCheck},
        set::{
            receive::{PushReceiver, SetVerifier},
            replica::{RemoteTokenCheck, Revocations},
        },
    };
    let port = free_port();
    let (server, _) = binaries().await;
    let webhook = format!("http://{port}/events");
    let issuer = issuer_pushing_to(&server, &webhook, true);
    let introspection = RemoteGuard::builder(&issuer.url, "resource-server", "rs-secret")
        .build()
        .unwrap();
    let verifier = SetVerifier::new(&issuer.url, None).unwrap();
    let guard = RemoteTokenCheck::new(
        verifier.clone(),
        Revocations::default(),
        introspection.clone(),
    );
    let receiver = PushReceiver::new(verifier, {
        let guard = guard.clone();
        move |event| guard.apply(event)
    });
    let listener = tokio::net::TcpListener::bind(port).await.unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route_service("/events", receiver)).await
    });

    let http = reqwest::Client::new();
    let pair = password_grant(&http, &issuer.url, APP, "alice").await;
    let jwt = pair["access_token"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let record = guard.check(&jwt).await.unwrap().expect("a genuine JWT");
        assert_eq!(record.owner.as_deref(), Some("alice"));
    }
    revoke(&http, &issuer.url, APP, &jwt).await;
    let start = Instant::now();
    while guard.check(&jwt).await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "refused within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        introspection.introspection_calls(),
        0,
        "JWTs never cost an introspection call"
    );
}
