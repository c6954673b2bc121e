//! JWT access tokens ([RFC 9068]) that can be revoked.
//!
//! [`JwtAccessTokens`] signs access tokens (JWS `EdDSA`, header `typ` `at+jwt`) with claims
//! `iss`, `sub` (the user, or the client id for `client_credentials`), `client_id`, `aud`,
//! `exp`, `iat` (whole seconds, as RFC 7519's NumericDate is most often read), `jti`,
//! `grant_id` (the 16 hex digits of the [`GrantId`]: a grant's revocation reaches its
//! JWTs), and for a sender-constrained token `cnf` ([RFC 7800]: `{"jkt": …}` for a DPoP
//! key, [RFC 9449 §6.1]; `{"x5t#S256": …}` for a client certificate, [RFC 8705 §3.1]),
//! the record's [`Confirmation`]. What revocation needs is
//! registered in the store under [`jwt_key`]`(iss, jti)`: the JWT itself is never stored,
//! and the entry lives until the token's own `exp`, as any token's does.
//!
//! Checking a JWT is local ([`JwtAccessTokens::verify`], or [`validate`] with a key set
//! fetched from the issuer): the signature with a key of the key set (the key's own
//! algorithm; `alg: none` never), `typ`, `iss`, `exp`, `nbf`, and `aud` when asked. A JWT
//! that fails is an unknown token: revoking it answers 200 and stores nothing, so nobody can
//! fill the store with forged tokens. One that passes is then looked up in the store by
//! `(iss, jti)`, which says whether it, its grant, its user or its client was revoked.
//!
//! The revocation endpoint ([`Revoker::jwt`](crate::revoke::Revoker::jwt)), introspection
//! ([`Introspector::jwt`](crate::introspect::Introspector::jwt)) and the bearer guard
//! ([`JwtCheck`]) take both kinds of token.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::{
//!     guard::TokenCheck,
//!     jose::SigningKey,
//!     jwt::{JwtAccessTokens, JwtCheck},
//!     store::{GrantId, MemoryStore, TokenKind, TokenRecord},
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let jwts = JwtAccessTokens::new("https://as.example", "https://api.example", SigningKey::generate());
//! let exp = SystemTime::now() + Duration::from_secs(600);
//! let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), exp).with_owner("alice");
//! let token = jwts.issue(&store, record).await.unwrap();
//!
//! let guard = JwtCheck::new(store, jwts);
//! let checked = guard.check(&token).await.unwrap().expect("active");
//! assert_eq!(checked.owner.as_deref(), Some("alice"));
//! # }
//! ```
//!
//! A JWT's binding is in its signed claims and in the store's record of it, which agree
//! for every token [`JwtAccessTokens::issue`] made. Checked against a store
//! ([`JwtCheck`], introspection), the signed claims win: the record given back carries the
//! claims' binding, and a token whose record in the store holds a binding the claims do
//! not carry (another key, or none) is refused as inactive.
//!
//! [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
//! [RFC 7800]: https://www.rfc-editor.org/rfc/rfc7800#section-3.1
//! [RFC 9449 §6.1]: https://www.rfc-editor.org/rfc/rfc9449#section-6.1
//! [RFC 8705 §3.1]: https://www.rfc-editor.org/rfc/rfc8705#section-3.1

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    guard::{active_access_token, TokenCheck, TokenCheckError},
    jose::{JoseError, KeySet, SigningKey},
    store::{Confirmation, GrantId, IssueError, TokenHash, TokenKind, TokenRecord, TokenStore},
};

mod binding;

pub(crate) use binding::bound_as_claimed;

/// The JWS `typ` of a JWT access token ([RFC 9068 §2.1]).
///
/// [RFC 9068 §2.1]: https://www.rfc-editor.org/rfc/rfc9068#section-2.1
pub const TYP: &str = "at+jwt";

