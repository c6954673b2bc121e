//! The conformance suite every [`TokenStore`] must pass.
//!
//! Call [`run`] from a test with a function that makes a store; the suite panics with a
//! message naming the rule that failed. Every name it uses (tokens, clients, owners) is
//! prefixed with a fresh random value, so that it may run against a shared server.
//!
//! ```
//! use tower_oauth_revoke::store::{conformance, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! conformance::run(MemoryStore::new).await;
//! # }
//! ```

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::events::{Initiator, RevocationEvent, Revoked, Subscription};

use super::{
    GrantId, IssueError, RevocationOutcome, RevocationRequest, RevocationScope, TokenHash,
    TokenKind, TokenRecord, TokenStore,
};

struct Names(u64);

impl Names {
    fn new() -> Self {
        Self(rand::random())
    }
    fn token(&self, name: &str) -> TokenHash {
        TokenHash::of(&format!("{:x}-{name}", self.0))
    }
    fn id(&self, name: &str) -> Arc<str> {
        format!("{:x}-{name}", self.0).into()
    }
}

fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

async fn issue<S: TokenStore>(
    store: &S,
    token: TokenHash,
    kind: TokenKind,
    client: &Arc<str>,
    grant: GrantId,
    owner: Option<&Arc<str>>,
) {
    let mut record = TokenRecord::new(kind, client.clone(), grant, later());
    record.owner = owner.cloned();
    store
        .issue(token, record)
        .await
        .expect("issuing a token into a live grant must succeed");
}

async fn active<S: TokenStore>(store: &S, token: &TokenHash) -> bool {
    store
        .inspect(token)
        .await
        .expect("inspect must succeed")
        .is_some()
}

/// Runs every check of the suite; `make` is called once per check for a fresh store.
pub async fn run<S, F>(make: F)
where
    S: TokenStore,
    F: Fn() -> S,
{
    issued_tokens_are_active(make()).await;
    unknown_and_expired_tokens_are_not_active(make()).await;
    access_token_revokes_alone(make()).await;
    refresh_token_revokes_its_grant(make()).await;
    access_token_scope_grant_revokes_grant(make()).await;
    another_clients_token_is_never_revoked(make()).await;
    hint_never_limits_the_search(make()).await;
    revoked_grant_refuses_new_tokens(make()).await;
    owner_revocation_is_exactly_scoped(make()).await;
    revocation_races_registration(make()).await;
    subject_revocation_is_one_cut_off(make()).await;
    client_revocation_is_one_cut_off(make()).await;
    bulk_revocations_count_what_the_other_scope_left(make()).await;
    every_revocation_is_an_event(make()).await;
}

/// The next event of `events` within 5 s (a Redis store relays them asynchronously).
async fn next_event(events: &mut Subscription) -> Arc<RevocationEvent> {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the store lives")
        .expect("no event was missed")
}

