//! The revocation step of the pipeline.

use bytes::Bytes;
use http::Response;

use super::{execute, read_request, RevocationPolicy};
use crate::{
    endpoint::{EndpointStep, StepRequest},
    error::OAuthError,
    store::{TokenHash, TokenStore},
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
    #[cfg(feature = "jwt")]
    jwt: Option<crate::jwt::JwtAccessTokens>,
    /// Public clients revoke a DPoP-bound token only with a proof of its key, made for this
    /// URL.
    #[cfg(feature = "jwt")]
    bound_proofs: Option<(crate::dpop::DpopVerifier, std::sync::Arc<str>)>,
}

impl<S> Revoker<S> {
    /// Revokes in `store` with the default policy.
    pub fn new(store: S) -> Self {
        Self {
            store,
            policy: RevocationPolicy::default(),
            #[cfg(feature = "jwt")]
            jwt: None,
            #[cfg(feature = "jwt")]
            bound_proofs: None,
        }
    }

    /// A public client (which has no credentials) revokes a token bound to a DPoP key only
    /// with a `DPoP` proof of that key for `POST revocation_url`, checked by `verifier`;
    /// without one the answer is 400 `invalid_dpop_proof` and nothing is revoked (feature
    /// `jwt`). Whoever holds a stolen bound token and the public client's id cannot revoke
    /// it. Confidential clients authenticate, and revoke as before.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    #[must_use]
    pub fn bound_tokens_need_proof(
        mut self,
        verifier: crate::dpop::DpopVerifier,
        revocation_url: &str,
    ) -> Self {
        self.bound_proofs = Some((verifier, revocation_url.into()));
        self
    }

    setters! {
        /// Revokes JWT access tokens of `jwts` too (feature `jwt`): a token shaped as a JWT is
        /// checked locally first; one that fails (forged, another key or issuer, `alg: none`,
        /// expired) is unknown (200, nothing stored); one that passes is revoked by its
        /// `(iss, jti)`, for its own client only, as an opaque token is.
        #[cfg(feature = "jwt")]
        #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
        #[must_use]
        pub fn jwt(jwts: crate::jwt::JwtAccessTokens) => jwt = Some(jwts);

        /// Sets the policy.
        #[must_use]
        pub fn policy(policy: RevocationPolicy) => policy;
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[cfg(feature = "jwt")]
impl<S: TokenStore> Revoker<S> {
    /// For a public client's token bound to a DPoP key: the request's proof must be of
    /// that key. Unknown, unbound and other clients' tokens go on as before.
    async fn proof_of_binding(
        &self,
        verifier: &crate::dpop::DpopVerifier,
        url: &str,
        request: &StepRequest<'_>,
        hash: &TokenHash,
    ) -> Result<(), OAuthError> {
        let record = self.store.inspect(hash).await.map_err(|err| {
            tracing::error!(error = %err, "token store unavailable");
            OAuthError::temporarily_unavailable("the token store is unavailable", 1)
        })?;
        let bound = match record {
            Some(record) if &*record.client_id == request.client().id() => {
                match record.confirmation {
                    Some(crate::store::Confirmation::Jkt(bound)) => bound,
                    _ => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        let proved = verifier
            .check(request.headers(), &http::Method::POST, url, None)
            .await
            .map_err(|e| e.to_token_error())?;
        match proved {
            Some(key)
                if bool::from(subtle::ConstantTimeEq::ct_eq(
                    &key.as_bytes()[..],
                    &bound[..],
                )) =>
            {
                Ok(())
            }
            _ => Err(OAuthError::new(
                http::StatusCode::BAD_REQUEST,
                crate::error::ErrorCode::InvalidDpopProof,
                "the token is bound to a DPoP key: revoking it takes a proof of that key",
            )),
        }
    }
}

impl<S: TokenStore> EndpointStep for Revoker<S> {
    async fn answer(&self, request: StepRequest<'_>) -> Result<Response<Bytes>, OAuthError> {
        // Hashed at once, once: the future carries the digest, never a copy of the token (a
        // JWT's digest is that of its issuer and `jti`).
        let (token, hint) = read_request(request.params(), request.client())?;
        #[cfg(feature = "jwt")]
        let (hash, claims) = match &self.jwt {
            Some(jwts) if crate::jwt::looks_like_jwt(token) => {
                match jwts.verify(token) {
                    Some(claims) => (claims.store_key(), Some(claims)),
                    None => {
                        // Unknown: nothing about it is looked up or stored.
                        tracing::info!(
                            client_id = %crate::escape::Escaped(request.client().id()),
                            outcome = "not_active",
                            "token revocation of an invalid JWT"
                        );
                        let mut response = super::protocol::success();
                        if request.annotate() {
                            response
                                .extensions_mut()
                                .insert(crate::store::RevocationOutcome::NotActive);
                        }
                        return Ok(response);
                    }
                }
            }
            _ => (TokenHash::of(token), None),
        };
        #[cfg(feature = "jwt")]
        let jti = claims.as_ref().map(|c| c.jti.as_str());
        #[cfg(feature = "jwt")]
        if let Some((verifier, url)) = &self.bound_proofs {
            if request.client().kind() == crate::client_auth::ClientKind::Public {
                self.proof_of_binding(verifier, url, &request, &hash)
                    .await?;
            }
        }
        #[cfg(not(feature = "jwt"))]
        let (hash, jti) = (TokenHash::of(token), None);
        let (mut response, outcome) = execute(
            &self.store,
            &self.policy,
            request.client(),
            &hash,
            hint,
            jti,
            request.quiet(),
        )
        .await;
        if let (true, Some(outcome)) = (request.annotate(), outcome) {
            // For the host's request log.
            response.extensions_mut().insert(outcome);
        }
        Ok(response)
    }
}
