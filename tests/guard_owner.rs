//! End-to-end: revocation takes effect at a guarded resource, and the resource owner
//! revokes exactly one client's access.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use common::{basic, post_form, send, DownStore, Reply};
use http::{Request, Response};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    guard::BearerGuardLayer,
    owner::{OwnerAuthorizations, ResourceOwner},
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([
        Client::confidential("app", "app-secret").with_name("The App"),
        Client::confidential("other-app", "other-secret"),
    ])
}

/// An app with the revocation endpoint, a guarded `/api`, and the owner service whose
/// login is a test header (`x-test-user`) standing in for the host's own.
async fn start<S: TokenStore>(store: S) -> SocketAddr {
    let revoke = RevocationEndpoint::builder(registry(), store.clone())
        .build()
        .unwrap();
    let api = ServiceBuilder::new()
        .layer(BearerGuardLayer::new(store.clone()).realm("api"))
        .service(service_fn(|req: Request<axum::body::Body>| async move {
            let record = req.extensions().get::<TokenRecord>().unwrap();
            let who = format!(
                "{} for {}",
                record.client_id,
                record.owner.as_deref().unwrap_or("-")
            );
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(who))))
        }));
    let owners = OwnerAuthorizations::new(store, registry()).mount_path("/me/authorizations");
    let login = service_fn(move |mut req: Request<axum::body::Body>| {
        let owners = owners.clone();
        async move {
            if let Some(user) = req
                .headers()
                .get("x-test-user")
                .and_then(|v| v.to_str().ok())
            {
                let owner = ResourceOwner::new(user);
                req.extensions_mut().insert(owner);
            }
            owners.oneshot(req).await
        }
    });
    let app = axum::Router::new()
        .route_service("/oauth2/revoke", revoke)
        .route_service("/api", api)
        .route_service("/me/authorizations", login.clone())
        .route_service("/me/authorizations/{client}", login);
    common::serve(
        app.into_service::<hyper::body::Incoming>()
            .map_err(|e| match e {}),
    )
    .await
}

async fn issue(
    store: &MemoryStore,
    token: &str,
    kind: TokenKind,
    client: &str,
    grant: GrantId,
    owner: &str,
) {
    store
        .issue(
            TokenHash::of(token),
            TokenRecord::new(
                kind,
                client,
                grant,
                SystemTime::now() + Duration::from_secs(600),
            )
            .with_owner(owner),
        )
        .await
        .unwrap();
}

async fn api(addr: SocketAddr, token: &str) -> Reply {
    send(
        Request::get(format!("http://{addr}/api"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap(),
    )
    .await
}

async fn owner_request(addr: SocketAddr, method: &str, path: &str, user: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(user) = user {
        req = req.header("x-test-user", user);
    }
    send(req.body(Full::default()).unwrap()).await
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let store = MemoryStore::new();
    let grant = GrantId::random();
    issue(
        &store,
        "acc-1",
        TokenKind::AccessToken,
        "app",
        grant,
        "alice",
    )
    .await;
    let addr = start(store.clone()).await;

    let reply = api(addr, "acc-1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app for alice");

    let reply = post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &basic("app", "app-secret"))],
        "token=acc-1",
    )
    .await;
    assert_eq!(reply.status, 200);

    let reply = api(addr, "acc-1").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}

