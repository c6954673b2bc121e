//! Shared end-to-end helpers: a real hyper server on loopback and a small HTTP client.
#![allow(dead_code, unreachable_pub)]

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, process::Command};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};
use tower_oauth_revoke::{
    client_auth::RemoteAddr,
    store::{
        GrantId, IssueError, OwnerGrants, RevocationOutcome, RevocationRequest, StoreError,
        TokenHash, TokenRecord, TokenStore,
    },
};

/// A test that cannot run here (no Redis, no browser) fails, unless the user opted out of
/// that kind of test with the environment variable `opt_out` set to `1`; then it says so and
/// returns, and the caller skips.
///
/// `SKIP_REDIS_TESTS=1`, `SKIP_POSTGRES_TESTS=1` and `SKIP_BROWSER_TESTS=1` are the opt-outs
/// (see the README).
pub fn skip_or_fail(opt_out: &str, why: &str) {
    if std::env::var(opt_out).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED ({opt_out}=1): {why}");
        return;
    }
    panic!(
        "{why}. `.ci/redis.sh` starts a Redis, `.ci/postgres.sh` a PostgreSQL and \
         `.ci/browser.sh` installs Chromium; \
         to run the other tests without this one, set {opt_out}=1"
    );
}

/// Serves `service` on a free 127.0.0.1 port until the test ends; each request carries
/// the peer's [`RemoteAddr`].
pub async fn serve<S, B>(service: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(RemoteAddr(peer));
                    service.clone().oneshot(req)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(req: Request<Full<Bytes>>) -> Reply {
    let resp = client().request(req).await.expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A form POST to `http://addr{path}` with optional extra headers.
pub async fn post_form(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = Request::post(format!("http://{addr}{path}"));
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

pub fn basic(id: &str, secret: &str) -> String {
    tower_oauth_revoke::client_auth::encode_basic(id, secret)
        .to_str()
        .unwrap()
        .to_owned()
}

/// A store whose backend is down: every call fails, as a lost Redis connection does.
#[derive(Clone, Debug, Default)]
pub struct DownStore {
    events: tower_oauth_revoke::events::Events,
}

fn down() -> StoreError {
    StoreError::new("connection refused")
}

impl TokenStore for DownStore {
    fn events(&self) -> &tower_oauth_revoke::events::Events {
        &self.events
    }
    async fn issue(&self, _: TokenHash, _: TokenRecord) -> Result<(), IssueError> {
        Err(IssueError::Store(down()))
    }
    async fn inspect(&self, _: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Err(down())
    }
    async fn revoke(
        &self,
        _: &TokenHash,
        _: RevocationRequest<'_>,
    ) -> Result<RevocationOutcome, StoreError> {
        Err(down())
    }
    async fn revoke_grant(&self, _: GrantId) -> Result<(), StoreError> {
        Err(down())
    }
    async fn revoke_client_for_owner(
        &self,
        _: &str,
        _: &str,
        _: tower_oauth_revoke::events::Initiator,
    ) -> Result<usize, StoreError> {
        Err(down())
    }
    async fn revoke_subject(
        &self,
        _: &str,
        _: tower_oauth_revoke::events::Initiator,
    ) -> Result<usize, StoreError> {
        Err(down())
    }
    async fn revoke_client(
        &self,
        _: &str,
        _: tower_oauth_revoke::events::Initiator,
    ) -> Result<usize, StoreError> {
        Err(down())
    }
    async fn clients_of_owner(&self, _: &str) -> Result<Vec<OwnerGrants>, StoreError> {
        Err(down())
    }
}

/// Builds the demo server with the profile of this test binary (a no-op after `cargo test`,
/// which builds the examples) and returns its path.
pub fn demo_server_binary() -> PathBuf {
    example_binary("server")
}

/// Builds the example `name` with the profile of this test binary and returns its path.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--package", "tower-oauth-revoke-demo"])
        .args(["--example", name, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}

/// A process started by a test, killed when the test ends, and the URL it printed first
/// (`listening on URL`).
pub struct Process {
    pub child: std::process::Child,
    pub url: String,
}

impl Process {
    /// Starts `binary` with `args` and waits for its `listening on URL` line.
    pub fn start(binary: &std::path::Path, args: &[&str]) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the process starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        // Keep draining stdout so that the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server process whose stderr (its log) is collected, started from `command` (stdio is
/// set here); its first line on stdout is `listening on http://ADDR`.
pub struct LoggedServer {
    child: Option<std::process::Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Option<std::thread::JoinHandle<String>>,
}

impl LoggedServer {
    /// Starts the server and waits for its `listening on` line.
    pub async fn start(mut command: Command) -> Self {
        use std::io::{BufRead as _, Read as _};
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        // Reads stdout to its end, so that the server never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
            for _ in lines {}
        });
        let first = rx.await.unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .parse()
            .unwrap();
        Self {
            child: Some(child),
            addr,
            log: Some(log),
        }
    }

    /// Stops the server with SIGTERM; its exit status and everything it logged.
    pub async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A time `secs` seconds from now.
pub fn in_secs(secs: u64) -> std::time::SystemTime {
    std::time::SystemTime::now() + std::time::Duration::from_secs(secs)
}

/// The revocation endpoint over `store`, with one confidential client, `app` (secret
/// `app-secret`).
pub fn endpoint<S: TokenStore>(
    store: S,
) -> tower_oauth_revoke::RevocationEndpoint<tower_oauth_revoke::client_auth::MemoryClientRegistry, S>
{
    tower_oauth_revoke::RevocationEndpoint::builder(
        tower_oauth_revoke::client_auth::MemoryClientRegistry::new([
            tower_oauth_revoke::client_auth::Client::confidential("app", "app-secret"),
        ]),
        store,
    )
    .build()
    .unwrap()
}

/// `POST /oauth2/revoke` of `token` as `app`, to the server at `addr`.
pub async fn revoke_over_http(addr: SocketAddr, token: &str) -> Reply {
    post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &basic("app", "app-secret"))],
        &format!("token={token}"),
    )
    .await
}

/// A token named `name`, unique to this run.
pub fn random_token(name: &str) -> String {
    format!("{name}-{:032x}", rand::random::<u128>())
}

/// The PostgreSQL server of `DATABASE_URL` (default
/// `postgres://postgres@127.0.0.1:5432/test`), without its database name.
pub fn postgres_server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match url.rsplit_once('/') {
        Some((server, _)) if server.contains("//") && !server.ends_with('/') => server.to_owned(),
        _ => url,
    }
}

