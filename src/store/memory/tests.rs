use super::*;
use std::time::Duration;

use super::tables::{GrantEntry, GrantKey, TokenEntry, TokenKey};
use crate::store::{Initiator, RevocationOutcome, RevocationRequest, TokenKind, TokenStore};

#[cfg(feature = "conformance")]
#[tokio::test]
async fn conformance() {
    crate::store::conformance::run(MemoryStore::new).await;
    crate::store::conformance::replay_cache(&MemoryStore::new()).await;
}

#[test]
fn concurrent_issues_never_deadlock() {
    // Issues whose grant and token shards cross used to lock them in opposite orders.
    let store = MemoryStore::new();
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..4u64 {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let expires = SystemTime::now() + Duration::from_secs(60);
            for i in 0..20_000u64 {
                let token = TokenHash::of(&format!("{thread}-{i}"));
                let record =
                    TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires);
                assert!(store.register_sync(token, record));
            }
            done.send(()).unwrap();
        });
    }
    for _ in 0..4 {
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("issuing threads deadlocked");
    }
    assert_eq!(store.len(), 80_000);
}

#[tokio::test]
async fn purge_frees_expired_entries() {
    // The clock stands still: no incremental purge can run while the loop issues.
    let clock = crate::store::ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let past = clock.now() - Duration::from_secs(5);
    for i in 0..1000 {
        store
            .issue(
                TokenHash::of(&format!("t{i}")),
                TokenRecord::new(TokenKind::AccessToken, "c", GrantId::random(), past),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 1000);
    store.purge_expired();
    assert_eq!(store.len(), 0);
    assert!(lock(&store.inner.owners).is_empty());
}

/// Issues the access tokens `{prefix}0` to `{prefix}{count - 1}` of client `c`, each in a
/// grant of its own.
async fn issue_many(store: &MemoryStore, prefix: &str, count: usize, expires: SystemTime) {
    for i in 0..count {
        let record = TokenRecord::new(TokenKind::AccessToken, "c", GrantId::random(), expires);
        let token = TokenHash::of(&format!("{prefix}{i}"));
        store.issue(token, record).await.unwrap();
    }
}

#[tokio::test]
async fn issuing_purges_one_shard_per_second_of_the_clock() {
    let clock = crate::store::ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let expires = clock.now() + Duration::from_secs(10);
    issue_many(&store, "t", SHARDS * 100, expires).await;
    let issued = store.len();
    clock.advance(Duration::from_secs(11));
    // Within one second of the clock, one shard is purged however many tokens are issued.
    let later = clock.now() + Duration::from_secs(60);
    issue_many(&store, "u", 100, later).await;
    let after_one = store.len();
    assert!(after_one < issued + 100, "one shard was purged");
    assert!(
        after_one > issued / 2,
        "only one shard was purged: {issued} -> {after_one}"
    );
    store.purge_expired();
    assert_eq!(store.len(), 100);
}

#[tokio::test]
async fn an_owners_list_holds_each_grant_once() {
    // New grants are pushed without a scan of the owner's list: a second token of a
    // grant must not add the grant again.
    let store = MemoryStore::new();
    let expires = SystemTime::now() + Duration::from_secs(60);
    for i in 0..2_000u64 {
        let grant = GrantId::from_u64(i / 2);
        store
            .issue(
                TokenHash::of(&format!("t{i}")),
                TokenRecord::new(TokenKind::AccessToken, "c", grant, expires).with_owner("alice"),
            )
            .await
            .unwrap();
    }
    let alice = store.inner.names.id("alice").unwrap();
    assert_eq!(lock(&store.inner.owners)[&alice].len(), 1_000);
    assert_eq!(
        store.clients_of_owner("alice").await.unwrap()[0].grants,
        1_000
    );
    assert_eq!(
        store
            .revoke_client_for_owner("alice", "c", Initiator::System)
            .await
            .unwrap(),
        1_000
    );
}

#[test]
fn slots_are_small() {
    // What one slot of each table holds (the tables add one control byte a slot): a
    // 160-bit key, the grant, the expiry, the kind with the lifetime; a grant's id, its
    // client, owner, expiry, and its creation time with the revocation flag.
    assert_eq!(std::mem::size_of::<(TokenKey, TokenEntry)>(), 36);
    assert_eq!(std::mem::size_of::<(GrantKey, GrantEntry)>(), 28);
    // A bound token's binding, in a table of its own.
    assert_eq!(
        std::mem::size_of::<(TokenKey, crate::store::Confirmation)>(),
        53
    );
}

fn bound_len(store: &MemoryStore) -> usize {
    store.inner.shards.iter().map(|s| lock(s).bound_len()).sum()
}

#[tokio::test]
async fn a_binding_lives_and_goes_with_its_token() {
    use crate::store::Confirmation;
    let clock = crate::store::ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let soon = clock.now() + Duration::from_secs(10);
    let later = clock.now() + Duration::from_secs(600);
    issue_many(&store, "bearer", 1_000, later).await;
    assert_eq!(bound_len(&store), 0, "a bearer token holds no binding");
    let bind = |i: u8, expires| {
        TokenRecord::new(TokenKind::AccessToken, "c", GrantId::random(), expires)
            .with_confirmation(Confirmation::Jkt([i; 32]))
    };
    for i in 0..3 {
        let token = TokenHash::of(&format!("bound{i}"));
        store.issue(token, bind(i, soon)).await.unwrap();
    }
    store
        .issue(TokenHash::of("kept"), bind(9, later))
        .await
        .unwrap();
    assert_eq!(bound_len(&store), 4);
    let held = store.inspect(&TokenHash::of("bound1")).await.unwrap();
    assert_eq!(held.unwrap().confirmation, Some(Confirmation::Jkt([1; 32])));

    // Revoked alone: its binding goes with it.
    let outcome = store
        .revoke(&TokenHash::of("bound0"), RevocationRequest::new("c"))
        .await
        .unwrap();
    assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
    assert_eq!(bound_len(&store), 3);

    // Registered again without one: none is left behind.
    let again = TokenRecord::new(TokenKind::AccessToken, "c", GrantId::random(), soon);
    store.issue(TokenHash::of("bound2"), again).await.unwrap();
    assert_eq!(bound_len(&store), 2);
    let held = store.inspect(&TokenHash::of("bound2")).await.unwrap();
    assert_eq!(held.unwrap().confirmation, None);

    // Expired and purged: so is its binding.
    clock.advance(Duration::from_secs(11));
    store.purge_expired();
    assert_eq!(bound_len(&store), 1);
    assert_eq!(store.len(), 1_001);
    let held = store.inspect(&TokenHash::of("kept")).await.unwrap();
    assert_eq!(held.unwrap().confirmation, Some(Confirmation::Jkt([9; 32])));
}

#[test]
fn packed_entries_give_back_what_they_were_given() {
    let grant = GrantId::from_u64(u64::MAX);
    for kind in [TokenKind::AccessToken, TokenKind::RefreshToken] {
        for (expires, issued, back) in [
            (1_800_003_600, 1_800_000_000, 1_800_000_000),
            (1_800_000_000, 0, 0),                         // not known
            (1_800_000_000, 1_800_000_005, 1_800_000_000), // after its expiry: at it
            (u32::MAX, 1, 0),                              // over 68 years: not known
            (u32::MAX, u32::MAX - 1, u32::MAX - 1),
        ] {
            let entry = TokenEntry::new(grant, expires, issued, kind);
            assert_eq!(entry.kind(), kind);
            assert_eq!(entry.grant(), grant);
            assert_eq!(entry.expires_at(), expires);
            assert_eq!(entry.issued_at(), back, "{expires} {issued}");
        }
    }
    for created in [0, 1, 1_800_000_000_123_456, u64::MAX >> 1] {
        let mut entry = GrantEntry::new(1, 2, 3, created);
        assert!(!entry.revoked());
        assert_eq!(entry.created(), created);
        entry.revoke();
        assert!(entry.revoked());
        assert_eq!(entry.created(), created);
        assert_eq!((entry.client, entry.owner, entry.expires_at), (1, 2, 3));
    }
}

#[tokio::test]
async fn keys_are_the_digest_prefix() {
    let store = MemoryStore::new();
    let expires = SystemTime::now() + Duration::from_secs(60);
    let grant = GrantId::from_u64(7);
    let hash = TokenHash::of("t");
    store
        .issue(
            hash,
            TokenRecord::new(TokenKind::AccessToken, "c", grant, expires),
        )
        .await
        .unwrap();
    let mut other = *hash.as_bytes();
    other[0] ^= 1;
    assert!(store
        .inspect(&TokenHash::from_bytes(other))
        .await
        .unwrap()
        .is_none());
    let record = store.inspect(&hash).await.unwrap().unwrap();
    assert_eq!(record.grant, grant);
    assert_eq!(record.kind, TokenKind::AccessToken);
}
