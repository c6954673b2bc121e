//! Client authentication by `private_key_jwt` (RFC 7523) on the demo server over HTTPS:
//! with stock clients (openid-client 6 on Node.js, Authlib on Python) at the token,
//! introspection and revocation endpoints, and with forged or misused assertions made by
//! hand, each refused with `invalid_client` and changing nothing.
//!
//! openid-client comes from npm and Authlib from PyPI (`.ci/fapi.sh` installs both);
//! `SKIP_FAPI_TESTS=1` skips the tests that need them when they are missing, anything else
//! makes them fail.

#![cfg(all(feature = "jwt", feature = "serve"))]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::{demo_server_binary, Process};
use serde_json::{json, Value};
use tower_oauth_revoke::{client_auth::JWT_BEARER, jose::SigningKey};

const CLIENT: &str = "fapi-client";
const KID: &str = "fapi-client-1";
const RS: (&str, &str) = ("resource-server", "rs-secret");

fn fapi_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fapi")
}

fn client_key() -> SigningKey {
    let pem = std::fs::read_to_string(fapi_dir().join("demo-client-key.pem")).unwrap();
    SigningKey::from_pkcs8_pem(&pem).unwrap().with_kid(KID)
}

/// The demo over HTTPS, its certificate, and a client that trusts it.
struct Demo {
    _process: Process,
    base: String,
    /// The issuer identifier: the base URL unless `--issuer` set another.
    issuer: String,
    cert: PathBuf,
    http: reqwest::Client,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert);
    }
}

