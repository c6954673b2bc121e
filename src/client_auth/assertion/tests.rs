//! Each rule of an assertion, refused alone: every test fails if its check is removed.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};

use super::*;
use crate::{
    jose::{KeySet, SigningKey},
    store::MemoryStore,
};

const ISSUER: &str = "https://as.example/tenant";
const PATH: &str = "/tenant/oauth2/token";
/// PKCS#1 DER of a 2048-bit RSA key made for these tests (`openssl genpkey -algorithm RSA`).
const RSA_DER: &[u8] = include_bytes!("rsa-test-key.der");
const RSA_JWKS: &str = include_str!("rsa-test-key.jwks.json");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(jti: &str) -> Value {
    json!({
        "iss": "app", "sub": "app", "aud": ISSUER,
        "exp": now() + 60, "iat": now(), "jti": jti,
    })
}

struct Fixture {
    key: SigningKey,
    client: Client,
    assertions: ClientAssertions,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate();
    let client = Client::private_key_jwt("app", ClientKeys::from_jwks(&key.jwks()).unwrap());
    Fixture {
        key,
        client,
        assertions: ClientAssertions::new(ISSUER, MemoryStore::new()),
    }
}

impl Fixture {
    async fn check(&self, assertion: &str) -> Result<(), AssertionError> {
        self.assertions.verify(&self.client, assertion, PATH).await
    }

    async fn refused(&self, claims: Value, why: &str) {
        let assertion = self.key.sign("JWT", &claims).unwrap();
        match self.check(&assertion).await {
            Err(AssertionError::Invalid(what)) => assert!(
                what.contains(why),
                "expected a refusal for {why:?}, got {what:?}"
            ),
            other => panic!("expected a refusal for {why:?}, got {other:?}"),
        }
    }
}

fn edit(mut claims: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(claims.as_object_mut().unwrap());
    claims
}

#[tokio::test]
async fn a_good_assertion_passes_once() {
    let f = fixture();
    let assertion = f.key.sign("JWT", &claims("1")).unwrap();
    f.check(&assertion).await.unwrap();
    f.refused(claims("1"), "used before").await;
    // Without typ and with the typ of draft-ietf-oauth-rfc7523bis.
    let assertion = f
        .key
        .sign("client-authentication+jwt", &claims("2"))
        .unwrap();
    f.check(&assertion).await.unwrap();
}

#[tokio::test]
async fn audiences() {
    let f = fixture();
    for (n, aud) in [
        json!(ISSUER),
        json!(format!("{ISSUER}/")),
        json!("https://as.example/tenant/oauth2/token"),
        json!(["https://rs.example", ISSUER]),
    ]
    .into_iter()
    .enumerate()
    {
        let c = edit(claims(&format!("aud-{n}")), |c| {
            c.insert("aud".into(), aud.clone());
        });
        let assertion = f.key.sign("JWT", &c).unwrap();
        f.check(&assertion)
            .await
            .unwrap_or_else(|e| panic!("{aud}: {e}"));
    }
    for aud in [
        json!("https://as.example"),
        json!("https://as.example/tenant/oauth2/revoke"),
        json!("https://other.example/tenant"),
        json!(["https://rs.example"]),
        json!(42),
    ] {
        let c = edit(claims("bad-aud"), |c| {
            c.insert("aud".into(), aud);
        });
        f.refused(c, "aud").await;
    }
    f.refused(
        edit(claims("no-aud"), |c| {
            c.remove("aud");
        }),
        "aud",
    )
    .await;
    // Strict: the issuer alone, as a string.
    let strict = Fixture {
        assertions: f.assertions.clone().issuer_audience_only(),
        ..fixture()
    };
    let c = edit(claims("s1"), |c| {
        c.insert("aud".into(), json!([ISSUER]));
    });
    strict.refused(c, "aud").await;
    let c = edit(claims("s2"), |c| {
        c.insert(
            "aud".into(),
            json!("https://as.example/tenant/oauth2/token"),
        );
    });
    strict.refused(c, "aud").await;
    let assertion = strict.key.sign("JWT", &claims("s3")).unwrap();
    strict.check(&assertion).await.unwrap();
}

