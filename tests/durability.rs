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

/// The demo server on `database`, and a client for it.
struct Demo {
    process: Process,
    http: reqwest::Client,
}

impl Demo {
    fn start(binary: &std::path::Path, database: &str, webhook: &str) -> Self {
        Self::start_with(binary, database, webhook, &[])
    }

    fn start_with(binary: &std::path::Path, database: &str, webhook: &str, more: &[&str]) -> Self {
        let mut args = vec![
            "--plain",
            "--listen",
            "127.0.0.1:0",
            "--postgres",
            database,
            "--event-webhook",
            webhook,
        ];
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
    let mut demo = Demo::start(&binary, &database.url(), &webhook);
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
        let again = Demo::start(&binary, &database.url(), &webhook);
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

/// Two servers on one database: a revocation at either is pushed once, by one of them (the
/// holder of the receiver's cursor), in order; both answer the same poll queue, with the
/// same jtis, and acknowledgements made at one hold at the other and after both are killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_push_each_set_once_and_share_one_poll_queue() {
    let Some(database) = Database::create("tor_two_nodes") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
    let binary = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    let (hook, mut pushes) = set_receiver().await;
    let webhook = format!("http://{hook}/events");
    let mut a = Demo::start(&binary, &database.url(), &webhook);
    let mut b = Demo::start(&binary, &database.url(), &webhook);

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
    let c = Demo::start(&binary, &database.url(), &webhook);
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

/// Every client that reads events has its own queue in the store: one acknowledging
/// takes nothing from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiving_client_polls_its_own_queue() {
    let Some(database) = Database::create("tor_receivers") else {
        skip_or_fail(
            "SKIP_POSTGRES_TESTS",
            "no PostgreSQL answers at DATABASE_URL's server",
        );
        return;
    };
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
    let mut demo = Demo::start_with(
        &binary,
        &database.url(),
        &webhook,
        &["--config", &config_path],
    );
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
