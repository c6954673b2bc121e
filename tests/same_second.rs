//! A JWT's `iat` is whole seconds, and a resource server judges a bulk revocation by it: a
//! cut-off made in a token's second covers the token issued before it, and not the one
//! issued after it, at the store and at a resource server's replica alike.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_oauth_revoke::{
    events::{Initiator, Revoked},
    jose::SigningKey,
    jwt::{AccessClaims, JwtAccessTokens},
    set::{replica::Revocations, ReceivedEvent, ReceivedKind},
    store::{GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
};

const LIFETIME: Duration = Duration::from_secs(600);

fn second(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Waits, if needed, until less than a fifth of the current second has gone.
async fn start_of_a_second() {
    let fraction = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    if fraction > 200 {
        tokio::time::sleep(Duration::from_millis(u64::from(1000 - fraction) + 2)).await;
    }
}

/// Alice's access token to `app`, issued now, its grant new.
fn record() -> TokenRecord {
    let now = SystemTime::now();
    TokenRecord::new(
        TokenKind::AccessToken,
        "app",
        GrantId::random(),
        now + LIFETIME,
    )
    .with_issued_at(now)
    .with_owner("alice")
}

/// What a resource server hears of alice's cut-off.
fn cut_off_event(at: SystemTime) -> ReceivedEvent {
    ReceivedEvent {
        set_id: "1".into(),
        kind: ReceivedKind::Subject,
        client_id: None,
        user: Some("alice".into()),
        grant: None,
        jti: None,
        token: None,
        at,
        expires_at: None,
    }
}

#[tokio::test]
async fn a_cut_off_covers_the_jwt_issued_before_it_in_its_second_and_not_the_one_after() {
    let store = MemoryStore::new();
    let jwts = JwtAccessTokens::new("https://as.example", "api", SigningKey::generate());
    let mut events = store.events().subscribe();
    for _ in 0..5 {
        start_of_a_second().await;
        let before = jwts.issue(&store, record()).await.unwrap();
        store
            .revoke_subject("alice", Initiator::System)
            .await
            .unwrap();
        let cut = loop {
            let event = events.recv().await.unwrap().unwrap();
            if matches!(event.revoked, Revoked::Subject) {
                break event.at;
            }
        };
        let asked = SystemTime::now();
        let after = jwts.issue(&store, record()).await.unwrap();

        let before: AccessClaims = jwts.verify(&before).expect("genuine");
        let after: AccessClaims = jwts.verify(&after).expect("genuine");
        if second(asked) != second(cut) || before.iat != second(cut) {
            continue; // The second turned in between: try again.
        }
        // Every JWT says its lifetime exactly, in whole seconds.
        for claims in [&before, &after] {
            assert_eq!(claims.exp - claims.iat, LIFETIME.as_secs());
        }
        assert!(
            after.iat > second(cut),
            "issued in its cut-off's second, dated after it"
        );

        // At the store: the earlier is revoked, the later active; introspection's `iat`
        // (the record's, to the second) is the JWT's.
        assert!(store.inspect(&before.store_key()).await.unwrap().is_none());
        let held = store.inspect(&after.store_key()).await.unwrap().unwrap();
        assert_eq!(second(held.issued_at), after.iat);

        // At a resource server's replica, which has only the JWT and the cut-off's time.
        let replica = Revocations::new(Duration::from_secs(3600));
        replica.apply(&cut_off_event(cut));
        assert!(replica.is_revoked(&before), "issued before the cut-off");
        assert!(!replica.is_revoked(&after), "issued after the cut-off");
        return;
    }
    panic!("no attempt fell within one second");
}

#[tokio::test]
async fn a_jwt_issued_with_no_cut_off_near_is_dated_now_and_not_delayed() {
    let store = MemoryStore::new();
    let jwts = JwtAccessTokens::new("https://as.example", "api", SigningKey::generate());
    let record = record();
    let issued = record.issued_at;
    let token = jwts.issue(&store, record).await.unwrap();
    let claims = jwts.verify(&token).unwrap();
    assert_eq!(claims.iat, second(issued));
    assert_eq!(claims.exp - claims.iat, LIFETIME.as_secs());
}

#[test]
fn a_fractional_iat_of_another_issuer_reads_rounded_down_and_a_bad_one_not_at_all() {
    let claims = |iat: &str| {
        serde_json::from_str::<AccessClaims>(&format!(
            r#"{{"iss":"i","sub":"s","client_id":"c","aud":"a","exp":2000000000,
                "iat":{iat},"jti":"j","grant_id":"00000000000000aa"}}"#
        ))
        .map(|c| c.iat)
    };
    assert_eq!(claims("1700000000").unwrap(), 1_700_000_000);
    assert_eq!(claims("1700000000.999").unwrap(), 1_700_000_000);
    assert_eq!(claims("1.7e9").unwrap(), 1_700_000_000);
    for bad in ["-1", "-0.5", "\"1700000000\"", "1e20", "null", "true"] {
        assert!(claims(bad).is_err(), "{bad}");
    }
}