/// `psql -c SQL` against the `postgres` database of that server; whether it succeeded.
fn psql(sql: &str) -> bool {
    Command::new("psql")
        .arg(format!("{}/postgres", postgres_server_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A PostgreSQL database of a test's own, `<prefix>_<random>`, dropped when the test ends.
pub struct Database {
    name: String,
}

impl Database {
    /// Creates it; `None` when no PostgreSQL answers.
    pub fn create(prefix: &str) -> Option<Self> {
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        psql(&format!("CREATE DATABASE {name}")).then_some(Self { name })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", postgres_server_url(), self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// A revocation while the store fails: 503 `temporarily_unavailable` with `Retry-After`,
/// within two seconds.
pub async fn assert_unavailable(addr: SocketAddr, token: &str) {
    let started = std::time::Instant::now();
    let reply = revoke_over_http(addr, token).await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.error(), "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    assert!(
        took < std::time::Duration::from_secs(2),
        "answered after {took:?}"
    );
    eprintln!("503 temporarily_unavailable after {took:?}");
}

/// Issues a token as `app` until the store answers again, within `limit`.
pub async fn issue_once_back(store: &impl TokenStore, token: &str, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let record = TokenRecord::new(
            tower_oauth_revoke::store::TokenKind::AccessToken,
            "app",
            GrantId::random(),
            in_secs(600),
        );
        match store.issue(TokenHash::of(token), record).await {
            Ok(()) => return,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "the store did not recover: {e}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A push receiver (RFC 8935) on a free 127.0.0.1 port: each SET POSTed to it is answered
/// 202 and its claims sent on (read, not verified: what the test observes, never state).
/// `POST http://ADDR/events`.
pub async fn set_receiver() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let (addr, rx, _gate) = gated_set_receiver(true).await;
    (addr, rx)
}

/// A [`set_receiver`] that answers 503 (take nothing, try again) while its gate is shut:
/// `gate.send(true)` opens it. [`Gate::refused`] counts the attempts it turned away.
pub async fn gated_set_receiver(
    open: bool,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    Gate,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (gate, opened) = tokio::sync::watch::channel(open);
    let (count, refused) = tokio::sync::watch::channel(0usize);
    let service = tower::service_fn(move |req: Request<Incoming>| {
        let (tx, opened, count) = (tx.clone(), opened.clone(), count.clone());
        async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let claims = body
                .ok()
                .and_then(|jws| set_claims(&String::from_utf8_lossy(&jws)));
            let status = match claims {
                Some(_) if !*opened.borrow() => {
                    count.send_modify(|n| *n += 1);
                    StatusCode::SERVICE_UNAVAILABLE
                }
                Some(claims) => {
                    let _ = tx.send(claims);
                    StatusCode::ACCEPTED
                }
                None => StatusCode::BAD_REQUEST,
            };
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });
    (serve(service).await, rx, Gate { gate, refused })
}

/// The gate of a [`gated_set_receiver`].
pub struct Gate {
    /// `true`: SETs are taken.
    pub gate: tokio::sync::watch::Sender<bool>,
    /// How many SETs were turned away while it was shut.
    pub refused: tokio::sync::watch::Receiver<usize>,
}

/// The claims of a compact JWS, unverified.
pub fn set_claims(jws: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = jws.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
