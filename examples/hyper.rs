//! Serve the RFC 7009 revocation endpoint with plain hyper 1.x, no framework.
//!
//! ```text
//! cargo run --example hyper
//! curl -u app:app-secret -d token=any-token http://127.0.0.1:3001/oauth2/revoke
//! ```

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry, RemoteAddr},
    store::MemoryStore,
    RevocationEndpoint,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let revoke = RevocationEndpoint::builder()
        .clients(MemoryClientRegistry::new([Client::confidential(
            "app",
            "app-secret",
        )]))
        .store(MemoryStore::new())
        .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        // The endpoint serves every path; route in front of it if the host has others.
        // RemoteAddr lets a failure limiter count per address.
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(RemoteAddr(peer));
                req
            })
            .service(revoke.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}