async fn subject_revocation_is_one_cut_off<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice, bob) = (n.id("app"), n.id("other"), n.id("alice"), n.id("bob"));
    for (name, client, owner) in [
        ("a1", &app, &alice),
        ("a2", &other, &alice),
        ("b", &app, &bob),
    ] {
        issue(
            &store,
            n.token(name),
            TokenKind::RefreshToken,
            client,
            GrantId::random(),
            Some(owner),
        )
        .await;
    }
    let revoked = store
        .revoke_subject(&alice, Initiator::System)
        .await
        .unwrap();
    assert_eq!(revoked, 2, "both of alice's grants were active");
    assert!(
        !active(&store, &n.token("a1")).await,
        "alice's grant to app is revoked"
    );
    assert!(
        !active(&store, &n.token("a2")).await,
        "alice's grant to other is revoked"
    );
    assert!(
        active(&store, &n.token("b")).await,
        "bob's grant is untouched"
    );
    assert!(
        store.clients_of_owner(&alice).await.unwrap().is_empty(),
        "no grant is listed"
    );
    // A grant made after the cut-off lives, however soon after.
    issue(
        &store,
        n.token("a3"),
        TokenKind::AccessToken,
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

async fn client_revocation_is_one_cut_off<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice) = (n.id("app"), n.id("other"), n.id("alice"));
    let own = GrantId::random();
    issue(
        &store,
        n.token("cc"),
        TokenKind::AccessToken,
        &app,
        own,
        None,
    )
    .await;
    issue(
        &store,
        n.token("alice"),
        TokenKind::RefreshToken,
        &app,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    issue(
        &store,
        n.token("other"),
        TokenKind::AccessToken,
        &other,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    assert_eq!(
        store.revoke_client(&app, Initiator::System).await.unwrap(),
        2
    );
    assert!(
        !active(&store, &n.token("cc")).await,
        "the client's own grant is revoked"
    );
    assert!(
        !active(&store, &n.token("alice")).await,
        "alice's grant to the client is revoked"
    );
    assert!(
        active(&store, &n.token("other")).await,
        "other clients are untouched"
    );
    let record = TokenRecord::new(TokenKind::AccessToken, app.clone(), own, later());
    assert!(
        matches!(
            store.issue(n.token("cc2"), record).await,
            Err(IssueError::GrantRevoked)
        ),
        "no token joins a grant made before the cut-off"
    );
    issue(
        &store,
        n.token("new"),
        TokenKind::AccessToken,
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

async fn bulk_revocations_count_what_the_other_scope_left<S: TokenStore>(store: S) {
    let n = Names::new();
    let (app, other, alice, bob) = (n.id("app"), n.id("other"), n.id("alice"), n.id("bob"));
    for (name, client, owner) in [
        ("alice-app", &app, &alice),
        ("alice-other", &other, &alice),
        ("bob-app", &app, &bob),
        ("bob-other", &other, &bob),
    ] {
        issue(
            &store,
            n.token(name),
            TokenKind::RefreshToken,
            client,
            GrantId::random(),
            Some(owner),
        )
        .await;
    }
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

async fn every_revocation_is_an_event<S: TokenStore>(store: S) {
    let n = Names::new();
    let mut events = store.events().subscribe();
    let (app, alice) = (n.id("app"), n.id("alice"));
    let grant = GrantId::random();
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &app,
        grant,
        Some(&alice),
    )
    .await;
    issue(
        &store,
        n.token("a"),
        TokenKind::AccessToken,
        &app,
        grant,
        Some(&alice),
    )
    .await;

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
    issue(
        &store,
        n.token("x"),
        TokenKind::RefreshToken,
        &app,
        g1,
        Some(&alice),
    )
    .await;
    issue(
        &store,
        n.token("y"),
        TokenKind::RefreshToken,
        &app,
        g2,
        Some(&alice),
    )
    .await;
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
    issue(&store, n.token("z"), TokenKind::AccessToken, &app, g3, None).await;
    store.revoke_grant(g3).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.initiator.clone()),
        (Revoked::Grant { grant: g3 }, Initiator::System)
    );

    // A bulk revocation that revokes nothing live emits nothing.
    store
        .revoke_subject(&alice, Initiator::Admin("admin".into()))
        .await
        .unwrap();
    store
        .revoke_subject(&n.id("nobody"), Initiator::Admin("admin".into()))
        .await
        .unwrap();
    issue(
        &store,
        n.token("s"),
        TokenKind::AccessToken,
        &app,
        GrantId::random(),
        Some(&alice),
    )
    .await;
    store
        .revoke_subject(&alice, Initiator::Admin("admin".into()))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.subject.as_ref()),
        (Revoked::Subject, Some(&alice))
    );
    issue(
        &store,
        n.token("c"),
        TokenKind::AccessToken,
        &app,
        GrantId::random(),
        None,
    )
    .await;
    store
        .revoke_client(&app, Initiator::Admin("admin".into()))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.revoked.clone(), event.client_id.as_ref()),
        (Revoked::Client, Some(&app))
    );
}

async fn issued_tokens_are_active<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, owner, grant) = (n.id("client"), n.id("owner"), GrantId::random());
    issue(
        &store,
        n.token("a"),
        TokenKind::AccessToken,
        &client,
        grant,
        Some(&owner),
    )
    .await;
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

async fn unknown_and_expired_tokens_are_not_active<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    assert!(
        !active(&store, &n.token("unknown")).await,
        "unknown: inactive"
    );
    assert_eq!(
        store
            .revoke(&n.token("unknown"), RevocationRequest::new(&client))
            .await
            .unwrap(),
        RevocationOutcome::NotActive,
        "revoking an unknown token does nothing"
    );
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
    assert_eq!(
        store
            .revoke(&n.token("old"), RevocationRequest::new(&client))
            .await
            .unwrap(),
        RevocationOutcome::NotActive,
        "revoking an expired token does nothing"
    );
}

async fn access_token_revokes_alone<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &client,
        grant,
        None,
    )
    .await;
    issue(
        &store,
        n.token("a1"),
        TokenKind::AccessToken,
        &client,
        grant,
        None,
    )
    .await;
    issue(
        &store,
        n.token("a2"),
        TokenKind::AccessToken,
        &client,
        grant,
        None,
    )
    .await;
    let outcome = store
        .revoke(&n.token("a1"), RevocationRequest::new(&client))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RevocationOutcome::Revoked {
            kind: TokenKind::AccessToken,
            scope: RevocationScope::Token
        },
        "an access token is revoked alone by default"
    );
    assert!(!active(&store, &n.token("a1")).await, "revoked: inactive");
    assert!(active(&store, &n.token("a2")).await, "sibling stays active");
    assert!(active(&store, &n.token("r")).await, "refresh stays active");
    assert_eq!(
        store
            .revoke(&n.token("a1"), RevocationRequest::new(&client))
            .await
            .unwrap(),
        RevocationOutcome::NotActive,
        "revoking twice does nothing the second time"
    );
}

