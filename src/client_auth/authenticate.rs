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
}

/// Authenticates presented credentials against a registry: the pure step of the layer.
///
/// The secret check is constant-time, and an unknown client is checked against a decoy
/// digest so that it costs the same as a wrong secret.
pub async fn authenticate<R: ClientRegistry>(
    registry: &R,
    credentials: &ClientCredentials,
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
