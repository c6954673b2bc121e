//! The RFC 7009 revocation service.
//!
//! [`RevokeService`] answers `POST /oauth2/revoke` ([RFC 7009 §2.1]) behind
//! [`FormLayer`](crate::form::FormLayer) and
//! [`ClientAuthLayer`](crate::client_auth::ClientAuthLayer): it takes `token` and
//! `token_type_hint` from the [`FormParams`], the [`AuthenticatedClient`] from the
//! extensions, and asks the [`TokenStore`] to revoke, atomically.
//!
//! | case | answer |
//! |---|---|
//! | token revoked (or unknown, expired, already revoked: [RFC 7009 §2.2]) | 200, empty body |
//! | `token` missing or empty | 400 `invalid_request` |
//! | token of another client, asked by a public client | 200, nothing revoked |
//! | token of another client, asked by a confidential client | 400 `invalid_grant`, nothing revoked |
//! | the store fails | 503 `temporarily_unavailable` + `Retry-After` |
//!
//! A refresh token revokes its whole grant; an access token revokes itself alone unless
//! [`RevocationPolicy::access_token_scope`] says the grant. `token_type_hint`
//! (`access_token`, `refresh_token` or their `urn:ietf:params:oauth:token-type:` forms)
//! orders the look-up only; an unknown hint is ignored. The [`RevocationOutcome`] goes in
//! the response's extensions, for request logs (from
//! [`RevocationEndpoint`](crate::RevocationEndpoint), with
//! [`annotate_responses`](crate::endpoint::EndpointBuilder::annotate_responses)). Every answer carries
//! `Cache-Control: no-store` and `Pragma: no-cache`.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::client_auth::{AuthenticatedClient, Client, ClientAuthMethod};
//! use tower_oauth_revoke::revoke::{revoke, RevocationPolicy};
//! use tower_oauth_revoke::store::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let expires = SystemTime::now() + Duration::from_secs(60);
//! store.issue(TokenHash::of("t"), TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires)).await.unwrap();
//! let client = AuthenticatedClient::new(Client::confidential("app", "s"), ClientAuthMethod::ClientSecretBasic);
//!
//! let outcome = revoke(&store, &client, "t", None, &RevocationPolicy::default()).await.unwrap();
//! assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
//! # }
//! ```
//!
//! [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
//! [RFC 7009 §2.2]: https://www.rfc-editor.org/rfc/rfc7009#section-2.2

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use crate::trace::Escaped;
use crate::{
    client_auth::{AuthenticatedClient, ClientKind},
    endpoint::{EndpointStep, StepRequest, StepService},
    error::{set_no_store, OAuthError},
    form::FormParams,
    store::{
        RevocationOutcome, RevocationRequest, RevocationScope, StoreError, TokenHash, TokenKind,
        TokenStore,
    },
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
    /// Sets what revoking an access token revokes.
    pub fn access_token_scope(mut self, scope: RevocationScope) -> Self {
        self.access_token_scope = scope;
        self
    }

    /// Sets the answer for another client's token.
    pub fn foreign_token(mut self, response: ForeignTokenResponse) -> Self {
        self.foreign_token = response;
        self
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
    revoke_hash(store, client, &TokenHash::of(token), hint, policy).await
}

/// [`revoke`] for a token already hashed.
async fn revoke_hash<S: TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    hash: &TokenHash,
    hint: Option<TokenKind>,
    policy: &RevocationPolicy,
) -> Result<RevocationOutcome, StoreError> {
    let request = RevocationRequest {
        client_id: client.id(),
        hint,
        access_token_scope: policy.access_token_scope,
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

/// The RFC 7009 revocation service, last behind the composed layers; see the
/// [module docs](self). It is the [`Revoker`] step as a service.
#[derive(Debug, Clone)]
pub struct RevokeService<S> {
    inner: StepService<Revoker<S>>,
}

impl<S> RevokeService<S> {
    /// Revokes in `store` with the default policy.
    pub fn new(store: S) -> Self {
        Self {
            inner: StepService::new(Revoker::new(store)),
        }
    }

    /// Sets the policy.
    #[must_use]
    pub fn policy(self, policy: RevocationPolicy) -> Self
    where
        S: Clone,
    {
        let step = self.inner.step().clone().policy(policy);
        Self {
            inner: StepService::new(step),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.inner.step().store()
    }
}

impl<S, B> Service<Request<B>> for RevokeService<S>
where
    S: TokenStore,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

/// The empty 200 of a successful revocation, with `no-store` headers.
pub(crate) fn success() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    set_no_store(response.headers_mut());
    response
}

/// The token's digest and the hint of a revocation request; an error without `token`.
pub(crate) fn read_request(
    params: &FormParams,
    client: &AuthenticatedClient,
) -> Result<(TokenHash, Option<TokenKind>), OAuthError> {
    let hash = match params.get("token") {
        Some(t) if !t.is_empty() => TokenHash::of(t),
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
    Ok((hash, hint))
}

/// Revokes in `store` and answers: 200 once the store confirmed, an RFC 6749 error, or
/// 503 when the store fails; with the outcome, unless the store failed.
pub(crate) async fn execute<S: TokenStore>(
    store: &S,
    policy: &RevocationPolicy,
    client: &AuthenticatedClient,
    hash: &TokenHash,
    hint: Option<TokenKind>,
) -> (Response<Bytes>, Option<RevocationOutcome>) {
    // Timed only for the events below: a clock read is not free.
    let start = tracing::enabled!(tracing::Level::INFO).then(std::time::Instant::now);
    let result = revoke_hash(store, client, hash, hint, policy).await;
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
            tracing::info!(
                client_id = %Escaped(client.id()),
                outcome = outcome_name,
                latency_us,
                "token revocation"
            );
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

/// The revocation step of an [`Endpoint`](crate::endpoint::Endpoint): `token` and
/// `token_type_hint` from the form, revoked atomically in the store on behalf of the
/// authenticated client; see the [module docs](self). [`RevocationEndpoint`] is the
/// pipeline with this step.
///
/// [`RevocationEndpoint`]: crate::RevocationEndpoint
#[derive(Debug, Clone)]
pub struct Revoker<S> {
    store: S,
    policy: RevocationPolicy,
}

impl<S> Revoker<S> {
    /// Revokes in `store` with the default policy.
    pub fn new(store: S) -> Self {
        Self {
            store,
            policy: RevocationPolicy::default(),
        }
    }

    /// Sets the policy.
    #[must_use]
    pub fn policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: TokenStore> EndpointStep for Revoker<S> {
    async fn answer(&self, request: StepRequest<'_>) -> Result<Response<Bytes>, OAuthError> {
        // Hashed at once: the future carries the digest, never a copy of the token.
        let (hash, hint) = read_request(request.params(), request.client())?;
        let (mut response, outcome) =
            execute(&self.store, &self.policy, request.client(), &hash, hint).await;
        if let (true, Some(outcome)) = (request.annotate(), outcome) {
            // For the host's request log.
            response.extensions_mut().insert(outcome);
        }
        Ok(response)
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// The response future of [`RevokeService`].
pub struct ResponseFuture {
    inner: BoxFuture,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