#[tokio::test]
async fn iss_and_sub_are_the_client() {
    let f = fixture();
    for (claim, value) in [("iss", "other"), ("sub", "other")] {
        let c = edit(claims("who"), |c| {
            c.insert(claim.into(), json!(value));
        });
        f.refused(c, "iss and sub").await;
        let c = edit(claims("who"), |c| {
            c.remove(claim);
        });
        f.refused(c, "iss and sub").await;
    }
}

#[tokio::test]
async fn times() {
    let f = fixture();
    let set = |claim: &str, value: Value| {
        edit(claims("t"), |c| {
            c.insert(claim.into(), value);
        })
    };
    f.refused(
        edit(claims("t"), |c| {
            c.remove("exp");
        }),
        "no exp",
    )
    .await;
    f.refused(set("exp", json!(now() - 31)), "expired").await;
    f.refused(set("exp", json!(now() + 400)), "too far ahead")
        .await;
    f.refused(set("iat", json!(now() + 120)), "iat is in the future")
        .await;
    f.refused(set("nbf", json!(now() + 120)), "nbf is in the future")
        .await;
    // Within the leeway, and fractional times.
    let assertion = f
        .key
        .sign("JWT", &set("exp", json!(now() as f64 - 10.5)))
        .unwrap();
    f.check(&assertion).await.unwrap();
}

#[tokio::test]
async fn jti_is_required_and_bounded() {
    let f = fixture();
    f.refused(
        edit(claims(""), |c| {
            c.remove("jti");
        }),
        "jti",
    )
    .await;
    f.refused(claims(""), "jti").await;
    f.refused(claims(&"j".repeat(257)), "jti").await;
}

#[tokio::test]
async fn a_refused_assertion_records_nothing() {
    let f = fixture();
    let expired = edit(claims("keep"), |c| {
        c.insert("exp".into(), json!(now() - 100));
    });
    f.refused(expired, "expired").await;
    let assertion = f.key.sign("JWT", &claims("keep")).unwrap();
    f.check(&assertion).await.unwrap();
}

#[tokio::test]
async fn forgeries() {
    let f = fixture();
    // Another key under the client's kid, and another key without kid.
    let other = SigningKey::generate();
    let foreign = other.sign("JWT", &claims("f1")).unwrap();
    assert!(matches!(
        f.check(&foreign).await,
        Err(AssertionError::Invalid(_))
    ));
    let parts: Vec<&str> = foreign.split('.').collect();
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": f.key.kid()}).to_string();
    let swapped = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        parts[1],
        parts[2]
    );
    assert!(
        f.check(&swapped).await.is_err(),
        "a signature of another key"
    );
    // alg none.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": f.key.kid()}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims("f2").to_string());
    assert!(
        f.check(&format!("{header}.{payload}.")).await.is_err(),
        "alg none"
    );
    // HS256 keyed with the public key's bytes.
    let jwk = serde_json::to_value(f.key.public_jwk()).unwrap();
    let secret = jwk["x"].as_str().unwrap().as_bytes().to_vec();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(f.key.kid().to_owned());
    let hmac = jsonwebtoken::encode(
        &hs,
        &claims("f3"),
        &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
    )
    .unwrap();
    assert!(f.check(&hmac).await.is_err(), "HS256 with the public key");
    // A JWT of another kind.
    let access = f.key.sign("at+jwt", &claims("f4")).unwrap();
    assert!(f.check(&access).await.is_err(), "an access token");
    let dpop = f.key.sign("dpop+jwt", &claims("f5")).unwrap();
    assert!(f.check(&dpop).await.is_err(), "a DPoP proof");
    // Garbage, and too long.
    assert!(f.check("not.a.jwt").await.is_err());
    assert!(f.check(&"a".repeat(9000)).await.is_err());
    // None of them was recorded: a good assertion with each jti passes.
    for jti in ["f1", "f2", "f3", "f4", "f5"] {
        let good = f.key.sign("JWT", &claims(jti)).unwrap();
        f.check(&good).await.unwrap();
    }
}

