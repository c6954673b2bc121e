//! The in-memory token store.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, RwLock,
    },
    time::SystemTime,
};

use crate::events::{Events, Initiator};

use super::{
    backend::{
        Applied, Backend, Bulk, CutOff, Facts, GrantPage, GrantState, GrantTarget, Held, TokenRule,
    },
    clock::{Clock, SystemClock},
    Confirmation, GrantId, RevocationScope, StoreError, TokenHash, TokenRecord,
};

mod tables;

use tables::{
    from_secs, lock, to_micros, to_secs, Cutoffs, GrantEntry, GrantKey, Names, Shard, TokenEntry,
    TokenKey,
};

const SHARDS: usize = 64;
const NO_OWNER: u32 = u32::MAX;

/// The embedded, in-memory [`TokenStore`](super::TokenStore): the default for a single node.
///
/// - Keyed by [`TokenHash`]; O(1) look-up, revocation and grant cascade (a revoked grant is
///   one flag that every token of it consults, so cascading costs the same for 1 token or
///   10,000).
/// - Sharded in 64 parts, each behind its own short-held mutex; no lock is ever held across
///   an `.await` (every operation completes synchronously).
/// - Expired entries are purged incrementally, one shard at a time (at most one shard a
///   second, triggered by [`issue`](super::TokenStore::issue)), so no sweep ever pauses the whole
///   store; [`purge_expired`](Self::purge_expired) sweeps everything on demand.
/// - About 157 bytes of heap per token at one million tokens with one grant per token and
///   an owner per grant, 123 with access and refresh token per grant (measured by
///   `cargo bench --bench memory`). Tokens are keyed by the first 160 bits of their digest.
/// - A bound token ([`TokenRecord::confirmation`]) keeps its binding in a side table of its
///   shard (53 bytes a slot), dropped with the token; a bearer token costs nothing there.
///
/// Expiry times are kept with one-second precision, up to the year 2106. Client ids and
/// owner names are interned and kept for the life of the store.
///
/// ```
/// use tower_oauth_revoke::store::MemoryStore;
///
/// let store = MemoryStore::new();
/// let shared = store.clone(); // clones share the same state
/// # let _ = shared;
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tokens", &self.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    owners: Mutex<HashMap<u32, Vec<GrantId>>>,
    /// Bulk revocations: the time (µs) at or before which a subject's or a client's grants
    /// were created is revoked.
    cutoffs: RwLock<Cutoffs>,
    any_cutoff: AtomicBool,
    events: Events,
    names: Names,
    next_purge: AtomicU32,
    purge_cursor: AtomicUsize,
    clock: Box<dyn Clock>,
    /// The `jti`s of client assertions and DPoP proofs (read at the store's clock).
    replay: super::replay::MemoryReplayCache,
}

impl Default for Inner {
    fn default() -> Self {
        Self::with_clock(Box::new(SystemClock))
    }
}

