//! What the Redis scripts put on the wire, and the relay that hears every node's changes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{
    aio::{ConnectionManager, MultiplexedConnection},
    streams::{StreamRangeReply, StreamReadOptions, StreamReadReply},
    AsyncCommands as _, AsyncConnectionConfig, Client, RedisResult,
};

pub(super) use crate::store::rules::initiator_code;

use crate::{
    events::{Events, RevocationEvent},
    store::{
        backend::{Bulk, Facts},
        rules::{self, initiator_of},
        Confirmation, GrantId, RevocationScope, StoreError, TokenHash, TokenKind,
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

/// A token's binding as its field `b` holds it: `<cnf member>:<thumbprint in base64url>`,
/// empty for none.
pub(super) fn binding_code(confirmation: Option<&Confirmation>) -> String {
    confirmation.map_or_else(String::new, |c| {
        format!("{}:{}", c.member(), c.to_base64url())
    })
}

pub(super) fn binding_of(value: &str) -> Result<Option<Confirmation>, StoreError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .split_once(':')
        .and_then(|(member, thumbprint)| Confirmation::from_member(member, thumbprint))
        .map(Some)
        .ok_or_else(|| malformed("token binding"))
}

pub(super) fn malformed(what: &str) -> StoreError {
    StoreError::new(format!("malformed {what} in Redis"))
}

/// The event of a change another node published (`cjson`; times as strings of µs, which
/// `cjson` would round), built by the same rules as this node's own; `None` for this
/// node's own changes, which it announced itself, and for anything malformed.
pub(super) fn decode_event(payload: &str, node: &str) -> Result<Option<RevocationEvent>, ()> {
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

/// The events of every entry of the log (`{P}:log`, kept a day) still in force at `now`
/// (what it revoked expires later, or it is a cut-off), oldest first, every node's: what
/// [`TokenStore::history`](crate::store::TokenStore::history) returns. Built by the same
/// [`decode_event`] as the relayed ones, so each is marked `relayed`; read 1,000 entries
/// at a time; a malformed entry is logged and skipped, as the relay does.
pub(super) async fn history(
    conn: &mut ConnectionManager,
    log: &str,
    now: SystemTime,
) -> RedisResult<Vec<RevocationEvent>> {
    const PAGE: usize = 1000;
    let mut events = Vec::new();
    let mut from = "-".to_owned();
    loop {
        let page: StreamRangeReply = conn.xrange_count(log, &from, "+", PAGE).await?;
        for entry in &page.ids {
            match entry.get::<String>("e").map(|p| decode_event(&p, "")) {
                Some(Ok(Some(event))) if event.expires_at.is_none_or(|e| e > now) => {
                    events.push(event)
                }
                Some(Ok(_)) => {}
                _ => tracing::warn!("a malformed revocation event in Redis"),
            }
        }
        match page.ids.last() {
            // Exclusive of the last entry read (Redis 6.2).
            Some(last) if page.ids.len() == PAGE => from = format!("({}", last.id),
            _ => return Ok(events),
        }
    }
}

/// Relays the changes other nodes append to the store's log (the stream `{P}:log`) to this
/// node's subscribers, from where it last read: after a lost connection it reconnects with
/// back-off and reads on from the last entry it relayed, so it misses nothing that Redis
/// still keeps (a day of entries). Ends when the store and all its clones are gone.
pub(super) async fn relay_events(client: Client, config: std::sync::Weak<Config>, events: Events) {
    // A connection of its own, without a response timeout: XREAD blocks it for a second.
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(None);
    let mut delay = Duration::from_millis(50);
    let mut last: Option<String> = None;
    loop {
        let Some((log, node)) = config
            .upgrade()
            .map(|c| (format!("{}log", c.tag), c.node.clone()))
        else {
            return;
        };
        match client
            .get_multiplexed_async_connection_with_config(&connection)
            .await
        {
            Ok(mut conn) => {
                delay = Duration::from_millis(50);
                let _: RedisResult<()> = redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(RELAY_NAME)
                    .query_async(&mut conn)
                    .await;
                match follow(&mut conn, &log, &node, &mut last, &config, &events).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the Redis revocation log; reconnecting");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the Redis revocation log"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// The name of the relay's connection (`CLIENT LIST`).
pub(super) const RELAY_NAME: &str = "tower-oauth-revoke-relay";

/// Reads the log from `last` (on first use: from its end as it is now) until the store is
/// gone (`Ok`) or the connection fails.
async fn follow(
    conn: &mut MultiplexedConnection,
    log: &str,
    node: &str,
    last: &mut Option<String>,
    config: &std::sync::Weak<Config>,
    events: &Events,
) -> RedisResult<()> {
    if last.is_none() {
        let end: StreamRangeReply = conn.xrevrange_count(log, "+", "-", 1).await?;
        *last = Some(
            end.ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
        );
    }
    let options = StreamReadOptions::default().block(1000).count(256);
    loop {
        if config.strong_count() == 0 {
            return Ok(());
        }
        let from = last.clone().unwrap_or_else(|| "0-0".to_owned());
        let reply: Option<StreamReadReply> = conn.xread_options(&[log], &[&from], &options).await?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            *last = Some(entry.id.clone());
            let Some(payload) = entry.get::<String>("e") else {
                tracing::warn!("a malformed revocation event in Redis");
                continue;
            };
            match decode_event(&payload, node) {
                Ok(Some(event)) => events.emit(event),
                Ok(None) => {}
                Err(()) => tracing::warn!("a malformed revocation event in Redis"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_read_back_as_written() {
        for confirmation in [
            None,
            Some(Confirmation::Jkt([3; 32])),
            Some(Confirmation::X5tS256([250; 32])),
        ] {
            let code = binding_code(confirmation.as_ref());
            assert_eq!(binding_of(&code).unwrap(), confirmation, "{code}");
        }
        assert!(binding_of("jwk:AAAA").is_err());
        assert!(binding_of("no separator").is_err());
    }
}
