//! An axum app that issues tokens, revokes them (RFC 7009) and guards an API, mounted the
//! way a production app should be:
//!
//! - `serve::Server` closes idle connections, caps them and backs off accept errors, and
//!   gives each request its `RemoteAddr`; with `AXUM_SERVE=1` the example uses axum's own
//!   server instead, where the address comes from `ConnectInfo<SocketAddr>` (feature `axum`):
//!   either way the failure limiter counts per client id *and* remote address;
//! - request spans record the path, never the query string (a JSON-P `GET` carries the
//!   token there);
//! - the token endpoint reuses the crate's form and client-authentication layers, and
//!   mints tokens with `TokenStore::mint`.
//!
//! ```text
//! cargo run --example axum
//! TOKEN=$(curl -s -u app:app-secret -d grant_type=client_credentials \
//!         http://127.0.0.1:3000/oauth2/token | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/api              # 200
//! curl -u app:app-secret -d "token=$TOKEN" http://127.0.0.1:3000/oauth2/revoke  # 200
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/api              # 401
//! ```

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use axum::{response::IntoResponse, routing::get, Extension, Json, Router};
use http::header;
use tower::ServiceBuilder;
use tower_oauth_revoke::{
    client_auth::{
        AuthFailureLimiter, AuthenticatedClient, Client, ClientAuthLayer, ClientKind,
        MemoryClientRegistry,
    },
    error::{ErrorCode, OAuthError},
    form::{FormLayer, FormParams},
    guard::BearerGuardLayer,
    serve::Server,
    store::{GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=debug,tower_oauth_revoke::trace=debug".into()),
        )
        .init();

    let clients = MemoryClientRegistry::new([Client::confidential("app", "app-secret")]);
    let store = MemoryStore::new();
    // 20 failed authentications per client id and address a minute, then 429.
    let limiter = AuthFailureLimiter::new(20, Duration::from_secs(60));

    let revoke = RevocationEndpoint::builder(clients.clone(), store.clone())
        .limit_failures(limiter.clone())
        .build()?;

    // The host's own token endpoint: the same bounded form and client authentication
    // (limiter included) in front of a handler that reads what they found. Layers go
    // around the handler with ServiceBuilder and mount with `route_service`.
    let token = ServiceBuilder::new()
        .layer(FormLayer::new())
        .layer(ClientAuthLayer::new(clients).limit_failures(limiter))
        .service(axum::handler::HandlerWithoutStateExt::into_service({
            let store = store.clone();
            move |Extension(client): Extension<AuthenticatedClient>,
                  Extension(params): Extension<FormParams>| {
                issue_token(store.clone(), client, params)
            }
        }));

    let app = Router::new()
        .route_service("/oauth2/revoke", revoke)
        .route_service("/oauth2/token", token)
        .route(
            "/api",
            get(|| async { "hello, holder of an active token" })
                .layer(BearerGuardLayer::new(store)),
        )
        .layer(tower_oauth_revoke::trace::layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    if std::env::var_os("AXUM_SERVE").is_some() {
        // axum's own server: ConnectInfo gives every request its peer address, which the
        // limiter reads. It has no idle timeout or connection cap.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
    } else {
        // For the open internet: idle connections closed after 10 s whatever their stage,
        // connections capped below the descriptor limit, accept errors backed off, and
        // RemoteAddr in every request (feature `serve`).
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        Server::new().serve(listener, app, shutdown).await?;
    }
    Ok(())
}

/// `grant_type=client_credentials`: one access token, registered in the store by its hash.
async fn issue_token(
    store: MemoryStore,
    client: AuthenticatedClient,
    params: FormParams,
) -> Result<impl IntoResponse, OAuthError> {
    // Typed parameters (feature `serde`) over the strictly parsed form.
    #[derive(serde::Deserialize)]
    struct TokenRequest {
        grant_type: String,
    }
    let request: TokenRequest = params.deserialize()?;
    if request.grant_type != "client_credentials" {
        return Err(OAuthError::new(
            http::StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedGrantType,
            "only client_credentials is supported here",
        ));
    }
    if client.kind() == ClientKind::Public {
        return Err(OAuthError::new(
            http::StatusCode::BAD_REQUEST,
            ErrorCode::UnauthorizedClient,
            "a public client cannot use client_credentials",
        ));
    }
    let ttl = Duration::from_secs(3600);
    let record = TokenRecord::new(
        TokenKind::AccessToken,
        client.id(),
        GrantId::random(),
        SystemTime::now() + ttl,
    );
    let access_token = store
        .mint(record)
        .await
        .map_err(|_| OAuthError::temporarily_unavailable("the token store is unavailable", 1))?;
    // RFC 6749 §5.1: token responses are never cached.
    let no_store = [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    let body = Json(serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    }));
    Ok((no_store, body))
}
