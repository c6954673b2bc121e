//! The client certificate a TLS-terminating proxy forwards in a header.

use std::task::{Context, Poll};

use http::{HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{pem, ClientCertificate};
use crate::{body::ResponseBody, error::OAuthError, future::ResponseFuture};

/// A [`Layer`] that takes the client certificate a trusted proxy forwards in a header,
/// parses it into the request's [`ClientCertificate`] extension, and removes the header.
///
/// **Only behind a proxy that removes this header from every client request** before it
/// sets its own: otherwise anyone can send the header and be taken for the holder of any
/// certificate they have a copy of. With nginx, `proxy_set_header` replaces what the client
/// sent:
///
/// ```text
/// ssl_verify_client optional;                          # or optional_no_ca for self-signed clients
/// ssl_client_certificate /etc/nginx/client-cas.pem;
/// proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
/// ```
///
/// and the server must be reachable through that proxy only.
///
/// The value may be URL-encoded PEM (nginx's `$ssl_client_escaped_cert`, AWS ALB's
/// `X-Amzn-Mtls-Clientcert`), PEM with spaces for line breaks, or base64 DER; of a chain,
/// the first certificate is the client's. An empty value means no certificate.
///
/// | request | answer |
/// |---|---|
/// | no header, or an empty one | passed on without a certificate |
/// | a certificate in the header | passed on with it, the header removed |
/// | a malformed header, or two of them | 400 `invalid_request` |
/// | a [`ClientCertificate`] already there (in-process TLS) | passed on with that one, the header removed unread |
///
/// The certificates are taken as not [chain-verified](ClientCertificate::chain_verified)
/// unless [`proxy_verifies_chain`](Self::proxy_verifies_chain) says the proxy checks them
/// against trusted CAs.
///
/// ```
/// use http::{HeaderName, Request, Response};
/// use std::convert::Infallible;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_oauth_revoke::{
///     body::Body,
///     client_auth::mtls::{ClientCertificate, TrustedCertificateHeaderLayer},
/// };
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let header = HeaderName::from_static("x-client-cert");
/// let svc = ServiceBuilder::new()
///     .layer(TrustedCertificateHeaderLayer::new(header).proxy_verifies_chain(true))
///     .service(service_fn(|req: Request<Body>| async move {
///         assert!(req.headers().get("x-client-cert").is_none());
///         let certificate = ClientCertificate::from_extensions(req.extensions()).unwrap();
///         let subject = certificate.subject_dn().unwrap_or_default().to_owned();
///         Ok::<_, Infallible>(Response::builder().header("x-subject", subject).body(Body::empty()).unwrap())
///     }));
///
/// # let certified = rcgen::generate_simple_self_signed(vec!["app.example".to_owned()]).unwrap();
/// # let pem = certified.cert.pem();
/// // What nginx's `$ssl_client_escaped_cert` holds.
/// let escaped = percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC);
/// let request = Request::post("/token")
///     .header("x-client-cert", escaped.to_string())
///     .body(Body::empty())
///     .unwrap();
/// let response = svc.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.headers()["x-subject"], "CN=rcgen self signed cert");
///
/// let request = Request::post("/token").header("x-client-cert", "garbage").body(Body::empty()).unwrap();
/// assert_eq!(svc.oneshot(request).await.unwrap().status(), 400);
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TrustedCertificateHeaderLayer {
    header: HeaderName,
    chain_verified: bool,
}

impl TrustedCertificateHeaderLayer {
    /// Reads the certificate from `header` (`x-client-cert`, say); see the type's docs.
    pub fn new(header: HeaderName) -> Self {
        Self {
            header,
            chain_verified: false,
        }
    }

    /// Whether the proxy forwards only certificates it verified against trusted CAs (nginx
    /// `ssl_verify_client on` or `optional` with `ssl_client_certificate`, not
    /// `optional_no_ca`). Default `false`: the certificates then serve for
    /// `self_signed_tls_client_auth` only.
    pub fn proxy_verifies_chain(mut self, verified: bool) -> Self {
        self.chain_verified = verified;
        self
    }
}

impl<S> Layer<S> for TrustedCertificateHeaderLayer {
    type Service = TrustedCertificateHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrustedCertificateHeader {
            inner,
            header: self.header.clone(),
            chain_verified: self.chain_verified,
        }
    }
}

/// The service of [`TrustedCertificateHeaderLayer`].
#[derive(Debug, Clone)]
pub struct TrustedCertificateHeader<S> {
    inner: S,
    header: HeaderName,
    chain_verified: bool,
}

impl<S> TrustedCertificateHeader<S> {
    /// The layer reading `header`.
    pub fn layer(header: HeaderName) -> TrustedCertificateHeaderLayer {
        TrustedCertificateHeaderLayer::new(header)
    }

    inner_service_accessors!(S);
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TrustedCertificateHeader<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    forward_ready!();

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.take_certificate(&mut req) {
            Ok(Some(certificate)) => {
                req.extensions_mut().insert(certificate);
            }
            Ok(None) => {}
            Err(err) => return ResponseFuture::ready(err.to_response()),
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}

impl<S> TrustedCertificateHeader<S> {
    /// Removes the header; the certificate it carries, unless the request has one already.
    fn take_certificate<B>(
        &self,
        req: &mut Request<B>,
    ) -> Result<Option<ClientCertificate>, OAuthError> {
        let headers = req.headers_mut();
        let count = headers.get_all(&self.header).iter().count();
        let Some(value) = headers.remove(&self.header) else {
            return Ok(None);
        };
        if req.extensions().get::<ClientCertificate>().is_some() {
            return Ok(None);
        }
        let malformed = |reason: &str| {
            tracing::info!(header = %self.header, reason, outcome = "invalid_request", "client certificate header refused");
            OAuthError::invalid_request("the client certificate header is malformed")
        };
        if count > 1 {
            return Err(malformed("repeated"));
        }
        let der = match pem::decode_forwarded(value.as_bytes()) {
            Ok(Some(der)) => der,
            Ok(None) => return Ok(None),
            Err(err) => return Err(malformed(err.0)),
        };
        let certificate = ClientCertificate::from_der(der).map_err(|err| malformed(err.0))?;
        Ok(Some(certificate.with_chain_verified(self.chain_verified)))
    }
}
