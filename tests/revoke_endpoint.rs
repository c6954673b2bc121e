//! End-to-end: the revocation endpoint over real HTTP on loopback, one test per rule.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use common::{basic, post_form, send, DownStore, Reply};
use http::Request;
use http_body_util::Full;
use tower_oauth_revoke::{
    client_auth::{Client, ClientAuthMethod, MemoryClientRegistry},
    revoke::{ForeignTokenResponse, RevocationPolicy},
    store::{GrantId, MemoryStore, RevocationScope, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([
        Client::confidential("app", "app-secret"),
        Client::confidential("other-app", "other-secret"),
        Client::confidential("my client", "s3cr:t+ &x"),
        Client::confidential("basic-only", "b-secret")
            .with_auth_methods([ClientAuthMethod::ClientSecretBasic]),
        Client::public("spa"),
        Client::public("other-spa"),
    ])
}

async fn start_with(store: MemoryStore, policy: RevocationPolicy) -> SocketAddr {
    let endpoint = RevocationEndpoint::builder(registry(), store)
        .realm("test-realm")
        .policy(policy)
        .build()
        .unwrap();
    common::serve(endpoint).await
}

async fn start(store: MemoryStore) -> SocketAddr {
    start_with(store, RevocationPolicy::default()).await
}

fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

/// Issues an access and a refresh token of one grant to `client`.
async fn grant(store: &MemoryStore, client: &str, name: &str) -> (String, String) {
    let grant = GrantId::random();
    let (access, refresh) = (format!("{name}-access"), format!("{name}-refresh"));
    store
        .issue(
            TokenHash::of(&refresh),
            TokenRecord::new(TokenKind::RefreshToken, client, grant, later()),
        )
        .await
        .unwrap();
    store
        .issue(
            TokenHash::of(&access),
            TokenRecord::new(TokenKind::AccessToken, client, grant, later()),
        )
        .await
        .unwrap();
    (access, refresh)
}

async fn active(store: &MemoryStore, token: &str) -> bool {
    store
        .inspect(&TokenHash::of(token))
        .await
        .unwrap()
        .is_some()
}

async fn revoke_basic(addr: SocketAddr, id: &str, secret: &str, body: &str) -> Reply {
    post_form(addr, "/", &[("authorization", &basic(id, secret))], body).await
}

fn assert_no_store(reply: &Reply) {
    assert_eq!(reply.headers["cache-control"], "no-store", "{reply:?}");
    assert_eq!(reply.headers["pragma"], "no-cache", "{reply:?}");
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.error(), code, "{reply:?}");
    assert!(reply.json()["error_description"].is_string());
    assert_no_store(reply);
}

