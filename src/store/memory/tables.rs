//! The memory store's tables: packed keys and entries, the interner, the hasher, and how
//! times are kept.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::store::{Confirmation, GrantId, TokenHash, TokenKind};

#[derive(Default)]
pub(super) struct Cutoffs {
    pub(super) subjects: HashMap<u32, u64>,
    pub(super) clients: HashMap<u32, u64>,
}

#[derive(Default)]
pub(super) struct Shard {
    pub(super) tokens: HashMap<TokenKey, TokenEntry, BuildHasherDefault<MixHasher>>,
    pub(super) grants: HashMap<GrantKey, GrantEntry, BuildHasherDefault<MixHasher>>,
    /// The confirmations of the bound tokens of `tokens`, and of them only: a bearer token
    /// costs nothing here (an empty map holds no heap), a bound one a slot of 53 bytes.
    /// Every write of `tokens` keeps it in step.
    bound: HashMap<TokenKey, Confirmation, BuildHasherDefault<MixHasher>>,
}

impl Shard {
    /// Holds a token, with its binding if any (replacing what the key held).
    pub(super) fn insert_token(
        &mut self,
        key: TokenKey,
        entry: TokenEntry,
        confirmation: Option<Confirmation>,
    ) {
        self.tokens.insert(key, entry);
        match confirmation {
            Some(confirmation) => {
                self.bound.insert(key, confirmation);
            }
            None if !self.bound.is_empty() => {
                self.bound.remove(&key);
            }
            None => {}
        }
    }

    /// A token held, with its binding.
    pub(super) fn token(&self, key: &TokenKey) -> Option<(TokenEntry, Option<Confirmation>)> {
        let entry = *self.tokens.get(key)?;
        let confirmation = match self.bound.is_empty() {
            true => None,
            false => self.bound.get(key).copied(),
        };
        Some((entry, confirmation))
    }

    /// Drops a token and its binding; `None` if it was not held.
    pub(super) fn remove_token(&mut self, key: &TokenKey) -> Option<TokenEntry> {
        let entry = self.tokens.remove(key)?;
        if !self.bound.is_empty() {
            self.bound.remove(key);
        }
        Some(entry)
    }

    /// Drops every token expired at `now` and its binding.
    pub(super) fn purge_tokens(&mut self, now: u32) {
        let Shard { tokens, bound, .. } = self;
        tokens.retain(|key, t| {
            let keep = t.expires_at > now;
            if !keep && !bound.is_empty() {
                bound.remove(key);
            }
            keep
        });
    }

    /// Gives memory back once most of a table has gone.
    pub(super) fn shrink(&mut self) {
        fn shrink<K: Eq + std::hash::Hash, V, H: std::hash::BuildHasher>(
            map: &mut HashMap<K, V, H>,
        ) {
            if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                map.shrink_to_fit();
            }
        }
        shrink(&mut self.tokens);
        shrink(&mut self.grants);
        shrink(&mut self.bound);
    }

    /// How many bound tokens are held.
    #[cfg(test)]
    pub(super) fn bound_len(&self) -> usize {
        self.bound.len()
    }
}

/// A token's key: the first 20 bytes (160 bits) of its SHA-256 [`TokenHash`].
///
/// 160 bits leave no practical room for a collision among the tokens held (about 2^-100 at
/// a billion tokens) nor for forging a token whose key matches one held (about 2^130 work
/// even against a billion of them: every key is a digest of 256 random bits, none chosen
/// by a client), and save 12 bytes a slot over the full digest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenKey(pub(super) [u8; 20]);

impl TokenKey {
    pub(super) fn of(token: &TokenHash) -> Self {
        let mut key = [0u8; 20];
        key.copy_from_slice(&token.as_bytes()[..20]);
        Self(key)
    }
}

impl std::hash::Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        crate::token::hash_digest(&self.0, state);
    }
}

/// A grant id as a map key, byte-aligned so that a slot of the grants table holds 21 bytes
/// instead of 24.
#[repr(C, packed)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct GrantKey(pub(super) u64);

impl GrantKey {
    pub(super) fn of(grant: GrantId) -> Self {
        Self(grant.as_u64())
    }

    pub(super) fn id(self) -> GrantId {
        GrantId::from_u64(self.0)
    }
}

impl std::hash::Hash for GrantKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

