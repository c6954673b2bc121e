//! End-to-end: the demo server binary, driven by real clients (the `oauth2` crate over
//! reqwest with rustls, and the `curl` binary) over HTTPS on loopback.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use oauth2::{
    basic::BasicClient, AuthUrl, ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword,
    ResourceOwnerUsername, RevocationUrl, StandardRevocableToken, TokenResponse, TokenUrl,
};

/// A running demo server; killed when dropped.
struct Demo {
    child: Child,
    base: String,
    port: u16,
    cert: Option<String>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tor-demo-{:x}", rand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

fn server_binary() -> PathBuf {
    // Integration tests live in target/<profile>/deps; examples in target/<profile>/examples.
    // `cargo test` builds the examples; a filtered run (`--test demo_server`) may not, so
    // build it once here, in the same profile.
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "--example", "server"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            if cfg!(feature = "redis") {
                cmd.args(["--features", "redis"]);
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "cannot build the server example");
            let path = profile_dir.join("examples").join("server");
            assert!(path.exists(), "{}", path.display());
            path
        })
        .clone()
}

impl Demo {
    fn start(extra: &[&str], config: Option<&str>) -> Self {
        let dir = TempDir::new();
        let cert_path = dir.0.join("cert.pem");
        let mut cmd = Command::new(server_binary());
        cmd.args(["--listen", "127.0.0.1:0", "--cert-out"])
            .arg(&cert_path)
            .args(extra);
        if let Some(text) = config {
            let path = dir.0.join("demo.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the server prints a line").unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let tls = url.starts_with("https://");
        let base = if tls {
            format!("https://localhost:{port}")
        } else {
            url.to_owned()
        };
        let cert = tls.then(|| std::fs::read_to_string(&cert_path).unwrap());
        Self {
            child,
            base,
            port,
            cert,
            _dir: dir,
        }
    }

    fn http(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.cert {
            builder = builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn oauth_client(
        &self,
        id: &str,
        secret: Option<&str>,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
        oauth2::EndpointSet,
    > {
        let mut client = BasicClient::new(ClientId::new(id.to_owned()))
            .set_auth_uri(AuthUrl::new(self.url("/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(self.url("/oauth2/token")).unwrap())
            .set_revocation_url(RevocationUrl::new(self.url("/oauth2/revoke")).unwrap());
        if let Some(secret) = secret {
            client = client.set_client_secret(ClientSecret::new(secret.to_owned()));
        }
        client
    }

    async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http()
            .get(self.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    fn curl(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["-sS", "-i", "--cacert"];
        let cert_file = self._dir.0.join("cert.pem");
        let cert_arg = cert_file.to_str().unwrap().to_owned();
        all.push(&cert_arg);
        all.extend_from_slice(args);
        let out = Command::new("curl").args(&all).output().expect("curl runs");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.to_owned(), body.to_owned())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const APP: &str = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a";
const APP_SECRET: &str = "FJdj7G956wqKw3d4X0BWONMIu00a";
const SAMPLE_TOKEN: &str = "f4839307-c5a3-3d09-8452-af56b0d70491";

#[tokio::test]
async fn oauth2_client_credentials_token_is_refused_once_revoked() {
    let demo = Demo::start(&[], None);
    let client = demo.oauth_client(APP, Some(APP_SECRET));
    let http = demo.http();
    let token = client
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert!(access.len() >= 22, "at least 128 bits of randomness");

    let reply = demo.userinfo(&access).await;
    assert_eq!(reply.status(), 200);
    let info: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(info["client_id"], APP);

    client
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let reply = demo.userinfo(&access).await;
    assert_eq!(reply.status(), 401);
    let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn oauth2_refresh_token_revocation_kills_the_grant() {
    let demo = Demo::start(&[], None);
    let client = demo.oauth_client("other-client", Some("other-secret"));
    let http = demo.http();
    let token = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("alice-password".into()),
        )
        .request_async(&http)
        .await
        .unwrap();
    let refresh = token.refresh_token().unwrap().clone();
    let first = token.access_token().secret().clone();
    let info: serde_json::Value = demo.userinfo(&first).await.json().await.unwrap();
    assert_eq!(info["sub"], "alice");

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    let second = refreshed.access_token().secret().clone();
    assert_ne!(first, second);
    assert_eq!(demo.userinfo(&second).await.status(), 200);

    client
        .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        demo.userinfo(&first).await.status(),
        401,
        "the grant's access tokens die with it"
    );
    assert_eq!(demo.userinfo(&second).await.status(), 401);

    let err = client
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
}

#[tokio::test]
async fn credentials_that_need_urlencoding_work_through_oauth2() {
    let config = r#"
[[clients]]
id = "my client"
secret = "s3cr:t+ &x"

[[users]]
name = "alice"
password = "alice-password"
"#;
    let demo = Demo::start(&[], Some(config));
    let client = demo.oauth_client("my client", Some("s3cr:t+ &x"));
    let http = demo.http();
    let token = client
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    client
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        demo.userinfo(token.access_token().secret()).await.status(),
        401
    );

    // The built-in sample clients are gone with a config file.
    let other = demo.oauth_client(APP, Some(APP_SECRET));
    assert!(other
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .is_err());
}

#[tokio::test]
async fn wso2_guide_curl_request_works_verbatim() {
    let demo = Demo::start(&[], None);
    assert_eq!(demo.userinfo(SAMPLE_TOKEN).await.status(), 200);
    let url = demo.url("/oauth2/revoke");
    let (head, body) = demo.curl(&[
        "-X",
        "POST",
        "--basic",
        "-u",
        &format!("{APP}:{APP_SECRET}"),
        "-H",
        "Content-Type: application/x-www-form-urlencoded;charset=UTF-8",
        "-d",
        &format!("token={SAMPLE_TOKEN}&token_type_hint=access_token"),
        &url,
    ]);
    assert!(
        head.starts_with("HTTP/") && head.lines().next().unwrap().contains(" 200"),
        "{head}"
    );
    assert_eq!(body, "");
    assert_eq!(demo.userinfo(SAMPLE_TOKEN).await.status(), 401);

    // A wrong secret, as curl sends it.
    let (head, body) = demo.curl(&[
        "-X",
        "POST",
        "--basic",
        "-u",
        &format!("{APP}:wrong"),
        "-d",
        "token=x",
        &url,
    ]);
    assert!(head.lines().next().unwrap().contains(" 401"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{head}"
    );
    assert!(body.contains("invalid_client"));
}

#[tokio::test]
async fn wso2_guide_jsonp_request_works_verbatim() {
    let demo = Demo::start(&[], None);
    let url = demo.url("/oauth2/revoke");
    let (head, body) = demo.curl(&[
        "-X",
        "POST",
        "--basic",
        "-u",
        &format!("{APP}:{APP_SECRET}"),
        "-H",
        "Content-Type: application/x-www-form-urlencoded;charset=UTF-8",
        "-d",
        &format!("token={SAMPLE_TOKEN}&token_type_hint=access_token&callback=package.myCallback"),
        &url,
    ]);
    assert!(head.lines().next().unwrap().contains(" 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/javascript"),
        "{head}"
    );
    assert_eq!(body, "/**/package.myCallback();");
    assert_eq!(demo.userinfo(SAMPLE_TOKEN).await.status(), 401);

    // An error reaches the callback too, with status 200 so that a browser runs it.
    let (head, body) = demo.curl(&[
        "-X",
        "POST",
        "--basic",
        "-u",
        &format!("{APP}:wrong"),
        "-d",
        "token=x&callback=package.myCallback",
        &url,
    ]);
    assert!(head.lines().next().unwrap().contains(" 200"), "{head}");
    assert!(
        body.starts_with("/**/package.myCallback({") && body.contains("invalid_client"),
        "{body}"
    );

    // GET is accepted only with a callback.
    let (head, body) = demo.curl(&[&format!("{url}?token=x&client_id=spa-client&callback=cb")]);
    assert!(head.lines().next().unwrap().contains(" 200"), "{head}");
    assert_eq!(body, "/**/cb();");
    let (head, _) = demo.curl(&[&format!("{url}?token=x&client_id=spa-client")]);
    assert!(head.lines().next().unwrap().contains(" 405"), "{head}");
}

#[tokio::test]
async fn cors_origins_from_the_command_line() {
    let demo = Demo::start(&["--plain", "--cors-origin", "http://127.0.0.1:8765"], None);
    let http = demo.http();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, demo.url("/oauth2/revoke"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let reply = preflight("http://127.0.0.1:8765").await.unwrap();
    assert!(reply.status().is_success());
    assert_eq!(
        reply.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8765"
    );
    let reply = preflight("http://127.0.0.1:9999").await.unwrap();
    assert!(!reply.headers().contains_key("access-control-allow-origin"));

    let reply = http
        .post(demo.url("/oauth2/revoke"))
        .header("origin", "http://127.0.0.1:9999")
        .form(&[("client_id", "spa-client"), ("token", SAMPLE_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        400,
        "a disallowed origin is refused before revoking"
    );
    assert_eq!(demo.userinfo(SAMPLE_TOKEN).await.status(), 200);
}

#[test]
fn bad_cors_origin_is_a_clear_error() {
    let out = Command::new(server_binary())
        .args([
            "--plain",
            "--listen",
            "127.0.0.1:0",
            "--cors-origin",
            "https://x.com/path",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cors-origin") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[tokio::test]
async fn resource_owner_lists_and_revokes_an_apps_access() {
    let demo = Demo::start(&["--plain"], None);
    assert!(demo.base.starts_with("http://127.0.0.1:"), "{}", demo.base);
    let http = demo.http();
    let app = demo.oauth_client(APP, Some(APP_SECRET));
    let spa = demo
        .oauth_client("spa-client", None)
        .set_auth_type(oauth2::AuthType::RequestBody);
    let user = ResourceOwnerUsername::new("alice".into());
    let pass = ResourceOwnerPassword::new("alice-password".into());
    let app_token = app
        .exchange_password(&user, &pass)
        .request_async(&http)
        .await
        .unwrap();
    let spa_token = spa
        .exchange_password(&user, &pass)
        .request_async(&http)
        .await
        .unwrap();

    let list: serde_json::Value = http
        .get(demo.url("/users/me/authorizations"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![APP, "spa-client"], "{list}");

    let reply = http
        .get(demo.url("/users/me/authorizations"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);

    let reply = http
        .delete(demo.url(&format!("/users/me/authorizations/{APP}")))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);
    assert_eq!(
        demo.userinfo(app_token.access_token().secret())
            .await
            .status(),
        401
    );
    assert_eq!(
        demo.userinfo(spa_token.access_token().secret())
            .await
            .status(),
        200,
        "other apps keep their grants"
    );
    let err = app
        .exchange_refresh_token(app_token.refresh_token().unwrap())
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"));
}

#[tokio::test]
async fn failed_authentications_are_limited() {
    let demo = Demo::start(&["--plain"], None);
    let http = demo.http();
    let mut last = None;
    for _ in 0..21 {
        let reply = http
            .post(demo.url("/oauth2/revoke"))
            .basic_auth("other-client", Some("wrong"))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        last = Some(reply);
    }
    let reply = last.unwrap();
    assert_eq!(reply.status(), 429);
    assert!(reply.headers().contains_key("retry-after"));
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    std::fs::write(&path, "[[clients]]\nid = \"a\"\nsecret = 3\n").unwrap();
    let out = Command::new(server_binary())
        .args(["--plain", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn stops_cleanly_on_sigterm() {
    let mut demo = Demo::start(&["--plain"], None);
    let _ = demo.port;
    let status = Command::new("kill")
        .args(["-TERM", &demo.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two demo servers sharing one Redis: revoked on one node is refused on both at once.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_nodes_share_revocation_through_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = std::net::TcpStream::connect_timeout(
        &url.trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .expect("REDIS_URL is redis://IP:PORT"),
        Duration::from_secs(1),
    )
    .is_ok();
    if !reachable {
        common::skip_or_fail("SKIP_REDIS_TESTS", &format!("no Redis at {url}"));
        return;
    }
    let one = Demo::start(&["--redis", &url], None);
    let two = Demo::start(&["--redis", &url], None);
    let http = one.http();
    let token = one
        .oauth_client(APP, Some(APP_SECRET))
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert_eq!(one.userinfo(&access).await.status(), 200);
    assert_eq!(
        two.userinfo(&access).await.status(),
        200,
        "issued on one, known on two"
    );

    two.oauth_client(APP, Some(APP_SECRET))
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .unwrap()
        .request_async(&two.http())
        .await
        .unwrap();
    assert_eq!(two.userinfo(&access).await.status(), 401);
    assert_eq!(
        one.userinfo(&access).await.status(),
        401,
        "revoked on two, refused on one"
    );
}

/// Two demo servers sharing one PostgreSQL database (a scratch one, dropped at the end):
/// revoked on one node is refused on both at once.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn two_nodes_share_revocation_through_postgres() {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let db = format!("tor_demo_{:016x}", rand::random::<u64>());
    let created = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            &server,
            "-c",
            &format!("CREATE DATABASE {db}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        common::skip_or_fail("SKIP_POSTGRES_TESTS", &format!("no PostgreSQL at {server}"));
        return;
    }
    struct ScratchDatabase(String, String);
    impl Drop for ScratchDatabase {
        fn drop(&mut self) {
            let _ = std::process::Command::new("psql")
                .args(["-X", "-q", "-d", &self.0, "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.1))
                .status();
        }
    }
    let _scratch = ScratchDatabase(server.clone(), db.clone());
    let url = format!("{base}/{db}");
    let one = Demo::start(&["--postgres", &url], None);
    let two = Demo::start(&["--postgres", &url], None);
    let http = one.http();
    let token = one
        .oauth_client(APP, Some(APP_SECRET))
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert_eq!(one.userinfo(&access).await.status(), 200);
    assert_eq!(
        two.userinfo(&access).await.status(),
        200,
        "issued on one, known on two"
    );
    two.oauth_client(APP, Some(APP_SECRET))
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .unwrap()
        .request_async(&two.http())
        .await
        .unwrap();
    assert_eq!(two.userinfo(&access).await.status(), 401);
    assert_eq!(
        one.userinfo(&access).await.status(),
        401,
        "revoked on two, refused on one"
    );
    drop((one, two));
}

#[tokio::test]
async fn resource_owner_password_guessing_is_limited() {
    let demo = Demo::start(&["--plain"], None);
    let http = demo.http();
    let mut last = None;
    for i in 0..21 {
        let reply = http
            .get(demo.url("/users/me/authorizations"))
            .basic_auth("alice", Some(format!("guess-{i}")))
            .send()
            .await
            .unwrap();
        last = Some(reply.status());
        if i < 20 {
            assert_eq!(reply.status(), 401);
        } else {
            assert_eq!(reply.status(), 429);
            assert!(reply.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(last, Some(reqwest::StatusCode::TOO_MANY_REQUESTS));
    // The password grant shares the same budget for this user and address.
    let reply = http
        .post(demo.url("/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password"),
            ("client_id", "spa-client"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 429);
}

#[tokio::test]
async fn token_endpoint_answers_cors_preflights() {
    let demo = Demo::start(&["--plain", "--cors-origin", "http://127.0.0.1:8765"], None);
    let reply = demo
        .http()
        .request(reqwest::Method::OPTIONS, demo.url("/oauth2/token"))
        .header("origin", "http://127.0.0.1:8765")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success());
    assert_eq!(
        reply.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8765"
    );
}

/// The configuration format as the README and `--help` document it: each example, as
/// written, starts the server with its client, user and pre-issued token.
#[tokio::test]
async fn the_documented_config_examples_are_what_the_server_reads() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = &readme[readme
        .find("### Configuration file (`--config`)")
        .expect("the README documents --config")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let from_readme = section[start..start + section[start..].find("```").unwrap()].to_owned();

    let help = Command::new(server_binary())
        .arg("--help")
        .output()
        .expect("--help runs");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let block = &help[help
        .find("CONFIGURATION")
        .expect("--help documents --config")..];
    let block = &block[block.find('\n').unwrap() + 1..block.find("Unknown keys").unwrap()];

    for (source, config) in [("README", from_readme.as_str()), ("--help", block)] {
        let demo = Demo::start(&[], Some(config));
        // The pre-issued token, of the configured client, for alice.
        let reply = demo.userinfo("f4839307-c5a3-3d09-8452-af56b0d70491").await;
        assert_eq!(reply.status(), 200, "{source}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["sub"], "alice", "{source}");
        assert_eq!(body["client_id"], "my client", "{source}");
        // The client authenticates with its secret, the user with her password.
        let token = demo
            .oauth_client("my client", Some("s3cr:t+ &x"))
            .exchange_password(
                &oauth2::ResourceOwnerUsername::new("alice".into()),
                &oauth2::ResourceOwnerPassword::new("alice-password".into()),
            )
            .request_async(&demo.http())
            .await
            .unwrap_or_else(|e| panic!("{source}: {e:?}"));
        assert_eq!(
            demo.userinfo(token.access_token().secret()).await.status(),
            200,
            "{source}"
        );
    }
}

/// What a page on another site can make a visitor's browser send to the demo, 25 times
/// each (more than the 20 failures a minute the limiters allow), leaves the user, the SPA
/// and the confidential client at that address served.
#[tokio::test]
async fn a_hostile_page_cannot_lock_out_users_or_clients() {
    let demo = Demo::start(&[], None);
    let http = demo.http();
    let evil = "https://evil.example";
    for i in 0..25 {
        // The owner API and the password grant, cross-site, with wrong passwords.
        let reply = http
            .get(demo.url("/users/me/authorizations"))
            .header("origin", evil)
            .basic_auth("alice", Some(format!("guess-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "owner API from {evil}");
        let reply = http
            .post(demo.url("/oauth2/token"))
            .header("origin", evil)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa-client"),
                ("username", "alice"),
                ("password", &format!("guess-{i}")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "token endpoint from {evil}");
        // A JSONP <script> naming the confidential client, without a secret.
        let reply = http
            .get(demo.url(&format!(
                "/oauth2/revoke?token=t&client_id={APP}&callback=cb"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "JSONP answers 200");
        let body = reply.text().await.unwrap();
        assert!(body.contains("invalid_client"), "{body}");
        // The SPA with a secret it does not have.
        let reply = http
            .post(demo.url("/oauth2/revoke"))
            .form(&[
                ("client_id", "spa-client"),
                ("client_secret", "x"),
                ("token", "t"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401);
    }
    // All still served at that address.
    let reply = http
        .get(demo.url("/users/me/authorizations"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "alice");
    let reply = http
        .post(demo.url("/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa-client"),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "the SPA's password grant");
    let reply = http
        .post(demo.url("/oauth2/revoke"))
        .basic_auth(APP, Some(APP_SECRET))
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "the confidential client");
}

/// The demo's introspection endpoint, metadata, new clients and user, and its `--issuer`
/// and `--access-token-ttl` flags.
#[tokio::test]
async fn introspection_and_metadata_as_the_demo_serves_them() {
    let demo = Demo::start(
        &[
            "--issuer",
            "https://issuer.example",
            "--access-token-ttl",
            "120",
        ],
        None,
    );
    let http = demo.http();
    let metadata: serde_json::Value = http
        .get(demo.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "https://issuer.example");
    for (name, path) in [
        ("token_endpoint", "/oauth2/token"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(metadata[name], format!("https://issuer.example{path}"));
    }
    assert_eq!(
        metadata["introspection_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );

    // bob's token for another-client, with the configured lifetime.
    let token: serde_json::Value = http
        .post(demo.url("/oauth2/token"))
        .basic_auth("other-client", Some("other-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 120);
    let access = token["access_token"].as_str().unwrap();
    let introspect = |id: &'static str, secret: &'static str| {
        http.post(demo.url("/oauth2/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", access)])
            .send()
    };
    let answer: serde_json::Value = introspect("resource-server", "rs-secret")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "bob");
    assert_eq!(answer["client_id"], "other-client");
    assert_eq!(answer["iss"], "https://issuer.example");
    let (iat, exp) = (
        answer["iat"].as_u64().unwrap(),
        answer["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 120, "iat and exp span the configured lifetime");
    // Another confidential client (the admin one included) sees nothing.
    let answer = introspect("admin-client", "admin-secret")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer, r#"{"active":false}"#);
}
