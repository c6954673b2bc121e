//! Revocation events: every revocation a store confirms, as a typed value its subscribers
//! receive.
//!
//! A [`TokenStore`](crate::store::TokenStore) emits one [`RevocationEvent`] for every change
//! it confirms, whatever asked for it: the revocation endpoint, a refresh token's cascade,
//! the resource owner's service, a bulk revocation, or code calling the store directly. So
//! nothing revokes without an event. An event says what was revoked, for which client and
//! user, on whose initiative and when; never a token's value (a single token is named by
//! its [`TokenHash`]).
//!
//! Subscribers are in-process ([`Events::subscribe`]): a bounded buffer each, so that a slow
//! or absent subscriber never slows a revocation; one that falls behind is told how many
//! events it missed ([`Lagged`]) and should then drop what it caches. With
//! [`RedisStore`](crate::store::RedisStore) every node's subscribers receive every node's
//! events: the script that revokes also publishes the facts of its change, and the other
//! nodes build the same event from them. The node that revoked emits its own event before
//! it answers, whatever the backend: every event is built by the store's rules, in one
//! place, from the facts the backend's atomic step reported
//! ([`store::backend`](crate::store::backend)).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::{
//!     events::Revoked,
//!     store::{GrantId, MemoryStore, TokenKind, TokenRecord, TokenStore},
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let mut events = store.events().subscribe();
//! let grant = GrantId::random();
//! let exp = SystemTime::now() + Duration::from_secs(60);
//! store.mint(TokenRecord::new(TokenKind::RefreshToken, "app", grant, exp)).await.unwrap();
//!
//! store.revoke_grant(grant).await.unwrap();
//! let event = events.recv().await.unwrap().expect("no event missed");
//! assert_eq!(event.revoked, Revoked::Grant { grant });
//! assert_eq!(event.client_id.as_deref(), Some("app"));
//! # }
//! ```

use std::{
    fmt,
    sync::{Arc, RwLock},
    time::SystemTime,
};

use tokio::sync::broadcast;

use crate::token::{GrantId, TokenHash, TokenKind};

/// What one event revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// One access token, alone; its grant lives on.
    Token {
        /// The token's hash (never its value).
        token: TokenHash,
        /// Its kind.
        kind: TokenKind,
        /// The grant it belongs to.
        grant: GrantId,
    },
    /// A whole grant: every access and refresh token of it, and any registered later.
    Grant {
        /// The grant.
        grant: GrantId,
    },
    /// Every grant [`RevocationEvent::subject`] gave before [`RevocationEvent::at`], to any
    /// client: one write, a cut-off.
    Subject,
    /// Every grant of [`RevocationEvent::client_id`] made before [`RevocationEvent::at`],
    /// whoever gave it (its own `client_credentials` grants included): one write, a cut-off.
    Client,
}

impl Revoked {
    /// The grant this event is about, if it is about one.
    pub fn grant(&self) -> Option<GrantId> {
        match self {
            Revoked::Token { grant, .. } | Revoked::Grant { grant } => Some(*grant),
            _ => None,
        }
    }
}

/// Who asked for a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiator {
    /// The client the token was issued to (RFC 7009), by its id.
    Client(Arc<str>),
    /// The resource owner, by name.
    Owner(Arc<str>),
    /// An administrator, by the id of the client that has the admin capability.
    Admin(Arc<str>),
    /// The system itself: a cascade or a direct call to the store.
    System,
}

impl Initiator {
    /// `policy` (a client's own request), `user`, `admin` or `system`: the CAEP
    /// `initiating_entity` that fits.
    pub fn entity(&self) -> &'static str {
        match self {
            Initiator::Client(_) => "policy",
            Initiator::Owner(_) => "user",
            Initiator::Admin(_) => "admin",
            Initiator::System => "system",
        }
    }
}

/// One confirmed revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// What was revoked.
    pub revoked: Revoked,
    /// The client of the revoked tokens; `None` for [`Revoked::Subject`].
    pub client_id: Option<Arc<str>>,
    /// The `jti` of the revoked token, when it is a JWT.
    pub jti: Option<Arc<str>>,
    /// The resource owner (user) of the revoked tokens, if any.
    pub subject: Option<Arc<str>>,
    /// Who asked.
    pub initiator: Initiator,
    /// When the store confirmed it.
    pub at: SystemTime,
    /// When what was revoked would have expired anyway (a token's `exp`, a grant's latest
    /// token's), if the store knows: a replica of revocations may forget it then.
    pub expires_at: Option<SystemTime>,
    /// Whether another node confirmed it (a store shared by several nodes relays their
    /// events): each node's caches apply every event, but only the node that revoked should
    /// notify the outside world once.
    pub relayed: bool,
}

/// A subscriber fell behind: this many events were dropped for it. It should forget what
/// it cached, since any of them may have revoked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} revocation events were missed", self.0)
    }
}

impl std::error::Error for Lagged {}

type Sink = Arc<dyn Fn(&RevocationEvent) + Send + Sync>;

/// The events of one store: cheap to clone, shared by its clones.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<RevocationEvent>>,
    sinks: Arc<RwLock<Vec<Sink>>>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Events {
    /// How many events a subscriber may fall behind by default before it is told
    /// [`Lagged`].
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A hub whose subscribers may each fall `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
            sinks: Arc::default(),
        }
    }

    /// Calls `sink` with every event, synchronously, before the operation that emitted it
    /// returns (for a store shared by several nodes: as soon as this node hears of it). For
    /// what must see an event before a revocation is answered, e.g. queueing it for polling;
    /// `sink` must be quick and never block.
    pub fn attach(&self, sink: impl Fn(&RevocationEvent) + Send + Sync + 'static) {
        self.sinks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(sink));
    }

    /// Whether anything listens: a subscriber or a sink. Stores may skip building an event
    /// nobody would receive.
    pub fn is_observed(&self) -> bool {
        self.tx.receiver_count() > 0
            || !self
                .sinks
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// A new subscriber: it receives every event emitted from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Delivers an event to every subscriber; never waits. Stores call this once the
    /// revocation is confirmed.
    pub fn emit(&self, event: RevocationEvent) {
        let sinks = self.sinks.read().unwrap_or_else(|e| e.into_inner()).clone();
        for sink in &sinks {
            sink(&event);
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// How many subscribers there are.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// A subscriber's handle: yields events in the order the store emitted them.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<RevocationEvent>>,
}

impl Subscription {
    /// The next event; `Err(Lagged(n))` when `n` were missed (the next call goes on with
    /// the oldest kept); `None` once the store and all its clones are gone.
    pub async fn recv(&mut self) -> Option<Result<Arc<RevocationEvent>, Lagged>> {
        match self.rx.recv().await {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(Lagged(n))),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Result<Arc<RevocationEvent>, Lagged>> {
        match self.rx.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(Lagged(n))),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RevocationEvent {
        RevocationEvent {
            revoked: Revoked::Grant {
                grant: GrantId::from_u64(1),
            },
            client_id: Some("c".into()),
            jti: None,
            subject: None,
            initiator: Initiator::System,
            at: SystemTime::UNIX_EPOCH,
            expires_at: None,
            relayed: false,
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged_and_never_blocks_emit() {
        let events = Events::new(2);
        let mut sub = events.subscribe();
        for _ in 0..5 {
            events.emit(event());
        }
        assert_eq!(sub.recv().await.unwrap(), Err(Lagged(3)));
        assert!(sub.recv().await.unwrap().is_ok());
        assert!(sub.recv().await.unwrap().is_ok());
        assert!(sub.try_recv().is_none());
    }
}
