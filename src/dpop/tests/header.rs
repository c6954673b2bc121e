//! The checks of the `DPoP` header, the JOSE header, the key and the signature.

use super::*;

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let signer = Signer::ed25519();
    let one = signer.proof(&claims());
    let two = signer.proof(&claims_with(json!({"jti": "jti-2"})));
    let found = verifier()
        .check_at(&headers(&[&one, &two]), &Method::POST, HTU, None, now())
        .await;
    assert_eq!(
        found.unwrap_err().description(),
        "more than one DPoP header"
    );
}

#[tokio::test]
async fn a_proof_of_more_than_8_kib_is_refused() {
    let signer = Signer::ed25519();
    let long = signer.proof(&claims_with(json!({"pad": "x".repeat(8 * 1024)})));
    assert_eq!(refusal(&long).await, "the DPoP proof is longer than 8 KiB");
    let fits = signer.proof(&claims_with(json!({"pad": "x".repeat(5 * 1024)})));
    assert!(check(&verifier(), &fits).await.is_ok());
}

#[tokio::test]
async fn what_is_not_a_compact_jws_is_refused() {
    let good = Signer::ed25519().proof(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        "x".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}+", parts[0], parts[1], parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
    ] {
        assert_eq!(
            refusal(&bad).await,
            "the DPoP proof is not a compact JWS",
            "{bad}"
        );
    }
    let mut obs_text = HeaderMap::new();
    obs_text.insert("dpop", HeaderValue::from_bytes(b"\xff.a.b").unwrap());
    let found = verifier()
        .check_at(&obs_text, &Method::POST, HTU, None, now())
        .await;
    assert_eq!(
        found.unwrap_err().description(),
        "the DPoP proof is not a compact JWS"
    );
    let not_json = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode("[1]"),
        parts[1],
        parts[2]
    );
    assert_eq!(
        refusal(&not_json).await,
        "the DPoP proof's header is not a JSON object"
    );
}

#[tokio::test]
async fn a_typ_other_than_dpop_jwt_is_refused() {
    let signer = Signer::p256();
    for typ in [
        json!("JWT"),
        json!("DPOP+JWT"),
        json!("application/dpop+jwt"),
        json!(null),
    ] {
        let mut header = signer.header();
        header["typ"] = typ.clone();
        let proof = signer.sign(&header, &claims());
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's typ is not dpop+jwt",
            "{typ}"
        );
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let signer = Signer::ed25519();
    let mut header = signer.header();
    header["alg"] = json!("none");
    let proof = format!("{}.{}.", b64(&header), b64(&claims()));
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof's alg is not accepted here"
    );
}

#[tokio::test]
async fn hs256_is_refused_even_when_asked_for() {
    let signer = Signer::p256();
    let x = URL_SAFE_NO_PAD
        .decode(signer.jwk["x"].as_str().unwrap())
        .unwrap();
    let mut header = signer.header();
    header["alg"] = json!("HS256");
    let proof = sign_with(
        &EncodingKey::from_secret(&x).unwrap(),
        Algorithm::HS256,
        &header,
        &claims(),
    );
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof's alg is not accepted here"
    );
    let asked = verifier().algorithms([Algorithm::HS256, Algorithm::ES256, Algorithm::HS512]);
    assert_eq!(asked.algorithms_supported(), ["ES256"]);
    let found = asked
        .check_at(&headers(&[&proof]), &Method::POST, HTU, None, now())
        .await;
    assert_eq!(
        found.unwrap_err().description(),
        "the DPoP proof's alg is not accepted here"
    );
}

#[tokio::test]
async fn an_algorithm_left_out_is_refused() {
    let signer = Signer::ed25519();
    let only_es256 = verifier().algorithms([Algorithm::ES256]);
    let found = only_es256
        .check_at(
            &headers(&[&signer.proof(&claims())]),
            &Method::POST,
            HTU,
            None,
            now(),
        )
        .await;
    assert_eq!(
        found.unwrap_err().description(),
        "the DPoP proof's alg is not accepted here"
    );
}

