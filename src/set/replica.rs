//! What a resource server in another process knows of revocations: a local replica fed by
//! SETs, and the guard that checks both kinds of token with it.
//!
//! [`Revocations`] keeps the revoked JWT ids, grants, and the subjects' and clients'
//! cut-offs that [`ReceivedEvent`]s announce: a JWT id or a grant until what was revoked
//! would have expired anyway (the event's `expires_at`: a JWT's own `exp`, a grant's latest
//! token's), else, and a cut-off always, for [`Revocations::horizon`] (default a day: set
//! it to at least the longest access token lifetime). Looking a JWT up costs no network
//! round trip.
//!
//! [`RemoteTokenCheck`] is the bearer guard's [`TokenCheck`] for such a server: a JWT is
//! checked locally with the issuer's keys ([`crate::jwt::validate`]: signature, `typ`,
//! `iss`, `exp`, `nbf`; the key set is refetched on an unknown `kid`) and then against the
//! replica; an opaque token is introspected by a [`RemoteGuard`], whose cache the same
//! events invalidate. When the keys cannot be read, a JWT is not confirmed
//! ([`TokenCheckError`]: 503), never accepted.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use super::{receive::SetVerifier, ReceivedEvent, ReceivedKind};
use crate::{
    guard::{remote::RemoteGuard, TokenCheck, TokenCheckError},
    jwt::{looks_like_jwt, validate, AccessClaims, VerifiedJwts},
    store::{GrantId, TokenHash, TokenRecord},
};

#[derive(Default)]
struct State {
    jtis: HashMap<String, SystemTime>,
    grants: HashMap<GrantId, SystemTime>,
    subjects: HashMap<String, (SystemTime, SystemTime)>,
    clients: HashMap<String, (SystemTime, SystemTime)>,
    next_purge: Option<SystemTime>,
}

/// The revocations a resource server was told of; see the [module docs](self). Cheap to
/// clone.
#[derive(Clone)]
pub struct Revocations {
    state: Arc<Mutex<State>>,
    horizon: Duration,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("entries", &self.len())
            .finish()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600))
    }
}

impl Revocations {
    /// A replica keeping each entry for `horizon`.
    pub fn new(horizon: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            horizon,
        }
    }

    /// How long an entry is kept.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        let s = self.lock();
        s.jtis.len() + s.grants.len() + s.subjects.len() + s.clients.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records what an event revoked.
    pub fn apply(&self, event: &ReceivedEvent) {
        let now = SystemTime::now();
        let until = event.expires_at.unwrap_or(now + self.horizon);
        let mut s = self.lock();
        if s.next_purge.is_none_or(|t| t <= now) {
            s.jtis.retain(|_, u| *u > now);
            s.grants.retain(|_, u| *u > now);
            s.subjects.retain(|_, (_, u)| *u > now);
            s.clients.retain(|_, (_, u)| *u > now);
            s.next_purge = Some(now + Duration::from_secs(60));
        }
        if let Some(jti) = &event.jti {
            s.jtis.insert(jti.clone(), until);
        }
        match event.kind {
            ReceivedKind::Token => {}
            ReceivedKind::Grant => {
                if let Some(grant) = event.grant {
                    s.grants.insert(grant, until);
                }
            }
            ReceivedKind::Subject => {
                if let Some(user) = &event.user {
                    let until = now + self.horizon;
                    let entry = s.subjects.entry(user.clone()).or_insert((event.at, until));
                    *entry = (entry.0.max(event.at), until);
                }
            }
            ReceivedKind::Client => {
                if let Some(client) = &event.client_id {
                    let until = now + self.horizon;
                    let entry = s.clients.entry(client.clone()).or_insert((event.at, until));
                    *entry = (entry.0.max(event.at), until);
                }
            }
        }
    }

    /// Whether a JWT with these claims was revoked: its `jti`, its grant, or a cut-off of
    /// its user or client at or after its `iat`.
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        let s = self.lock();
        let iat = claims.issued_at();
        s.jtis.contains_key(&claims.jti)
            || claims.grant().is_some_and(|g| s.grants.contains_key(&g))
            || s.subjects.get(&claims.sub).is_some_and(|(t, _)| iat <= *t)
            || s.clients
                .get(&claims.client_id)
                .is_some_and(|(t, _)| iat <= *t)
    }
}

/// The bearer guard's check for a resource server elsewhere; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RemoteTokenCheck {
    verifier: SetVerifier,
    revocations: Revocations,
    introspection: RemoteGuard,
    audience: Option<Arc<str>>,
    verified: VerifiedJwts,
}

impl RemoteTokenCheck {
    /// JWTs checked with the keys `verifier` reads and against `revocations`; opaque tokens
    /// by `introspection`.
    pub fn new(
        verifier: SetVerifier,
        revocations: Revocations,
        introspection: RemoteGuard,
    ) -> Self {
        Self {
            verifier,
            revocations,
            introspection,
            audience: None,
            verified: VerifiedJwts::default(),
        }
    }

    /// Requires JWTs to name `audience` in `aud`.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<Arc<str>>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Applies an event to the replica and to the introspection cache: what a
    /// [`PushReceiver`](super::receive::PushReceiver) or [`Poller`](super::receive::Poller)
    /// handler calls.
    pub fn apply(&self, event: &ReceivedEvent) {
        self.revocations.apply(event);
        let guard = &self.introspection;
        match event.kind {
            ReceivedKind::Token => {
                if let Some(token) = &event.token {
                    guard.invalidate_token(token);
                }
            }
            ReceivedKind::Grant => {}
            ReceivedKind::Subject => {
                if let Some(user) = &event.user {
                    guard.invalidate_subject(user);
                }
            }
            ReceivedKind::Client => {
                if let Some(client) = &event.client_id {
                    guard.invalidate_client(client);
                }
            }
        }
        if let Some(grant) = event.grant {
            guard.invalidate_grant(grant);
        }
    }
}

impl TokenCheck for RemoteTokenCheck {
    fn check(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send + 'static {
        use futures_util::future::Either;
        // A token that verified before (only a verified JWT is in the cache, so its shape
        // needs no second look): no signature check, the revocations still are; answered
        // at once, without copying the token or the claims.
        let hash = token.starts_with("eyJ").then(|| TokenHash::of(token));
        if let Some(verified) = hash.as_ref().and_then(|h| self.verified.get(h)) {
            let active = !self.revocations.is_revoked(&verified.claims);
            return Either::Left(Either::Right(std::future::ready(Ok(
                active.then(|| verified.record.clone())
            ))));
        }
        let (Some(hash), true) = (hash, looks_like_jwt(token)) else {
            return Either::Left(Either::Left(self.introspection.check(token)));
        };
        let this = self.clone();
        let token = token.to_owned();
        Either::Right(async move {
            let issuer = this.verifier.issuer().to_owned();
            let keys = this.verifier.keys();
            if keys.is_empty() || keys.names_unknown_key(&token) {
                if let Err(e) = this.verifier.refresh_keys(false).await {
                    tracing::warn!(error = %e, "cannot read the issuer's keys");
                }
            }
            let keys = this.verifier.keys();
            if keys.is_empty() {
                return Err(TokenCheckError);
            }
            let verified = validate(&keys, &token, &issuer, this.audience.as_deref())
                .map(|claims| this.verified.insert(hash, claims));
            match verified {
                Ok(v) if !this.revocations.is_revoked(&v.claims) => Ok(Some(v.record.clone())),
                _ => Ok(None),
            }
        })
    }
}
