//! The PostgreSQL store against a real PostgreSQL: the conformance suite, two nodes sharing
//! one database, a store recreated over the same data, a database that goes away and comes
//! back, one that stalls, and the round trips of each operation.
//!
//! The shared server is `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`,
//! see `.ci/postgres.sh`); every test uses a schema of its own and drops it at the end. The
//! outage and stall tests start a private instance with `.ci/pg-instance.sh` on another loopback
//! port. Without a PostgreSQL the tests fail, unless `SKIP_POSTGRES_TESTS=1` says to skip
//! them.
//!
//! Round trips are counted by a proxy between the store and the server (`proxy.rs`).
#![cfg(feature = "postgres")]

mod common;

use common::{
    assert_unavailable, endpoint, in_secs, issue_once_back, random_token, revoke_over_http,
};
#[path = "postgres_store/proxy.rs"]
mod proxy;

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use http::StatusCode;
use tower_oauth_revoke::{
    events::{Initiator, Revoked},
    store::{
        conformance, GrantId, IssueError, MemoryStore, PostgresStore, RevocationOutcome,
        RevocationRequest, TokenHash, TokenKind, TokenRecord, TokenStore,
    },
};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Fails, unless `SKIP_POSTGRES_TESTS=1`: then says why the test does nothing.
fn unavailable(why: String) {
    common::skip_or_fail("SKIP_POSTGRES_TESTS", &why);
}

fn unique_schema(test: &str) -> String {
    format!("tor_test_{test}_{:016x}", rand::random::<u64>())
}

/// A store on the shared database in a fresh schema, or `None` (after a notice) without one.
async fn shared_store(test: &str) -> Option<(PostgresStore, Schema)> {
    let schema = Schema(unique_schema(test));
    match PostgresStore::builder()
        .schema(&schema.0)
        .connect(&database_url())
        .await
    {
        Ok(store) => Some((store, schema)),
        Err(e) => {
            unavailable(format!("no PostgreSQL at {}: {e}", database_url()));
            None
        }
    }
}

/// A test's schema on the shared database, dropped with everything in it at the end.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        // psql rather than an async client: Drop runs outside the test's runtime too.
        let _ = Command::new("psql")
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .args(["-X", "-q", "-d", &database_url(), "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0))
            .status();
    }
}

async fn issue(store: &impl TokenStore, token: &str, kind: TokenKind, grant: GrantId) {
    store
        .issue(
            TokenHash::of(token),
            TokenRecord::new(kind, "app", grant, in_secs(600)).with_owner("alice"),
        )
        .await
        .unwrap();
}

async fn active(store: &impl TokenStore, token: &str) -> bool {
    store
        .inspect(&TokenHash::of(token))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let Some((store, _schema)) = shared_store("conformance").await else {
        return;
    };
    conformance::run(|| store.clone()).await;
}

#[tokio::test]
async fn keeps_the_replay_cache_contract() {
    let Some((store, _schema)) = shared_store("replay").await else {
        return;
    };
    conformance::replay_cache(&store).await;
}

#[tokio::test]
async fn keeps_the_event_log_contract() {
    let Some((store, _schema)) = shared_store("event_log").await else {
        return;
    };
    conformance::event_log(store).await;
}

