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
//! (client_credentials, password, refresh_token), `GET /userinfo` (bearer guard),
//! `GET /users/me/authorizations` and `DELETE /users/me/authorizations/{client_id}`
//! (the resource owner, by HTTP Basic).

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use axum::{
    body::Body,
    extract::Request,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use bytes::Bytes;
use clap::Parser;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use tokio::net::TcpListener;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_oauth_revoke::{
    client_auth::{
        decode_basic, AuthFailureLimiter, AuthenticatedClient, Client, ClientKind,
        MemoryClientRegistry, RemoteAddr,
    },
    cors::CorsPolicy,
    endpoint::{Endpoint, EndpointStep, StepRequest},
    error::{set_no_store, ErrorCode, OAuthError},
    form::FormParams,
    guard::BearerGuardLayer,
    owner::{OwnerAuthorizations, ResourceOwner},
    serve::Server,
    store::{
        GrantId, IssueError, MemoryStore, OwnerGrants, RevocationOutcome, RevocationRequest,
        StoreError, TokenHash, TokenKind, TokenRecord, TokenStore,
    },
    trace::Escaped,
    RevocationEndpoint,
};

const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// The `--config` file format, shown by `--help`.
const CONFIG_HELP: &str = r#"CONFIGURATION (--config FILE, TOML; replaces all built-in demo data):

  [[clients]]
  id = "my client"                  # any non-empty string, unique
  secret = "s3cr:t+ &x"             # leave out for a public client (client_id alone)
  name = "My app"                   # optional: shown to resource owners
  origins = ["https://app.example"] # optional: this client's allowed CORS origins

  [[users]]                         # resource owners (password grant, owner API)
  name = "alice"
  password = "alice-password"

  [[tokens]]                        # optional: pre-issued access tokens
  value = "f4839307-c5a3-3d09-8452-af56b0d70491"
  client = "my client"              # must name a client above
  user = "alice"                    # optional: the resource owner
  expires_in = 86400                # optional: seconds (default one day)

Unknown keys, an empty or repeated client id, an invalid origin, or a token naming an
unknown client stop the server with a message (exit status 2).

ENVIRONMENT:
  RUST_LOG   log filter (default info): one event per request on stderr"#;

/// A small, complete OAuth 2.0 authorization server built from tower-oauth-revoke.
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
    /// share one revocation state.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Write the self-signed certificate made at start-up to FILE (PEM), for clients that
    /// want to trust it rather than skip verification.
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------
// Demo data

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoConfig {
    #[serde(default)]
    clients: Vec<ClientConfig>,
    #[serde(default)]
    users: Vec<UserConfig>,
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    id: String,
    secret: Option<String>,
    #[serde(default)]
    origins: Vec<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserConfig {
    name: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenConfig {
    value: String,
    client: String,
    user: Option<String>,
    /// Seconds until the token expires (default one day).
    expires_in: Option<u64>,
}

const BUILT_IN: &str = r#"
[[clients]]
id = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a"
secret = "FJdj7G956wqKw3d4X0BWONMIu00a"
name = "WSO2 guide sample app"

[[clients]]
id = "other-client"
secret = "other-secret"
name = "Another app"

[[clients]]
id = "spa-client"
name = "Browser app"

[[users]]
name = "alice"
password = "alice-password"

[[tokens]]
value = "f4839307-c5a3-3d09-8452-af56b0d70491"
client = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a"
"#;

fn load_config(args: &Args) -> Result<DemoConfig, String> {
    let (text, source) = match &args.config {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (BUILT_IN.to_owned(), "built-in demo data".to_owned()),
    };
    let config: DemoConfig = toml::from_str(&text).map_err(|e| format!("{source}: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    for client in &config.clients {
        if client.id.is_empty() {
            return Err(format!("{source}: a client has an empty id"));
        }
        if !seen.insert(client.id.clone()) {
            return Err(format!(
                "{source}: the client id {:?} is repeated",
                client.id
            ));
        }
    }
    for token in &config.tokens {
        if !seen.contains(&token.client) {
            return Err(format!(
                "{source}: a token names the unknown client {:?}",
                token.client
            ));
        }
    }
    Ok(config)
}

fn registry(config: &DemoConfig) -> Result<MemoryClientRegistry, String> {
    let mut clients = Vec::new();
    for c in &config.clients {
        let mut client = match &c.secret {
            Some(secret) => Client::confidential(c.id.as_str(), secret),
            None => Client::public(c.id.as_str()),
        };
        client = client
            .with_origins(&c.origins)
            .map_err(|e| format!("client {:?}: {e}", c.id))?;
        if let Some(name) = &c.name {
            client = client.with_name(name.as_str());
        }
        clients.push(client);
    }
    Ok(MemoryClientRegistry::new(clients))
}

// ---------------------------------------------------------------------------------------
// The token store: memory by default, Redis with --redis.

#[derive(Clone)]
enum DemoStore {
    Memory(MemoryStore),
    Redis(tower_oauth_revoke::store::RedisStore),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            DemoStore::Memory($s) => $e.await,
            DemoStore::Redis($s) => $e.await,
        }
    };
}

impl TokenStore for DemoStore {
    async fn issue(&self, token: TokenHash, record: TokenRecord) -> Result<(), IssueError> {
        delegate!(self, s => s.issue(token, record))
    }
    async fn inspect(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        delegate!(self, s => s.inspect(token))
    }
    async fn revoke(
        &self,
        token: &TokenHash,
        request: RevocationRequest<'_>,
    ) -> Result<RevocationOutcome, StoreError> {
        delegate!(self, s => s.revoke(token, request))
    }
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        delegate!(self, s => s.revoke_grant(grant))
    }
    async fn revoke_client_for_owner(
        &self,
        owner: &str,
        client_id: &str,
    ) -> Result<usize, StoreError> {
        delegate!(self, s => s.revoke_client_for_owner(owner, client_id))
    }
    async fn clients_of_owner(&self, owner: &str) -> Result<Vec<OwnerGrants>, StoreError> {
        delegate!(self, s => s.clients_of_owner(owner))
    }
}

async fn open_store(redis: Option<&str>) -> Result<DemoStore, String> {
    match redis {
        None => Ok(DemoStore::Memory(MemoryStore::new())),
        Some(url) => tower_oauth_revoke::store::RedisStore::connect(url)
            .await
            .map(DemoStore::Redis)
            .map_err(|e| format!("cannot use Redis at {url}: {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// The token endpoint (demo issuance; it exists to exercise revocation end to end).

#[derive(Clone)]
struct Issuer {
    store: DemoStore,
    users: Users,
}

fn json_response(status: StatusCode, body: serde_json::Value) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_no_store(response.headers_mut());
    response
}

/// The successful token response of RFC 6749 §5.1.
fn token_response(access: &str, refresh: &str) -> http::Response<Bytes> {
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL.as_secs(),
            "refresh_token": refresh,
        }),
    )
}

/// The resource owners, and a limit on failed password checks per (user, address), as for
/// clients: 20 a minute, then 429 + `Retry-After`.
///
/// Passwords are kept as Argon2id hashes (PHC strings), as a password database should keep
/// them; SHA-256, fine for the generated secrets of clients, is far too fast for passwords
/// people choose.
#[derive(Clone)]
struct Users {
    hashes: Arc<HashMap<String, String>>,
    /// Checked for an unknown user, so that it costs what a wrong password costs.
    decoy: Arc<String>,
    limiter: AuthFailureLimiter,
}

enum UserAuthError {
    Invalid,
    Limited(u64),
}

/// An Argon2id hash of `password` with a random salt, as a PHC string.
fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes of salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with its default parameters")
        .to_string()
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Users {
    fn new(config: &DemoConfig) -> Self {
        Self {
            hashes: Arc::new(
                config
                    .users
                    .iter()
                    .map(|u| (u.name.clone(), hash_password(&u.password)))
                    .collect(),
            ),
            decoy: Arc::new(hash_password("decoy")),
            limiter: AuthFailureLimiter::new(20, Duration::from_secs(60)),
        }
    }

    fn authenticate(
        &self,
        name: &str,
        password: &str,
        addr: Option<RemoteAddr>,
    ) -> Result<(), UserAuthError> {
        let attempt = self
            .limiter
            .begin(name, addr)
            .map_err(UserAuthError::Limited)?;
        let ok = match self.hashes.get(name) {
            Some(hash) => verify_password(password, hash),
            None => {
                let _ = verify_password(password, &self.decoy);
                false
            }
        };
        if ok {
            attempt.succeeded();
            Ok(())
        } else {
            attempt.failed();
            Err(UserAuthError::Invalid)
        }
    }
}

fn too_many_attempts(retry_after: u64) -> OAuthError {
    OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TemporarilyUnavailable,
        "too many failed attempts; try again later",
    )
    .with_retry_after(retry_after)
}

