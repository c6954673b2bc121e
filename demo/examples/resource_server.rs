//! A resource server in its own process: `GET /api` behind the crate's guard for servers
//! that do not share the store. A JWT access token is checked locally with the issuer's
//! keys (its JWKS, from its metadata) and against a replica of the revocations the issuer
//! announced; an opaque token by introspection, cached up to `--cache-ttl`. Revocations
//! arrive as Security Event Tokens pushed to `POST /events` (RFC 8935) and, with `--poll`,
//! polled from the issuer's `/oauth2/events` (RFC 8936): a revoked token is refused within
//! a second, whatever the cache's TTL.
//!
//! ```text
//! cargo run --release --example server -- --plain                    # the authorization server
//! cargo run --release --example resource_server -- --issuer http://127.0.0.1:9443
//! TOKEN=$(curl -s -u other-client:other-secret -d grant_type=client_credentials \
//!         http://127.0.0.1:9443/oauth2/token | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9444/api   # 200
//! ```
//!
//! With `--sync`, the server starts with what was revoked before it: it reads the issuer's
//! snapshot (`GET /oauth2/events/snapshot`, the revocations still in force as SETs),
//! verifies every SET as it verifies a pushed or polled one, and applies them to its
//! replica; until then every JWT gets 503, never 200 (an opaque token is introspected, so
//! it needs no snapshot). A failed read is tried again with back-off (250 ms doubling to
//! 5 s), JWTs answered 503 meanwhile. Use it with `--poll`: the issuer's poll queue holds
//! every SET since the issuer started, so whatever is revoked between the snapshot and the
//! first poll is polled too (a revocation in both is applied twice, to no effect: the
//! replica is idempotent).
//!
//! Without events, a revoked opaque token is refused once the cache's TTL has passed
//! (`--cache-ttl`), a JWT at its own `exp`; while the issuer is unreachable, tokens not yet
//! confirmed get 503.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{extract::Request, routing::get, Json, Router};
use clap::Parser;
use tower_oauth_revoke::{
    guard::{remote::RemoteGuard, BearerGuardLayer, TokenCheck, TokenCheckError},
    jwt::looks_like_jwt,
    serve::Server,
    set::{
        receive::{fetch_snapshot, Poller, PushReceiver, SetVerifier},
        replica::{RemoteTokenCheck, Revocations},
        ReceivedEvent,
    },
    store::TokenRecord,
};

/// A resource server whose bearer guard asks the authorization server.
#[derive(Debug, Parser)]
#[command(name = "resource_server", version)]
struct Args {
    /// Socket address to listen on (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:9444")]
    listen: SocketAddr,
    /// The authorization server: its endpoints come from its metadata.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// Accept the authorization server's certificate without checking it (its self-signed
    /// demo certificate); never in production.
    #[arg(long)]
    insecure: bool,
    /// The client id this server introspects with.
    #[arg(long, value_name = "ID", default_value = "resource-server")]
    client_id: String,
    /// The client secret this server introspects with.
    #[arg(long, value_name = "SECRET", default_value = "rs-secret")]
    client_secret: String,
    /// How long an introspection answer may be reused, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    cache_ttl: u64,
    /// Also poll the issuer's /oauth2/events for revocation events (RFC 8936, long polling).
    #[arg(long)]
    poll: bool,
    /// Start from the issuer's snapshot of what is still revoked: JWTs get 503 until it is
    /// read, verified and applied (use with --poll).
    #[arg(long)]
    sync: bool,
}

/// The guard's check, holding back JWTs (503) until the snapshot is applied.
#[derive(Debug, Clone)]
struct Synced {
    check: RemoteTokenCheck,
    ready: Arc<AtomicBool>,
}

impl TokenCheck for Synced {
    fn check(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send + 'static {
        let held = looks_like_jwt(token) && !self.ready.load(Ordering::Acquire);
        let check = self.check.check(token);
        async move {
            if held {
                return Err(TokenCheckError);
            }
            check.await
        }
    }
}

/// Reads, verifies and applies the issuer's snapshot, trying again with back-off until it
/// is; then opens the gate.
async fn sync(
    verifier: SetVerifier,
    endpoint: http::Uri,
    args: (String, String),
    guard: RemoteTokenCheck,
    ready: Arc<AtomicBool>,
) {
    let mut delay = Duration::from_millis(250);
    loop {
        let started = std::time::Instant::now();
        match fetch_snapshot(&verifier, endpoint.clone(), &args.0, &args.1).await {
            Ok(events) => {
                for event in &events {
                    guard.apply(event);
                }
                ready.store(true, Ordering::Release);
                tracing::info!(
                    events = events.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "applied the issuer's snapshot"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the issuer's snapshot yet; JWTs get 503");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(message) = run(Args::parse()).await {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let mut builder = RemoteGuard::builder(&args.issuer, &args.client_id, &args.client_secret)
        .cache_ttl(Duration::from_secs(args.cache_ttl));
    if args.insecure {
        builder = builder.tls_config(insecure_tls());
    }
    let introspection = builder.build().map_err(|e| e.to_string())?;
    let tls = args.insecure.then(insecure_tls);
    let verifier = SetVerifier::new(&args.issuer, tls).map_err(|e| e.to_string())?;
    let guard = RemoteTokenCheck::new(verifier.clone(), Revocations::default(), introspection);
    // The keys are read now if the issuer answers, else on the first JWT or event.
    if let Err(e) = verifier.refresh_keys(true).await {
        tracing::warn!(error = %e, "the issuer's keys are not readable yet");
    }
    let apply = {
        let guard = guard.clone();
        move |event: &ReceivedEvent| {
            tracing::info!(kind = ?event.kind, set = %event.set_id, "revocation event");
            guard.apply(event);
        }
    };
    if args.poll {
        let endpoint = format!("{}/oauth2/events", args.issuer.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("--issuer: {e}"))?;
        let poller = Poller::new(
            verifier.clone(),
            endpoint,
            &args.client_id,
            &args.client_secret,
            apply.clone(),
        );
        tokio::spawn(poller.run());
    }
    let ready = Arc::new(AtomicBool::new(!args.sync));
    if args.sync {
        let endpoint = format!(
            "{}/oauth2/events/snapshot",
            args.issuer.trim_end_matches('/')
        )
        .parse()
        .map_err(|e| format!("--issuer: {e}"))?;
        let credentials = (args.client_id.clone(), args.client_secret.clone());
        tokio::spawn(sync(
            verifier.clone(),
            endpoint,
            credentials,
            guard.clone(),
            ready.clone(),
        ));
    }
    let events = PushReceiver::new(verifier, apply);
    let guard = Synced {
        check: guard,
        ready,
    };

    let app = Router::new()
        .route(
            "/api",
            get(|req: Request| async move {
                let record = req.extensions().get::<TokenRecord>().cloned();
                let record = record.expect("the guard puts the record in the request");
                let sub = record.owner.as_deref().unwrap_or(&record.client_id);
                Json(serde_json::json!({ "sub": sub, "client_id": &*record.client_id }))
            }),
        )
        .layer(BearerGuardLayer::new(guard))
        .route_service("/events", events);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Server::new()
        .serve(listener, app, shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// A TLS configuration that accepts any server certificate (the demo's self-signed one).
fn insecure_tls() -> rustls::ClientConfig {
    // ring, as in the crate (deprecated in rustls 0.23.48 for want of post-quantum groups).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
