//! Hostile inputs over real HTTP: huge, endless and malformed requests, brute force.
//!
//! Every hostile request gets a clear 4xx (never a 5xx, never a dropped connection from a
//! panic), and the server keeps serving honest clients meanwhile. Raw requests go over a
//! plain TCP socket so that they can carry what no well-behaved client would send.

mod common;

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client as HttpClient},
    rt::TokioExecutor,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
};
use tower::Layer;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_oauth_revoke::{
    client_auth::{
        AuthFailureLimiter, Client, ClientRegistry, MemoryClientRegistry, RegistryError,
    },
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

const ID: &str = "app";
const SECRET: &str = "app-secret";
const PATH: &str = "/oauth2/revoke";

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([Client::confidential(ID, SECRET), Client::public("spa")])
}

/// The endpoint behind a request-body deadline the host chooses, served on loopback.
async fn server_with<R: ClientRegistry>(
    registry: R,
    deadline: Duration,
    limiter: Option<AuthFailureLimiter>,
) -> (SocketAddr, MemoryStore) {
    let store = MemoryStore::new();
    let mut builder = RevocationEndpoint::builder(registry, store.clone());
    if let Some(limiter) = limiter {
        builder = builder.limit_failures(limiter);
    }
    let endpoint = builder.build().unwrap();
    let service = RequestBodyDeadlineLayer::new(deadline).layer(endpoint);
    (common::serve(service).await, store)
}

async fn server(deadline: Duration) -> (SocketAddr, MemoryStore) {
    server_with(registry(), deadline, None).await
}

async fn issue(store: &MemoryStore, token: &str) {
    let expires = SystemTime::now() + Duration::from_secs(600);
    let record = TokenRecord::new(TokenKind::AccessToken, ID, GrantId::random(), expires);
    store.issue(TokenHash::of(token), record).await.unwrap();
}

/// An honest revocation: 200, and the token is no longer active.
async fn honest_revocation(addr: SocketAddr, store: &MemoryStore) {
    let token = format!("honest-{}", rand::random::<u64>());
    issue(store, &token).await;
    let reply = common::post_form(
        addr,
        PATH,
        &[("authorization", &common::basic(ID, SECRET))],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(store
        .inspect(&TokenHash::of(&token))
        .await
        .unwrap()
        .is_none());
}

#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    body: String,
}

/// Sends raw bytes and reads the answer until the server closes (requests carry
/// `Connection: close`). `None` when the server closed without answering. The writer runs
/// apart, so that an early answer to a large request is read while it is still being sent.
async fn raw(addr: SocketAddr, request: Vec<u8>) -> Option<RawReply> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut buf = Vec::new();
    let result = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut buf))
        .await
        .expect("the server neither answered nor closed in 20 s");
    drop(writer.await);
    if buf.is_empty() {
        let _ = result;
        return None;
    }
    Some(parse_reply(&buf))
}

