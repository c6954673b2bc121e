//! The remote guard against a real authorization server on loopback: the crate's
//! introspection endpoint and metadata, served over HTTP, with a resource server in front
//! of the guard. Cache expiry is driven by a `ManualClock`; the authorization server is
//! stopped and started again on the same port.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    endpoint::Endpoint,
    guard::{remote::RemoteGuard, BearerGuardLayer},
    introspect::Introspector,
    metadata::AuthorizationServerMetadata,
    serve::Server,
    store::{
        GrantId, ManualClock, MemoryStore, RevocationRequest, TokenHash, TokenKind, TokenRecord,
        TokenStore,
    },
};

/// The authorization server: introspection and metadata over `store`, counting calls.
fn authorization_server(store: MemoryStore, issuer: &str, calls: Arc<AtomicUsize>) -> axum::Router {
    let clients = MemoryClientRegistry::new([
        Client::confidential("rs", "rs-secret").with_introspection(),
        Client::confidential("app", "app-secret"),
    ]);
    let introspect = Endpoint::with_step(clients, Introspector::new(store).issuer(issuer))
        .build()
        .unwrap();
    let metadata = AuthorizationServerMetadata::new(issuer)
        .unwrap()
        .introspection_endpoint("/oauth2/introspect", &introspect)
        .into_service();
    let counted = tower::ServiceBuilder::new()
        .map_request(move |req: axum::extract::Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            req
        })
        .service(introspect);
    axum::Router::new()
        .route_service("/oauth2/introspect", counted)
        .route_service("/.well-known/oauth-authorization-server", metadata)
}

/// Serves `router` on `listener` until the returned sender fires (then closes its
/// connections).
fn start(router: axum::Router, listener: TcpListener) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = Server::new()
            .idle_timeout(Duration::from_secs(1))
            .serve(listener, router, async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

struct World {
    store: MemoryStore,
    clock: ManualClock,
    calls: Arc<AtomicUsize>,
    as_addr: SocketAddr,
    router: axum::Router,
    stop: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    guard: RemoteGuard,
    rs: SocketAddr,
}

impl World {
    async fn new(capacity: usize) -> Self {
        let store = MemoryStore::new();
        let calls = Arc::new(AtomicUsize::new(0));
        // The listener is bound once and kept: a port found free and bound again later
        // may be taken in between by another test.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap();
        let issuer = format!("http://{port}");
        let router = authorization_server(store.clone(), &issuer, calls.clone());
        let stop = start(router.clone(), listener);
        let clock = ManualClock::new();
        let guard = RemoteGuard::builder(&issuer, "rs", "rs-secret")
            .cache_ttl(Duration::from_secs(60))
            .capacity(capacity)
            .timeout(Duration::from_secs(2))
            .clock(clock.clone())
            .build()
            .unwrap();
        let api = axum::Router::new()
            .route(
                "/api",
                axum::routing::get(|req: axum::extract::Request| async move {
                    let record = req.extensions().get::<TokenRecord>().unwrap();
                    record.client_id.to_string()
                }),
            )
            .layer(BearerGuardLayer::new(guard.clone()));
        let rs = common::serve(api).await;
        World {
            store,
            clock,
            calls,
            as_addr: port,
            router,
            stop: Some(stop),
            guard,
            rs,
        }
    }

    async fn issue(&self, token: &str) {
        let record = TokenRecord::new(
            TokenKind::AccessToken,
            "app",
            GrantId::random(),
            self.clock.now() + Duration::from_secs(3600),
        );
        self.store
            .issue(TokenHash::of(token), record)
            .await
            .unwrap();
    }

    async fn api(&self, token: &str) -> common::Reply {
        let request = Request::get(format!("http://{}/api", self.rs))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap();
        common::send(request).await
    }

    async fn stop_as(&mut self) {
        let (stop, task) = self.stop.take().expect("running");
        let _ = stop.send(());
        task.await.unwrap();
    }

    async fn start_as(&mut self) {
        // The same address again, as a restarted server would take it.
        let listener = TcpListener::bind(self.as_addr).await.unwrap();
        self.stop = Some(start(self.router.clone(), listener));
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_the_ttl() {
    let world = World::new(1000).await;
    world.issue("t1").await;
    let reply = world.api("t1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "app");
    assert_eq!(world.api("nope").await.status, StatusCode::UNAUTHORIZED);

    world
        .store
        .revoke(&TokenHash::of("t1"), RevocationRequest::new("app"))
        .await
        .unwrap();
    // Within the TTL the cached answer stands (unless an event invalidates it) ...
    assert_eq!(world.api("t1").await.status, StatusCode::OK);
    // ... and once it has passed, the token is refused.
    world.clock.advance(Duration::from_secs(61));
    let reply = world.api("t1").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // Invalidation drops an answer at once.
    world.issue("t2").await;
    assert_eq!(world.api("t2").await.status, StatusCode::OK);
    world
        .store
        .revoke(&TokenHash::of("t2"), RevocationRequest::new("app"))
        .await
        .unwrap();
    world.guard.invalidate_client("app");
    assert_eq!(world.api("t2").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_server_is_503_never_200_and_heals() {
    let mut world = World::new(1000).await;
    world.issue("cached").await;
    world.issue("fresh").await;
    assert_eq!(world.api("cached").await.status, StatusCode::OK);

    world.stop_as().await;
    // Not yet confirmed: 503 with Retry-After.
    let reply = world.api("fresh").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.headers.contains_key("retry-after"));
    // Confirmed within the TTL: still served.
    assert_eq!(world.api("cached").await.status, StatusCode::OK);
    // Past the TTL, with the server down: 503, not 200.
    world.clock.advance(Duration::from_secs(61));
    assert_eq!(
        world.api("cached").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    world.start_as().await;
    assert_eq!(world.api("fresh").await.status, StatusCode::OK);
    assert_eq!(world.api("cached").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_introspection_call() {
    let world = Arc::new(World::new(1000).await);
    world.issue("busy").await;
    // The metadata is read once, before.
    world.issue("warm").await;
    assert_eq!(world.api("warm").await.status, StatusCode::OK);
    let before = world.calls.load(Ordering::SeqCst);

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let world = world.clone();
        requests.spawn(async move { world.api("busy").await.status });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        world.calls.load(Ordering::SeqCst) - before,
        1,
        "100 requests with one new token made one introspection call"
    );
}

#[tokio::test]
async fn the_cache_stays_bounded_under_a_flood_of_unknown_tokens() {
    let world = World::new(64).await;
    for i in 0..300 {
        assert_eq!(
            world.api(&format!("unknown-{i}")).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert!(
            world.guard.cached() <= 64,
            "{} cached",
            world.guard.cached()
        );
    }
}
