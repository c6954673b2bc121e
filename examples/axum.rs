//! Mount the RFC 7009 revocation endpoint in an axum app, with a guarded API beside it.
//!
//! ```text
//! cargo run --example axum
//! curl -u app:app-secret -d token=demo-token http://127.0.0.1:3000/oauth2/revoke
//! curl -H "Authorization: Bearer demo-token" http://127.0.0.1:3000/api   # 401 now
//! ```

use std::time::{Duration, SystemTime};

use axum::{routing::get, Router};
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    guard::BearerGuardLayer,
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clients = MemoryClientRegistry::new([Client::confidential("app", "app-secret")]);
    let store = MemoryStore::new();

    // Your token endpoint registers what it issues; here, one demo token.
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires);
    store.issue(TokenHash::of("demo-token"), record).await?;

    let revoke = RevocationEndpoint::builder()
        .clients(clients)
        .store(store.clone())
        .build()?;

    let app = Router::new().route_service("/oauth2/revoke", revoke).route(
        "/api",
        get(|| async { "hello, holder of an active token" }).layer(BearerGuardLayer::new(store)),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