fn parse_reply(buf: &[u8]) -> RawReply {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
    RawReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A raw form POST to the endpoint: `headers` are complete lines without CRLF.
fn post(headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    req.extend_from_slice(
        format!("POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n").as_bytes(),
    );
    for h in headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    req
}

const FORM: &[u8] = b"content-type: application/x-www-form-urlencoded";

fn basic_line() -> Vec<u8> {
    format!("authorization: {}", common::basic(ID, SECRET)).into_bytes()
}

/// A clear client error: 4xx; from the endpoint (not hyper's own parser) an OAuth JSON
/// error with `no-store`.
fn assert_clear_4xx(reply: &RawReply, what: &str) {
    assert!(
        (400..500).contains(&reply.status),
        "{what}: expected a 4xx, got {}: {}",
        reply.status,
        reply.body
    );
    if reply
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/json")
    {
        let json: serde_json::Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", reply.body));
        assert!(json["error"].is_string(), "{what}: {}", reply.body);
        assert!(
            reply
                .head
                .to_ascii_lowercase()
                .contains("cache-control: no-store"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_one_mib_body_is_413() {
    let (addr, store) = server(Duration::from_secs(10)).await;
    let body = vec![b'a'; 1024 * 1024];

    // Declared: refused from the Content-Length alone.
    let reply = raw(addr, post(&[FORM, &basic_line()], &body))
        .await
        .expect("an answer");
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_clear_4xx(&reply, "declared 1 MiB");

    // Chunked, no length declared: refused once 8 KiB have been read.
    let mut req = format!(
        "POST {PATH} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n"
    )
    .into_bytes();
    req.extend_from_slice(FORM);
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&basic_line());
    req.extend_from_slice(b"\r\n\r\n");
    for chunk in body.chunks(16 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let reply = raw(addr, req).await.expect("an answer");
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_clear_4xx(&reply, "chunked 1 MiB");

    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_off_while_others_are_served() {
    // Long enough that the honest request is served well within it on a loaded machine.
    let deadline = Duration::from_secs(3);
    let (addr, store) = server(deadline).await;

    // Announces 100 bytes, sends 10, then waits forever.
    let mut pending = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let mut head = post(&[FORM, &basic_line()], b"");
    head.truncate(head.len() - b"content-length: 0\r\n\r\n".len());
    head.extend_from_slice(b"content-length: 100\r\n\r\ntoken=abcd");
    pending.write_all(&head).await.unwrap();

    // Meanwhile an honest client is served, and the stalled request is still unanswered.
    honest_revocation(addr, &store).await;
    let mut probe = [0u8; 1];
    assert!(
        matches!(pending.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the stalled request was answered before its deadline"
    );
    assert!(
        start.elapsed() < deadline,
        "the honest request took longer than the deadline"
    );

    // Then the stalled one ends: 408, or the connection is closed.
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), pending.read_to_end(&mut buf))
        .await
        .expect("the stalled request was never ended");
    let waited = start.elapsed();
    assert!(
        waited >= deadline,
        "ended after {waited:?}, before the deadline"
    );
    if !buf.is_empty() {
        let reply = parse_reply(&buf);
        assert_eq!(reply.status, 408, "{reply:?}");
        assert_clear_4xx(&reply, "never-ending body");
    }
    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_at_the_deadline() {
    // One byte at a time, each within any idle timeout: only a total deadline stops it.
    let deadline = Duration::from_millis(800);
    let (addr, store) = server(deadline).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let mut head = post(&[FORM, &basic_line()], b"");
    head.truncate(head.len() - b"content-length: 0\r\n\r\n".len());
    head.extend_from_slice(b"content-length: 1000\r\n\r\n");
    slow.write_all(&head).await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        tokio::select! {
            read = slow.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            // The attacker's pace, not a wait for the server.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if slow.write_all(b"a").await.is_err() {
                    break;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the trickle was never cut off"
        );
    }
    assert!(start.elapsed() >= deadline);
    if !buf.is_empty() {
        assert_eq!(parse_reply(&buf).status, 408);
    }
    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn a_hundred_kib_of_headers_is_refused_clearly() {
    let (addr, store) = server(Duration::from_secs(10)).await;

    // In one Authorization header.
    let huge = format!("authorization: Basic {}", "QUFB".repeat(25 * 1024));
    let reply = raw(addr, post(&[FORM, huge.as_bytes()], b"token=x"))
        .await
        .expect("an answer");
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_clear_4xx(&reply, "100 KiB Authorization");
    assert!(reply
        .head
        .to_ascii_lowercase()
        .contains("www-authenticate: basic"));

    // Spread over 40 headers of 2.5 KiB each: the endpoint ignores them and still
    // requires client authentication.
    let lines: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("x-junk-{i}: {}", "j".repeat(2560)).into_bytes())
        .collect();
    let mut headers: Vec<&[u8]> = vec![FORM];
    headers.extend(lines.iter().map(Vec::as_slice));
    let reply = raw(addr, post(&headers, b"token=x"))
        .await
        .expect("an answer");
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_clear_4xx(&reply, "40 large headers");

    // Over 400 small headers: hyper's own limit answers 431 (or closes).
    let lines: Vec<Vec<u8>> = (0..400)
        .map(|i| format!("x-junk-{i}: {}", "j".repeat(240)).into_bytes())
        .collect();
    let mut headers: Vec<&[u8]> = vec![FORM];
    headers.extend(lines.iter().map(Vec::as_slice));
    if let Some(reply) = raw(addr, post(&headers, b"token=x")).await {
        assert_clear_4xx(&reply, "400 headers");
    }

    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn non_utf8_bytes_in_every_field_are_4xx() {
    let (addr, store) = server(Duration::from_secs(10)).await;
    issue(&store, "live-token").await;
    let basic = basic_line();
    let basic_of =
        |raw: &[u8]| format!("authorization: Basic {}", STANDARD.encode(raw)).into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("method", b"P\xffST /oauth2/revoke HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ("path", b"POST /oauth2/revoke\xff HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ("query", b"POST /oauth2/revoke?token=\xff HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ("header name", post(&[FORM, &basic, b"x-\xff: 1"], b"token=live-token")),
        ("authorization value", post(&[FORM, b"authorization: \xff\xfe"], b"token=live-token")),
        ("basic credentials", post(&[FORM, b"authorization: Basic \xff\xfe=="], b"token=live-token")),
        ("decoded basic id", post(&[FORM, &basic_of(b"\xff\xfe:app-secret")], b"token=live-token")),
        ("decoded basic secret", post(&[FORM, &basic_of(b"app:\xff\xfe")], b"token=live-token")),
        ("content type", post(&[b"content-type: application/x-www-form-urlencoded\xff", &basic], b"token=live-token")),
        ("token value", post(&[FORM, &basic], b"token=\xff\xfe")),
        ("parameter name", post(&[FORM, &basic], b"\xff=1&token=live-token")),
        ("escaped token", post(&[FORM, &basic], b"token=%C3%28")),
        ("escaped client id", post(&[FORM], b"client_id=%FF&client_secret=x&token=live-token")),
        ("client secret", post(&[FORM], b"client_id=app&client_secret=\xff&token=live-token")),
        ("hint", post(&[FORM, &basic], b"token=x&token_type_hint=\xff")),
    ];
    for (what, request) in cases {
        match raw(addr, request).await {
            Some(reply) => assert_clear_4xx(&reply, what),
            None => panic!("{what}: the connection was closed without an answer"),
        }
    }
    assert!(
        store
            .inspect(&TokenHash::of("live-token"))
            .await
            .unwrap()
            .is_some(),
        "no malformed request revoked anything"
    );
    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn malformed_basic_credentials_are_401() {
    let (addr, store) = server(Duration::from_secs(10)).await;
    issue(&store, "live-token").await;
    let b64 = |s: &str| STANDARD.encode(s);
    let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("app:app-secret!");
    assert!(!unpadded.ends_with('='));
    let cases = [
        ("no colon", format!("Basic {}", b64("app"))),
        ("empty id", format!("Basic {}", b64(":app-secret"))),
        ("empty secret", format!("Basic {}", b64("app:"))),
        ("empty credentials", format!("Basic {}", b64(":"))),
        ("base64 without padding", format!("Basic {unpadded}")),
        ("not base64", "Basic ****".to_owned()),
        ("scheme alone", "Basic".to_owned()),
        (
            "another scheme",
            format!("Digest {}", b64("app:app-secret")),
        ),
        ("bad escape", format!("Basic {}", b64("app:%zz"))),
    ];
    for (what, value) in cases {
        let reply =
            common::post_form(addr, PATH, &[("authorization", &value)], "token=live-token").await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.error(), "invalid_client", "{what}");
        assert!(reply.headers.contains_key("www-authenticate"), "{what}");
        assert_eq!(reply.headers["cache-control"], "no-store", "{what}");
    }
    assert!(store
        .inspect(&TokenHash::of("live-token"))
        .await
        .unwrap()
        .is_some());
    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn many_parameters_are_400() {
    let (addr, store) = server(Duration::from_secs(10)).await;
    let auth = common::basic(ID, SECRET);
    let body: String = (0..65).map(|i| format!("p{i}=1&")).collect::<String>() + "token=x";
    let reply = common::post_form(addr, PATH, &[("authorization", &auth)], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error(), "invalid_request");

    // Thousands of empty-valued parameters within the size limit.
    let body = "a&".repeat(4000);
    let reply = common::post_form(addr, PATH, &[("authorization", &auth)], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // The same parameter thousands of times.
    let body = "token=x&".repeat(1000);
    let reply = common::post_form(addr, PATH, &[("authorization", &auth)], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("repeated"), "{}", reply.body);

    honest_revocation(addr, &store).await;
}

#[tokio::test]
async fn error_descriptions_keep_to_rfc6749_characters() {
    // Error descriptions never reflect raw request bytes: whatever a repeated or malformed
    // parameter is called, the description stays within %x20-21 / %x23-5B / %x5D-7E.
    let (addr, _store) = server(Duration::from_secs(10)).await;
    let auth = common::basic(ID, SECRET);
    for body in [
        "%C3%A9t%C3%A9=1&%C3%A9t%C3%A9=2",
        "a%22b%5C=1&a%22b%5C=2",
        "%3Cscript%3E=1&%3Cscript%3E=2",
        "x%E2%80%A8=1&x%E2%80%A8=2",
        "%C3%A9t%C3%A9=%FF",
    ] {
        let reply = common::post_form(addr, PATH, &[("authorization", &auth)], body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let description = reply.json()["error_description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            description
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
            "{body}: {description:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Brute force on client authentication.

/// An HTTP client whose connections leave from `source` (any 127.0.0.0/8 address reaches
/// the loopback server on Linux).
fn client_from(source: Ipv4Addr) -> HttpClient<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(IpAddr::V4(source)));
    HttpClient::builder(TokioExecutor::new()).build(connector)
}

async fn revoke_from(
    client: &HttpClient<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    id: &str,
    secret: &str,
    token: &str,
) -> common::Reply {
    let request = Request::post(format!("http://{addr}{PATH}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", common::basic(id, secret))
        .body(Full::new(Bytes::from(format!("token={token}"))))
        .unwrap();
    let response = client.request(request).await.expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    common::Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OWNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[tokio::test]
async fn brute_force_is_stopped_and_cannot_lock_out_the_client() {
    let limiter = AuthFailureLimiter::with_capacity(5, Duration::from_secs(60), 64);
    let (addr, store) =
        server_with(registry(), Duration::from_secs(10), Some(limiter.clone())).await;
    issue(&store, "owner-token").await;
    let attacker = client_from(ATTACKER);
    let owner = client_from(OWNER);

    for guess in 0..5 {
        let reply = revoke_from(
            &attacker,
            addr,
            ID,
            &format!("guess-{guess}"),
            "owner-token",
        )
        .await;
        assert_eq!(reply.status, 401, "guess {guess}: {}", reply.body);
    }
    // The budget is spent: 429 with Retry-After, even for the right secret.
    for secret in ["guess-5", SECRET] {
        let reply = revoke_from(&attacker, addr, ID, secret, "owner-token").await;
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            reply.body
        );
        let retry: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(reply.headers["cache-control"], "no-store");
    }
    assert!(store
        .inspect(&TokenHash::of("owner-token"))
        .await
        .unwrap()
        .is_some());

    // The stranger has not locked the client out: from its own address it is served, and
    // its own mistakes are 401, not 429.
    let reply = revoke_from(&owner, addr, ID, "typo", "owner-token").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let reply = revoke_from(&owner, addr, ID, SECRET, "owner-token").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(store
        .inspect(&TokenHash::of("owner-token"))
        .await
        .unwrap()
        .is_none());

    // Another client id from the attacker's address has its own budget.
    let reply = revoke_from(&attacker, addr, "other", "x", "t").await;
    assert_eq!(reply.status, 401, "{}", reply.body);

    // Memory is bounded: a flood of made-up client ids from the attacker's address keeps
    // the table within its capacity, and does not reset the attacker's spent budget.
    for i in 0..300 {
        let reply = revoke_from(&attacker, addr, &format!("made-up-{i}"), "x", "t").await;
        assert_eq!(reply.status, 401);
        assert!(limiter.tracked() <= limiter.capacity());
    }
    let reply = revoke_from(&attacker, addr, ID, SECRET, "t").await;
    assert_eq!(reply.status, 429, "the flood reset the attacker's budget");
}

/// A registry that holds every look-up until released, and counts them.
#[derive(Clone)]
struct SlowRegistry {
    inner: MemoryClientRegistry,
    gate: Arc<Semaphore>,
    asked: Arc<AtomicUsize>,
}

impl ClientRegistry for SlowRegistry {
    fn find_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Client>, RegistryError>> + Send {
        let this = self.clone();
        let client_id = client_id.to_owned();
        async move {
            this.asked.fetch_add(1, Ordering::SeqCst);
            let _permit = this.gate.acquire().await.expect("gate open");
            this.inner.find_client(&client_id).await
        }
    }

    fn origin_registered(
        &self,
        origin: &http::HeaderValue,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send {
        self.inner.origin_registered(origin)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_overspend_the_budget() {
    let registry = SlowRegistry {
        inner: registry(),
        gate: Arc::new(Semaphore::new(0)),
        asked: Arc::new(AtomicUsize::new(0)),
    };
    let limiter = AuthFailureLimiter::new(5, Duration::from_secs(60));
    let (addr, _store) =
        server_with(registry.clone(), Duration::from_secs(10), Some(limiter)).await;
    let attacker = client_from(ATTACKER);

    // 40 guesses at once while the registry is slow: only 5 may reach it.
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..40 {
        let attacker = attacker.clone();
        guesses.spawn(async move {
            revoke_from(&attacker, addr, ID, &format!("guess-{i}"), "t")
                .await
                .status
        });
    }
    let mut limited = 0;
    while limited < 35 {
        let status = tokio::time::timeout(Duration::from_secs(20), guesses.join_next())
            .await
            .expect("the guesses beyond the budget were not refused at once")
            .unwrap()
            .unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        limited += 1;
    }
    assert!(registry.asked.load(Ordering::SeqCst) <= 5);
    registry.gate.add_permits(1000);
    while let Some(status) = guesses.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        registry.asked.load(Ordering::SeqCst),
        5,
        "no guess beyond the budget was checked"
    );
}

/// An axum app served with `into_make_service_with_connect_info::<SocketAddr>()`, as the
/// README mounts it, and nothing else: the limiter reads axum's `ConnectInfo`, so the
/// attacker's failures lock only the attacker's address.
#[tokio::test]
async fn axum_connect_info_is_the_limiters_address() {
    let store = MemoryStore::new();
    issue(&store, "owner-token").await;
    let revoke = RevocationEndpoint::builder(registry(), store.clone())
        .limit_failures(AuthFailureLimiter::new(3, Duration::from_secs(60)))
        .build()
        .unwrap();
    let app = axum::Router::new().route_service(PATH, revoke);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let attacker = client_from(ATTACKER);
    for guess in 0..3 {
        let reply = revoke_from(&attacker, addr, ID, &format!("guess-{guess}"), "t").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let reply = revoke_from(&attacker, addr, ID, SECRET, "owner-token").await;
    assert_eq!(reply.status, 429, "{}", reply.body);

    // Without the address, the owner would share the attacker's spent budget: 429.
    let owner = client_from(OWNER);
    let reply = revoke_from(&owner, addr, ID, SECRET, "owner-token").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(store
        .inspect(&TokenHash::of("owner-token"))
        .await
        .unwrap()
        .is_none());
}

/// A POST from `client` (one source address) with these headers and form body.
async fn post_from(
    client: &HttpClient<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    headers: &[(&str, &str)],
    body: &str,
) -> common::Reply {
    let mut request = Request::post(format!("http://{addr}{PATH}"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    common::Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// What a page on another site can make its visitors' browsers send (cross-origin posts,
/// a public client's id with a made-up secret, a confidential client's id alone, as a JSONP
/// `<script>` would) spends no failure budget: the client, the SPA and the user behind that
/// address are still served. Real wrong secrets are still limited.
#[tokio::test]
async fn a_hostile_page_cannot_lock_out_its_visitors_address() {
    let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
    let (addr, store) = server_with(registry(), Duration::from_secs(10), Some(limiter)).await;
    let visitor = client_from(OWNER);
    let evil = [("origin", "https://evil.example")];
    for i in 0..10 {
        // Cross-site, with a wrong secret: refused before the credentials are looked at.
        let auth = common::basic(ID, &format!("guess-{i}"));
        let reply = post_from(
            &visitor,
            addr,
            &[evil[0], ("authorization", &auth)],
            "token=t",
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_request");
        // The public client with a secret it does not have.
        let reply = post_from(&visitor, addr, &[], "client_id=spa&client_secret=x&token=t").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        // The confidential client named alone: nothing to guess.
        let reply = post_from(&visitor, addr, &[], &format!("client_id={ID}&token=t")).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    // Still served at that address.
    issue(&store, "visitor-token").await;
    let reply = revoke_from(&visitor, addr, ID, SECRET, "visitor-token").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = post_from(&visitor, addr, &[], "client_id=spa&token=t").await;
    assert_eq!(reply.status, 200, "the SPA: {}", reply.body);

    // Real guesses are still counted: three wrong secrets, then 429.
    for i in 0..3 {
        let reply = revoke_from(&visitor, addr, ID, &format!("wrong-{i}"), "t").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let reply = revoke_from(&visitor, addr, ID, SECRET, "t").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
}

/// RFC 9110 §5.3: `Authorization`, `Content-Type` and `Origin` are not lists. Two of any is
/// 400 `invalid_request`, and nothing is revoked.
#[tokio::test]
async fn repeated_singleton_headers_are_refused() {
    let (addr, store) = server(Duration::from_secs(10)).await;
    issue(&store, "kept").await;
    let basic = common::basic(ID, SECRET);
    let other = common::basic("spa", "");
    let origin = "https://app.example";
    for (what, extra) in [
        (
            "authorization",
            vec![
                ("authorization", basic.as_str()),
                ("authorization", other.as_str()),
            ],
        ),
        (
            "content-type",
            vec![
                ("authorization", basic.as_str()),
                ("content-type", "text/plain"),
            ],
        ),
        (
            "origin",
            vec![
                ("authorization", basic.as_str()),
                ("origin", origin),
                ("origin", origin),
            ],
        ),
    ] {
        let client = client_from(OWNER);
        let reply = post_from(&client, addr, &extra, "token=kept").await;
        assert_eq!(reply.status, 400, "two {what} headers: {}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_request", "{what}");
        assert!(
            reply.body.contains(what) && reply.body.contains("repeated"),
            "the answer names {what}: {}",
            reply.body
        );
    }
    assert!(store
        .inspect(&TokenHash::of("kept"))
        .await
        .unwrap()
        .is_some());
}

/// The crate's own body deadline (`deadline::BodyDeadlineLayer`, which the demo mounts): a
/// body that never ends is cut off at the deadline with 408 or a closed connection, while
/// honest requests, whose bodies are there at once, are served.
#[tokio::test]
async fn the_crates_body_deadline_cuts_off_a_body_that_never_ends() {
    use tower_oauth_revoke::deadline::BodyDeadlineLayer;
    let deadline = Duration::from_secs(2);
    let store = MemoryStore::new();
    let endpoint = RevocationEndpoint::builder(registry(), store.clone())
        .build()
        .unwrap();
    let addr = common::serve(BodyDeadlineLayer::new(deadline).layer(endpoint)).await;

    let mut pending = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let mut head = post(&[FORM, &basic_line()], b"");
    head.truncate(head.len() - b"content-length: 0\r\n\r\n".len());
    head.extend_from_slice(b"content-length: 100\r\n\r\ntoken=abcd");
    pending.write_all(&head).await.unwrap();
    honest_revocation(addr, &store).await;

    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), pending.read_to_end(&mut buf))
        .await
        .expect("the stalled request was never ended");
    assert!(start.elapsed() >= deadline, "ended before the deadline");
    if !buf.is_empty() {
        let reply = parse_reply(&buf);
        assert_eq!(reply.status, 408, "{reply:?}");
        assert_clear_4xx(&reply, "never-ending body");
    }
    honest_revocation(addr, &store).await;
}
