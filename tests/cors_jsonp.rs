//! CORS and JSONP end to end, over real HTTP on loopback.

mod common;

use std::{
    convert::Infallible,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use common::{send, serve, Reply};
use http::{HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use tower::ServiceBuilder;
use tower_oauth_revoke::{
    client_auth::{Client, ClientRegistry, MemoryClientRegistry, RegistryError},
    jsonp::JsonpLayer,
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

const APP: &str = "http://127.0.0.1:1";
const SPA: &str = "http://127.0.0.1:2";

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([
        Client::public("spa").with_origins([SPA]).unwrap(),
        Client::public("other"),
        Client::confidential("server", "s3cret"),
    ])
}

async fn issue(store: &MemoryStore, token: &str, client: &str) {
    let expires = SystemTime::now() + Duration::from_secs(600);
    store
        .issue(
            TokenHash::of(token),
            TokenRecord::new(TokenKind::AccessToken, client, GrantId::random(), expires),
        )
        .await
        .unwrap();
}

async fn active(store: &MemoryStore, token: &str) -> bool {
    store
        .inspect(&TokenHash::of(token))
        .await
        .unwrap()
        .is_some()
}

async fn start(jsonp: bool) -> (std::net::SocketAddr, MemoryStore) {
    let store = MemoryStore::new();
    let endpoint = RevocationEndpoint::builder(registry(), store.clone())
        .cors_origins([APP])
        .cors_max_age(Duration::from_secs(300))
        .jsonp(jsonp)
        .build()
        .unwrap();
    (serve(endpoint).await, store)
}

async fn preflight(addr: std::net::SocketAddr, origin: &str, method: &str) -> Reply {
    send(
        Request::options(format!("http://{addr}/revoke"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .body(Full::default())
            .unwrap(),
    )
    .await
}

fn vary_has_origin(reply: &Reply) -> bool {
    reply
        .headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

async fn post(addr: std::net::SocketAddr, origin: Option<&str>, body: &str) -> Reply {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    common::post_form(addr, "/revoke", &headers, body).await
}

#[tokio::test]
async fn preflight_for_configured_and_client_origins() {
    let (addr, _) = start(false).await;
    for origin in [APP, SPA] {
        let reply = preflight(addr, origin, "POST").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["access-control-allow-origin"], origin);
        assert_eq!(reply.headers["access-control-allow-methods"], "POST");
        let allowed = reply.headers["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert_eq!(reply.headers["access-control-max-age"], "300");
        assert!(reply
            .headers
            .get("access-control-allow-credentials")
            .is_none());
        assert!(vary_has_origin(&reply));
    }
    let (addr, _) = start(true).await;
    let reply = preflight(addr, APP, "GET").await;
    assert_eq!(reply.headers["access-control-allow-methods"], "POST,GET");
}

#[tokio::test]
async fn preflight_from_other_origins_gets_no_allow_headers() {
    let (addr, _) = start(true).await;
    for origin in ["http://127.0.0.1:3", "null", "http://127.0.0.1:1.evil", "*"] {
        let reply = preflight(addr, origin, "POST").await;
        assert!(
            cors_headers(&reply).is_empty(),
            "{origin}: {:?}",
            cors_headers(&reply)
        );
        assert!(vary_has_origin(&reply));
    }
}

#[tokio::test]
async fn real_request_origin_is_checked_against_the_client_before_revoking() {
    let (addr, store) = start(false).await;
    issue(&store, "t-other", "other").await;
    issue(&store, "t-spa", "spa").await;

    // SPA's origin passes CORS, but is not `other`'s: refused, nothing revoked.
    let reply = post(addr, Some(SPA), "token=t-other&client_id=other").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "invalid_request");
    assert_eq!(reply.headers["access-control-allow-origin"], SPA);
    assert!(active(&store, "t-other").await);

    // An unknown origin: refused, no CORS headers, nothing revoked.
    let reply = post(
        addr,
        Some("http://127.0.0.1:3"),
        "token=t-spa&client_id=spa",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(cors_headers(&reply).is_empty());
    assert!(active(&store, "t-spa").await);

    // The client's own origin, and a configured origin, revoke.
    let reply = post(addr, Some(SPA), "token=t-spa&client_id=spa").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["access-control-allow-origin"], SPA);
    assert!(!active(&store, "t-spa").await);
    let reply = post(addr, Some(APP), "token=t-other&client_id=other").await;
    assert_eq!(reply.status, 200);
    assert!(!active(&store, "t-other").await);
}

#[tokio::test]
async fn error_responses_carry_cors_headers_and_expose_auth_headers() {
    let (addr, store) = start(false).await;
    issue(&store, "t-server", "server").await;
    let reply = common::post_form(
        addr,
        "/revoke",
        &[
            ("origin", APP),
            ("authorization", &common::basic("server", "wrong")),
        ],
        "token=t-server",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["access-control-allow-origin"], APP);
    assert!(reply.headers.contains_key("www-authenticate"));
    let exposed = reply.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("www-authenticate") && exposed.contains("retry-after"));
    assert!(active(&store, "t-server").await);
}

/// A registry that is down.
#[derive(Clone)]
struct DownRegistry;

impl ClientRegistry for DownRegistry {
    async fn find_client(&self, _client_id: &str) -> Result<Option<Client>, RegistryError> {
        Err(RegistryError::new("registry down"))
    }

    async fn origin_registered(&self, _origin: &HeaderValue) -> Result<bool, RegistryError> {
        Err(RegistryError::new("registry down"))
    }
}

#[tokio::test]
async fn unavailable_answer_carries_cors_headers() {
    let endpoint = RevocationEndpoint::builder(DownRegistry, MemoryStore::new())
        .cors_origins([APP])
        .build()
        .unwrap();
    let addr = serve(endpoint).await;
    let reply = post(addr, Some(APP), "token=t&client_id=spa").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["access-control-allow-origin"], APP);
    assert!(reply.headers.contains_key("retry-after"));
    // A registry error on a preflight allows nothing.
    let reply = preflight(addr, SPA, "POST").await;
    assert!(cors_headers(&reply).is_empty());
}

#[tokio::test]
async fn jsonp_get_success_and_error() {
    let (addr, store) = start(true).await;
    issue(&store, "t-spa", "spa").await;
    let get = |uri: String| send(Request::get(uri).body(Full::default()).unwrap());

    let reply = get(format!(
        "http://{addr}/revoke?token=t-spa&client_id=spa&callback=package.myCallback"
    ))
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/**/package.myCallback();");
    assert_eq!(
        reply.headers["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-original-status"], "200");
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert!(!active(&store, "t-spa").await);

    let reply = get(format!("http://{addr}/revoke?client_id=spa&callback=cb_1")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-original-status"], "400");
    assert_eq!(
        reply.body,
        "/**/cb_1({\"error\":\"invalid_request\",\"error_description\":\"the `token` parameter is required\"});"
    );

    let reply = get(format!(
        "http://{addr}/revoke?token=x&client_id=nobody&callback=$jsonp"
    ))
    .await;
    assert_eq!(reply.headers["x-original-status"], "401");
    assert!(reply
        .body
        .starts_with("/**/$jsonp({\"error\":\"invalid_client\""));

    // Without callback: 405. A bad callback: plain 400 that does not echo it.
    let reply = get(format!("http://{addr}/revoke?token=x&client_id=spa")).await;
    assert_eq!(reply.status, 405);
    let reply = get(format!(
        "http://{addr}/revoke?token=x&client_id=spa&callback=%3Cscript%3E"
    ))
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "invalid_request");
    assert!(!reply.body.contains("<script") && !reply.body.contains("u003cscript"));
    // Twice: 400.
    let reply = get(format!(
        "http://{addr}/revoke?token=x&client_id=spa&callback=a&callback=b"
    ))
    .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn jsonp_callback_in_body_and_query_is_400() {
    let (addr, store) = start(true).await;
    issue(&store, "t-spa", "spa").await;
    let reply = common::post_form(
        addr,
        "/revoke?callback=a",
        &[],
        "token=t-spa&client_id=spa&callback=package.myCallback",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(active(&store, "t-spa").await);
    let reply = common::post_form(
        addr,
        "/revoke",
        &[],
        "token=t-spa&client_id=spa&callback=package.myCallback",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/**/package.myCallback();");
    assert!(!active(&store, "t-spa").await);
}

#[tokio::test]
async fn jsonp_streams_any_json_service_frame_by_frame() {
    // A JSON service that streams three frames, one U+2028 split across two of them.
    let service = ServiceBuilder::new()
        .layer(JsonpLayer::new())
        .service(tower::service_fn(
            |_req: Request<hyper::body::Incoming>| async {
                let line_separator = "\u{2028}".as_bytes();
                let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                    Ok(Frame::data(Bytes::from_static(b"{\"msg\":\"a"))),
                    Ok(Frame::data(Bytes::copy_from_slice(&line_separator[..1]))),
                    Ok(Frame::data(Bytes::from(
                        [&line_separator[1..], b"b\"}".as_slice()].concat(),
                    ))),
                ];
                let body = StreamBody::new(futures_util::stream::iter(frames));
                let mut response = Response::new(body);
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
                    .headers_mut()
                    .insert("content-length", "18".parse().unwrap());
                Ok::<_, Infallible>(response)
            },
        ));
    let addr = serve(service).await;
    let reply = send(
        Request::get(format!("http://{addr}/status?callback=app.onStatus"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/**/app.onStatus({\"msg\":\"a\\u2028b\"});");
    assert!(reply.headers.get("content-length").is_none());
    assert_eq!(reply.headers["transfer-encoding"], "chunked");
}

#[tokio::test]
async fn endpoint_mounts_in_axum() {
    let store = MemoryStore::new();
    issue(&store, "t-spa", "spa").await;
    let endpoint = RevocationEndpoint::builder(registry(), store.clone())
        .cors_origins([APP])
        .jsonp(true)
        .build()
        .unwrap();
    let app = axum::Router::new().route_service("/oauth2/revoke", endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let reply = common::post_form(
        addr,
        "/oauth2/revoke",
        &[("origin", SPA)],
        "token=t-spa&client_id=spa",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["access-control-allow-origin"], SPA);
    assert!(!active(&store, "t-spa").await);
    // The CORS layer answers the preflight that axum routes to the service.
    let reply = send(
        Request::options(format!("http://{addr}/oauth2/revoke"))
            .header("origin", APP)
            .header("access-control-request-method", "POST")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["access-control-allow-origin"], APP);
}
