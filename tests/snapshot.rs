//! A resource server started after a revocation knows it: the demo server on PostgreSQL
//! (`--postgres`, `--jwt`) serves its durable history at `/oauth2/events/snapshot`, and the
//! resource server example with `--sync` applies it before it admits any JWT. Still so after
//! the demo server was killed (SIGKILL) and started again on the same database.
//!
//! The database is a fresh one on the PostgreSQL of `DATABASE_URL`'s server (default
//! 127.0.0.1:5432), dropped at the end; the test is skipped under `SKIP_POSTGRES_TESTS` when
//! none answers.

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{example_binary, skip_or_fail, Database, Process};
use serde_json::Value;
use tower_oauth_revoke::jose::SigningKey;

/// The demo server on `database` at `listen`, issuing JWTs signed with the key in `key`.
fn demo(binary: &Path, listen: &str, database: &str, key: &Path) -> Process {
    let key = key.to_str().unwrap();
    let args = [
        "--plain",
        "--listen",
        listen,
        "--postgres",
        database,
        "--jwt",
        "--signing-key",
        key,
    ];
    Process::start(binary, &args)
}

/// The resource server example for `issuer`, with these flags.
fn resource_server(binary: &Path, issuer: &str, flags: &[&str]) -> Process {
    let mut args = vec!["--issuer", issuer, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    Process::start(binary, &args)
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

async fn jwt(http: &reqwest::Client, issuer: &str) -> String {
    let reply: Value = http
        .post(format!("{issuer}/oauth2/token"))
        .basic_auth("other-client", Some("other-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reply["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("eyJ"), "--jwt issues JWTs");
    token
}

/// Waits until `rs` admits `live`, checking meanwhile that it never admits `revoked`
/// (503 until the snapshot is applied); then `revoked` must be refused.
async fn synced(http: &reqwest::Client, rs: &str, live: &str, revoked: &str) {
    let start = Instant::now();
    loop {
        let revoked_status = api(http, rs, revoked).await;
        assert_ne!(
            revoked_status, 200,
            "a revoked JWT admitted before the sync"
        );
        match api(http, rs, live).await {
            200 => break,
            503 => {}
            other => panic!("a live JWT answered {other} before the sync"),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api(http, rs, revoked).await, 401, "the revoked JWT");
    assert_eq!(api(http, rs, live).await, 200, "the live JWT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_server_started_after_a_revocation_refuses_the_token() {
    let Some(database) = Database::create("tor_snapshot") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    let (server, rs_binary) = tokio::task::spawn_blocking(|| {
        (example_binary("server"), example_binary("resource_server"))
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("tor-snapshot-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("signing.pem");
    std::fs::write(&key, SigningKey::generate().to_pkcs8_pem()).unwrap();
    // A fixed address and key: the restarted server is the same issuer, and its JWTs the
    // same tokens.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut issuer = demo(&server, &listen, &database.url(), &key);
    let url = issuer.url.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The snapshot is for event readers only.
    let anonymous = http
        .get(format!("{url}/oauth2/events/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let live = jwt(&http, &url).await;
    let revoked = jwt(&http, &url).await;
    let reply = http
        .post(format!("{url}/oauth2/revoke"))
        .basic_auth("other-client", Some("other-secret"))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let snapshot: Value = http
        .get(format!("{url}/oauth2/events/snapshot"))
        .basic_auth("resource-server", Some("rs-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snapshot["sets"].as_array().unwrap().len(), 1, "{snapshot}");

    // Without the snapshot, a resource server started now admits the revoked JWT: the
    // problem this solves.
    let unsynced = resource_server(&rs_binary, &url, &[]);
    assert_eq!(api(&http, &unsynced.url, &revoked).await, 200);
    drop(unsynced);

    let rs = resource_server(&rs_binary, &url, &["--sync", "--poll"]);
    synced(&http, &rs.url, &live, &revoked).await;
    drop(rs);

    // SIGKILL, and the same server again on the same database.
    issuer.child.kill().expect("SIGKILL");
    issuer.child.wait().unwrap();
    // A resource server started while the issuer is down: 503 for JWTs, then in sync once
    // the issuer is back (the snapshot is tried again).
    let waiting = resource_server(&rs_binary, &url, &["--sync", "--poll"]);
    assert_eq!(api(&http, &waiting.url, &live).await, 503);
    assert_eq!(api(&http, &waiting.url, &revoked).await, 503);
    let issuer = demo(&server, &listen, &database.url(), &key);
    assert_eq!(issuer.url, url);
    let rs = resource_server(&rs_binary, &url, &["--sync", "--poll"]);
    synced(&http, &rs.url, &live, &revoked).await;
    synced(&http, &waiting.url, &live, &revoked).await;
    drop((rs, waiting, issuer));
    let _ = std::fs::remove_dir_all(&dir);
}
