//! The demo authorization server: a small, complete OAuth 2.0 server built from the
//! crate's layers.
//!
//! ```text
//! cargo run --release --example server                # https://127.0.0.1:9443
//! cargo run --release --example server -- --plain    # plain HTTP
//! cargo run --release --example server -- --help
//! ```
//!
//! Endpoints: `POST /oauth2/revoke` (RFC 7009, CORS, JSONP), `POST /oauth2/token`
//! (client_credentials, password, refresh_token), `POST /oauth2/introspect` (RFC 7662),
//! `GET /.well-known/oauth-authorization-server` (RFC 8414), `GET /.well-known/jwks.json`,
//! `POST /oauth2/events` (RFC 8936 poll), `GET /oauth2/events/snapshot` (the revocations
//! still in force, as SETs), `POST /admin/revocations` (bulk), `GET /userinfo` (bearer guard), `GET`/`DELETE /users/me/authorizations` and
//! `DELETE /users/me/authorizations/{client_id}` (the resource owner, by HTTP Basic or the
//! page's session), and `GET /account`: the resource owner's page (sign in, revoke an app's
//! access or every app's).

mod account;
mod app;
mod config;
mod logfmt;
mod session;
mod soap;
mod store;
mod tokens;
mod users;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use crate::{
    app::app,
    config::{load_config, preissue, DemoConfig, CONFIG_HELP},
    store::open_store,
};
use clap::Parser;
use tokio::net::TcpListener;
use tower_oauth_revoke::{client_auth::mtls::MtlsAcceptor, jose::SigningKey, serve::Server};

#[derive(Debug, Parser)]
#[command(name = "server", version, after_long_help = CONFIG_HELP)]
struct Args {
    /// Socket address to listen on.
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain: bool,
    /// An allowed CORS origin (e.g. http://127.0.0.1:8765); may be repeated.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// A TOML file of clients, users and tokens that replaces the built-in demo data (its
    /// format: see the end of --help).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep tokens in Redis at URL (e.g. redis://127.0.0.1:6379), so that several servers
    /// share one revocation state; events are pushed and polled from its stream by cursor.
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    redis: Option<String>,
    /// The prefix of every Redis key of this server's store (its hash tag): servers that
    /// share revocation state and event delivery use the same one.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "oauth-revoke",
        requires = "redis"
    )]
    redis_key_prefix: String,
    /// Keep tokens in PostgreSQL at URL (e.g. postgres://postgres@127.0.0.1:5432/test),
    /// durably, so that several servers share one revocation state; the schema is
    /// migrated at start.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Write the self-signed certificate made at start-up to FILE (PEM), for clients that
    /// want to trust it rather than skip verification.
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// The issuer identifier published in the metadata and in introspection answers
    /// (default: the URL it listens on).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The lifetime of access tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    access_token_ttl: u64,
    /// Issue access tokens as JWTs (RFC 9068, EdDSA); refresh tokens stay opaque.
    #[arg(long)]
    jwt: bool,
    /// The private key (PEM: Ed25519, or P-256 PKCS#8 or SEC1) that signs JWTs and events;
    /// nodes sharing a store share it (default: an Ed25519 key made at start-up).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Ask clients for a TLS certificate and accept those chained to a CA of FILE (PEM), for
    /// `tls_client_auth` (RFC 8705 §2.1) by subject DN or SAN.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["plain", "self_signed_clients"])]
    client_ca: Option<PathBuf>,
    /// Ask clients for a TLS certificate and accept any whose key signs the handshake, for
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): the client must have registered it.
    #[arg(long, conflicts_with = "plain")]
    self_signed_clients: bool,
    /// Push every revocation as a Security Event Token to URL (RFC 8935); may be repeated.
    #[arg(long = "event-webhook", value_name = "URL")]
    event_webhooks: Vec<String>,
}

fn signing_key(path: Option<&std::path::Path>) -> Result<SigningKey, String> {
    match path {
        None => Ok(SigningKey::generate()),
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("--signing-key: {e}"))
        }
    }
}