#[tokio::test]
async fn a_crit_header_is_refused() {
    let signer = Signer::ed25519();
    let mut header = signer.header();
    header["crit"] = json!(["exp"]);
    let proof = signer.sign(&header, &claims());
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof names critical header members (crit); none is understood"
    );
}

#[tokio::test]
async fn a_jwk_with_private_or_symmetric_members_is_refused() {
    for (signer, member) in [
        (Signer::ed25519(), "d"),
        (Signer::p256(), "d"),
        (Signer::rsa(Algorithm::RS256), "p"),
        (Signer::rsa(Algorithm::RS256), "q"),
    ] {
        let mut header = signer.header();
        header["jwk"][member] = json!("AQAB");
        let proof = signer.sign(&header, &claims());
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's jwk holds a private or symmetric key",
            "{member}"
        );
    }
    let signer = Signer::ed25519();
    for jwk in [
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "oct"}),
    ] {
        let mut header = signer.header();
        header["jwk"] = jwk;
        let proof = signer.sign(&header, &claims());
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's jwk holds a private or symmetric key"
        );
    }
}

#[tokio::test]
async fn a_jwk_of_another_type_than_alg_is_refused() {
    let (ed, ec, rsa) = (
        Signer::ed25519(),
        Signer::p256(),
        Signer::rsa(Algorithm::RS256),
    );
    for (signer, jwk) in [
        (&ec, &ed.jwk),
        (&ed, &ec.jwk),
        (&ec, &rsa.jwk),
        (&rsa, &ec.jwk),
    ] {
        let mut header = signer.header();
        header["jwk"] = jwk.clone();
        let proof = signer.sign(&header, &claims());
        assert_eq!(
            refusal(&proof).await,
            "the DPoP proof's jwk is not a key of its alg"
        );
    }
    // A P-256 key under ES384 (the signature is never looked at).
    let mut header = ec.header();
    header["alg"] = json!("ES384");
    let proof = format!("{}.{}.AAAA", b64(&header), b64(&claims()));
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof's jwk is not a key of its alg"
    );
}

#[tokio::test]
async fn an_rsa_key_of_fewer_than_2048_bits_is_refused() {
    let signer = Signer::rsa(Algorithm::RS256);
    let mut header = signer.header();
    header["jwk"]["n"] = json!(URL_SAFE_NO_PAD.encode([0xc3u8; 255]));
    let proof = signer.sign(&header, &claims());
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof's RSA key is not of 2048 to 8192 bits"
    );
    // The same modulus written with a leading zero octet.
    let n = URL_SAFE_NO_PAD
        .decode(signer.jwk["n"].as_str().unwrap())
        .unwrap();
    header["jwk"]["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()));
    let proof = signer.sign(&header, &claims());
    assert_eq!(
        refusal(&proof).await,
        "the DPoP proof's RSA key is not of 2048 to 8192 bits"
    );
}

#[tokio::test]
async fn a_proof_without_jwk_is_refused() {
    let key = SigningKey::generate();
    let proof = key.sign("dpop+jwt", &claims()).unwrap();
    assert_eq!(refusal(&proof).await, "the DPoP proof has no jwk header");
}

#[tokio::test]
async fn a_signature_of_another_proof_is_refused() {
    for signer in [
        Signer::ed25519(),
        Signer::p256(),
        Signer::rsa(Algorithm::PS256),
    ] {
        let one = signer.proof(&claims());
        let two = signer.proof(&claims_with(json!({"jti": "jti-2"})));
        let (message, _) = one.rsplit_once('.').unwrap();
        let (_, signature) = two.rsplit_once('.').unwrap();
        let forged = format!("{message}.{signature}");
        assert_eq!(
            refusal(&forged).await,
            "the DPoP proof's signature is not its jwk's"
        );
    }
}