#[tokio::test]
async fn wso2_guide_request_revokes_the_token() {
    let store = MemoryStore::new();
    let (access, _) = grant(&store, "app", "wso2").await;
    let addr = start(store.clone()).await;
    let reply = post_form(
        addr,
        "/oauth2/revoke",
        &[
            ("authorization", &basic("app", "app-secret")),
            (
                "content-type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            ),
        ],
        &format!("token={access}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "", "success has an empty body");
    assert_no_store(&reply);
    assert!(
        !active(&store, &access).await,
        "a 200 means the token is no longer usable"
    );
}

#[tokio::test]
async fn only_post_is_allowed() {
    let addr = start(MemoryStore::new()).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let reply = send(
            Request::builder()
                .method(method)
                .uri(format!("http://{addr}/?token=x"))
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.headers["allow"], "POST");
        assert_no_store(&reply);
    }
}

#[tokio::test]
async fn content_type_must_be_form() {
    let addr = start(MemoryStore::new()).await;
    for ct in [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let reply = post_form(
            addr,
            "/",
            &[
                ("content-type", ct),
                ("authorization", &basic("app", "app-secret")),
            ],
            "token=x",
        )
        .await;
        assert_error(&reply, 400, "invalid_request");
    }
    // No content type at all.
    let reply = send(
        Request::post(format!("http://{addr}/"))
            .header("authorization", basic("app", "app-secret"))
            .body(Full::from("token=x"))
            .unwrap(),
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
    // A charset parameter is fine, in any case.
    let reply = post_form(
        addr,
        "/",
        &[
            (
                "content-type",
                "Application/X-WWW-Form-Urlencoded; Charset=utf-8",
            ),
            ("authorization", &basic("app", "app-secret")),
        ],
        "token=x",
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let addr = start(MemoryStore::new()).await;
    let big = format!("token={}", "a".repeat(9 * 1024));
    let reply = revoke_basic(addr, "app", "app-secret", &big).await;
    assert_error(&reply, 413, "invalid_request");
}

#[tokio::test]
async fn malformed_forms_are_400_naming_the_parameter() {
    let addr = start(MemoryStore::new()).await;
    for (body, name) in [
        ("token=a&token=b", "token"),
        (
            "token=a&token_type_hint=x&token_type_hint=y",
            "token_type_hint",
        ),
        ("token=%zz", "token"),
        ("token=%E2%82", "token"),
    ] {
        let reply = revoke_basic(addr, "app", "app-secret", body).await;
        assert_error(&reply, 400, "invalid_request");
        assert!(
            reply.body.contains(&format!("`{name}`")),
            "{body}: {}",
            reply.body
        );
    }
    let reply = send(
        Request::post(format!("http://{addr}/"))
            .header(FORM.0, FORM.1)
            .header("authorization", basic("app", "app-secret"))
            .body(Full::from(&b"token=\xff\xfe"[..]))
            .unwrap(),
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
}

#[tokio::test]
async fn token_is_required() {
    let addr = start(MemoryStore::new()).await;
    for body in ["", "token=", "token_type_hint=access_token"] {
        let reply = revoke_basic(addr, "app", "app-secret", body).await;
        assert_error(&reply, 400, "invalid_request");
    }
}

#[tokio::test]
async fn token_in_the_query_string_of_a_post_is_never_read() {
    let store = MemoryStore::new();
    let (access, _) = grant(&store, "app", "query").await;
    let addr = start(store.clone()).await;
    let reply = post_form(
        addr,
        &format!("/?token={access}&client_id=app&client_secret=app-secret"),
        &[("authorization", &basic("app", "app-secret"))],
        "",
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
    let reply = post_form(
        addr,
        "/?client_id=app&client_secret=app-secret",
        &[],
        &format!("token={access}"),
    )
    .await;
    assert_error(&reply, 401, "invalid_client");
    assert!(active(&store, &access).await);
}

#[tokio::test]
async fn unknown_expired_and_revoked_tokens_get_200() {
    let store = MemoryStore::new();
    store
        .issue(
            TokenHash::of("expired"),
            TokenRecord::new(
                TokenKind::AccessToken,
                "app",
                GrantId::random(),
                SystemTime::now() - Duration::from_secs(5),
            ),
        )
        .await
        .unwrap();
    let (access, _) = grant(&store, "app", "twice").await;
    let addr = start(store.clone()).await;
    for token in ["never-issued", "expired", &access, &access] {
        let reply = revoke_basic(addr, "app", "app-secret", &format!("token={token}")).await;
        assert_eq!(reply.status, 200, "{token}");
        assert_eq!(reply.body, "");
    }
}

#[tokio::test]
async fn hint_orders_but_never_limits_the_search() {
    let store = MemoryStore::new();
    let (a1, r1) = grant(&store, "app", "h1").await;
    let (a2, _) = grant(&store, "app", "h2").await;
    let (a3, _) = grant(&store, "app", "h3").await;
    let addr = start(store.clone()).await;

    // A refresh token under the access_token hint is still found, and takes its grant.
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("token={r1}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &r1).await && !active(&store, &a1).await);

    // An unknown hint is ignored.
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("token={a2}&token_type_hint=id_token"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &a2).await);

    // The URN form is understood.
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!(
            "token={a3}&token_type_hint=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &a3).await);
}

#[tokio::test]
async fn refresh_token_revokes_the_grant_and_access_token_itself() {
    let store = MemoryStore::new();
    let (access, refresh) = grant(&store, "app", "g1").await;
    let (access2, refresh2) = grant(&store, "app", "g2").await;
    let addr = start(store.clone()).await;

    let reply = revoke_basic(addr, "app", "app-secret", &format!("token={access2}")).await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &access2).await);
    assert!(
        active(&store, &refresh2).await,
        "an access token revokes only itself by default"
    );

    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("token={refresh}&token_type_hint=refresh_token"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &refresh).await);
    assert!(
        !active(&store, &access).await,
        "the grant's access tokens die with its refresh token"
    );
}

#[tokio::test]
async fn access_token_scope_can_be_the_grant() {
    let store = MemoryStore::new();
    let (access, refresh) = grant(&store, "app", "scope").await;
    let addr = start_with(
        store.clone(),
        RevocationPolicy::default().access_token_scope(RevocationScope::Grant),
    )
    .await;
    let reply = revoke_basic(addr, "app", "app-secret", &format!("token={access}")).await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &refresh).await);
}

#[tokio::test]
async fn another_clients_token_is_never_revoked() {
    let store = MemoryStore::new();
    let (access, refresh) = grant(&store, "app", "foreign").await;
    let (spa_access, _) = grant(&store, "other-spa", "foreign-spa").await;
    let addr = start(store.clone()).await;

    let reply = revoke_basic(
        addr,
        "other-app",
        "other-secret",
        &format!("token={refresh}"),
    )
    .await;
    assert_error(&reply, 400, "invalid_grant");
    let reply = post_form(addr, "/", &[], &format!("client_id=spa&token={access}")).await;
    assert_eq!(reply.status, 200, "a public client learns nothing");
    let reply = post_form(addr, "/", &[], &format!("client_id=spa&token={spa_access}")).await;
    assert_eq!(reply.status, 200);
    assert!(
        active(&store, &access).await
            && active(&store, &refresh).await
            && active(&store, &spa_access).await
    );

    // The host may change the policy, never to revoke.
    let addr = start_with(
        store.clone(),
        RevocationPolicy::default().foreign_token(ForeignTokenResponse::Success),
    )
    .await;
    let reply = revoke_basic(
        addr,
        "other-app",
        "other-secret",
        &format!("token={refresh}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let addr = start_with(
        store.clone(),
        RevocationPolicy::default().foreign_token(ForeignTokenResponse::InvalidGrant),
    )
    .await;
    let reply = post_form(addr, "/", &[], &format!("client_id=spa&token={access}")).await;
    assert_error(&reply, 400, "invalid_grant");
    assert!(active(&store, &access).await && active(&store, &refresh).await);
}

#[tokio::test]
async fn client_authentication_failures_are_401() {
    let store = MemoryStore::new();
    let (access, _) = grant(&store, "app", "auth").await;
    let addr = start(store.clone()).await;
    let body = format!("token={access}");

    // Tried the Authorization header: WWW-Authenticate with the configured realm.
    for (id, secret) in [
        ("app", "wrong"),
        ("nobody", "app-secret"),
        ("app", ""),
        ("spa", "x"),
    ] {
        let reply = revoke_basic(addr, id, secret, &body).await;
        assert_error(&reply, 401, "invalid_client");
        assert_eq!(
            reply.headers["www-authenticate"], "Basic realm=\"test-realm\"",
            "{id}"
        );
    }
    for header in [
        "Basic !!!",
        "Basic YXBw",
        "Bearer abc",
        "Basic OmFwcC1zZWNyZXQ=",
    ] {
        let reply = post_form(addr, "/", &[("authorization", header)], &body).await;
        assert_error(&reply, 401, "invalid_client");
        assert!(reply.headers.contains_key("www-authenticate"), "{header}");
    }
    // Body credentials or none: a 401 carries a challenge all the same (RFC 9110 §15.5.2).
    for creds in [
        "",
        "client_id=app&client_secret=wrong&",
        "client_id=nobody&",
        "client_secret=app-secret&",
        "client_id=app&",
    ] {
        let reply = post_form(addr, "/", &[], &format!("{creds}{body}")).await;
        assert_error(&reply, 401, "invalid_client");
        assert_eq!(
            reply.headers["www-authenticate"], "Basic realm=\"test-realm\"",
            "{creds}"
        );
    }
    // A client restricted to Basic may not post its secret.
    let reply = post_form(
        addr,
        "/",
        &[],
        &format!("client_id=basic-only&client_secret=b-secret&{body}"),
    )
    .await;
    assert_error(&reply, 401, "invalid_client");
    assert!(active(&store, &access).await);
}

#[tokio::test]
async fn exactly_one_authentication_method() {
    let store = MemoryStore::new();
    let (access, _) = grant(&store, "app", "one").await;
    let addr = start(store.clone()).await;
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("client_secret=app-secret&token={access}"),
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("client_id=other-app&token={access}"),
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
    assert!(active(&store, &access).await);
    let reply = revoke_basic(
        addr,
        "app",
        "app-secret",
        &format!("client_id=app&token={access}"),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "the same client_id in the body is allowed"
    );
}

#[tokio::test]
async fn every_authentication_method_works() {
    let store = MemoryStore::new();
    let (a1, _) = grant(&store, "app", "m1").await;
    let (a2, _) = grant(&store, "my client", "m2").await;
    let (a3, _) = grant(&store, "spa", "m3").await;
    let (a4, _) = grant(&store, "basic-only", "m4").await;
    let addr = start(store.clone()).await;

    let reply = post_form(
        addr,
        "/",
        &[],
        &format!("client_id=app&client_secret=app-secret&token={a1}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    // Id and secret that need form-urlencoding before base64.
    let reply = revoke_basic(addr, "my client", "s3cr:t+ &x", &format!("token={a2}")).await;
    assert_eq!(reply.status, 200);
    // The scheme name is case-insensitive.
    let header = basic("basic-only", "b-secret").replacen("Basic", "bAsIc", 1);
    let reply = post_form(
        addr,
        "/",
        &[("authorization", &header)],
        &format!("token={a4}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = post_form(addr, "/", &[], &format!("client_id=spa&token={a3}")).await;
    assert_eq!(reply.status, 200);
    for t in [&a1, &a2, &a3, &a4] {
        assert!(!active(&store, t).await);
    }
}

#[tokio::test]
async fn store_failure_is_503_never_200() {
    let endpoint = RevocationEndpoint::builder(registry(), DownStore::default())
        .build()
        .unwrap();
    let addr = common::serve(endpoint).await;
    let reply = revoke_basic(addr, "app", "app-secret", "token=whatever").await;
    assert_error(&reply, 503, "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn mounts_in_axum() {
    let store = MemoryStore::new();
    let (access, _) = grant(&store, "app", "axum").await;
    let endpoint = RevocationEndpoint::builder(registry(), store.clone())
        .build()
        .unwrap();
    let app = axum::Router::new().route_service("/oauth2/revoke", endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let reply = post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &basic("app", "app-secret"))],
        &format!("token={access}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, &access).await);
}
