//! Authenticating credentials against a registry, apart from any layer: [`authenticate`], and
//! [`authenticate_basic`] for endpoints whose body is not the client's.

use http::StatusCode;

use super::{decode_basic, AuthFailureLimiter, ClientCredentials, CredentialsError, RemoteAddr};
use crate::{
    error::{challenge, ErrorCode, OAuthError},
    registry::{
        AuthenticatedClient, ClientAuthMethod, ClientKind, ClientRegistry, RegistryError, DECOY,
    },
};

/// Why a client failed to authenticate; what [`authenticate`] returns.
#[derive(Debug)]
pub enum AuthError {
    /// The credentials are missing, malformed or conflicting.
    Credentials(CredentialsError),
    /// The client is unknown, the secret wrong, or the method not allowed for the client.
    Rejected,
    /// The registry could not be asked.
    Unavailable(RegistryError),
    /// A public client presented a secret: it has none, so there was nothing to check.
    SecretForPublicClient,
    /// The client assertion (`private_key_jwt`) was refused: what was wrong with it.
    InvalidAssertion(String),
    /// The client authenticates by certificate, and the request's is missing or not its.
    CertificateRefused(&'static str),
}

/// What authenticating a request needs besides its credentials: the assertion checks, and
/// the path of the endpoint called (an assertion's audience may be its URL).
#[derive(Clone, Copy, Default)]
pub(crate) struct AuthContext<'a> {
    #[cfg(feature = "jwt")]
    pub(crate) assertions: Option<&'a super::ClientAssertions>,
    pub(crate) path: &'a str,
    /// The TLS client certificate, where the endpoint reads certificates.
    pub(crate) certificate: Option<&'a super::PresentedCertificate>,
}

/// Authenticates presented credentials against a registry: the pure step of the layer.
///
/// The secret check is constant-time, and an unknown client is checked against a decoy
/// digest so that it costs the same as a wrong secret.
///
/// A client assertion (`private_key_jwt`) is refused here: it is checked by the layer or
/// endpoint given [`ClientAssertions`](super::ClientAssertions).
pub async fn authenticate<R: ClientRegistry>(
    registry: &R,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, AuthError> {
    authenticate_in(registry, credentials, AuthContext::default()).await
}

/// [`authenticate`], with what checking an assertion needs.
pub(crate) async fn authenticate_in<R: ClientRegistry>(
    registry: &R,
    credentials: &ClientCredentials,
    context: AuthContext<'_>,
) -> Result<AuthenticatedClient, AuthError> {
    let found = registry
        .find_client(credentials.client_id())
        .await
        .map_err(AuthError::Unavailable)?;
    let presented = credentials.secret().unwrap_or("");
    let Some(client) = found else {
        let _ = DECOY.verify(presented);
        return Err(AuthError::Rejected);
    };
    let method = credentials.method();
    if method == ClientAuthMethod::PrivateKeyJwt {
        return authenticate_assertion(client, credentials, context).await;
    }
    if method == ClientAuthMethod::None && client.kind() == ClientKind::Confidential {
        if let Some(registered) = client.certificate_auth() {
            let method = registered.method();
            return match certificate_matches(registered, context.certificate) {
                Ok(()) => Ok(AuthenticatedClient::new(client, method)),
                Err(why) => Err(AuthError::CertificateRefused(why)),
            };
        }
    }
    let ok = match client.kind() {
        ClientKind::Public => {
            // A public client has no secret: it may only name itself, by `client_id` or by
            // Basic with an empty secret.
            let _ = DECOY.verify(presented);
            if !presented.is_empty() {
                return Err(AuthError::SecretForPublicClient);
            }
            client.auth_methods().contains(&ClientAuthMethod::None)
        }
        ClientKind::Confidential => {
            let verified = client.verify_secret(presented);
            verified && method != ClientAuthMethod::None && client.auth_methods().contains(&method)
        }
    };
    if !ok {
        return Err(AuthError::Rejected);
    }
    let method = match client.kind() {
        ClientKind::Public => ClientAuthMethod::None,
        ClientKind::Confidential => method,
    };
    Ok(AuthenticatedClient::new(client, method))
}

/// Whether the request's certificate is the one `registered` names: for
/// `tls_client_auth`, chained to a trusted CA and of the subject or SAN; for
/// `self_signed_tls_client_auth`, of a registered thumbprint; within its validity either way.
fn certificate_matches(
    registered: &crate::registry::CertificateAuth,
    presented: Option<&super::PresentedCertificate>,
) -> Result<(), &'static str> {
    let Some(certificate) = presented else {
        return Err("the client authenticates by TLS certificate, and none was presented");
    };
    #[cfg(feature = "mtls")]
    {
        use super::mtls::SanKind;
        use crate::registry::CertificateAuth as A;
        if !certificate.is_valid_at(std::time::SystemTime::now()) {
            return Err("the client certificate is expired or not yet valid");
        }
        let matches = match registered {
            A::SelfSigned(thumbprints) => {
                let presented = certificate.thumbprint();
                thumbprints.iter().fold(false, |found, t| {
                    found | bool::from(subtle::ConstantTimeEq::ct_eq(&t[..], &presented[..]))
                })
            }
            _ if !certificate.chain_verified() => {
                return Err("the client certificate does not chain to a trusted CA")
            }
            A::SubjectDn(dn) => certificate.matches_subject_dn(dn),
            A::SanDns(v) => certificate.matches_san(SanKind::Dns, v),
            A::SanUri(v) => certificate.matches_san(SanKind::Uri, v),
            A::SanIp(v) => certificate.matches_san(SanKind::Ip, v),
            A::SanEmail(v) => certificate.matches_san(SanKind::Email, v),
        };
        if matches {
            Ok(())
        } else {
            Err("the client certificate is not the client's")
        }
    }
    #[cfg(not(feature = "mtls"))]
    {
        let _ = registered;
        match *certificate {}
    }
}

