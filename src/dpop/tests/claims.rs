//! The checks of the claims: `htm`, `htu`, `iat`, `jti` and `ath`.

use super::*;

#[tokio::test]
async fn another_method_is_refused() {
    let signer = Signer::ed25519();
    for htm in [json!("GET"), json!("post"), json!(null)] {
        let proof = signer.proof(&claims_with(json!({"htm": htm})));
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's htm is not the request's method"
        );
    }
}

#[tokio::test]
async fn another_uri_is_refused_and_only_its_query_may_differ() {
    let signer = Signer::ed25519();
    for htu in [
        json!("https://as.example/other"),
        json!("https://evil.example/token"),
        json!(null),
    ] {
        let proof = signer.proof(&claims_with(json!({"htu": htu})));
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's htu is not the request's URI"
        );
    }
    let query = signer.proof(&claims_with(json!({"htu": format!("{HTU}?a=1#f")})));
    assert!(check(&verifier(), &query).await.is_ok());
    let proof = signer.proof(&claims());
    let request_htu = "https://AS.example:443/token?x";
    let found = check_with(&verifier(), &proof, &Method::POST, request_htu, None).await;
    assert!(found.is_ok());
}

#[tokio::test]
async fn iat_must_be_within_max_age_and_leeway() {
    let signer = Signer::p256();
    let at = |iat: Value| signer.proof(&claims_with(json!({"iat": iat})));
    assert_eq!(
        refusal(&at(json!(NOW - 61))).await,
        "the DPoP proof is more than 60 s old (iat)"
    );
    assert_eq!(
        refusal(&at(json!(NOW + 6))).await,
        "the DPoP proof is issued more than 5 s ahead of this server's clock (iat)"
    );
    for iat in [json!(NOW - 60), json!(NOW + 5), json!(NOW as f64 + 0.5)] {
        assert!(check(&verifier(), &at(iat.clone())).await.is_ok(), "{iat}");
    }
    for iat in [json!(null), json!(NOW.to_string()), json!(-1)] {
        assert_eq!(refusal(&at(iat)).await, "the DPoP proof has no iat");
    }
    let strict = verifier()
        .max_age(Duration::from_secs(10))
        .leeway(Duration::ZERO);
    for (iat, description) in [
        (NOW - 11, "the DPoP proof is more than 10 s old (iat)"),
        (
            NOW + 1,
            "the DPoP proof is issued more than 0 s ahead of this server's clock (iat)",
        ),
    ] {
        let found = strict.check_at(
            &headers(&[&at(json!(iat))]),
            &Method::POST,
            HTU,
            None,
            now(),
        );
        assert_eq!(found.await.unwrap_err().description(), description);
    }
}

#[tokio::test]
async fn jti_must_be_a_string_of_1_to_256_characters() {
    let signer = Signer::ed25519();
    for jti in [json!(null), json!(""), json!(7)] {
        let proof = signer.proof(&claims_with(json!({"jti": jti})));
        assert_eq!(refusal(&proof).await, "the DPoP proof has no jti");
    }
    let long = signer.proof(&claims_with(json!({"jti": "é".repeat(257)})));
    assert_eq!(
        refusal(&long).await,
        "the DPoP proof's jti is longer than 256 characters"
    );
    let longest = signer.proof(&claims_with(json!({"jti": "é".repeat(256)})));
    assert!(check(&verifier(), &longest).await.is_ok());
}

#[tokio::test]
async fn ath_must_be_the_access_tokens_hash() {
    let signer = Signer::ed25519();
    let proof = signer.proof(&claims_with(json!({"ath": ath_of("other")})));
    let found = check_with(&verifier(), &proof, &Method::POST, HTU, Some("tok")).await;
    assert_eq!(
        found.unwrap_err().description(),
        "the DPoP proof's ath is not the hash of the request's access token"
    );
    let proof = signer.proof(&claims());
    let found = check_with(&verifier(), &proof, &Method::POST, HTU, Some("tok")).await;
    assert_eq!(
        found.unwrap_err().description(),
        "the DPoP proof has no ath for the request's access token"
    );
    let proof = signer.proof(&claims_with(json!({"ath": ath_of("tok")})));
    assert!(
        check_with(&verifier(), &proof, &Method::POST, HTU, Some("tok"))
            .await
            .is_ok()
    );
    let proof = signer.proof(&claims_with(json!({"ath": ath_of("tok"), "jti": "jti-2"})));
    assert!(
        check(&verifier(), &proof).await.is_ok(),
        "an ath without a token is fine"
    );
}