/// The claims of a JWT access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer.
    pub iss: String,
    /// The user, or the client id for `client_credentials`.
    pub sub: String,
    /// The client.
    pub client_id: String,
    /// The audience (one resource server, or an array of them).
    pub aud: serde_json::Value,
    /// Expiry, in seconds since the epoch.
    pub exp: u64,
    /// Issue time, in whole seconds since the epoch. A fractional `iat` of another
    /// issuer reads rounded down: the token then looks older, so that a cut-off covers it
    /// rather than misses it.
    #[serde(deserialize_with = "numeric_date")]
    pub iat: u64,
    /// The token's unique id.
    pub jti: String,
    /// The grant: 16 hex digits.
    pub grant_id: String,
    /// The key the token is bound to ([RFC 7800 §3.1] `cnf`), absent for a bearer token.
    /// It reads from and writes as an object of exactly one member, `jkt` ([RFC 9449
    /// §6.1]) or `x5t#S256` ([RFC 8705 §3.1]), whose value is a SHA-256 thumbprint in
    /// unpadded base64url; a token whose `cnf` is anything else (another confirmation
    /// method, both members, a malformed thumbprint) fails [`validate`], since its binding
    /// could not be honoured.
    ///
    /// [RFC 7800 §3.1]: https://www.rfc-editor.org/rfc/rfc7800#section-3.1
    /// [RFC 9449 §6.1]: https://www.rfc-editor.org/rfc/rfc9449#section-6.1
    /// [RFC 8705 §3.1]: https://www.rfc-editor.org/rfc/rfc8705#section-3.1
    #[serde(default, skip_serializing_if = "Option::is_none", with = "binding")]
    pub cnf: Option<Confirmation>,
}

impl AccessClaims {
    /// The grant, if `grant_id` is well formed.
    pub fn grant(&self) -> Option<GrantId> {
        u64::from_str_radix(&self.grant_id, 16)
            .ok()
            .map(GrantId::from_u64)
    }

    /// When it was issued (to the second).
    pub fn issued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.iat)
    }

    /// The store's key of this token: [`jwt_key`]`(iss, jti)`.
    pub fn store_key(&self) -> TokenHash {
        jwt_key(&self.iss, &self.jti)
    }

    /// A record of what the claims say (used where no store is shared).
    pub fn to_record(&self) -> TokenRecord {
        let mut record = TokenRecord::new(
            TokenKind::AccessToken,
            self.client_id.as_str(),
            self.grant().unwrap_or(GrantId::from_u64(0)),
            UNIX_EPOCH + Duration::from_secs(self.exp),
        )
        .with_issued_at(self.issued_at());
        if self.sub != self.client_id {
            record = record.with_owner(self.sub.as_str());
        }
        record.confirmation = self.cnf;
        record
    }
}

/// A NumericDate ([RFC 7519 §2]): an integer, or a number with a fraction, rounded down;
/// neither negative nor beyond `u64`.
///
/// [RFC 7519 §2]: https://www.rfc-editor.org/rfc/rfc7519#section-2
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative NumericDate")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("a negative NumericDate"))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            // 2^64 as f64: every value in the range floors into a u64 (NaN is in no range).
            if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                Ok(v.floor() as u64)
            } else {
                Err(E::custom("a NumericDate out of range"))
            }
        }
    }
    d.deserialize_any(Visitor)
}

fn whole_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The key under which a store keeps a JWT's state: a digest of its issuer and `jti`.
pub fn jwt_key(iss: &str, jti: &str) -> TokenHash {
    TokenHash::of(&format!("jwt\u{0}{iss}\u{0}{jti}"))
}

/// Whether `token` has the shape of a compact JWS (three base64url parts, a JSON header):
/// such a token is checked as a JWT, anything else as an opaque token.
pub fn looks_like_jwt(token: &str) -> bool {
    /// 1: a base64url letter; 2: the dot; 0: anything else.
    static CLASS: [u8; 256] = {
        let mut class = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
                class[b] = 1;
            } else if c == b'.' {
                class[b] = 2;
            }
            b += 1;
        }
        class
    };
    if !token.starts_with("eyJ") {
        return false;
    }
    // One pass, one table look-up a byte, no early exit: a third fewer instructions than
    // splitting and testing each byte.
    let (mut bad, mut dots) = (false, 0usize);
    for &b in token.as_bytes() {
        let class = CLASS[usize::from(b)];
        bad |= class == 0;
        dots += usize::from(class >> 1);
    }
    !bad && dots == 2
}

/// Checks a JWT access token locally: see the [module docs](self). `audience` is checked
/// when given.
pub fn validate(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, JoseError> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    let claims: AccessClaims = keys.verify_with(token, TYP, validation)?;
    if claims.grant().is_none() {
        return Err(JoseError::new("the token's grant_id is malformed"));
    }
    Ok(claims)
}