// Both entries are byte-aligned (`packed`): with their keys, a token's slot is 36 bytes
// and a grant's 28, instead of 40 and 32 aligned. Fields are only ever copied out, never
// borrowed. A token's kind shares a word with its lifetime, and a grant's revocation flag
// with its creation time.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub(super) struct TokenEntry {
    pub(super) grant: u64,
    pub(super) expires_at: u32,
    /// The top bit: a refresh token; the other 31: `expires_at - issued_at` in seconds, or
    /// [`UNKNOWN_ISSUE`] when the issue time is not known (the epoch).
    span: u32,
}

/// The span of a token whose issue time is not known (or is more than 68 years before
/// its expiry).
const UNKNOWN_ISSUE: u32 = 0x7fff_ffff;
const REFRESH: u32 = 0x8000_0000;

impl TokenEntry {
    pub(super) fn new(grant: GrantId, expires_at: u32, issued_at: u32, kind: TokenKind) -> Self {
        let lifetime = match issued_at {
            0 => UNKNOWN_ISSUE,
            issued => expires_at.saturating_sub(issued).min(UNKNOWN_ISSUE),
        };
        let kind = match kind {
            TokenKind::AccessToken => 0,
            TokenKind::RefreshToken => REFRESH,
        };
        Self {
            grant: grant.as_u64(),
            expires_at,
            span: kind | lifetime,
        }
    }

    pub(super) fn grant(&self) -> GrantId {
        GrantId::from_u64(self.grant)
    }

    pub(super) fn expires_at(&self) -> u32 {
        self.expires_at
    }

    pub(super) fn kind(&self) -> TokenKind {
        match self.span & REFRESH {
            0 => TokenKind::AccessToken,
            _ => TokenKind::RefreshToken,
        }
    }

    /// The issue time in seconds since the epoch; 0 when not known.
    pub(super) fn issued_at(&self) -> u32 {
        match self.span & !REFRESH {
            UNKNOWN_ISSUE => 0,
            lifetime => self.expires_at.saturating_sub(lifetime),
        }
    }
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
pub(super) struct GrantEntry {
    pub(super) client: u32,
    pub(super) owner: u32,
    pub(super) expires_at: u32,
    /// When its first token was issued, in µs since the epoch (bulk revocations'
    /// cut-offs), shifted left by one; the low bit: revoked.
    stamp: u64,
}

impl GrantEntry {
    pub(super) fn new(client: u32, owner: u32, expires_at: u32, created_us: u64) -> Self {
        Self {
            client,
            owner,
            expires_at,
            // µs since the epoch fit 63 bits for 290,000 years.
            stamp: created_us.min(u64::MAX >> 1) << 1,
        }
    }

    pub(super) fn revoked(&self) -> bool {
        self.stamp & 1 == 1
    }

    pub(super) fn revoke(&mut self) {
        self.stamp |= 1;
    }

    pub(super) fn created(&self) -> u64 {
        self.stamp >> 1
    }
}

/// Client ids and owner names, each kept once, by a number.
#[derive(Default)]
pub(super) struct Names(RwLock<Interner>);

#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Names {
    fn read(&self) -> RwLockReadGuard<'_, Interner> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of `name`, given one if it has none.
    pub(super) fn intern(&self, name: &Arc<str>) -> u32 {
        if let Some(&id) = self.read().ids.get(name) {
            return id;
        }
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = names.ids.get(name) {
            return id;
        }
        let id = names.names.len() as u32;
        names.names.push(name.clone());
        names.ids.insert(name.clone(), id);
        id
    }

    /// The number of `name`, if it has one.
    pub(super) fn id(&self, name: &str) -> Option<u32> {
        self.read().ids.get(name).copied()
    }

    /// The name of number `id`.
    pub(super) fn name(&self, id: u32) -> Arc<str> {
        self.read().names[id as usize].clone()
    }
}

/// A cheap hasher for keys that are already uniform (digests) or random ids.
#[derive(Default)]
pub(super) struct MixHasher(pub(super) u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave an entry half-written (every write is a
    // single insert or flag), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn to_secs(t: SystemTime) -> u32 {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    secs.min(u32::MAX as u64) as u32
}

pub(super) fn to_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros()
        .min(u64::MAX as u128) as u64
}

pub(super) fn from_secs(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}