/// Checks a `private_key_jwt` assertion for a client registered with keys.
async fn authenticate_assertion(
    client: crate::registry::Client,
    credentials: &ClientCredentials,
    context: AuthContext<'_>,
) -> Result<AuthenticatedClient, AuthError> {
    if client.kind() == ClientKind::Public
        || !client
            .auth_methods()
            .contains(&ClientAuthMethod::PrivateKeyJwt)
    {
        return Err(AuthError::Rejected);
    }
    #[cfg(feature = "jwt")]
    {
        let (Some(assertions), Some(assertion)) =
            (context.assertions, credentials.client_assertion())
        else {
            return Err(AuthError::Rejected);
        };
        match assertions.verify(&client, assertion, context.path).await {
            Ok(()) => Ok(AuthenticatedClient::new(
                client,
                ClientAuthMethod::PrivateKeyJwt,
            )),
            Err(super::AssertionError::Unavailable(err)) => {
                Err(AuthError::Unavailable(RegistryError::new(err)))
            }
            Err(err) => Err(AuthError::InvalidAssertion(err.to_string())),
        }
    }
    #[cfg(not(feature = "jwt"))]
    {
        let _ = (credentials, context);
        Err(AuthError::Rejected)
    }
}

/// Authenticates a confidential client by HTTP Basic alone (exactly one `Authorization`
/// header), counting failures in `limiter`: for endpoints whose body is not the client's
/// (an admin API whose `client_id` parameter is what it acts on, a JSON poll). Errors are
/// ready to answer: 401 `invalid_client` with a `Basic` challenge in `realm`, 429 with
/// `Retry-After`, 503 when the registry fails.
///
/// ```
/// use http::HeaderMap;
/// use tower_oauth_revoke::client_auth::{authenticate_basic, encode_basic, Client, MemoryClientRegistry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = MemoryClientRegistry::new([Client::confidential("admin", "s3cret")]);
/// let mut headers = HeaderMap::new();
/// headers.insert(http::header::AUTHORIZATION, encode_basic("admin", "s3cret"));
/// let client = authenticate_basic(&registry, None, &headers, None, "oauth").await.unwrap();
/// assert_eq!(client.id(), "admin");
/// headers.insert(http::header::AUTHORIZATION, encode_basic("admin", "wrong"));
/// let refused = authenticate_basic(&registry, None, &headers, None, "oauth").await.unwrap_err();
/// assert_eq!(refused.status(), 401);
/// # }
/// ```
pub async fn authenticate_basic<R: ClientRegistry>(
    registry: &R,
    limiter: Option<&AuthFailureLimiter>,
    headers: &http::HeaderMap,
    addr: Option<RemoteAddr>,
    realm: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let challenge = challenge("Basic", realm, "");
    let unauthorized = |description: &'static str| {
        OAuthError::invalid_client(description).with_www_authenticate(challenge.clone())
    };
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (id, secret) = match (values.next().and_then(decode_basic), values.next()) {
        (Some(pair), None) => pair,
        _ => return Err(unauthorized("authenticate with HTTP Basic")),
    };
    let credentials = ClientCredentials::basic(&id, &secret);
    let attempt = match limiter {
        Some(limiter) => match limiter.begin(&id, addr) {
            Ok(attempt) => Some(attempt),
            Err(retry) => {
                return Err(OAuthError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::InvalidClient,
                    "too many failed authentications; retry later",
                )
                .with_retry_after(retry))
            }
        },
        None => None,
    };
    match authenticate(registry, &credentials).await {
        Ok(client) if client.kind() == ClientKind::Confidential => {
            if let Some(attempt) = attempt {
                attempt.succeeded();
            }
            Ok(client)
        }
        Err(AuthError::Unavailable(_)) => {
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            Err(OAuthError::temporarily_unavailable(
                "the client registry is unavailable",
                1,
            ))
        }
        _ => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            Err(unauthorized("client authentication failed"))
        }
    }
}
