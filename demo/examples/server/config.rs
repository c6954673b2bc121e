//! The demo data: the built-in clients, users and tokens, or a `--config` file.

use std::time::{Duration, SystemTime};

use crate::{store::DemoStore, Args};
use serde::Deserialize;
use tower_oauth_revoke::{
    client_auth::{
        mtls::ClientCertificate, CertificateAuth, Client, ClientAuthMethod, ClientKeys,
        MemoryClientRegistry,
    },
    jose::RemoteKeySet,
    store::{GrantId, IssueError, TokenHash, TokenKind, TokenRecord, TokenStore},
};

/// What `--help` shows after the flags: the `--config` file format, the endpoints and the
/// environment.
pub(crate) const CONFIG_HELP: &str = r#"CONFIGURATION (--config FILE, TOML; replaces all built-in demo data):

  [[clients]]
  id = "my client"                  # any non-empty string, unique
  secret = "s3cr:t+ &x"             # leave out for a public client (client_id alone)
  name = "My app"                   # optional: shown to resource owners
  origins = ["https://app.example"] # optional: this client's allowed CORS origins
  introspect = false                # optional: may introspect any client's tokens
  admin = false                     # optional: may use the admin operations
  # jwks = '{"keys": [...]}'        # optional: public keys for private_key_jwt (RFC 7523)
  # jwks_uri = "https://app.example/jwks.json"  # optional: or where to fetch them
  # tls_client_auth_subject_dn = "CN=app,O=Example"  # optional: tls_client_auth (--client-ca)
  # tls_client_auth_san_dns = "app.example"          # optional: or by a SAN
  # self_signed_certificate = "-----BEGIN CERTIFICATE-----\n..."  # optional: for
  #                               # self_signed_tls_client_auth (--self-signed-clients)

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

ENDPOINTS:
  POST /oauth2/revoke                      token revocation (RFC 7009; CORS, JSONP)
  POST /oauth2/token                       client_credentials, password, refresh_token
  POST /oauth2/introspect                  token introspection (RFC 7662)
  GET  /.well-known/oauth-authorization-server   metadata (RFC 8414)
  GET  /userinfo                           a protected resource (Bearer)
  GET  /users/me/authorizations            the apps holding grants from the resource owner
  DELETE /users/me/authorizations[/ID]     revoke one app's grants, or every app's
                                           (the owner by Basic, or by the page's session
                                           cookie with its X-CSRF-Token)
  GET  /account                            the resource owner's page: sign in, revoke apps
  POST|GET|DELETE /account/session         the page's sign-in session

ENVIRONMENT:
  RUST_LOG   log filter (default info): one event per request on stderr"#;