impl Inner {
    fn with_clock(clock: Box<dyn Clock>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            owners: Mutex::default(),
            cutoffs: RwLock::default(),
            any_cutoff: AtomicBool::new(false),
            events: Events::default(),
            names: Names::default(),
            next_purge: AtomicU32::new(0),
            purge_cursor: AtomicUsize::new(0),
            clock,
            replay: super::replay::MemoryReplayCache::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store, on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that reads the time from `clock`: a [`ManualClock`](super::ManualClock)
    /// lets a test decide when tokens expire and when purges run.
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            inner: Arc::new(Inner::with_clock(Box::new(clock))),
        }
    }

    fn now_secs(&self) -> u32 {
        to_secs(self.inner.clock.now())
    }

    /// The number of token entries held (including expired ones not yet purged and tokens
    /// of revoked grants).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).tokens.len()).sum()
    }

    /// Whether the store holds no token entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired token and grant, one shard at a time.
    pub fn purge_expired(&self) {
        let now = self.now_secs();
        for i in 0..SHARDS {
            self.purge_shard(i, now);
        }
    }

    fn purge_shard(&self, index: usize, now: u32) {
        let mut orphaned = Vec::new();
        {
            let mut shard = lock(&self.inner.shards[index]);
            shard.purge_tokens(now);
            shard.grants.retain(|id, g| {
                let keep = g.expires_at > now;
                if !keep {
                    orphaned.push((g.owner, g.client, id.id()));
                }
                keep
            });
            // Give memory back once most of a shard has expired.
            shard.shrink();
        }
        if !orphaned.is_empty() {
            fn unlist(index: &mut HashMap<u32, Vec<GrantId>>, key: u32, id: GrantId) {
                if let Some(list) = index.get_mut(&key) {
                    list.retain(|g| *g != id);
                    if list.is_empty() {
                        index.remove(&key);
                    }
                }
            }
            let mut owners = lock(&self.inner.owners);
            for &(owner, _, id) in &orphaned {
                if owner != NO_OWNER {
                    unlist(&mut owners, owner, id);
                }
            }
        }
    }

    fn maybe_purge(&self, now: u32) {
        let next = self.inner.next_purge.load(Ordering::Relaxed);
        if now >= next
            && self
                .inner
                .next_purge
                .compare_exchange(next, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let index = self.inner.purge_cursor.fetch_add(1, Ordering::Relaxed) % SHARDS;
            self.purge_shard(index, now);
        }
    }

    fn grant_shard(&self, grant: GrantId) -> MutexGuard<'_, Shard> {
        lock(&self.inner.shards[grant.shard(SHARDS)])
    }

    fn token_shard(&self, token: &TokenHash) -> MutexGuard<'_, Shard> {
        lock(&self.inner.shards[token.shard(SHARDS)])
    }

    /// A grant's state, with the cut-offs that apply to it: the input of the store's rules.
    fn state(&self, grant: &GrantEntry) -> GrantState {
        let (owner, client) = (grant.owner, grant.client);
        let (subject_cut_off, client_cut_off) = if self.inner.any_cutoff.load(Ordering::Acquire) {
            let cutoffs = self.inner.cutoffs.read().unwrap_or_else(|e| e.into_inner());
            (
                cutoffs.subjects.get(&owner).copied(),
                cutoffs.clients.get(&client).copied(),
            )
        } else {
            (None, None)
        };
        GrantState {
            revoked: grant.revoked(),
            expires_at: from_secs(grant.expires_at),
            created_us: grant.created(),
            subject_cut_off,
            client_cut_off,
        }
    }

    /// The token's entry with its binding, and its grant's entry, if both are held.
    fn held(&self, token: &TokenHash) -> Option<(TokenEntry, Option<Confirmation>, GrantEntry)> {
        let (entry, confirmation) = self.token_shard(token).token(&TokenKey::of(token))?;
        let grant = *self
            .grant_shard(entry.grant())
            .grants
            .get(&GrantKey::of(entry.grant()))?;
        Some((entry, confirmation, grant))
    }

    fn facts(
        &self,
        scope: RevocationScope,
        id: GrantId,
        grant: &GrantEntry,
        expires_at: u32,
        named: bool,
    ) -> Facts {
        let name = |id: u32| (named && id != NO_OWNER).then(|| self.inner.names.name(id));
        Facts {
            scope,
            grant: id,
            client_id: name(grant.client),
            owner: name(grant.owner),
            expires_at: from_secs(expires_at),
        }
    }

    fn register_sync(&self, token: TokenHash, record: TokenRecord) -> bool {
        let now = self.now_secs();
        self.maybe_purge(now);
        let expires_at = to_secs(record.expires_at);
        let client = self.inner.names.intern(&record.client_id);
        let owner = record
            .owner
            .as_ref()
            .map_or(NO_OWNER, |o| self.inner.names.intern(o));
        let created = to_micros(record.issued_at);
        let entry = TokenEntry::new(
            record.grant,
            expires_at,
            to_secs(record.issued_at),
            record.kind,
        );
        // Lock order everywhere: owners, then shards by ascending index. (The grant's shard
        // first, then the token's, deadlocked two issues whose grant and token shards
        // crossed.)
        let owners = (owner != NO_OWNER).then(|| lock(&self.inner.owners));
        let grant_index = record.grant.shard(SHARDS);
        let token_index = token.shard(SHARDS);
        let shards = &self.inner.shards;
        let (mut grant_shard, token_shard) = match grant_index.cmp(&token_index) {
            std::cmp::Ordering::Equal => (lock(&shards[grant_index]), None),
            std::cmp::Ordering::Less => {
                let grant_shard = lock(&shards[grant_index]);
                (grant_shard, Some(lock(&shards[token_index])))
            }
            std::cmp::Ordering::Greater => {
                let token_shard = lock(&shards[token_index]);
                (lock(&shards[grant_index]), Some(token_shard))
            }
        };
        let fresh = GrantEntry::new(client, owner, expires_at, created);
        let new_grant = match grant_shard.grants.get_mut(&GrantKey::of(record.grant)) {
            Some(g) if g.revoked() || self.state(g).is_cut_off() => return false,
            Some(g) if g.expires_at <= now => {
                // A stale entry not yet purged: the grant starts anew.
                if self.state(&fresh).is_cut_off() {
                    return false;
                }
                *g = fresh;
                false
            }
            Some(g) => {
                g.expires_at = g.expires_at.max(expires_at);
                false
            }
            None => {
                if self.state(&fresh).is_cut_off() {
                    return false;
                }
                grant_shard.grants.insert(GrantKey::of(record.grant), fresh);
                true
            }
        };
        let (key, confirmation) = (TokenKey::of(&token), record.confirmation);
        match token_shard {
            Some(mut token_shard) => token_shard.insert_token(key, entry, confirmation),
            None => grant_shard.insert_token(key, entry, confirmation),
        }
        drop(grant_shard);
        if let (true, Some(mut owners)) = (new_grant, owners) {
            // A grant new to the shard is new to its owner's list too (a purged grant leaves
            // the list with it): a push, not a scan of the owner's other grants.
            // Grown by a quarter rather than doubled: most owners hold a few grants.
            let list = owners.entry(owner).or_default();
            if list.len() == list.capacity() {
                list.reserve_exact(list.len() / 4 + 1);
            }
            list.push(record.grant);
        }
        true
    }

    fn lookup_sync(&self, token: &TokenHash) -> Option<Held> {
        let (entry, confirmation, grant) = self.held(token)?;
        Some(Held {
            record: TokenRecord {
                kind: entry.kind(),
                client_id: self.inner.names.name(grant.client),
                grant: entry.grant(),
                owner: (grant.owner != NO_OWNER).then(|| self.inner.names.name(grant.owner)),
                expires_at: from_secs(entry.expires_at()),
                issued_at: from_secs(entry.issued_at()),
                confirmation,
            },
            grant: self.state(&grant),
        })
    }

    fn revoke_token_sync(&self, token: &TokenHash, rule: TokenRule<'_>) -> Applied {
        let Some((entry, _, grant)) = self.held(token) else {
            return Applied::NotActive;
        };
        if from_secs(entry.expires_at()) <= rule.now || !self.state(&grant).is_live(rule.now) {
            return Applied::NotActive;
        }
        if self.inner.names.id(rule.client_id) != Some(grant.client) {
            return Applied::IssuedToAnotherClient;
        }
        let scope = rule.scope_for(entry.kind());
        let expires_at = match scope {
            RevocationScope::Grant => {
                let mut shard = self.grant_shard(entry.grant());
                match shard.grants.get_mut(&GrantKey::of(entry.grant())) {
                    Some(g) if !g.revoked() => g.revoke(),
                    _ => return Applied::NotActive,
                }
                grant.expires_at
            }
            RevocationScope::Token => {
                let mut shard = self.token_shard(token);
                if shard.remove_token(&TokenKey::of(token)).is_none() {
                    return Applied::NotActive;
                }
                entry.expires_at()
            }
        };
        Applied::Revoked {
            kind: entry.kind(),
            facts: self.facts(scope, entry.grant(), &grant, expires_at, rule.report),
        }
    }

    fn revoke_grant_sync(&self, grant: GrantId, now: SystemTime) -> Vec<Facts> {
        // A grant never seen is recorded as revoked too, so that a token registered into it
        // later is refused; it is purged an hour from now.
        let now_secs = to_secs(now);
        let mut shard = self.grant_shard(grant);
        let entry = shard.grants.entry(GrantKey::of(grant)).or_insert_with(|| {
            let mut unseen = GrantEntry::new(NO_OWNER, NO_OWNER, now_secs.saturating_add(3600), 0);
            unseen.revoke();
            unseen
        });
        let was = *entry;
        entry.revoke();
        drop(shard);
        if !self.state(&was).is_live(now) {
            return Vec::new();
        }
        let expires_at = was.expires_at;
        vec![self.facts(RevocationScope::Grant, grant, &was, expires_at, true)]
    }

    fn revoke_owner_client_sync(
        &self,
        owner: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Vec<Facts> {
        let (Some(owner), Some(client)) =
            (self.inner.names.id(owner), self.inner.names.id(client_id))
        else {
            return Vec::new();
        };
        // Holding the owners lock keeps new grants of this owner out until all are revoked.
        let owners = lock(&self.inner.owners);
        let Some(list) = owners.get(&owner) else {
            return Vec::new();
        };
        let mut revoked = Vec::new();
        for &id in list {
            let mut shard = self.grant_shard(id);
            if let Some(g) = shard.grants.get_mut(&GrantKey::of(id)) {
                if g.client == client && !g.revoked() {
                    let was = *g;
                    g.revoke();
                    if self.state(&was).is_live(now) {
                        revoked.push((id, was));
                    }
                }
            }
        }
        drop(owners);
        revoked
            .iter()
            .map(|(id, g)| {
                let expires_at = g.expires_at;
                self.facts(RevocationScope::Grant, *id, g, expires_at, true)
            })
            .collect()
    }

    /// Writes a cut-off (now) for a subject or a client.
    fn cut_off_sync(&self, scope: Bulk<'_>) -> Option<CutOff> {
        // A name never seen holds no grant: nothing to cut off, nothing kept.
        let id = self.inner.names.id(scope.name())?;
        let at_us = to_micros(self.inner.clock.now());
        let mut cutoffs = self
            .inner
            .cutoffs
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let map = match scope {
            Bulk::Subject(_) => &mut cutoffs.subjects,
            Bulk::Client(_) => &mut cutoffs.clients,
        };
        let previous_us = map.get(&id).copied();
        map.insert(id, previous_us.map_or(at_us, |p| p.max(at_us)));
        self.inner.any_cutoff.store(true, Ordering::Release);
        Some(CutOff {
            at_us,
            previous_us,
            announced: false,
        })
    }

    fn grants_sync(&self, scope: Bulk<'_>) -> GrantPage {
        let Some(id) = self.inner.names.id(scope.name()) else {
            return GrantPage::default();
        };
        let mut grants = Vec::new();
        match scope {
            Bulk::Subject(_) => {
                // The owner's index.
                let ids: Vec<GrantId> = lock(&self.inner.owners)
                    .get(&id)
                    .cloned()
                    .unwrap_or_default();
                for grant in ids {
                    let entry = self
                        .grant_shard(grant)
                        .grants
                        .get(&GrantKey::of(grant))
                        .copied();
                    if let Some(g) = entry {
                        grants.push((self.inner.names.name(g.client), self.state(&g)));
                    }
                }
            }
            Bulk::Client(_) => {
                // No index of a client's grants (it would cost every grant 8 bytes or more):
                // a scan of the grant tables, one shard at a time.
                let name = self.inner.names.name(id);
                for shard in self.inner.shards.iter() {
                    let matching: Vec<GrantEntry> = lock(shard)
                        .grants
                        .values()
                        .filter(|g| g.client == id)
                        .copied()
                        .collect();
                    grants.extend(matching.iter().map(|g| (name.clone(), self.state(g))));
                }
            }
        }
        GrantPage { grants, next: None }
    }
}

