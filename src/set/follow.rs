//! Delivery from a store's durable log ([`EventLog`]): the push task that holds a
//! receiver's cursor, and the poll queue's reads and acknowledgements.

use std::{
    sync::{atomic::Ordering, Arc, Weak},
    time::Duration,
};

use crate::{
    events::{Events, Subscription},
    store::{
        log::{EventLog, Logged},
        StoreError,
    },
};

use super::{
    push::{attempt, Attempt, HttpClient, PushOptions, Receiver},
    Set, SetIssuer,
};

/// How many log entries one read takes.
const BATCH: usize = 100;

/// Waits for the next event of the store (any node's: the wake-up that something was
/// logged) or `at_most`; `false` once the store is gone.
async fn next_event(events: &mut Subscription, at_most: Duration) -> bool {
    !matches!(tokio::time::timeout(at_most, events.recv()).await, Ok(None))
}

/// What a push task needs besides its receiver.
pub(super) struct Follower {
    pub(super) log: Arc<dyn EventLog>,
    pub(super) events: Events,
    pub(super) issuer: SetIssuer,
    pub(super) holder: String,
}

/// The cursor name of a push receiver.
pub(super) fn push_cursor(url: &http::Uri) -> String {
    format!("push {url}")
}

/// Pushes every log entry after the receiver's cursor, holding the cursor's lease, until
/// the pusher is gone; gives the lease up then.
pub(super) async fn push(
    receiver: Weak<Receiver>,
    follower: Arc<Follower>,
    client: HttpClient,
    options: Arc<PushOptions>,
) {
    let Some(name) = receiver.upgrade().map(|r| push_cursor(&r.url)) else {
        return;
    };
    let mut events = follower.events.subscribe();
    let lease = options.lease;
    let log = &*follower.log;
    let holder = &*follower.holder;
    let first = Duration::from_millis(100);
    let mut backoff = first;
    let mut warned = false;
    'claim: loop {
        if receiver.strong_count() == 0 {
            let _ = log.release(&name, holder).await;
            return;
        }
        let position = match log.claim(&name, holder, lease).await {
            Ok(Some(position)) => position,
            Ok(None) => {
                // Another node delivers; take over if its lease runs out.
                if !next_event(&mut events, lease / 2).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(error = %e, "cannot read the event log to push; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        let batch = match log.read_after(position, BATCH).await {
            Ok(batch) => batch,
            Err(_) => continue,
        };
        if batch.is_empty() {
            // Renew the lease well before it runs out, or push what is logged next.
            if !next_event(&mut events, lease / 3).await {
                let _ = log.release(&name, holder).await;
                return;
            }
            continue;
        }
        for entry in batch {
            let set = match follower.issuer.encode_logged(&entry) {
                Ok(set) => set,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sign a security event token");
                    continue 'claim;
                }
            };
            loop {
                let Some(r) = receiver.upgrade() else {
                    continue 'claim;
                };
                match attempt(&client, &r.url, &set, options.timeout).await {
                    Attempt::Delivered => {
                        r.delivered.fetch_add(1, Ordering::Relaxed);
                        if std::mem::replace(&mut warned, false) {
                            tracing::info!(receiver = %r.url, "event receiver reachable again");
                        }
                        backoff = first;
                        break;
                    }
                    Attempt::Refused(error) => {
                        tracing::error!(
                            receiver = %r.url,
                            set = %set.jti,
                            error = %crate::escape::Escaped(&error),
                            "an event receiver refused an event"
                        );
                        backoff = first;
                        break;
                    }
                    Attempt::Failed(error) => {
                        if !std::mem::replace(&mut warned, true) {
                            tracing::warn!(
                                receiver = %r.url,
                                error = %crate::escape::Escaped(&error),
                                "event receiver unreachable; retrying"
                            );
                        }
                        drop(r);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(options.max_backoff);
                        // Keep the lease while retrying; lost, the new holder goes on.
                        if !matches!(log.claim(&name, holder, lease).await, Ok(Some(_))) {
                            continue 'claim;
                        }
                    }
                }
            }
            // Delivered (or refused for good): the cursor moves past it. Not moved (the
            // store unreachable, the lease lost), it is pushed again: at least once.
            if !matches!(
                log.advance(&name, holder, entry.position, lease).await,
                Ok(true)
            ) {
                continue 'claim;
            }
        }
    }
}

/// A poll queue's reads from the log: one cursor per receiving client,
/// `"<prefix> <client id>"`.
pub(super) struct LogQueue {
    pub(super) log: Arc<dyn EventLog>,
    pub(super) events: Events,
    pub(super) issuer: SetIssuer,
    pub(super) prefix: String,
}

impl LogQueue {
    fn cursor(&self, client: &str) -> String {
        format!("{} {client}", self.prefix)
    }

    /// Creates `client`'s cursor at the log's end, if it has none: its position.
    pub(super) async fn open(&self, client: &str) -> Result<u64, StoreError> {
        self.log.cursor(&self.cursor(client)).await
    }

    /// For `client`: records the acknowledged `jti`s (those not of this log's form are not this log's),
    /// then returns up to `max` SETs not acknowledged, oldest first, and whether more are
    /// left; waits up to `wait` for one when there is none.
    pub(super) async fn poll(
        &self,
        client: &str,
        ack: impl Iterator<Item = &str>,
        max: usize,
        wait: Option<Duration>,
    ) -> Result<(Vec<Set>, bool), StoreError> {
        let name = self.cursor(client);
        let acknowledged: Vec<(u64, u128)> = ack.filter_map(Logged::parse_jti).collect();
        if !acknowledged.is_empty() {
            self.log.acknowledge(&name, &acknowledged).await?;
        }
        if max == 0 {
            return Ok((Vec::new(), false));
        }
        // Subscribed before reading: what is logged after the read wakes the wait.
        let mut events = self.events.subscribe();
        let mut entries = self.log.unacknowledged(&name, max + 1).await?;
        if let (true, Some(wait)) = (entries.is_empty(), wait) {
            if next_event(&mut events, wait).await {
                entries = self.log.unacknowledged(&name, max + 1).await?;
            }
        }
        let more = entries.len() > max;
        let mut sets = Vec::with_capacity(entries.len().min(max));
        for entry in entries.iter().take(max) {
            match self.issuer.encode_logged(entry) {
                Ok(set) => sets.push(set),
                Err(e) => tracing::error!(error = %e, "cannot sign a security event token"),
            }
        }
        Ok((sets, more))
    }
}
