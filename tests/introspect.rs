//! Introspection (RFC 7662) and authorization server metadata (RFC 8414) over real HTTP on
//! loopback: every rule of the `introspect` module's table, and a document built from the
//! endpoints.

mod common;

use std::time::Duration;

use common::{basic, post_form, serve, DownStore, Reply};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    endpoint::Endpoint,
    introspect::Introspector,
    jose::SigningKey,
    jwt::JwtAccessTokens,
    metadata::AuthorizationServerMetadata,
    store::{
        Confirmation, GrantId, ManualClock, MemoryStore, RevocationRequest, TokenHash, TokenKind,
        TokenRecord, TokenStore,
    },
    RevocationEndpoint,
};

const ISSUER: &str = "https://as.example";

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([
        Client::confidential("rs", "rs-secret").with_introspection(),
        Client::confidential("app", "app-secret"),
        Client::confidential("other", "other-secret"),
        Client::public("spa"),
    ])
}

async fn introspect(addr: std::net::SocketAddr, id: &str, secret: &str, token: &str) -> Reply {
    let auth = basic(id, secret);
    post_form(
        addr,
        "/",
        &[("authorization", &auth)],
        &format!("token={token}&token_type_hint=access_token"),
    )
    .await
}

fn assert_inactive(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
    assert_eq!(reply.body, r#"{"active":false}"#, "{what}");
    assert_eq!(reply.headers["cache-control"], "no-store", "{what}");
    assert_eq!(reply.headers["content-type"], "application/json", "{what}");
}

#[tokio::test]
async fn introspection_follows_the_rules() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let later = clock.now() + Duration::from_secs(600);
    let grant = GrantId::from_u64(42);
    for (token, kind, owner, expires) in [
        ("t-app", TokenKind::AccessToken, Some("alice"), later),
        ("r-app", TokenKind::RefreshToken, Some("alice"), later),
        ("t-cc", TokenKind::AccessToken, None, later),
        (
            "t-short",
            TokenKind::AccessToken,
            None,
            clock.now() + Duration::from_secs(5),
        ),
        ("t-revoked", TokenKind::AccessToken, None, later),
    ] {
        let mut record = TokenRecord::new(kind, "app", grant, expires).with_issued_at(clock.now());
        if token == "t-cc" || token == "t-short" || token == "t-revoked" {
            record.grant = GrantId::random();
        }
        record.owner = owner.map(Into::into);
        store.issue(TokenHash::of(token), record).await.unwrap();
    }
    store
        .revoke(&TokenHash::of("t-revoked"), RevocationRequest::new("app"))
        .await
        .unwrap();
    let endpoint = Endpoint::with_step(registry(), Introspector::new(store.clone()).issuer(ISSUER))
        .realm("test")
        .build()
        .unwrap();
    let addr = serve(endpoint).await;

    // The token's own client, and a resource server, see it active.
    for (id, secret) in [("app", "app-secret"), ("rs", "rs-secret")] {
        let reply = introspect(addr, id, secret, "t-app").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.headers["cache-control"], "no-store");
        let json = reply.json();
        assert_eq!(json["active"], true, "{id}");
        assert_eq!(json["client_id"], "app");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["sub"], "alice");
        assert_eq!(json["iss"], ISSUER);
        assert_eq!(json["grant_id"], "000000000000002a");
        let secs =
            |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(json["iat"].as_u64().unwrap(), secs(clock.now()));
        let exp = json["exp"].as_u64().unwrap();
        let expected = later
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(exp, expected);
    }
    let json = introspect(addr, "rs", "rs-secret", "r-app").await.json();
    assert_eq!(json["token_type"], "refresh_token");
    // client_credentials: the client is the subject.
    let json = introspect(addr, "rs", "rs-secret", "t-cc").await.json();
    assert_eq!(json["sub"], "app");

    // Another confidential client learns nothing.
    assert_inactive(
        &introspect(addr, "other", "other-secret", "t-app").await,
        "foreign",
    );
    // Unknown, revoked, malformed, expired: exactly {"active":false}.
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", "nope").await,
        "unknown",
    );
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", "t-revoked").await,
        "revoked",
    );
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", "%20%7F").await,
        "malformed",
    );
    assert_eq!(
        introspect(addr, "rs", "rs-secret", "t-short").await.json()["active"],
        true
    );
    clock.advance(Duration::from_secs(6));
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", "t-short").await,
        "expired",
    );

    // A public client is refused (RFC 7662 §2.1), with a challenge.
    let reply = post_form(addr, "/", &[], "client_id=spa&token=t-app").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert_eq!(reply.headers["www-authenticate"], "Basic realm=\"test\"");
    // No credentials, wrong secret: 401 as everywhere.
    let reply = introspect(addr, "rs", "wrong", "t-app").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // No token: 400.
    let auth = basic("rs", "rs-secret");
    let reply = post_form(addr, "/", &[("authorization", &auth)], "token=").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
    // Introspection changes nothing.
    assert!(store
        .inspect(&TokenHash::of("t-app"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_bound_token_shows_its_cnf() {
    let store = MemoryStore::new();
    let later = std::time::SystemTime::now() + Duration::from_secs(600);
    let jkt = Confirmation::Jkt(*TokenHash::of("a DPoP key").as_bytes());
    let x5t = Confirmation::X5tS256(*TokenHash::of("a certificate").as_bytes());
    for (token, kind, confirmation) in [
        ("t-dpop", TokenKind::AccessToken, Some(jkt)),
        ("t-mtls", TokenKind::AccessToken, Some(x5t)),
        ("r-dpop", TokenKind::RefreshToken, Some(jkt)),
        ("t-bearer", TokenKind::AccessToken, None),
    ] {
        let mut record = TokenRecord::new(kind, "app", GrantId::random(), later);
        record.confirmation = confirmation;
        store.issue(TokenHash::of(token), record).await.unwrap();
    }
    let jwts = JwtAccessTokens::new(ISSUER, "https://api.example", SigningKey::generate());
    let introspector = Introspector::new(store.clone()).jwt(jwts.clone());
    let endpoint = Endpoint::with_step(registry(), introspector)
        .build()
        .unwrap();
    let addr = serve(endpoint).await;

    // RFC 9449 §6.2: a DPoP-bound access token is of type DPoP, with cnf.jkt.
    let json = introspect(addr, "rs", "rs-secret", "t-dpop").await.json();
    assert_eq!(json["active"], true);
    assert_eq!(json["token_type"], "DPoP");
    assert_eq!(json["cnf"], serde_json::json!({"jkt": jkt.to_base64url()}));
    // RFC 8705 §3.2: a certificate-bound one stays a bearer type, with cnf.x5t#S256.
    let json = introspect(addr, "rs", "rs-secret", "t-mtls").await.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(
        json["cnf"],
        serde_json::json!({"x5t#S256": x5t.to_base64url()})
    );
    // A refresh token keeps its type and shows its binding.
    let json = introspect(addr, "app", "app-secret", "r-dpop").await.json();
    assert_eq!(json["token_type"], "refresh_token");
    assert_eq!(json["cnf"], serde_json::json!({"jkt": jkt.to_base64url()}));
    // A bearer token: no cnf.
    let json = introspect(addr, "rs", "rs-secret", "t-bearer").await.json();
    assert_eq!(json["token_type"], "Bearer");
    assert!(json.get("cnf").is_none(), "{json}");
    // Inactive answers say nothing of a binding.
    store
        .revoke(&TokenHash::of("t-dpop"), RevocationRequest::new("app"))
        .await
        .unwrap();
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", "t-dpop").await,
        "revoked",
    );

    // A JWT: its binding in its claims and in the store, shown once.
    let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), later)
        .with_owner("alice");
    let bound = jwts
        .issue(&store, record.clone().with_confirmation(jkt))
        .await
        .unwrap();
    let json = introspect(addr, "rs", "rs-secret", &bound).await.json();
    assert_eq!(json["token_type"], "DPoP");
    assert_eq!(json["cnf"], serde_json::json!({"jkt": jkt.to_base64url()}));
    assert_eq!(json["jti"], jwts.verify(&bound).unwrap().jti);
    // The claims win: the store's record without the binding shows the claims' ...
    let key = jwts.verify(&bound).unwrap().store_key();
    store.issue(key, record.clone()).await.unwrap();
    let json = introspect(addr, "rs", "rs-secret", &bound).await.json();
    assert_eq!(json["cnf"], serde_json::json!({"jkt": jkt.to_base64url()}));
    // ... and a store bound to another key than the claims, or to one they lack, refuses.
    store
        .issue(key, record.clone().with_confirmation(x5t))
        .await
        .unwrap();
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", &bound).await,
        "bound to another key",
    );
    let bearer = jwts.issue(&store, record.clone()).await.unwrap();
    assert!(introspect(addr, "rs", "rs-secret", &bearer).await.json()["cnf"].is_null());
    let key = jwts.verify(&bearer).unwrap().store_key();
    store
        .issue(key, record.with_confirmation(jkt))
        .await
        .unwrap();
    assert_inactive(
        &introspect(addr, "rs", "rs-secret", &bearer).await,
        "bound in the store only",
    );
}

