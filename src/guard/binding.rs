//! Sender-constrained tokens at the guard: a token bound to a DPoP key ([RFC 9449 §7]) is
//! admitted only with the `DPoP` scheme and a proof signed by that key; a token bound to a
//! client certificate ([RFC 8705 §3]) only over a connection that presented that
//! certificate. A bound token never passes as a plain bearer token, whether or not the
//! guard was given a [`DpopVerifier`](crate::dpop::DpopVerifier).
//!
//! [RFC 9449 §7]: https://www.rfc-editor.org/rfc/rfc9449#section-7
//! [RFC 8705 §3]: https://www.rfc-editor.org/rfc/rfc8705#section-3

use std::future::Future;

use http::{HeaderValue, Request, StatusCode};

use crate::{
    error::{challenge, ErrorCode, OAuthError},
    store::{Confirmation, TokenRecord},
};

/// How the guard checks DPoP proofs, if it does.
#[derive(Debug, Clone)]
pub(crate) struct DpopConfig {
    #[cfg(feature = "jwt")]
    verifier: crate::dpop::DpopVerifier,
    /// `scheme://host[:port]` the resource server is reached at: a proof's `htu` is this and
    /// the request's path.
    #[cfg(feature = "jwt")]
    origin: String,
    realm: String,
    /// `ES256 EdDSA …`, for the challenges.
    algs: String,
}

impl DpopConfig {
    #[cfg(feature = "jwt")]
    pub(crate) fn new(verifier: crate::dpop::DpopVerifier, origin: &str, realm: &str) -> Self {
        let algs = verifier.algorithms_supported().join(" ");
        Self {
            verifier,
            origin: origin.trim_end_matches('/').to_owned(),
            realm: realm.to_owned(),
            algs,
        }
    }

    pub(crate) fn set_realm(&mut self, realm: &str) {
        self.realm = realm.to_owned();
    }

    /// A 401 `invalid_token` with a `DPoP` challenge.
    pub(crate) fn invalid_token(&self, description: &'static str) -> OAuthError {
        let params = format!(", error=\"invalid_token\", algs=\"{}\"", self.algs);
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        )
        .with_www_authenticate(challenge("DPoP", &self.realm, &params))
    }

    /// The challenge of a request without any token, beside `Bearer`'s.
    pub(crate) fn missing(&self) -> HeaderValue {
        challenge("DPoP", &self.realm, &format!(", algs=\"{}\"", self.algs))
    }

    /// Checks the request's proof for `token` (the `DPoP` scheme): the key's thumbprint.
    #[cfg(feature = "jwt")]
    pub(crate) fn proof<B>(
        &self,
        req: &Request<B>,
        token: &str,
    ) -> impl Future<Output = Result<[u8; 32], OAuthError>> + Send + 'static {
        let htu = format!("{}{}", self.origin, req.uri().path());
        let check = self
            .verifier
            .check(req.headers(), req.method(), &htu, Some(token));
        let (realm, algs) = (self.realm.clone(), self.algs.clone());
        async move {
            match check.await {
                Ok(Some(thumbprint)) => Ok(*thumbprint.as_bytes()),
                Ok(None) => Err(crate::dpop::DpopError::invalid(
                    "the DPoP scheme needs a DPoP proof header",
                )
                .to_resource_error(&realm, &algs)),
                Err(err) => Err(err.to_resource_error(&realm, &algs)),
            }
        }
    }

    /// Without the feature `jwt` no guard checks proofs.
    #[cfg(not(feature = "jwt"))]
    pub(crate) fn proof<B>(
        &self,
        _req: &Request<B>,
        _token: &str,
    ) -> impl Future<Output = Result<[u8; 32], OAuthError>> + Send + 'static {
        std::future::ready(Err(self.invalid_token("DPoP is not supported")))
    }
}

/// What the request proved besides the token.
pub(crate) struct Presented {
    /// The thumbprint of the DPoP key that signed the request's proof (the `DPoP` scheme).
    pub(crate) dpop: Option<[u8; 32]>,
    /// The thumbprint of the connection's client certificate.
    pub(crate) certificate: Option<[u8; 32]>,
}

/// The thumbprint of the request's client certificate, if it has one.
pub(crate) fn certificate_thumbprint<B>(req: &Request<B>) -> Option<[u8; 32]> {
    #[cfg(feature = "mtls")]
    return crate::client_auth::mtls::ClientCertificate::from_extensions(req.extensions())
        .map(|c| c.thumbprint());
    #[cfg(not(feature = "mtls"))]
    {
        let _ = req;
        None
    }
}

/// Whether `record`'s binding is what the request proved: a DPoP-bound token with a proof
/// of its key, a certificate-bound token over its certificate, an unbound token without
/// the `DPoP` scheme. The refusal is a 401 `invalid_token` (with a `DPoP` challenge where
/// DPoP is involved and the guard knows it).
pub(crate) fn confirm(
    record: &TokenRecord,
    presented: &Presented,
    dpop: Option<&DpopConfig>,
    bearer_challenge: &HeaderValue,
) -> Result<(), OAuthError> {
    let refuse = |description: &'static str, dpop_involved: bool| match dpop {
        Some(config) if dpop_involved => config.invalid_token(description),
        _ => OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        )
        .with_www_authenticate(bearer_challenge.clone()),
    };
    match (&record.confirmation, presented.dpop) {
        (Some(Confirmation::Jkt(bound)), Some(proved)) if constant_eq(bound, &proved) => Ok(()),
        (Some(Confirmation::Jkt(_)), Some(_)) => Err(refuse(
            "the DPoP proof is not signed by the key the token is bound to",
            true,
        )),
        (Some(Confirmation::Jkt(_)), None) => Err(refuse(
            "the token is bound to a DPoP key: send it with the DPoP scheme and a proof",
            true,
        )),
        (Some(Confirmation::X5tS256(bound)), _) => match presented.certificate {
            Some(presented) if constant_eq(bound, &presented) => Ok(()),
            _ => Err(refuse(
                "the token is bound to a client certificate this connection did not present",
                false,
            )),
        },
        (None, Some(_)) => Err(refuse("the token is not bound to a DPoP key", true)),
        (None, None) => Ok(()),
    }
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
}
