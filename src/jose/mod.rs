//! Signing keys and key sets: what signs JWT access tokens and Security Event Tokens, and
//! what checks them. Signatures are made and checked by `jsonwebtoken` (Ed25519 from
//! RustCrypto's `ed25519-dalek`); nothing here is hand-written cryptography.
//!
//! ```
//! use serde_json::json;
//! use tower_oauth_revoke::jose::{KeySet, SigningKey};
//!
//! let key = SigningKey::generate();
//! let jws = key.sign("at+jwt", &json!({"iss": "https://as.example", "exp": 4102444800u64})).unwrap();
//!
//! // A verifier knows only the published key set.
//! let keys = KeySet::from_jwks(&key.jwks()).unwrap();
//! let claims: serde_json::Value = keys.verify(&jws, "at+jwt").unwrap();
//! assert_eq!(claims["iss"], "https://as.example");
//! ```

use std::{collections::HashMap, fmt, sync::Arc};

#[cfg(feature = "remote")]
pub(crate) mod remote;
#[cfg(feature = "remote")]
pub(crate) use self::remote::http_client;
#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use self::remote::RemoteKeySet;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{
    jwk::{Jwk, JwkSet, ThumbprintHash},
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{de::DeserializeOwned, Serialize};

/// Why a key could not be read, or a token not made or checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseError(String);

impl JoseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The error saying what `err` says.
    fn of(err: impl fmt::Display) -> Self {
        Self(err.to_string())
    }
}

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JoseError {}

/// A private key, Ed25519 (JWS `EdDSA`, what [`generate`](Self::generate) makes) or P-256
/// (`ES256`), with its key id: the RFC 7638 thumbprint of its public JWK. Cheap to clone.
#[derive(Clone)]
pub struct SigningKey {
    encoding: Arc<EncodingKey>,
    alg: Algorithm,
    jwk: Arc<Jwk>,
    kid: Arc<str>,
    pem: Arc<str>,
}