#[tokio::test]
async fn a_client_without_keys_or_a_key_not_registered() {
    let f = fixture();
    let plain = Client::confidential("app", "secret");
    let assertion = f.key.sign("JWT", &claims("k1")).unwrap();
    assert!(f.assertions.verify(&plain, &assertion, PATH).await.is_err());
    let p256 = SigningKey::from_pkcs8_pem(
        &p256::SecretKey::from_slice(&[9u8; 32])
            .unwrap()
            .to_sec1_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    let by_p256 = p256.sign("JWT", &claims("k2")).unwrap();
    assert!(f.check(&by_p256).await.is_err(), "a key not registered");
}

#[tokio::test]
async fn rsa_keys_without_kid_sign_rs256_and_ps256() {
    let client = Client::private_key_jwt("app", ClientKeys::from_jwks(RSA_JWKS).unwrap());
    let assertions = ClientAssertions::new(ISSUER, MemoryStore::new());
    let key = jsonwebtoken::EncodingKey::from_rsa_der(RSA_DER);
    for (n, alg) in [
        jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::Algorithm::PS256,
    ]
    .into_iter()
    .enumerate()
    {
        let header = jsonwebtoken::Header::new(alg);
        let assertion = jsonwebtoken::encode(&header, &claims(&format!("rsa-{n}")), &key).unwrap();
        assertions
            .verify(&client, &assertion, PATH)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
    }
    // An EC algorithm named over the RSA key: no key of that algorithm.
    let ec = SigningKey::generate();
    let assertion = ec.sign("JWT", &claims("rsa-ec")).unwrap();
    assert!(assertions.verify(&client, &assertion, PATH).await.is_err());
}

#[test]
fn key_sets_keep_only_public_signing_keys() {
    let rsa: Value = serde_json::from_str(RSA_JWKS).unwrap();
    let rsa = rsa["keys"][0].clone();
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut key = rsa.clone();
        f(key.as_object_mut().unwrap());
        json!({ "keys": [key] }).to_string()
    };
    let count = |jwks: String| KeySet::from_jwks(&jwks).unwrap().len();
    assert_eq!(count(with(&|_| {})), 1);
    assert_eq!(
        count(with(&|k| {
            k.insert("d".into(), json!("AQAB"));
        })),
        0,
        "private"
    );
    assert_eq!(
        count(with(&|k| {
            k.insert("use".into(), json!("enc"));
        })),
        0,
        "encryption"
    );
    assert_eq!(
        count(with(&|k| {
            k.insert("alg".into(), json!("ES256"));
        })),
        0,
        "alg of another type"
    );
    assert_eq!(
        count(with(&|k| {
            k.insert("alg".into(), json!("PS256"));
        })),
        1
    );
    let short = URL_SAFE_NO_PAD.encode([0xc3u8; 128]);
    assert_eq!(
        count(with(&|k| {
            k.insert("n".into(), json!(short));
        })),
        0,
        "1024-bit RSA"
    );
    let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).to_string();
    assert_eq!(count(oct), 0, "symmetric");
    let odd = json!({"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}, rsa]});
    assert_eq!(
        count(odd.to_string()),
        1,
        "an unusable key beside a good one"
    );
}

#[tokio::test]
async fn a_store_error_is_unavailable_not_a_refusal() {
    struct Down;
    impl ReplayCache for Down {
        async fn first_use(&self, _: &str, _: &str, _: SystemTime) -> Result<bool, StoreError> {
            Err(StoreError::new("down"))
        }
    }
    let f = fixture();
    let assertions = ClientAssertions::new(ISSUER, Down);
    let assertion = f.key.sign("JWT", &claims("u")).unwrap();
    assert!(matches!(
        assertions.verify(&f.client, &assertion, PATH).await,
        Err(AssertionError::Unavailable(_))
    ));
}