#[tokio::test]
async fn guard_answers_missing_malformed_and_refresh_tokens() {
    let store = MemoryStore::new();
    let grant = GrantId::random();
    issue(
        &store,
        "ref-1",
        TokenKind::RefreshToken,
        "app",
        grant,
        "alice",
    )
    .await;
    let addr = start(store.clone()).await;

    let reply = send(
        Request::get(format!("http://{addr}/api"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"api\"");

    let reply = api(addr, "ref-1").await;
    assert_eq!(reply.status, 401, "a refresh token is no access token");
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));

    let reply = api(addr, "two words").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "invalid_request");
}

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_access_tokens_at_the_guard() {
    let store = MemoryStore::new();
    let grant = GrantId::random();
    issue(
        &store,
        "ref-2",
        TokenKind::RefreshToken,
        "app",
        grant,
        "alice",
    )
    .await;
    issue(
        &store,
        "acc-2a",
        TokenKind::AccessToken,
        "app",
        grant,
        "alice",
    )
    .await;
    issue(
        &store,
        "acc-2b",
        TokenKind::AccessToken,
        "app",
        grant,
        "alice",
    )
    .await;
    issue(
        &store,
        "acc-other-grant",
        TokenKind::AccessToken,
        "app",
        GrantId::random(),
        "alice",
    )
    .await;
    let addr = start(store.clone()).await;
    assert_eq!(api(addr, "acc-2a").await.status, 200);

    let reply = post_form(
        addr,
        "/oauth2/revoke",
        &[("authorization", &basic("app", "app-secret"))],
        "token=ref-2&token_type_hint=refresh_token",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(api(addr, "acc-2a").await.status, 401);
    assert_eq!(api(addr, "acc-2b").await.status, 401);
    assert_eq!(
        api(addr, "acc-other-grant").await.status,
        200,
        "another grant lives on"
    );
}

#[tokio::test]
async fn owner_revokes_exactly_one_clients_access() {
    let store = MemoryStore::new();
    let (g1, g2, g3, g4) = (
        GrantId::random(),
        GrantId::random(),
        GrantId::random(),
        GrantId::random(),
    );
    issue(
        &store,
        "alice-app-r",
        TokenKind::RefreshToken,
        "app",
        g1,
        "alice",
    )
    .await;
    issue(
        &store,
        "alice-app-a",
        TokenKind::AccessToken,
        "app",
        g1,
        "alice",
    )
    .await;
    issue(
        &store,
        "alice-app-a2",
        TokenKind::AccessToken,
        "app",
        g2,
        "alice",
    )
    .await;
    issue(
        &store,
        "alice-other-a",
        TokenKind::AccessToken,
        "other-app",
        g3,
        "alice",
    )
    .await;
    issue(
        &store,
        "bob-app-a",
        TokenKind::AccessToken,
        "app",
        g4,
        "bob",
    )
    .await;
    let addr = start(store.clone()).await;

    let reply = owner_request(addr, "GET", "/me/authorizations", Some("alice")).await;
    assert_eq!(reply.status, 200);
    let listed = reply.json();
    let list = listed["authorizations"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{listed}");
    assert_eq!(list[0]["client_id"], "app");
    assert_eq!(list[0]["client_name"], "The App");
    assert_eq!(list[0]["grants"], 2);
    assert_eq!(list[1]["client_id"], "other-app");

    let reply = owner_request(addr, "DELETE", "/me/authorizations/app", Some("alice")).await;
    assert_eq!(reply.status, 204);
    for token in ["alice-app-a", "alice-app-a2"] {
        assert_eq!(api(addr, token).await.status, 401, "{token}");
    }
    assert!(store
        .inspect(&TokenHash::of("alice-app-r"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        api(addr, "alice-other-a").await.status,
        200,
        "the owner's other clients are untouched"
    );
    assert_eq!(
        api(addr, "bob-app-a").await.status,
        200,
        "the client's other owners are untouched"
    );

    // Idempotent: nothing held, unknown client.
    assert_eq!(
        owner_request(addr, "DELETE", "/me/authorizations/app", Some("alice"))
            .await
            .status,
        204
    );
    assert_eq!(
        owner_request(addr, "DELETE", "/me/authorizations/nobody", Some("alice"))
            .await
            .status,
        204
    );
    let listed = owner_request(addr, "GET", "/me/authorizations", Some("alice"))
        .await
        .json();
    assert_eq!(listed["authorizations"].as_array().unwrap().len(), 1);

    // Without the host's login: 401, and nothing happens.
    let reply = owner_request(addr, "DELETE", "/me/authorizations/other-app", None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(api(addr, "alice-other-a").await.status, 200);

    let reply = owner_request(addr, "POST", "/me/authorizations", Some("alice")).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "GET, DELETE");

    // DELETE on the collection: every client's grants from this owner, no other owner's.
    let reply = owner_request(addr, "DELETE", "/me/authorizations", Some("alice")).await;
    assert_eq!(reply.status, 204);
    assert_eq!(api(addr, "alice-other-a").await.status, 401);
    assert_eq!(api(addr, "bob-app-a").await.status, 200);
    let listed = owner_request(addr, "GET", "/me/authorizations", Some("alice"))
        .await
        .json();
    assert_eq!(listed["authorizations"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn store_failure_is_503_at_the_guard_and_owner_service() {
    let addr = start(DownStore::default()).await;
    let reply = api(addr, "anything").await;
    assert_eq!(reply.status, 503, "a store failure is never a pass");
    assert!(reply.headers.contains_key("retry-after"));
    let reply = owner_request(addr, "DELETE", "/me/authorizations/app", Some("alice")).await;
    assert_eq!(reply.status, 503);
    assert!(reply.headers.contains_key("retry-after"));
}
