//! Each check of [`DpopVerifier`], and the proofs that fail it: every refusal is asserted by
//! its description, so that a test fails if its check is removed and another refuses the
//! proof instead (or none does). The header and key checks are in `header.rs`, the claim
//! checks in `claims.rs`; the accepted proofs, the replay check and the answers here.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use http::{HeaderMap, HeaderValue, Method};
use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey};
use serde_json::{json, Value};

use super::*;
use crate::store::{ManualClock, MemoryReplayCache, ReplayCache, StoreError};

const HTU: &str = "https://as.example/token";

/// The time of the tests, in seconds since 1970.
const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// A 2048-bit RSA key, PKCS#1 DER in base64, made for these tests with `openssl genpkey
/// -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and `openssl rsa -traditional -outform DER`.
const RSA_2048_PKCS1: &str = concat!(
    "MIIEowIBAAKCAQEA6uYQJknFp27yLYA3gErgqJTVXmCjQ4pw5j+J9NSBVyDoM5PpoXrAZEW5x1sjZyYlnmpok8KX",
    "jEtVmuAy36oZtgOpnsUwDcXcIW4fMb3abYAk/OirA3yFB5aBJUw6Se5OqU27VjURsYQs0f9vGZfgDKsnqNCHkElc",
    "+60o5dE4c/5/k22Rk37Y8F2P5GvCVNzgmNffyC9lHRsdW4HheRu198+uMxQvGIWkR4wsX/wZD752vJMghly9/WVZ",
    "WFOeCq2qNQjTOzmwVxLC8GABh0UOnY5a/wUT4yei6xckTofqqy4E39vZu9XMRPIrADPGsSel6AY8EixmeKrWhGKn",
    "kSCXQwIDAQABAoIBABBYEaeYWnhb793angH/M8KHGJGIh9ObPl/G7AJtBtLZJ07va8IgmGJht5t3a+8xaEyterlN",
    "QN4yH7K3BtMpMsDHYHX7omxS6A4ra2A6pYgY8nnmdn+3mkn83t+JfkTGoBKHphFJgAGqALRb4Y8WUjCPeCL233fa",
    "ou2gDshu1k67tGA2lV+GeLU+eyw7tepUZ+tADComOM0FxclWibsYkiFoqsqP8WwBzazRJlBwCUYwWj3oBICFQq0u",
    "f4t0Os7XQi2o/ODWx8OI87YdwHeRtQ8fpiY3x8yxyE+KsDHBZxCwcwHD+SJTYy01foWcxnD1A2//QIinhnOBfYtJ",
    "4ZKO4gECgYEA/TMtfDi57+xB2Hobci3llQVqjj7OkH8ZoFt+Od2Xih+7+dCUOjMa2ydrFNPIfB9H7IAjhbN6xlfz",
    "O3yA0da/7tOlJYTSGgTMjXiaHUIR/p9UUt7ddA8vZ0W2yovKsDFDDHR9+r91fZcfePgPmKPmUSMrDH1BWRlHdnLC",
    "sJWfeNMCgYEA7X8S24YeRcafvDQIVTPcOLtmnVCnoFY564jBAyMFrKGTeAVgvlSeVyAx+5zpaWPL2WEjHmLzwLdY",
    "QFTf63gUTJ69z0tO2gJKSxP8UKjIXEwcF/bzoyt1tNW2mNZpMkZLxf5Jf2sOQhHwk8QjgNFT8pQzLyNJaxGxdrSw",
    "TzXdYdECgYA9rSW7SKYiR06SyMu+uGdgMX2PQMVYdV1srlzFA7FSOAC2DZTNyH0WPTfcTupbMdN3TI9aliml/u6E",
    "4wMOGl2Oc4ea6Au1ws2A+Iux7NItT+pedWNETh6h7V1lYT/yQ02tzwKQ/epEuXc1JFfIOsRzpzlpRWmRppK9y56Z",
    "HRlHeQKBgAk5AxF1Tt2kzfUwDBbK8cVeOajoReorDwq/f8dQZ9sBV0m048HgZVm6zVYZDNNj5bmmVQfMDe0w8YNm",
    "CGALhLZI/9P597Dtn9b0irrTIxy6c+jWVTXD7Uk9d17ODL3ADxc8Pbxt+trD+ZSzbDGHb3wfFzHAbAx1Xm/eqm4Z",
    "CGTRAoGBAL+NijFlpC1PoBjdEbdaqdXbgrWW/AjTy/e2HpJTKYyBP7RR6X5jw/maqk3aer51RC+4++XyK9HejW9z",
    "U2uttKJPeBR5jcAUiaaoFQax+c5x78wlr+jP07A22+w/qMYqSf8Fg4ik4s/k5AWwPT6PrbaDtxh3QNsAamReB68r",
    "h2VC",
);

