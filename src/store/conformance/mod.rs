//! The conformance suite every [`TokenStore`] must pass.
//!
//! Call [`run`] from a test with a function that makes a store; the suite panics with a
//! message naming the rule that failed. Every name it uses (tokens, clients, owners) is
//! prefixed with a fresh random value, so that it may run against a shared server.
//!
//! A store with a durable log of its events also passes [`event_log`], on a store of its
//! own: the [`EventLog`](crate::store::log::EventLog) contract that delivery relies on.
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
    Confirmation, GrantId, IssueError, RevocationOutcome, RevocationRequest, RevocationScope,
    TokenHash, TokenKind, TokenRecord, TokenStore,
};

mod bulk;
mod events;
mod log;
mod revocation;
mod tokens;

use bulk::*;
use events::*;
use revocation::*;
use tokens::*;

pub use log::event_log;

/// The [`ReplayCache`](super::ReplayCache) contract: a value is taken once per scope until
/// it expires, by one of many concurrent callers, and is free again once expired.
pub async fn replay_cache<C: super::ReplayCache>(cache: &C) {
    let names = Names::new();
    let scope = names.id("client");
    let until = SystemTime::now() + Duration::from_secs(60);
    assert!(
        cache.first_use(&scope, "jti-1", until).await.unwrap(),
        "a new value is taken"
    );
    assert!(
        !cache.first_use(&scope, "jti-1", until).await.unwrap(),
        "a value is taken once"
    );
    assert!(
        cache
            .first_use(&names.id("other"), "jti-1", until)
            .await
            .unwrap(),
        "scopes are apart"
    );
    let racing =
        futures_util::future::join_all((0..8).map(|_| cache.first_use(&scope, "jti-2", until)))
            .await;
    assert_eq!(
        racing.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "of concurrent callers, one takes the value"
    );
    let past = SystemTime::now() - Duration::from_secs(1);
    assert!(cache.first_use(&scope, "jti-3", past).await.unwrap());
    assert!(
        cache.first_use(&scope, "jti-3", until).await.unwrap(),
        "an expired value may be taken again"
    );
}

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

const ACCESS: TokenKind = TokenKind::AccessToken;
const REFRESH: TokenKind = TokenKind::RefreshToken;

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

/// Issues one refresh token per `(name, client, owner)`, each in a grant of its own.
async fn refresh_grants<S: TokenStore>(
    store: &S,
    n: &Names,
    grants: &[(&str, &Arc<str>, &Arc<str>)],
) {
    for &(name, client, owner) in grants {
        let grant = GrantId::random();
        issue(store, n.token(name), REFRESH, client, grant, Some(owner)).await;
    }
}

async fn active<S: TokenStore>(store: &S, token: &TokenHash) -> bool {
    store
        .inspect(token)
        .await
        .expect("inspect must succeed")
        .is_some()
}

/// Revokes the token `name` as `client` with the default request; asserts the outcome is
/// `expected`.
async fn assert_revoke<S: TokenStore>(
    store: &S,
    n: &Names,
    name: &str,
    client: &Arc<str>,
    expected: RevocationOutcome,
    why: &str,
) {
    let outcome = store
        .revoke(&n.token(name), RevocationRequest::new(client))
        .await
        .unwrap();
    assert_eq!(outcome, expected, "{why}");
}

/// The outcome of revoking a token of `kind`, with `scope`.
fn revoked(kind: TokenKind, scope: RevocationScope) -> RevocationOutcome {
    RevocationOutcome::Revoked { kind, scope }
}

/// Asserts whether the token `name` is active.
async fn assert_active<S: TokenStore>(store: &S, n: &Names, name: &str, live: bool, why: &str) {
    assert!(active(store, &n.token(name)).await == live, "{why}");
}

/// Asserts that a new access token of `client` in `grant` is refused: the grant is revoked.
async fn assert_refused<S: TokenStore>(
    store: &S,
    token: TokenHash,
    client: &Arc<str>,
    grant: GrantId,
    why: &str,
) {
    let record = TokenRecord::new(TokenKind::AccessToken, client.clone(), grant, later());
    let result = store.issue(token, record).await;
    assert!(matches!(result, Err(IssueError::GrantRevoked)), "{why}");
}

/// Runs every check of the suite; `make` is called once per check for a fresh store.
pub async fn run<S, F>(make: F)
where
    S: TokenStore,
    F: Fn() -> S,
{
    issued_tokens_are_active(make()).await;
    bound_tokens_keep_their_confirmation(make()).await;
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