/// `DATABASE_URL` with its host and port replaced by `addr`.
fn url_through(addr: SocketAddr) -> String {
    let url = database_url();
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is a URL");
    let (user, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    let db = rest.split_once('/').map_or("test", |(_, db)| db);
    format!("{scheme}://{user}@{addr}/{db}")
}

fn server_addr() -> SocketAddr {
    let url = database_url();
    let rest = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    host.trim_start_matches("postgres://")
        .parse()
        .expect("DATABASE_URL names its server as IP:PORT")
}

#[tokio::test]
async fn each_primitive_is_one_round_trip() {
    // Only to find out whether there is a server at all.
    let Some((_, schema)) = shared_store("round_trips").await else {
        return;
    };
    let proxy = proxy::Proxy::start(server_addr()).await;
    let store = PostgresStore::builder()
        .schema(&schema.0)
        .pool_size(1)
        .connect(&url_through(proxy.addr))
        .await
        .unwrap();
    let record =
        |kind| TokenRecord::new(kind, "app", GrantId::random(), in_secs(600)).with_owner("carol");
    // Each operation twice: the first prepares its statement on the pooled connection.
    for round in 0..2 {
        let mut measured = Vec::new();
        let mut count = |what: &'static str, before: usize, want: usize| {
            measured.push((what, proxy.round_trips() - before, want));
        };
        let (access, refresh) = (random_token("a"), random_token("r"));
        let before = proxy.round_trips();
        store
            .issue(TokenHash::of(&access), record(TokenKind::AccessToken))
            .await
            .unwrap();
        count("issue", before, 1);
        store
            .issue(TokenHash::of(&refresh), record(TokenKind::RefreshToken))
            .await
            .unwrap();
        let before = proxy.round_trips();
        assert!(active(&store, &access).await);
        count("inspect", before, 1);
        let before = proxy.round_trips();
        store
            .revoke(&TokenHash::of(&access), RevocationRequest::new("app"))
            .await
            .unwrap();
        count("revoke", before, 1);
        let before = proxy.round_trips();
        store.revoke_grant(GrantId::random()).await.unwrap();
        count("revoke_grant", before, 1);
        let before = proxy.round_trips();
        store
            .revoke_client_for_owner("carol", "app", Initiator::System)
            .await
            .unwrap();
        count("revoke_client_for_owner", before, 1);
        let before = proxy.round_trips();
        store.clients_of_owner("carol").await.unwrap();
        count("clients_of_owner (one page)", before, 1);
        let before = proxy.round_trips();
        store
            .revoke_subject("carol", Initiator::System)
            .await
            .unwrap();
        count("revoke_subject (the cut-off, then one page)", before, 2);
        eprintln!("round {round} (0: statements prepared): {measured:?}");
        if round == 1 {
            for (what, got, want) in measured {
                assert_eq!(got, want, "{what}: {got} round trips");
            }
        }
    }
}

#[tokio::test]
async fn a_token_revoked_on_one_node_is_refused_by_the_other_and_relayed() {
    let Some((node_a, schema)) = shared_store("two_nodes").await else {
        return;
    };
    let node_b = PostgresStore::builder()
        .schema(&schema.0)
        .connect(&database_url())
        .await
        .unwrap();
    let (mut heard_a, mut heard_b) = (node_a.events().subscribe(), node_b.events().subscribe());
    let addr_a = common::serve(endpoint(node_a.clone())).await;

    let grant = GrantId::random();
    let (refresh, access) = (random_token("refresh"), random_token("access"));
    issue(&node_a, &refresh, TokenKind::RefreshToken, grant).await;
    issue(&node_a, &access, TokenKind::AccessToken, grant).await;
    for store in [&node_a, &node_b] {
        assert!(active(store, &refresh).await && active(store, &access).await);
    }

    let reply = revoke_over_http(addr_a, &refresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for (name, store) in [("node a", &node_a), ("node b", &node_b)] {
        for token in [&refresh, &access] {
            assert!(
                !active(store, token).await,
                "revoked on node a, still active on {name}"
            );
        }
    }
    let late = node_b
        .issue(
            TokenHash::of(&random_token("late")),
            TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(600)),
        )
        .await;
    assert!(matches!(late, Err(IssueError::GrantRevoked)));

    // Node a announced its own change; node b heard it through the outbox.
    let own = heard_a.try_recv().expect("node a's own event").unwrap();
    assert!(!own.relayed);
    let relayed = tokio::time::timeout(Duration::from_secs(5), heard_b.recv())
        .await
        .expect("node b hears node a's revocation within 5 s")
        .unwrap()
        .unwrap();
    assert!(relayed.relayed);
    assert_eq!(relayed.revoked, Revoked::Grant { grant });
    assert_eq!(relayed.client_id.as_deref(), Some("app"));
    assert_eq!(relayed.subject.as_deref(), Some("alice"));
    assert_eq!(relayed.initiator, Initiator::Client("app".into()));

    // And the other way round, a bulk revocation: node a relays node b's.
    issue(
        &node_b,
        &random_token("bulk"),
        TokenKind::AccessToken,
        GrantId::random(),
    )
    .await;
    assert_eq!(
        node_b
            .revoke_subject("alice", Initiator::System)
            .await
            .unwrap(),
        1
    );
    let relayed = tokio::time::timeout(Duration::from_secs(5), heard_a.recv())
        .await
        .expect("node a hears node b's bulk revocation within 5 s")
        .unwrap()
        .unwrap();
    assert!(relayed.relayed);
    assert_eq!(relayed.revoked, Revoked::Subject);
    assert_eq!(relayed.subject.as_deref(), Some("alice"));
    // Node b does not hear its own change twice.
    let own = heard_b.recv().await.unwrap().unwrap();
    assert!(!own.relayed && own.revoked == Revoked::Subject);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(heard_b.try_recv().is_none(), "an own event relayed back");
}

