//! The registered clients, what client authentication and the CORS origin checks both ask
//! about: [`Client`], the [`ClientRegistry`] seam, the in-memory registry, and the
//! [`AuthenticatedClient`] a request carries once authenticated. All of it is public as
//! [`client_auth`](crate::client_auth)'s.

use std::{collections::HashMap, fmt, future::Future, sync::Arc};

use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::origin::{InvalidOrigin, Origin};

source_error! {
    /// The client registry could not be asked (its database is down, say); nothing may be
    /// assumed about the client. The endpoints answer 503 `temporarily_unavailable`.
    pub struct RegistryError("client registry unavailable");
    /// Wraps the registry's own error.
    pub fn new;
}

/// How a client authenticated (the registered names of [RFC 7591 §2]).
///
/// [RFC 7591 §2]: https://www.rfc-editor.org/rfc/rfc7591#section-2
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `none`: a public client, identified by `client_id` alone.
    None,
    /// `private_key_jwt`: a JWT signed with a key the client registered ([RFC 7523 §2.2]),
    /// checked by [`ClientAssertions`](crate::client_auth::ClientAssertions) (feature `jwt`).
    ///
    /// [RFC 7523 §2.2]: https://www.rfc-editor.org/rfc/rfc7523#section-2.2
    PrivateKeyJwt,
    /// `tls_client_auth`: a client certificate chained to a trusted CA, of the subject DN or
    /// SAN the client registered ([RFC 8705 §2.1]; feature `mtls`).
    ///
    /// [RFC 8705 §2.1]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1
    TlsClientAuth,
    /// `self_signed_tls_client_auth`: a client certificate the client registered, by its
    /// SHA-256 thumbprint ([RFC 8705 §2.2]; feature `mtls`).
    ///
    /// [RFC 8705 §2.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.2
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

/// What a client registered for mutual-TLS client authentication ([RFC 8705 §2]): the
/// certificate it authenticates with, by subject or SAN (`tls_client_auth`, a certificate
/// chained to a trusted CA) or by thumbprint (`self_signed_tls_client_auth`).
///
/// ```
/// use tower_oauth_revoke::client_auth::{CertificateAuth, Client, ClientAuthMethod};
///
/// let client = Client::tls_client_auth("bank-app", CertificateAuth::SubjectDn("CN=bank-app,O=Bank".into()));
/// assert_eq!(client.auth_methods(), [ClientAuthMethod::TlsClientAuth]);
/// ```
///
/// [RFC 8705 §2]: https://www.rfc-editor.org/rfc/rfc8705#section-2
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateAuth {
    /// `tls_client_auth_subject_dn`: the subject, in RFC 4514 form.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`.
    SanDns(String),
    /// `tls_client_auth_san_uri`.
    SanUri(String),
    /// `tls_client_auth_san_ip`.
    SanIp(String),
    /// `tls_client_auth_san_email`.
    SanEmail(String),
    /// `self_signed_tls_client_auth`: the SHA-256 thumbprints (`x5t#S256`) of the
    /// certificates the client registered (more than one while it rolls one over).
    SelfSigned(Vec<[u8; 32]>),
}

impl CertificateAuth {
    /// The method it is for.
    pub fn method(&self) -> ClientAuthMethod {
        match self {
            CertificateAuth::SelfSigned(_) => ClientAuthMethod::SelfSignedTlsClientAuth,
            _ => ClientAuthMethod::TlsClientAuth,
        }
    }
}

/// Whether a client can keep a secret ([RFC 6749 §2.1]).
///
/// [RFC 6749 §2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// A confidential client: authenticates with its secret.
    Confidential,
    /// A public client (a browser or native app): identified by `client_id` alone.
    Public,
}

/// The SHA-256 digest of a client secret, compared in constant time.
///
/// Registries keep digests, never secrets. SHA-256 suits the high-entropy, generated
/// secrets OAuth servers issue; it is not meant for human-chosen passwords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of a secret.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A digest from its 32 bytes (e.g. read from a database).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `secret` hashes to this digest. The work and the comparison do not depend on
    /// where the two differ.
    pub fn verify(&self, secret: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        presented.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// A registered client: its id, kind, allowed authentication methods, allowed CORS
/// origins, and secret digest. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    id: Arc<str>,
    kind: ClientKind,
    methods: Vec<ClientAuthMethod>,
    origins: Vec<Origin>,
    secret: Option<SecretDigest>,
    name: Option<String>,
    capabilities: Capabilities,
    #[cfg(feature = "jwt")]
    keys: Option<crate::jose::ClientKeys>,
    certificate: Option<CertificateAuth>,
}

