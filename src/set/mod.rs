//! Revocation events as Security Event Tokens ([RFC 8417]), delivered by push ([RFC 8935])
//! and poll ([RFC 8936]), and received by resource servers.
//!
//! - [`SetIssuer`] renders a [`RevocationEvent`] as a signed SET (JWS `EdDSA`, `typ`
//!   `secevent+jwt`, the key's `kid`; the key is published with
//!   [`SigningKey::jwks`](crate::jose::SigningKey::jwks)).
//! - [`poll::SetQueue`] keeps SETs for [RFC 8936] polling, served by [`poll::PollService`].
//! - [`push::Pusher`] POSTs them to receivers, at least once, in order, retried with
//!   back-off, in bounded memory, never blocking a revocation.
//! - [`deliver`] wires a store's events to both.
//! - [`snapshot::SnapshotService`] serves a store's [history](crate::store::TokenStore::history)
//!   as SETs, for a resource server that starts after the revocations.
//! - [`receive`] is the resource server's side: [`receive::SetVerifier`] checks SETs
//!   against the issuer's JWKS, [`receive::PushReceiver`] takes pushes,
//!   [`receive::Poller`] polls, [`receive::fetch_snapshot`] reads a snapshot.
//!
//! # The SET
//!
//! ```json
//! {
//!   "iss": "https://as.example", "jti": "…", "iat": 1767225600,
//!   "sub_id": {"format": "complex",
//!              "application": {"format": "opaque", "id": "client id"},
//!              "user": {"format": "opaque", "id": "user"},
//!              "grant": {"format": "opaque", "id": "16 hex digits"},
//!              "jti": {"format": "opaque", "id": "the JWT's jti"},
//!              "token": {"format": "opaque", "id": "SHA-256 of the token, hex"}},
//!   "events": {"urn:tower-oauth-revoke:secevent:token-revoked": {
//!       "subject": {… the same as sub_id …},
//!       "event_timestamp": 1767225600.123456,
//!       "initiating_entity": "policy" | "user" | "admin" | "system",
//!       "expires_at": 1767229200,
//!       "token_type": "access_token"}}
//! }
//! ```
//!
//! One event per SET; members of the subject are present when they apply. The event types:
//!
//! | type | what was revoked | subject members |
//! |---|---|---|
//! | [`TOKEN_REVOKED`] | one access token, alone | `application`, `user`?, `grant`, and `token` (an opaque token's digest) or `jti` (a JWT) |
//! | [`GRANT_REVOKED`] | a grant: all its access and refresh tokens | `application`, `user`?, `grant`, `jti` (when a JWT's revocation took its grant) |
//! | [`SUBJECT_REVOKED`] | every grant the user gave before `event_timestamp`, to any client | `user` |
//! | [`CLIENT_REVOKED`] | every grant of the client made before `event_timestamp` | `application` |
//!
//! A token's value is never in a SET; `token` is its SHA-256, which only a holder of the
//! token can match.
//!
//! [RFC 8417]: https://www.rfc-editor.org/rfc/rfc8417
//! [RFC 8935]: https://www.rfc-editor.org/rfc/rfc8935
//! [RFC 8936]: https://www.rfc-editor.org/rfc/rfc8936

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Map, Value};

use crate::{
    events::{Lagged, RevocationEvent, Revoked, Subscription},
    jose::{JoseError, SigningKey},
    store::{GrantId, TokenHash},
};

pub mod compact;
mod follow;
pub mod poll;
pub mod push;
pub mod receive;
mod receiver_auth;
pub mod replica;
pub mod snapshot;

/// One access token was revoked alone.
pub const TOKEN_REVOKED: &str = "urn:tower-oauth-revoke:secevent:token-revoked";
/// A grant was revoked, with every token of it.
pub const GRANT_REVOKED: &str = "urn:tower-oauth-revoke:secevent:grant-revoked";
/// Every grant a user gave before a time was revoked.
pub const SUBJECT_REVOKED: &str = "urn:tower-oauth-revoke:secevent:subject-revoked";
/// Every grant of a client made before a time was revoked.
pub const CLIENT_REVOKED: &str = "urn:tower-oauth-revoke:secevent:client-revoked";

/// The media type of a SET ([RFC 8417 §2.3]).
///
/// [RFC 8417 §2.3]: https://www.rfc-editor.org/rfc/rfc8417#section-2.3
pub const CONTENT_TYPE: &str = "application/secevent+jwt";

/// The JWS `typ` of a SET.
pub const TYP: &str = "secevent+jwt";

/// A signed SET and its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// The SET's unique id.
    pub jti: Arc<str>,
    /// The compact JWS.
    pub jws: Arc<str>,
}

/// Renders revocation events as SETs signed by one key for one issuer.
#[derive(Debug, Clone)]
pub struct SetIssuer {
    issuer: Arc<str>,
    key: SigningKey,
}

fn opaque(id: &str) -> Value {
    json!({"format": "opaque", "id": id})
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as f64
        / 1e6
}