async fn refresh_token_revokes_its_grant<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    let (grant, other) = (GrantId::random(), GrantId::random());
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &client,
        grant,
        None,
    )
    .await;
    for i in 0..5 {
        let t = n.token(&format!("a{i}"));
        issue(&store, t, TokenKind::AccessToken, &client, grant, None).await;
    }
    issue(
        &store,
        n.token("other"),
        TokenKind::AccessToken,
        &client,
        other,
        None,
    )
    .await;
    let outcome = store
        .revoke(&n.token("r"), RevocationRequest::new(&client))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RevocationOutcome::Revoked {
            kind: TokenKind::RefreshToken,
            scope: RevocationScope::Grant
        },
        "a refresh token revokes its grant"
    );
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

async fn access_token_scope_grant_revokes_grant<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &client,
        grant,
        None,
    )
    .await;
    issue(
        &store,
        n.token("a"),
        TokenKind::AccessToken,
        &client,
        grant,
        None,
    )
    .await;
    let mut request = RevocationRequest::new(&client);
    request.access_token_scope = RevocationScope::Grant;
    let outcome = store.revoke(&n.token("a"), request).await.unwrap();
    assert_eq!(
        outcome,
        RevocationOutcome::Revoked {
            kind: TokenKind::AccessToken,
            scope: RevocationScope::Grant
        }
    );
    assert!(
        !active(&store, &n.token("r")).await,
        "with scope Grant, an access token takes its refresh token along"
    );
}

async fn another_clients_token_is_never_revoked<S: TokenStore>(store: S) {
    let n = Names::new();
    let (owner_client, other_client) = (n.id("owner-client"), n.id("other-client"));
    let grant = GrantId::random();
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &owner_client,
        grant,
        None,
    )
    .await;
    issue(
        &store,
        n.token("a"),
        TokenKind::AccessToken,
        &owner_client,
        grant,
        None,
    )
    .await;
    for token in ["r", "a"] {
        assert_eq!(
            store
                .revoke(&n.token(token), RevocationRequest::new(&other_client))
                .await
                .unwrap(),
            RevocationOutcome::IssuedToAnotherClient,
            "another client's token is reported, not revoked"
        );
        assert!(
            active(&store, &n.token(token)).await,
            "another client's token stays active"
        );
    }
}

async fn hint_never_limits_the_search<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &client,
        grant,
        None,
    )
    .await;
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

async fn revoked_grant_refuses_new_tokens<S: TokenStore>(store: S) {
    let n = Names::new();
    let (client, grant) = (n.id("client"), GrantId::random());
    issue(
        &store,
        n.token("r"),
        TokenKind::RefreshToken,
        &client,
        grant,
        None,
    )
    .await;
    store.revoke_grant(grant).await.unwrap();
    assert!(!active(&store, &n.token("r")).await, "revoke_grant revokes");
    let result = store
        .issue(
            n.token("late"),
            TokenRecord::new(TokenKind::AccessToken, client.clone(), grant, later()),
        )
        .await;
    assert!(
        matches!(result, Err(IssueError::GrantRevoked)),
        "a revoked grant takes no new token"
    );
    assert!(!active(&store, &n.token("late")).await);

    let never_seen = GrantId::random();
    store.revoke_grant(never_seen).await.unwrap();
    let result = store
        .issue(
            n.token("later"),
            TokenRecord::new(TokenKind::AccessToken, client.clone(), never_seen, later()),
        )
        .await;
    assert!(
        matches!(result, Err(IssueError::GrantRevoked)),
        "a grant revoked before its first token takes no token"
    );
}

async fn owner_revocation_is_exactly_scoped<S: TokenStore>(store: S) {
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
            TokenKind::RefreshToken,
            client,
            *grant,
            Some(owner),
        )
        .await;
        issue(
            &store,
            n.token(&format!("{name}-a")),
            TokenKind::AccessToken,
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

async fn revocation_races_registration<S: TokenStore>(store: S) {
    let n = Names::new();
    let client = n.id("client");
    for i in 0..50 {
        let grant = GrantId::random();
        issue(
            &store,
            n.token(&format!("r{i}")),
            TokenKind::RefreshToken,
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
