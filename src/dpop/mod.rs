//! DPoP proofs ([RFC 9449]): a client proves, request by request, that it holds the private
//! key an access token is bound to. A proof is a JWT the client signs for one request,
//! with its public key in the header; [`DpopVerifier::check`] runs the checks of
//! [RFC 9449 §4.3] and returns the key's [`JwkThumbprint`].
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Method};
//! use tower_oauth_revoke::{
//!     dpop::{self, DpopVerifier, JwkThumbprint},
//!     jose::SigningKey,
//!     store::MemoryStore,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The client signs a proof for one request.
//! let key = SigningKey::generate();
//! let proof = dpop::proof(&key, &Method::POST, "https://as.example/token", None).unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("dpop", HeaderValue::from_str(&proof).unwrap());
//!
//! // The server checks it, and learns which key signed it.
//! let verifier = DpopVerifier::new(MemoryStore::new());
//! let thumbprint = verifier
//!     .check(&headers, &Method::POST, "https://as.example/token", None)
//!     .await
//!     .unwrap();
//! assert_eq!(thumbprint, Some(JwkThumbprint::of_key(&key)));
//!
//! // The same proof again is a replay.
//! let replay = verifier
//!     .check(&headers, &Method::POST, "https://as.example/token", None)
//!     .await
//!     .unwrap_err();
//! assert!(!replay.is_unavailable());
//! assert_eq!(replay.to_token_error().code().as_str(), "invalid_dpop_proof");
//! # }
//! ```
//!
//! # What is checked
//!
//! | the request | [`check`](DpopVerifier::check) |
//! |---|---|
//! | no `DPoP` header | `Ok(None)` |
//! | a proof that passes every check below, seen for the first time | `Ok(Some(thumbprint))` |
//! | more than one `DPoP` header; one of more than 8 KiB; not a compact JWS | [`DpopError`] |
//! | header `typ` not exactly `dpop+jwt`; `alg` not one of [`algorithms_supported`](DpopVerifier::algorithms_supported) (never `none` nor `HS*`); a `crit` member | [`DpopError`] |
//! | no `jwk` header; a `jwk` with private or symmetric members (`d`, `p`, `q`, `k`, …, `kty` `oct`); a key of another type than `alg` (P-256 for ES256, P-384 for ES384, Ed25519 for EdDSA, RSA of 2048 to 8192 bits for RS\*/PS\*) | [`DpopError`] |
//! | a signature that is not the `jwk`'s | [`DpopError`] |
//! | no `jti` (a string of 1 to 256 characters); `htm` not the request's method; `htu` not the request's URI ([`htu_matches`]) | [`DpopError`] |
//! | `iat` older than [`max_age`](DpopVerifier::max_age) (60 s) or ahead by more than [`leeway`](DpopVerifier::leeway) (5 s) | [`DpopError`] |
//! | with an access token: no `ath`, or an `ath` not base64url(SHA-256(token)) | [`DpopError`] |
//! | a proof already seen: same key, same `jti`, within its lifetime | [`DpopError`] |
//! | the replay cache fails | [`DpopError`] that [`is_unavailable`](DpopError::is_unavailable) |
//!
//! A [`DpopError`] renders as 400 `invalid_dpop_proof` at the token endpoint
//! ([`to_token_error`](DpopError::to_token_error), [RFC 9449 §5]) and as 401 with a
//! `WWW-Authenticate: DPoP` challenge at a resource server
//! ([`to_resource_error`](DpopError::to_resource_error), [RFC 9449 §7.1]); an unavailable
//! replay cache as 503 `temporarily_unavailable`.
//!
//! The replay check comes last: a proof is recorded in the [`ReplayCache`] (any store, so
//! that every node sharing it refuses a proof seen by another) only once everything else
//! passed, under its key's thumbprint, until `iat + max_age + leeway`.
//!
//! What the thumbprint is for stays with the caller: a token endpoint binds the tokens it
//! issues to it (`cnf.jkt`, [RFC 9449 §6]); a resource server compares it with the token's
//! binding, and asks for a proof when the token is bound (`Ok(None)` is not a pass then).
//!
//! Server-provided nonces ([RFC 9449 §8] and [§9], the `use_dpop_nonce` error) are not
//! supported: the verifier never asks for one and ignores a `nonce` claim; a proof's
//! freshness rests on its `iat` window and the replay cache.
//!
//! [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
//! [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3
//! [RFC 9449 §5]: https://www.rfc-editor.org/rfc/rfc9449#section-5
//! [RFC 9449 §6]: https://www.rfc-editor.org/rfc/rfc9449#section-6
//! [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
//! [RFC 9449 §8]: https://www.rfc-editor.org/rfc/rfc9449#section-8
//! [§9]: https://www.rfc-editor.org/rfc/rfc9449#section-9
//! [`ReplayCache`]: crate::store::ReplayCache

