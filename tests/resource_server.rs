//! The resource server example in its own process, against the demo server in another:
//! a token works at `/api`, is refused once revoked at the issuer and the cache's TTL has
//! passed, and an issuer that cannot be reached gives 503, never 200.

mod common;

use std::time::{Duration, Instant};

use common::{example_binary, Process};

async fn api(client: &reqwest::Client, rs: &str, token: &str) -> u16 {
    client
        .get(format!("{rs}/api"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_token_revoked_at_the_issuer_is_refused_at_the_resource_server() {
    let (server, rs_binary) = tokio::task::spawn_blocking(|| {
        (example_binary("server"), example_binary("resource_server"))
    })
    .await
    .unwrap();
    let issuer = Process::start(&server, &["--plain", "--listen", "127.0.0.1:0"]);
    let rs = Process::start(
        &rs_binary,
        &[
            "--issuer",
            &issuer.url,
            "--listen",
            "127.0.0.1:0",
            "--cache-ttl",
            "1",
        ],
    );
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/token", issuer.url))
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
    let access = token["access_token"].as_str().unwrap();
    let reply: serde_json::Value = http
        .get(format!("{}/api", rs.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"sub": "alice", "client_id": "other-client"})
    );
    assert_eq!(api(&http, &rs.url, "unknown").await, 401);

    let revoked = http
        .post(format!("{}/oauth2/revoke", issuer.url))
        .basic_auth("other-client", Some("other-secret"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // Refused once the one-second cache TTL has passed: polled, bounded.
    let start = Instant::now();
    while api(&http, &rs.url, access).await != 401 {
        assert!(start.elapsed() < Duration::from_secs(10), "still admitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("refused {:?} after revocation", start.elapsed());
}

#[tokio::test]
async fn an_unreachable_issuer_is_503() {
    let rs_binary = tokio::task::spawn_blocking(|| example_binary("resource_server"))
        .await
        .unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rs = Process::start(
        &rs_binary,
        &[
            "--issuer",
            &format!("http://{closed}"),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let http = reqwest::Client::new();
    let reply = http
        .get(format!("{}/api", rs.url))
        .bearer_auth("some-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 503);
    assert!(reply.headers().contains_key("retry-after"));
    let reply = http.get(format!("{}/api", rs.url)).send().await.unwrap();
    assert_eq!(reply.status(), 401, "no token: 401, whatever the issuer");
}