/// A JWT that passed [`validate`], with what checking it again needs, worked out once.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    /// Its claims.
    pub claims: AccessClaims,
    /// The record they describe ([`AccessClaims::to_record`]).
    pub record: TokenRecord,
    /// Its key in a store ([`AccessClaims::store_key`]).
    pub store_key: TokenHash,
}

impl VerifiedJwt {
    /// What `claims` give.
    pub fn new(claims: AccessClaims) -> Self {
        Self {
            record: claims.to_record(),
            store_key: claims.store_key(),
            claims,
        }
    }
}

/// JWTs that passed [`validate`], by the digest of the whole token, until their `exp`: a
/// token seen again costs a hash and a look-up, not a signature check nor a parse. Bounded;
/// only a token that verified enters it, so a forged one never matches.
#[derive(Debug, Clone)]
pub struct VerifiedJwts {
    map: Arc<std::sync::Mutex<std::collections::HashMap<TokenHash, Arc<VerifiedJwt>>>>,
    capacity: usize,
}

impl Default for VerifiedJwts {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl VerifiedJwts {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// The token if it verified before and has not expired; else `verify`'s answer, kept
    /// when it is `Ok`.
    pub fn get_or_verify(
        &self,
        token: &str,
        verify: impl FnOnce() -> Result<AccessClaims, JoseError>,
    ) -> Result<Arc<VerifiedJwt>, JoseError> {
        let hash = TokenHash::of(token);
        match self.get(&hash) {
            Some(verified) => Ok(verified),
            None => Ok(self.insert(hash, verify()?)),
        }
    }

    /// The token whose digest is `hash`, if it verified before and has not expired.
    pub fn get(&self, hash: &TokenHash) -> Option<Arc<VerifiedJwt>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash).filter(|v| v.claims.exp > now_secs()).cloned()
    }

    /// Keeps a token that verified, under its digest.
    pub fn insert(&self, hash: TokenHash, claims: AccessClaims) -> Arc<VerifiedJwt> {
        let verified = Arc::new(VerifiedJwt::new(claims));
        let now = now_secs();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, v| v.claims.exp > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(hash, verified.clone());
        verified
    }
}

/// Issues and checks the JWT access tokens of one issuer; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct JwtAccessTokens {
    issuer: Arc<str>,
    audience: Arc<str>,
    key: SigningKey,
    keys: KeySet,
    verified: VerifiedJwts,
}