debug_fields!(SigningKey { kid });

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        Self::from_dalek(&key).expect("a fresh Ed25519 key encodes")
    }

    /// A key from a PEM file's text: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) of an Ed25519
    /// key (`openssl genpkey -algorithm ed25519`) or a P-256 key (`openssl genpkey -algorithm
    /// EC -pkeyopt ec_paramgen_curve:P-256`), or a SEC1 P-256 key (`-----BEGIN EC PRIVATE
    /// KEY-----`, `openssl ecparam -name prime256v1 -genkey`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, JoseError> {
        use p256::pkcs8::DecodePrivateKey as _;
        if pem.contains("BEGIN EC PRIVATE KEY") {
            let key = p256::SecretKey::from_sec1_pem(pem)
                .map_err(|e| JoseError::new(format!("not a P-256 SEC1 private key: {e}")))?;
            return Self::from_p256(&key);
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_dalek(&key);
        }
        match p256::SecretKey::from_pkcs8_pem(pem) {
            Ok(key) => Self::from_p256(&key),
            Err(_) => Err(JoseError::new(
                "not a PKCS#8 or SEC1 private key of Ed25519 or P-256",
            )),
        }
    }

    fn from_p256(key: &p256::SecretKey) -> Result<Self, JoseError> {
        Self::assemble(
            key,
            Algorithm::ES256,
            EncodingKey::from_ec_der,
            |encoding| Jwk::from_encoding_key(encoding, Algorithm::ES256).map_err(JoseError::of),
        )
    }

    /// The signing key of `key`: its `jsonwebtoken` key made by `from_der` of its PKCS#8
    /// DER, and its public JWK made by `jwk`, given the `kid` (its thumbprint) and `use`.
    fn assemble(
        key: &impl EncodePrivateKey,
        alg: Algorithm,
        from_der: fn(&[u8]) -> EncodingKey,
        jwk: impl FnOnce(&EncodingKey) -> Result<Jwk, JoseError>,
    ) -> Result<Self, JoseError> {
        let der = key.to_pkcs8_der().map_err(JoseError::of)?;
        let pem = key
            .to_pkcs8_pem(Default::default())
            .map_err(JoseError::of)?;
        let encoding = from_der(der.as_bytes());
        let mut jwk = jwk(&encoding)?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(JoseError::of)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            encoding: Arc::new(encoding),
            alg,
            jwk: Arc::new(jwk),
            kid: kid.into(),
            pem: pem.as_str().into(),
        })
    }

    /// The JWS algorithm of its signatures: `EdDSA` or `ES256`.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> Result<Self, JoseError> {
        Self::assemble(key, Algorithm::EdDSA, EncodingKey::from_ed_der, |_| {
            Ok(Self::ed25519_jwk(key))
        })
    }

    /// The public JWK of an Ed25519 key, before its `kid` and `use`.
    fn ed25519_jwk(key: &ed25519_dalek::SigningKey) -> Jwk {
        use base64::Engine as _;
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        Jwk {
            common: jsonwebtoken::jwk::CommonParameters {
                key_algorithm: Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(
                jsonwebtoken::jwk::OctetKeyPairParameters {
                    key_type: jsonwebtoken::jwk::OctetKeyPairType::OctetKeyPair,
                    curve: jsonwebtoken::jwk::EllipticCurve::Ed25519,
                    x,
                },
            ),
        }
    }

    /// The key id (`kid`) every token it signs names: by default the RFC 7638 thumbprint
    /// of its public JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The same key under another key id (a client's key registered with the id it
    /// chose, say), in its JWK and in every token it signs.
    ///
    /// ```
    /// use tower_oauth_revoke::jose::SigningKey;
    ///
    /// let key = SigningKey::generate().with_kid("client-key-1");
    /// assert_eq!(key.kid(), "client-key-1");
    /// assert!(key.jwks().contains("\"kid\":\"client-key-1\""));
    /// ```
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid: String = kid.into();
        Arc::make_mut(&mut self.jwk).common.key_id = Some(kid.clone());
        self.kid = kid.into();
        self
    }

    /// The private key as PKCS#8 PEM, to share it with other nodes. Keep it secret.
    pub fn to_pkcs8_pem(&self) -> &str {
        &self.pem
    }

    /// The public key as a JWK (`kty` `OKP`, `crv` `Ed25519`, `kid`, `use` `sig`, `alg`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The JWKS document (RFC 7517 §5) publishing the public key.
    pub fn jwks(&self) -> String {
        let set = JwkSet {
            keys: vec![(*self.jwk).clone()],
        };
        serde_json::to_string(&set).expect("a JWK set serializes")
    }

    /// Signs `claims` as a compact JWS with header `alg` (the key's), `typ`, and `kid`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, JoseError> {
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(JoseError::of)
    }

    /// Signs `claims` as a compact JWS whose header carries the public key itself (`jwk`,
    /// the [`public_jwk`](Self::public_jwk)) instead of a `kid`: header `alg`, `typ` and
    /// `jwk`, as a DPoP proof has ([RFC 9449 §4.2]).
    ///
    /// [RFC 9449 §4.2]: https://www.rfc-editor.org/rfc/rfc9449#section-4.2
    pub fn sign_with_jwk<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, JoseError> {
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.jwk = Some((*self.jwk).clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(JoseError::of)
    }

    /// The `jsonwebtoken` key it signs with, for tests that build a JWS by hand.
    #[cfg(test)]
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// Public keys from a JWKS: what a verifier trusts. Each key is pinned to the algorithms of
/// its type (Ed25519: `EdDSA`; P-256: `ES256`; P-384: `ES384`; RSA of at least 2048 bits:
/// `RS256`/`PS256` and their 384 and 512 variants), or to the one its `alg` member names.
/// A token signed with any other algorithm is refused: never `none`, never HMAC (a
/// symmetric `oct` key is never kept, so a public key cannot serve as an HMAC secret).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<PublicKey>,
    by_kid: HashMap<String, usize>,
}

