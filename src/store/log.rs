//! A store's durable log of events, read by cursor: what delivers Security Event Tokens at
//! least once, whatever node dies.
//!
//! A store with a durable log of its changes (`PostgresStore`'s outbox, `RedisStore`'s
//! stream) numbers each entry ([`Logged::position`], in commit order) and gives it a stable
//! id ([`Logged::id`]), the SET's `jti` on every delivery of it. Delivery keeps a named
//! cursor in the store, every entry up to its position delivered:
//!
//! - **Push** ([`set::push::Pusher::follow`](crate::set::push::Pusher::follow)): one node at
//!   a time holds a cursor's lease ([`EventLog::claim`]) and pushes the entries after its
//!   position, moving it ([`EventLog::advance`]) after each one the receiver took. A node
//!   that dies leaves the cursor where it was; its lease runs out and another node (or the
//!   same one restarted) takes over from there. An entry may then be pushed twice, never
//!   lost: receivers drop a repeat by `jti` (RFC 8935 §2).
//! - **Poll** ([`set::poll::SetQueue::follow`](crate::set::poll::SetQueue::follow)): any node
//!   answers a poll with the entries not acknowledged ([`EventLog::unacknowledged`]) and
//!   records acknowledgements ([`EventLog::acknowledge`]) in the store, so that every node
//!   returns the same ones.
//!
//! The log is bounded by the store's retention (`PostgresStoreBuilder::log_retention`; a
//! day of stream entries on Redis): an entry older than that is gone, delivered or not, and
//! a cursor behind it reads on from the oldest entry kept. Every store with a log passes
//! `store::conformance::event_log` (feature `conformance`).

use std::{fmt, time::Duration};

use futures_util::future::BoxFuture;

use crate::{events::RevocationEvent, store::StoreError};

/// One entry of a durable log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Its place in the log: entries are numbered in commit order, increasing, not
    /// necessarily consecutive.
    pub position: u64,
    /// Its stable id (128 random bits), the same on every read.
    pub id: u128,
    /// What it records, built by the store's rules (marked
    /// [`relayed`](RevocationEvent::relayed)).
    pub event: RevocationEvent,
}

impl Logged {
    /// The `jti` of the SET of this entry: its position and its id (`"<position>-<id, 32 hex
    /// digits>"`), the same on every delivery, so that a receiver drops a repeat.
    pub fn jti(&self) -> String {
        format!("{}-{:032x}", self.position, self.id)
    }

    /// The position and id a [`jti`](Self::jti) names, if it has that form.
    pub fn parse_jti(jti: &str) -> Option<(u64, u128)> {
        let (position, id) = jti.split_once('-')?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((position.parse().ok()?, u128::from_str_radix(id, 16).ok()?))
    }
}

/// A store's durable log of events and its delivery cursors; see the
/// [module docs](self). Every method is one atomic step in the store.
pub trait EventLog: Send + Sync + 'static {
    /// The position of cursor `name`, created at the log's end if it does not exist: a
    /// new receiver gets what is logged from then on.
    fn cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Up to `limit` entries after `position`, oldest first.
    fn read_after(
        &self,
        position: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Logged>, StoreError>>;

    /// Takes or renews cursor `name`'s lease for `holder`, for `lease`: the cursor's
    /// position, or `None` while another holder's lease runs.
    fn claim<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;

    /// Moves cursor `name` to `position` (never back) and renews the lease, if `holder`
    /// holds it: `false` if it does not (its lease ran out and another holder took it).
    fn advance<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        position: u64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Gives cursor `name`'s lease up, if `holder` holds it.
    fn release<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Up to `limit` entries of cursor `name` not acknowledged yet, oldest first.
    fn unacknowledged<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>>;

    /// Acknowledges the entries (`position`, `id`) of cursor `name` (a pair naming no entry
    /// past its position is ignored), then moves the cursor past every leading
    /// acknowledged entry.
    fn acknowledge<'a>(
        &'a self,
        name: &'a str,
        entries: &'a [(u64, u128)],
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl fmt::Debug for dyn EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventLog")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_names_its_entry_and_nothing_else_parses() {
        let event = crate::store::rules::bulk_event(
            crate::store::backend::Bulk::Subject("ann"),
            crate::events::Initiator::System,
            std::time::SystemTime::UNIX_EPOCH,
        );
        let logged = Logged {
            position: 42,
            id: 0xdead_beef,
            event,
        };
        let jti = logged.jti();
        assert_eq!(jti, "42-000000000000000000000000deadbeef");
        assert_eq!(Logged::parse_jti(&jti), Some((42, 0xdead_beef)));
        for bad in [
            "",
            "42",
            "-000000000000000000000000deadbeef",
            "x-000000000000000000000000deadbeef",
            "42-deadbeef",
            "42-000000000000000000000000deadbeeg",
            "+4-000000000000000000000000deadbeef",
            "99999999999999999999999-000000000000000000000000deadbeef",
        ] {
            assert_eq!(Logged::parse_jti(bad), None, "{bad:?}");
        }
    }
}
