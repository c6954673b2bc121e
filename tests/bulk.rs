//! Bulk revocation end to end: the demo server in its own process, driven over HTTP, with
//! opaque access tokens and with `--jwt`.
//!
//! - `POST /admin/revocations` by subject, by client, and by both: exactly the tokens of
//!   that scope are refused (access tokens at `/userinfo`, refresh tokens at the token
//!   endpoint), the answer counts the grants that were active, and tokens issued right
//!   after the cut-off work.
//! - `DELETE /users/me/authorizations`: the resource owner signs out of every app.
//! - What the admin endpoint refuses.
//! - Two nodes on one Redis: a subject revoked at one node is refused at the other at once.

mod common;

use std::{
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{example_binary, Process};
use serde_json::Value;

const YMX: (&str, &str) = (
    "YmxD0jDOIfiBkD8TPLYOfxNSIg4a",
    "FJdj7G956wqKw3d4X0BWONMIu00a",
);
const OTHER: (&str, &str) = ("other-client", "other-secret");
const ADMIN: (&str, &str) = ("admin-client", "admin-secret");
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// The demo server binary, built once per test run.
async fn server_binary() -> std::path::PathBuf {
    static BINARY: OnceLock<std::path::PathBuf> = OnceLock::new();
    if let Some(path) = BINARY.get() {
        return path.clone();
    }
    let path = tokio::task::spawn_blocking(|| example_binary("server"))
        .await
        .unwrap();
    BINARY.get_or_init(|| path).clone()
}

/// The two tokens of a token response.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
    expires_in: u64,
}

/// A demo server process and a client for it.
struct Demo {
    process: Process,
    http: reqwest::Client,
    jwt: bool,
}

impl Demo {
    /// A demo server on plain HTTP with its in-memory store; with `--jwt` if `jwt`.
    async fn start(jwt: bool) -> Self {
        Self::start_with(jwt, &[]).await
    }

    async fn start_with(jwt: bool, extra: &[&str]) -> Self {
        let binary = server_binary().await;
        let mut args = vec!["--plain", "--listen", "127.0.0.1:0"];
        if jwt {
            args.push("--jwt");
        }
        args.extend_from_slice(extra);
        Self {
            process: Process::start(&binary, &args),
            http: reqwest::Client::new(),
            jwt,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.url)
    }

