//! The client certificate of mutual TLS reaching the request: over real TLS on loopback with
//! `Server::serve_tls` (a CA-verifying and a self-signed configuration, rustls clients with
//! and without a certificate), and from a trusted proxy's header.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::{
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName},
    ClientConfig, RootCertStore,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tower::{service_fn, Layer, ServiceExt};
use tower_oauth_revoke::{
    body::Body,
    client_auth::{
        mtls::{ClientCertificate, MtlsAcceptor, TrustedCertificateHeaderLayer},
        RemoteAddr,
    },
    serve::Server,
};

/// A certificate and its key, as rustls takes them.
struct Identity {
    der: CertificateDer<'static>,
    pem: String,
    key: PrivateKeyDer<'static>,
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// A CA, the server's certificate from it, and client certificates from it or of their own.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "test client CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    fn server(&self) -> Identity {
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        self.issue(params, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `CN=<common_name>,O=Example`, valid for years around now
    /// unless `expired`.
    fn client(&self, common_name: &str, expired: bool) -> Identity {
        self.issue(
            client_params(common_name, expired),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn issue(&self, mut params: CertificateParams, usage: ExtendedKeyUsagePurpose) -> Identity {
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Identity {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: key_der(&key),
        }
    }
}

fn client_params(common_name: &str, expired: bool) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["client.example.com".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    params
}

fn self_signed_client(common_name: &str) -> Identity {
    let mut params = client_params(common_name, false);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Identity {
        der: cert.der().clone(),
        pem: cert.pem(),
        key: key_der(&key),
    }
}

/// Answers with what the request carries: `verified=<bool> x5t=<thumbprint> <subject>`, or
/// `none`; and `x-remote` if it has a remote address.
async fn echo<B>(req: Request<B>) -> Result<Response<Body>, Infallible> {
    let text = match ClientCertificate::from_extensions(req.extensions()) {
        Some(cert) => format!(
            "verified={} x5t={} {}",
            cert.chain_verified(),
            cert.thumbprint_base64url(),
            cert.subject_dn().unwrap_or("-")
        ),
        None => "none".to_owned(),
    };
    let remote = RemoteAddr::from_extensions(req.extensions()).is_some();
    let forwarded = req.headers().contains_key("x-client-cert");
    Ok(Response::builder()
        .header("x-remote", remote.to_string())
        .header("x-forwarded-seen", forwarded.to_string())
        .body(Body::from(text))
        .unwrap())
}

/// `serve_tls` on loopback with `acceptor`; the echo service behind the header layer, so
/// that a forged header can be seen losing to the handshake's certificate.
async fn start(acceptor: MtlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TrustedCertificateHeaderLayer::new(HeaderName::from_static("x-client-cert"))
        .layer(service_fn(echo::<hyper::body::Incoming>));
    tokio::spawn(Server::new().serve_tls(listener, acceptor, service, std::future::pending()));
    addr
}

fn client_config(roots: RootCertStore, identity: Option<&Identity>, tls12: bool) -> ClientConfig {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    // ring, as in the crate (deprecated in rustls 0.23.48 for want of post-quantum groups).
    #[allow(deprecated)]
    let provider = ring::default_provider();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.der.clone()], id.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// One GET over TLS with `config`, `header` forged or not: the response's headers and body.
async fn get(
    addr: SocketAddr,
    config: ClientConfig,
    forged: Option<&str>,
) -> Result<(http::HeaderMap, String), Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let mut request = Request::get("/").header("host", "localhost");
    if let Some(value) = forged {
        request = request.header("x-client-cert", value);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        sender.send_request(request.body(Full::<Bytes>::default()).unwrap()),
    )
    .await??;
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((headers, String::from_utf8(body.to_vec())?))
}

fn thumbprint(identity: &Identity) -> String {
    ClientCertificate::from_der(identity.der.to_vec())
        .unwrap()
        .thumbprint_base64url()
}

#[tokio::test]
async fn a_ca_signed_client_certificate_reaches_every_request() {
    let pki = Pki::new();
    let server = pki.server();
    let addr = start(
        MtlsAcceptor::client_ca(
            pki.roots(),
            vec![server.der.clone()],
            server.key.clone_key(),
        )
        .unwrap(),
    )
    .await;
    let client = pki.client("app", false);

    let (headers, body) = get(addr, client_config(pki.roots(), Some(&client), false), None)
        .await
        .unwrap();
    assert_eq!(
        body,
        format!("verified=true x5t={} CN=app,O=Example", thumbprint(&client))
    );
    assert_eq!(headers["x-remote"], "true");

    // Over TLS 1.2 as well.
    let (_, body) = get(addr, client_config(pki.roots(), Some(&client), true), None)
        .await
        .unwrap();
    assert!(body.starts_with("verified=true"), "{body}");
}

#[tokio::test]
async fn without_a_client_certificate_the_request_is_served_without_one() {
    let pki = Pki::new();
    let server = pki.server();
    let addr = start(
        MtlsAcceptor::client_ca(
            pki.roots(),
            vec![server.der.clone()],
            server.key.clone_key(),
        )
        .unwrap(),
    )
    .await;

    let (headers, body) = get(addr, client_config(pki.roots(), None, false), None)
        .await
        .unwrap();
    assert_eq!(body, "none");
    assert_eq!(headers["x-remote"], "true");
}

#[tokio::test]
async fn an_expired_or_foreign_client_certificate_fails_the_handshake() {
    let pki = Pki::new();
    let server = pki.server();
    let addr = start(
        MtlsAcceptor::client_ca(
            pki.roots(),
            vec![server.der.clone()],
            server.key.clone_key(),
        )
        .unwrap(),
    )
    .await;

    let expired = pki.client("app", true);
    let result = get(
        addr,
        client_config(pki.roots(), Some(&expired), false),
        None,
    )
    .await;
    let err = result.expect_err("an expired certificate was served");
    assert!(format!("{err:?}").contains("CertificateExpired"), "{err:?}");

    let foreign = self_signed_client("app");
    let result = get(
        addr,
        client_config(pki.roots(), Some(&foreign), false),
        None,
    )
    .await;
    let err = result.expect_err("a certificate from no trusted CA was served");
    assert!(format!("{err:?}").contains("UnknownCA"), "{err:?}");

    // The server still serves others.
    let client = pki.client("app", false);
    let (_, body) = get(addr, client_config(pki.roots(), Some(&client), false), None)
        .await
        .unwrap();
    assert!(body.starts_with("verified=true"), "{body}");
}

#[tokio::test]
async fn the_self_signed_configuration_accepts_any_certificate_unverified() {
    let pki = Pki::new();
    let server = pki.server();
    let addr = start(
        MtlsAcceptor::self_signed_clients(vec![server.der.clone()], server.key.clone_key())
            .unwrap(),
    )
    .await;

    let client = self_signed_client("device-7");
    for tls12 in [false, true] {
        let (_, body) = get(addr, client_config(pki.roots(), Some(&client), tls12), None)
            .await
            .unwrap();
        assert_eq!(
            body,
            format!(
                "verified=false x5t={} CN=device-7,O=Example",
                thumbprint(&client)
            ),
            "TLS 1.2: {tls12}"
        );
    }

    // Its validity period is left to the matcher: an expired one is accepted, and says so.
    let expired = pki.client("old", true);
    let (_, body) = get(
        addr,
        client_config(pki.roots(), Some(&expired), false),
        None,
    )
    .await
    .unwrap();
    assert!(body.starts_with("verified=false"), "{body}");
    let cert = ClientCertificate::from_der(expired.der.to_vec()).unwrap();
    assert!(!cert.is_valid_at(std::time::SystemTime::now()));

    let (_, body) = get(addr, client_config(pki.roots(), None, false), None)
        .await
        .unwrap();
    assert_eq!(body, "none");
}

#[tokio::test]
async fn the_handshake_certificate_wins_over_a_forged_header() {
    let pki = Pki::new();
    let server = pki.server();
    let addr = start(
        MtlsAcceptor::client_ca(
            pki.roots(),
            vec![server.der.clone()],
            server.key.clone_key(),
        )
        .unwrap(),
    )
    .await;
    let client = pki.client("app", false);
    let other = pki.client("admin", false);
    let forged = escape(&other.pem);

    let (headers, body) = get(
        addr,
        client_config(pki.roots(), Some(&client), false),
        Some(&forged),
    )
    .await
    .unwrap();
    assert_eq!(
        body,
        format!("verified=true x5t={} CN=app,O=Example", thumbprint(&client))
    );
    assert_eq!(
        headers["x-forwarded-seen"], "false",
        "the header is removed"
    );

    // A malformed header is ignored as well: the handshake's certificate is the one.
    let (_, body) = get(
        addr,
        client_config(pki.roots(), Some(&client), false),
        Some("garbage"),
    )
    .await
    .unwrap();
    assert!(body.contains("CN=app"), "{body}");
}

// The proxy's header.

fn escape(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn behind_proxy(
    verified: bool,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<tower_oauth_revoke::body::ResponseBody<Body>>,
    Error = Infallible,
> + Clone {
    TrustedCertificateHeaderLayer::new(HeaderName::from_static("x-client-cert"))
        .proxy_verifies_chain(verified)
        .layer(service_fn(echo::<Body>))
}

async fn send(
    svc: impl tower::Service<
        Request<Body>,
        Response = Response<tower_oauth_revoke::body::ResponseBody<Body>>,
        Error = Infallible,
    >,
    headers: &[&str],
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::post("/oauth2/token");
    for value in headers {
        request = request.header("x-client-cert", *value);
    }
    let response = svc
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_proxy_header_as_escaped_pem_or_base64_der() {
    let pki = Pki::new();
    let client = pki.client("app", false);
    let x5t = thumbprint(&client);
    let expected = format!("verified=true x5t={x5t} CN=app,O=Example");

    let (status, headers, body) = send(behind_proxy(true), &[&escape(&client.pem)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected.as_str()));
    assert_eq!(
        headers["x-forwarded-seen"], "false",
        "the header is removed"
    );

    let der = base64::engine::general_purpose::STANDARD.encode(&client.der);
    let (status, _, body) = send(behind_proxy(true), &[&der]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected.as_str()));

    // PEM with its line breaks as spaces.
    let spaced = client.pem.trim().replace("\r\n", " ").replace('\n', " ");
    let (status, _, body) = send(behind_proxy(true), &[&spaced]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected.as_str()));

    // Unless the proxy checks chains, the certificate is not taken as verified.
    let (_, _, body) = send(behind_proxy(false), &[&der]).await;
    assert!(body.starts_with("verified=false"), "{body}");
}

#[tokio::test]
async fn no_header_or_an_empty_one_means_no_certificate() {
    let (status, _, body) = send(behind_proxy(true), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none"));
    let (status, headers, body) = send(behind_proxy(true), &[""]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none"));
    assert_eq!(headers["x-forwarded-seen"], "false");
}

#[tokio::test]
async fn a_malformed_or_repeated_header_is_400_invalid_request() {
    let pki = Pki::new();
    let client = pki.client("app", false);
    let der = base64::engine::general_purpose::STANDARD.encode(&client.der);
    let truncated = &der[..der.len() / 2];
    let not_a_certificate = base64::engine::general_purpose::STANDARD.encode(b"hello");
    let pem_of_a_key = escape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    for values in [
        vec!["garbage!"],
        vec![truncated],
        vec![not_a_certificate.as_str()],
        vec![pem_of_a_key.as_str()],
        vec!["%FF%FE%FD"],
        vec![der.as_str(), der.as_str()],
    ] {
        let (status, headers, body) = send(behind_proxy(true), &values).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{values:?}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "invalid_request", "{body}");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn a_certificate_already_in_the_request_wins_over_the_header() {
    let pki = Pki::new();
    let from_tls = pki.client("app", false);
    let forged = pki.client("admin", false);
    for header in [escape(&forged.pem), "garbage".to_owned()] {
        let mut request = Request::post("/oauth2/token")
            .header("x-client-cert", header)
            .body(Body::empty())
            .unwrap();
        let certificate = ClientCertificate::from_der(from_tls.der.to_vec())
            .unwrap()
            .with_chain_verified(true);
        request.extensions_mut().insert(certificate);
        let response = behind_proxy(true).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-forwarded-seen"], "false");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&body).contains("CN=app,"),
            "{body:?}"
        );
    }
}
