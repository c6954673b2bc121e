//! The relay that hears every node's changes: `LISTEN tor_revocations`, then the outbox rows
//! after the last one seen.

use std::{
    sync::Weak,
    time::{Duration, SystemTime},
};

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row, Statement};

use crate::{
    events::{Events, RevocationEvent},
    store::{
        backend::{Bulk, Facts},
        rules::{self, initiator_of},
        RevocationScope, StoreError, TokenHash,
    },
};

use super::{
    backend::{grant_of, kind_of},
    malformed, Config,
};

/// How many outbox rows one read takes.
const BATCH: i32 = 1000;

const SINCE: &str = "SELECT seq, kind, token_hash, token_kind, grant_id, client_id, subject, \
    jti, initiator, at, expires_at, node FROM tor_log_since($1, $2)";

/// The last `seq` of the outbox (0 when empty): where a new store starts relaying.
pub(super) async fn last_seq(client: &Client) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT coalesce(max(seq), 0) FROM revocation_log", &[])
        .await
        .map_err(StoreError::new)?;
    row.try_get(0).map_err(StoreError::new)
}

/// The event of an outbox row, built by the same rules as this node's own.
pub(super) fn event_of(row: &Row) -> Result<RevocationEvent, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::new(e);
    let text = |column: &str| -> Result<Option<&str>, StoreError> {
        row.try_get::<_, Option<&str>>(column).map_err(get)
    };
    let by = initiator_of(text("initiator")?.unwrap_or("s"));
    let at: SystemTime = row.try_get("at").map_err(get)?;
    let facts = |scope| -> Result<Facts, StoreError> {
        let grant: Option<i64> = row.try_get("grant_id").map_err(get)?;
        Ok(Facts {
            scope,
            grant: grant_of(grant.ok_or_else(|| malformed("outbox grant"))?),
            client_id: text("client_id")?.map(Into::into),
            owner: text("subject")?.map(Into::into),
            expires_at: row
                .try_get::<_, Option<SystemTime>>("expires_at")
                .map_err(get)?
                .ok_or_else(|| malformed("outbox expiry"))?,
        })
    };
    let name = |column| text(column)?.ok_or_else(|| malformed("outbox name"));
    let mut event = match text("kind")?.unwrap_or("") {
        "token" => {
            let hash: Option<&[u8]> = row.try_get("token_hash").map_err(get)?;
            let hash = hash
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .map(TokenHash::from_bytes)
                .ok_or_else(|| malformed("outbox token"))?;
            let kind = kind_of(name("token_kind")?)?;
            let facts = facts(RevocationScope::Token)?;
            rules::change_event(&facts, Some((hash, kind)), text("jti")?, by, at)
        }
        "grant" => {
            let facts = facts(RevocationScope::Grant)?;
            rules::change_event(&facts, None, text("jti")?, by, at)
        }
        "subject" => rules::bulk_event(Bulk::Subject(name("subject")?), by, at),
        "client" => rules::bulk_event(Bulk::Client(name("client_id")?), by, at),
        _ => return Err(malformed("outbox kind")),
    };
    event.relayed = true;
    Ok(event)
}

/// The events of every outbox row still in force at `now` (what it revoked expires later,
/// or it is a cut-off), oldest first: [`TokenStore::history`](crate::store::TokenStore::history).
/// Read from the first row in batches of [`BATCH`], each under `timeout`; every node's rows,
/// built by the same [`event_of`] as the relayed ones, so each is marked `relayed` (no node
/// pushes it again). A malformed row is logged and skipped, as the relay does.
pub(super) async fn history(
    client: &Client,
    now: SystemTime,
    timeout: Duration,
) -> Result<Vec<RevocationEvent>, StoreError> {
    let late = || StoreError::new("PostgreSQL did not answer in time");
    let statement = tokio::time::timeout(timeout, client.prepare(SINCE))
        .await
        .map_err(|_| late())?
        .map_err(StoreError::new)?;
    let mut last = 0i64;
    let mut events = Vec::new();
    loop {
        let rows = tokio::time::timeout(timeout, client.query(&statement, &[&last, &BATCH]))
            .await
            .map_err(|_| late())?
            .map_err(StoreError::new)?;
        for row in &rows {
            last = row.try_get("seq").map_err(StoreError::new)?;
            match event_of(row) {
                Ok(event) if event.expires_at.is_none_or(|e| e > now) => events.push(event),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(seq = last, error = %e, "a malformed revocation outbox row")
                }
            }
        }
        if rows.len() < BATCH as usize {
            return Ok(events);
        }
    }
}

/// Emits the other nodes' outbox rows after `last`, a batch at a time, until none is left;
/// moves `last` past every row read. `since` is [`SINCE`], prepared once per connection:
/// each wake-up is then one round trip.
async fn read_on(
    client: &Client,
    since: &Statement,
    node: &str,
    events: &Events,
    last: &mut i64,
) -> Result<(), StoreError> {
    loop {
        let rows = client
            .query(since, &[&*last, &BATCH])
            .await
            .map_err(StoreError::new)?;
        for row in &rows {
            let seq: i64 = row.try_get("seq").map_err(StoreError::new)?;
            *last = seq;
            let from: Option<&str> = row.try_get("node").map_err(StoreError::new)?;
            if from == Some(node) {
                continue;
            }
            match event_of(row) {
                Ok(event) => events.emit(event),
                Err(e) => tracing::warn!(seq, error = %e, "a malformed revocation outbox row"),
            }
        }
        if rows.len() < BATCH as usize {
            return Ok(());
        }
    }
}

/// Listens on one connection until it is lost or the store is gone (`Ok(true)`).
async fn listen(
    pg: &tokio_postgres::Config,
    config: &Weak<Config>,
    events: &Events,
    last: &mut i64,
    delay: &mut Duration,
) -> Result<bool, StoreError> {
    let (client, mut connection) = pg.connect(NoTls).await.map_err(StoreError::new)?;
    // The connection's messages: each notification a wake-up (coalesced), its end the
    // channel's.
    let (wake, mut woken) = mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message {
                if let Err(mpsc::error::TrySendError::Closed(())) = wake.try_send(()) {
                    return;
                }
            }
        }
    });
    let relayed = async {
        let Some(node) = config.upgrade().map(|c| c.node.clone()) else {
            return Ok(true);
        };
        client
            .batch_execute("LISTEN tor_revocations")
            .await
            .map_err(StoreError::new)?;
        let since = client.prepare(SINCE).await.map_err(StoreError::new)?;
        // Listening: what was committed while not is read now.
        read_on(&client, &since, &node, events, last).await?;
        *delay = Duration::from_millis(50);
        loop {
            match tokio::time::timeout(Duration::from_secs(1), woken.recv()).await {
                Ok(Some(())) => read_on(&client, &since, &node, events, last).await?,
                Ok(None) => return Err(StoreError::new("the listening connection closed")),
                Err(_) if config.strong_count() == 0 => return Ok(true),
                Err(_) => {}
            }
        }
    }
    .await;
    driver.abort();
    relayed
}

/// Relays the events other nodes write into the outbox to this node's subscribers,
/// reconnecting with back-off and reading on from the last row seen; ends when the store
/// and all its clones are gone.
pub(super) async fn relay_events(
    pg: tokio_postgres::Config,
    config: Weak<Config>,
    events: Events,
    mut last: i64,
) {
    let mut delay = Duration::from_millis(50);
    loop {
        match listen(&pg, &config, &events, &mut last, &mut delay).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                if config.strong_count() == 0 {
                    return;
                }
                tracing::warn!(error = %e, last_seq = last, "lost the PostgreSQL revocation events; reconnecting");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
