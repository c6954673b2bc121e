//! The receiving side, for resource servers: verify SETs against the issuer's keys, take
//! pushes ([RFC 8935]), poll ([RFC 8936]), read the snapshot of what was revoked before
//! ([`fetch_snapshot`]).
//!
//! [`SetVerifier`] reads the issuer's metadata (`jwks_uri`) and key set, and accepts a SET
//! only when: it is a JWS of a key in that set (an unknown `kid` refetches the set, at most
//! once every 5 s), with that key's algorithm (never `none`), `typ` `secevent+jwt`, `iss`
//! the issuer, `iat` not in the future, a `jti` not seen before (kept an hour), and an
//! event of this crate's types ([`super::ReceivedEvent`]). Anything else changes nothing.
//!
//! [RFC 8935]: https://www.rfc-editor.org/rfc/rfc8935
//! [RFC 8936]: https://www.rfc-editor.org/rfc/rfc8936

mod poll;
mod push;
mod snapshot;
mod verifier;

use std::sync::Arc;

pub use self::{
    poll::Poller,
    push::PushReceiver,
    snapshot::fetch_snapshot,
    verifier::{KeysUnavailable, SetError, SetVerifier},
};
use super::ReceivedEvent;

/// The largest body read: a pushed SET, or the issuer's metadata or key set.
const MAX_BODY: usize = 64 * 1024;

/// What to do with each verified event.
pub type Handler = Arc<dyn Fn(&ReceivedEvent) + Send + Sync>;