impl JwtAccessTokens {
    /// Tokens of `issuer` for `audience`, signed with `key`.
    pub fn new(
        issuer: impl Into<Arc<str>>,
        audience: impl Into<Arc<str>>,
        key: SigningKey,
    ) -> Self {
        let keys = KeySet::from_jwks(&key.jwks()).expect("a key's own JWKS reads back");
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            key,
            keys,
            verified: VerifiedJwts::default(),
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a JWT for `record` (its kind must be an access token) and registers it in
    /// `store` under [`jwt_key`]. Fails as [`TokenStore::issue`] does. The record's
    /// [`confirmation`](TokenRecord::confirmation), if any, is the JWT's `cnf` claim and
    /// is registered with it.
    ///
    /// `iat` is the record's [`issued_at`](TokenRecord::issued_at) in whole seconds and
    /// `exp` its [`expires_at`](TokenRecord::expires_at), so that `exp - iat` is the
    /// lifetime the caller gave, and introspection reports the same `iat`. A resource
    /// server judges a bulk revocation by `iat` (revoked when `iat` is at or before the
    /// cut-off): a token whose grant outlived a cut-off made earlier in the same second
    /// would look covered. Such a token is not handed out: after registering a token, its
    /// grant's state is read ([`TokenStore::grant_state`]), and if a cut-off of its subject
    /// or client falls in the token's second, the token is dropped (nobody holds it; its
    /// entry expires) and a new one is made at the start of the next second. That costs
    /// under a second, once, to a token issued right after a bulk revocation of its user or
    /// client; any other token is issued at once.
    pub async fn issue<S: TokenStore>(
        &self,
        store: &S,
        mut record: TokenRecord,
    ) -> Result<String, IssueError> {
        // A cut-off every second could go on for ever: after three seconds the token is
        // handed out as it is (a resource server may then refuse it: never the reverse).
        for _ in 0..3 {
            let (token, key) = self.sign_and_register(store, record.clone()).await?;
            let iat_us = u64::try_from(u128::from(whole_secs(record.issued_at)) * 1_000_000)
                .unwrap_or(u64::MAX);
            let Some(grant) = store.grant_state(&key).await? else {
                return Ok(token);
            };
            let in_its_second =
                |cut: Option<u64>| cut.is_some_and(|t| t >= iat_us && t < grant.created_us);
            if grant.is_cut_off()
                || !(in_its_second(grant.subject_cut_off) || in_its_second(grant.client_cut_off))
            {
                return Ok(token);
            }
            let next = UNIX_EPOCH + Duration::from_secs(whole_secs(record.issued_at) + 1);
            let wait = next
                .duration_since(record.issued_at)
                .unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
            record.issued_at = next;
            record.expires_at += wait;
        }
        self.sign_and_register(store, record)
            .await
            .map(|(token, _)| token)
    }

    async fn sign_and_register<S: TokenStore>(
        &self,
        store: &S,
        record: TokenRecord,
    ) -> Result<(String, TokenHash), IssueError> {
        let claims = AccessClaims {
            iss: self.issuer.to_string(),
            sub: record
                .owner
                .as_deref()
                .unwrap_or(&record.client_id)
                .to_owned(),
            client_id: record.client_id.to_string(),
            aud: serde_json::Value::String(self.audience.to_string()),
            exp: whole_secs(record.expires_at),
            iat: whole_secs(record.issued_at),
            jti: crate::store::generate_token(),
            grant_id: record.grant.to_string(),
            cnf: record.confirmation,
        };
        let token = self
            .key
            .sign(TYP, &claims)
            .map_err(|e| IssueError::Store(crate::store::StoreError::new(e.to_string())))?;
        let key = claims.store_key();
        let record = TokenRecord {
            kind: TokenKind::AccessToken,
            ..record
        };
        store.issue(key, record).await?;
        Ok((token, key))
    }

    /// Checks a JWT of this issuer locally (signature, `typ`, `iss`, `exp`, `nbf`); `None`
    /// for anything that fails. A token that verified before is found in a bounded cache
    /// ([`VerifiedJwts`]) until its `exp`, without a second signature check.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        self.verified(token).map(|v| v.claims.clone())
    }

    /// What [`verify`](Self::verify) checks, without copying the claims out: the token
    /// with its record and store key, from the cache when it verified before.
    pub fn verified(&self, token: &str) -> Option<Arc<VerifiedJwt>> {
        // Only a verified JWT is in the cache: its shape is checked before a signature
        // check, not before a look-up.
        if !token.starts_with("eyJ") {
            return None;
        }
        self.verified
            .get_or_verify(token, || {
                if !looks_like_jwt(token) {
                    return Err(JoseError::new("not shaped as a JWT"));
                }
                validate(&self.keys, token, &self.issuer, None)
            })
            .ok()
    }
}

/// A bearer guard's [`TokenCheck`] for a server that shares the store: a JWT is checked
/// locally ([`JwtAccessTokens::verify`]) and then looked up by `(iss, jti)`, its binding
/// the claims' (see the [module docs](self)); an opaque token is looked up by its hash.
#[derive(Debug, Clone)]
pub struct JwtCheck<S> {
    store: S,
    jwts: JwtAccessTokens,
}

impl<S> JwtCheck<S> {
    /// Checks tokens against `store`, JWTs with `jwts`.
    pub fn new(store: S, jwts: JwtAccessTokens) -> Self {
        Self { store, jwts }
    }
}

