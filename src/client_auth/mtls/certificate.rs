//! The client's certificate, parsed once, and what RFC 8705 matches against it.

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc, time::SystemTime};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use http::Extensions;
use sha2::{Digest, Sha256};
use x509_cert::{
    der::Decode,
    ext::pkix::{name::GeneralName, SubjectAltName},
    Certificate,
};

use super::{dn::Dn, pem};

/// The end-entity certificate a client presented for mutual TLS ([RFC 8705]), as a request
/// extension.
///
/// It arrives in one of two ways, each described in the [module docs](super): from the TLS
/// handshake in process ([`MtlsAcceptor`](super::MtlsAcceptor), and
/// `serve::Server::serve_tls`), or from a TLS-terminating proxy's header
/// ([`TrustedCertificateHeaderLayer`](super::TrustedCertificateHeaderLayer)). It is parsed
/// once, when it arrives; cloning it is cheap (the DER and the parsed fields are shared).
///
/// Whether anyone checked its chain to a trusted CA is [`chain_verified`](Self::chain_verified):
/// only then may a client be authenticated by its subject or SAN (`tls_client_auth`,
/// [RFC 8705 §2.1]); a certificate nobody checked proves only that the client holds its key,
/// which is what `self_signed_tls_client_auth` ([§2.2]) needs, matched against the
/// certificate the client registered. Its validity period is for the matcher to check
/// ([`is_valid_at`](Self::is_valid_at)) whenever no CA verifier did.
///
/// ```
/// use std::time::SystemTime;
/// use tower_oauth_revoke::client_auth::mtls::{ClientCertificate, SanKind};
///
/// # let certified = rcgen::generate_simple_self_signed(vec!["client.example.com".to_owned()]).unwrap();
/// # let pem = certified.cert.pem();
/// let certificate = ClientCertificate::from_pem(&pem)?;
/// assert_eq!(certificate.san_dns(), ["client.example.com"]);
/// assert!(certificate.matches_san(SanKind::Dns, "CLIENT.example.com"));
/// assert!(certificate.is_valid_at(SystemTime::now()));
/// assert!(!certificate.chain_verified());
/// println!("x5t#S256 = {}", certificate.thumbprint_base64url());
/// # Ok::<_, tower_oauth_revoke::client_auth::mtls::CertificateError>(())
/// ```
///
/// [RFC 8705]: https://www.rfc-editor.org/rfc/rfc8705
/// [RFC 8705 §2.1]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1
/// [§2.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.2
#[derive(Clone)]
pub struct ClientCertificate {
    der: Bytes,
    parsed: Arc<Parsed>,
    chain_verified: bool,
}

struct Parsed {
    thumbprint: [u8; 32],
    subject: Dn,
    subject_dn: Option<String>,
    san_dns: Vec<String>,
    san_uris: Vec<String>,
    san_ips: Vec<IpAddr>,
    san_emails: Vec<String>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl ClientCertificate {
    /// Parses a DER-encoded X.509 certificate, as TLS carries it. It is taken as not
    /// [chain-verified](Self::chain_verified).
    ///
    /// # Errors
    ///
    /// If `der` is not one well-formed certificate (nothing may follow it), or its subject
    /// alternative names extension is malformed or repeated.
    pub fn from_der(der: impl Into<Bytes>) -> Result<Self, CertificateError> {
        let der = der.into();
        let certificate = Certificate::from_der(&der)
            .map_err(|_| CertificateError("not a DER-encoded X.509 certificate"))?;
        let tbs = certificate.tbs_certificate();
        let subject = Dn::from_name(tbs.subject());
        let subject_dn = (!subject.is_empty()).then(|| tbs.subject().to_string());
        let mut parsed = Parsed {
            thumbprint: Sha256::digest(&der).into(),
            subject,
            subject_dn,
            san_dns: Vec::new(),
            san_uris: Vec::new(),
            san_ips: Vec::new(),
            san_emails: Vec::new(),
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
        };
        let sans = tbs
            .get_extension::<SubjectAltName>()
            .map_err(|_| CertificateError("malformed subject alternative names"))?;
        for name in sans.map(|(_, san)| san.0).unwrap_or_default() {
            match name {
                GeneralName::DnsName(dns) => parsed.san_dns.push(dns.to_string()),
                GeneralName::UniformResourceIdentifier(uri) => {
                    parsed.san_uris.push(uri.to_string())
                }
                GeneralName::Rfc822Name(email) => parsed.san_emails.push(email.to_string()),
                GeneralName::IpAddress(ip) => {
                    let ip = match ip.as_bytes() {
                        &[a, b, c, d] => IpAddr::from([a, b, c, d]),
                        bytes => match <[u8; 16]>::try_from(bytes) {
                            Ok(v6) => IpAddr::from(v6),
                            Err(_) => continue,
                        },
                    };
                    parsed.san_ips.push(ip);
                }
                _ => {}
            }
        }
        Ok(Self {
            der,
            parsed: Arc::new(parsed),
            chain_verified: false,
        })
    }

    /// Parses the first `CERTIFICATE` block of PEM text. Line breaks may be any whitespace
    /// (a proxy header may carry them as spaces).
    ///
    /// # Errors
    ///
    /// If there is no such block, its base64 is malformed, or [`from_der`](Self::from_der)
    /// refuses what it holds.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        Self::from_der(pem::decode(pem)?)
    }

