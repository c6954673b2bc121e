//! Revoking many: a client's grants from an owner, and cut-offs by subject and by client.

use super::*;

pub(super) async fn owner_revocation_is_exactly_scoped<S: TokenStore>(store: S) {
    let n = Names::new();
    let (alice, bob) = (n.id("alice"), n.id("bob"));
    let (app, other_app) = (n.id("app"), n.id("other-app"));
    let grants: Vec<(String, Arc<str>, Arc<str>, GrantId)> = vec![
        (
            "alice-app-1".into(),
            alice.clone(),
            app.clone(),
            GrantId::random(),
        ),
        (
            "alice-app-2".into(),
            alice.clone(),
            app.clone(),
            GrantId::random(),
        ),
        (
            "alice-other".into(),
            alice.clone(),
            other_app.clone(),
            GrantId::random(),
        ),
        (
            "bob-app".into(),
            bob.clone(),
            app.clone(),
            GrantId::random(),
        ),
    ];
    for (name, owner, client, grant) in &grants {
        issue(
            &store,
            n.token(&format!("{name}-r")),
            REFRESH,
            client,
            *grant,
            Some(owner),
        )
        .await;
        issue(
            &store,
            n.token(&format!("{name}-a")),
            ACCESS,
            client,
            *grant,
            Some(owner),
        )
        .await;
    }
    let listed = store.clients_of_owner(&alice).await.unwrap();
    let listed: Vec<(&str, usize)> = listed.iter().map(|g| (&*g.client_id, g.grants)).collect();
    assert_eq!(
        listed,
        vec![(&*app, 2), (&*other_app, 1)],
        "clients_of_owner lists each client once, sorted, with its grant count"
    );

    let revoked = store
        .revoke_client_for_owner(&alice, &app, Initiator::System)
        .await
        .unwrap();
    assert_eq!(revoked, 2, "both of alice's grants to app are revoked");
    for suffix in ["r", "a"] {
        assert!(!active(&store, &n.token(&format!("alice-app-1-{suffix}"))).await);
        assert!(!active(&store, &n.token(&format!("alice-app-2-{suffix}"))).await);
        assert!(
            active(&store, &n.token(&format!("alice-other-{suffix}"))).await,
            "the same owner's other clients are untouched"
        );
        assert!(
            active(&store, &n.token(&format!("bob-app-{suffix}"))).await,
            "the same client's other owners are untouched"
        );
    }
    let listed = store.clients_of_owner(&alice).await.unwrap();
    assert_eq!(listed.len(), 1, "a client without grants is not listed");
    assert_eq!(
        store
            .revoke_client_for_owner(&alice, &app, Initiator::System)
            .await
            .unwrap(),
        0,
        "revoking again is a no-op"
    );
    assert_eq!(
        store
            .revoke_client_for_owner(&n.id("nobody"), &app, Initiator::System)
            .await
            .unwrap(),
        0,
        "an unknown owner holds nothing"
    );
    assert!(store
        .clients_of_owner(&n.id("nobody"))
        .await
        .unwrap()
        .is_empty());
}

pub(super) async fn subject_revocation_is_one_cut_off<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice, bob) = (n.id("app"), n.id("other"), n.id("alice"), n.id("bob"));
    refresh_grants(
        &store,
        &n,
        &[
            ("a1", &app, &alice),
            ("a2", &other, &alice),
            ("b", &app, &bob),
        ],
    )
    .await;
    let revoked = store
        .revoke_subject(&alice, Initiator::System)
        .await
        .unwrap();
    assert_eq!(revoked, 2, "both of alice's grants were active");
    assert_active(&store, &n, "a1", false, "alice's grant to app is revoked").await;
    assert_active(&store, &n, "a2", false, "alice's grant to other is revoked").await;
    assert_active(&store, &n, "b", true, "bob's grant is untouched").await;
    assert!(
        store.clients_of_owner(&alice).await.unwrap().is_empty(),
        "no grant is listed"
    );
    // A grant made after the cut-off lives, however soon after.
    issue(
        &store,
        n.token("a3"),
        ACCESS,
        &app,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    assert!(
        active(&store, &n.token("a3")).await,
        "a grant made after the cut-off lives"
    );
    assert_eq!(
        store
            .revoke_subject(&alice, Initiator::System)
            .await
            .unwrap(),
        1,
        "a second revocation counts only what the first left"
    );
    assert_eq!(
        store
            .revoke_subject(&n.id("nobody"), Initiator::System)
            .await
            .unwrap(),
        0
    );
}

pub(super) async fn client_revocation_is_one_cut_off<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice) = (n.id("app"), n.id("other"), n.id("alice"));
    let own = GrantId::random();
    issue(&store, n.token("cc"), ACCESS, &app, own, None).await;
    issue(
        &store,
        n.token("alice"),
        REFRESH,
        &app,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    issue(
        &store,
        n.token("other"),
        ACCESS,
        &other,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    assert_eq!(
        store.revoke_client(&app, Initiator::System).await.unwrap(),
        2
    );
    assert_active(&store, &n, "cc", false, "the client's own grant is revoked").await;
    assert_active(
        &store,
        &n,
        "alice",
        false,
        "alice's grant to the client is revoked",
    )
    .await;
    assert_active(&store, &n, "other", true, "other clients are untouched").await;
    let why = "no token joins a grant made before the cut-off";
    assert_refused(&store, n.token("cc2"), &app, own, why).await;
    issue(
        &store,
        n.token("new"),
        ACCESS,
        &app,
        GrantId::random(),
        None,
    )
    .await;
    assert!(
        active(&store, &n.token("new")).await,
        "a grant made after the cut-off lives"
    );
}

pub(super) async fn bulk_revocations_count_what_the_other_scope_left<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice, bob) = (n.id("app"), n.id("other"), n.id("alice"), n.id("bob"));
    refresh_grants(
        &store,
        &n,
        &[
            ("alice-app", &app, &alice),
            ("alice-other", &other, &alice),
            ("bob-app", &app, &bob),
            ("bob-other", &other, &bob),
        ],
    )
    .await;
    assert_eq!(
        store.revoke_client(&app, Initiator::System).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .revoke_subject(&alice, Initiator::System)
            .await
            .unwrap(),
        1,
        "a subject's revocation does not count the grants a client's cut-off revoked"
    );
    assert_eq!(
        store
            .revoke_client(&other, Initiator::System)
            .await
            .unwrap(),
        1,
        "a client's revocation does not count the grants a subject's cut-off revoked"
    );
    assert_eq!(
        store.revoke_subject(&bob, Initiator::System).await.unwrap(),
        0,
        "both of bob's grants were revoked with their clients"
    );
}
