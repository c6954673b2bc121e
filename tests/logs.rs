//! Log hygiene: a full run over HTTP (issuance, revocation, the bearer guard, bad
//! credentials, rate limiting and the usual errors) logged at TRACE never shows a token, a
//! secret or an `Authorization` value, while the request events still carry the client id,
//! the outcome and the latency.
//!
//! Two runs: the crate's layers in-process with a `tracing_subscriber` writing into a
//! buffer, and the demo server binary with `RUST_LOG=trace`, reading its stderr.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{body::Body, Router};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, Layer, ServiceBuilder};
use tower_http::{timeout::RequestBodyDeadlineLayer, trace::TraceLayer};
use tower_oauth_revoke::{
    body,
    client_auth::{
        AuthFailureLimiter, AuthenticatedClient, Client, ClientAuthLayer, MemoryClientRegistry,
    },
    form::{FormLayer, FormParams},
    guard::BearerGuardLayer,
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};
use tracing::Level;

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The ways a secret could show up in a log: as sent, form-urlencoded, inside a Basic
/// header's base64, or as the base64 of the bare `id:secret`.
fn leak_forms(id: &str, secret: &str) -> Vec<String> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = common::basic(id, secret);
    vec![
        secret.to_owned(),
        enc(secret),
        basic.trim_start_matches("Basic ").to_owned(),
        STANDARD.encode(format!("{id}:{secret}")),
        basic,
    ]
}

fn assert_no_leaks(logs: &str, secrets: &[String], what: &str) {
    assert!(!logs.is_empty(), "{what}: nothing was logged");
    for secret in secrets {
        assert!(!secret.is_empty());
        if let Some(at) = logs.find(secret.as_str()) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!(
                "{what}: {secret:?} was logged:\n{}",
                &logs[line_start..line_end]
            );
        }
    }
}

const APP: &str = "app";
const APP_SECRET: &str = "s3cret-app-7Qx9:+ &z";
const OTHER: &str = "other";
const OTHER_SECRET: &str = "s3cret-other-Lm4w";