    /// The same certificate, marked as verified (or not) against trusted CAs: what a
    /// verifier or a proxy that checked the chain says. See
    /// [`chain_verified`](Self::chain_verified).
    #[must_use]
    pub fn with_chain_verified(mut self, verified: bool) -> Self {
        self.chain_verified = verified;
        self
    }

    /// The certificate a request carries in its extensions, if any.
    pub fn from_extensions(extensions: &Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The DER encoding, exactly as presented.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER encoding as shared bytes.
    pub fn der_bytes(&self) -> &Bytes {
        &self.der
    }

    /// The SHA-256 of the DER: the `x5t#S256` confirmation of [RFC 8705 §3.1].
    ///
    /// [RFC 8705 §3.1]: https://www.rfc-editor.org/rfc/rfc8705#section-3.1
    pub fn thumbprint(&self) -> [u8; 32] {
        self.parsed.thumbprint
    }

    /// [`thumbprint`](Self::thumbprint) in unpadded base64url, as `x5t#S256` is written in a
    /// token's `cnf` claim or an introspection response.
    pub fn thumbprint_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.parsed.thumbprint)
    }

    /// Whether the certificate's chain was verified against trusted CAs, by the TLS
    /// handshake or by the proxy that forwarded it. Only such a certificate can
    /// authenticate a `tls_client_auth` client ([RFC 8705 §2.1]).
    ///
    /// [RFC 8705 §2.1]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1
    pub fn chain_verified(&self) -> bool {
        self.chain_verified
    }

    /// The subject distinguished name as an [RFC 4514] string (`CN=app,O=Example,C=SE`),
    /// or `None` for an empty subject. Compare with
    /// [`matches_subject_dn`](Self::matches_subject_dn), not as strings.
    ///
    /// [RFC 4514]: https://www.rfc-editor.org/rfc/rfc4514
    pub fn subject_dn(&self) -> Option<&str> {
        self.parsed.subject_dn.as_deref()
    }

    /// The `dNSName` subject alternative names.
    pub fn san_dns(&self) -> &[String] {
        &self.parsed.san_dns
    }

    /// The `uniformResourceIdentifier` subject alternative names.
    pub fn san_uris(&self) -> &[String] {
        &self.parsed.san_uris
    }

    /// The `iPAddress` subject alternative names (their `Display` is RFC 5952's form).
    pub fn san_ips(&self) -> &[IpAddr] {
        &self.parsed.san_ips
    }

    /// The `rfc822Name` (e-mail) subject alternative names.
    pub fn san_emails(&self) -> &[String] {
        &self.parsed.san_emails
    }

    /// The start of the validity period (`notBefore`).
    pub fn not_before(&self) -> SystemTime {
        self.parsed.not_before
    }

    /// The end of the validity period (`notAfter`), itself included.
    pub fn not_after(&self) -> SystemTime {
        self.parsed.not_after
    }

    /// Whether `at` lies within the validity period, both ends included ([RFC 5280
    /// §4.1.2.5]). A CA verifier checked it at the handshake; for a certificate no verifier
    /// checked, the client authentication must.
    ///
    /// [RFC 5280 §4.1.2.5]: https://www.rfc-editor.org/rfc/rfc5280#section-4.1.2.5
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.parsed.not_before <= at && at <= self.parsed.not_after
    }

    /// Whether the subject is the distinguished name `expected`, an [RFC 4514] string
    /// (`tls_client_auth_subject_dn`, [RFC 8705 §2.1.2]). Attribute types match in any case
    /// and as names or dotted OIDs, values as text however escaped or hex-encoded, spaces
    /// around separators and runs of spaces do not count; letter case in values does, and
    /// so does the order of the RDNs. A string that is not an RFC 4514 name matches nothing.
    ///
    /// ```
    /// # use tower_oauth_revoke::client_auth::mtls::ClientCertificate;
    /// # let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    /// # params.distinguished_name = rcgen::DistinguishedName::new();
    /// # params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example Corp");
    /// # params.distinguished_name.push(rcgen::DnType::CommonName, "app");
    /// # let key = rcgen::KeyPair::generate().unwrap();
    /// # let der = params.self_signed(&key).unwrap().der().to_vec();
    /// let certificate = ClientCertificate::from_der(der)?;
    /// assert_eq!(certificate.subject_dn(), Some("CN=app,O=Example Corp"));
    /// assert!(certificate.matches_subject_dn("cn = app, o = Example  Corp"));
    /// assert!(certificate.matches_subject_dn("2.5.4.3=app,O=Example Corp"));
    /// assert!(!certificate.matches_subject_dn("CN=App,O=Example Corp"));
    /// # Ok::<_, tower_oauth_revoke::client_auth::mtls::CertificateError>(())
    /// ```
    ///
    /// [RFC 4514]: https://www.rfc-editor.org/rfc/rfc4514
    /// [RFC 8705 §2.1.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1.2
    pub fn matches_subject_dn(&self, expected: &str) -> bool {
        !self.parsed.subject.is_empty()
            && Dn::parse(expected).is_some_and(|dn| dn == self.parsed.subject)
    }

    /// Whether one of the subject alternative names of `kind` is `expected`
    /// ([RFC 8705 §2.1.2]): DNS names in any letter case; URIs exactly; IP addresses as
    /// addresses (`::1` is `0:0::1`); e-mail addresses with the domain in any case.
    ///
    /// [RFC 8705 §2.1.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1.2
    pub fn matches_san(&self, kind: SanKind, expected: &str) -> bool {
        let parsed = &self.parsed;
        match kind {
            SanKind::Dns => parsed
                .san_dns
                .iter()
                .any(|dns| dns.eq_ignore_ascii_case(expected)),
            SanKind::Uri => parsed.san_uris.iter().any(|uri| uri == expected),
            SanKind::Ip => expected
                .parse::<IpAddr>()
                .is_ok_and(|ip| parsed.san_ips.contains(&ip)),
            SanKind::Email => parsed
                .san_emails
                .iter()
                .any(|email| emails_match(email, expected)),
        }
    }
}