impl Issuer {
    async fn issue_pair(
        &self,
        client: &AuthenticatedClient,
        owner: Option<&str>,
    ) -> Result<http::Response<Bytes>, OAuthError> {
        let grant = GrantId::random();
        let now = SystemTime::now();
        let mut refresh_record = TokenRecord::new(
            TokenKind::RefreshToken,
            client.id(),
            grant,
            now + REFRESH_TOKEN_TTL,
        );
        refresh_record.owner = owner.map(Into::into);
        let mut access_record = TokenRecord::new(
            TokenKind::AccessToken,
            client.id(),
            grant,
            now + ACCESS_TOKEN_TTL,
        );
        access_record.owner = owner.map(Into::into);
        let refresh = self.mint(refresh_record).await?;
        let access = self.mint(access_record).await?;
        Ok(token_response(&access, &refresh))
    }

    /// A new token, registered with the store.
    async fn mint(&self, record: TokenRecord) -> Result<String, OAuthError> {
        self.store.mint(record).await.map_err(|e| match e {
            IssueError::GrantRevoked => OAuthError::invalid_grant("the grant has been revoked"),
            IssueError::Store(_) => {
                OAuthError::temporarily_unavailable("the token store is unavailable", 1)
            }
        })
    }

    async fn token(
        &self,
        params: &FormParams,
        client: &AuthenticatedClient,
        addr: Option<RemoteAddr>,
    ) -> Result<http::Response<Bytes>, OAuthError> {
        match params.get("grant_type") {
            Some("client_credentials") => {
                if client.kind() == ClientKind::Public {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::UnauthorizedClient,
                        "a public client cannot use client_credentials",
                    ));
                }
                self.issue_pair(client, None).await
            }
            Some("password") => {
                let (Some(user), Some(password)) = (params.get("username"), params.get("password"))
                else {
                    return Err(OAuthError::invalid_request(
                        "`username` and `password` are required",
                    ));
                };
                match self.users.authenticate(user, password, addr) {
                    Ok(()) => {}
                    Err(UserAuthError::Limited(retry)) => return Err(too_many_attempts(retry)),
                    Err(UserAuthError::Invalid) => {
                        return Err(OAuthError::invalid_grant(
                            "the resource owner credentials are invalid",
                        ))
                    }
                }
                self.issue_pair(client, Some(user)).await
            }
            Some("refresh_token") => {
                let Some(refresh) = params.get("refresh_token").filter(|t| !t.is_empty()) else {
                    return Err(OAuthError::invalid_request("`refresh_token` is required"));
                };
                let record = self
                    .store
                    .inspect(&TokenHash::of(refresh))
                    .await
                    .map_err(|_| {
                        OAuthError::temporarily_unavailable("the token store is unavailable", 1)
                    })?;
                let record = match record {
                    Some(r)
                        if r.kind == TokenKind::RefreshToken && &*r.client_id == client.id() =>
                    {
                        r
                    }
                    _ => {
                        return Err(OAuthError::invalid_grant(
                            "the refresh token is invalid, expired or revoked",
                        ))
                    }
                };
                let mut access_record = TokenRecord::new(
                    TokenKind::AccessToken,
                    client.id(),
                    record.grant,
                    SystemTime::now() + ACCESS_TOKEN_TTL,
                );
                access_record.owner = record.owner.clone();
                let access = self.mint(access_record).await?;
                Ok(token_response(&access, refresh))
            }
            Some(other) if !other.is_empty() => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                "the grant type is not supported",
            )),
            _ => Err(OAuthError::invalid_request("`grant_type` is required")),
        }
    }
}