#[derive(Clone)]
struct PublicKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: Arc<DecodingKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3 and FAPI 2.0 ask for 2048).
const MIN_RSA_BITS: usize = 2048;

/// The algorithms a public JWK may verify: its `alg` if it names one of its type's, else
/// all of its type's. `None` for keys that cannot serve (symmetric, private, unsupported
/// curve, short RSA modulus, an `alg` of another type).
fn algorithms_of(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C, KeyAlgorithm as K};
    let of_type: &[Algorithm] = match &jwk.algorithm {
        P::OctetKeyPair(p) if p.curve == C::Ed25519 => &[Algorithm::EdDSA],
        P::EllipticCurve(p) if p.curve == C::P256 => &[Algorithm::ES256],
        P::EllipticCurve(p) if p.curve == C::P384 => &[Algorithm::ES384],
        P::RSA(p) => {
            use base64::Engine as _;
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&p.n)
                .ok()?;
            let n = &n[n.iter().take_while(|&&b| b == 0).count()..];
            if n.len() * 8 < MIN_RSA_BITS {
                return None;
            }
            &[
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::RS384,
                Algorithm::PS384,
                Algorithm::RS512,
                Algorithm::PS512,
            ]
        }
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => return Some(of_type.to_vec()),
        Some(K::EdDSA) => Algorithm::EdDSA,
        Some(K::ES256) => Algorithm::ES256,
        Some(K::ES384) => Algorithm::ES384,
        Some(K::RS256) => Algorithm::RS256,
        Some(K::RS384) => Algorithm::RS384,
        Some(K::RS512) => Algorithm::RS512,
        Some(K::PS256) => Algorithm::PS256,
        Some(K::PS384) => Algorithm::PS384,
        Some(K::PS512) => Algorithm::PS512,
        Some(_) => return None,
    };
    of_type.contains(&named).then(|| vec![named])
}