use std::{
    borrow::Cow,
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    error::{challenge, ErrorCode, OAuthError},
    jose::{JoseError, SigningKey},
};

mod htu;
mod thumbprint;
mod verifier;

pub use htu::htu_matches;
pub use thumbprint::JwkThumbprint;
pub use verifier::DpopVerifier;

/// Why a DPoP proof was refused, or could not be checked. Its description says which
/// check failed; it never holds the proof nor the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopError {
    unavailable: bool,
    description: Cow<'static, str>,
}

impl DpopError {
    /// A proof that fails a check.
    pub(crate) fn invalid(description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            unavailable: false,
            description: description.into(),
        }
    }

    /// A proof that could not be checked: the replay cache failed.
    pub(crate) fn unavailable(description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            unavailable: true,
            description: description.into(),
        }
    }

    /// Which check failed, for `error_description`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the proof could not be checked (the replay cache failed) rather than
    /// failed a check: an answer of 503, not of 400 or 401.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// The token endpoint's answer ([RFC 9449 §5]): 400 `invalid_dpop_proof`, or 503
    /// `temporarily_unavailable` with `Retry-After: 1`.
    ///
    /// [RFC 9449 §5]: https://www.rfc-editor.org/rfc/rfc9449#section-5
    pub fn to_token_error(&self) -> OAuthError {
        if self.unavailable {
            return OAuthError::temporarily_unavailable(self.description.clone(), 1);
        }
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidDpopProof,
            self.description.clone(),
        )
    }

    /// A protected resource's answer ([RFC 9449 §7.1]): 401 `invalid_dpop_proof` with
    /// `WWW-Authenticate: DPoP realm="…", error="invalid_dpop_proof",
    /// error_description="…", algs="…"` (`algs` the accepted algorithms separated by
    /// spaces, left out if empty), or 503 `temporarily_unavailable` with `Retry-After: 1`.
    ///
    /// [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
    pub fn to_resource_error(&self, realm: &str, algs: &str) -> OAuthError {
        if self.unavailable {
            return OAuthError::temporarily_unavailable(self.description.clone(), 1);
        }
        let mut params = format!(
            ", error=\"invalid_dpop_proof\", error_description=\"{}\"",
            quotable(&self.description)
        );
        if !algs.is_empty() {
            params.push_str(&format!(", algs=\"{}\"", quotable(algs)));
        }
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidDpopProof,
            self.description.clone(),
        )
        .with_www_authenticate(challenge("DPoP", realm, &params))
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for DpopError {}

/// `text` without what would end or break a quoted-string: quotes, backslashes, controls.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

/// The `ath` of an access token: base64url(SHA-256(token)) ([RFC 9449 §4.2]).
///
/// [RFC 9449 §4.2]: https://www.rfc-editor.org/rfc/rfc9449#section-4.2
pub(crate) fn ath_of(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// A DPoP proof signed with `key` for a request made with `method` to `htu` (its query and
/// fragment are left out), with a random `jti`, `iat` now, and the `ath` of `access_token`
/// if given: the `DPoP` header of a client's request ([RFC 9449 §4.2]).
///
/// [RFC 9449 §4.2]: https://www.rfc-editor.org/rfc/rfc9449#section-4.2
pub fn proof(
    key: &SigningKey,
    method: &Method,
    htu: &str,
    access_token: Option<&str>,
) -> Result<String, JoseError> {
    proof_at(key, method, htu, access_token, SystemTime::now())
}

/// [`proof`] with `iat` at `now`.
pub(crate) fn proof_at(
    key: &SigningKey,
    method: &Method,
    htu: &str,
    access_token: Option<&str>,
    now: SystemTime,
) -> Result<String, JoseError> {
    #[derive(Serialize)]
    struct Claims<'a> {
        jti: String,
        htm: &'a str,
        htu: &'a str,
        iat: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        ath: Option<String>,
    }
    let claims = Claims {
        jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        htm: method.as_str(),
        htu: htu.split(['?', '#']).next().unwrap_or_default(),
        iat: now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| JoseError::new("the clock is before 1970"))?
            .as_secs(),
        ath: access_token.map(ath_of),
    };
    key.sign_with_jwk("dpop+jwt", &claims)
}

#[cfg(test)]
mod tests;
