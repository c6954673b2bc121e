//! The contract of an [`EventLog`]: cursors, leases and acknowledgements.

use crate::store::log::{EventLog, Logged};

use super::*;

/// Revokes `count` fresh grants, one log entry each: their ids, in order.
async fn log_grants<S: TokenStore>(store: &S, n: &Names, count: usize) -> Vec<GrantId> {
    let client = n.id("log-app");
    let mut grants = Vec::with_capacity(count);
    for k in 0..count {
        let grant = GrantId::random();
        let token = n.token(&format!("log-{k}"));
        issue(store, token, REFRESH, &client, grant, None).await;
        store.revoke_grant(grant).await.expect("revoking a grant");
        grants.push(grant);
    }
    grants
}

fn pair(entry: &Logged) -> (u64, u128) {
    (entry.position, entry.id)
}

fn positions(entries: &[Logged]) -> Vec<u64> {
    entries.iter().map(|e| e.position).collect()
}

/// Checks the [`EventLog`] contract on `store`, which nothing else may write to while it
/// runs (the checks count its log's entries). Panics with the rule that failed.
///
/// Cursors start at the log's end; [`read_after`](EventLog::read_after) returns the
/// entries after a position in order, with stable ids; a cursor's lease has one holder at
/// a time, runs out, and only its holder moves the cursor, never back; acknowledgements in
/// any order move the cursor past the leading acknowledged entries only, and a pair that
/// names no entry is ignored.
pub async fn event_log<S: TokenStore + EventLog>(store: S) {
    let n = Names::new();
    let (poll, push) = (
        format!("poll {:x} conformance", n.0),
        format!("push {:x} conformance", n.0),
    );
    let start = store.cursor(&poll).await.expect("a cursor");
    assert_eq!(store.cursor(&poll).await.unwrap(), start, "a cursor stays");
    assert!(
        store.read_after(start, 100).await.unwrap().is_empty(),
        "a new cursor is at the log's end"
    );
    assert_eq!(
        store
            .claim(&push, "a", Duration::from_secs(60))
            .await
            .unwrap(),
        Some(start)
    );

    let grants = log_grants(&store, &n, 4).await;
    let entries = store.read_after(start, 100).await.unwrap();
    let logged: Vec<_> = entries.iter().map(|e| e.event.revoked.grant()).collect();
    let expected: Vec<_> = grants.iter().copied().map(Some).collect();
    assert_eq!(logged, expected, "each change one entry, in commit order");
    assert!(
        entries.iter().all(|e| e.event.relayed),
        "entries are marked relayed"
    );
    assert!(
        entries.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase"
    );
    let again = store.read_after(start, 100).await.unwrap();
    assert_eq!(
        again, entries,
        "the same entries, ids and all, on every read"
    );
    let mut ids: Vec<_> = entries.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "every entry its own id");
    for entry in &entries {
        assert_eq!(Logged::parse_jti(&entry.jti()), Some(pair(entry)));
    }
    assert_eq!(
        store.read_after(start, 2).await.unwrap(),
        entries[..2],
        "a read takes at most `limit` entries, oldest first"
    );
    assert_eq!(
        store.read_after(entries[1].position, 100).await.unwrap(),
        entries[2..],
        "a read starts after its position"
    );
    assert!(store.read_after(start, 0).await.unwrap().is_empty());
    let late = format!("poll {:x} late", n.0);
    assert_eq!(
        store.cursor(&late).await.unwrap(),
        entries[3].position,
        "a cursor made later starts at the log's end as it is then"
    );
    assert!(store.unacknowledged(&late, 100).await.unwrap().is_empty());

    poll_cursors_merge_acknowledgements(&store, &poll, start, &entries).await;
    push_cursors_have_one_holder(&store, &push, start, &entries).await;
}

async fn poll_cursors_merge_acknowledgements<S: EventLog>(
    store: &S,
    poll: &str,
    start: u64,
    e: &[Logged],
) {
    let open = |limit| store.unacknowledged(poll, limit);
    assert_eq!(open(100).await.unwrap(), e, "every entry open");
    assert_eq!(
        open(1).await.unwrap(),
        e[..1],
        "oldest first, at most `limit`"
    );
    store
        .acknowledge(poll, &[pair(&e[1]), pair(&e[2])])
        .await
        .unwrap();
    assert_eq!(
        positions(&open(100).await.unwrap()),
        positions(&[e[0].clone(), e[3].clone()]),
        "acknowledged out of order: the others stay open"
    );
    assert_eq!(
        store.cursor(poll).await.unwrap(),
        start,
        "not past the open first"
    );
    store
        .acknowledge(
            poll,
            &[(e[0].position, e[0].id ^ 1), (e[3].position + 1, e[3].id)],
        )
        .await
        .unwrap();
    assert_eq!(
        open(100).await.unwrap().len(),
        2,
        "a pair naming no entry is ignored"
    );
    store.acknowledge(poll, &[pair(&e[0])]).await.unwrap();
    assert_eq!(
        store.cursor(poll).await.unwrap(),
        e[2].position,
        "past every leading acknowledged entry"
    );
    assert_eq!(positions(&open(100).await.unwrap()), [e[3].position]);
    store
        .acknowledge(poll, &[pair(&e[0]), pair(&e[3]), pair(&e[3])])
        .await
        .unwrap();
    assert!(
        open(100).await.unwrap().is_empty(),
        "everything acknowledged"
    );
    assert_eq!(
        store.cursor(poll).await.unwrap(),
        e[3].position,
        "at the end"
    );
}

async fn push_cursors_have_one_holder<S: EventLog>(
    store: &S,
    push: &str,
    start: u64,
    e: &[Logged],
) {
    let minute = Duration::from_secs(60);
    assert_eq!(
        store.claim(push, "b", minute).await.unwrap(),
        None,
        "b waits"
    );
    assert!(
        !store
            .advance(push, "b", e[3].position, minute)
            .await
            .unwrap(),
        "only the holder moves the cursor"
    );
    assert_eq!(
        store.claim(push, "a", minute).await.unwrap(),
        Some(start),
        "a renews"
    );
    assert!(store
        .advance(push, "a", e[2].position, minute)
        .await
        .unwrap());
    assert!(
        store
            .advance(push, "a", e[0].position, minute)
            .await
            .unwrap(),
        "the holder's step back is taken, and ignored"
    );
    assert_eq!(
        store.claim(push, "a", minute).await.unwrap(),
        Some(e[2].position),
        "never back"
    );
    store.release(push, "b").await.unwrap();
    assert_eq!(
        store.claim(push, "b", minute).await.unwrap(),
        None,
        "b cannot release a's lease"
    );
    store.release(push, "a").await.unwrap();
    let short = Duration::from_millis(20);
    assert_eq!(
        store.claim(push, "b", short).await.unwrap(),
        Some(e[2].position),
        "released: b takes it"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let taken = loop {
        match store.claim(push, "a", minute).await.unwrap() {
            Some(position) => break position,
            None if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            None => panic!("a lease that ran out is taken over"),
        }
    };
    assert_eq!(taken, e[2].position, "taken over where it was left");
    assert!(
        !store
            .advance(push, "b", e[3].position, minute)
            .await
            .unwrap(),
        "a holder whose lease was taken over no longer moves it"
    );
    store.release(push, "a").await.unwrap();
}