impl KeySet {
    /// The usable keys of a JWKS document; a key that cannot serve (see the
    /// [type docs](Self)), that is not meant for signatures (`use` other than `sig`), or that
    /// does not parse is skipped, and so is a second key of an id already seen.
    pub fn from_jwks(jwks: &str) -> Result<Self, JoseError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_str(jwks)
            .map_err(|e| JoseError::new(format!("not a JWK set: {e}")))?;
        let mut set = Self::default();
        for value in document.keys {
            let private = ["d", "p", "q", "k"]
                .iter()
                .any(|member| value.get(member).is_some());
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if private
                || jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let Some(algorithms) = algorithms_of(&jwk) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let kid = jwk.common.key_id.clone();
            if let Some(kid) = &kid {
                if set.by_kid.contains_key(kid) {
                    continue;
                }
                set.by_kid.insert(kid.clone(), set.keys.len());
            }
            set.keys.push(PublicKey {
                kid,
                algorithms,
                key: Arc::new(key),
            });
        }
        Ok(set)
    }

    /// Whether a key with this id is known.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// How many keys are known.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks a compact JWS: a known `kid`, an algorithm that key is pinned to, the
    /// signature, and the header `typ` (compared without case, as RFC 7515 §4.1.9 says; an
    /// `application/` prefix is accepted). Returns the claims; checks no claim (see
    /// [`verify_with`](Self::verify_with)).
    pub fn verify<T: DeserializeOwned>(&self, jws: &str, typ: &str) -> Result<T, JoseError> {
        self.verify_with(jws, typ, Self::no_claim_checks())
    }

    /// A `Validation` that checks no claim, for [`verify_with`](Self::verify_with).
    fn no_claim_checks() -> Validation {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation
    }

    /// Like [`verify`](Self::verify), with the claim checks of `validation` (its algorithms
    /// are replaced by the key's own).
    pub fn verify_with<T: DeserializeOwned>(
        &self,
        jws: &str,
        typ: &str,
        validation: Validation,
    ) -> Result<T, JoseError> {
        let header = self.header(jws)?;
        if !typ_is(&header, typ) {
            return Err(JoseError::new(format!("the token's typ is not {typ}")));
        }
        let key = self.key_of(&header, false)?;
        decode_with(jws, header.alg, key, validation)
    }

    /// Checks a compact JWS from a party that may leave out `kid` (a client's assertion,
    /// RFC 7523): without `kid`, the one key of the set pinned to the header's algorithm
    /// is used. The header's `typ`, if present, must be one of `typs` (case-insensitively).
    /// Returns the claims; checks no claim.
    pub fn verify_any<T: DeserializeOwned>(
        &self,
        jws: &str,
        typs: &[&str],
    ) -> Result<T, JoseError> {
        let header = self.header(jws)?;
        if header.typ.is_some() && !typs.iter().any(|typ| typ_is(&header, typ)) {
            return Err(JoseError::new("the token's typ is not one accepted here"));
        }
        let key = self.key_of(&header, true)?;
        decode_with(jws, header.alg, key, Self::no_claim_checks())
    }

    /// The header of a JWS, unchecked.
    pub fn header(&self, jws: &str) -> Result<Header, JoseError> {
        jsonwebtoken::decode_header(jws).map_err(|e| JoseError::new(format!("not a JWS: {e}")))
    }

    /// The key a header names, if known and pinned to the header's algorithm; without
    /// `kid`, if `any_key`, the only key pinned to that algorithm.
    fn key_of(&self, header: &Header, any_key: bool) -> Result<&DecodingKey, JoseError> {
        let key = match header.kid.as_deref() {
            Some(kid) => self
                .by_kid
                .get(kid)
                .map(|&i| &self.keys[i])
                .ok_or_else(|| JoseError::new("the token's key is not in the key set"))?,
            None if any_key => {
                let mut fitting = self
                    .keys
                    .iter()
                    .filter(|k| k.algorithms.contains(&header.alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => key,
                    (None, _) => return Err(JoseError::new("no key of the token's algorithm")),
                    (Some(_), Some(_)) => {
                        return Err(JoseError::new(
                            "the token names no key (kid), and several keys could be it",
                        ))
                    }
                }
            }
            None => return Err(JoseError::new("the token names no key (kid)")),
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(JoseError::new("the token's algorithm is not its key's"));
        }
        Ok(&key.key)
    }

    /// Whether the JWS names a `kid` this set does not hold (a reason to refetch the JWKS).
    pub fn names_unknown_key(&self, jws: &str) -> bool {
        match self.header(jws) {
            Ok(header) => header.kid.is_some_and(|kid| !self.contains(&kid)),
            Err(_) => false,
        }
    }
}

/// A client's public keys, what its assertions are checked with: a JWKS registered with
/// the client, or its `jwks_uri`, fetched and cached with the rules of
/// [`RemoteKeySet`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientKeys(KeysSource);

/// Where a client's keys are.
#[derive(Clone, Debug)]
pub(crate) enum KeysSource {
    Inline(KeySet),
    #[cfg(feature = "remote")]
    Remote(RemoteKeySet),
}

impl ClientKeys {
    /// Keys registered with the client.
    pub fn inline(keys: KeySet) -> Self {
        Self(KeysSource::Inline(keys))
    }

    /// The keys of a JWKS document registered with the client.
    pub fn from_jwks(jwks: &str) -> Result<Self, JoseError> {
        KeySet::from_jwks(jwks).map(Self::inline)
    }

    /// The keys at the client's `jwks_uri` (feature `remote`).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn remote(keys: RemoteKeySet) -> Self {
        Self(KeysSource::Remote(keys))
    }

    /// Where the keys are.
    pub(crate) fn source(&self) -> &KeysSource {
        &self.0
    }
}

/// Whether the header's `typ` is `typ`, without case, with or without `application/`.
fn typ_is(header: &Header, typ: &str) -> bool {
    let found = header.typ.as_deref().unwrap_or("");
    let found = match found.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &found[12..],
        _ => found,
    };
    found.eq_ignore_ascii_case(typ)
}

