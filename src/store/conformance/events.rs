//! Every revocation is one event, naming what it revoked.

use super::*;

pub(super) async fn every_revocation_is_an_event<S: TokenStore>(store: S) {
    let n = Names::new();
    let mut events = store.events().subscribe();
    let (app, alice) = (n.id("app"), n.id("alice"));
    let grant = GrantId::random();
    issue(&store, n.token("r"), REFRESH, &app, grant, Some(&alice)).await;
    issue(&store, n.token("a"), ACCESS, &app, grant, Some(&alice)).await;

    let mut request = RevocationRequest::new(&app);
    request.jti = Some("jti-1");
    store.revoke(&n.token("a"), request).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        event.revoked,
        Revoked::Token {
            token: n.token("a"),
            kind: TokenKind::AccessToken,
            grant
        },
        "an access token revoked alone"
    );
    assert_eq!(event.client_id.as_ref(), Some(&app));
    assert_eq!(event.subject.as_ref(), Some(&alice));
    assert_eq!(event.jti.as_deref(), Some("jti-1"));
    let expires_at = event
        .expires_at
        .expect("a token's event says when it would expire");
    let drift = expires_at
        .duration_since(later() - Duration::from_secs(5))
        .expect("the token's own expiry");
    assert!(drift <= Duration::from_secs(6), "the token's own expiry");
    assert_eq!(event.initiator, Initiator::Client(app.clone()));

    // Nothing changes, nothing is emitted: the next event is the grant's.
    store
        .revoke(&n.token("a"), RevocationRequest::new(&app))
        .await
        .unwrap();
    store
        .revoke(&n.token("r"), RevocationRequest::new(&n.id("thief")))
        .await
        .unwrap();
    store
        .revoke(&n.token("r"), RevocationRequest::new(&app))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        event.revoked,
        Revoked::Grant { grant },
        "a refresh token revokes its grant"
    );

    let (g1, g2) = (GrantId::random(), GrantId::random());
    issue(&store, n.token("x"), REFRESH, &app, g1, Some(&alice)).await;
    issue(&store, n.token("y"), REFRESH, &app, g2, Some(&alice)).await;
    store
        .revoke_client_for_owner(&alice, &app, Initiator::Owner(alice.clone()))
        .await
        .unwrap();
    let mut grants = [next_event(&mut events).await, next_event(&mut events).await];
    grants.sort_by_key(|e| e.revoked.grant());
    let mut expected = vec![g1, g2];
    expected.sort();
    assert_eq!(
        grants
            .iter()
            .map(|e| e.revoked.grant().unwrap())
            .collect::<Vec<_>>(),
        expected
    );
    assert!(grants
        .iter()
        .all(|e| e.initiator == Initiator::Owner(alice.clone())));

    let g3 = GrantId::random();
    issue(&store, n.token("z"), ACCESS, &app, g3, None).await;
    store.revoke_grant(g3).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.initiator.clone()),
        (Revoked::Grant { grant: g3 }, Initiator::System)
    );

    // A bulk revocation that revokes nothing live emits nothing.
    let admin = || Initiator::Admin("admin".into());
    store.revoke_subject(&alice, admin()).await.unwrap();
    store
        .revoke_subject(&n.id("nobody"), admin())
        .await
        .unwrap();
    issue(
        &store,
        n.token("s"),
        ACCESS,
        &app,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    store.revoke_subject(&alice, admin()).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.subject.as_ref()),
        (Revoked::Subject, Some(&alice))
    );
    issue(&store, n.token("c"), ACCESS, &app, GrantId::random(), None).await;
    store.revoke_client(&app, admin()).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.client_id.as_ref()),
        (Revoked::Client, Some(&app))
    );
}
