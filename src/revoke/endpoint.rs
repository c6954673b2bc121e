//! The revocation endpoint: [`Endpoint::builder`] and the builder's settings of the
//! [`Revoker`] step.

use super::{RevocationPolicy, Revoker};
use crate::endpoint::{Endpoint, EndpointBuilder};

impl<R, S> Endpoint<R, Revoker<S>> {
    /// A builder of the RFC 7009 revocation endpoint over `clients` and `store`.
    pub fn builder(clients: R, store: S) -> EndpointBuilder<R, Revoker<S>> {
        Endpoint::with_step(clients, Revoker::new(store))
    }
}

impl<R, S> EndpointBuilder<R, Revoker<S>> {
    /// The revocation policy.
    pub fn policy(self, policy: RevocationPolicy) -> Self {
        self.map_step(|step| step.policy(policy))
    }

    /// Public clients revoke DPoP-bound tokens only with a proof of the bound key: see
    /// [`Revoker::bound_tokens_need_proof`].
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn bound_tokens_need_proof(
        self,
        verifier: crate::dpop::DpopVerifier,
        revocation_url: &str,
    ) -> Self {
        self.map_step(|step| step.bound_tokens_need_proof(verifier, revocation_url))
    }

    /// Revokes the JWT access tokens of `jwts` too: see [`Revoker::jwt`].
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn jwt(self, jwts: crate::jwt::JwtAccessTokens) -> Self {
        self.map_step(|step| step.jwt(jwts))
    }
}