impl EndpointStep for Issuer {
    async fn answer(&self, request: StepRequest<'_>) -> Result<http::Response<Bytes>, OAuthError> {
        self.token(request.params(), request.client(), request.remote_addr())
            .await
    }
}

// ---------------------------------------------------------------------------------------
// Request log: one event per request, never a token, a secret or a query string.

#[derive(Clone)]
struct LoggedClient(Arc<str>);

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let client_id = response
        .extensions()
        .get::<AuthenticatedClient>()
        .map(|c| c.id().to_owned())
        .or_else(|| {
            response
                .extensions()
                .get::<LoggedClient>()
                .map(|c| c.0.to_string())
        })
        .unwrap_or_else(|| "-".to_owned());
    let outcome = match response.extensions().get::<RevocationOutcome>() {
        Some(RevocationOutcome::Revoked { .. }) => "revoked",
        Some(RevocationOutcome::NotActive) => "not_active",
        Some(RevocationOutcome::IssuedToAnotherClient) => "foreign_token",
        None if response.status().is_success() => "ok",
        None => "error",
    };
    tracing::info!(
        %method,
        path = %Escaped(&path),
        client_id = %Escaped(&client_id),
        status = response.status().as_u16(),
        outcome,
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    response
}

// ---------------------------------------------------------------------------------------
// The application.

