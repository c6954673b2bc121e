//! The primitives a store backend carries out atomically, and the facts they report.
//!
//! A backend is where state lives: memory under its locks, Redis in one script each. It does
//! not decide what a revocation means: the [`TokenStore`](super::TokenStore) that every
//! [`Backend`] gets does, once for all of them:
//!
//! - which tokens are active ([`Held::is_active`], [`GrantState::is_live`]);
//! - what revoking a token covers ([`TokenRule::scope_for`]);
//! - which grants a bulk revocation counts ([`CutOff::counts`]);
//! - the [event](crate::events) each change becomes, emitted in one place.
//!
//! What a backend must do atomically is as small as the guarantees allow: register a token
//! unless its grant is revoked; revoke a token only if it is active and its client's (the
//! check and the write in one step, so that no concurrent refresh slips between them);
//! revoke grants; write a cut-off. Each step reports the [`Facts`] of what it changed, the
//! same facts a durable log of changes would record in that same step.

use std::{future::Future, sync::Arc, time::SystemTime};

use crate::events::{Events, Initiator, RevocationEvent};

use super::{GrantId, RevocationScope, StoreError, TokenHash, TokenKind, TokenRecord};

/// What a store backend does atomically. Every `Backend` is a
/// [`TokenStore`](super::TokenStore).
///
/// Each method is one atomic step of the backend (one critical section, one script, one
/// statement or transaction): no reader sees half of it, and two steps never interleave on
/// the same token or grant. The conformance suite
/// ([`store::conformance`](super::conformance), feature `conformance`) checks a backend
/// through the `TokenStore` it gets.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Where the changes of this backend are announced, on this node.
    fn events(&self) -> &Events;

    /// The current time, as this backend reads it (tokens expire by it).
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Registers a token into its grant, creating the grant with its first token (created
    /// now, to the microsecond, for cut-offs). Returns `false`, registering nothing, when
    /// the grant is revoked or covered by a cut-off ([`GrantState::is_live`]).
    fn register(
        &self,
        token: TokenHash,
        record: TokenRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What is held of a token and of its grant, active or not; `None` when neither the
    /// token nor its grant is held. A read: no atomicity beyond a consistent view.
    fn lookup(
        &self,
        token: &TokenHash,
    ) -> impl Future<Output = Result<Option<Held>, StoreError>> + Send;

    /// Revokes a token if it is active and the rule's client's: checks and writes in one
    /// step. Revokes the grant or the token alone as [`TokenRule::scope_for`] says.
    fn revoke_token(
        &self,
        token: &TokenHash,
        rule: TokenRule<'_>,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// Revokes grants, in one step: one grant (recorded as revoked even if never seen, so
    /// that no token joins it later), or every grant a client holds from an owner. Returns
    /// the facts of each grant that was live until then. `by` is for backends that record
    /// or announce the change in the same step.
    fn revoke_grants(
        &self,
        target: GrantTarget<'_>,
        by: &Initiator,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Facts>, StoreError>> + Send;

    /// Writes a cut-off for a subject or a client: every grant of the scope created at or
    /// before it is revoked. One write, whatever the number of grants. `None` when the
    /// backend knows the name holds no grant (nothing is then written).
    ///
    /// `by` is for backends that announce the change to other nodes in the same step.
    fn cut_off(
        &self,
        scope: Bulk<'_>,
        by: &Initiator,
    ) -> impl Future<Output = Result<Option<CutOff>, StoreError>> + Send;

    /// A page of the grants of a subject or of a client, live or not, from `cursor` (`None`
    /// for the first page). A read, for counting and listing.
    fn grants(
        &self,
        scope: Bulk<'_>,
        cursor: Option<u64>,
    ) -> impl Future<Output = Result<GrantPage, StoreError>> + Send;

    /// The retained changes still in force, oldest first: what
    /// [`TokenStore::history`](super::TokenStore::history) returns. The default is none: a
    /// backend without a durable log of changes keeps nothing that outlives it.
    fn history(&self) -> impl Future<Output = Result<Vec<RevocationEvent>, StoreError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }
}

/// A token and its grant, as a backend holds them.
#[derive(Debug, Clone)]
pub struct Held {
    /// The token's record.
    pub record: TokenRecord,
    /// Its grant's state.
    pub grant: GrantState,
}

impl Held {
    /// Whether the token is active at `now`: not expired, its grant live.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.record.expires_at > now && self.grant.is_live(now)
    }
}

/// The revocation state of a grant, and the cut-offs that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantState {
    /// Revoked by a token's or a grant's revocation.
    pub revoked: bool,
    /// When its last-expiring token expires.
    pub expires_at: SystemTime,
    /// When its first token was registered, in µs since the Unix epoch.
    pub created_us: u64,
    /// Its subject's cut-off (µs since the epoch), if any.
    pub subject_cut_off: Option<u64>,
    /// Its client's cut-off (µs since the epoch), if any.
    pub client_cut_off: Option<u64>,
}

