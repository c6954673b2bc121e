//! The Redis store against a real Redis: the conformance suite, the key layout, two nodes
//! sharing one Redis, and a Redis that goes away and comes back.
//!
//! The shared server is `REDIS_URL` (default `redis://127.0.0.1:6379`); every test uses its
//! own key prefix and deletes its keys at the end. Without a Redis (or, for the outage
//! tests, a `redis-server` binary) the tests fail, unless `SKIP_REDIS_TESTS=1` says to skip
//! them.
#![cfg(feature = "redis")]

mod common;

use common::{
    assert_unavailable, endpoint, in_secs, issue_once_back, random_token, revoke_over_http,
};

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use http::StatusCode;
use redis::AsyncCommands;
use tower_oauth_revoke::{
    events::{Initiator, Revoked},
    store::{
        conformance, GrantId, IssueError, RedisStore, RevocationOutcome, RevocationRequest,
        TokenHash, TokenKind, TokenRecord, TokenStore,
    },
};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Fails, unless `SKIP_REDIS_TESTS=1`: then says why the test does nothing.
fn unavailable(why: String) {
    common::skip_or_fail("SKIP_REDIS_TESTS", &why);
}

fn unique_prefix(test: &str) -> String {
    format!("tor-test-{test}-{:016x}", rand::random::<u64>())
}