fn app(args: &Args, config: &DemoConfig, store: DemoStore) -> Result<Router, String> {
    let registry = registry(config)?;
    let limiter = AuthFailureLimiter::new(20, Duration::from_secs(60));
    let users = Users::new(config);
    // The token endpoint serves browser apps too (a public client's password grant).
    let token_cors = CorsPolicy::new()
        .origins(&args.cors_origins)
        .map_err(|e| format!("--cors-origin: {e}"))?;

    let revoke = RevocationEndpoint::builder(registry.clone(), store.clone())
        .realm("demo")
        .limit_failures(limiter.clone())
        .cors_origins(&args.cors_origins)
        .jsonp(true)
        // The request log below reads the client and the outcome from the response.
        .annotate_responses(true)
        .build()
        .map_err(|e| format!("--cors-origin: {e}"))?;

    let issuer = Issuer {
        store: store.clone(),
        users: users.clone(),
    };
    // The token endpoint is the crate's pipeline (CORS, form, client authentication and
    // its limiter, the origin check) with the demo's own last step. It serves browser apps
    // too (a public client's password grant).
    let token = Endpoint::with_step(registry.clone(), issuer)
        .realm("demo")
        .limit_failures(limiter)
        .cors_origins(&args.cors_origins)
        .annotate_responses(true)
        .build()
        .map_err(|e| format!("--cors-origin: {e}"))?;

    let userinfo = ServiceBuilder::new()
        .layer(BearerGuardLayer::new(store.clone()).realm("demo"))
        .service(service_fn(|req: http::Request<Body>| async move {
            let record = req.extensions().get::<TokenRecord>().expect("bearer guard");
            let sub = record.owner.as_deref().unwrap_or(&record.client_id);
            let mut response = json_response(
                StatusCode::OK,
                serde_json::json!({ "sub": sub, "client_id": &*record.client_id }),
            );
            response
                .extensions_mut()
                .insert(LoggedClient(record.client_id.clone()));
            Ok::<_, Infallible>(response.map(Full::new))
        }));

    let owner_api =
        OwnerAuthorizations::new(store, registry.clone()).mount_path("/users/me/authorizations");
    let owner_users = users;
    let owner_registry = registry.clone();
    let owners = service_fn(move |mut req: http::Request<Body>| {
        let users = owner_users.clone();
        let owner_api = owner_api.clone();
        let (cors, registry) = (token_cors.clone(), owner_registry.clone());
        async move {
            // A page on another site cannot spend a user's password budget.
            if let Err(err) = cors.refuse_unknown_origin(&registry, req.headers()).await {
                return Ok::<_, Infallible>(err.to_response());
            }
            if req.headers().get_all(header::AUTHORIZATION).iter().count() > 1 {
                return Ok(OAuthError::invalid_request(
                    "the authorization header must not be repeated",
                )
                .to_response());
            }
            let addr = req.extensions().get::<RemoteAddr>().copied();
            let user = match req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(decode_basic)
            {
                Some((name, password)) => match users.authenticate(&name, &password, addr) {
                    Ok(()) => Some(name),
                    Err(UserAuthError::Limited(retry)) => {
                        return Ok::<_, Infallible>(too_many_attempts(retry).to_response());
                    }
                    Err(UserAuthError::Invalid) => None,
                },
                None => None,
            };
            let Some(name) = user else {
                let mut response: http::Response<Full<Bytes>> = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::AccessDenied,
                    "the resource owner must authenticate",
                )
                .to_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"users\""),
                );
                return Ok::<_, Infallible>(response);
            };
            req.extensions_mut().insert(ResourceOwner::new(name));
            owner_api.oneshot(req).await
        }
    });

    Ok(Router::new()
        .route_service("/oauth2/revoke", revoke)
        .route_service("/oauth2/token", token)
        .route_service("/userinfo", userinfo)
        .route_service("/users/me/authorizations", owners.clone())
        .route_service("/users/me/authorizations/{client_id}", owners)
        .fallback(|| async {
            let response: http::Response<Full<Bytes>> =
                OAuthError::invalid_request("no such endpoint")
                    .with_status(StatusCode::NOT_FOUND)
                    .to_response();
            response.into_response()
        })
        .layer(RequestBodyDeadlineLayer::new(Duration::from_secs(10)))
        .layer(middleware::from_fn(log_request)))
}

