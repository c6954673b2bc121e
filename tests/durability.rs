//! Nothing promised is lost: the demo server on PostgreSQL (`--postgres`), killed with
//! SIGKILL at random moments while revocations and refreshes stream in, and started again on
//! the same database.
//!
//! After each restart: every token whose revocation was answered 200 is refused (its access
//! token at `/userinfo`, its refresh token at the token endpoint), every token nobody tried
//! to revoke still works, and a token whose revocation was cut off by the kill is in one
//! state or the other, never half (its access and refresh tokens agree).
//!
//! The database is a fresh one on the PostgreSQL at 127.0.0.1:5432 (`DATABASE_URL`'s server;
//! `.ci/run` makes sure one answers), dropped at the end.

mod common;

use std::{collections::HashMap, process::Command, time::Duration};

use common::{example_binary, skip_or_fail, Database, Process};
use serde_json::Value;

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
    fn start(binary: &std::path::Path, database: &str) -> Self {
        let args = ["--plain", "--listen", "127.0.0.1:0", "--postgres", database];
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
    let mut fates: Vec<(Tokens, Fate)> = Vec::new();
    let mut demo = Demo::start(&binary, &database.url());
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
        let again = Demo::start(&binary, &database.url());
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
    demo.kill();
}