/// The claims of `jws`, its signature checked by `key` with `alg` alone.
fn decode_with<T: DeserializeOwned>(
    jws: &str,
    alg: Algorithm,
    key: &DecodingKey,
    mut validation: Validation,
) -> Result<T, JoseError> {
    validation.algorithms = vec![alg];
    jsonwebtoken::decode::<T>(jws, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| JoseError::new(format!("invalid token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_key_round_trips_through_pem_with_the_same_kid() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pkcs8_pem(key.to_pkcs8_pem()).unwrap();
        assert_eq!(key.kid(), again.kid());
        let jwks: Value = serde_json::from_str(&key.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
        assert_eq!(jwks["keys"][0]["kid"], key.kid());
        assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    }

    #[test]
    fn p256_keys_sign_es256_and_verify() {
        // A SEC1 PEM, as `openssl ecparam -name prime256v1 -genkey -noout` writes it.
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let sec1 = secret.to_sec1_pem(Default::default()).unwrap();
        let key = SigningKey::from_pkcs8_pem(&sec1).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        let again = SigningKey::from_pkcs8_pem(key.to_pkcs8_pem()).unwrap();
        assert_eq!(key.kid(), again.kid());
        let jws = key.sign("at+jwt", &json!({"iss": "x"})).unwrap();
        let keys = KeySet::from_jwks(&key.jwks()).unwrap();
        let claims: Value = keys.verify(&jws, "at+jwt").unwrap();
        assert_eq!(claims["iss"], "x");
        let jwks: Value = serde_json::from_str(&key.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        assert!(SigningKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
    }

    #[test]
    fn a_jwk_signed_jws_carries_the_public_key_and_no_kid() {
        use base64::Engine as _;
        for key in [
            SigningKey::generate(),
            SigningKey::from_p256(&p256::SecretKey::from_slice(&[9u8; 32]).unwrap()).unwrap(),
        ] {
            let jws = key.sign_with_jwk("dpop+jwt", &json!({"jti": "1"})).unwrap();
            let header = jws.split('.').next().unwrap();
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap();
            let header: Value = serde_json::from_slice(&header).unwrap();
            assert_eq!(header["typ"], "dpop+jwt");
            assert_eq!(header["alg"], json!(key.algorithm()));
            assert!(header.get("kid").is_none(), "{header}");
            assert!(header["jwk"].get("d").is_none(), "no private part");
            let jwk: Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
            assert_eq!(&jwk, key.public_jwk());
            let mut validation = Validation::new(key.algorithm());
            validation.required_spec_claims.clear();
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            assert!(jsonwebtoken::decode::<Value>(&jws, &decoding, &validation).is_ok());
        }
    }

    #[test]
    fn forgeries_are_refused() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let keys = KeySet::from_jwks(&key.jwks()).unwrap();
        let claims = json!({"iss": "x"});
        let good = key.sign("at+jwt", &claims).unwrap();
        assert!(keys.verify::<Value>(&good, "at+jwt").is_ok());
        assert!(
            keys.verify::<Value>(&good, "secevent+jwt").is_err(),
            "wrong typ"
        );
        let foreign = other.sign("at+jwt", &claims).unwrap();
        assert!(
            keys.verify::<Value>(&foreign, "at+jwt").is_err(),
            "unknown key"
        );
        assert!(keys.names_unknown_key(&foreign));
        // The other key's signature under this key's kid.
        let parts: Vec<&str> = good.split('.').collect();
        let foreign_sig = foreign.rsplit('.').next().unwrap();
        let swapped = format!("{}.{}.{foreign_sig}", parts[0], parts[1]);
        assert!(
            keys.verify::<Value>(&swapped, "at+jwt").is_err(),
            "bad signature"
        );
        // alg none, with the right kid.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header =
            b64.encode(json!({"alg": "none", "typ": "at+jwt", "kid": key.kid()}).to_string());
        let none = format!("{header}.{}.", parts[1]);
        assert!(keys.verify::<Value>(&none, "at+jwt").is_err(), "alg none");
        assert!(keys.verify::<Value>("not a jwt", "at+jwt").is_err());
    }
}
