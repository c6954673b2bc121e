//! What the Redis scripts put on the wire, and the relay that hears every node's changes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use redis::Client;

pub(super) use crate::store::rules::initiator_code;

use crate::{
    events::{Events, RevocationEvent},
    store::{
        backend::{Bulk, Facts},
        rules::{self, initiator_of},
        GrantId, RevocationScope, StoreError, TokenHash, TokenKind,
    },
};

use super::Config;

pub(super) fn to_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

pub(super) fn from_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub(super) fn kind_code(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::AccessToken => "a",
        TokenKind::RefreshToken => "r",
    }
}

pub(super) fn kind_of(code: &str) -> Option<TokenKind> {
    match code {
        "a" => Some(TokenKind::AccessToken),
        "r" => Some(TokenKind::RefreshToken),
        _ => None,
    }
}

pub(super) fn scope_code(scope: RevocationScope) -> &'static str {
    match scope {
        RevocationScope::Token => "t",
        RevocationScope::Grant => "g",
    }
}

pub(super) fn malformed(what: &str) -> StoreError {
    StoreError::new(format!("malformed {what} in Redis"))
}

/// The event of a change another node published (`cjson`; times as strings of µs, which
/// `cjson` would round), built by the same rules as this node's own; `None` for this
/// node's own changes, which it announced itself, and for anything malformed.
fn decode_event(payload: &str, node: &str) -> Result<Option<RevocationEvent>, ()> {
    let v: serde_json::Value = serde_json::from_str(payload).map_err(|_| ())?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    if text("n") == Some(node) {
        return Ok(None);
    }
    let micros: u64 = text("at").ok_or(())?.parse().map_err(|_| ())?;
    let at = UNIX_EPOCH + Duration::from_micros(micros);
    let by = initiator_of(text("b").unwrap_or("s"));
    let grant = || {
        text("g")
            .and_then(|g| u64::from_str_radix(g, 16).ok())
            .map(GrantId::from_u64)
            .ok_or(())
    };
    let facts = |scope| -> Result<Facts, ()> {
        Ok(Facts {
            scope,
            grant: grant()?,
            client_id: text("c").map(Into::into),
            owner: text("o").map(Into::into),
            expires_at: from_secs(text("x").and_then(|x| x.parse().ok()).ok_or(())?),
        })
    };
    let mut event = match text("k").ok_or(())? {
        "t" => {
            let token = TokenHash::from_hex(text("t").ok_or(())?).ok_or(())?;
            let kind = kind_of(text("tk").ok_or(())?).ok_or(())?;
            let facts = facts(RevocationScope::Token)?;
            rules::change_event(&facts, Some((token, kind)), text("j"), by, at)
        }
        "g" => rules::change_event(&facts(RevocationScope::Grant)?, None, text("j"), by, at),
        "s" => rules::bulk_event(Bulk::Subject(text("o").ok_or(())?), by, at),
        "c" => rules::bulk_event(Bulk::Client(text("c").ok_or(())?), by, at),
        _ => return Err(()),
    };
    event.relayed = true;
    Ok(Some(event))
}

/// Relays the events other nodes publish to this node's subscribers, reconnecting with
/// back-off; ends when the store and all its clones are gone.
pub(super) async fn relay_events(client: Client, config: std::sync::Weak<Config>, events: Events) {
    let mut delay = Duration::from_millis(50);
    loop {
        let Some((channel, node)) = config
            .upgrade()
            .map(|c| (format!("{}events", c.tag), c.node.clone()))
        else {
            return;
        };
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    delay = Duration::from_millis(50);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if config.strong_count() == 0 {
                            return;
                        }
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        match decode_event(&payload, &node) {
                            Ok(Some(event)) => events.emit(event),
                            Ok(None) => {}
                            Err(()) => tracing::warn!("a malformed revocation event in Redis"),
                        }
                    }
                }
                tracing::warn!("lost the Redis revocation event channel; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to Redis revocation events"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