impl SetIssuer {
    /// SETs with `iss` = `issuer`, signed with `key`.
    pub fn new(issuer: impl Into<Arc<str>>, key: SigningKey) -> Self {
        Self {
            issuer: issuer.into(),
            key,
        }
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The SET of one event, with a fresh `jti`.
    pub fn encode(&self, event: &RevocationEvent) -> Result<Set, JoseError> {
        self.encode_with_jti(event, crate::store::generate_token().into())
    }

    /// The SET of one entry of a store's durable log: its `jti` is the entry's
    /// ([`Logged::jti`](crate::store::log::Logged::jti)), the same on every delivery, so
    /// that a receiver drops a repeat.
    pub fn encode_logged(&self, entry: &crate::store::log::Logged) -> Result<Set, JoseError> {
        self.encode_with_jti(&entry.event, entry.jti().into())
    }

    fn encode_with_jti(&self, event: &RevocationEvent, jti: Arc<str>) -> Result<Set, JoseError> {
        let mut subject = Map::new();
        subject.insert("format".into(), "complex".into());
        if let Some(client) = &event.client_id {
            subject.insert("application".into(), opaque(client));
        }
        if let Some(user) = &event.subject {
            subject.insert("user".into(), opaque(user));
        }
        if let Some(grant) = event.revoked.grant() {
            subject.insert("grant".into(), opaque(&grant.to_string()));
        }
        if let Some(jti) = &event.jti {
            subject.insert("jti".into(), opaque(jti));
        }
        let mut payload = Map::new();
        let kind = match &event.revoked {
            Revoked::Token { token, kind, .. } => {
                // A JWT is named by its `jti`; an opaque token by its digest.
                if event.jti.is_none() {
                    subject.insert("token".into(), opaque(&token.to_hex()));
                }
                payload.insert("token_type".into(), kind.as_str().into());
                TOKEN_REVOKED
            }
            Revoked::Grant { .. } => GRANT_REVOKED,
            Revoked::Subject => SUBJECT_REVOKED,
            Revoked::Client => CLIENT_REVOKED,
        };
        let subject = Value::Object(subject);
        payload.insert("subject".into(), subject.clone());
        payload.insert("event_timestamp".into(), seconds(event.at).into());
        if let Some(expires_at) = event.expires_at {
            let secs = expires_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs();
            payload.insert("expires_at".into(), secs.into());
        }
        payload.insert("initiating_entity".into(), event.initiator.entity().into());
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let claims = json!({
            "iss": &*self.issuer,
            "jti": &*jti,
            "iat": iat,
            "sub_id": subject,
            "events": { kind: Value::Object(payload) },
        });
        let jws = self.key.sign(TYP, &claims)?;
        Ok(Set {
            jti,
            jws: jws.into(),
        })
    }
}

/// A revocation as a receiver reads it back from a verified SET.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The SET's `jti`.
    pub set_id: String,
    /// What was revoked.
    pub kind: ReceivedKind,
    /// The client (`application`), if named.
    pub client_id: Option<String>,
    /// The user, if named.
    pub user: Option<String>,
    /// The grant, if named.
    pub grant: Option<GrantId>,
    /// The JWT's `jti`, if named.
    pub jti: Option<String>,
    /// The revoked token's hash, for [`TOKEN_REVOKED`].
    pub token: Option<TokenHash>,
    /// When the revocation happened (a bulk revocation's cut-off).
    pub at: SystemTime,
    /// When what was revoked would have expired anyway (`expires_at`), if the SET says.
    pub expires_at: Option<SystemTime>,
}

/// The event type of a [`ReceivedEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedKind {
    /// [`TOKEN_REVOKED`].
    Token,
    /// [`GRANT_REVOKED`].
    Grant,
    /// [`SUBJECT_REVOKED`].
    Subject,
    /// [`CLIENT_REVOKED`].
    Client,
}

impl ReceivedEvent {
    /// Reads the claims of a verified SET; `None` when it holds no event of this crate's
    /// types, or is malformed.
    pub fn from_claims(claims: &Value) -> Option<Self> {
        let set_id = claims.get("jti")?.as_str()?.to_owned();
        let events = claims.get("events")?.as_object()?;
        let (kind, payload) = events.iter().find_map(|(uri, payload)| {
            let kind = match uri.as_str() {
                TOKEN_REVOKED => ReceivedKind::Token,
                GRANT_REVOKED => ReceivedKind::Grant,
                SUBJECT_REVOKED => ReceivedKind::Subject,
                CLIENT_REVOKED => ReceivedKind::Client,
                _ => return None,
            };
            Some((kind, payload))
        })?;
        let subject = payload
            .get("subject")
            .or_else(|| claims.get("sub_id"))?
            .as_object()?;
        let member = |name: &str| {
            subject
                .get(name)
                .and_then(|m| m.get("id"))
                .and_then(|id| id.as_str())
                .map(str::to_owned)
        };
        let grant = match member("grant") {
            Some(g) => Some(GrantId::from_u64(u64::from_str_radix(&g, 16).ok()?)),
            None => None,
        };
        let token = match member("token") {
            Some(hex) => Some(TokenHash::from_hex(&hex)?),
            None => None,
        };
        let at = payload.get("event_timestamp")?.as_f64()?;
        if !(0.0..1e11).contains(&at) {
            return None;
        }
        let event = Self {
            set_id,
            kind,
            client_id: member("application"),
            user: member("user"),
            grant,
            jti: member("jti"),
            token,
            at: UNIX_EPOCH + Duration::from_micros((at * 1e6).round() as u64),
            expires_at: payload
                .get("expires_at")
                .and_then(|e| e.as_u64())
                .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
        };
        event.is_complete().then_some(event)
    }