impl<S: TokenStore> TokenCheck for JwtCheck<S> {
    fn check(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send + 'static {
        // `verified` tells a JWT by its shape, and `None` of anything else that is not one.
        // A JWT's binding is its claims' (`Some`), an opaque token's the store's (`None`).
        let key = match self.jwts.verified(token) {
            Some(v) => Some((v.store_key, Some(v.claims.cnf))),
            None if looks_like_jwt(token) => None,
            None => Some((TokenHash::of(token), None)),
        };
        let store = self.store.clone();
        async move {
            let Some((key, claimed)) = key else {
                return Ok(None);
            };
            let record = active_access_token(&store, &key).await?;
            Ok(match claimed {
                Some(claimed) => record.and_then(|r| bound_as_claimed(r, claimed)),
                None => record,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, RevocationRequest};

    fn record(exp: SystemTime) -> TokenRecord {
        TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), exp).with_owner("alice")
    }

    #[tokio::test]
    async fn forged_and_expired_jwts_are_unknown() {
        let store = MemoryStore::new();
        let jwts = JwtAccessTokens::new("https://as", "api", SigningKey::generate());
        let other = JwtAccessTokens::new("https://as", "api", SigningKey::generate());
        let exp = SystemTime::now() + Duration::from_secs(600);
        let token = jwts.issue(&store, record(exp)).await.unwrap();
        let claims = jwts.verify(&token).expect("genuine");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.client_id, "app");
        let foreign = other.issue(&store, record(exp)).await.unwrap();
        assert!(jwts.verify(&foreign).is_none(), "another key");
        let wrong_iss = JwtAccessTokens::new("https://evil", "api", jwts.key().clone());
        let token2 = wrong_iss.issue(&store, record(exp)).await.unwrap();
        assert!(jwts.verify(&token2).is_none(), "another issuer");
        let past = SystemTime::now() - Duration::from_secs(2);
        let expired = jwts.issue(&store, record(past)).await.unwrap();
        assert!(jwts.verify(&expired).is_none(), "expired");
        assert!(jwts.verify("opaque-token").is_none());

        let check = JwtCheck::new(store.clone(), jwts.clone());
        assert!(check.check(&token).await.unwrap().is_some());
        assert!(check.check(&foreign).await.unwrap().is_none());
        let mut request = RevocationRequest::new("app");
        request.jti = Some(&claims.jti);
        store.revoke(&claims.store_key(), request).await.unwrap();
        assert!(check.check(&token).await.unwrap().is_none(), "revoked");
    }

    #[tokio::test]
    async fn a_revoked_jwts_state_is_gone_after_its_exp() {
        let clock = crate::store::ManualClock::new();
        let store = MemoryStore::with_clock(clock.clone());
        let jwts = JwtAccessTokens::new("https://as", "api", SigningKey::generate());
        let exp = clock.now() + Duration::from_secs(600);
        let mut keys = Vec::new();
        for _ in 0..100 {
            let token = jwts.issue(&store, record(exp)).await.unwrap();
            keys.push(jwts.verify(&token).unwrap());
        }
        assert_eq!(store.len(), 100);
        for claims in &keys[..50] {
            let mut request = RevocationRequest::new("app");
            request.jti = Some(&claims.jti);
            store.revoke(&claims.store_key(), request).await.unwrap();
        }
        clock.advance(Duration::from_secs(601));
        store.purge_expired();
        assert_eq!(store.len(), 0, "nothing of any JWT is kept past its exp");
    }

    #[test]
    fn the_shape_of_a_jwt() {
        assert!(looks_like_jwt("eyJhbGciOi.eyJzdWIi.c2ln"));
        assert!(!looks_like_jwt("f4839307-c5a3-3d09-8452-af56b0d70491"));
        assert!(!looks_like_jwt("eyJ.a.b.c"));
    }

    #[test]
    fn the_shape_is_exactly_three_base64url_parts_whatever_the_bytes() {
        let plain = |t: &str| {
            t.starts_with("eyJ")
                && t.split('.').count() == 3
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        // Every byte value in every position of a short token, and a few long ones.
        let base = "eyJa.bc-_.9Z";
        for at in 0..base.len() {
            for b in 0..=255u8 {
                let mut bytes = base.as_bytes().to_vec();
                bytes[at] = b;
                if let Ok(t) = std::str::from_utf8(&bytes) {
                    assert_eq!(looks_like_jwt(t), plain(t), "{t:?}");
                }
            }
        }
        let long = format!(
            "eyJ{}.{}.{}",
            "a".repeat(300),
            "B".repeat(300),
            "_".repeat(86)
        );
        assert!(looks_like_jwt(&long));
        for bad in ["@", "[", "`", "{", "/", ":", " ", "=", "+", "é", ".."] {
            let t = format!("{long}{bad}");
            assert_eq!(looks_like_jwt(&t), plain(&t), "{bad:?}");
        }
    }
}
