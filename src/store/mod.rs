//! What was issued, and what was revoked: the [`TokenStore`] trait and its stores.
//!
//! A store keeps, for each issued token, its kind, client, grant, resource owner, issue
//! time, expiry and the key it is bound to if any ([`Confirmation`]), keyed by the SHA-256
//! [`TokenHash`] of the token: a store never sees a token in clear, so a leaked store leaks
//! no usable token.
//!
//! - [`MemoryStore`]: the embedded default, for one node.
//! - `RedisStore` (feature `redis`): shared revocation state for many nodes.
//! - `PostgresStore` (feature `postgres`): shared and durable revocation state for many
//!   nodes, with an outbox of every change.
//!
//! Every store must pass the [`conformance`] suite.
//!
//! # Semantics once, backends below
//!
//! ```text
//!   TokenStore            what callers use: issue, inspect, revoke, bulk revocations
//!       |
//!   rules (this module)   which tokens are active, what a revocation covers, what a bulk
//!       |                 revocation counted, the one event of each change
//!   Backend               atomic primitives: register, lookup, revoke_token,
//!       |                 revoke_grants, cut_off, grants (a page of a scope's grants)
//!   MemoryStore           under its sharded locks
//!   RedisStore            one Lua script a primitive
//!   PostgresStore         one PL/pgSQL function a primitive, one transaction with its
//!                         outbox row
//! ```
//!
//! Every [`backend::Backend`] is a `TokenStore`: a new backend implements the primitives
//! and passes the conformance suite; it restates no rule but the ones its atomic steps must
//! apply themselves ([`backend::GrantState::is_live`], [`backend::TokenRule::scope_for`]),
//! and each step reports the [`backend::Facts`] of what it changed, the record a durable log
//! of changes would write in that same step.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::store::{
//!     GrantId, MemoryStore, RevocationOutcome, RevocationRequest, TokenHash, TokenKind,
//!     TokenRecord, TokenStore,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let grant = GrantId::random();
//! let expires_at = SystemTime::now() + Duration::from_secs(3600);
//! store
//!     .issue(
//!         TokenHash::of("refresh-1"),
//!         TokenRecord::new(TokenKind::RefreshToken, "app", grant, expires_at).with_owner("alice"),
//!     )
//!     .await
//!     .unwrap();
//! store
//!     .issue(
//!         TokenHash::of("access-1"),
//!         TokenRecord::new(TokenKind::AccessToken, "app", grant, expires_at).with_owner("alice"),
//!     )
//!     .await
//!     .unwrap();
//!
//! // Revoking the refresh token revokes its whole grant.
//! let outcome = store
//!     .revoke(&TokenHash::of("refresh-1"), RevocationRequest::new("app"))
//!     .await
//!     .unwrap();
//! assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
//! assert!(store.inspect(&TokenHash::of("access-1")).await.unwrap().is_none());
//! # }
//! ```

use std::{fmt, future::Future, sync::Arc, time::SystemTime};

use crate::events::{Events, Initiator, RevocationEvent};
use backend::GrantState;

#[cfg(feature = "redis")]
pub(crate) use crate::token::hex_string;
pub use crate::token::{Confirmation, GrantId, TokenHash, TokenKind};

pub mod backend;
mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod log;
mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
pub mod replay;
mod rules;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder, Purged, SCHEMA_VERSION};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisStore, RedisStoreBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use memory::MemoryStore;
pub use replay::{MemoryReplayCache, ReplayCache};

/// What a store knows of an issued token. It never holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Access or refresh token.
    pub kind: TokenKind,
    /// The client the token was issued to.
    pub client_id: Arc<str>,
    /// The grant the token belongs to.
    pub grant: GrantId,
    /// The resource owner who granted it, if any (none for `client_credentials`).
    pub owner: Option<Arc<str>>,
    /// When the token stops being valid.
    pub expires_at: SystemTime,
    /// When the token was issued, to the second ([RFC 7662 §2.2] `iat`); the Unix epoch when
    /// a store does not know it.
    ///
    /// [RFC 7662 §2.2]: https://www.rfc-editor.org/rfc/rfc7662#section-2.2
    pub issued_at: SystemTime,
    /// The key the token is bound to ([RFC 7800] `cnf`): a DPoP key's or a client
    /// certificate's thumbprint; `None` for a bearer token. Every store keeps it for the
    /// token's lifetime.
    ///
    /// [RFC 7800]: https://www.rfc-editor.org/rfc/rfc7800#section-3.1
    pub confirmation: Option<Confirmation>,
}

