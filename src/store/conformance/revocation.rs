//! Revoking one token: what it covers, whose it is, and its race with registration.

use super::*;

pub(super) async fn access_token_revokes_alone<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(&store, n.token("r"), REFRESH, &client, grant, None).await;
    issue(&store, n.token("a1"), ACCESS, &client, grant, None).await;
    issue(&store, n.token("a2"), ACCESS, &client, grant, None).await;
    let outcome = revoked(ACCESS, RevocationScope::Token);
    let why = "an access token is revoked alone by default";
    assert_revoke(&store, &n, "a1", &client, outcome, why).await;
    assert_active(&store, &n, "a1", false, "revoked: inactive").await;
    assert_active(&store, &n, "a2", true, "sibling stays active").await;
    assert_active(&store, &n, "r", true, "refresh stays active").await;
    let why = "revoking twice does nothing the second time";
    assert_revoke(&store, &n, "a1", &client, RevocationOutcome::NotActive, why).await;
}

pub(super) async fn refresh_token_revokes_its_grant<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    let (grant, other) = (GrantId::random(), GrantId::random());
    issue(&store, n.token("r"), REFRESH, &client, grant, None).await;
    for i in 0..5 {
        let t = n.token(&format!("a{i}"));
        issue(&store, t, ACCESS, &client, grant, None).await;
    }
    issue(&store, n.token("other"), ACCESS, &client, other, None).await;
    let outcome = revoked(REFRESH, RevocationScope::Grant);
    let why = "a refresh token revokes its grant";
    assert_revoke(&store, &n, "r", &client, outcome, why).await;
    assert!(!active(&store, &n.token("r")).await, "refresh: inactive");
    for i in 0..5 {
        assert!(
            !active(&store, &n.token(&format!("a{i}"))).await,
            "every access token of the grant dies with it"
        );
    }
    assert!(
        active(&store, &n.token("other")).await,
        "another grant is untouched"
    );
}

pub(super) async fn access_token_scope_grant_revokes_grant<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(&store, n.token("r"), REFRESH, &client, grant, None).await;
    issue(&store, n.token("a"), ACCESS, &client, grant, None).await;
    let mut request = RevocationRequest::new(&client);
    request.access_token_scope = RevocationScope::Grant;
    let outcome = store.revoke(&n.token("a"), request).await.unwrap();
    assert_eq!(outcome, revoked(ACCESS, RevocationScope::Grant));
    assert!(
        !active(&store, &n.token("r")).await,
        "with scope Grant, an access token takes its refresh token along"
    );
}

pub(super) async fn another_clients_token_is_never_revoked<S: TokenStore>(store: S) {
    let n = Names::new();
    let (owner_client, other_client) = (n.id("owner-client"), n.id("other-client"));
    let grant = GrantId::random();
    issue(&store, n.token("r"), REFRESH, &owner_client, grant, None).await;
    issue(&store, n.token("a"), ACCESS, &owner_client, grant, None).await;
    for token in ["r", "a"] {
        let outcome = RevocationOutcome::IssuedToAnotherClient;
        let why = "another client's token is reported, not revoked";
        assert_revoke(&store, &n, token, &other_client, outcome, why).await;
        assert!(
            active(&store, &n.token(token)).await,
            "another client's token stays active"
        );
    }
}

pub(super) async fn revoked_grant_refuses_new_tokens<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(&store, n.token("r"), REFRESH, &client, grant, None).await;
    store.revoke_grant(grant).await.unwrap();
    assert!(!active(&store, &n.token("r")).await, "revoke_grant revokes");
    let why = "a revoked grant takes no new token";
    assert_refused(&store, n.token("late"), &client, grant, why).await;
    assert!(!active(&store, &n.token("late")).await);

    let never_seen = GrantId::random();
    store.revoke_grant(never_seen).await.unwrap();
    let why = "a grant revoked before its first token takes no token";
    assert_refused(&store, n.token("later"), &client, never_seen, why).await;
}

pub(super) async fn revocation_races_registration<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    for i in 0..50 {
        let grant = GrantId::random();
        issue(
            &store,
            n.token(&format!("r{i}")),
            REFRESH,
            &client,
            grant,
            None,
        )
        .await;
        let late = n.token(&format!("a{i}"));
        let issuing = store.issue(
            late,
            TokenRecord::new(TokenKind::AccessToken, client.clone(), grant, later()),
        );
        let revoking = store.revoke_grant(grant);
        let (issued, revoked) = futures_util::future::join(issuing, revoking).await;
        revoked.unwrap();
        match issued {
            Ok(()) | Err(IssueError::GrantRevoked) => {}
            Err(e) => panic!("issue failed: {e}"),
        }
        assert!(
            !active(&store, &late).await,
            "no live token may remain in a revoked grant"
        );
    }
}