/// What a client may do beyond its own tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Capabilities {
    introspect_any: bool,
    admin: bool,
}

debug_fields!(Client {
    id: inner.id,
    kind: inner.kind,
    methods: inner.methods,
    origins: inner.origins
});

impl Client {
    /// A confidential client with its secret (only its digest is kept). It may use
    /// `client_secret_basic` and `client_secret_post`.
    pub fn confidential(id: impl Into<Arc<str>>, secret: &str) -> Self {
        Self::confidential_with_digest(id, SecretDigest::of(secret))
    }

    /// A confidential client with a stored secret digest.
    pub fn confidential_with_digest(id: impl Into<Arc<str>>, digest: SecretDigest) -> Self {
        Self::build(
            id.into(),
            ClientKind::Confidential,
            vec![
                ClientAuthMethod::ClientSecretBasic,
                ClientAuthMethod::ClientSecretPost,
            ],
            Some(digest),
        )
    }

    /// A public client: authenticates by `client_id` alone (method `none`).
    pub fn public(id: impl Into<Arc<str>>) -> Self {
        Self::build(
            id.into(),
            ClientKind::Public,
            vec![ClientAuthMethod::None],
            None,
        )
    }

    /// A confidential client that authenticates with `private_key_jwt` alone: assertions
    /// signed by one of `keys` (feature `jwt`).
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn private_key_jwt(id: impl Into<Arc<str>>, keys: crate::jose::ClientKeys) -> Self {
        Self::build(
            id.into(),
            ClientKind::Confidential,
            vec![ClientAuthMethod::PrivateKeyJwt],
            None,
        )
        .edit(|c| c.keys = Some(keys))
    }

    /// Registers the client's public keys and lets it use `private_key_jwt` besides its
    /// other methods (feature `jwt`). A public client stays public: it has no key to prove.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    #[must_use]
    pub fn with_keys(self, keys: crate::jose::ClientKeys) -> Self {
        if self.kind() == ClientKind::Public {
            return self;
        }
        self.edit(|c| {
            c.keys = Some(keys);
            if !c.methods.contains(&ClientAuthMethod::PrivateKeyJwt) {
                c.methods.push(ClientAuthMethod::PrivateKeyJwt);
            }
        })
    }

    /// The client's registered public keys, if any (feature `jwt`).
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn keys(&self) -> Option<&crate::jose::ClientKeys> {
        self.inner.keys.as_ref()
    }

    /// A confidential client that authenticates by its TLS client certificate alone
    /// (`tls_client_auth` or `self_signed_tls_client_auth`, as `certificate` says; feature
    /// `mtls` reads the certificate).
    pub fn tls_client_auth(id: impl Into<Arc<str>>, certificate: CertificateAuth) -> Self {
        let method = certificate.method();
        Self::build(id.into(), ClientKind::Confidential, vec![method], None)
            .edit(|c| c.certificate = Some(certificate))
    }

    /// Registers the client's certificate and lets it authenticate with it besides its
    /// other methods. A public client stays public.
    #[must_use]
    pub fn with_certificate(self, certificate: CertificateAuth) -> Self {
        if self.kind() == ClientKind::Public {
            return self;
        }
        let method = certificate.method();
        self.edit(|c| {
            c.certificate = Some(certificate);
            c.methods.retain(|m| {
                !matches!(
                    m,
                    ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
                )
            });
            c.methods.push(method);
        })
    }

    /// What the client registered for mutual-TLS authentication, if anything.
    pub fn certificate_auth(&self) -> Option<&CertificateAuth> {
        self.inner.certificate.as_ref()
    }