#[tokio::test]
async fn a_store_failure_is_503_never_inactive() {
    let endpoint = Endpoint::with_step(registry(), Introspector::new(DownStore::default()))
        .build()
        .unwrap();
    let addr = serve(endpoint).await;
    let reply = introspect(addr, "rs", "rs-secret", "t").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn metadata_lists_what_each_endpoint_accepts() {
    let store = MemoryStore::new();
    let revoke = RevocationEndpoint::builder(registry(), store.clone())
        .build()
        .unwrap();
    let introspect = Endpoint::with_step(registry(), Introspector::new(store))
        .build()
        .unwrap();
    let metadata = AuthorizationServerMetadata::new(format!("{ISSUER}/"))
        .unwrap()
        .revocation_endpoint("/oauth2/revoke", &revoke)
        .introspection_endpoint("/oauth2/introspect", &introspect)
        .jwks_uri("/.well-known/jwks.json")
        .grant_types_supported(["client_credentials"]);
    let addr = serve(metadata.into_service()).await;
    let reply = common::send(
        Request::get(format!(
            "http://{addr}/.well-known/oauth-authorization-server"
        ))
        .body(Full::default())
        .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let json = reply.json();
    assert_eq!(json["issuer"], ISSUER);
    assert_eq!(
        json["revocation_endpoint"],
        format!("{ISSUER}/oauth2/revoke")
    );
    assert_eq!(
        json["introspection_endpoint"],
        format!("{ISSUER}/oauth2/introspect")
    );
    assert_eq!(json["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(
        json["revocation_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        json["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let reply = post_form(addr, "/.well-known/oauth-authorization-server", &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET");
}