/// A key that signs proofs: its `jsonwebtoken` key, its algorithm and its public JWK.
struct Signer {
    encoding: EncodingKey,
    alg: Algorithm,
    jwk: Value,
}

impl Signer {
    fn of(key: &SigningKey) -> Self {
        Self {
            encoding: key.encoding_key().clone(),
            alg: key.algorithm(),
            jwk: serde_json::to_value(key.public_jwk()).unwrap(),
        }
    }

    fn ed25519() -> Self {
        Self::of(&SigningKey::generate())
    }

    fn p256() -> Self {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let sec1 = secret.to_sec1_pem(Default::default()).unwrap();
        Self::of(&SigningKey::from_pkcs8_pem(&sec1).unwrap())
    }

    fn rsa(alg: Algorithm) -> Self {
        let encoding = EncodingKey::from_rsa_der(&STANDARD.decode(RSA_2048_PKCS1).unwrap());
        let jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        Self {
            encoding,
            alg,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    /// The header of a good proof.
    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk})
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_with(&self.encoding, self.alg, header, claims)
    }

    /// A proof of `claims` with a good header.
    fn proof(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    fn thumbprint(&self) -> JwkThumbprint {
        JwkThumbprint::of_jwk(&serde_json::from_value(self.jwk.clone()).unwrap()).unwrap()
    }
}

fn sign_with(key: &EncodingKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The claims of a good proof of `POST` to [`HTU`] at [`NOW`].
fn claims() -> Value {
    json!({"jti": "jti-1", "htm": "POST", "htu": HTU, "iat": NOW})
}

/// `claims()` with `changes` merged in (`null` removes a claim).
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            value => claims
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

fn headers(proofs: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("DPoP abc"));
    for proof in proofs {
        headers.append("dpop", HeaderValue::from_str(proof).unwrap());
    }
    headers
}

/// A verifier whose replay cache runs on the tests' clock.
fn verifier() -> DpopVerifier {
    DpopVerifier::new(MemoryReplayCache::with_clock(1000, ManualClock::at(now())))
}

async fn check(verifier: &DpopVerifier, proof: &str) -> Result<Option<JwkThumbprint>, DpopError> {
    check_with(verifier, proof, &Method::POST, HTU, None).await
}

async fn check_with(
    verifier: &DpopVerifier,
    proof: &str,
    method: &Method,
    htu: &str,
    token: Option<&str>,
) -> Result<Option<JwkThumbprint>, DpopError> {
    verifier
        .check_at(&headers(&[proof]), method, htu, token, now())
        .await
}

/// The description of the refusal of `proof` by a fresh verifier.
async fn refusal(proof: &str) -> String {
    let err = check(&verifier(), proof).await.unwrap_err();
    assert!(!err.is_unavailable());
    err.description().to_owned()
}

mod claims;
mod header;

#[tokio::test]
async fn no_dpop_header_is_no_proof() {
    let verifier = verifier();
    let found = verifier
        .check_at(&headers(&[]), &Method::POST, HTU, Some("tok"), now())
        .await;
    assert_eq!(found, Ok(None));
}

#[tokio::test]
async fn good_proofs_of_each_key_type_give_their_keys_thumbprint() {
    for signer in [
        Signer::ed25519(),
        Signer::p256(),
        Signer::rsa(Algorithm::RS256),
        Signer::rsa(Algorithm::PS256),
    ] {
        let found = check(&verifier(), &signer.proof(&claims())).await;
        assert_eq!(found, Ok(Some(signer.thumbprint())), "{:?}", signer.alg);
    }
}

#[tokio::test]
async fn proofs_made_by_proof_are_accepted_with_their_ath() {
    for key in [
        SigningKey::generate(),
        SigningKey::from_pkcs8_pem(&{
            let secret = p256::SecretKey::from_slice(&[8u8; 32]).unwrap();
            secret.to_sec1_pem(Default::default()).unwrap().to_string()
        })
        .unwrap(),
    ] {
        let verifier = verifier();
        let with_query = format!("{HTU}?state=1#x");
        let made = proof_at(&key, &Method::GET, &with_query, Some("tok"), now()).unwrap();
        let found = check_with(&verifier, &made, &Method::GET, HTU, Some("tok")).await;
        assert_eq!(found, Ok(Some(JwkThumbprint::of_key(&key))));
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(made.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["htu"], HTU, "no query, no fragment");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["ath"], ath_of("tok"));
        let other = proof_at(&key, &Method::GET, HTU, None, now()).unwrap();
        assert_ne!(claims["jti"], jti_of(&other), "a random jti each");
    }
}

fn jti_of(proof: &str) -> Value {
    let payload = URL_SAFE_NO_PAD
        .decode(proof.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&payload).unwrap()["jti"].clone()
}

