//! Nothing promised is lost: the demo server on PostgreSQL (`--postgres`), killed with
//! SIGKILL at random moments while revocations and refreshes stream in, and started again on
//! the same database.
//!
//! After each restart: every token whose revocation was answered 200 is refused (its access
//! token at `/userinfo`, its refresh token at the token endpoint), every token nobody tried
//! to revoke still works, and a token whose revocation was cut off by the kill is in one
//! state or the other, never half (its access and refresh tokens agree).
//!
//! Every SET is delivered at least once: the servers push to a receiver served here
//! (`--event-webhook`), from the durable outbox by cursor; at the end the receiver has had
//! one grant-revoked SET for every grant found revoked, killed or not (some twice, with the
//! same `jti`: at least once, not exactly once).
//!
//! The database is a fresh one on the PostgreSQL at 127.0.0.1:5432 (`DATABASE_URL`'s server;
//! `.ci/run` makes sure one answers), dropped at the end.
//!
//! Delivery from the store's log is checked on Redis too (`--redis`, from its stream by
//! cursor), each test under a key prefix of its own: two servers sharing one receiver and
//! one poll queue, and a SET whose server was killed before it could push it.

mod common;

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    time::Duration,
};

use common::{example_binary, set_receiver, skip_or_fail, Database, Process};
use serde_json::Value;
use tower_oauth_revoke::set::GRANT_REVOKED;

const YMX: (&str, &str) = (
    "YmxD0jDOIfiBkD8TPLYOfxNSIg4a",
    "FJdj7G956wqKw3d4X0BWONMIu00a",
);
const ALICE: (&str, &str) = ("alice", "alice-password");

#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

/// The arguments that name the servers' store: `--postgres URL`, or `--redis URL
/// --redis-key-prefix P`.
struct Store(Vec<String>);

impl Store {
    fn postgres(database: &Database) -> Self {
        Self(vec!["--postgres".to_owned(), database.url()])
    }
}

/// The demo server on a store, and a client for it.
struct Demo {
    process: Process,
    http: reqwest::Client,
}

impl Demo {
    fn start(binary: &std::path::Path, store: &Store, webhook: &str) -> Self {
        Self::start_with(binary, store, webhook, &[])
    }