impl Demo {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// The demo with more arguments (`--redis URL`, say).
    fn start_with(more: &[&str]) -> Self {
        let cert = std::env::temp_dir().join(format!(
            "tor-fapi-{}-{:x}.pem",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--cert-out",
            cert.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        let process = Process::start(&demo_server_binary(), &args);
        assert!(process.url.starts_with("https://"), "{}", process.url);
        let pem = std::fs::read(&cert).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .no_proxy()
            .build()
            .unwrap();
        let base = process.url.trim_end_matches('/').to_owned();
        let issuer = match more.iter().position(|a| *a == "--issuer") {
            Some(i) => more[i + 1].to_owned(),
            None => base.clone(),
        };
        Self {
            base,
            issuer,
            _process: process,
            cert,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The demo with `clients` (TOML, `JWKS` standing for the demo client's public keys)
    /// and the resource server, as its whole configuration.
    fn with_keyed_clients(clients: &str) -> Self {
        let jwks = std::fs::read_to_string(fapi_dir().join("demo-client-jwks.json")).unwrap();
        let config = std::env::temp_dir().join(format!(
            "tor-fapi-{}-{:x}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        let text = format!(
            "{}\n[[clients]]\nid = \"resource-server\"\nsecret = \"rs-secret\"\nintrospect = true\n",
            clients.replace("JWKS", jwks.trim())
        );
        std::fs::write(&config, text).unwrap();
        let demo = Self::start_with(&["--config", config.to_str().unwrap()]);
        let _ = std::fs::remove_file(&config);
        demo
    }

    /// An assertion of the demo's `fapi-client`, with `edit` applied to its claims.
    fn assertion(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        self.assertion_of(CLIENT, edit)
    }

    /// An assertion of `client`, signed with the demo client's key.
    fn assertion_of(
        &self,
        client: &str,
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({
            "iss": client, "sub": client, "aud": self.issuer,
            "iat": now, "exp": now + 60,
            "jti": format!("{:032x}", rand::random::<u128>()),
        });
        edit(claims.as_object_mut().unwrap());
        client_key().sign("JWT", &claims).unwrap()
    }

    /// POSTs `form` with `assertion` as the client's authentication.
    async fn post(&self, path: &str, assertion: &str, form: &[(&str, &str)]) -> (u16, Value, bool) {
        let mut form = form.to_vec();
        form.push(("client_assertion_type", JWT_BEARER));
        form.push(("client_assertion", assertion));
        let response = self
            .http
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenged = response.headers().contains_key("www-authenticate");
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body, challenged)
    }

    /// A token of `fapi-client` by client_credentials.
    async fn token(&self) -> String {
        let (status, body, _) = self
            .post(
                "/oauth2/token",
                &self.assertion(|_| {}),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Whether the resource server sees `token` as active.
    async fn active(&self, token: &str) -> bool {
        let body: Value = self
            .http
            .post(self.url("/oauth2/introspect"))
            .basic_auth(RS.0, Some(RS.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["active"] == true
    }

    /// Runs a client script with the demo's issuer, the client's key and a CA to trust.
    fn script(&self, program: &str, script: &str, env: &[(&str, &str)]) -> Value {
        let output = Command::new(program)
            .arg(fapi_dir().join(script))
            .current_dir(fapi_dir())
            .env("ISSUER", &self.base)
            .env("CLIENT_ID", CLIENT)
            .env("KID", KID)
            .env("KEY_FILE", fapi_dir().join("demo-client-key.pem"))
            .env("CA_FILE", &self.cert)
            .env("NODE_EXTRA_CA_CERTS", &self.cert)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{script} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
    }
}

fn available(program: &str, args: &[&str], what: &str) -> bool {
    let found = Command::new(program)
        .args(args)
        .current_dir(fapi_dir())
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        common::skip_or_fail("SKIP_FAPI_TESTS", &format!("{what} (bash .ci/fapi.sh)"));
    }
    found
}

#[tokio::test]
async fn openid_client_authenticates_with_private_key_jwt_everywhere() {
    if !available(
        "node",
        &["-e", "import('openid-client')"],
        "node cannot import openid-client",
    ) {
        return;
    }
    // Opaque access tokens, then JWTs (RFC 9068) whose binding is in their claims.
    for args in [&[][..], &["--jwt"][..]] {
        let demo = Demo::start_with(args);
        let seen = demo.script("node", "openid_client.mjs", &[("DPOP", "1")]);
        openid_client_saw(&seen, args);
    }
}

fn openid_client_saw(seen: &Value, args: &[&str]) {
    let metadata = &seen["metadata"];
    let dpop_algs = metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(dpop_algs.contains(&json!("ES256")), "{metadata}");
    for endpoint in ["token", "revocation", "introspection"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{endpoint}: {methods}"
        );
        let algs = &metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
        let algs = algs.as_array().unwrap();
        assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("PS256")));
        assert!(!algs
            .iter()
            .any(|a| a == "none" || a.as_str().unwrap().starts_with("HS")));
    }
    let bearer = &seen["bearer"];
    assert_eq!(bearer["token_type"], "bearer", "{bearer}");
    assert_eq!(bearer["introspected"]["active"], true, "{bearer}");
    assert_eq!(bearer["introspected"]["client_id"], CLIENT);
    assert_eq!(bearer["userinfo"]["status"], 200, "{bearer}");
    assert_eq!(bearer["userinfo"]["body"]["client_id"], CLIENT);
    let after = &bearer["after_revocation"];
    assert_eq!(after["introspected"], json!({"active": false}), "{after}");
    assert_eq!(after["userinfo"]["status"], 401, "{after}");

    let dpop = &seen["dpop"];
    assert_eq!(dpop["token_type"], "dpop", "{args:?}: {dpop}");
    let introspected = &dpop["introspected"];
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["token_type"], "DPoP", "{introspected}");
    assert_eq!(
        introspected["cnf"]["jkt"].as_str().map(str::len),
        Some(43),
        "{introspected}"
    );
    assert_eq!(dpop["with_proof"]["status"], 200, "{args:?}: {dpop}");
    assert_eq!(dpop["without_proof"]["status"], 401, "{args:?}: {dpop}");
    assert_eq!(dpop["other_key"]["status"], 401, "{args:?}: {dpop}");
    assert_eq!(dpop["after_revocation"]["status"], 401, "{args:?}: {dpop}");
}

#[tokio::test]
async fn authlib_authenticates_with_private_key_jwt() {
    if !available(
        "python3",
        &["-c", "import authlib"],
        "python3 cannot import authlib",
    ) {
        return;
    }
    let demo = Demo::start();
    let seen = demo.script("python3", "authlib_client.py", &[]);
    assert_eq!(seen["token_type"], "Bearer", "{seen}");
    assert_eq!(seen["introspected"]["active"], true, "{seen}");
    assert_eq!(seen["revoked"], 200, "{seen}");
    assert_eq!(seen["after_revocation"], json!({"active": false}), "{seen}");
    assert_eq!(seen["userinfo_after_revocation"], 401, "{seen}");
}

#[tokio::test]
async fn forged_and_misused_assertions_are_refused_and_change_nothing() {
    let demo = Demo::start();
    let token = demo.token().await;
    let revoke = |assertion: String| {
        let demo = &demo;
        let token = token.clone();
        async move {
            demo.post("/oauth2/revoke", &assertion, &[("token", token.as_str())])
                .await
        }
    };

    // A good assertion, replayed.
    let once = demo.assertion(|_| {});
    let (status, body, _) = demo
        .post("/oauth2/introspect", &once, &[("token", token.as_str())])
        .await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");

    // Another P-256 key under the client's kid.
    let other = SigningKey::from_pkcs8_pem(
        &p256::SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .to_sec1_pem(Default::default())
            .unwrap(),
    )
    .unwrap()
    .with_kid(KID);
    let unregistered = {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        other
            .sign(
                "JWT",
                &json!({"iss": CLIENT, "sub": CLIENT, "aud": demo.base, "exp": now + 60, "jti": "u"}),
            )
            .unwrap()
    };
    let payload = demo.assertion(|_| {});
    let payload = payload.split('.').nth(1).unwrap().to_owned();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": KID}).to_string())
    );
    let hs256 = {
        let jwks: Value = serde_json::from_str(
            &std::fs::read_to_string(fapi_dir().join("demo-client-jwks.json")).unwrap(),
        )
        .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwks["keys"][0].to_string().as_bytes())
                .unwrap(),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("a replayed assertion", once),
        (
            "another audience",
            demo.assertion(|c| {
                c.insert("aud".into(), json!("https://other.example"));
            }),
        ),
        (
            "expired",
            demo.assertion(|c| {
                c.insert("exp".into(), json!(1_000_000_000));
            }),
        ),
        (
            "another client's name",
            demo.assertion(|c| {
                c.insert("iss".into(), json!("other-client"));
            }),
        ),
        ("a key not registered", unregistered),
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
    ];
    for (case, assertion) in cases {
        let (status, body, challenged) = revoke(assertion).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        assert!(challenged, "{case}: a 401 carries WWW-Authenticate");
        assert!(demo.active(&token).await, "{case}: nothing was revoked");
    }

    // Two methods at once, and an unknown assertion type.
    let response = demo
        .http
        .post(demo.url("/oauth2/revoke"))
        .basic_auth(RS.0, Some(RS.1))
        .form(&[
            ("token", token.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &demo.assertion(|_| {})),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = demo
        .http
        .post(demo.url("/oauth2/revoke"))
        .form(&[
            ("token", token.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", "PHNhbWw+"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(demo.active(&token).await, "nothing was revoked");

    // And the genuine article revokes.
    let (status, body, _) = revoke(demo.assertion(|_| {})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!demo.active(&token).await);
}

/// An assertion taken by one node is refused by every other node of the same store.
async fn an_assertion_is_single_use_across_two_servers(store: &[&str]) {
    // Two nodes of one authorization server: one issuer, one store.
    let mut args = vec!["--issuer", "https://as.test"];
    args.extend_from_slice(store);
    let (a, b) = (Demo::start_with(&args), Demo::start_with(&args));
    let assertion = a.assertion(|_| {});
    let grant = [("grant_type", "client_credentials")];
    let (status, body, _) = a.post("/oauth2/token", &assertion, &grant).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = b.post("/oauth2/token", &assertion, &grant).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{body}"
    );
    let (status, _, _) = a.post("/oauth2/token", &assertion, &grant).await;
    assert_eq!(status, 401, "nor again at the first");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn an_assertion_is_single_use_across_two_servers_on_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url.as_str()).unwrap();
    if client.get_multiplexed_async_connection().await.is_err() {
        return common::skip_or_fail("SKIP_REDIS_TESTS", &format!("no Redis at {url}"));
    }
    let prefix = format!("tor-test-fapi-{:016x}", rand::random::<u64>());
    an_assertion_is_single_use_across_two_servers(&[
        "--redis",
        &url,
        "--redis-key-prefix",
        &prefix,
    ])
    .await;
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn an_assertion_is_single_use_across_two_servers_on_postgres() {
    let Some(database) = common::Database::create("tor_fapi") else {
        return common::skip_or_fail("SKIP_POSTGRES_TESTS", "no PostgreSQL answers");
    };
    an_assertion_is_single_use_across_two_servers(&["--postgres", &database.url()]).await;
}

#[tokio::test]
async fn dpop_proofs_that_do_not_fit_are_refused() {
    use http::Method;
    use tower_oauth_revoke::dpop;

    let demo = Demo::start();
    let key = SigningKey::generate();
    let token_url = demo.url("/oauth2/token");
    let userinfo = demo.url("/userinfo");
    // A proof for another URL at the token endpoint: 400 invalid_dpop_proof, no token.
    let wrong = dpop::proof(&key, &Method::POST, &userinfo, None).unwrap();
    let response = demo
        .http
        .post(&token_url)
        .header("dpop", &wrong)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &demo.assertion(|_| {})),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(body.get("access_token").is_none());

    // A bound token.
    let proof = dpop::proof(&key, &Method::POST, &token_url, None).unwrap();
    let response = demo
        .http
        .post(&token_url)
        .header("dpop", &proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &demo.assertion(|_| {})),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let get = |scheme: &'static str, proof: Option<String>| {
        let request = demo
            .http
            .get(&userinfo)
            .header("authorization", format!("{scheme} {token}"));
        let request = match proof {
            Some(proof) => request.header("dpop", proof),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (response.status().as_u16(), challenge)
        }
    };
    let good = dpop::proof(&key, &Method::GET, &userinfo, Some(&token)).unwrap();
    assert_eq!(get("DPoP", Some(good.clone())).await.0, 200);
    let other = SigningKey::generate();
    let cases = [
        ("a replayed proof", "DPoP", Some(good), "invalid_dpop_proof"),
        ("no proof", "DPoP", None, "invalid_dpop_proof"),
        (
            "the Bearer scheme",
            "Bearer",
            Some(dpop::proof(&key, &Method::GET, &userinfo, Some(&token)).unwrap()),
            "invalid_token",
        ),
        (
            "another method",
            "DPoP",
            Some(dpop::proof(&key, &Method::POST, &userinfo, Some(&token)).unwrap()),
            "invalid_dpop_proof",
        ),
        (
            "another URL",
            "DPoP",
            Some(dpop::proof(&key, &Method::GET, &token_url, Some(&token)).unwrap()),
            "invalid_dpop_proof",
        ),
        (
            "another token's hash",
            "DPoP",
            Some(dpop::proof(&key, &Method::GET, &userinfo, Some("other")).unwrap()),
            "invalid_dpop_proof",
        ),
        (
            "another key",
            "DPoP",
            Some(dpop::proof(&other, &Method::GET, &userinfo, Some(&token)).unwrap()),
            "invalid_token",
        ),
    ];
    for (case, scheme, proof, error) in cases {
        let (status, challenge) = get(scheme, proof).await;
        assert_eq!(status, 401, "{case}");
        assert!(challenge.contains(error), "{case}: {challenge}");
    }
    // The token was never spent: a fresh proof of its key still works.
    let fresh = dpop::proof(&key, &Method::GET, &userinfo, Some(&token)).unwrap();
    assert_eq!(get("DPoP", Some(fresh)).await.0, 200);
}

#[tokio::test]
async fn a_public_client_revokes_a_dpop_bound_token_only_with_a_proof_of_its_key() {
    use http::Method;
    use tower_oauth_revoke::dpop;

    let demo = Demo::start();
    let key = SigningKey::generate();
    let (token_url, revoke_url) = (demo.url("/oauth2/token"), demo.url("/oauth2/revoke"));
    // The browser app's token, bound to its key by the proof at the token endpoint.
    let body: Value = demo
        .http
        .post(&token_url)
        .header(
            "dpop",
            dpop::proof(&key, &Method::POST, &token_url, None).unwrap(),
        )
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa-client"),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let revoke = |proof: Option<String>| {
        let request = demo
            .http
            .post(&revoke_url)
            .form(&[("client_id", "spa-client"), ("token", token.as_str())]);
        let request = match proof {
            Some(proof) => request.header("dpop", proof),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let other = SigningKey::generate();
    for (case, proof) in [
        ("no proof", None),
        (
            "another key's proof",
            Some(dpop::proof(&other, &Method::POST, &revoke_url, None).unwrap()),
        ),
        (
            "a proof for another URL",
            Some(dpop::proof(&key, &Method::POST, &token_url, None).unwrap()),
        ),
    ] {
        let (status, body) = revoke(proof).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_dpop_proof")),
            "{case}: {body}"
        );
        assert!(demo.active(&token).await, "{case}: nothing was revoked");
    }
    let (status, body) = revoke(Some(
        dpop::proof(&key, &Method::POST, &revoke_url, None).unwrap(),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!demo.active(&token).await);
}

/// A client registered by `jwks_uri`: its keys are fetched once, and again when it signs
/// with a key the set does not hold (it rotated), but not within the minimum interval of
/// the last fetch (5 s by default); a key it dropped no longer verifies once refetched.
#[tokio::test]
async fn a_jwks_uri_is_cached_and_fetched_again_when_the_client_rotates_its_key() {
    // Within the interval (an hour here, so that a slow machine cannot outlast it), a
    // rotation right after a fetch is refused unfetched.
    assert_eq!(
        jwks_uri_rotation(std::time::Duration::from_secs(3600)).await,
        [1, 1, 1, 1]
    );
    // With no minimum interval, the rotation is fetched at once (and so is every unknown
    // or failing key after it).
    assert_eq!(
        jwks_uri_rotation(std::time::Duration::ZERO).await,
        [1, 2, 3, 3]
    );
}

/// Signs with the first key twice, rotates to the second, then signs with the second, the
/// first, the second: each status as the interval allows; the fetch count after each step.
async fn jwks_uri_rotation(interval: std::time::Duration) -> Vec<usize> {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    };
    use tower_oauth_revoke::{
        client_auth::{Client, ClientAssertions, ClientKeys, MemoryClientRegistry},
        endpoint::Endpoint,
        introspect::Introspector,
        jose::RemoteKeySet,
        store::MemoryStore,
    };

    let first = SigningKey::generate().with_kid("k1");
    let second = SigningKey::generate().with_kid("k2");
    let published = Arc::new(Mutex::new(first.jwks()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks = {
        let (published, fetches) = (published.clone(), fetches.clone());
        tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
            fetches.fetch_add(1, Ordering::SeqCst);
            let body = published.lock().unwrap().clone();
            async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from(body),
                )))
            }
        })
    };
    let jwks_addr = common::serve(jwks).await;
    let keys = RemoteKeySet::new(&format!("http://{jwks_addr}/jwks.json"), None)
        .unwrap()
        .min_refetch_interval(interval);
    let store = MemoryStore::new();
    let issuer = "https://as.test";
    let endpoint = Endpoint::with_step(
        MemoryClientRegistry::new([Client::private_key_jwt("app", ClientKeys::remote(keys))]),
        Introspector::new(store.clone()),
    )
    .client_assertions(ClientAssertions::new(issuer, store))
    .build()
    .unwrap();
    let addr = common::serve(endpoint).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let introspect = |key: &SigningKey| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let assertion = key
            .sign(
                "JWT",
                &json!({"iss": "app", "sub": "app", "aud": issuer, "exp": now + 60,
                        "jti": format!("{:032x}", rand::random::<u128>())}),
            )
            .unwrap();
        let request = http.post(format!("http://{addr}/introspect")).form(&[
            ("token", "anything"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    assert_eq!(introspect(&first).await, 200);
    assert_eq!(introspect(&first).await, 200);
    let mut fetched = vec![fetches.load(Ordering::SeqCst)];
    // The client rotates: its new kid is unknown, so the set is fetched again if allowed.
    *published.lock().unwrap() = second.jwks();
    let refetching = interval.is_zero();
    let new_key = if refetching { 200 } else { 401 };
    assert_eq!(introspect(&second).await, new_key, "the new key");
    fetched.push(fetches.load(Ordering::SeqCst));
    // The dropped key verifies only while the old set is still held.
    let old_key = if refetching { 401 } else { 200 };
    assert_eq!(introspect(&first).await, old_key, "the dropped key");
    fetched.push(fetches.load(Ordering::SeqCst));
    assert_eq!(introspect(&second).await, new_key, "the new key again");
    fetched.push(fetches.load(Ordering::SeqCst));
    fetched
}

#[tokio::test]
async fn an_admin_client_revokes_in_bulk_with_private_key_jwt() {
    let demo = Demo::with_keyed_clients(
        "[[clients]]\nid = \"keyed-admin\"\nadmin = true\njwks = 'JWKS'\n\n\
         [[clients]]\nid = \"keyed-app\"\njwks = 'JWKS'\n\n\
         [[clients]]\nid = \"app\"\nsecret = \"app-secret\"\n",
    );
    let body: Value = demo
        .http
        .post(demo.url("/oauth2/token"))
        .basic_auth("app", Some("app-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    // A client with keys but no admin right: 403; an admin's replayed assertion: 401.
    let scope = [("client_id", "app")];
    let (status, body, _) = demo
        .post(
            "/admin/revocations",
            &demo.assertion_of("keyed-app", |_| {}),
            &scope,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let once = demo.assertion_of("keyed-admin", |_| {});
    let (status, body, _) = demo
        .post("/admin/revocations", &once, &[("client_id", "nobody")])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, challenged) = demo.post("/admin/revocations", &once, &scope).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("invalid_client")),
        "{body}"
    );
    assert!(challenged);
    assert!(demo.active(&token).await, "nothing was revoked");

    // The admin's fresh assertion revokes every grant of `app`; `client_id` is the scope.
    let (status, body, _) = demo
        .post(
            "/admin/revocations",
            &demo.assertion_of("keyed-admin", |_| {}),
            &scope,
        )
        .await;
    assert_eq!(
        (status, &body["revoked_grants"]),
        (200, &json!(1)),
        "{body}"
    );
    assert!(!demo.active(&token).await);
}

/// A receiver with keys gets an access token by `private_key_jwt` and polls the events
/// (RFC 8936) and reads the snapshot with it; a revoked token, or one of a client without
/// the introspection right, is refused.
#[tokio::test]
async fn a_keyed_receiver_polls_with_an_access_token_it_got_by_private_key_jwt() {
    let demo = Demo::with_keyed_clients(
        "[[clients]]\nid = \"keyed-rs\"\nintrospect = true\njwks = 'JWKS'\n\n\
         [[clients]]\nid = \"keyed-app\"\njwks = 'JWKS'\n",
    );
    let token_of = |client: &'static str| {
        let demo = &demo;
        async move {
            let (status, body, _) = demo
                .post(
                    "/oauth2/token",
                    &demo.assertion_of(client, |_| {}),
                    &[("grant_type", "client_credentials")],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let poll = |token: String| {
        let request = demo
            .http
            .post(demo.url("/oauth2/events"))
            .bearer_auth(token)
            .json(&json!({"returnImmediately": true}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let snapshot = |token: String| {
        let request = demo
            .http
            .get(demo.url("/oauth2/events/snapshot"))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let receiver = token_of("keyed-rs").await;
    assert_eq!(poll(receiver.clone()).await, 200);
    assert_eq!(snapshot(receiver.clone()).await, 200);
    let app = token_of("keyed-app").await;
    assert_eq!(poll(app.clone()).await, 403, "no introspection right");
    assert_eq!(poll("not-a-token".into()).await, 401);
    // The receiver's token revoked: refused at once.
    let (status, _, _) = demo
        .post(
            "/oauth2/revoke",
            &demo.assertion_of("keyed-rs", |_| {}),
            &[("token", receiver.as_str())],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(poll(receiver.clone()).await, 401);
    assert_eq!(snapshot(receiver).await, 401);
}