#[tokio::test]
async fn a_replayed_proof_is_refused_and_only_verified_proofs_are_recorded() {
    let (signer, other) = (Signer::ed25519(), Signer::ed25519());
    let verifier = verifier();
    let wrong_method = signer.proof(&claims_with(json!({"htm": "GET"})));
    assert!(check(&verifier, &wrong_method).await.is_err());
    let proof = signer.proof(&claims());
    assert_eq!(
        check(&verifier, &proof).await,
        Ok(Some(signer.thumbprint())),
        "jti-1 unseen"
    );
    let replay = check(&verifier, &proof).await.unwrap_err();
    assert_eq!(replay.description(), "the DPoP proof was used before");
    assert!(!replay.is_unavailable());
    let same_jti = other.proof(&claims());
    assert!(
        check(&verifier, &same_jti).await.is_ok(),
        "another key's jti-1"
    );
}

/// A replay cache that records its calls and answers `answer`.
#[derive(Clone)]
struct ScriptedCache {
    calls: Arc<Mutex<Vec<(String, String, SystemTime)>>>,
    answer: fn() -> Result<bool, StoreError>,
}

impl ReplayCache for ScriptedCache {
    fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let call = (scope.to_owned(), id.to_owned(), until);
        self.calls.lock().unwrap().push(call);
        std::future::ready((self.answer)())
    }
}

#[tokio::test]
async fn the_replay_cache_is_asked_under_the_keys_thumbprint_until_the_proof_expires() {
    let cache = ScriptedCache {
        calls: Arc::default(),
        answer: || Ok(true),
    };
    let verifier = DpopVerifier::new(cache.clone()).max_age(Duration::from_secs(30));
    let signer = Signer::p256();
    let proof = signer.proof(&claims_with(json!({"iat": NOW - 10})));
    assert!(check(&verifier, &proof).await.is_ok());
    let until = UNIX_EPOCH + Duration::from_secs(NOW - 10 + 30 + 5);
    let calls = cache.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [(
            signer.thumbprint().to_base64url(),
            "jti-1".to_owned(),
            until
        )]
    );
    let refused = signer.proof(&claims_with(json!({"iat": NOW - 31})));
    assert!(check(&verifier, &refused).await.is_err());
    assert_eq!(
        cache.calls.lock().unwrap().len(),
        1,
        "a refused proof is not recorded"
    );
}

#[tokio::test]
async fn a_failing_replay_cache_makes_the_check_unavailable() {
    let cache = ScriptedCache {
        calls: Arc::default(),
        answer: || Err(StoreError::new("down")),
    };
    let verifier = DpopVerifier::new(cache);
    let err = check(&verifier, &Signer::ed25519().proof(&claims()))
        .await
        .unwrap_err();
    assert!(err.is_unavailable());
    for answer in [err.to_token_error(), err.to_resource_error("api", "ES256")] {
        assert_eq!(answer.status(), 503);
        assert_eq!(
            answer.code(),
            crate::error::ErrorCode::TemporarilyUnavailable
        );
        assert_eq!(answer.to_bytes_response().headers()["retry-after"], "1");
    }
}

#[test]
fn errors_render_for_the_token_endpoint_and_the_resource_server() {
    let err = DpopError::invalid("the DPoP proof was used before");
    let token = err.to_token_error();
    assert_eq!(token.status(), 400);
    assert_eq!(
        &token.to_json()[..],
        br#"{"error":"invalid_dpop_proof","error_description":"the DPoP proof was used before"}"#
    );
    let verifier = verifier().algorithms([Algorithm::ES256, Algorithm::EdDSA]);
    let algs = verifier.algorithms_supported().join(" ");
    let resource = err.to_resource_error("api", &algs).to_bytes_response();
    assert_eq!(resource.status(), 401);
    assert_eq!(
        resource.headers()["www-authenticate"],
        "DPoP realm=\"api\", error=\"invalid_dpop_proof\", \
         error_description=\"the DPoP proof was used before\", algs=\"ES256 EdDSA\""
    );
    let quoted = DpopError::invalid("a \"b\" \\c").to_resource_error("r\"", "");
    assert_eq!(
        quoted.to_bytes_response().headers()["www-authenticate"],
        "DPoP realm=\"r\", error=\"invalid_dpop_proof\", error_description=\"a b c\""
    );
}

#[test]
fn only_asymmetric_algorithms_are_kept_once_each() {
    assert_eq!(
        verifier().algorithms_supported(),
        ["ES256", "ES384", "EdDSA", "PS256", "RS256"]
    );
    let chosen = verifier().algorithms([
        Algorithm::HS256,
        Algorithm::EdDSA,
        Algorithm::HS384,
        Algorithm::EdDSA,
        Algorithm::PS512,
    ]);
    assert_eq!(chosen.algorithms_supported(), ["EdDSA", "PS512"]);
    let debug = format!("{chosen:?}");
    assert!(
        debug.contains("EdDSA") && debug.contains("max_age"),
        "{debug}"
    );
}
