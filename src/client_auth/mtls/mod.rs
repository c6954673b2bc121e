//! The client certificate of mutual TLS ([RFC 8705]) in each request (feature `mtls`).
//!
//! Client authentication by certificate needs the certificate the client presented in the
//! TLS handshake, next to the request. It arrives in one of two ways, and either way the
//! request carries a [`ClientCertificate`] in its extensions:
//!
//! - **In process**: the server terminates TLS with rustls. [`MtlsAcceptor`] asks clients
//!   for a certificate (without requiring one) and hands back the one presented;
//!   `serve::Server::serve_tls` (feature `serve`) puts it in every request of the
//!   connection, as it puts [`RemoteAddr`](super::RemoteAddr).
//! - **Behind a proxy** that terminates TLS and forwards the certificate in a header:
//!   [`TrustedCertificateHeaderLayer`] parses that header into the extension and removes
//!   it. **The proxy must strip the header from every client request**, and the server be
//!   reachable only through it: whoever can set the header can claim any certificate.
//!
//! A certificate from in-process TLS wins over a header. Where it came from also says
//! whether its chain was checked against trusted CAs
//! ([`chain_verified`](ClientCertificate::chain_verified)): only such a certificate may
//! authenticate a client by its subject or SAN (`tls_client_auth`, [RFC 8705 §2.1]);
//! one nobody checked proves that the client holds its key, for
//! `self_signed_tls_client_auth` ([§2.2]).
//!
//! | source | client certificate | request |
//! |---|---|---|
//! | [`MtlsAcceptor::client_ca`] | chains to the CAs, within its validity period | `ClientCertificate`, chain verified |
//! | [`MtlsAcceptor::client_ca`] | does not chain, or expired | the handshake fails |
//! | [`MtlsAcceptor::self_signed_clients`] | any whose key signs the handshake | `ClientCertificate`, not chain verified |
//! | either acceptor | none | no `ClientCertificate` |
//! | [`TrustedCertificateHeaderLayer`] | a PEM (URL-encoded) or base64 DER header | `ClientCertificate`, chain verified as the layer is told |
//! | [`TrustedCertificateHeaderLayer`] | a malformed header | 400 `invalid_request` |
//!
//! A handler or a client authentication reads it back, and matches it against what the
//! client registered:
//!
//! ```
//! use http::Request;
//! use tower_oauth_revoke::client_auth::mtls::{ClientCertificate, SanKind};
//!
//! fn may_be(request: &Request<()>, subject_dn: &str) -> bool {
//!     ClientCertificate::from_extensions(request.extensions()).is_some_and(|certificate| {
//!         certificate.chain_verified()
//!             && (certificate.matches_subject_dn(subject_dn)
//!                 || certificate.matches_san(SanKind::Dns, "client.example.com"))
//!     })
//! }
//!
//! # let mut params = rcgen::CertificateParams::new(vec!["client.example.com".to_owned()]).unwrap();
//! # params.distinguished_name.push(rcgen::DnType::CommonName, "app");
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let der = params.self_signed(&key).unwrap().der().to_vec();
//! let mut request = Request::new(());
//! let certificate = ClientCertificate::from_der(der).unwrap().with_chain_verified(true);
//! request.extensions_mut().insert(certificate);
//! assert!(may_be(&request, "CN=app"));
//! ```
//!
//! [RFC 8705]: https://www.rfc-editor.org/rfc/rfc8705
//! [RFC 8705 §2.1]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1
//! [§2.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.2

mod certificate;
mod dn;
mod header;
mod pem;
mod tls;

pub use self::{
    certificate::{CertificateError, ClientCertificate, SanKind},
    header::{TrustedCertificateHeader, TrustedCertificateHeaderLayer},
    tls::{client_ca_verifier, server_config, MtlsAcceptor, SelfSignedClientVerifier},
};