/// A host app built from the crate's layers: token issuance, revocation, a guarded
/// resource, with the host's own request tracing (method and path only).
fn app(store: MemoryStore) -> Router {
    let registry = MemoryClientRegistry::new([
        Client::confidential(APP, APP_SECRET),
        Client::confidential(OTHER, OTHER_SECRET),
        Client::public("spa"),
    ]);
    let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
    let revoke = RevocationEndpoint::builder(registry.clone(), store.clone())
        .limit_failures(limiter.clone())
        .build()
        .unwrap();
    let issuing_store = store.clone();
    let token = ServiceBuilder::new()
        .layer(FormLayer::new())
        .layer(ClientAuthLayer::new(registry).limit_failures(limiter))
        .service(service_fn(move |req: Request<body::Body>| {
            let store = issuing_store.clone();
            async move {
                let client = req
                    .extensions()
                    .get::<AuthenticatedClient>()
                    .unwrap()
                    .clone();
                let params = req.extensions().get::<FormParams>().unwrap();
                let owner = params.get("username").map(str::to_owned);
                let token = format!("tok-{:032x}", rand::random::<u128>());
                let mut record = TokenRecord::new(
                    TokenKind::AccessToken,
                    client.id(),
                    GrantId::random(),
                    SystemTime::now() + Duration::from_secs(600),
                );
                record.owner = owner.map(Into::into);
                store.issue(TokenHash::of(&token), record).await.unwrap();
                let body = serde_json::json!({"access_token": token, "token_type": "Bearer"});
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
            }
        }));
    let userinfo = BearerGuardLayer::new(store).layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    }));
    Router::new()
        .route_service("/oauth2/revoke", revoke)
        .route_service("/oauth2/token", token)
        .route_service("/userinfo", userinfo)
        .layer(RequestBodyDeadlineLayer::new(Duration::from_secs(10)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
}

async fn get_token(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> String {
    let reply = common::post_form(addr, "/oauth2/token", headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

async fn userinfo(addr: SocketAddr, authorization: &str) -> StatusCode {
    let req = Request::get(format!("http://{addr}/userinfo"))
        .header("authorization", authorization)
        .body(Full::default())
        .unwrap();
    common::send(req).await.status
}

#[tokio::test]
async fn a_full_run_at_trace_logs_no_token_or_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let store = MemoryStore::new();
    let addr = common::serve(app(store.clone())).await;
    let app_basic = common::basic(APP, APP_SECRET);
    let mut secrets = leak_forms(APP, APP_SECRET);
    secrets.extend(leak_forms(OTHER, OTHER_SECRET));
    let mut tokens = Vec::new();

    // Issuance by Basic, by client_secret_post, by a public client.
    let by_basic = get_token(
        addr,
        &[("authorization", &app_basic)],
        "grant_type=client_credentials",
    )
    .await;
    let post_body = format!(
        "grant_type=client_credentials&client_id={OTHER}&client_secret={}",
        form_urlencoded::byte_serialize(OTHER_SECRET.as_bytes()).collect::<String>()
    );
    let by_post = get_token(addr, &[], &post_body).await;
    let public = get_token(
        addr,
        &[],
        "grant_type=password&client_id=spa&username=alice",
    )
    .await;
    tokens.extend([by_basic.clone(), by_post.clone(), public.clone()]);

    // The guard admits, revocation answers 200, the guard refuses.
    assert_eq!(userinfo(addr, &format!("Bearer {by_basic}")).await, 200);
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &app_basic)],
        &format!("token={by_basic}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(userinfo(addr, &format!("Bearer {by_basic}")).await, 401);
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[],
        &format!(
            "client_id={OTHER}&client_secret={}&token={by_post}",
            form_urlencoded::byte_serialize(OTHER_SECRET.as_bytes()).collect::<String>()
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[],
        &format!("client_id=spa&token={public}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Another client's token.
    let foreign = get_token(
        addr,
        &[("authorization", &common::basic(OTHER, OTHER_SECRET))],
        "grant_type=client_credentials",
    )
    .await;
    tokens.push(foreign.clone());
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &app_basic)],
        &format!("token={foreign}"),
    )
    .await;
    assert_eq!(reply.error(), "invalid_grant");

    // Bad credentials, then the limiter.
    let wrong: Vec<String> = (0..4).map(|i| format!("wrong-secret-{i}-Zk8p")).collect();
    for w in &wrong {
        secrets.extend(leak_forms(APP, w));
        let reply = common::post_form(
            addr,
            "/oauth2/revoke",
            &[("authorization", &common::basic(APP, w))],
            &format!("token={foreign}"),
        )
        .await;
        assert!(
            matches!(reply.status.as_u16(), 401 | 429),
            "{}",
            reply.status
        );
    }
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &app_basic)],
        &format!("token={foreign}"),
    )
    .await;
    assert_eq!(reply.status, 429);
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[],
        &format!("client_id={OTHER}&client_secret=wrong-post-secret-Yh2&token={foreign}"),
    )
    .await;
    assert_eq!(reply.status, 401);
    secrets.push("wrong-post-secret-Yh2".to_owned());
    let no_colon = format!("Basic {}", STANDARD.encode("no-colon-credential-Pq5"));
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &no_colon)],
        "token=x",
    )
    .await;
    assert_eq!(reply.status, 401);
    secrets.push(STANDARD.encode("no-colon-credential-Pq5"));
    let unknown = common::basic("unknown-client", "unknown-secret-Wc3");
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &unknown)],
        "token=x",
    )
    .await;
    assert_eq!(reply.status, 401);
    secrets.extend(leak_forms("unknown-client", "unknown-secret-Wc3"));

    // The usual errors, each carrying a token somewhere.
    let other_basic = common::basic(OTHER, OTHER_SECRET);
    let live = get_token(
        addr,
        &[("authorization", &other_basic)],
        "grant_type=client_credentials",
    )
    .await;
    tokens.push(live.clone());
    for (headers, body, status) in [
        (
            vec![("authorization", other_basic.as_str())],
            "token_type_hint=access_token".to_owned(),
            400,
        ),
        (
            vec![("authorization", other_basic.as_str())],
            format!("token={live}&token={live}"),
            400,
        ),
        (
            vec![("authorization", other_basic.as_str())],
            format!("token={live}&x=%zz{live}"),
            400,
        ),
        (
            vec![("authorization", other_basic.as_str())],
            format!("token={live}&pad={}", "p".repeat(9000)),
            413,
        ),
        (
            vec![("authorization", other_basic.as_str())],
            format!("token={live}&client_secret={OTHER_SECRET}"),
            400,
        ),
    ] {
        let reply = common::post_form(addr, "/oauth2/revoke", &headers, &body).await;
        assert_eq!(reply.status, status, "{body:.60}: {}", reply.body);
    }
    let req = Request::post(format!("http://{addr}/oauth2/revoke?token={live}"))
        .header("content-type", "application/json")
        .header("authorization", &other_basic)
        .body(Full::new(Bytes::from(format!("{{\"token\":\"{live}\"}}"))))
        .unwrap();
    assert_eq!(common::send(req).await.status, 400);
    let req = Request::get(format!("http://{addr}/oauth2/revoke?token={live}"))
        .header("authorization", &other_basic)
        .body(Full::default())
        .unwrap();
    assert_eq!(common::send(req).await.status, 405);
    assert_eq!(userinfo(addr, &format!("Bearer {live}!")).await, 400);
    assert_eq!(userinfo(addr, &format!("Bearer {by_post}")).await, 401);
    assert_eq!(userinfo(addr, &format!("Bearer {live}")).await, 200);

    let logs = captured.text();
    let mut forbidden = secrets;
    forbidden.extend(tokens);
    assert_no_leaks(&logs, &forbidden, "in-process");

    // The request events are there, with who, what and how long.
    let revocations: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("token revocation"))
        .collect();
    assert!(revocations.len() >= 4, "{logs}");
    assert!(
        revocations.iter().any(|l| l.contains("client_id=app")
            && l.contains("outcome=\"revoked\"")
            && l.contains("latency_us=")),
        "{revocations:#?}"
    );
    assert!(
        revocations
            .iter()
            .any(|l| l.contains("outcome=\"foreign_token\"")),
        "{revocations:#?}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("client authentication failed")
                && l.contains("client_id=app")
                && l.contains("latency_us=")),
        "{logs}"
    );
    assert!(logs.lines().any(|l| l.contains("rate_limited")), "{logs}");
    assert!(
        logs.lines().any(|l| l.contains("latency=")),
        "the host's request tracing ran"
    );
}

