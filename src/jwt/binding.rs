//! A JWT's binding: its `cnf` claim ([`AccessClaims::cnf`](super::AccessClaims::cnf)), and
//! which binding holds when the signed claims and the store's record both have one.

use serde::{de, ser::SerializeMap, Deserializer, Serializer};

use crate::store::{Confirmation, TokenRecord};

/// The store's record of a JWT, with the binding its signed claims give (`claimed`): the
/// claims win. `None`, the token refused, when the store holds a binding the claims do not
/// (another key, or none): the token's two records disagree on who may use it.
pub(crate) fn bound_as_claimed(
    mut record: TokenRecord,
    claimed: Option<Confirmation>,
) -> Option<TokenRecord> {
    if record.confirmation.is_some() && record.confirmation != claimed {
        tracing::warn!(
            grant = %record.grant,
            "a JWT's store record and its claims are bound to different keys: refused"
        );
        return None;
    }
    record.confirmation = claimed;
    Some(record)
}

/// Writes the `cnf` claim of a [`Confirmation`] (serde's `with`): `{"<member>":
/// "<thumbprint in base64url>"}`.
pub(super) fn serialize<S: Serializer>(
    cnf: &Option<Confirmation>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match cnf {
        Some(confirmation) => {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(confirmation.member(), &confirmation.to_base64url())?;
            map.end()
        }
        None => serializer.serialize_none(),
    }
}

/// Reads a `cnf` claim: an object of exactly one member, `jkt` or `x5t#S256`, with a
/// well-formed thumbprint; `null` is none. Anything else is an error, and the token fails
/// validation.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Confirmation>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<Confirmation>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a cnf object of one member, jkt or x5t#S256")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let Some((member, value)) = map.next_entry::<String, String>()? else {
                return Err(de::Error::custom("an empty cnf"));
            };
            if map.next_key::<de::IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("a cnf of more than one member"));
            }
            Confirmation::from_member(&member, &value)
                .map(Some)
                .ok_or_else(|| {
                    de::Error::custom(
                        "a cnf member other than jkt or x5t#S256, or a malformed thumbprint",
                    )
                })
        }
    }
    deserializer.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::super::{now_secs, JwtAccessTokens, JwtCheck, TYP};
    use crate::{
        guard::TokenCheck,
        jose::SigningKey,
        store::{Confirmation, GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
    };

    fn record(exp: SystemTime) -> TokenRecord {
        TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), exp).with_owner("alice")
    }

    fn payload(token: &str) -> serde_json::Value {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_bound_jwt_carries_its_cnf_and_the_claims_win() {
        let store = MemoryStore::new();
        let jwts = JwtAccessTokens::new("https://as", "api", SigningKey::generate());
        let check = JwtCheck::new(store.clone(), jwts.clone());
        let exp = SystemTime::now() + Duration::from_secs(600);
        let jkt = Confirmation::Jkt([0x11; 32]);
        let x5t = Confirmation::X5tS256([0x22; 32]);

        for confirmation in [jkt, x5t] {
            let token = jwts
                .issue(&store, record(exp).with_confirmation(confirmation))
                .await
                .unwrap();
            assert_eq!(
                payload(&token)["cnf"],
                serde_json::json!({ confirmation.member(): confirmation.to_base64url() }),
                "the signed claims carry the binding"
            );
            let claims = jwts.verify(&token).unwrap();
            assert_eq!(claims.cnf, Some(confirmation));
            assert_eq!(claims.to_record().confirmation, Some(confirmation));
            let held = store.inspect(&claims.store_key()).await.unwrap().unwrap();
            assert_eq!(held.confirmation, Some(confirmation), "registered with it");
            let checked = check.check(&token).await.unwrap().expect("active");
            assert_eq!(checked.confirmation, Some(confirmation));
        }

        // A bearer JWT has no cnf at all.
        let bearer = jwts.issue(&store, record(exp)).await.unwrap();
        assert!(payload(&bearer).get("cnf").is_none());
        let claims = jwts.verify(&bearer).unwrap();
        assert_eq!(claims.cnf, None);
        assert_eq!(
            check.check(&bearer).await.unwrap().unwrap().confirmation,
            None
        );

        // The store's record bound where the claims are not: refused.
        let rebound = record(exp).with_confirmation(jkt);
        store.issue(claims.store_key(), rebound).await.unwrap();
        assert!(
            check.check(&bearer).await.unwrap().is_none(),
            "bound in the store only"
        );

        // Bound to another key in the store: refused.
        let token = jwts
            .issue(&store, record(exp).with_confirmation(jkt))
            .await
            .unwrap();
        let claims = jwts.verify(&token).unwrap();
        let key = claims.store_key();
        store
            .issue(key, record(exp).with_confirmation(x5t))
            .await
            .unwrap();
        assert!(check.check(&token).await.unwrap().is_none(), "another key");

        // The store holding no binding (a node that could not keep it): the claims' holds.
        store.issue(key, record(exp)).await.unwrap();
        let checked = check.check(&token).await.unwrap().expect("active");
        assert_eq!(checked.confirmation, Some(jkt), "the signed claims win");
    }

    #[test]
    fn a_cnf_the_crate_cannot_honour_fails_validation() {
        let key = SigningKey::generate();
        let jwts = JwtAccessTokens::new("https://as", "api", key.clone());
        let exp = now_secs() + 600;
        let thumbprint = Confirmation::Jkt([5; 32]).to_base64url();
        let sign = |cnf: serde_json::Value| {
            let mut claims = serde_json::json!({
                "iss": "https://as", "sub": "alice", "client_id": "app", "aud": "api",
                "exp": exp, "iat": exp - 600, "jti": "j", "grant_id": "00000000000000aa",
            });
            if !cnf.is_null() {
                claims["cnf"] = cnf;
            }
            key.sign(TYP, &claims).unwrap()
        };
        let claims = jwts.verify(&sign(serde_json::Value::Null)).unwrap();
        assert_eq!(claims.cnf, None, "no cnf: a bearer token");
        let claims = jwts
            .verify(&sign(serde_json::json!({ "x5t#S256": thumbprint })))
            .unwrap();
        assert_eq!(claims.cnf, Some(Confirmation::X5tS256([5; 32])));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({ "jwk": { "kty": "OKP" } }),
            serde_json::json!({ "jkt": thumbprint, "x5t#S256": thumbprint }),
            serde_json::json!({ "jkt": "c2hvcnQ" }),
            serde_json::json!({ "jkt": format!("{thumbprint}=") }),
            serde_json::json!({ "jkt": 5 }),
            serde_json::json!("jkt"),
        ] {
            assert!(jwts.verify(&sign(bad.clone())).is_none(), "{bad}");
        }
    }
}
