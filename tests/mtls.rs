//! The client certificate of mutual TLS reaching the request from a trusted proxy's header.

use std::convert::Infallible;

use base64::Engine as _;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tower::{service_fn, Layer, ServiceExt};
use tower_oauth_revoke::{
    body::Body,
    client_auth::{
        mtls::{ClientCertificate, TrustedCertificateHeaderLayer},
        RemoteAddr,
    },
};

/// A certificate as DER and PEM.
struct Identity {
    der: Vec<u8>,
    pem: String,
}

/// A CA and client certificates from it.
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
            der: cert.der().to_vec(),
            pem: cert.pem(),
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

fn thumbprint(identity: &Identity) -> String {
    ClientCertificate::from_der(identity.der.to_vec())
        .unwrap()
        .thumbprint_base64url()
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
