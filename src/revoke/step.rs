//! The revocation step of the pipeline.

use bytes::Bytes;
use http::Response;

use super::{execute, read_request, RevocationPolicy};
use crate::{
    endpoint::{EndpointStep, StepRequest},
    error::OAuthError,
    store::TokenStore,
};

/// The revocation step of an [`Endpoint`](crate::endpoint::Endpoint): `token` and
/// `token_type_hint` from the form, revoked atomically in the store on behalf of the
/// authenticated client; see the [module docs](crate::revoke). [`RevocationEndpoint`] is the
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
