//! The RFC 7638 thumbprint of a public key: what a DPoP-bound token's `cnf.jkt` holds.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};

use crate::jose::SigningKey;

/// The SHA-256 JWK thumbprint of a public key ([RFC 7638]): 32 bytes, written in base64url
/// without padding (43 characters) wherever it travels, as the `jkt` confirmation of a
/// DPoP-bound access token ([RFC 9449 §6]) or the `dpop_jkt` of an authorization request.
///
/// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
/// [RFC 9449 §6]: https://www.rfc-editor.org/rfc/rfc9449#section-6
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JwkThumbprint([u8; 32]);

impl JwkThumbprint {
    /// The thumbprint of a public JWK: `EC` (P-256, P-384, P-521), `RSA` or `OKP` Ed25519.
    /// `None` for other key types, for symmetric (`oct`) keys, and for members that are not
    /// base64url, which no key of these types has.
    pub fn of_jwk(jwk: &Jwk) -> Option<Self> {
        let members: &[&str] = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(p) => &[&p.x, &p.y],
            AlgorithmParameters::RSA(p) => &[&p.n, &p.e],
            AlgorithmParameters::OctetKeyPair(p) => &[&p.x],
            _ => return None,
        };
        // The members go into the hashed JSON as they are: anything but base64url would
        // make that JSON mean something else.
        if !members.iter().all(|m| is_base64url(m)) {
            return None;
        }
        let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).ok()?;
        Self::from_base64url(&thumbprint)
    }

    /// The thumbprint of a signing key's public JWK, which is its [`kid`](SigningKey::kid).
    pub fn of_key(key: &SigningKey) -> Self {
        Self::from_base64url(key.kid()).expect("a signing key's kid is its RFC 7638 thumbprint")
    }

    /// The thumbprint of these 32 bytes of SHA-256 output.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of SHA-256 output.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads the base64url form (no padding), as a `jkt` holds it; `None` unless it is
    /// exactly 32 bytes so written.
    pub fn from_base64url(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(32) if text.len() == 43 => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The base64url form without padding, 43 characters.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Display for JwkThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for JwkThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwkThumbprint({self})")
    }
}

/// Whether `text` is non-empty and made of the base64url alphabet only (no padding).
pub(crate) fn is_base64url(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The RSA key of RFC 7638 §3.1, and the thumbprint printed there.
    #[test]
    fn the_thumbprint_of_rfc_7638_section_3_1() {
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS",
                "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y",
                "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd",
                "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn",
                "qDKgw",
            ),
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        }))
        .unwrap();
        let thumbprint = JwkThumbprint::of_jwk(&jwk).unwrap();
        assert_eq!(
            thumbprint.to_base64url(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            thumbprint.to_string(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            format!("{thumbprint:?}"),
            "JwkThumbprint(NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs)"
        );
        let again = JwkThumbprint::from_base64url(&thumbprint.to_base64url()).unwrap();
        assert_eq!(again, thumbprint);
        assert_eq!(
            JwkThumbprint::from_bytes(*thumbprint.as_bytes()),
            thumbprint
        );
    }

    #[test]
    fn a_signing_keys_thumbprint_is_its_kid() {
        let key = SigningKey::generate();
        let thumbprint = JwkThumbprint::of_key(&key);
        assert_eq!(JwkThumbprint::of_jwk(key.public_jwk()), Some(thumbprint));
        assert_eq!(thumbprint.to_base64url(), key.kid());
    }

    #[test]
    fn only_32_bytes_of_base64url_read_as_a_thumbprint() {
        let text = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        assert!(JwkThumbprint::from_base64url(text).is_some());
        assert!(JwkThumbprint::from_base64url(&text[..42]).is_none());
        assert!(JwkThumbprint::from_base64url(&format!("{text}A")).is_none());
        assert!(JwkThumbprint::from_base64url(&format!("{text}=")).is_none());
        assert!(JwkThumbprint::from_base64url(&text.replace('-', "+")).is_none());
        assert!(JwkThumbprint::from_base64url("").is_none());
    }

    #[test]
    fn symmetric_keys_and_members_outside_base64url_have_no_thumbprint() {
        let oct: Jwk = serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap();
        assert_eq!(JwkThumbprint::of_jwk(&oct), None);
        let forged: Jwk = serde_json::from_value(json!({
            "kty": "OKP", "crv": "Ed25519", "x": "AAAA\",\"y\":\"BBBB",
        }))
        .unwrap();
        assert_eq!(JwkThumbprint::of_jwk(&forged), None);
    }
}
