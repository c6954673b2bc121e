//! The checks of a DPoP proof ([RFC 9449 §4.3]) and the replay check after them.
//!
//! [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3

use std::{
    fmt,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method};
use jsonwebtoken::{
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
    Algorithm, DecodingKey, Validation,
};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::{ath_of, htu_matches, thumbprint::is_base64url, DpopError, JwkThumbprint};
use crate::store::{ReplayCache, StoreError};

/// The longest `DPoP` header accepted, in bytes.
const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted, in characters.
const MAX_JTI_CHARS: usize = 256;

/// The RSA moduli accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// JWK members that only private or symmetric keys have ([RFC 7518 §6]).
///
/// [RFC 7518 §6]: https://www.rfc-editor.org/rfc/rfc7518#section-6
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What [`DpopVerifier::new`] accepts unless told otherwise.
const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// Checks the DPoP proofs of requests ([RFC 9449 §4.3]); see the [module docs](super).
/// Cheap to clone: its configuration and its replay cache are shared.
///
/// [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3
#[derive(Clone)]
pub struct DpopVerifier {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    replay: Arc<dyn ErasedReplayCache>,
    max_age: Duration,
    leeway: Duration,
    algorithms: Vec<(Algorithm, &'static str)>,
    names: Vec<&'static str>,
}

impl fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("max_age", &self.config.max_age)
            .field("leeway", &self.config.leeway)
            .field("algorithms", &self.config.names)
            .finish_non_exhaustive()
    }
}

/// A proof that passed every check but the replay check.
struct Verified {
    thumbprint: JwkThumbprint,
    jti: String,
    until: SystemTime,
}

impl DpopVerifier {
    /// A verifier that records each proof's `jti` in `replay` (any store: nodes that share
    /// it refuse each other's replays), accepting proofs up to 60 s old and 5 s ahead,
    /// signed with ES256, ES384, EdDSA, PS256 or RS256.
    pub fn new(replay: impl ReplayCache) -> Self {
        let mut verifier = Self {
            config: Arc::new(Config {
                replay: Arc::new(replay),
                max_age: Duration::from_secs(60),
                leeway: Duration::from_secs(5),
                algorithms: Vec::new(),
                names: Vec::new(),
            }),
        };
        verifier.set_algorithms(DEFAULT_ALGORITHMS);
        verifier
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// How old a proof may be: its `iat` at least `now - max_age`. Default 60 s.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.config_mut().max_age = max_age;
        self
    }