/// A store on the shared Redis under a fresh prefix, or `None` (after a notice) without one.
async fn shared_store(test: &str) -> Option<(RedisStore, String)> {
    let prefix = unique_prefix(test);
    match RedisStore::builder()
        .key_prefix(&prefix)
        .connect(redis_url())
        .await
    {
        Ok(store) => Some((store, prefix)),
        Err(e) => {
            unavailable(format!("no Redis at {}: {e}", redis_url()));
            None
        }
    }
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key of a store.
async fn keys_of(url: &str, prefix: &str) -> Vec<String> {
    let mut conn = raw_connection(url).await;
    let mut keys: Vec<String> = Vec::new();
    let mut iter: redis::AsyncIter<'_, String> =
        conn.scan_match(format!("{{{prefix}}}:*")).await.unwrap();
    while let Some(key) = iter.next_item().await {
        keys.push(key.unwrap());
    }
    keys
}

async fn delete_keys(url: &str, prefix: &str) {
    let keys = keys_of(url, prefix).await;
    if !keys.is_empty() {
        let mut conn = raw_connection(url).await;
        let _: () = conn.del(keys).await.unwrap();
    }
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let Some((store, prefix)) = shared_store("conformance").await else {
        return;
    };
    conformance::run(|| store.clone()).await;
    delete_keys(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn keeps_the_replay_cache_contract() {
    let Some((store, prefix)) = shared_store("replay").await else {
        return;
    };
    conformance::replay_cache(&store).await;
    delete_keys(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn keeps_the_event_log_contract() {
    let Some((store, prefix)) = shared_store("event-log").await else {
        return;
    };
    conformance::event_log(store).await;
    let url = redis_url();
    let mut conn = raw_connection(&url).await;
    for key in keys_of(&url, &prefix).await {
        let ttl: i64 = conn.pttl(&key).await.unwrap();
        assert!(ttl > 0, "{key} expires");
    }
    delete_keys(&url, &prefix).await;
}

/// Stream ids map to positions in order even where a millisecond's sequence numbers run
/// out (the next entry takes the next millisecond), and an entry written without an id
/// (by an earlier version) gets a stable one, which acknowledges it.
#[tokio::test]
async fn log_positions_stay_in_order_past_a_full_millisecond_and_every_entry_has_an_id() {
    use tower_oauth_revoke::store::log::EventLog;
    let Some((store, prefix)) = shared_store("log-ids").await else {
        return;
    };
    let url = redis_url();
    let mut conn = raw_connection(&url).await;
    let log = format!("{{{prefix}}}:log");
    let start = store.cursor("poll check").await.unwrap();
    // The last sequence number of a millisecond a minute ahead, without an `i`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let ms = now.as_millis() as u64 + 60_000;
    let old = GrantId::random();
    let payload = format!(
        r#"{{"k":"g","g":"{old}","c":"app","o":"","b":"s","x":"{}","at":"{}","n":"elsewhere"}}"#,
        now.as_secs() + 600,
        now.as_micros()
    );
    let _: String = conn
        .xadd(&log, format!("{ms}-1048575"), &[("e", payload)])
        .await
        .unwrap();
    let grant = GrantId::random();
    store
        .issue(
            TokenHash::of(&random_token("log-ids")),
            TokenRecord::new(TokenKind::RefreshToken, "app", grant, in_secs(600)),
        )
        .await
        .unwrap();
    store.revoke_grant(grant).await.unwrap();

    let entries = store.read_after(start, 10).await.unwrap();
    let grants: Vec<_> = entries.iter().map(|e| e.event.revoked.grant()).collect();
    assert_eq!(grants, [Some(old), Some(grant)], "both entries, in order");
    assert_eq!(entries[0].position, ms << 20 | 1_048_575);
    assert_eq!(
        entries[1].position,
        (ms + 1) << 20,
        "the next millisecond once a millisecond's sequence numbers ran out"
    );
    let last: redis::streams::StreamRangeReply =
        conn.xrevrange_count(&log, "+", "-", 1).await.unwrap();
    assert_eq!(last.ids[0].id, format!("{}-0", ms + 1));
    assert_eq!(
        store.read_after(start, 10).await.unwrap(),
        entries,
        "the same ids on every read, an old entry's too"
    );
    assert_ne!(entries[0].id, entries[1].id);
    store
        .acknowledge("poll check", &[(entries[0].position, entries[0].id)])
        .await
        .unwrap();
    assert_eq!(
        store.cursor("poll check").await.unwrap(),
        entries[0].position,
        "an old entry's id acknowledges it"
    );
    delete_keys(&url, &prefix).await;
}

#[tokio::test]
async fn keys_hold_only_hashes_and_all_expire() {
    let Some((store, prefix)) = shared_store("layout").await else {
        return;
    };
    let url = redis_url();
    let (refresh, access, other) = (
        random_token("refresh"),
        random_token("access"),
        random_token("other"),
    );
    let (grant, other_grant) = (GrantId::random(), GrantId::random());
    let owner = format!("alice-{:x}@example.com", rand::random::<u32>());
    store
        .issue(
            TokenHash::of(&refresh),
            TokenRecord::new(TokenKind::RefreshToken, "app", grant, in_secs(3000))
                .with_owner(owner.as_str()),
        )
        .await
        .unwrap();
    store
        .issue(
            TokenHash::of(&access),
            TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(600))
                .with_owner(owner.as_str()),
        )
        .await
        .unwrap();
    store
        .issue(
            TokenHash::of(&other),
            TokenRecord::new(TokenKind::AccessToken, "app", other_grant, in_secs(300)),
        )
        .await
        .unwrap();
    let never_seen = GrantId::random();
    store.revoke_grant(never_seen).await.unwrap();

    let tag = format!("{{{prefix}}}:");
    let mut expected = vec![
        (format!("{tag}t:{}", TokenHash::of(&refresh).to_hex()), 3000),
        (format!("{tag}t:{}", TokenHash::of(&access).to_hex()), 600),
        (format!("{tag}t:{}", TokenHash::of(&other).to_hex()), 300),
        (format!("{tag}g:{grant}"), 3000),
        (format!("{tag}g:{other_grant}"), 300),
        (format!("{tag}g:{never_seen}"), 3600),
    ];
    let mut keys = keys_of(&url, &prefix).await;
    let owner_keys: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{tag}o:")))
        .cloned()
        .collect();
    assert_eq!(owner_keys.len(), 1, "one owner index: {keys:?}");
    expected.push((owner_keys[0].clone(), 3000));
    let client_keys: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{tag}ci:")))
        .cloned()
        .collect();
    assert_eq!(client_keys.len(), 1, "one client index: {keys:?}");
    expected.push((client_keys[0].clone(), 3000));
    keys.sort();
    let mut names: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
    names.sort();
    assert_eq!(keys, names, "exactly the documented keys");

    let mut conn = raw_connection(&url).await;
    for (key, lifetime) in &expected {
        let ttl: i64 = conn.ttl(key).await.unwrap();
        assert!(
            (*lifetime - 5..=*lifetime).contains(&ttl),
            "{key} expires in {ttl} s, expected about {lifetime} s"
        );
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump = String::from_utf8_lossy(&dump);
        for token in [&refresh, &access, &other] {
            assert!(!key.contains(token.as_str()) && !dump.contains(token.as_str()));
        }
        assert!(!key.contains(&owner), "owner names stay out of key names");
    }

    // Revoking the refresh token turns its grant into a tombstone that outlives none of
    // its tokens and lasts at least the tombstone TTL.
    let outcome = store
        .revoke(&TokenHash::of(&refresh), RevocationRequest::new("app"))
        .await
        .unwrap();
    assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
    let ttl: i64 = conn.ttl(format!("{tag}g:{grant}")).await.unwrap();
    assert!((3595..=3600).contains(&ttl), "tombstone TTL {ttl}");
    assert!(store
        .inspect(&TokenHash::of(&access))
        .await
        .unwrap()
        .is_none());

    delete_keys(&url, &prefix).await;
}

#[tokio::test]
async fn a_token_revoked_on_one_node_is_inactive_on_both() {
    let Some((node_a, prefix)) = shared_store("two-nodes").await else {
        return;
    };
    let node_b = RedisStore::builder()
        .key_prefix(&prefix)
        .connect(redis_url())
        .await
        .unwrap();
    let addr_a = common::serve(endpoint(node_a.clone())).await;
    let addr_b = common::serve(endpoint(node_b.clone())).await;
    assert_ne!(addr_a, addr_b);

    let grant = GrantId::random();
    let (refresh, access) = (random_token("refresh"), random_token("access"));
    for (token, kind) in [
        (&refresh, TokenKind::RefreshToken),
        (&access, TokenKind::AccessToken),
    ] {
        node_a
            .issue(
                TokenHash::of(token),
                TokenRecord::new(kind, "app", grant, in_secs(600)).with_owner("alice"),
            )
            .await
            .unwrap();
    }
    for store in [&node_a, &node_b] {
        assert!(store
            .inspect(&TokenHash::of(&refresh))
            .await
            .unwrap()
            .is_some());
        assert!(store
            .inspect(&TokenHash::of(&access))
            .await
            .unwrap()
            .is_some());
    }

    let reply = revoke_over_http(addr_b, &refresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for (name, store) in [("node a", &node_a), ("node b", &node_b)] {
        for token in [&refresh, &access] {
            assert!(
                store
                    .inspect(&TokenHash::of(token))
                    .await
                    .unwrap()
                    .is_none(),
                "revoked on node b, still active on {name}"
            );
        }
    }
    // Node a refuses new tokens for the grant node b revoked.
    let late = node_a
        .issue(
            TokenHash::of(&random_token("late")),
            TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(600)),
        )
        .await;
    assert!(matches!(late, Err(IssueError::GrantRevoked)));
    // And node a's endpoint answers for the token node b revoked as for any inactive one.
    assert_eq!(
        revoke_over_http(addr_a, &access).await.status,
        StatusCode::OK
    );

    delete_keys(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_cut_off_lasts_as_long_as_the_grants_it_covers() {
    // A tombstone TTL of one second: only the grants' own lives keep a cut-off.
    let prefix = unique_prefix("cut-off-life");
    let store = match RedisStore::builder()
        .key_prefix(&prefix)
        .tombstone_ttl(Duration::from_secs(1))
        .connect(redis_url())
        .await
    {
        Ok(store) => store,
        Err(e) => return unavailable(format!("no Redis at {}: {e}", redis_url())),
    };
    // Each grant gets a short-lived access token first, then a long-lived refresh token:
    // the grant lives as long as the refresh token.
    let (own, users) = (GrantId::random(), GrantId::random());
    let mut refresh = Vec::new();
    for (grant, client, owner) in [(own, "app", None), (users, "other", Some("alice"))] {
        for (kind, lifetime) in [(TokenKind::AccessToken, 2), (TokenKind::RefreshToken, 600)] {
            let token = random_token("t");
            let mut record = TokenRecord::new(kind, client, grant, in_secs(lifetime));
            record.owner = owner.map(Into::into);
            store.issue(TokenHash::of(&token), record).await.unwrap();
            if kind == TokenKind::RefreshToken {
                refresh.push(token);
            }
        }
    }
    assert_eq!(
        store.revoke_client("app", Initiator::System).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_subject("alice", Initiator::System)
            .await
            .unwrap(),
        1
    );
    // Past the access tokens' expiry and the tombstone TTL.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    for (token, scope) in refresh.iter().zip(["client", "subject"]) {
        assert!(
            store
                .inspect(&TokenHash::of(token))
                .await
                .unwrap()
                .is_none(),
            "a refresh token revoked by its {scope}'s cut-off came back to life"
        );
    }
    delete_keys(&redis_url(), &prefix).await;
}

/// A `redis-server` of the test's own on a free loopback port, killed on drop.
struct OwnRedis {
    child: Option<Child>,
    port: u16,
}

impl OwnRedis {
    /// Starts one on a free port, or `None` (after a notice) without `redis-server`.
    async fn start() -> Option<Self> {
        let mut server = Self::not_started();
        server.start_again().await.then_some(server)
    }

    /// A free port, nothing listening on it yet.
    fn not_started() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self { child: None, port }
    }

    /// Starts the server (again) on its port; `false` (after a notice) without
    /// `redis-server`.
    async fn start_again(&mut self) -> bool {
        match self.spawn() {
            Ok(()) => {}
            Err(e) => {
                unavailable(format!("cannot start redis-server: {e}"));
                return false;
            }
        }
        self.wait_ready().await;
        true
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the server answers PING (it announces readiness on no channel we can
    /// await, so it is polled).
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    let pong: redis::RedisResult<String> =
                        redis::cmd("PING").query_async(&mut conn).await;
                    if pong.is_ok() {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&mut self) {
        self.kill();
        assert!(self.start_again().await);
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("-CONT");
        }
        self.kill();
    }
}

#[tokio::test]
async fn redis_down_answers_503_then_recovers() {
    let Some(mut server) = OwnRedis::start().await else {
        return;
    };
    let store = RedisStore::builder()
        .key_prefix(unique_prefix("outage"))
        .operation_timeout(Duration::from_millis(1500))
        .connect(server.url())
        .await
        .unwrap();
    let addr = common::serve(endpoint(store.clone())).await;

    let before = random_token("before");
    issue_once_back(&store, &before, Duration::ZERO).await;
    assert_eq!(revoke_over_http(addr, &before).await.status, StatusCode::OK);
    assert!(store
        .inspect(&TokenHash::of(&before))
        .await
        .unwrap()
        .is_none());

    let during = random_token("during");
    issue_once_back(&store, &during, Duration::ZERO).await;
    server.kill();
    for _ in 0..3 {
        assert_unavailable(addr, &during).await;
    }
    assert!(store.inspect(&TokenHash::of(&during)).await.is_err());

    // Same port, empty data (no persistence): the store reconnects by itself.
    server.restart().await;
    let after = random_token("after");
    issue_once_back(&store, &after, Duration::from_secs(10)).await;
    assert!(store
        .inspect(&TokenHash::of(&after))
        .await
        .unwrap()
        .is_some());
    assert_eq!(revoke_over_http(addr, &after).await.status, StatusCode::OK);
    assert!(store
        .inspect(&TokenHash::of(&after))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn stalled_redis_answers_503_instead_of_hanging() {
    let Some(server) = OwnRedis::start().await else {
        return;
    };
    let store = RedisStore::builder()
        .key_prefix(unique_prefix("stall"))
        .operation_timeout(Duration::from_millis(1000))
        .connect(server.url())
        .await
        .unwrap();
    let addr = common::serve(endpoint(store.clone())).await;
    let token = random_token("stalled");
    issue_once_back(&store, &token, Duration::ZERO).await;

    // The connection stays open but nothing answers.
    server.signal("-STOP");
    assert_unavailable(addr, &token).await;
    server.signal("-CONT");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = revoke_over_http(addr, &token).await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no recovery after SIGCONT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store
        .inspect(&TokenHash::of(&token))
        .await
        .unwrap()
        .is_none());
}

/// Watches the commands clients send to a server (`MONITOR`), apart from those scripts run.
struct ClientCommands {
    _monitor: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ClientCommands {
    async fn watch(server: &OwnRedis) -> Self {
        let mut monitor = tokio::process::Command::new("redis-cli")
            .args(["-p", &server.port.to_string(), "monitor"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-cli beside redis-server");
        let stdout = monitor.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("OK"));
        Self {
            _monitor: monitor,
            lines,
        }
    }

    /// The names of the commands sent by clients until now.
    async fn until_now(mut self, server: &OwnRedis) -> Vec<String> {
        const END: &str = "end-of-operations";
        let mut conn = raw_connection(&server.url()).await;
        let _: String = redis::cmd("ECHO")
            .arg(END)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut names = Vec::new();
        while let Some(line) = self.lines.next_line().await.unwrap() {
            if line.contains(END) {
                return names;
            }
            // `<time> [<db> <client address>|lua] "<command>" "<arg>"...`
            let (source, command) = line.split_once("] ").expect("a MONITOR line");
            let name = command.split(' ').next().unwrap().trim_matches('"');
            let name = name.to_ascii_lowercase();
            // Not an operation's: the relay follows the log on a connection of its own
            // (XREAD, blocking a second at a time; XREVRANGE and CLIENT SETNAME when it
            // connects).
            let relay = matches!(name.as_str(), "xread" | "xrevrange" | "client");
            if !source.ends_with(" lua") && !relay {
                names.push(name);
            }
        }
        panic!("MONITOR ended early");
    }
}

#[tokio::test]
async fn each_operation_is_one_round_trip() {
    let Some(server) = OwnRedis::start().await else {
        return;
    };
    let store = RedisStore::builder()
        .key_prefix(unique_prefix("round-trips"))
        .connect(server.url())
        .await
        .unwrap();
    let grant = GrantId::random();
    let (refresh, access) = (random_token("refresh"), random_token("access"));
    let issue = |token: &String, kind| {
        store.issue(
            TokenHash::of(token),
            TokenRecord::new(kind, "app", grant, in_secs(600)).with_owner("alice"),
        )
    };
    // Once, so that every script is loaded.
    issue(&refresh, TokenKind::RefreshToken).await.unwrap();
    store.inspect(&TokenHash::of(&refresh)).await.unwrap();
    store.clients_of_owner("alice").await.unwrap();
    store
        .revoke_client_for_owner("bob", "app", Initiator::System)
        .await
        .unwrap();
    store.revoke_grant(GrantId::random()).await.unwrap();
    store
        .revoke(&TokenHash::of("unknown"), RevocationRequest::new("app"))
        .await
        .unwrap();

    let watch = ClientCommands::watch(&server).await;
    issue(&access, TokenKind::AccessToken).await.unwrap();
    assert!(store
        .inspect(&TokenHash::of(&access))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.clients_of_owner("alice").await.unwrap().len(), 1);
    // The cascade: a refresh token revokes its grant, the access token with it.
    let outcome = store
        .revoke(&TokenHash::of(&refresh), RevocationRequest::new("app"))
        .await
        .unwrap();
    assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
    store.revoke_grant(grant).await.unwrap();
    assert_eq!(
        store
            .revoke_client_for_owner("alice", "app", Initiator::System)
            .await
            .unwrap(),
        0
    );
    assert!(store
        .inspect(&TokenHash::of(&access))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        watch.until_now(&server).await,
        vec!["evalsha"; 7],
        "seven operations, seven EVALSHA, nothing else"
    );
}

#[tokio::test]
async fn a_node_starts_while_redis_is_down() {
    let mut server = OwnRedis::not_started();
    let store = RedisStore::builder()
        .key_prefix(unique_prefix("lazy"))
        .connect_lazy(server.url())
        .unwrap();
    let addr = common::serve(endpoint(store.clone())).await;
    assert_unavailable(addr, &random_token("early")).await;

    if !server.start_again().await {
        return;
    }
    let token = random_token("later");
    issue_once_back(&store, &token, Duration::from_secs(10)).await;
    assert_eq!(revoke_over_http(addr, &token).await.status, StatusCode::OK);
    assert!(store
        .inspect(&TokenHash::of(&token))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn every_node_hears_every_nodes_events_and_knows_which_were_its_own() {
    let Some((node_a, prefix)) = shared_store("events").await else {
        return;
    };
    let node_b = RedisStore::builder()
        .key_prefix(&prefix)
        .connect(redis_url())
        .await
        .unwrap();
    let (mut heard_a, mut heard_b) = (node_a.events().subscribe(), node_b.events().subscribe());
    // The relays subscribe to Redis in the background: wait until a probe revocation on
    // node A is heard on both, then count from there.
    let probe = || {
        let grant = GrantId::random();
        let store = node_a.clone();
        async move {
            store
                .issue(
                    TokenHash::of(&random_token("probe")),
                    TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(60)),
                )
                .await
                .unwrap();
            store.revoke_grant(grant).await.unwrap();
            grant
        }
    };
    let ready = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let grant = probe().await;
        let a = tokio::time::timeout(Duration::from_millis(200), heard_a.recv()).await;
        let b = tokio::time::timeout(Duration::from_millis(200), heard_b.recv()).await;
        let heard = |r: Result<
            Option<Result<std::sync::Arc<tower_oauth_revoke::events::RevocationEvent>, _>>,
            _,
        >| { matches!(r, Ok(Some(Ok(e))) if e.revoked.grant() == Some(grant)) };
        if heard(a) && heard(b) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < ready,
            "the relays never started"
        );
    }

    // A revocation at node B: both hear it; only node B's copy is its own.
    let grant = GrantId::random();
    let token = random_token("access");
    node_b
        .issue(
            TokenHash::of(&token),
            TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(60)).with_owner("alice"),
        )
        .await
        .unwrap();
    node_b
        .revoke(&TokenHash::of(&token), RevocationRequest::new("app"))
        .await
        .unwrap();
    let (on_a, on_b) = (
        next_event(&mut heard_a).await,
        next_event(&mut heard_b).await,
    );
    for event in [&on_a, &on_b] {
        assert_eq!(event.revoked.grant(), Some(grant));
        assert_eq!(event.subject.as_deref(), Some("alice"));
    }
    assert!(on_a.relayed, "node A hears node B's revocation as relayed");
    assert!(!on_b.relayed, "node B hears its own as its own");
}

async fn next_event(
    sub: &mut tower_oauth_revoke::events::Subscription,
) -> std::sync::Arc<tower_oauth_revoke::events::RevocationEvent> {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("an event within 5 s")
        .expect("the store lives")
        .expect("nothing missed")
}

#[tokio::test]
async fn a_node_whose_relay_connection_is_killed_misses_no_event() {
    let Some((node_a, prefix)) = shared_store("relay-killed").await else {
        return;
    };
    let node_b = RedisStore::builder()
        .key_prefix(&prefix)
        .connect(redis_url())
        .await
        .unwrap();
    let mut heard_b = node_b.events().subscribe();
    // Node B reads the log from its end as it first sees it: wait until it hears a probe.
    let ready = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let grant = GrantId::random();
        let record = TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(60));
        let token = TokenHash::of(&random_token("probe"));
        node_a.issue(token, record).await.unwrap();
        node_a.revoke_grant(grant).await.unwrap();
        let heard = tokio::time::timeout(Duration::from_millis(200), heard_b.recv()).await;
        if matches!(heard, Ok(Some(Ok(e))) if e.revoked.grant() == Some(grant)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < ready,
            "the relay never started"
        );
    }
    // Kill every relay connection (node B's among them; the others reconnect as well), then
    // revoke at once, while node B is away.
    let mut admin = raw_connection(&redis_url()).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    let relays: Vec<String> = clients
        .lines()
        .filter(|line| line.contains("name=tower-oauth-revoke-relay"))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect();
    assert!(relays.len() >= 2, "both nodes follow the log: {relays:?}");
    for id in &relays {
        let _: redis::RedisResult<()> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await;
    }
    let mut revoked = Vec::new();
    for _ in 0..20 {
        let grant = GrantId::random();
        let record = TokenRecord::new(TokenKind::RefreshToken, "app", grant, in_secs(60));
        node_a
            .issue(TokenHash::of(&random_token("refresh")), record)
            .await
            .unwrap();
        node_a.revoke_grant(grant).await.unwrap();
        revoked.push(grant);
    }
    // Node B hears every one of them, in order, once it has read on from where it was.
    for grant in revoked {
        let event = next_event(&mut heard_b).await;
        assert_eq!(event.revoked.grant(), Some(grant), "in order, none missed");
        assert!(event.relayed);
    }
}

#[tokio::test]
async fn the_history_is_every_revocation_still_in_force_oldest_first() {
    let Some((store, prefix)) = shared_store("history").await else {
        return;
    };
    assert!(store.history().await.unwrap().is_empty(), "a new store");
    let revoke = |token: String| {
        let store = store.clone();
        async move {
            let outcome = store
                .revoke(&TokenHash::of(&token), RevocationRequest::new("app"))
                .await;
            assert!(matches!(outcome, Ok(RevocationOutcome::Revoked { .. })));
        }
    };
    // A token that expires in seconds (whole seconds in Redis), revoked first: out of the
    // history once expired.
    let brief = random_token("brief");
    let expired = Instant::now() + Duration::from_millis(4100);
    let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), in_secs(4));
    store.issue(TokenHash::of(&brief), record).await.unwrap();
    revoke(brief).await;
    // More than one page of the log: 1,001 access tokens, then a grant and a cut-off.
    let mut grants = Vec::new();
    for _ in 0..1001 {
        let (token, grant) = (random_token("access"), GrantId::random());
        let record = TokenRecord::new(TokenKind::AccessToken, "app", grant, in_secs(600));
        store.issue(TokenHash::of(&token), record).await.unwrap();
        revoke(token).await;
        grants.push(grant);
    }
    let (refresh, g) = (random_token("refresh"), GrantId::random());
    let record = TokenRecord::new(TokenKind::RefreshToken, "app", g, in_secs(600));
    store
        .issue(TokenHash::of(&refresh), record.with_owner("alice"))
        .await
        .unwrap();
    revoke(refresh).await;
    // A cut-off is written only over a live grant.
    let record = TokenRecord::new(
        TokenKind::AccessToken,
        "app",
        GrantId::random(),
        in_secs(600),
    );
    let alive = random_token("alive");
    store
        .issue(TokenHash::of(&alive), record.with_owner("alice"))
        .await
        .unwrap();
    store
        .revoke_subject("alice", Initiator::System)
        .await
        .unwrap();
    assert_eq!(
        store.history().await.unwrap().len(),
        1004,
        "before the expiry"
    );
    tokio::time::sleep_until(expired.into()).await;

    let history = store.history().await.unwrap();
    assert_eq!(history.len(), 1003);
    for (event, grant) in history.iter().zip(&grants) {
        assert_eq!(event.revoked.grant(), Some(*grant), "oldest first");
    }
    assert_eq!(history[1001].revoked, Revoked::Grant { grant: g });
    assert_eq!(history[1002].revoked, Revoked::Subject);
    assert_eq!(history[1002].expires_at, None, "a cut-off has no end");
    assert!(history.iter().all(|e| e.relayed), "never pushed again");
    delete_keys(&redis_url(), &prefix).await;
}
