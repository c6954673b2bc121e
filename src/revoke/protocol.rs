//! The protocol of revocation, without HTTP: RFC 7009 §2.1's parameters, the store's
//! atomic revoke, and §2.2's answer.

use bytes::Bytes;
use http::Response;

use crate::{
    client_auth::{AuthenticatedClient, ClientKind},
    error::{set_no_store, OAuthError},
    store::{
        RevocationOutcome, RevocationRequest, RevocationScope, StoreError, TokenHash, TokenKind,
        TokenStore,
    },
    trace::Escaped,
    urlencoded::FormParams,
};

/// Reads a `token_type_hint` ([RFC 7009 §2.1], [RFC 8693 §3]); `None` for an unknown hint,
/// which is then ignored.
///
/// ```
/// use tower_oauth_revoke::revoke::parse_token_type_hint;
/// use tower_oauth_revoke::store::TokenKind;
///
/// assert_eq!(parse_token_type_hint("refresh_token"), Some(TokenKind::RefreshToken));
/// assert_eq!(
///     parse_token_type_hint("urn:ietf:params:oauth:token-type:access_token"),
///     Some(TokenKind::AccessToken)
/// );
/// assert_eq!(parse_token_type_hint("id_token"), None);
/// ```
///
/// [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
/// [RFC 8693 §3]: https://www.rfc-editor.org/rfc/rfc8693#section-3
pub fn parse_token_type_hint(hint: &str) -> Option<TokenKind> {
    let hint = hint
        .strip_prefix("urn:ietf:params:oauth:token-type:")
        .unwrap_or(hint);
    match hint {
        "access_token" => Some(TokenKind::AccessToken),
        "refresh_token" => Some(TokenKind::RefreshToken),
        _ => None,
    }
}

/// What to answer when a client presents a token issued to another client. In every case
/// nothing is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForeignTokenResponse {
    /// A public client gets 200 (it learns nothing), a confidential one 400 `invalid_grant`.
    #[default]
    ByClientKind,
    /// Always 200, as for an unknown token.
    Success,
    /// Always 400 `invalid_grant`.
    InvalidGrant,
}

/// The host's revocation policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct RevocationPolicy {
    /// What revoking an access token revokes (default: the token alone).
    pub access_token_scope: RevocationScope,
    /// What to answer for another client's token.
    pub foreign_token: ForeignTokenResponse,
}

impl RevocationPolicy {
    setters! {
        /// Sets what revoking an access token revokes.
        pub fn access_token_scope(scope: RevocationScope) => access_token_scope;

        /// Sets the answer for another client's token.
        pub fn foreign_token(response: ForeignTokenResponse) => foreign_token;
    }
}

/// The protocol step of revocation, without HTTP: revoke `token` on behalf of `client`.
pub async fn revoke<S: TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    token: &str,
    hint: Option<TokenKind>,
    policy: &RevocationPolicy,
) -> Result<RevocationOutcome, StoreError> {
    revoke_hash(store, client, &TokenHash::of(token), hint, policy, None).await
}

/// [`revoke`] for a token already hashed.
async fn revoke_hash<S: TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    hash: &TokenHash,
    hint: Option<TokenKind>,
    policy: &RevocationPolicy,
    jti: Option<&str>,
) -> Result<RevocationOutcome, StoreError> {
    let request = RevocationRequest {
        client_id: client.id(),
        hint,
        access_token_scope: policy.access_token_scope,
        jti,
    };
    store.revoke(hash, request).await
}

/// Maps an outcome to the answer of [RFC 7009 §2.2]: `Ok(())` is 200.
///
/// [RFC 7009 §2.2]: https://www.rfc-editor.org/rfc/rfc7009#section-2.2
pub fn answer(
    outcome: RevocationOutcome,
    client: &AuthenticatedClient,
    policy: &RevocationPolicy,
) -> Result<(), OAuthError> {
    match outcome {
        RevocationOutcome::Revoked { .. } | RevocationOutcome::NotActive => Ok(()),
        RevocationOutcome::IssuedToAnotherClient => {
            let reject = match policy.foreign_token {
                ForeignTokenResponse::ByClientKind => client.kind() == ClientKind::Confidential,
                ForeignTokenResponse::Success => false,
                ForeignTokenResponse::InvalidGrant => true,
            };
            if reject {
                Err(OAuthError::invalid_grant(
                    "the token was not issued to this client",
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The empty 200 of a successful revocation, with `no-store` headers.
pub(crate) fn success() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    set_no_store(response.headers_mut());
    response
}

/// The token and the hint of a revocation request; an error without `token`.
pub(crate) fn read_request<'p>(
    params: &'p FormParams,
    client: &AuthenticatedClient,
) -> Result<(&'p str, Option<TokenKind>), OAuthError> {
    let token = match params.get("token") {
        Some(t) if !t.is_empty() => t,
        _ => {
            tracing::info!(
                client_id = %Escaped(client.id()),
                outcome = "invalid_request",
                "revocation without token"
            );
            return Err(OAuthError::invalid_request(
                "the `token` parameter is required",
            ));
        }
    };
    let hint = params
        .get("token_type_hint")
        .and_then(parse_token_type_hint);
    Ok((token, hint))
}

/// Revokes in `store` and answers: 200 once the store confirmed, an RFC 6749 error, or
/// 503 when the store fails; with the outcome, unless the store failed.
pub(crate) async fn execute<S: TokenStore>(
    store: &S,
    policy: &RevocationPolicy,
    client: &AuthenticatedClient,
    hash: &TokenHash,
    hint: Option<TokenKind>,
    jti: Option<&str>,
    quiet: bool,
) -> (Response<Bytes>, Option<RevocationOutcome>) {
    // Timed only for the events below: a clock read is not free.
    let logged = if quiet {
        tracing::enabled!(tracing::Level::DEBUG)
    } else {
        tracing::enabled!(tracing::Level::INFO)
    };
    let start = logged.then(std::time::Instant::now);
    let result = revoke_hash(store, client, hash, hint, policy, jti).await;
    let latency_us = start.map(|s| s.elapsed().as_micros() as u64);
    match result {
        Ok(outcome) => {
            let outcome_name = match outcome {
                RevocationOutcome::Revoked {
                    scope: RevocationScope::Grant,
                    ..
                } => "revoked_grant",
                RevocationOutcome::Revoked { .. } => "revoked",
                RevocationOutcome::NotActive => "not_active",
                RevocationOutcome::IssuedToAnotherClient => "foreign_token",
            };
            if quiet {
                tracing::debug!(
                    client_id = %Escaped(client.id()),
                    outcome = outcome_name,
                    latency_us,
                    "token revocation"
                );
            } else {
                tracing::info!(
                    client_id = %Escaped(client.id()),
                    outcome = outcome_name,
                    latency_us,
                    "token revocation"
                );
            }
            let response = match answer(outcome, client, policy) {
                Ok(()) => success(),
                Err(err) => err.to_bytes_response(),
            };
            (response, Some(outcome))
        }
        Err(err) => {
            tracing::error!(
                client_id = %Escaped(client.id()),
                error = %err,
                latency_us,
                "token store unavailable"
            );
            let response = OAuthError::temporarily_unavailable(
                "the token store is unavailable; try again later",
                1,
            )
            .to_bytes_response();
            (response, None)
        }
    }
}