    fn build(
        id: Arc<str>,
        kind: ClientKind,
        methods: Vec<ClientAuthMethod>,
        secret: Option<SecretDigest>,
    ) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                id,
                kind,
                methods,
                origins: Vec::new(),
                secret,
                name: None,
                capabilities: Capabilities::default(),
                #[cfg(feature = "jwt")]
                keys: None,
                certificate: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut ClientInner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let old = &self.inner;
                let mut copy = ClientInner {
                    id: old.id.clone(),
                    kind: old.kind,
                    methods: old.methods.clone(),
                    origins: old.origins.clone(),
                    secret: old.secret,
                    name: old.name.clone(),
                    capabilities: old.capabilities,
                    #[cfg(feature = "jwt")]
                    keys: old.keys.clone(),
                    certificate: old.certificate.clone(),
                };
                f(&mut copy);
                self.inner = Arc::new(copy);
            }
        }
        self
    }

    /// Restricts the authentication methods a confidential client may use.
    #[must_use]
    pub fn with_auth_methods(self, methods: impl IntoIterator<Item = ClientAuthMethod>) -> Self {
        let methods: Vec<_> = methods.into_iter().collect();
        self.edit(|c| c.methods = methods)
    }

    /// Sets the browser origins this client may call from (CORS).
    ///
    /// Fails on an origin that is not a valid origin (see [`Origin::parse`]).
    pub fn with_origins<I, T>(self, origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let origins = Origin::parse_all(origins)?;
        Ok(self.edit(|c| c.origins = origins))
    }

    /// Sets a display name, shown to resource owners.
    #[must_use]
    pub fn with_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.name = Some(name))
    }

    /// Lets the client introspect any client's tokens ([RFC 7662]): a resource server.
    /// Without it, a confidential client sees only its own tokens as active.
    ///
    /// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
    #[must_use]
    pub fn with_introspection(self) -> Self {
        self.edit(|c| c.capabilities.introspect_any = true)
    }

    /// Lets the client use admin operations (bulk revocation).
    #[must_use]
    pub fn with_admin(self) -> Self {
        self.edit(|c| c.capabilities.admin = true)
    }

    /// Whether the client may introspect any client's tokens.
    pub fn may_introspect_any(&self) -> bool {
        self.inner.capabilities.introspect_any
    }

    /// Whether the client may use admin operations.
    pub fn is_admin(&self) -> bool {
        self.inner.capabilities.admin
    }

    /// The client id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The client id, shared.
    pub fn id_arc(&self) -> &Arc<str> {
        &self.inner.id
    }

    /// Public or confidential.
    pub fn kind(&self) -> ClientKind {
        self.inner.kind
    }

    /// The authentication methods the client may use.
    pub fn auth_methods(&self) -> &[ClientAuthMethod] {
        &self.inner.methods
    }

    /// The client's allowed CORS origins.
    pub fn origins(&self) -> &[Origin] {
        &self.inner.origins
    }

    /// Whether a request's `Origin` is one of this client's.
    pub fn allows_origin(&self, origin: &HeaderValue) -> bool {
        self.inner.origins.iter().any(|o| o.matches(origin))
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Verifies a presented secret in constant time; a client without a secret verifies
    /// nothing, at the same cost.
    pub fn verify_secret(&self, secret: &str) -> bool {
        match &self.inner.secret {
            Some(digest) => digest.verify(secret),
            None => {
                let _ = DECOY.verify(secret);
                false
            }
        }
    }
}

/// Compared against when the client is unknown, so that an unknown client costs the same
/// work as a wrong secret.
pub(crate) const DECOY: SecretDigest = SecretDigest([0x5a; 32]);

/// Where clients are registered: the seam between client authentication and the host's
/// client database.
///
/// Both methods must answer from the same data: a CORS preflight asks
/// [`origin_registered`](Self::origin_registered) (it carries no credentials), the request
/// that follows is checked against the authenticated client's own
/// [`origins`](Client::origins). A registry that answered `false` to the first while its
/// clients listed origins would let the request through while the browser, lacking
/// `Access-Control-*` headers on the preflight, reports a CORS error. Run
/// [`conformance::check`](crate::client_auth::conformance::check) in your registry's tests.
///
/// ```
/// use http::HeaderValue;
/// use tower_oauth_revoke::client_auth::{Client, ClientRegistry, RegistryError};
///
/// /// A registry that knows one public client, a browser app.
/// #[derive(Clone)]
/// struct OneClient(Client);
///
/// impl ClientRegistry for OneClient {
///     async fn find_client(&self, client_id: &str) -> Result<Option<Client>, RegistryError> {
///         Ok((client_id == self.0.id()).then(|| self.0.clone()))
///     }
///
///     async fn origin_registered(&self, origin: &HeaderValue) -> Result<bool, RegistryError> {
///         Ok(self.0.allows_origin(origin))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let spa = Client::public("spa").with_origins(["https://app.example.com"]).unwrap();
/// tower_oauth_revoke::client_auth::conformance::check(&OneClient(spa.clone()), [spa]).await;
/// # }
/// ```
pub trait ClientRegistry: Clone + Send + Sync + 'static {
    /// The client with this id, if registered. An error means the registry could not be
    /// asked (the endpoint answers 503), not that the client is unknown.
    fn find_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Client>, RegistryError>> + Send;

    /// Whether any registered client allows this browser origin (exactly: scheme, host and
    /// port, as [`Client::allows_origin`] compares). CORS preflights ask this; it must be
    /// `true` for every origin some client lists, and `false` for any other.
    fn origin_registered(
        &self,
        origin: &HeaderValue,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;
}