impl TokenRecord {
    /// A record without a resource owner nor a binding, issued now (by the system clock).
    pub fn new(
        kind: TokenKind,
        client_id: impl Into<Arc<str>>,
        grant: GrantId,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            kind,
            client_id: client_id.into(),
            grant,
            owner: None,
            expires_at,
            issued_at: SystemTime::now(),
            confirmation: None,
        }
    }

    /// Sets when the token was issued.
    #[must_use]
    pub fn with_issued_at(mut self, issued_at: SystemTime) -> Self {
        self.issued_at = issued_at;
        self
    }

    /// Sets the resource owner.
    #[must_use]
    pub fn with_owner(mut self, owner: impl Into<Arc<str>>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Binds the token to a key: a sender-constrained token ([RFC 9449], [RFC 8705]).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth_revoke::store::{Confirmation, GrantId, TokenKind, TokenRecord};
    ///
    /// let exp = SystemTime::now() + Duration::from_secs(600);
    /// let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), exp)
    ///     .with_confirmation(Confirmation::Jkt([1; 32]));
    /// assert_eq!(record.confirmation, Some(Confirmation::Jkt([1; 32])));
    /// ```
    ///
    /// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
    /// [RFC 8705]: https://www.rfc-editor.org/rfc/rfc8705
    #[must_use]
    pub fn with_confirmation(mut self, confirmation: Confirmation) -> Self {
        self.confirmation = Some(confirmation);
        self
    }
}

/// How much revoking an access token revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationScope {
    /// The token alone (the default for access tokens).
    #[default]
    Token,
    /// The token's whole grant: every access and refresh token of it.
    Grant,
}

/// A client's request to revoke one token.
#[derive(Debug, Clone, Copy)]
pub struct RevocationRequest<'a> {
    /// The authenticated client asking; a token of another client is never revoked.
    pub client_id: &'a str,
    /// The `token_type_hint`: the kind to look up first. Stores that index both kinds
    /// together may ignore it; the search always covers both kinds.
    pub hint: Option<TokenKind>,
    /// What revoking an access token revokes. A refresh token always revokes its grant.
    pub access_token_scope: RevocationScope,
    /// The token's `jti` when it is a JWT, for the [event](crate::events) that a
    /// revocation emits (a store keeps no `jti`).
    pub jti: Option<&'a str>,
}

impl<'a> RevocationRequest<'a> {
    /// A request by `client_id`, no hint, access tokens revoked alone.
    pub fn new(client_id: &'a str) -> Self {
        Self {
            client_id,
            hint: None,
            access_token_scope: RevocationScope::Token,
            jti: None,
        }
    }
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOutcome {
    /// The token was active and is now revoked.
    Revoked {
        /// The kind of the revoked token.
        kind: TokenKind,
        /// Whether the token alone or its whole grant was revoked.
        scope: RevocationScope,
    },
    /// The token is unknown, expired or already revoked: nothing to do.
    NotActive,
    /// The token was issued to another client: nothing was changed.
    IssuedToAnotherClient,
}

source_error! {
    /// The store could not be reached or failed; nothing may be assumed about the operation.
    pub struct StoreError("token store unavailable");
    /// Wraps the store's own error.
    pub fn new;
}

/// Why a token could not be registered.
#[derive(Debug)]
pub enum IssueError {
    /// The grant was revoked: no new token may join it.
    GrantRevoked,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssueError::GrantRevoked => f.write_str("the grant is revoked"),
            IssueError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for IssueError {}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        IssueError::Store(e)
    }
}

/// A client that holds active grants from a resource owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerGrants {
    /// The client.
    pub client_id: Arc<str>,
    /// How many active grants it holds from the owner.
    pub grants: usize,
}