    /// Whether it names what its type needs.
    fn is_complete(&self) -> bool {
        match self.kind {
            ReceivedKind::Token => self.token.is_some() || self.jti.is_some(),
            ReceivedKind::Grant => self.grant.is_some(),
            ReceivedKind::Subject => self.user.is_some(),
            ReceivedKind::Client => self.client_id.is_some(),
        }
    }
}

/// Attaches SET delivery to `events` ([`Events::attach`](crate::events::Events::attach)):
/// each event is signed and queued for polling and pushing before the revocation that
/// emitted it is answered, so a poll right after a revocation finds its SET. Signing costs
/// one Ed25519 signature per event (tens of µs); queueing never waits.
pub fn attach(
    events: &crate::events::Events,
    issuer: SetIssuer,
    queue: Option<poll::SetQueue>,
    pusher: Option<push::Pusher>,
) {
    events.attach(move |event| match issuer.encode(event) {
        Ok(set) => {
            if let Some(queue) = &queue {
                queue.push(set.clone());
            }
            if let (Some(pusher), false) = (&pusher, event.relayed) {
                pusher.push(set, event.revoked.grant());
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot sign a security event token"),
    });
}

/// Delivers every event of `events` as a SET: into `queue` (for polling) and, unless another
/// node emitted it ([`RevocationEvent::relayed`]: that node pushes it), to `pusher`. Runs until the store is gone; spawn it. A subscriber that lagged logs how
/// many events it missed (raise [`Events::new`](crate::events::Events::new)'s capacity if
/// that happens).
pub async fn deliver(
    mut events: Subscription,
    issuer: SetIssuer,
    queue: Option<poll::SetQueue>,
    pusher: Option<push::Pusher>,
) {
    while let Some(next) = events.recv().await {
        let event = match next {
            Ok(event) => event,
            Err(Lagged(n)) => {
                tracing::error!(missed = n, "revocation events were missed for delivery");
                continue;
            }
        };
        let set = match issuer.encode(&event) {
            Ok(set) => set,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign a security event token");
                continue;
            }
        };
        if let Some(queue) = &queue {
            queue.push(set.clone());
        }
        // Pushed by the node that revoked only; every node's queue has every event, so a
        // receiver may poll any node.
        if let (Some(pusher), false) = (&pusher, event.relayed) {
            pusher.push(set, event.revoked.grant());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Initiator, jose::KeySet, store::TokenKind};

    #[test]
    fn a_set_names_what_was_revoked_and_never_the_token() {
        let key = SigningKey::generate();
        let issuer = SetIssuer::new("https://as.example", key.clone());
        let grant = GrantId::from_u64(0xabc);
        let event = RevocationEvent {
            revoked: Revoked::Token {
                token: TokenHash::of("the-token-value"),
                kind: TokenKind::AccessToken,
                grant,
            },
            client_id: Some("app".into()),
            jti: Some("j-1".into()),
            subject: Some("alice".into()),
            initiator: Initiator::Client("app".into()),
            at: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_003_600)),
            relayed: false,
        };
        let set = issuer.encode(&event).unwrap();
        assert!(!set.jws.contains("the-token-value"));
        let claims: Value = KeySet::from_jwks(&key.jwks())
            .unwrap()
            .verify(&set.jws, TYP)
            .unwrap();
        assert_eq!(claims["iss"], "https://as.example");
        assert_eq!(claims["jti"], &*set.jti);
        assert_eq!(claims["sub_id"]["format"], "complex");
        assert_eq!(claims["sub_id"]["application"]["id"], "app");
        assert_eq!(claims["sub_id"]["user"]["id"], "alice");
        let back = ReceivedEvent::from_claims(&claims).unwrap();
        assert_eq!(back.kind, ReceivedKind::Token);
        assert_eq!(back.grant, Some(grant));
        assert_eq!(back.token, None, "a JWT is named by its jti");
        assert_eq!(back.jti.as_deref(), Some("j-1"));
        assert_eq!(back.at, event.at);
        assert_eq!(back.expires_at, event.expires_at);
        assert_ne!(issuer.encode(&event).unwrap().jti, set.jti, "a fresh jti");
        // An opaque token is named by its digest.
        let opaque = RevocationEvent {
            jti: None,
            ..event.clone()
        };
        let set = issuer.encode(&opaque).unwrap();
        let claims: Value = KeySet::from_jwks(&key.jwks())
            .unwrap()
            .verify(&set.jws, TYP)
            .unwrap();
        let back = ReceivedEvent::from_claims(&claims).unwrap();
        assert_eq!(back.token, Some(TokenHash::of("the-token-value")));
        assert_eq!(back.jti, None);
    }
}