/// A small, complete OAuth 2.0 authorization server built from tower-oauth-revoke.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DemoConfig {
    #[serde(default)]
    pub(crate) clients: Vec<ClientConfig>,
    #[serde(default)]
    pub(crate) users: Vec<UserConfig>,
    #[serde(default)]
    pub(crate) tokens: Vec<TokenConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientConfig {
    pub(crate) id: String,
    pub(crate) secret: Option<String>,
    #[serde(default)]
    pub(crate) origins: Vec<String>,
    pub(crate) name: Option<String>,
    /// May introspect any client's tokens (a resource server).
    #[serde(default)]
    pub(crate) introspect: bool,
    /// May use the admin operations.
    #[serde(default)]
    pub(crate) admin: bool,
    /// A JWKS document: the client's keys for `private_key_jwt`.
    pub(crate) jwks: Option<String>,
    /// Where the client publishes its JWKS.
    pub(crate) jwks_uri: Option<String>,
    /// `tls_client_auth` by this subject DN.
    pub(crate) tls_client_auth_subject_dn: Option<String>,
    /// `tls_client_auth` by this DNS SAN.
    pub(crate) tls_client_auth_san_dns: Option<String>,
    /// `self_signed_tls_client_auth` with this certificate (PEM).
    pub(crate) self_signed_certificate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserConfig {
    pub(crate) name: String,
    pub(crate) password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenConfig {
    pub(crate) value: String,
    pub(crate) client: String,
    pub(crate) user: Option<String>,
    /// Seconds until the token expires (default one day).
    pub(crate) expires_in: Option<u64>,
}

pub(crate) const BUILT_IN: &str = r#"
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

[[clients]]
id = "resource-server"
secret = "rs-secret"
name = "Resource server"
introspect = true

[[clients]]
id = "fapi-client"
name = "FAPI 2.0 app"
jwks = '{"keys":[{"kty":"EC","crv":"P-256","x":"bt4d-9FAU6qz6fGUXSxEm9OBxcvdOJqVeSriZlIDkgo","y":"RpxzoKth72Z7aKImd_pxFatIVUHXjIKuiwh4JSzVjmw","kid":"fapi-client-1","use":"sig","alg":"ES256"}]}'

[[clients]]
id = "mtls-client"
name = "Mutual-TLS app"
tls_client_auth_subject_dn = "CN=mtls-client,O=tower-oauth-revoke demo"

[[clients]]
id = "admin-client"
secret = "admin-secret"
name = "Administration"
admin = true

[[users]]
name = "alice"
password = "alice-password"

[[users]]
name = "bob"
password = "bob-password"

[[tokens]]
value = "f4839307-c5a3-3d09-8452-af56b0d70491"
client = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a"
"#;

pub(crate) fn load_config(args: &Args) -> Result<DemoConfig, String> {
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

pub(crate) fn registry(config: &DemoConfig) -> Result<MemoryClientRegistry, String> {
    let mut clients = Vec::new();
    for c in &config.clients {
        let keys = match (&c.jwks, &c.jwks_uri) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "client {:?}: give jwks or jwks_uri, not both",
                    c.id
                ))
            }
            (Some(jwks), None) => Some(
                ClientKeys::from_jwks(jwks).map_err(|e| format!("client {:?}: jwks: {e}", c.id))?,
            ),
            (None, Some(uri)) => Some(ClientKeys::remote(
                RemoteKeySet::new(uri, None).map_err(|e| format!("client {:?}: {e}", c.id))?,
            )),
            (None, None) => None,
        };
        let mut client = match (&c.secret, keys) {
            (Some(secret), keys) => {
                let client = Client::confidential(c.id.as_str(), secret);
                match keys {
                    Some(keys) => client.with_keys(keys),
                    None => client,
                }
            }
            (None, Some(keys)) => Client::private_key_jwt(c.id.as_str(), keys),
            (None, None) => match certificate_auth(c)? {
                Some(certificate) => Client::tls_client_auth(c.id.as_str(), certificate),
                None => Client::public(c.id.as_str()),
            },
        };
        if !matches!(
            client.auth_methods(),
            [ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth]
        ) {
            if let Some(certificate) = certificate_auth(c)? {
                client = client.with_certificate(certificate);
            }
        }
        client = client
            .with_origins(&c.origins)
            .map_err(|e| format!("client {:?}: {e}", c.id))?;
        if let Some(name) = &c.name {
            client = client.with_name(name.as_str());
        }
        if c.introspect {
            client = client.with_introspection();
        }
        if c.admin {
            client = client.with_admin();
        }
        clients.push(client);
    }
    Ok(MemoryClientRegistry::new(clients))
}

/// What a client registered for mutual TLS, if anything: at most one way.
fn certificate_auth(c: &ClientConfig) -> Result<Option<CertificateAuth>, String> {
    let mut found = Vec::new();
    if let Some(dn) = &c.tls_client_auth_subject_dn {
        found.push(CertificateAuth::SubjectDn(dn.clone()));
    }
    if let Some(dns) = &c.tls_client_auth_san_dns {
        found.push(CertificateAuth::SanDns(dns.clone()));
    }
    if let Some(pem) = &c.self_signed_certificate {
        let certificate = ClientCertificate::from_pem(pem)
            .map_err(|e| format!("client {:?}: self_signed_certificate: {e}", c.id))?;
        found.push(CertificateAuth::SelfSigned(vec![certificate.thumbprint()]));
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(format!(
            "client {:?}: give one of tls_client_auth_subject_dn, tls_client_auth_san_dns, self_signed_certificate",
            c.id
        )),
    }
}

pub(crate) async fn preissue(store: &DemoStore, config: &DemoConfig) -> Result<(), String> {
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
