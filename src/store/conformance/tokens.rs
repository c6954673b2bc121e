//! What is active: issued tokens, unknown and expired ones, hints; what a token is bound to.

use super::*;

pub(super) async fn issued_tokens_are_active<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, owner, grant) = (n.id("client"), n.id("owner"), GrantId::random());
    issue(&store, n.token("a"), ACCESS, &client, grant, Some(&owner)).await;
    let record = store
        .inspect(&n.token("a"))
        .await
        .unwrap()
        .expect("an issued token is active");
    assert_eq!(
        record.kind,
        TokenKind::AccessToken,
        "inspect keeps the kind"
    );
    assert_eq!(record.client_id, client, "inspect keeps the client");
    assert_eq!(record.grant, grant, "inspect keeps the grant");
    assert_eq!(
        record.owner.as_ref(),
        Some(&owner),
        "inspect keeps the owner"
    );
    let drift = record
        .expires_at
        .duration_since(later() - Duration::from_secs(5))
        .expect("inspect keeps the expiry");
    assert!(
        drift < Duration::from_secs(10),
        "inspect keeps the expiry to the second"
    );

    // The issue time, to the second.
    let issued_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let record = TokenRecord::new(TokenKind::RefreshToken, client.clone(), grant, later())
        .with_issued_at(issued_at);
    store.issue(n.token("r"), record).await.unwrap();
    let record = store.inspect(&n.token("r")).await.unwrap().unwrap();
    assert_eq!(record.issued_at, issued_at, "inspect keeps the issue time");
}

pub(super) async fn bound_tokens_keep_their_confirmation<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, owner) = (n.id("client"), n.id("owner"));
    let grant = GrantId::random();
    let mut jkt = [0u8; 32];
    jkt.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let x5t = [0xa5; 32];
    for (name, kind, confirmation) in [
        ("dpop", ACCESS, Confirmation::Jkt(jkt)),
        ("mtls", ACCESS, Confirmation::X5tS256(x5t)),
        ("dpop-refresh", REFRESH, Confirmation::Jkt(jkt)),
    ] {
        let record = TokenRecord::new(kind, client.clone(), grant, later())
            .with_owner(owner.clone())
            .with_confirmation(confirmation);
        store.issue(n.token(name), record).await.unwrap();
        let held = store
            .inspect(&n.token(name))
            .await
            .unwrap()
            .expect("a bound token is active");
        assert_eq!(
            held.confirmation,
            Some(confirmation),
            "inspect keeps a token's {} binding",
            confirmation.member()
        );
        assert_eq!(
            (held.kind, held.grant, held.owner.as_ref()),
            (kind, grant, Some(&owner)),
            "a binding changes nothing else of the record"
        );
    }
    issue(&store, n.token("bearer"), ACCESS, &client, grant, None).await;
    let held = store.inspect(&n.token("bearer")).await.unwrap().unwrap();
    assert_eq!(
        held.confirmation, None,
        "a bearer token is bound to nothing"
    );

    // The same hash registered again without a binding leaves none behind.
    let record = TokenRecord::new(ACCESS, client.clone(), grant, later());
    store.issue(n.token("mtls"), record).await.unwrap();
    let held = store.inspect(&n.token("mtls")).await.unwrap().unwrap();
    assert_eq!(held.confirmation, None, "a new record replaces the binding");

    // Revoked with its grant, a bound token is as inactive as any.
    let outcome = store
        .revoke(&n.token("dpop-refresh"), RevocationRequest::new(&client))
        .await
        .unwrap();
    assert_eq!(outcome, revoked(REFRESH, RevocationScope::Grant));
    assert!(
        !active(&store, &n.token("dpop")).await,
        "a bound token goes with its grant"
    );
}

pub(super) async fn unknown_and_expired_tokens_are_not_active<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    assert!(
        !active(&store, &n.token("unknown")).await,
        "unknown: inactive"
    );
    let why = "revoking an unknown token does nothing";
    assert_revoke(
        &store,
        &n,
        "unknown",
        &client,
        RevocationOutcome::NotActive,
        why,
    )
    .await;
    store
        .issue(
            n.token("old"),
            TokenRecord::new(
                TokenKind::AccessToken,
                client.clone(),
                GrantId::random(),
                SystemTime::now() - Duration::from_secs(2),
            ),
        )
        .await
        .unwrap();
    assert!(!active(&store, &n.token("old")).await, "expired: inactive");
    let why = "revoking an expired token does nothing";
    assert_revoke(
        &store,
        &n,
        "old",
        &client,
        RevocationOutcome::NotActive,
        why,
    )
    .await;
}

pub(super) async fn hint_never_limits_the_search<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(&store, n.token("r"), REFRESH, &client, grant, None).await;
    let mut request = RevocationRequest::new(&client);
    request.hint = Some(TokenKind::AccessToken);
    assert!(
        matches!(
            store.revoke(&n.token("r"), request).await.unwrap(),
            RevocationOutcome::Revoked {
                kind: TokenKind::RefreshToken,
                ..
            }
        ),
        "a wrong hint still finds the token"
    );
}
