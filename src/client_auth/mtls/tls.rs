//! The client certificate from an in-process rustls handshake.

use std::{fmt, io, sync::Arc};

use rustls::{
    client::danger::HandshakeSignatureValid,
    crypto::{ring, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime},
    server::{
        danger::{ClientCertVerified, ClientCertVerifier},
        ServerConnection, WebPkiClientVerifier,
    },
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use super::ClientCertificate;

/// A TLS acceptor that asks clients for a certificate and hands back the one presented, as a
/// [`ClientCertificate`] marked [chain-verified](ClientCertificate::chain_verified) when
/// its verifier checks chains.
///
/// `serve::Server::serve_tls` (feature `serve`) puts the certificate in every request of
/// the connection; an accept loop of your own calls [`accept`](Self::accept) and does the
/// same.
///
/// - [`client_ca`](Self::client_ca): for `tls_client_auth` ([RFC 8705 §2.1]). A client
///   certificate is requested, not required (a client without one still connects, and can
///   authenticate otherwise); one that does not chain to `roots`, or is outside its
///   validity period, fails the handshake.
/// - [`self_signed_clients`](Self::self_signed_clients): for `self_signed_tls_client_auth`
///   ([RFC 8705 §2.2]). Any certificate whose key signed the handshake is accepted; which
///   client it belongs to, and whether it is still valid, is for the client authentication
///   to decide against the registered certificate.
///
/// ```no_run
/// use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
/// use tower_oauth_revoke::client_auth::mtls::MtlsAcceptor;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let chain = CertificateDer::pem_file_iter("server.pem")?.collect::<Result<Vec<_>, _>>()?;
/// let key = PrivateKeyDer::from_pem_file("server.key")?;
/// let mut roots = rustls::RootCertStore::empty();
/// for ca in CertificateDer::pem_file_iter("client-cas.pem")? {
///     roots.add(ca?)?;
/// }
/// let acceptor = MtlsAcceptor::client_ca(roots, chain, key)?;
/// # let _ = acceptor;
/// # Ok(()) }
/// ```
///
/// [RFC 8705 §2.1]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1
/// [RFC 8705 §2.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.2
#[derive(Clone)]
pub struct MtlsAcceptor {
    acceptor: TlsAcceptor,
    chains_verified: bool,
}

impl fmt::Debug for MtlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsAcceptor")
            .field("chains_verified", &self.chains_verified)
            .finish_non_exhaustive()
    }
}

impl MtlsAcceptor {
    /// Serves `cert_chain` and `key`, and verifies client certificates against `roots`
    /// ([`client_ca_verifier`]); see [`server_config`] for the rest of the configuration.
    ///
    /// # Errors
    ///
    /// If `roots` is empty, or rustls refuses the key or the chain.
    pub fn client_ca(
        roots: impl Into<Arc<RootCertStore>>,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, rustls::Error> {
        let verifier = client_ca_verifier(roots)?;
        let config = server_config(verifier, cert_chain, key)?;
        Ok(Self::from_config(Arc::new(config), true))
    }

    /// Serves `cert_chain` and `key`, and accepts any client certificate whose key signs
    /// the handshake ([`SelfSignedClientVerifier`]).
    ///
    /// # Errors
    ///
    /// If rustls refuses the key or the chain.
    pub fn self_signed_clients(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, rustls::Error> {
        let config = server_config(Arc::new(SelfSignedClientVerifier::new()), cert_chain, key)?;
        Ok(Self::from_config(Arc::new(config), false))
    }

    /// An acceptor of a configuration of your own. `chains_verified` says whether its
    /// client certificate verifier lets through only certificates that chain to trusted CAs
    /// (as [`client_ca_verifier`]'s does): say `true` of any other and a client can choose
    /// its own subject.
    pub fn from_config(config: Arc<ServerConfig>, chains_verified: bool) -> Self {
        Self {
            acceptor: TlsAcceptor::from(config),
            chains_verified,
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        self.acceptor.config()
    }

    /// Completes the handshake on `stream`; the client's certificate, if it sent one.
    ///
    /// # Errors
    ///
    /// If the handshake fails, the client's certificate refused included.
    pub async fn accept<IO>(
        &self,
        stream: IO,
    ) -> io::Result<(TlsStream<IO>, Option<ClientCertificate>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self.acceptor.accept(stream).await?;
        let certificate = self.client_certificate(tls.get_ref().1);
        Ok((tls, certificate))
    }

    /// The end-entity certificate the peer of `connection` presented, once its handshake
    /// is complete.
    pub fn client_certificate(&self, connection: &ServerConnection) -> Option<ClientCertificate> {
        let end_entity = connection.peer_certificates()?.first()?;
        match ClientCertificate::from_der(end_entity.to_vec()) {
            Ok(certificate) => Some(certificate.with_chain_verified(self.chains_verified)),
            Err(err) => {
                tracing::debug!(error = %err, "client certificate not readable");
                None
            }
        }
    }
}

/// A verifier that requests, without requiring, a client certificate chaining to `roots`,
/// checked by rustls' webpki verifier (chain, validity period, key usage), with the ring
/// provider: `WebPkiClientVerifier::builder(roots).allow_unauthenticated()`.
///
/// # Errors
///
/// If `roots` is empty.
pub fn client_ca_verifier(
    roots: impl Into<Arc<RootCertStore>>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
    WebPkiClientVerifier::builder_with_provider(roots.into(), Arc::new(ring_provider()))
        .allow_unauthenticated()
        .build()
        .map_err(|err| rustls::Error::General(format!("client certificate verifier: {err}")))
}

/// rustls' ring provider, the one the whole crate uses (hyper-rustls and rustls are built
/// with `ring` alone). rustls 0.23.48 deprecates the function for its lack of post-quantum
/// key exchange; moving every TLS use of the crate to aws-lc-rs is a decision of its own,
/// not this module's.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    ring::default_provider()
}

/// A rustls server configuration for HTTPS with client certificates: the ring provider,
/// TLS 1.2 and 1.3, `client_verifier` for client certificates, `cert_chain` and `key` as the
/// server's identity, and ALPN offering HTTP/2 and HTTP/1.1.
///
/// # Errors
///
/// If rustls refuses the key or the chain.
pub fn server_config(
    client_verifier: Arc<dyn ClientCertVerifier>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(cert_chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A rustls client certificate verifier for `self_signed_tls_client_auth` ([RFC 8705
/// §2.2]): it requests, without requiring, a certificate, accepts any that parses as
/// X.509, and checks only that its key signed the handshake (with rustls' own
/// `verify_tls12_signature` and `verify_tls13_signature`).
///
/// It decides nothing about trust, **nor about the validity period**: the client
/// authentication compares the certificate with the one the client registered, and checks
/// [`ClientCertificate::is_valid_at`]. A certificate accepted this way is never
/// [chain-verified](ClientCertificate::chain_verified).
///
/// [RFC 8705 §2.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.2
#[derive(Debug)]
pub struct SelfSignedClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl SelfSignedClientVerifier {
    /// With the signature algorithms of rustls' ring provider.
    pub fn new() -> Self {
        Self {
            algorithms: ring_provider().signature_verification_algorithms,
        }
    }
}

impl Default for SelfSignedClientVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertVerifier for SelfSignedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: a client sends whichever certificate it has.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        ClientCertificate::from_der(end_entity.to_vec())
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