impl Backend for MemoryStore {
    fn events(&self) -> &Events {
        &self.inner.events
    }

    fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    async fn register(&self, token: TokenHash, record: TokenRecord) -> Result<bool, StoreError> {
        Ok(self.register_sync(token, record))
    }

    async fn lookup(&self, token: &TokenHash) -> Result<Option<Held>, StoreError> {
        Ok(self.lookup_sync(token))
    }

    async fn revoke_token(
        &self,
        token: &TokenHash,
        rule: TokenRule<'_>,
    ) -> Result<Applied, StoreError> {
        Ok(self.revoke_token_sync(token, rule))
    }

    async fn revoke_grants(
        &self,
        target: GrantTarget<'_>,
        _: &Initiator,
        now: SystemTime,
    ) -> Result<Vec<Facts>, StoreError> {
        Ok(match target {
            GrantTarget::One(grant) => self.revoke_grant_sync(grant, now),
            GrantTarget::OwnerClient { owner, client_id } => {
                self.revoke_owner_client_sync(owner, client_id, now)
            }
        })
    }

    async fn cut_off(&self, scope: Bulk<'_>, _: &Initiator) -> Result<Option<CutOff>, StoreError> {
        Ok(self.cut_off_sync(scope))
    }

    async fn grants(&self, scope: Bulk<'_>, _: Option<u64>) -> Result<GrantPage, StoreError> {
        Ok(self.grants_sync(scope))
    }
}

impl super::ReplayCache for MemoryStore {
    fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: SystemTime,
    ) -> impl std::future::Future<Output = Result<bool, super::StoreError>> + Send {
        let now = self.inner.clock.now();
        std::future::ready(self.inner.replay.record_at(scope, id, until, now))
    }
}

#[cfg(test)]
mod tests;