    /// How far ahead of this server's clock a proof's `iat` may be. Default 5 s.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config_mut().leeway = leeway;
        self
    }

    /// The JWS algorithms accepted, in place of the default ones. Only asymmetric ones are
    /// kept (ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512): `HS*` are
    /// dropped, as `none` has no [`Algorithm`] at all. With none left, every proof is
    /// refused.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.set_algorithms(algorithms);
        self
    }

    fn set_algorithms(&mut self, algorithms: impl IntoIterator<Item = Algorithm>) {
        let config = self.config_mut();
        config.algorithms.clear();
        for alg in algorithms {
            if let Some(name) = asymmetric_name(alg) {
                if !config.algorithms.iter().any(|(a, _)| *a == alg) {
                    config.algorithms.push((alg, name));
                }
            }
        }
        config.names = config.algorithms.iter().map(|(_, name)| *name).collect();
    }

    /// The names of the algorithms accepted, as server metadata lists them
    /// (`dpop_signing_alg_values_supported`, [RFC 9449 §5.1]) and the `algs` of a
    /// `WWW-Authenticate: DPoP` challenge ([RFC 9449 §7.1]) joined by spaces.
    ///
    /// [RFC 9449 §5.1]: https://www.rfc-editor.org/rfc/rfc9449#section-5.1
    /// [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
    pub fn algorithms_supported(&self) -> &[&'static str] {
        &self.config.names
    }

    /// Checks the `DPoP` header of a request made with `method` to the URI `htu` (this
    /// server's own view of it: scheme, host, port and path), carrying `access_token` if
    /// it is one to a protected resource. `Ok(None)` if there is no `DPoP` header, the
    /// thumbprint of the proof's key if it passes every check; the replay check runs last,
    /// so that nothing unverified is recorded. The header is read before the call returns;
    /// the future owns what it needs.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        htu: &str,
        access_token: Option<&str>,
    ) -> impl Future<Output = Result<Option<JwkThumbprint>, DpopError>> + Send + 'static {
        self.check_at(headers, method, htu, access_token, SystemTime::now())
    }

    /// [`check`](Self::check) at the time `now`.
    pub(crate) fn check_at(
        &self,
        headers: &HeaderMap,
        method: &Method,
        htu: &str,
        access_token: Option<&str>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Option<JwkThumbprint>, DpopError>> + Send + 'static {
        let verified = self.verify(headers, method, htu, access_token, now);
        let replay = self.config.replay.clone();
        async move {
            let Some(proof) = verified? else {
                return Ok(None);
            };
            let scope = proof.thumbprint.to_base64url();
            match replay.first_use(&scope, &proof.jti, proof.until).await {
                Ok(true) => Ok(Some(proof.thumbprint)),
                Ok(false) => Err(DpopError::invalid("the DPoP proof was used before")),
                Err(err) => {
                    tracing::error!(error = %err, "replay cache unavailable; DPoP proof refused");
                    Err(DpopError::unavailable(
                        "the DPoP proof could not be checked for replay; try again later",
                    ))
                }
            }
        }
    }

    /// Every check but the replay check.
    fn verify(
        &self,
        headers: &HeaderMap,
        method: &Method,
        htu: &str,
        access_token: Option<&str>,
        now: SystemTime,
    ) -> Result<Option<Verified>, DpopError> {
        let mut values = headers.get_all("dpop").iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(DpopError::invalid("more than one DPoP header"));
        }
        if value.len() > MAX_PROOF_LEN {
            return Err(DpopError::invalid("the DPoP proof is longer than 8 KiB"));
        }
        let proof = value
            .to_str()
            .ok()
            .filter(|proof| is_compact_jws(proof))
            .ok_or_else(|| DpopError::invalid("the DPoP proof is not a compact JWS"))?;
        let header = header_of(proof)?;
        if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
            return Err(DpopError::invalid("the DPoP proof's typ is not dpop+jwt"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|name| self.algorithm_named(name))
            .ok_or_else(|| DpopError::invalid("the DPoP proof's alg is not accepted here"))?;
        if header.contains_key("crit") {
            return Err(DpopError::invalid(
                "the DPoP proof names critical header members (crit); none is understood",
            ));
        }
        let jwk = public_key(&header, alg)?;
        let claims = signed_claims(proof, &jwk, alg)?;
        let jti = self.check_claims(&claims, method, htu, access_token)?;
        let until = self.check_iat(&claims, now)?;
        let thumbprint = JwkThumbprint::of_jwk(&jwk)
            .ok_or_else(|| DpopError::invalid("the DPoP proof's jwk has no thumbprint"))?;
        Ok(Some(Verified {
            thumbprint,
            jti: jti.to_owned(),
            until,
        }))
    }

    fn algorithm_named(&self, name: &str) -> Option<Algorithm> {
        let (alg, _) = self.config.algorithms.iter().find(|(_, n)| *n == name)?;
        Some(*alg)
    }

    /// Checks `jti`, `htm`, `htu` and `ath`; returns the `jti`.
    fn check_claims<'c>(
        &self,
        claims: &'c Map<String, Value>,
        method: &Method,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<&'c str, DpopError> {
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|jti| !jti.is_empty())
            .ok_or_else(|| DpopError::invalid("the DPoP proof has no jti"))?;
        if jti.chars().count() > MAX_JTI_CHARS {
            return Err(DpopError::invalid(
                "the DPoP proof's jti is longer than 256 characters",
            ));
        }
        if claims.get("htm").and_then(Value::as_str) != Some(method.as_str()) {
            return Err(DpopError::invalid(
                "the DPoP proof's htm is not the request's method",
            ));
        }
        let claimed = claims.get("htu").and_then(Value::as_str).unwrap_or("");
        if !htu_matches(claimed, htu) {
            return Err(DpopError::invalid(
                "the DPoP proof's htu is not the request's URI",
            ));
        }
        if let Some(token) = access_token {
            let ath = claims.get("ath").and_then(Value::as_str).ok_or_else(|| {
                DpopError::invalid("the DPoP proof has no ath for the request's access token")
            })?;
            if !bool::from(ath.as_bytes().ct_eq(ath_of(token).as_bytes())) {
                return Err(DpopError::invalid(
                    "the DPoP proof's ath is not the hash of the request's access token",
                ));
            }
        }
        Ok(jti)
    }

    /// Checks `iat` against `now`; returns until when the proof's `jti` must be remembered.
    fn check_iat(
        &self,
        claims: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<SystemTime, DpopError> {
        let Config {
            max_age, leeway, ..
        } = *self.config;
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .filter(|iat| iat.is_finite() && *iat >= 0.0)
            .ok_or_else(|| DpopError::invalid("the DPoP proof has no iat"))?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        if iat < now - max_age.as_secs_f64() {
            return Err(DpopError::invalid(format!(
                "the DPoP proof is more than {} s old (iat)",
                max_age.as_secs()
            )));
        }
        if iat > now + leeway.as_secs_f64() {
            return Err(DpopError::invalid(format!(
                "the DPoP proof is issued more than {} s ahead of this server's clock (iat)",
                leeway.as_secs()
            )));
        }
        let until = Duration::try_from_secs_f64(iat)
            .ok()
            .and_then(|iat| UNIX_EPOCH.checked_add(iat))
            .and_then(|t| t.checked_add(max_age))
            .and_then(|t| t.checked_add(leeway));
        until.ok_or_else(|| DpopError::invalid("the DPoP proof's iat is out of range"))
    }
}