/// The revocation state of issued tokens.
///
/// Implementations are cheap to clone (share their state) and every operation that changes
/// several records does so atomically: no reader ever sees half a cascade, and a token
/// registered into a grant while that grant is revoked is either refused or revoked with it.
///
/// Every revocation a store confirms is emitted on its [`events`](Self::events), by the store
/// itself, so that nothing revokes without an event.
///
/// Bulk revocations ([`revoke_subject`](Self::revoke_subject),
/// [`revoke_client`](Self::revoke_client)) are one write whatever the number of tokens: a
/// cut-off that refuses every grant of the scope created at or before it. A grant is created
/// when its first token is registered ([`TokenRecord::issued_at`], to the microsecond).
pub trait TokenStore: Clone + Send + Sync + 'static {
    /// The events of this store: every confirmed revocation, on every node sharing it.
    fn events(&self) -> &Events;

    /// Registers a newly issued token. Fails with [`IssueError::GrantRevoked`] when the
    /// token's grant was revoked.
    fn issue(
        &self,
        token: TokenHash,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), IssueError>> + Send;

    /// The record of an active token: known, not revoked, its grant not revoked, not expired.
    fn inspect(
        &self,
        token: &TokenHash,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// Revokes a token on behalf of a client, atomically: checks that the token is active
    /// and belongs to the client, then revokes it (a refresh token: its whole grant).
    fn revoke(
        &self,
        token: &TokenHash,
        request: RevocationRequest<'_>,
    ) -> impl Future<Output = Result<RevocationOutcome, StoreError>> + Send;

    /// Revokes a whole grant: every token of it, and every token later registered into it.
    /// The event names [`Initiator::System`].
    fn revoke_grant(&self, grant: GrantId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every grant `client_id` holds from `owner`; returns how many were active.
    /// One event per grant revoked.
    fn revoke_client_for_owner(
        &self,
        owner: &str,
        client_id: &str,
        by: Initiator,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Revokes every grant `subject` gave, to any client, in one write (a cut-off); returns
    /// how many were active. One event.
    fn revoke_subject(
        &self,
        subject: &str,
        by: Initiator,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Revokes every grant of `client_id`, whoever gave it (its own `client_credentials`
    /// grants included), in one write (a cut-off); returns how many were active. One event.
    fn revoke_client(
        &self,
        client_id: &str,
        by: Initiator,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The clients that hold active grants from `owner`, sorted by client id.
    fn clients_of_owner(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<OwnerGrants>, StoreError>> + Send;

    /// The retained revocations still in force, oldest first: every change of the store's
    /// durable log whose `expires_at` is still ahead (what it revoked has not expired yet)
    /// or absent (a bulk revocation's cut-off). What a new resource server reads to start
    /// with the revocations made before it (`set::snapshot`, feature
    /// `set`); each event is built by the same rules as the one emitted when the change was
    /// made.
    ///
    /// The default is `Ok` and empty: a store without a durable log of changes
    /// ([`MemoryStore`]) has nothing that survives it anyway, and the receivers that polled
    /// or were pushed its events since it started know them all. `PostgresStore` reads its
    /// outbox (`revocation_log`, kept for its `log_retention`, a day by default: set it to
    /// at least the longest token lifetime), `RedisStore` its log stream (`{P}:log`, kept a
    /// day).
    fn history(&self) -> impl Future<Output = Result<Vec<RevocationEvent>, StoreError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    /// The revocation state of the grant of `token`, live or not, with the cut-offs that
    /// apply to it; `None` when the store holds neither the token nor its grant, or does
    /// not tell (the default). An issuer that writes whole-second issue times reads it to
    /// keep a token clear of a cut-off made earlier in the same second
    /// ([`JwtAccessTokens::issue`](crate::jwt::JwtAccessTokens::issue)). Every
    /// [`Backend`](backend::Backend) tells.
    fn grant_state(
        &self,
        token: &TokenHash,
    ) -> impl Future<Output = Result<Option<GrantState>, StoreError>> + Send {
        let _ = token;
        std::future::ready(Ok(None))
    }

    /// Makes a new token ([`generate_token`]), registers it with `record`, and returns it:
    /// what a token endpoint does for each token it issues. Only the token's hash reaches
    /// the store.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_oauth_revoke::store::{
    ///     GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryStore::new();
    /// let expires_at = SystemTime::now() + Duration::from_secs(3600);
    /// let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires_at);
    /// let token = store.mint(record).await.unwrap();
    /// assert_eq!(token.len(), 43);
    /// assert!(store.inspect(&TokenHash::of(&token)).await.unwrap().is_some());
    /// # }
    /// ```
    fn mint(&self, record: TokenRecord) -> impl Future<Output = Result<String, IssueError>> + Send {
        let token = generate_token();
        let hash = TokenHash::of(&token);
        async move { self.issue(hash, record).await.map(|()| token) }
    }
}

/// A new opaque token: 256 random bits from a cryptographically secure generator (rand's
/// `ThreadRng`, seeded and reseeded by the operating system), as 43 characters of unpadded
/// base64url ([RFC 4648 §5]): safe in URLs, forms and headers.
///
/// [RFC 4648 §5]: https://www.rfc-editor.org/rfc/rfc4648#section-5
pub fn generate_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl<T: TokenStore> TokenStore for Arc<T> {
    forward_to_pointee! {
        fn issue(&self, token: TokenHash, record: TokenRecord)
            -> impl Future<Output = Result<(), IssueError>> + Send;
        fn inspect(&self, token: &TokenHash)
            -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;
        fn revoke(&self, token: &TokenHash, request: RevocationRequest<'_>)
            -> impl Future<Output = Result<RevocationOutcome, StoreError>> + Send;
        fn events(&self) -> &Events;
        fn revoke_grant(&self, grant: GrantId) -> impl Future<Output = Result<(), StoreError>> + Send;
        fn revoke_client_for_owner(&self, owner: &str, client_id: &str, by: Initiator)
            -> impl Future<Output = Result<usize, StoreError>> + Send;
        fn revoke_subject(&self, subject: &str, by: Initiator)
            -> impl Future<Output = Result<usize, StoreError>> + Send;
        fn revoke_client(&self, client_id: &str, by: Initiator)
            -> impl Future<Output = Result<usize, StoreError>> + Send;
        fn clients_of_owner(&self, owner: &str)
            -> impl Future<Output = Result<Vec<OwnerGrants>, StoreError>> + Send;
        fn history(&self) -> impl Future<Output = Result<Vec<RevocationEvent>, StoreError>> + Send;
        fn grant_state(&self, token: &TokenHash)
            -> impl Future<Output = Result<Option<GrantState>, StoreError>> + Send;
    }
}