#[tokio::test]
async fn a_recreated_store_keeps_every_revocation() {
    let Some((store, schema)) = shared_store("restart").await else {
        return;
    };
    let mut live = Vec::new();
    let mut revoked = Vec::new();
    for i in 0..20 {
        let grant = GrantId::random();
        let (refresh, access) = (random_token("refresh"), random_token("access"));
        issue(&store, &refresh, TokenKind::RefreshToken, grant).await;
        issue(&store, &access, TokenKind::AccessToken, grant).await;
        match i % 4 {
            // The access token alone.
            0 => {
                let outcome = store
                    .revoke(&TokenHash::of(&access), RevocationRequest::new("app"))
                    .await
                    .unwrap();
                assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
                revoked.push(access);
                live.push(refresh);
            }
            // The whole grant, by its refresh token.
            1 => {
                store
                    .revoke(&TokenHash::of(&refresh), RevocationRequest::new("app"))
                    .await
                    .unwrap();
                revoked.extend([refresh, access]);
            }
            2 => {
                store.revoke_grant(grant).await.unwrap();
                revoked.extend([refresh, access]);
            }
            _ => live.extend([refresh, access]),
        }
    }
    // A bulk revocation of another owner's grants.
    let bob = random_token("bob");
    store
        .issue(
            TokenHash::of(&bob),
            TokenRecord::new(
                TokenKind::AccessToken,
                "app",
                GrantId::random(),
                in_secs(600),
            )
            .with_owner("bob"),
        )
        .await
        .unwrap();
    store
        .revoke_subject("bob", Initiator::System)
        .await
        .unwrap();
    revoked.push(bob);
    drop(store);

    let again = PostgresStore::builder()
        .schema(&schema.0)
        .connect(&database_url())
        .await
        .unwrap();
    for token in &revoked {
        assert!(!active(&again, token).await, "revoked before, active after");
        assert_eq!(
            again
                .revoke(&TokenHash::of(token), RevocationRequest::new("app"))
                .await
                .unwrap(),
            RevocationOutcome::NotActive
        );
    }
    for token in &live {
        assert!(active(&again, token).await, "live before, inactive after");
    }
}

/// A PostgreSQL instance of the test's own (`.ci/pg-instance.sh`) on a free loopback port,
/// stopped on drop.
struct OwnPostgres {
    port: u16,
    dir: PathBuf,
}