    async fn token(&self, (client, secret): (&str, &str), form: &[(&str, &str)]) -> Tokens {
        let reply = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(client, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "a token for {client}");
        let body: Value = reply.json().await.unwrap();
        let tokens = Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            expires_in: body["expires_in"].as_u64().unwrap(),
        };
        assert_eq!(
            tokens.access.starts_with("eyJ"),
            self.jwt,
            "access tokens are JWTs exactly with --jwt"
        );
        tokens
    }

    /// A password grant of `user` to `client`.
    async fn password(&self, client: (&str, &str), (user, password): (&str, &str)) -> Tokens {
        self.token(
            client,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ],
        )
        .await
    }

    /// A `client_credentials` grant of `client`.
    async fn client_credentials(&self, client: (&str, &str)) -> Tokens {
        self.token(client, &[("grant_type", "client_credentials")])
            .await
    }

    /// The status of `GET /userinfo` with `access`.
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

    /// Uses a refresh token: `Ok(())` when it gives a new access token, else the error code.
    async fn refresh(&self, (client, secret): (&str, &str), refresh: &str) -> Result<(), String> {
        let reply = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .send()
            .await
            .unwrap();
        let status = reply.status();
        let body: Value = reply.json().await.unwrap();
        if status == 200 && body["access_token"].is_string() {
            Ok(())
        } else {
            Err(body["error"].as_str().unwrap_or_default().to_owned())
        }
    }

    /// The access token works and its refresh token gives a new access token.
    async fn assert_alive(&self, client: (&str, &str), tokens: &Tokens, what: &str) {
        assert_eq!(self.userinfo(&tokens.access).await, 200, "{what}: access");
        assert_eq!(
            self.refresh(client, &tokens.refresh).await,
            Ok(()),
            "{what}: refresh"
        );
    }

    /// The access token is refused and the refresh token answers `invalid_grant`.
    async fn assert_dead(&self, client: (&str, &str), tokens: &Tokens, what: &str) {
        assert_eq!(self.userinfo(&tokens.access).await, 401, "{what}: access");
        assert_eq!(
            self.refresh(client, &tokens.refresh).await,
            Err("invalid_grant".to_owned()),
            "{what}: refresh"
        );
    }

    /// `POST /admin/revocations` as `admin-client` with `form`.
    async fn admin(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/admin/revocations"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// An admin revocation that must succeed: its `revoked_grants`.
    async fn revoked_grants(&self, form: &[(&str, &str)]) -> u64 {
        let reply = self.admin(form).await;
        assert_eq!(reply.status(), 200, "admin revocation {form:?}");
        let body: Value = reply.json().await.unwrap();
        body["revoked_grants"].as_u64().expect("revoked_grants")
    }

    /// Revokes one token by RFC 7009, as its client.
    async fn revoke(&self, (client, secret): (&str, &str), token: &str) {
        let reply = self
            .http
            .post(self.url("/oauth2/revoke"))
            .basic_auth(client, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }

    /// The client ids the collection `GET /users/me/authorizations` lists for `user`.
    async fn authorized_clients(&self, (user, password): (&str, &str)) -> Vec<String> {
        let reply = self
            .http
            .get(self.url("/users/me/authorizations"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let body: Value = reply.json().await.unwrap();
        let mut clients: Vec<String> = body["authorizations"]
            .as_array()
            .expect("a list of authorizations")
            .iter()
            .map(|a| a["client_id"].as_str().unwrap().to_owned())
            .collect();
        clients.sort();
        clients
    }
}

/// Waits until the current second has at least 0.6 s left, so that what follows likely
/// happens within one second.
async fn start_of_a_second() {
    let fraction = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    if fraction > 400 {
        tokio::time::sleep(Duration::from_millis(u64::from(1000 - fraction) + 5)).await;
    }
}

fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Revokes `alice` as a subject, then gets her a new token at once: it works, even when it
/// was issued in the same second as the cut-off. Tries until one attempt fell within one
/// second (the clock is the same machine's).
async fn a_token_issued_right_after_a_cut_off_works(demo: &Demo) {
    for _ in 0..5 {
        start_of_a_second().await;
        let before = SystemTime::now();
        let revoked = demo.revoked_grants(&[("subject", ALICE.0)]).await;
        assert!(revoked <= 1, "at most the previous attempt's grant");
        let requested = SystemTime::now();
        let fresh = demo.password(OTHER, ALICE).await;
        let after = SystemTime::now();
        demo.assert_alive(
            OTHER,
            &fresh,
            "alice's token issued right after the cut-off",
        )
        .await;
        if demo.jwt {
            // A JWT's `iat` is whole seconds: one asked for in its cut-off's second is
            // dated the next second, so that a resource server judging by `iat` does not
            // take it for covered.
            if unix_second(before) == unix_second(requested) {
                let claims = common::set_claims(&fresh.access).expect("a JWT");
                let iat = claims["iat"].as_u64().expect("an integer iat");
                assert!(
                    iat > unix_second(requested),
                    "a JWT asked for in its cut-off's second is dated after it (iat {iat})"
                );
                assert_eq!(
                    claims["exp"].as_u64().unwrap() - iat,
                    fresh.expires_in,
                    "exp - iat is the expires_in the token endpoint answered"
                );
                return;
            }
        } else if unix_second(before) == unix_second(after) {
            return;
        }
    }
    panic!("no attempt issued a token within the second of its cut-off");
}

// ---------------------------------------------------------------------------------------
// By subject.

async fn subject_revocation(jwt: bool) {
    let demo = Demo::start(jwt).await;
    let alice_ymx = demo.password(YMX, ALICE).await;
    let alice_ymx_again = demo.password(YMX, ALICE).await;
    let alice_other = demo.password(OTHER, ALICE).await;
    // Revoked on its own before: not active, so not counted.
    let alice_revoked = demo.password(OTHER, ALICE).await;
    demo.revoke(OTHER, &alice_revoked.refresh).await;
    let bob_ymx = demo.password(YMX, BOB).await;
    let bob_other = demo.password(OTHER, BOB).await;
    let ymx_own = demo.client_credentials(YMX).await;
    // A second access token of the first grant: still one grant.
    let reply = demo
        .http
        .post(demo.url("/oauth2/token"))
        .basic_auth(YMX.0, Some(YMX.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &alice_ymx.refresh),
        ])
        .send()
        .await
        .unwrap();
    let second_access = reply.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(demo.userinfo(&second_access).await, 200);

    assert_eq!(
        demo.revoked_grants(&[("subject", ALICE.0)]).await,
        3,
        "alice's three active grants, each once"
    );
    assert_eq!(demo.userinfo(&second_access).await, 401);
    demo.assert_dead(YMX, &alice_ymx, "alice's grant to YmxD…")
        .await;
    demo.assert_dead(YMX, &alice_ymx_again, "alice's second grant to YmxD…")
        .await;
    demo.assert_dead(OTHER, &alice_other, "alice's grant to other-client")
        .await;
    demo.assert_dead(OTHER, &alice_revoked, "alice's grant revoked before")
        .await;
    demo.assert_alive(YMX, &bob_ymx, "bob's grant to YmxD…")
        .await;
    demo.assert_alive(OTHER, &bob_other, "bob's grant to other-client")
        .await;
    demo.assert_alive(YMX, &ymx_own, "YmxD…'s own grant").await;
    assert_eq!(
        demo.revoked_grants(&[("subject", ALICE.0)]).await,
        0,
        "nothing of alice's is left active"
    );
    assert_eq!(
        demo.revoked_grants(&[("subject", "nobody")]).await,
        0,
        "an unknown subject"
    );

    a_token_issued_right_after_a_cut_off_works(&demo).await;
    demo.assert_alive(YMX, &bob_ymx, "bob's grant, after all that")
        .await;
}

#[tokio::test]
async fn subject_revocation_refuses_exactly_the_subjects_tokens() {
    subject_revocation(false).await;
}

#[tokio::test]
async fn subject_revocation_refuses_exactly_the_subjects_jwts() {
    subject_revocation(true).await;
}

// ---------------------------------------------------------------------------------------
// By client.

async fn client_revocation(jwt: bool) {
    let demo = Demo::start(jwt).await;
    let own = demo.client_credentials(OTHER).await;
    let alice = demo.password(OTHER, ALICE).await;
    let bob = demo.password(OTHER, BOB).await;
    let alice_ymx = demo.password(YMX, ALICE).await;
    let ymx_own = demo.client_credentials(YMX).await;

    assert_eq!(
        demo.revoked_grants(&[("client_id", OTHER.0)]).await,
        3,
        "its own grant and alice's and bob's"
    );
    demo.assert_dead(OTHER, &own, "other-client's own grant")
        .await;
    demo.assert_dead(OTHER, &alice, "alice's grant to other-client")
        .await;
    demo.assert_dead(OTHER, &bob, "bob's grant to other-client")
        .await;
    demo.assert_alive(YMX, &alice_ymx, "alice's grant to YmxD…")
        .await;
    demo.assert_alive(YMX, &ymx_own, "YmxD…'s own grant").await;
    assert_eq!(demo.revoked_grants(&[("client_id", OTHER.0)]).await, 0);

    let own_after = demo.client_credentials(OTHER).await;
    demo.assert_alive(OTHER, &own_after, "other-client's grant made afterwards")
        .await;
    let alice_after = demo.password(OTHER, ALICE).await;
    demo.assert_alive(
        OTHER,
        &alice_after,
        "alice's grant to other-client made afterwards",
    )
    .await;
    // Alice's grant that the client's cut-off revoked is not active: not counted again.
    assert_eq!(
        demo.revoked_grants(&[("subject", ALICE.0)]).await,
        2,
        "alice's grant to YmxD… and her new one to other-client"
    );
}

#[tokio::test]
async fn client_revocation_refuses_every_token_of_the_client() {
    client_revocation(false).await;
}

#[tokio::test]
async fn client_revocation_refuses_every_jwt_of_the_client() {
    client_revocation(true).await;
}

// ---------------------------------------------------------------------------------------
// By subject and client.

async fn pair_revocation(jwt: bool) {
    let demo = Demo::start(jwt).await;
    let alice_other = demo.password(OTHER, ALICE).await;
    let alice_ymx = demo.password(YMX, ALICE).await;
    let bob_other = demo.password(OTHER, BOB).await;
    let own = demo.client_credentials(OTHER).await;

    let pair = [("subject", ALICE.0), ("client_id", OTHER.0)];
    assert_eq!(demo.revoked_grants(&pair).await, 1);
    demo.assert_dead(OTHER, &alice_other, "alice's grant to other-client")
        .await;
    demo.assert_alive(YMX, &alice_ymx, "alice's grant to YmxD…")
        .await;
    demo.assert_alive(OTHER, &bob_other, "bob's grant to other-client")
        .await;
    demo.assert_alive(OTHER, &own, "other-client's own grant")
        .await;
    assert_eq!(demo.revoked_grants(&pair).await, 0);
    let after = demo.password(OTHER, ALICE).await;
    demo.assert_alive(
        OTHER,
        &after,
        "alice's grant to other-client made afterwards",
    )
    .await;
}

#[tokio::test]
async fn subject_and_client_revocation_refuses_that_pair_only() {
    pair_revocation(false).await;
}

#[tokio::test]
async fn subject_and_client_revocation_refuses_that_pair_only_jwt() {
    pair_revocation(true).await;
}

// ---------------------------------------------------------------------------------------
// The resource owner signs out everywhere.

async fn sign_out_everywhere(jwt: bool) {
    let demo = Demo::start(jwt).await;
    let alice_ymx = demo.password(YMX, ALICE).await;
    let alice_other = demo.password(OTHER, ALICE).await;
    let bob = demo.password(YMX, BOB).await;
    assert_eq!(demo.authorized_clients(ALICE).await, [YMX.0, OTHER.0]);

    let wrong = demo
        .http
        .delete(demo.url("/users/me/authorizations"))
        .basic_auth(ALICE.0, Some("not-her-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        demo.userinfo(&alice_ymx.access).await,
        200,
        "nothing revoked"
    );

    let reply = demo
        .http
        .delete(demo.url("/users/me/authorizations"))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);
    demo.assert_dead(YMX, &alice_ymx, "alice's grant to YmxD…")
        .await;
    demo.assert_dead(OTHER, &alice_other, "alice's grant to other-client")
        .await;
    demo.assert_alive(YMX, &bob, "bob's grant").await;
    assert!(demo.authorized_clients(ALICE).await.is_empty());
    assert_eq!(demo.authorized_clients(BOB).await, [YMX.0]);
}

#[tokio::test]
async fn the_owner_signs_out_of_every_app() {
    sign_out_everywhere(false).await;
}

#[tokio::test]
async fn the_owner_signs_out_of_every_app_jwt() {
    sign_out_everywhere(true).await;
}

// ---------------------------------------------------------------------------------------
// What the admin endpoint refuses.

async fn admin_refusals(jwt: bool) {
    let demo = Demo::start(jwt).await;
    let alice = demo.password(YMX, ALICE).await;
    let post = |auth: Option<(&'static str, &'static str)>, form: &'static [(&str, &str)]| {
        let mut request = demo.http.post(demo.url("/admin/revocations")).form(form);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };

    for client in [OTHER, YMX, ("resource-server", "rs-secret")] {
        let reply = post(Some(client), &[("subject", "alice")]).await.unwrap();
        assert!(
            matches!(reply.status().as_u16(), 401 | 403),
            "{}: {}",
            client.0,
            reply.status()
        );
    }
    let reply = post(Some((ADMIN.0, "wrong-secret")), &[("subject", "alice")])
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    assert!(reply.headers().contains_key("www-authenticate"));
    let reply = post(
        None,
        &[
            ("client_id", "admin-client"),
            ("client_secret", "admin-secret"),
            ("subject", "alice"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), 401, "Basic is the only way to authenticate");
    assert!(reply.headers().contains_key("www-authenticate"));
    assert_eq!(demo.userinfo(&alice.access).await, 200, "nothing revoked");

    for form in [&[][..], &[("subject", "")][..], &[("token", "x")][..]] {
        let reply = demo.admin(form).await;
        assert_eq!(reply.status(), 400, "{form:?}");
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    let reply = demo
        .http
        .get(demo.url("/admin/revocations?subject=alice"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "POST");

    demo.assert_alive(YMX, &alice, "alice, after every refusal")
        .await;
    assert_eq!(
        demo.revoked_grants(&[("subject", ALICE.0)]).await,
        1,
        "no refused request revoked anything"
    );
}

#[tokio::test]
async fn the_admin_endpoint_refuses_other_clients_and_bad_requests() {
    admin_refusals(false).await;
}

#[tokio::test]
async fn the_admin_endpoint_refuses_other_clients_and_bad_requests_jwt() {
    admin_refusals(true).await;
}

// ---------------------------------------------------------------------------------------
// Two nodes on one Redis.

#[cfg(feature = "redis")]
mod two_nodes {
    use super::*;
    use redis::AsyncCommands as _;
    use tower_oauth_revoke::{jose::SigningKey, jwt::jwt_key, store::TokenHash};

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    async fn redis() -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(redis_url()).ok()?;
        let connect = client.get_multiplexed_async_connection();
        let mut conn = tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .ok()?
            .ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        (pong == "PONG").then_some(conn)
    }

    /// A directory of its own, removed at the end.
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The names of one run: unique, so that runs sharing the Redis (and its default key
    /// prefix) never revoke each other's tokens.
    struct Names {
        carol: String,
        dave: String,
        app: String,
        admin: String,
    }

    const PASSWORD: &str = "correct horse";
    const SECRET: &str = "app-secret";
    const ADMIN_SECRET: &str = "admin-secret";
    /// The demo server's default key prefix.
    const TAG: &str = "{oauth-revoke}:";

    /// The store key of an access token: its hash, or for a JWT its `(iss, jti)` key.
    fn store_key(token: &str) -> String {
        use base64::Engine as _;
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(payload), Some(_)) => {
                let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .unwrap();
                let claims: Value = serde_json::from_slice(&claims).unwrap();
                jwt_key(
                    claims["iss"].as_str().unwrap(),
                    claims["jti"].as_str().unwrap(),
                )
                .to_hex()
            }
            _ => TokenHash::of(token).to_hex(),
        }
    }

    /// Deletes the keys this run wrote: the tokens it kept, the grants its users and client
    /// hold, their indexes and the cut-offs. (The access tokens that refreshing minted are
    /// not kept: they expire with `--access-token-ttl`.)
    async fn delete_keys(
        conn: &mut redis::aio::MultiplexedConnection,
        names: &Names,
        tokens: &[Tokens],
    ) {
        let mut keys: Vec<String> = Vec::new();
        for token in tokens {
            keys.push(format!("{TAG}t:{}", store_key(&token.access)));
            keys.push(format!("{TAG}t:{}", TokenHash::of(&token.refresh).to_hex()));
        }
        let sha1 = redis::Script::new("return redis.sha1hex(ARGV[1])");
        let mut indexes = Vec::new();
        for user in [&names.carol, &names.dave] {
            // An owner's index is named by the SHA-256 of the name, as a token by its hash.
            indexes.push(format!("{TAG}o:{}", TokenHash::of(user).to_hex()));
            let sha1: String = sha1.arg(user).invoke_async(conn).await.unwrap();
            keys.push(format!("{TAG}cs:{sha1}"));
        }
        let sha1: String = sha1.arg(&names.app).invoke_async(conn).await.unwrap();
        indexes.push(format!("{TAG}ci:{sha1}"));
        keys.push(format!("{TAG}cc:{sha1}"));
        for index in &indexes {
            let grants: Vec<String> = conn.zrange(index, 0, -1).await.unwrap();
            keys.extend(grants.iter().map(|g| format!("{TAG}g:{g}")));
        }
        keys.extend(indexes);
        let _: () = conn.del(keys).await.unwrap();
    }

    async fn a_subject_revoked_at_one_node_is_refused_at_the_other(jwt: bool) {
        let Some(mut conn) = redis().await else {
            common::skip_or_fail("SKIP_REDIS_TESTS", &format!("no Redis at {}", redis_url()));
            return;
        };
        let run = format!("{:016x}", rand::random::<u64>());
        let names = Names {
            carol: format!("carol-{run}"),
            dave: format!("dave-{run}"),
            app: format!("app-{run}"),
            admin: format!("admin-{run}"),
        };
        let dir = TempDir(std::env::temp_dir().join(format!("tor-bulk-{run}")));
        std::fs::create_dir_all(&dir.0).unwrap();
        let key_file = dir.0.join("signing-key.pem");
        std::fs::write(&key_file, SigningKey::generate().to_pkcs8_pem()).unwrap();
        let config_file = dir.0.join("demo.toml");
        std::fs::write(
            &config_file,
            format!(
                r#"
[[clients]]
id = "{app}"
secret = "{SECRET}"

[[clients]]
id = "{admin}"
secret = "{ADMIN_SECRET}"
admin = true

[[users]]
name = "{carol}"
password = "{PASSWORD}"

[[users]]
name = "{dave}"
password = "{PASSWORD}"
"#,
                app = names.app,
                admin = names.admin,
                carol = names.carol,
                dave = names.dave,
            ),
        )
        .unwrap();
        let issuer = format!("http://bulk-{run}.test");
        let url = redis_url();
        let args = [
            "--redis",
            &url,
            "--signing-key",
            key_file.to_str().unwrap(),
            "--config",
            config_file.to_str().unwrap(),
            "--issuer",
            &issuer,
            "--access-token-ttl",
            "120",
        ];
        let a = Demo::start_with(jwt, &args).await;
        let b = Demo::start_with(jwt, &args).await;
        let app = (names.app.as_str(), SECRET);
        let carol = (names.carol.as_str(), PASSWORD);
        let dave = (names.dave.as_str(), PASSWORD);

        let carols = a.password(app, carol).await;
        let daves = a.password(app, dave).await;
        assert_eq!(a.userinfo(&carols.access).await, 200);
        assert_eq!(b.userinfo(&carols.access).await, 200, "one store, one key");

        let reply = b
            .http
            .post(b.url("/admin/revocations"))
            .basic_auth(&names.admin, Some(ADMIN_SECRET))
            .form(&[("subject", &names.carol)])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let body: Value = reply.json().await.unwrap();
        // The names are this run's own: the count is exact.
        assert_eq!(body["revoked_grants"], 1);
        // At once: no polling, no event to wait for.
        a.assert_dead(app, &carols, "carol's grant, at the node that issued it")
            .await;
        assert_eq!(b.userinfo(&carols.access).await, 401);
        a.assert_alive(app, &daves, "dave's grant").await;

        let after_a = a.password(app, carol).await;
        let after_b = b.password(app, carol).await;
        for (node, name) in [(&a, "a"), (&b, "b")] {
            for tokens in [&after_a, &after_b] {
                assert_eq!(
                    node.userinfo(&tokens.access).await,
                    200,
                    "carol's token issued after the cut-off, at node {name}"
                );
            }
        }
        b.assert_alive(app, &after_a, "carol's new grant from a, at b")
            .await;

        drop((a, b));
        delete_keys(&mut conn, &names, &[carols, daves, after_a, after_b]).await;
    }

    #[tokio::test]
    async fn a_subject_revoked_at_one_node_is_refused_at_the_other_at_once() {
        a_subject_revoked_at_one_node_is_refused_at_the_other(false).await;
    }

    #[tokio::test]
    async fn a_subject_revoked_at_one_node_is_refused_at_the_other_at_once_jwt() {
        a_subject_revoked_at_one_node_is_refused_at_the_other(true).await;
    }
}