/// Revokes by JSON-P `GET` (the token in the query string) through `app`, logging at TRACE
/// into a subscriber of this thread only, and returns what was logged.
async fn jsonp_get_logged(app: Router, token: &str) -> String {
    jsonp_get_logged_at(app, token, Level::TRACE).await
}

/// As [`jsonp_get_logged`], with the subscriber's maximum level `level` and any service.
async fn jsonp_get_logged_at<S, B>(app: S, token: &str, level: Level) -> String
where
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime): the server's tasks log
    // into this subscriber, and no other test's.
    let _guard = tracing::subscriber::set_default(subscriber);
    let addr = common::serve(app).await;
    let req = Request::get(format!(
        "http://{addr}/oauth2/revoke?token={token}&client_id=spa&callback=app.done"
    ))
    .body(Full::default())
    .unwrap();
    let reply = common::send(req).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, "/**/app.done();");
    captured.text()
}

/// The endpoint as the README mounts it: JSON-P on, under `tower_oauth_revoke::trace::layer()`.
fn jsonp_app(store: MemoryStore) -> RevocationEndpoint<MemoryClientRegistry, MemoryStore> {
    RevocationEndpoint::builder(MemoryClientRegistry::new([Client::public("spa")]), store)
        .jsonp(true)
        .build()
        .unwrap()
}

/// A fresh access token of the public client `spa` in `store`, for ten minutes.
async fn issue_spa_token(store: &MemoryStore) -> String {
    let token = format!("jsonp-{:032x}", rand::random::<u128>());
    let record = TokenRecord::new(
        TokenKind::AccessToken,
        "spa",
        GrantId::random(),
        SystemTime::now() + Duration::from_secs(600),
    );
    store.issue(TokenHash::of(&token), record).await.unwrap();
    token
}