/// The name of an asymmetric JWS algorithm; `None` for HMAC ones.
fn asymmetric_name(alg: Algorithm) -> Option<&'static str> {
    Some(match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        _ => return None,
    })
}

/// Three dot-separated parts of base64url, the first two not empty.
fn is_compact_jws(proof: &str) -> bool {
    let mut parts = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    is_base64url(header)
        && is_base64url(payload)
        && (signature.is_empty() || is_base64url(signature))
}

/// The JOSE header of a compact JWS, as a JSON object.
fn header_of(proof: &str) -> Result<Map<String, Value>, DpopError> {
    let header = proof.split('.').next().unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| DpopError::invalid("the DPoP proof's header is not a JSON object"))
}

/// The header's `jwk`, if it is a public key of a type that `alg` signs with.
fn public_key(header: &Map<String, Value>, alg: Algorithm) -> Result<Jwk, DpopError> {
    let value = header
        .get("jwk")
        .ok_or_else(|| DpopError::invalid("the DPoP proof has no jwk header"))?;
    let members = value
        .as_object()
        .ok_or_else(|| DpopError::invalid("the DPoP proof's jwk is not a JSON object"))?;
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m))
        || members.get("kty").and_then(Value::as_str) == Some("oct")
    {
        return Err(DpopError::invalid(
            "the DPoP proof's jwk holds a private or symmetric key",
        ));
    }
    let jwk: Jwk = serde_json::from_value(value.clone())
        .map_err(|_| DpopError::invalid("the DPoP proof's jwk is not a key"))?;
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (
            AlgorithmParameters::RSA(p),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => check_rsa_modulus(&p.n)?,
        _ => false,
    };
    if !fits {
        return Err(DpopError::invalid(
            "the DPoP proof's jwk is not a key of its alg",
        ));
    }
    Ok(jwk)
}

/// `Ok(true)` for a modulus of [`RSA_BITS`], written without a leading zero octet.
fn check_rsa_modulus(n: &str) -> Result<bool, DpopError> {
    let n = URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| DpopError::invalid("the DPoP proof's jwk is not a key"))?;
    let bits = match n.first() {
        Some(&first) if first != 0 => n.len() * 8 - first.leading_zeros() as usize,
        _ => 0,
    };
    if !RSA_BITS.contains(&bits) {
        return Err(DpopError::invalid(
            "the DPoP proof's RSA key is not of 2048 to 8192 bits",
        ));
    }
    Ok(true)
}

/// The claims of `proof` if `jwk` signed it with `alg`.
fn signed_claims(proof: &str, jwk: &Jwk, alg: Algorithm) -> Result<Map<String, Value>, DpopError> {
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| DpopError::invalid("the DPoP proof's jwk is not a key"))?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => Err(DpopError::invalid(
            "the DPoP proof's signature is not its jwk's",
        )),
        Err(_) => Err(DpopError::invalid(
            "the DPoP proof is not a signed JWT of its jwk",
        )),
    }
}

/// [`ReplayCache`] as a trait object, one boxed future a call.
trait ErasedReplayCache: Send + Sync + 'static {
    fn first_use<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

impl<C: ReplayCache> ErasedReplayCache for C {
    fn first_use<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(ReplayCache::first_use(self, scope, id, until))
    }
}