impl<T: ClientRegistry> ClientRegistry for Arc<T> {
    forward_to_pointee! {
        fn find_client(&self, client_id: &str)
            -> impl Future<Output = Result<Option<Client>, RegistryError>> + Send;
        fn origin_registered(&self, origin: &HeaderValue)
            -> impl Future<Output = Result<bool, RegistryError>> + Send;
    }
}

/// An in-memory [`ClientRegistry`], fixed at construction. Keeps secret digests only.
///
/// ```
/// use tower_oauth_revoke::client_auth::{Client, MemoryClientRegistry};
///
/// let registry = MemoryClientRegistry::new([
///     Client::confidential("server-app", "a-long-random-secret"),
///     Client::public("spa").with_origins(["https://app.example.com"]).unwrap(),
/// ]);
/// assert!(registry.get("spa").is_some());
/// ```
#[derive(Clone, Default)]
pub struct MemoryClientRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    clients: HashMap<Arc<str>, Client>,
    origins: Vec<Origin>,
}

impl fmt::Debug for MemoryClientRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryClientRegistry")
            .field("clients", &self.inner.clients.len())
            .finish()
    }
}

impl MemoryClientRegistry {
    /// A registry of these clients; a later client with the same id replaces an earlier one.
    pub fn new(clients: impl IntoIterator<Item = Client>) -> Self {
        let clients: HashMap<Arc<str>, Client> = clients
            .into_iter()
            .map(|c| (c.id_arc().clone(), c))
            .collect();
        let mut origins: Vec<Origin> = Vec::new();
        for client in clients.values() {
            for origin in client.origins() {
                if !origins.contains(origin) {
                    origins.push(origin.clone());
                }
            }
        }
        Self {
            inner: Arc::new(RegistryInner { clients, origins }),
        }
    }

    /// The client with this id.
    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.inner.clients.get(client_id)
    }

    /// Every registered client.
    pub fn clients(&self) -> impl Iterator<Item = &Client> {
        self.inner.clients.values()
    }
}

impl ClientRegistry for MemoryClientRegistry {
    async fn find_client(&self, client_id: &str) -> Result<Option<Client>, RegistryError> {
        Ok(self.inner.clients.get(client_id).cloned())
    }

    async fn origin_registered(&self, origin: &HeaderValue) -> Result<bool, RegistryError> {
        Ok(self.inner.origins.iter().any(|o| o.matches(origin)))
    }
}

/// The client that authenticated this request, in the request's extensions (and, for
/// request logs, in the response's; from [`RevocationEndpoint`](crate::RevocationEndpoint),
/// with [`annotate_responses`](crate::endpoint::EndpointBuilder::annotate_responses)).
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Client,
    method: ClientAuthMethod,
}

impl AuthenticatedClient {
    /// A client that authenticated with `method` (for tests and custom layers).
    pub fn new(client: Client, method: ClientAuthMethod) -> Self {
        Self { client, method }
    }

    /// The client's id.
    pub fn id(&self) -> &str {
        self.client.id()
    }

    /// The registered client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Public or confidential.
    pub fn kind(&self) -> ClientKind {
        self.client.kind()
    }

    /// How it authenticated.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_verify() {
        let c = Client::confidential("a", "s3cr:t+ &x");
        assert!(c.verify_secret("s3cr:t+ &x"));
        assert!(!c.verify_secret("s3cr:t+ &y"));
        assert!(!c.verify_secret(""));
        assert!(!Client::public("p").verify_secret(""));
        assert!(!format!("{c:?}").contains("s3cr"));
    }

    #[cfg(feature = "conformance")]
    #[tokio::test]
    async fn memory_registry_passes_the_conformance_checks() {
        let clients = [
            Client::public("spa")
                .with_origins(["http://127.0.0.1:8765", "https://app.example.com"])
                .unwrap(),
            Client::confidential("server", "secret"),
            Client::confidential("portal", "secret")
                .with_origins(["https://portal.example.com:8443"])
                .unwrap(),
        ];
        let registry = MemoryClientRegistry::new(clients.clone());
        crate::client_auth::conformance::check(&registry, clients).await;
    }

    #[tokio::test]
    async fn memory_registry() {
        let r = MemoryClientRegistry::new([Client::public("spa")
            .with_origins(["http://127.0.0.1:8765"])
            .unwrap()]);
        assert!(r.find_client("spa").await.unwrap().is_some());
        assert!(r.find_client("nope").await.unwrap().is_none());
        assert!(r
            .origin_registered(&HeaderValue::from_static("http://127.0.0.1:8765"))
            .await
            .unwrap());
        assert!(!r
            .origin_registered(&HeaderValue::from_static("http://evil.example"))
            .await
            .unwrap());
    }
}