#[tokio::test]
async fn the_trace_layer_the_readme_mounts_logs_no_token_from_a_jsonp_get() {
    let store = MemoryStore::new();
    let token = issue_spa_token(&store).await;
    let app = Router::new()
        .route_service("/oauth2/revoke", jsonp_app(store.clone()))
        .layer(tower_oauth_revoke::trace::layer());
    let logs = jsonp_get_logged(app, &token).await;
    assert!(
        logs.contains("path=/oauth2/revoke"),
        "the span records the path:\n{logs}"
    );
    assert_no_leaks(&logs, std::slice::from_ref(&token), "trace::layer()");
    assert!(store
        .inspect(&TokenHash::of(&token))
        .await
        .unwrap()
        .is_none());

    // The control: tower-http's default span logs the URI, token and all. Without it this
    // test could pass by logging nothing.
    let token = issue_spa_token(&store).await;
    let app = Router::new()
        .route_service("/oauth2/revoke", jsonp_app(store))
        .layer(TraceLayer::new_for_http());
    let logs = jsonp_get_logged(app, &token).await;
    assert!(
        logs.contains(&token),
        "tower-http's default span was expected to log the query:\n{logs}"
    );
}

/// The crate's request log, mounted outside the router as its docs say: one line per
/// request with the method, the path (never the query, which holds the token of a JSON-P
/// `GET`), the client, the status and the outcome; nothing at all when INFO is off.
#[tokio::test]
async fn the_request_log_layer_writes_one_line_a_request_and_no_token() {
    use tower_oauth_revoke::trace::RequestLogLayer;

    let store = MemoryStore::new();
    let annotated = |store: MemoryStore| {
        let endpoint =
            RevocationEndpoint::builder(MemoryClientRegistry::new([Client::public("spa")]), store)
                .jsonp(true)
                .annotate_responses(true)
                .log_outcomes(false)
                .build()
                .unwrap();
        ServiceBuilder::new()
            .layer(RequestLogLayer::new())
            .service(Router::new().route_service("/oauth2/revoke", endpoint))
    };

    let token = issue_spa_token(&store).await;
    let logs = jsonp_get_logged_at(annotated(store.clone()), &token, Level::TRACE).await;
    assert_no_leaks(&logs, std::slice::from_ref(&token), "RequestLogLayer");
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" request ") && l.contains("latency_us="))
        .collect();
    assert_eq!(lines.len(), 1, "one request line:\n{logs}");
    for field in [
        "method=GET",
        "path=/oauth2/revoke ",
        "client_id=spa",
        "status=200",
        "outcome=\"revoked\"",
    ] {
        assert!(lines[0].contains(field), "{field} in {}", lines[0]);
    }
    assert!(
        !logs
            .lines()
            .any(|l| l.contains(" INFO ") && l.contains("token revocation")),
        "the endpoint's own outcome event is down at DEBUG:\n{logs}"
    );

    // At WARN the layer writes nothing (and the revocation still happens).
    let token = issue_spa_token(&store).await;
    let logs = jsonp_get_logged_at(annotated(store.clone()), &token, Level::WARN).await;
    assert!(!logs.contains(" request "), "{logs}");
    assert!(store
        .inspect(&TokenHash::of(&token))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_limiter_warns_once_when_requests_carry_no_address() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
    let peer = tower_oauth_revoke::client_auth::RemoteAddr("127.0.0.1:1".parse().unwrap());
    limiter.begin(APP, Some(peer)).unwrap().failed();
    assert_eq!(captured.text(), "", "an address was given");
    for _ in 0..3 {
        limiter.record_failure(APP, None);
    }
    let logs = captured.text();
    assert_eq!(
        logs.matches("carries no RemoteAddr").count(),
        1,
        "one warning:\n{logs}"
    );
    assert!(logs.contains("WARN"), "{logs}");
}

// ---------------------------------------------------------------------------------------
// The demo server binary.