    fn start_with(binary: &std::path::Path, store: &Store, webhook: &str, more: &[&str]) -> Self {
        let mut args = vec!["--plain", "--listen", "127.0.0.1:0"];
        args.extend(store.0.iter().map(String::as_str));
        args.extend(["--event-webhook", webhook]);
        args.extend_from_slice(more);
        Self {
            process: Process::start(binary, &args),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// SIGKILL (`Child::kill`): no shutdown, no flush, nothing the process could still do.
    fn kill(&mut self) {
        self.process.child.kill().expect("SIGKILL");
        self.process.child.wait().unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.url)
    }

    async fn password_grant(&self) -> Tokens {
        let reply = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(YMX.0, Some(YMX.1))
            .form(&[
                ("grant_type", "password"),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "a token");
        let body: Value = reply.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Revokes a refresh token (and so its grant); the status, or `None` when the server did
    /// not answer (it was killed meanwhile).
    async fn revoke(&self, refresh: &str) -> Option<u16> {
        let reply = self
            .http
            .post(self.url("/oauth2/revoke"))
            .basic_auth(YMX.0, Some(YMX.1))
            .form(&[("token", refresh), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .ok()?;
        Some(reply.status().as_u16())
    }

    /// Uses a refresh token; `None` when the server did not answer.
    async fn refresh(&self, refresh: &str) -> Option<u16> {
        let reply = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(YMX.0, Some(YMX.1))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .send()
            .await
            .ok()?;
        Some(reply.status().as_u16())
    }

    async fn userinfo(&self, access: &str) -> u16 {
        self.http
            .get(self.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Polls the server's SET queue (RFC 8936) as the resource server: the jtis returned.
    async fn poll(&self, ack: &[String]) -> Vec<String> {
        self.poll_as(("resource-server", "rs-secret"), ack).await
    }

    /// Polls as `who`: the jtis returned, in log order.
    async fn poll_as(&self, who: (&str, &str), ack: &[String]) -> Vec<String> {
        let reply = self
            .http
            .post(self.url("/oauth2/events"))
            .basic_auth(who.0, Some(who.1))
            .json(&serde_json::json!({"ack": ack, "returnImmediately": true, "maxEvents": 1000}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "a poll");
        let body: Value = reply.json().await.unwrap();
        let mut jtis: Vec<String> = body["sets"].as_object().unwrap().keys().cloned().collect();
        jtis.sort_by_key(|jti| jti.split('-').next().and_then(|p| p.parse::<u64>().ok()));
        jtis
    }

    /// Whether the grant of `tokens` is alive: both tokens must agree.
    async fn alive(&self, tokens: &Tokens) -> bool {
        let access = self.userinfo(&tokens.access).await;
        let refresh = self.refresh(&tokens.refresh).await.expect("an answer");
        assert!(
            matches!((access, refresh), (200, 200) | (401, 400)),
            "access ({access}) and refresh ({refresh}) of one grant agree"
        );
        access == 200
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Never revoked: must stay alive.
    Kept,
    /// Its revocation was answered 200: must be refused for good.
    Revoked,
    /// Its revocation was sent but not answered before the kill: either, consistently.
    InFlight,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_on_postgres_loses_no_revocation_and_no_token() {
    let Some(database) = Database::create("tor_durability") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    let binary = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    const ROUNDS: usize = 5;
    const GRANTS: usize = 24;
    // The receiver: the grants of the grant-revoked SETs pushed, and each SET's jti.
    let (hook, mut pushes) = set_receiver().await;
    let webhook = format!("http://{hook}/events");
    let (got, mut seen) = tokio::sync::watch::channel((HashSet::new(), Vec::new()));
    tokio::spawn(async move {
        while let Some(claims) = pushes.recv().await {
            let grant = claims["events"][GRANT_REVOKED]["subject"]["grant"]["id"].as_str();
            let (Some(grant), Some(jti)) = (grant, claims["jti"].as_str()) else {
                continue;
            };
            got.send_modify(|(grants, jtis): &mut (HashSet<String>, Vec<String>)| {
                grants.insert(grant.to_owned());
                jtis.push(jti.to_owned());
            });
        }
    });
    let mut fates: Vec<(Tokens, Fate)> = Vec::new();
    let store = Store::postgres(&database);
    let mut demo = Demo::start(&binary, &store, &webhook);
    for round in 0..ROUNDS {
        // New grants this round, on the server as it is now.
        let mut fresh = Vec::new();
        for _ in 0..GRANTS {
            fresh.push(demo.password_grant().await);
        }
        // Revoke half of them (every other), one after another, with a refresh of a kept
        // one between revocations, and kill the server at a random moment meanwhile.
        let pid = demo.process.child.id().to_string();
        let running = std::sync::Arc::new(demo);
        // Each answered revocation is signalled, so that the kill lands inside the stream:
        // after a random number of answers, and a random fraction of a request later.
        let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel::<()>();
        let stream = {
            let demo = running.clone();
            let fresh = fresh.clone();
            tokio::spawn(async move {
                let mut outcomes = HashMap::new();
                for (i, tokens) in fresh.iter().enumerate() {
                    if i % 2 == 1 {
                        let _ = demo.refresh(&tokens.refresh).await;
                        continue;
                    }
                    match demo.revoke(&tokens.refresh).await {
                        Some(200) => {
                            let _ = answered.send(());
                            outcomes.insert(i, Fate::Revoked)
                        }
                        Some(status) => panic!("a revocation answered {status}"),
                        None => {
                            outcomes.insert(i, Fate::InFlight);
                            break;
                        }
                    };
                }
                outcomes
            })
        };
        let after = rand::random_range(0..GRANTS / 2);
        for _ in 0..after {
            answers.recv().await.expect("the stream answers");
        }
        let delay = Duration::from_micros(rand::random_range(0..3_000));
        tokio::time::sleep(delay).await;
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success(), "SIGKILL");
        let outcomes = stream.await.unwrap();
        drop(running);
        for (i, tokens) in fresh.into_iter().enumerate() {
            // A token the stream never reached (it stopped at the first unanswered
            // revocation) was never revoked: it must live.
            let fate = outcomes.get(&i).copied().unwrap_or(Fate::Kept);
            fates.push((tokens, fate));
        }
        // Started again on the same database: everything promised holds.
        let again = Demo::start(&binary, &store, &webhook);
        let (mut revoked, mut kept, mut in_flight) = (0, 0, 0);
        for (tokens, fate) in &fates {
            let alive = again.alive(tokens).await;
            match fate {
                Fate::Revoked => {
                    revoked += 1;
                    assert!(!alive, "round {round}: a revocation answered 200 was lost");
                }
                Fate::Kept => {
                    kept += 1;
                    assert!(alive, "round {round}: a live token was lost");
                }
                Fate::InFlight => in_flight += 1,
            }
        }
        eprintln!(
            "round {round}: killed {delay:?} after {after} answers; {revoked} revoked held, {kept} live held, \
             {in_flight} cut off by the kill"
        );
        demo = again;
    }
    // Every grant revoked, answered or cut off by a kill, has had its SET pushed.
    let mut revoked = 0;
    for (tokens, _) in &fates {
        if !demo.alive(tokens).await {
            revoked += 1;
        }
    }
    let pushed = tokio::time::timeout(
        Duration::from_secs(60),
        seen.wait_for(|(grants, _)| grants.len() >= revoked),
    )
    .await
    .map(|seen| seen.map(|s| s.clone()));
    let (grants, jtis) = match pushed {
        Ok(Ok(seen)) => seen,
        _ => {
            let (grants, _) = seen.borrow().clone();
            panic!(
                "{} of the {revoked} revoked grants had their SET pushed",
                grants.len()
            )
        }
    };
    assert_eq!(grants.len(), revoked, "a SET for a grant nobody revoked");
    let distinct: HashSet<&String> = jtis.iter().collect();
    eprintln!(
        "{revoked} revoked grants, each pushed at least once: {} SETs received, {} distinct \
         jtis ({} pushed again after a kill)",
        jtis.len(),
        distinct.len(),
        jtis.len() - distinct.len()
    );
    assert_eq!(
        distinct.len(),
        revoked,
        "one jti per revocation, on every delivery"
    );
    demo.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_push_each_set_once_and_share_one_poll_queue() {
    let Some(database) = Database::create("tor_two_nodes") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    two_servers_push_each_set_once_and_share_one_poll_queue(&Store::postgres(&database)).await;
}

/// Two servers on one store: a revocation at either is pushed once, by one of them (the
/// holder of the receiver's cursor), in order; both answer the same poll queue, with the
/// same jtis, and acknowledgements made at one hold at the other and after both are killed.
async fn two_servers_push_each_set_once_and_share_one_poll_queue(store: &Store) {
    let binary = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    let (hook, mut pushes) = set_receiver().await;
    let webhook = format!("http://{hook}/events");
    let mut a = Demo::start(&binary, store, &webhook);
    let mut b = Demo::start(&binary, store, &webhook);

    // Revoked at A and at B in turn: each pushed once, in the order revoked.
    let mut revoked = Vec::new();
    for i in 0..10 {
        let at = if i % 2 == 0 { &a } else { &b };
        let tokens = at.password_grant().await;
        assert_eq!(at.revoke(&tokens.refresh).await, Some(200));
        revoked.push(tokens);
    }
    let mut jtis = Vec::new();
    while jtis.len() < revoked.len() {
        let claims = tokio::time::timeout(Duration::from_secs(20), pushes.recv())
            .await
            .expect("every SET pushed in time")
            .unwrap();
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    // One more, pushed after every earlier one: none of those came twice meanwhile.
    let last = a.password_grant().await;
    assert_eq!(b.revoke(&last.refresh).await, Some(200));
    let claims = tokio::time::timeout(Duration::from_secs(20), pushes.recv())
        .await
        .expect("the last SET pushed in time")
        .unwrap();
    jtis.push(claims["jti"].as_str().unwrap().to_owned());
    let distinct: HashSet<&String> = jtis.iter().collect();
    assert_eq!(distinct.len(), 11, "each SET pushed once: {jtis:?}");
    assert!(pushes.try_recv().is_err(), "nothing pushed twice");

    // One poll queue: the same SETs, with the pushed jtis, at either server.
    let at_a = a.poll(&[]).await;
    assert_eq!(
        at_a, jtis,
        "polled at A: every SET, in order, with its one jti"
    );
    assert_eq!(b.poll(&[]).await, at_a, "polled at B: the same");
    // Acknowledged at A (five of them, not the first): gone at B as well.
    let acked: Vec<String> = at_a[1..6].to_vec();
    let left = a.poll(&acked).await;
    let expected: Vec<String> = at_a
        .iter()
        .filter(|jti| !acked.contains(jti))
        .cloned()
        .collect();
    assert_eq!(left, expected);
    assert_eq!(b.poll(&[]).await, expected, "acknowledged at A, gone at B");
    // Both killed; what was not acknowledged is still there after a restart.
    a.kill();
    b.kill();
    let c = Demo::start(&binary, store, &webhook);
    assert_eq!(c.poll(&[]).await, expected, "kept across a restart");
    let all: Vec<String> = expected.clone();
    assert!(c.poll(&all).await.is_empty(), "everything acknowledged");
    // An acknowledgement of something that is not a SET of this queue changes nothing.
    let again = c.password_grant().await;
    assert_eq!(c.revoke(&again.refresh).await, Some(200));
    let one = c
        .poll(&[
            "1-00000000000000000000000000000000".to_owned(),
            "x".to_owned(),
        ])
        .await;
    assert_eq!(
        one.len(),
        1,
        "a forged acknowledgement acknowledges nothing"
    );
    let mut c = c;
    c.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiving_client_polls_its_own_queue() {
    let Some(database) = Database::create("tor_receivers") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    each_receiving_client_polls_its_own_queue_on(&Store::postgres(&database)).await;
}

/// Every client that reads events has its own queue in the store: one acknowledging
/// takes nothing from another.
async fn each_receiving_client_polls_its_own_queue_on(store: &Store) {
    let binary = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    let config = std::env::temp_dir().join(format!("tor-receivers-{}.toml", rand::random::<u64>()));
    std::fs::write(
        &config,
        format!(
            r#"
[[clients]]
id = "{}"
secret = "{}"
[[clients]]
id = "rs-one"
secret = "one-secret"
introspect = true
[[clients]]
id = "rs-two"
secret = "two-secret"
introspect = true
[[users]]
name = "{}"
password = "{}"
"#,
            YMX.0, YMX.1, ALICE.0, ALICE.1
        ),
    )
    .unwrap();
    let (hook, _pushes) = set_receiver().await;
    let webhook = format!("http://{hook}/events");
    let config_path = config.to_str().unwrap().to_owned();
    let mut demo = Demo::start_with(&binary, store, &webhook, &["--config", &config_path]);
    for _ in 0..3 {
        let tokens = demo.password_grant().await;
        assert_eq!(demo.revoke(&tokens.refresh).await, Some(200));
    }
    let one = demo.poll_as(("rs-one", "one-secret"), &[]).await;
    assert_eq!(one.len(), 3, "every SET for rs-one");
    assert!(demo
        .poll_as(("rs-one", "one-secret"), &one)
        .await
        .is_empty());
    let two = demo.poll_as(("rs-two", "two-secret"), &[]).await;
    assert_eq!(
        two, one,
        "rs-one's acknowledgements took nothing from rs-two"
    );
    demo.kill();
    let _ = std::fs::remove_file(&config);
}

/// A fresh key prefix on the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), its
/// keys deleted at the end; `None` (after a notice) without a Redis.
#[cfg(feature = "redis")]
struct RedisKeys {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl RedisKeys {
    async fn new(test: &str) -> Option<Self> {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("tor-test-{test}-{:016x}", rand::random::<u64>());
        let client = redis::Client::open(url.as_str()).expect("REDIS_URL is a Redis URL");
        let answers = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await;
        if !matches!(answers, Ok(Ok(_))) {
            skip_or_fail("SKIP_REDIS_TESTS", &format!("no Redis at {url}"));
            return None;
        }
        Some(Self { url, prefix })
    }

    fn store(&self) -> Store {
        Store(vec![
            "--redis".to_owned(),
            self.url.clone(),
            "--redis-key-prefix".to_owned(),
            self.prefix.clone(),
        ])
    }

    async fn delete(self) {
        use redis::AsyncCommands as _;
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut keys: Vec<String> = Vec::new();
        let mut found: redis::AsyncIter<'_, String> = conn
            .scan_match(format!("{{{}}}:*", self.prefix))
            .await
            .unwrap();
        while let Some(key) = found.next_item().await {
            keys.push(key.unwrap());
        }
        drop(found);
        if !keys.is_empty() {
            let _: () = conn.del(keys).await.unwrap();
        }
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_push_each_set_once_and_share_one_poll_queue() {
    let Some(keys) = RedisKeys::new("two-nodes").await else {
        return;
    };
    two_servers_push_each_set_once_and_share_one_poll_queue(&keys.store()).await;
    keys.delete().await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiving_client_polls_its_own_queue_on_redis() {
    let Some(keys) = RedisKeys::new("receivers").await else {
        return;
    };
    each_receiving_client_polls_its_own_queue_on(&keys.store()).await;
    keys.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_its_server_was_killed_before_pushing_is_pushed_by_the_next_on_postgres() {
    let Some(database) = Database::create("tor_killed_push") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    a_set_its_server_was_killed_before_pushing_is_pushed_by_the_next(&Store::postgres(&database))
        .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_its_server_was_killed_before_pushing_is_pushed_by_the_next_on_redis() {
    let Some(keys) = RedisKeys::new("killed-push").await else {
        return;
    };
    a_set_its_server_was_killed_before_pushing_is_pushed_by_the_next(&keys.store()).await;
    keys.delete().await;
}

/// A server whose receiver turned its SET away (503) is killed (SIGKILL) before it could
/// push again; the receiver comes back, and a new server on the same store pushes that SET
/// (once its predecessor's lease ran out), with the jti the log gave it, and the next one
/// after it.
async fn a_set_its_server_was_killed_before_pushing_is_pushed_by_the_next(store: &Store) {
    let binary = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    let (hook, mut pushes, mut gate) = common::gated_set_receiver(false).await;
    let webhook = format!("http://{hook}/events");
    let mut a = Demo::start(&binary, store, &webhook);
    let tokens = a.password_grant().await;
    assert_eq!(a.revoke(&tokens.refresh).await, Some(200));
    // A tried to push it, and the receiver turned it away: not delivered when A dies.
    tokio::time::timeout(Duration::from_secs(20), gate.refused.wait_for(|n| *n > 0))
        .await
        .expect("A tries to push the SET")
        .unwrap();
    let polled = a.poll(&[]).await;
    assert_eq!(polled.len(), 1, "one SET logged");
    a.kill();
    assert!(
        pushes.try_recv().is_err(),
        "nothing delivered before A died"
    );
    gate.gate.send(true).unwrap();

    let b = Demo::start(&binary, store, &webhook);
    let claims = tokio::time::timeout(Duration::from_secs(30), pushes.recv())
        .await
        .expect("the SET pushed by the next server")
        .unwrap();
    assert_eq!(
        claims["jti"].as_str(),
        Some(polled[0].as_str()),
        "the SET A logged, with its one jti"
    );
    let grant = claims["events"][GRANT_REVOKED]["subject"]["grant"]["id"].as_str();
    assert!(grant.is_some(), "a grant-revoked SET: {claims}");
    // And B goes on with what is logged after it.
    let next = b.password_grant().await;
    assert_eq!(b.revoke(&next.refresh).await, Some(200));
    let claims = tokio::time::timeout(Duration::from_secs(20), pushes.recv())
        .await
        .expect("the next SET pushed")
        .unwrap();
    assert_ne!(claims["jti"].as_str(), Some(polled[0].as_str()));
    let mut b = b;
    b.kill();
}