/// `local@domain`: the local part exactly, the domain in any case (RFC 5280 §4.2.1.6).
fn emails_match(presented: &str, expected: &str) -> bool {
    match (presented.rsplit_once('@'), expected.rsplit_once('@')) {
        (Some((local, domain)), Some((local2, domain2))) => {
            local == local2 && domain.eq_ignore_ascii_case(domain2)
        }
        _ => false,
    }
}

impl PartialEq for ClientCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der && self.chain_verified == other.chain_verified
    }
}

impl Eq for ClientCertificate {}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_base64url())
            .field("subject", &self.parsed.subject_dn)
            .field("chain_verified", &self.chain_verified)
            .finish_non_exhaustive()
    }
}

/// A kind of subject alternative name a `tls_client_auth` client can register instead of
/// its subject DN ([RFC 8705 §2.1.2]), by the name of its client metadata parameter.
///
/// ```
/// use tower_oauth_revoke::client_auth::mtls::SanKind;
///
/// let kind: SanKind = "tls_client_auth_san_dns".parse().unwrap();
/// assert_eq!(kind, SanKind::Dns);
/// assert_eq!(SanKind::Email.parameter(), "tls_client_auth_san_email");
/// ```
///
/// [RFC 8705 §2.1.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1.2
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SanKind {
    /// `dNSName`: `tls_client_auth_san_dns`.
    Dns,
    /// `uniformResourceIdentifier`: `tls_client_auth_san_uri`.
    Uri,
    /// `iPAddress`: `tls_client_auth_san_ip`.
    Ip,
    /// `rfc822Name`: `tls_client_auth_san_email`.
    Email,
}

