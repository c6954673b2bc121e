//! Serve the RFC 7009 revocation endpoint with plain hyper 1.x, no framework.
//!
//! ```text
//! cargo run --example hyper
//! curl -u app:app-secret -d token=any-token http://127.0.0.1:3001/oauth2/revoke
//! ```

use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    serve::Server,
    store::MemoryStore,
    RevocationEndpoint,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let revoke = RevocationEndpoint::builder(
        MemoryClientRegistry::new([Client::confidential("app", "app-secret")]),
        MemoryStore::new(),
    )
    .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The endpoint serves every path; route in front of it if the host has others.
    // `Server` is hyper-util's auto (HTTP/1 + HTTP/2) connection builder in an accept loop
    // with an idle timeout, a connection cap and accept back-off; it gives each request its
    // RemoteAddr, so that a failure limiter counts per address.
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Server::new().serve(listener, revoke, shutdown).await?;
    Ok(())
}