impl GrantState {
    /// Whether a bulk revocation covers the grant: it was created at or before its
    /// subject's or its client's cut-off.
    pub fn is_cut_off(&self) -> bool {
        let covers = |cut: Option<u64>| cut.is_some_and(|t| self.created_us <= t);
        covers(self.subject_cut_off) || covers(self.client_cut_off)
    }

    /// Whether the grant is live at `now`: not revoked, not expired, not cut off.
    pub fn is_live(&self, now: SystemTime) -> bool {
        !self.revoked && self.expires_at > now && !self.is_cut_off()
    }
}

/// What [`Backend::revoke_token`] is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct TokenRule<'a> {
    /// Only a token of this client is revoked.
    pub client_id: &'a str,
    /// What revoking an access token covers.
    pub access_token_scope: RevocationScope,
    /// The time the token must be active at.
    pub now: SystemTime,
    /// The token's `jti` when it is a JWT, for backends that record or announce the change
    /// in the same step.
    pub jti: Option<&'a str>,
    /// Whether anyone observes events: when not, a backend may leave the names out of the
    /// [`Facts`] it reports.
    pub report: bool,
}

impl TokenRule<'_> {
    /// What revoking a token of `kind` covers: a refresh token always its grant, an access
    /// token what the request asks ([RFC 7009 §2.1]).
    ///
    /// [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
    pub fn scope_for(&self, kind: TokenKind) -> RevocationScope {
        match kind {
            TokenKind::RefreshToken => RevocationScope::Grant,
            TokenKind::AccessToken => self.access_token_scope,
        }
    }
}

/// What [`Backend::revoke_token`] did.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Unknown, expired or already revoked: nothing changed.
    NotActive,
    /// Another client's token: nothing changed.
    IssuedToAnotherClient,
    /// Revoked.
    Revoked {
        /// The kind of the token.
        kind: TokenKind,
        /// What the step changed.
        facts: Facts,
    },
}

/// The facts of one revocation a backend carried out: what a log of changes records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The token alone, or its whole grant.
    pub scope: RevocationScope,
    /// The grant.
    pub grant: GrantId,
    /// The grant's client (may be left out when [`TokenRule::report`] is false).
    pub client_id: Option<Arc<str>>,
    /// The grant's resource owner (likewise).
    pub owner: Option<Arc<str>>,
    /// When what was revoked would have expired anyway: the token's expiry, or the grant's.
    pub expires_at: SystemTime,
}

/// The grants [`Backend::revoke_grants`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum GrantTarget<'a> {
    /// One grant.
    One(GrantId),
    /// Every grant `client_id` holds from `owner`.
    OwnerClient {
        /// The resource owner.
        owner: &'a str,
        /// The client.
        client_id: &'a str,
    },
}

/// The scope of a bulk revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk<'a> {
    /// Every grant a resource owner gave.
    Subject(&'a str),
    /// Every grant of a client.
    Client(&'a str),
}

impl<'a> Bulk<'a> {
    /// The subject's or the client's name.
    pub fn name(self) -> &'a str {
        match self {
            Bulk::Subject(name) | Bulk::Client(name) => name,
        }
    }
}

/// A cut-off that [`Backend::cut_off`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutOff {
    /// The cut-off written, in µs since the epoch.
    pub at_us: u64,
    /// The scope's cut-off before it, if any.
    pub previous_us: Option<u64>,
    /// Whether the backend already announced the change to other nodes (in the same step).
    pub announced: bool,
}

impl CutOff {
    /// Whether this cut-off revoked the grant, for counting what a bulk revocation of
    /// `scope` did: the grant was live at `now` but for it, created after the previous
    /// cut-off of the scope and at or before this one, and not covered by an earlier
    /// cut-off of the other scope.
    pub fn counts(&self, grant: &GrantState, scope: Bulk<'_>, now: SystemTime) -> bool {
        let created = grant.created_us;
        let other = match scope {
            Bulk::Subject(_) => grant.client_cut_off,
            Bulk::Client(_) => grant.subject_cut_off,
        };
        !grant.revoked
            && grant.expires_at > now
            && created <= self.at_us
            && self.previous_us.is_none_or(|p| created > p)
            && !other.is_some_and(|o| created <= o && o < self.at_us)
    }
}

/// A page of [`Backend::grants`].
#[derive(Debug, Clone, Default)]
pub struct GrantPage {
    /// The grants of the page, each with its client.
    pub grants: Vec<(Arc<str>, GrantState)>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<u64>,
}