impl SanKind {
    /// The client metadata parameter that registers a SAN of this kind.
    pub fn parameter(self) -> &'static str {
        match self {
            SanKind::Dns => "tls_client_auth_san_dns",
            SanKind::Uri => "tls_client_auth_san_uri",
            SanKind::Ip => "tls_client_auth_san_ip",
            SanKind::Email => "tls_client_auth_san_email",
        }
    }
}

impl FromStr for SanKind {
    type Err = CertificateError;

    /// From the name of the client metadata parameter.
    fn from_str(parameter: &str) -> Result<Self, Self::Err> {
        [SanKind::Dns, SanKind::Uri, SanKind::Ip, SanKind::Email]
            .into_iter()
            .find(|kind| kind.parameter() == parameter)
            .ok_or(CertificateError("not a tls_client_auth_san_* parameter"))
    }
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateError(pub(super) &'static str);

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CertificateError {}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use rcgen::{date_time_ymd, CertificateParams, DnType, DnValue, KeyPair, SanType};

    use super::*;

    fn certificate(edit: impl FnOnce(&mut CertificateParams)) -> ClientCertificate {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        ClientCertificate::from_der(params.self_signed(&key).unwrap().der().to_vec()).unwrap()
    }

    fn named(dn: &[(DnType, &str)]) -> ClientCertificate {
        certificate(|params| {
            for (ty, value) in dn {
                params.distinguished_name.push(ty.clone(), *value);
            }
        })
    }

    #[test]
    fn the_thumbprint_is_the_sha256_of_the_der() {
        let cert = named(&[(DnType::CommonName, "app")]);
        let digest: [u8; 32] = Sha256::digest(cert.der()).into();
        assert_eq!(cert.thumbprint(), digest);
        assert_eq!(cert.thumbprint_base64url(), URL_SAFE_NO_PAD.encode(digest));
        assert_eq!(cert.thumbprint_base64url().len(), 43);
    }

    #[test]
    fn the_subject_in_rfc_4514_form_matches_its_spellings() {
        let cert = named(&[
            (DnType::CountryName, "SE"),
            (DnType::OrganizationName, "Example Corp"),
            (DnType::CommonName, "app"),
        ]);
        assert_eq!(cert.subject_dn(), Some("CN=app,O=Example Corp,C=SE"));
        for dn in [
            "CN=app,O=Example Corp,C=SE",
            "cn=app, o=Example Corp, c=SE",
            "CN = app , O = Example   Corp , C = SE",
            "2.5.4.3=app,2.5.4.10=Example Corp,2.5.4.6=SE",
            "CN=#0c03617070,O=Example Corp,C=SE",
        ] {
            assert!(cert.matches_subject_dn(dn), "{dn}");
        }
        for dn in [
            "CN=App,O=Example Corp,C=SE",
            "C=SE,O=Example Corp,CN=app",
            "CN=app,O=Example Corp",
            "CN=app,O=Example Corp,C=SE,DC=x",
            "CN=app;O=Example Corp;C=SE",
            "",
            "garbage",
        ] {
            assert!(!cert.matches_subject_dn(dn), "{dn}");
        }
    }

    #[test]
    fn special_characters_are_escaped_and_still_match() {
        let cert = named(&[(DnType::CommonName, "Smith, John+Co <x>")]);
        assert_eq!(cert.subject_dn(), Some("CN=Smith\\, John\\+Co \\<x\\>"));
        assert!(cert.matches_subject_dn(cert.subject_dn().unwrap()));
        assert!(cert.matches_subject_dn("CN=Smith\\2C John\\2BCo \\3Cx\\3E"));
    }

    #[test]
    fn other_string_types_match_as_text() {
        let bmp = rcgen::string::BmpString::try_from("Järvi").unwrap();
        let cert = certificate(|params| {
            params
                .distinguished_name
                .push(DnType::CommonName, DnValue::BmpString(bmp));
            params.distinguished_name.push(
                DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
                DnValue::Ia5String("example".try_into().unwrap()),
            );
        });
        assert!(cert.matches_subject_dn("DC=example,CN=Järvi"));
        assert!(
            cert.matches_subject_dn(cert.subject_dn().unwrap()),
            "{:?}",
            cert.subject_dn()
        );
    }

    #[test]
    fn an_empty_subject_has_no_dn() {
        let cert = certificate(|params| {
            params.subject_alt_names = vec![SanType::DnsName("a.example".try_into().unwrap())];
        });
        assert_eq!(cert.subject_dn(), None);
        assert!(!cert.matches_subject_dn(""));
    }

    #[test]
    fn subject_alternative_names_of_each_kind() {
        let cert = certificate(|params| {
            params.subject_alt_names = vec![
                SanType::DnsName("client.example.com".try_into().unwrap()),
                SanType::URI("https://client.example.com/id".try_into().unwrap()),
                SanType::IpAddress("192.0.2.7".parse().unwrap()),
                SanType::IpAddress("2001:db8::1".parse().unwrap()),
                SanType::Rfc822Name("Ops@Client.Example.com".try_into().unwrap()),
            ];
        });
        assert_eq!(cert.san_dns(), ["client.example.com"]);
        assert_eq!(cert.san_uris(), ["https://client.example.com/id"]);
        let ips: Vec<String> = cert.san_ips().iter().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, ["192.0.2.7", "2001:db8::1"]);
        assert_eq!(cert.san_emails(), ["Ops@Client.Example.com"]);

        let yes = [
            (SanKind::Dns, "client.example.com"),
            (SanKind::Dns, "Client.Example.COM"),
            (SanKind::Uri, "https://client.example.com/id"),
            (SanKind::Ip, "192.0.2.7"),
            (SanKind::Ip, "2001:0db8:0:0:0:0:0:1"),
            (SanKind::Email, "Ops@client.example.com"),
        ];
        for (kind, value) in yes {
            assert!(cert.matches_san(kind, value), "{kind:?} {value}");
        }
        let no = [
            (SanKind::Dns, "other.example.com"),
            (SanKind::Dns, "https://client.example.com/id"),
            (SanKind::Uri, "https://client.example.com/ID"),
            (SanKind::Uri, "client.example.com"),
            (SanKind::Ip, "192.0.2.8"),
            (SanKind::Ip, "not an address"),
            (SanKind::Email, "ops@client.example.com"),
            (SanKind::Email, "client.example.com"),
        ];
        for (kind, value) in no {
            assert!(!cert.matches_san(kind, value), "{kind:?} {value}");
        }
    }

