//! The client certificate of mutual TLS ([RFC 8705]) in each request (feature `mtls`).
//!
//! Client authentication by certificate needs the certificate the client presented in the
//! TLS handshake, next to the request: a [`ClientCertificate`] in the request's extensions,
//! parsed once. Behind a proxy that terminates TLS and forwards the certificate in a
//! header, [`TrustedCertificateHeaderLayer`] parses that header into the extension and
//! removes it. **The proxy must strip the header from every client request**, and the
//! server be reachable only through it: whoever can set the header can claim any
//! certificate.
//!
//! A certificate says whether its chain was checked against trusted CAs
//! ([`chain_verified`](ClientCertificate::chain_verified)): only such a certificate may
//! authenticate a client by its subject or SAN (`tls_client_auth`, [RFC 8705 §2.1]);
//! one nobody checked proves that the client holds its key, for
//! `self_signed_tls_client_auth` ([§2.2]).
//!
//! A handler or a client authentication reads it from the request and matches it against
//! what the client registered:
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

pub use self::{
    certificate::{CertificateError, ClientCertificate, SanKind},
    header::{TrustedCertificateHeader, TrustedCertificateHeaderLayer},
};