/// How the server terminates TLS: asking for client certificates or not.
enum Tls {
    Plain(tokio_rustls::TlsAcceptor),
    Mutual(MtlsAcceptor),
}

fn tls_acceptor(args: &Args) -> Result<Tls, String> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| format!("cannot make a certificate: {e}"))?;
    if let Some(path) = &args.cert_out {
        std::fs::write(path, certified.cert.pem())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    if let Some(path) = &args.client_ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let ca = ca.map_err(|e| format!("--client-ca: {e}"))?;
            roots.add(ca).map_err(|e| format!("--client-ca: {e}"))?;
        }
        if roots.is_empty() {
            return Err("--client-ca: no certificate in the file".into());
        }
        return MtlsAcceptor::client_ca(roots, vec![cert], key)
            .map(Tls::Mutual)
            .map_err(|e| format!("--client-ca: {e}"));
    }
    if args.self_signed_clients {
        return MtlsAcceptor::self_signed_clients(vec![cert], key)
            .map(Tls::Mutual)
            .map_err(|e| e.to_string());
    }
    // ring, as everywhere in the crate (rustls 0.23.48 deprecates its provider function
    // for want of post-quantum key exchange).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("cannot use the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls::Plain(tokio_rustls::TlsAcceptor::from(Arc::new(
        config,
    ))))
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed at once, before the server
/// says it is listening, so that no early signal is missed.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn print_demo_credentials(config: &DemoConfig) {
    println!("clients:");
    for c in &config.clients {
        match &c.secret {
            Some(secret) => println!("  {}  secret {}", c.id, secret),
            None if c.jwks.is_some() || c.jwks_uri.is_some() => {
                println!("  {}  private_key_jwt (its registered keys)", c.id)
            }
            None if c.tls_client_auth_subject_dn.is_some()
                || c.tls_client_auth_san_dns.is_some() =>
            {
                println!(
                    "  {}  tls_client_auth (a certificate, with --client-ca)",
                    c.id
                )
            }
            None if c.self_signed_certificate.is_some() => println!(
                "  {}  self_signed_tls_client_auth (its certificate, with --self-signed-clients)",
                c.id
            ),
            None => println!("  {}  (public client)", c.id),
        }
    }
    println!("users:");
    for u in &config.users {
        println!("  {}  password {}", u.name, u.password);
    }
    for t in &config.tokens {
        println!("pre-issued access token {} (client {})", t.value, t.client);
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
    // The request log is written by a thread of its own, in batches: a request never waits
    // on stderr. The guard flushes what is left when `run` returns.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let logs = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        logs.with_ansi(true).init();
    } else {
        // The same layout, made faster: see logfmt.rs.
        logs.with_ansi(false).event_format(logfmt::Lines).init();
    }

    let config = load_config(&args)?;
    let key = signing_key(args.signing_key.as_deref())?;
    let store = open_store(
        args.redis
            .as_deref()
            .map(|url| (url, args.redis_key_prefix.as_str())),
        args.postgres.as_deref(),
    )
    .await?;
    preissue(&store, &config).await?;
    let tls = if args.plain {
        None
    } else {
        Some(tls_acceptor(&args)?)
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{local}");
    let issuer = args.issuer.clone().unwrap_or_else(|| url.clone());
    let router = app(&args, &config, store, &issuer, key).await?;
    let shutdown = shutdown_signal()?;
    println!("listening on {url}");
    print_demo_credentials(&config);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    // Idle connections closed after 10 s whatever their stage, connections capped below
    // the descriptor limit, accept errors backed off: see `tower_oauth_revoke::serve`.
    let server = Server::new().idle_timeout(Duration::from_secs(10));
    tracing::debug!(max_connections = server.connection_limit(), "serving");
    let served = match tls {
        Some(Tls::Plain(tls)) => {
            server
                .serve_with(listener, move |stream| tls.accept(stream), router, shutdown)
                .await
        }
        Some(Tls::Mutual(tls)) => server.serve_tls(listener, tls, router, shutdown).await,
        None => server.serve(listener, router, shutdown).await,
    };
    tracing::info!("stopped");
    served.map_err(|e| e.to_string())?;
    Ok(())
}
