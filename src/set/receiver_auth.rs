//! How a receiver authenticates at the poll and snapshot endpoints: HTTP Basic, or, where
//! the host allows it, an access token of the receiving client (RFC 8936 §2.2 names OAuth
//! bearer tokens among the ways), however that token was obtained (`private_key_jwt`,
//! mutual TLS, a secret).

use std::{future::Future, pin::Pin, sync::Arc};

use http::{header, HeaderMap, StatusCode};

use crate::{
    client_auth::{
        authenticate_basic, AuthFailureLimiter, AuthenticatedClient, ClientAuthMethod,
        ClientRegistry, RemoteAddr,
    },
    error::{challenge, refuse_repeated, ErrorCode, OAuthError},
    guard::{bearer, Bearer, TokenCheck, TokenCheckError},
    store::{Confirmation, TokenRecord},
};

type Checked = Pin<Box<dyn Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send>>;

/// A [`TokenCheck`] behind a pointer: what the services keep of the host's.
#[derive(Clone)]
pub(crate) struct BearerTokens(Arc<dyn Fn(&str) -> Checked + Send + Sync>);

impl BearerTokens {
    pub(crate) fn new(check: impl TokenCheck) -> Self {
        Self(Arc::new(move |token| Box::pin(check.check(token))))
    }
}

/// The receiving client: by an access token of it when `tokens` is given and the request
/// carries one, else by HTTP Basic ([`authenticate_basic`]). A token bound to a DPoP key is
/// refused (no proof is checked here), one bound to a certificate only passes over it.
pub(crate) async fn authenticate_receiver<R: ClientRegistry>(
    registry: &R,
    limiter: Option<&AuthFailureLimiter>,
    headers: &HeaderMap,
    addr: Option<RemoteAddr>,
    realm: &str,
    tokens: Option<&BearerTokens>,
    certificate: Option<[u8; 32]>,
) -> Result<AuthenticatedClient, OAuthError> {
    let Some(tokens) = tokens else {
        return authenticate_basic(registry, limiter, headers, addr, realm).await;
    };
    let token = match bearer(headers.get(header::AUTHORIZATION)) {
        Bearer::Token(token) => token,
        Bearer::Malformed => {
            return Err(OAuthError::invalid_request(
                "the Authorization header is not a valid bearer token",
            ))
        }
        // Basic, or no header: Basic answers (and challenges) as it does everywhere.
        Bearer::Missing | Bearer::Dpop(_) => {
            return authenticate_basic(registry, limiter, headers, addr, realm).await
        }
    };
    refuse_repeated(headers, &header::AUTHORIZATION)?;
    let invalid = |description: &'static str| {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        )
        .with_www_authenticate(challenge("Bearer", realm, ", error=\"invalid_token\""))
    };
    let record = match (tokens.0)(token).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(invalid("the access token is revoked, expired or unknown")),
        Err(TokenCheckError) => {
            return Err(OAuthError::temporarily_unavailable(
                "the token could not be checked; try again later",
                1,
            ))
        }
    };
    match record.confirmation {
        None => {}
        Some(Confirmation::X5tS256(bound)) if certificate == Some(bound) => {}
        Some(_) => {
            return Err(invalid(
                "a bound token needs its proof, which this endpoint does not read",
            ))
        }
    }
    let client = registry
        .find_client(&record.client_id)
        .await
        .map_err(|_| OAuthError::temporarily_unavailable("the client registry is unavailable", 1))?
        .ok_or_else(|| invalid("the token's client is no longer registered"))?;
    Ok(AuthenticatedClient::new(client, ClientAuthMethod::None))
}