impl OwnPostgres {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/pg-instance.sh")
    }

    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("tor-pg-{:016x}", rand::random::<u64>()));
        let server = OwnPostgres { port, dir };
        if !server.start_again() {
            return None;
        }
        Some(server)
    }

    fn start_again(&self) -> bool {
        let run = Command::new("bash")
            .arg(Self::script())
            .args(["start", &self.port.to_string()])
            .arg(&self.dir)
            .output();
        match run {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                unavailable(format!(
                    "cannot start a PostgreSQL instance: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
                false
            }
            Err(e) => {
                unavailable(format!("cannot run pg-instance.sh: {e}"));
                false
            }
        }
    }

    fn stop(&self) {
        let status = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    /// Sends `signal` to the server and every process of it (its backends), as a machine
    /// that stalls.
    fn signal(&self, signal: &str) {
        let pid = std::fs::read_to_string(self.dir.join("postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        let children = Command::new("pgrep").args(["-P", &pid]).output().unwrap();
        let mut pids = vec![pid];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
        let status = Command::new("kill")
            .arg(signal)
            .args(&pids)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgres_down_answers_503_then_recovers() {
    let Some(server) = OwnPostgres::start() else {
        return;
    };
    let store = PostgresStore::builder()
        .operation_timeout(Duration::from_millis(1500))
        .connect(&server.url())
        .await
        .unwrap();
    let addr = common::serve(endpoint(store.clone())).await;

    let before = random_token("before");
    issue_once_back(&store, &before, Duration::ZERO).await;
    assert_eq!(revoke_over_http(addr, &before).await.status, StatusCode::OK);
    assert!(!active(&store, &before).await);

    // A second node, whose listener loses its connection with the server.
    let watcher = PostgresStore::connect(&server.url()).await.unwrap();
    let mut heard = watcher.events().subscribe();

    let during = random_token("during");
    issue_once_back(&store, &during, Duration::ZERO).await;
    server.stop();
    for _ in 0..3 {
        assert_unavailable(addr, &during).await;
    }
    let started = Instant::now();
    assert!(store.inspect(&TokenHash::of(&during)).await.is_err());
    assert!(store
        .revoke_subject("alice", Initiator::System)
        .await
        .is_err());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "failed after {:?}",
        started.elapsed()
    );

    // The same data directory: what was committed before is still there.
    assert!(server.start_again());
    let after = random_token("after");
    issue_once_back(&store, &after, Duration::from_secs(10)).await;
    assert!(active(&store, &during).await);
    assert!(
        !active(&store, &before).await,
        "a revocation lost in the outage"
    );
    assert_eq!(revoke_over_http(addr, &after).await.status, StatusCode::OK);
    assert!(!active(&store, &after).await);
    // The second node listens again and hears it.
    let event = tokio::time::timeout(Duration::from_secs(10), heard.recv())
        .await
        .expect("the other node hears the revocation after the outage")
        .unwrap()
        .unwrap();
    assert!(event.relayed);
    assert!(
        matches!(event.revoked, Revoked::Token { token, .. } if token == TokenHash::of(&after)),
        "{event:?}"
    );
    assert!(watcher
        .inspect(&TokenHash::of(&after))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn stalled_postgres_answers_503_instead_of_hanging() {
    let Some(server) = OwnPostgres::start() else {
        return;
    };
    let store = PostgresStore::builder()
        .operation_timeout(Duration::from_millis(1000))
        .connect(&server.url())
        .await
        .unwrap();
    let addr = common::serve(endpoint(store.clone())).await;
    let token = random_token("stalled");
    issue_once_back(&store, &token, Duration::ZERO).await;

    server.signal("-STOP");
    let resumed = ResumeOnDrop(&server);
    for _ in 0..2 {
        assert_unavailable(addr, &token).await;
    }
    let started = Instant::now();
    assert!(store.inspect(&TokenHash::of(&token)).await.is_err());
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "failed after {took:?}");
    drop(resumed);

    // Once the server runs again, so does the store; the token was never revoked.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.inspect(&TokenHash::of(&token)).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(active(&store, &token).await);
    assert_eq!(revoke_over_http(addr, &token).await.status, StatusCode::OK);
    assert!(!active(&store, &token).await);
}

/// Resumes a stopped server even when the test fails, so that it can be stopped.
struct ResumeOnDrop<'a>(&'a OwnPostgres);

impl Drop for ResumeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.signal("-CONT");
    }
}

/// Prints the time of one revocation (an access token alone, with its outbox row) through
/// PostgresStore and MemoryStore, one at a time and from 8 tasks at once.
#[tokio::test]
async fn revocation_throughput_against_memory() {
    let Some((postgres, _schema)) = shared_store("throughput").await else {
        return;
    };
    const N: usize = 2000;
    async fn time<S: TokenStore>(store: &S, tasks: usize) -> Duration {
        let tokens: Vec<TokenHash> = (0..N).map(|_| TokenHash::of(&random_token("t"))).collect();
        for token in &tokens {
            let record = TokenRecord::new(
                TokenKind::AccessToken,
                "app",
                GrantId::random(),
                in_secs(600),
            );
            store.issue(*token, record).await.unwrap();
        }
        let started = Instant::now();
        let chunks: Vec<Vec<TokenHash>> = tokens.chunks(N / tasks).map(<[_]>::to_vec).collect();
        let runs = chunks.into_iter().map(|chunk| {
            let store = store.clone();
            tokio::spawn(async move {
                for token in chunk {
                    let outcome = store
                        .revoke(&token, RevocationRequest::new("app"))
                        .await
                        .unwrap();
                    assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
                }
            })
        });
        for run in runs.collect::<Vec<_>>() {
            run.await.unwrap();
        }
        started.elapsed()
    }
    let memory = MemoryStore::new();
    for tasks in [1, 8] {
        let pg = time(&postgres, tasks).await;
        let mem = time(&memory, tasks).await;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / N as f64;
        eprintln!(
            "revoke, {tasks} task(s), {N} tokens: PostgresStore {:.1} µs each ({:.0}/s), \
             MemoryStore {:.2} µs each ({:.0}/s)",
            per(pg),
            N as f64 / pg.as_secs_f64(),
            per(mem),
            N as f64 / mem.as_secs_f64(),
        );
    }
}

/// `SELECT count(*) FROM <schema>.<table>` by psql.
fn count_rows(schema: &Schema, table: &str) -> u64 {
    let out = Command::new("psql")
        .args(["-X", "-At", "-d", &database_url(), "-c"])
        .arg(format!("SELECT count(*) FROM {}.{table}", schema.0))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn expired_rows_and_old_outbox_rows_are_purged_in_batches() {
    let schema = Schema(unique_schema("purge"));
    let store = match PostgresStore::builder()
        .schema(&schema.0)
        .log_retention(Duration::ZERO)
        .purge_interval(Duration::ZERO)
        .connect(&database_url())
        .await
    {
        Ok(store) => store,
        Err(e) => return unavailable(format!("no PostgreSQL at {}: {e}", database_url())),
    };
    // 1,200 tokens (each its own grant), each expiring three seconds after it is issued:
    // more than a batch of tokens and one of grants; ten that live, three of which are
    // revoked (three outbox rows).
    let mut last_expiry = SystemTime::now();
    for i in 0..1_200 {
        last_expiry = SystemTime::now() + Duration::from_secs(3);
        let grant = GrantId::random();
        let record = TokenRecord::new(TokenKind::AccessToken, "app", grant, last_expiry);
        store
            .issue(TokenHash::of(&format!("short-{i}")), record)
            .await
            .unwrap();
    }
    let live: Vec<String> = (0..10).map(|i| random_token(&format!("live{i}"))).collect();
    for token in &live {
        issue(&store, token, TokenKind::RefreshToken, GrantId::random()).await;
    }
    for token in &live[..3] {
        let outcome = store
            .revoke(&TokenHash::of(token), RevocationRequest::new("app"))
            .await
            .unwrap();
        assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
    }
    assert_eq!(count_rows(&schema, "tokens"), 1_210);
    // Expiry is the only signal there is to wait for.
    let wait = last_expiry
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(100)).await;

    let purged = store.purge_expired().await.unwrap();
    assert!(
        purged.rows >= 2_400,
        "every expired token and grant is deleted: {purged:?}"
    );
    assert_eq!(purged.log_rows, 3, "the outbox rows past the retention");
    assert_eq!(count_rows(&schema, "tokens"), 10, "the live tokens stay");
    assert_eq!(count_rows(&schema, "revocation_log"), 0);
    for (i, token) in live.iter().enumerate() {
        assert_eq!(active(&store, token).await, i >= 3, "live token {i}");
    }
    // Nothing left to purge.
    assert_eq!(store.purge_expired().await.unwrap().rows, 0);
}

#[tokio::test]
async fn the_history_is_every_revocation_still_in_force_oldest_first() {
    let Some((store, schema)) = shared_store("history").await else {
        return;
    };
    assert!(store.history().await.unwrap().is_empty(), "a new store");
    // An access JWT alone, a grant by its refresh token, a subject's cut-off.
    let (access, refresh) = (random_token("access"), random_token("refresh"));
    let (g1, g2) = (GrantId::random(), GrantId::random());
    issue(&store, &access, TokenKind::AccessToken, g1).await;
    issue(&store, &refresh, TokenKind::RefreshToken, g2).await;
    let mut request = RevocationRequest::new("app");
    request.jti = Some("jwt-1");
    let outcome = store.revoke(&TokenHash::of(&access), request).await;
    assert!(matches!(outcome, Ok(RevocationOutcome::Revoked { .. })));
    let outcome = store
        .revoke(&TokenHash::of(&refresh), RevocationRequest::new("app"))
        .await;
    assert!(matches!(outcome, Ok(RevocationOutcome::Revoked { .. })));
    // A token that expires in a second, revoked: out of the history once expired.
    let brief = random_token("brief");
    store
        .issue(
            TokenHash::of(&brief),
            TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), in_secs(1)),
        )
        .await
        .unwrap();
    let outcome = store
        .revoke(&TokenHash::of(&brief), RevocationRequest::new("app"))
        .await;
    assert!(matches!(outcome, Ok(RevocationOutcome::Revoked { .. })));
    store
        .revoke_subject("alice", Initiator::System)
        .await
        .unwrap();
    assert_eq!(
        store.history().await.unwrap().len(),
        4,
        "all four, before the expiry"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // Read by a store recreated over the same data: the history is durable.
    let again = PostgresStore::builder()
        .schema(&schema.0)
        .connect(&database_url())
        .await
        .unwrap();
    for history in [
        store.history().await.unwrap(),
        again.history().await.unwrap(),
    ] {
        let kinds: Vec<_> = history.iter().map(|e| e.revoked.clone()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(
            matches!(kinds[0], Revoked::Token { grant, .. } if grant == g1),
            "oldest first"
        );
        assert_eq!(history[0].jti.as_deref(), Some("jwt-1"));
        assert_eq!(kinds[1], Revoked::Grant { grant: g2 });
        assert_eq!(kinds[2], Revoked::Subject);
        assert_eq!(history[2].subject.as_deref(), Some("alice"));
        assert_eq!(history[2].expires_at, None, "a cut-off has no end");
        assert!(history.iter().all(|e| e.relayed), "never pushed again");
    }
}