async fn preissue(store: &DemoStore, config: &DemoConfig) -> Result<(), String> {
    for token in &config.tokens {
        let expires =
            SystemTime::now() + Duration::from_secs(token.expires_in.unwrap_or(24 * 3600));
        let mut record = TokenRecord::new(
            TokenKind::AccessToken,
            token.client.as_str(),
            GrantId::random(),
            expires,
        );
        record.owner = token.user.as_deref().map(Into::into);
        match store.issue(TokenHash::of(&token.value), record).await {
            Ok(()) | Err(IssueError::GrantRevoked) => {}
            Err(IssueError::Store(e)) => return Err(format!("cannot pre-issue tokens: {e}")),
        }
    }
    Ok(())
}

fn tls_acceptor(cert_out: Option<&std::path::Path>) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| format!("cannot make a certificate: {e}"))?;
    if let Some(path) = cert_out {
        std::fs::write(path, certified.cert.pem())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .map_err(|e| format!("cannot use the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let config = load_config(&args)?;
    let store = open_store(args.redis.as_deref()).await?;
    preissue(&store, &config).await?;
    let router = app(&args, &config, store)?;
    let tls = if args.plain {
        None
    } else {
        Some(tls_acceptor(args.cert_out.as_deref())?)
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = shutdown_signal()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{local}");
    print_demo_credentials(&config);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    // Idle connections closed after 10 s whatever their stage, connections capped below
    // the descriptor limit, accept errors backed off: see `tower_oauth_revoke::serve`.
    let server = Server::new().idle_timeout(Duration::from_secs(10));
    tracing::debug!(max_connections = server.connection_limit(), "serving");
    let served = match tls {
        Some(tls) => {
            server
                .serve_with(listener, move |stream| tls.accept(stream), router, shutdown)
                .await
        }
        None => server.serve(listener, router, shutdown).await,
    };
    tracing::info!("stopped");
    served.map_err(|e| e.to_string())?;
    Ok(())
}