    #[test]
    fn the_validity_period_includes_both_ends() {
        let cert = certificate(|params| {
            params.not_before = date_time_ymd(2030, 1, 1);
            params.not_after = date_time_ymd(2031, 1, 1);
        });
        let start = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        let end = UNIX_EPOCH + Duration::from_secs(1_924_992_000);
        assert_eq!(cert.not_before(), start);
        assert_eq!(cert.not_after(), end);
        assert!(cert.is_valid_at(start));
        assert!(cert.is_valid_at(end));
        assert!(!cert.is_valid_at(start - Duration::from_secs(1)));
        assert!(!cert.is_valid_at(end + Duration::from_secs(1)));
        assert!(!cert.is_valid_at(SystemTime::now()), "not yet valid");
    }

    #[test]
    fn pem_and_der_give_the_same_certificate() {
        let key = KeyPair::generate().unwrap();
        let made = CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let from_pem = ClientCertificate::from_pem(&made.pem()).unwrap();
        let from_der = ClientCertificate::from_der(made.der().to_vec()).unwrap();
        assert_eq!(from_pem, from_der);
        assert_ne!(from_der.clone().with_chain_verified(true), from_der);
    }

    #[test]
    fn anything_but_one_certificate_is_refused() {
        let key = KeyPair::generate().unwrap();
        let der = CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let mut trailing = der.clone();
        trailing.push(0);
        for bad in [
            Vec::new(),
            b"not a certificate".to_vec(),
            der[..der.len() - 1].to_vec(),
            trailing,
        ] {
            assert!(ClientCertificate::from_der(bad).is_err());
        }
        assert!(ClientCertificate::from_pem("no pem here").is_err());
    }

    #[test]
    fn san_kinds_by_parameter_name() {
        for kind in [SanKind::Dns, SanKind::Uri, SanKind::Ip, SanKind::Email] {
            assert_eq!(kind.parameter().parse::<SanKind>(), Ok(kind));
        }
        assert!("tls_client_auth_subject_dn".parse::<SanKind>().is_err());
    }

    #[test]
    fn debug_shows_the_thumbprint_and_subject_only() {
        let cert = named(&[(DnType::CommonName, "app")]);
        let debug = format!("{cert:?}");
        assert!(debug.contains(&cert.thumbprint_base64url()), "{debug}");
        assert!(debug.contains("CN=app"), "{debug}");
    }
}