const DEMO_ID: &str = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a";
const DEMO_SECRET: &str = "FJdj7G956wqKw3d4X0BWONMIu00a";
const DEMO_PREISSUED: &str = "f4839307-c5a3-3d09-8452-af56b0d70491";

#[tokio::test]
async fn the_demo_server_logs_no_token_or_secret_at_trace() {
    let binary = tokio::task::spawn_blocking(common::demo_server_binary)
        .await
        .unwrap();
    let mut command = Command::new(&binary);
    command
        .args(["--plain", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace");
    let server = common::LoggedServer::start(command).await;
    let addr = server.addr;

    let basic = common::basic(DEMO_ID, DEMO_SECRET);
    let mut forbidden = leak_forms(DEMO_ID, DEMO_SECRET);
    forbidden.extend(leak_forms("other-client", "other-secret"));
    forbidden.extend(leak_forms("alice", "alice-password"));
    forbidden.push(DEMO_PREISSUED.to_owned());

    // Issue by Basic and by the password grant of the public client.
    let reply = common::post_form(
        addr,
        "/oauth2/token",
        &[("authorization", &basic)],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let reply = common::post_form(
        addr,
        "/oauth2/token",
        &[],
        "grant_type=password&client_id=spa-client&username=alice&password=alice-password",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let alice_access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let alice_refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let reply = common::post_form(
        addr,
        "/oauth2/token",
        &[("authorization", &basic)],
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let refreshed = reply.json()["access_token"].as_str().unwrap().to_owned();
    forbidden.extend([
        access.clone(),
        refresh.clone(),
        alice_access.clone(),
        alice_refresh.clone(),
        refreshed.clone(),
    ]);

    // The guard, revocation, the guard again.
    assert_eq!(userinfo(addr, &format!("Bearer {access}")).await, 200);
    for (headers, body) in [
        (
            vec![("authorization", basic.as_str())],
            format!("token={access}&token_type_hint=access_token"),
        ),
        (
            vec![("authorization", basic.as_str())],
            format!("token={DEMO_PREISSUED}"),
        ),
        (
            vec![],
            format!("client_id=other-client&client_secret=other-secret&token={refreshed}"),
        ),
        (
            vec![],
            format!("client_id=spa-client&token={alice_refresh}"),
        ),
    ] {
        let reply = common::post_form(addr, "/oauth2/revoke", &headers, &body).await;
        assert!(matches!(reply.status.as_u16(), 200 | 400), "{}", reply.body);
    }
    assert_eq!(userinfo(addr, &format!("Bearer {access}")).await, 401);
    assert_eq!(
        userinfo(addr, &format!("Bearer {alice_access}")).await,
        401,
        "revoking the refresh token revoked its grant"
    );

    // The resource owner's API, by Basic.
    let alice = common::basic("alice", "alice-password");
    let req = Request::get(format!("http://{addr}/users/me/authorizations"))
        .header("authorization", &alice)
        .body(Full::default())
        .unwrap();
    assert_eq!(common::send(req).await.status, 200);
    let req = Request::delete(format!("http://{addr}/users/me/authorizations/spa-client"))
        .header("authorization", &alice)
        .body(Full::default())
        .unwrap();
    assert_eq!(common::send(req).await.status, 204);
    let wrong_owner = common::basic("alice", "not-alices-password-Tt6");
    forbidden.extend(leak_forms("alice", "not-alices-password-Tt6"));
    let req = Request::get(format!("http://{addr}/users/me/authorizations"))
        .header("authorization", &wrong_owner)
        .body(Full::default())
        .unwrap();
    assert_eq!(common::send(req).await.status, 401);

    // Bad client credentials until the limiter answers 429.
    let mut limited = false;
    for i in 0..25 {
        let wrong = format!("wrong-demo-secret-{i}-Jr5");
        forbidden.extend(leak_forms(DEMO_ID, &wrong));
        let reply = common::post_form(
            addr,
            "/oauth2/revoke",
            &[("authorization", &common::basic(DEMO_ID, &wrong))],
            &format!("token={refreshed}"),
        )
        .await;
        match reply.status.as_u16() {
            401 => {}
            429 => limited = true,
            other => panic!("{other}: {}", reply.body),
        }
    }
    assert!(limited, "20 failures a minute are allowed, then 429");

    // The usual errors.
    let other = common::basic("other-client", "other-secret");
    for (body, status) in [
        ("token_type_hint=access_token".to_owned(), 400),
        (format!("token={refreshed}&token={refreshed}"), 400),
        (format!("token={refreshed}&pad={}", "p".repeat(9000)), 413),
    ] {
        let reply =
            common::post_form(addr, "/oauth2/revoke", &[("authorization", &other)], &body).await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
    assert_eq!(userinfo(addr, &format!("Bearer {refreshed}!")).await, 400);

    // Stop it cleanly and read everything it logged.
    let (status, logs) = server.stop().await;
    assert!(
        status.success(),
        "the demo server exits 0 on SIGTERM: {status}"
    );

    assert_no_leaks(&logs, &forbidden, "demo server");
    let requests: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" request") && l.contains("latency_us="))
        .collect();
    assert!(requests.len() >= 20, "one event per request:\n{logs}");
    assert!(
        requests
            .iter()
            .any(|l| l.contains(&format!("client_id={DEMO_ID}"))
                && l.contains("outcome=\"revoked\"")),
        "{requests:#?}"
    );
}

/// Hostile values in every field a request controls (client ids by Basic and in the body,
/// user names, the owner API's path) never forge or break a log line of the demo server
/// at TRACE: every line is one event, and no control character, line or paragraph
/// separator reaches the log raw.
#[tokio::test]
async fn hostile_values_cannot_forge_log_lines() {
    let binary = tokio::task::spawn_blocking(common::demo_server_binary)
        .await
        .unwrap();
    let mut command = Command::new(&binary);
    command
        .args(["--plain", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace");
    let server = common::LoggedServer::start(command).await;
    let addr = server.addr;

    let hostile = [
        "app\nFORGED level=ERROR",
        "app\r\nFORGED",
        "x\u{1b}[31mFORGED",
        "nul\0FORGED",
        "sep\u{2028}FORGED\u{2029}",
        "quote\"FORGED\\",
    ];
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let alice = common::basic("alice", "alice-password");
    for value in hostile {
        // A client id by Basic, in the body (confidential and public forms), and a user name.
        let basic = common::basic(value, "wrong");
        common::post_form(
            addr,
            "/oauth2/revoke",
            &[("authorization", &basic)],
            "token=t",
        )
        .await;
        let body = format!("client_id={}&client_secret=x&token=t", enc(value));
        common::post_form(addr, "/oauth2/revoke", &[], &body).await;
        let body = format!("client_id={}&token=t", enc(value));
        common::post_form(addr, "/oauth2/revoke", &[], &body).await;
        let body = format!(
            "grant_type=password&client_id=spa-client&username={}&password=x",
            enc(value)
        );
        common::post_form(addr, "/oauth2/token", &[], &body).await;
        // A client id in the owner API's path, for an authenticated owner.
        let path = format!(
            "/users/me/authorizations/{}",
            enc(value).replace('+', "%20")
        );
        let request = Request::delete(format!("http://{addr}{path}"))
            .header("authorization", &alice)
            .body(Full::default())
            .unwrap();
        common::send(request).await;
    }

    let (_, logs) = server.stop().await;
    assert!(
        logs.contains("resource owner revoked"),
        "the owner events ran:\n{logs}"
    );
    for line in logs.lines() {
        assert!(
            line.starts_with("20") || line.starts_with("\u{1b}["),
            "a line that is no event (forged or broken): {line:?}"
        );
        assert!(
            !line.contains("\nFORGED") && !line.starts_with("FORGED"),
            "{line:?}"
        );
        let raw: Vec<char> = line
            .chars()
            .filter(|c| (c.is_control() && *c != '\t') || matches!(c, '\u{2028}' | '\u{2029}'))
            .collect();
        assert!(raw.is_empty(), "raw {raw:?} in the log line {line:?}");
    }
}
