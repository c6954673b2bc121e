//! The compact snapshot: every revocation still in force as one JSON line each, and one
//! signature over the digest of all of them.
//!
//! A snapshot of one SET per revocation costs a signature and about 1.2 KB per revocation
//! (1.2 GB and a million signatures at 1,000,000 revocations). The compact form, asked for
//! with `Accept: application/x-ndjson`, is a body of one JSON object per line, the same
//! facts a SET carries:
//!
//! ```text
//! {"type":"grant","grant":"00000000000003e8","client":"app","user":"alice","at":1764750000.123456,"exp":1764753600}
//! {"type":"token","token":"<SHA-256 hex>","grant":"…","client":"app","at":…,"exp":…}
//! {"type":"subject","user":"alice","at":…}
//! ```
//!
//! and a header `Snapshot-Signature`: a JWS (`typ` `revocation-snapshot+jwt`, signed by the
//! issuer's SET key) whose claims are `iss`, `iat`, `jti`, `count` (the lines) and `sha256`
//! (base64url of the SHA-256 of the body). The receiver checks the JWS as it checks a SET
//! (the issuer's key set, that key's algorithm, never `none`, `iss`, `iat`), then the
//! digest and the count: a body changed by one byte is refused whole.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{ReceivedEvent, ReceivedKind};
use crate::{
    events::{RevocationEvent, Revoked},
    store::{GrantId, TokenHash},
};

/// The media type of a compact snapshot's body.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// The header carrying a compact snapshot's signature.
pub const SIGNATURE_HEADER: &str = "snapshot-signature";

/// The JWS `typ` of a compact snapshot's signature.
pub const TYP: &str = "revocation-snapshot+jwt";

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as f64
        / 1e6
}

/// Appends the line of `event` (and a newline) to `out`.
pub(super) fn write_line(out: &mut Vec<u8>, event: &RevocationEvent) {
    let mut line = Map::new();
    let kind = match &event.revoked {
        Revoked::Token { token, .. } => {
            // A JWT is named by its `jti`; an opaque token by its digest, as in a SET.
            if event.jti.is_none() {
                line.insert("token".into(), token.to_hex().into());
            }
            "token"
        }
        Revoked::Grant { .. } => "grant",
        Revoked::Subject => "subject",
        Revoked::Client => "client",
    };
    line.insert("type".into(), kind.into());
    if let Some(grant) = event.revoked.grant() {
        line.insert("grant".into(), grant.to_string().into());
    }
    if let Some(jti) = &event.jti {
        line.insert("jti".into(), (**jti).into());
    }
    if let Some(client) = &event.client_id {
        line.insert("client".into(), (**client).into());
    }
    if let Some(user) = &event.subject {
        line.insert("user".into(), (**user).into());
    }
    line.insert("at".into(), seconds(event.at).into());
    if let Some(exp) = event.expires_at {
        let secs = exp
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        line.insert("exp".into(), secs.into());
    }
    // A map of strings and numbers always serializes.
    let _ = serde_json::to_writer(&mut *out, &Value::Object(line));
    out.push(b'\n');
}

/// The event of one line; `None` when it is malformed or lacks what its type needs.
pub(super) fn read_line(line: &[u8], set_id: String) -> Option<ReceivedEvent> {
    let line: Map<String, Value> = serde_json::from_slice(line).ok()?;
    let text = |name: &str| -> Option<Option<String>> {
        match line.get(name) {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        }
    };
    let kind = match line.get("type")?.as_str()? {
        "token" => ReceivedKind::Token,
        "grant" => ReceivedKind::Grant,
        "subject" => ReceivedKind::Subject,
        "client" => ReceivedKind::Client,
        _ => return None,
    };
    let grant = match text("grant")? {
        Some(g) => Some(GrantId::from_u64(u64::from_str_radix(&g, 16).ok()?)),
        None => None,
    };
    let token = match text("token")? {
        Some(hex) => Some(TokenHash::from_hex(&hex)?),
        None => None,
    };
    let at = line.get("at")?.as_f64()?;
    if !(0.0..1e11).contains(&at) {
        return None;
    }
    let expires_at = match line.get("exp") {
        None => None,
        Some(exp) => Some(UNIX_EPOCH + Duration::from_secs(exp.as_u64()?)),
    };
    let event = ReceivedEvent {
        set_id,
        kind,
        client_id: text("client")?,
        user: text("user")?,
        grant,
        jti: text("jti")?,
        token,
        at: UNIX_EPOCH + Duration::from_micros((at * 1e6).round() as u64),
        expires_at,
    };
    event.is_complete().then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Initiator;

    fn event(revoked: Revoked, jti: Option<&str>) -> RevocationEvent {
        RevocationEvent {
            revoked,
            client_id: Some("app".into()),
            jti: jti.map(Into::into),
            subject: Some("alice".into()),
            initiator: Initiator::System,
            at: UNIX_EPOCH + Duration::from_micros(1_764_750_000_123_456),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_764_753_600)),
            relayed: false,
        }
    }

    #[test]
    fn a_line_reads_back_as_the_event_a_set_would_give() {
        let grant = GrantId::from_u64(1000);
        let token = TokenHash::of("t");
        for (revoked, jti) in [
            (Revoked::Grant { grant }, None),
            (
                Revoked::Token {
                    token,
                    kind: crate::store::TokenKind::AccessToken,
                    grant,
                },
                None,
            ),
            (
                Revoked::Token {
                    token,
                    kind: crate::store::TokenKind::AccessToken,
                    grant,
                },
                Some("jwt-1"),
            ),
            (Revoked::Subject, None),
        ] {
            let event = event(revoked.clone(), jti);
            let mut out = Vec::new();
            write_line(&mut out, &event);
            assert_eq!(out.last(), Some(&b'\n'));
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
            let read = read_line(&out[..out.len() - 1], "s/0".into()).expect("reads back");
            assert_eq!(read.at, event.at, "to the microsecond");
            assert_eq!(read.expires_at, event.expires_at);
            assert_eq!(read.grant, event.revoked.grant());
            assert_eq!(read.jti.as_deref(), jti);
            let named_by_digest = matches!(revoked, Revoked::Token { .. }) && jti.is_none();
            assert_eq!(read.token.is_some(), named_by_digest);
        }
    }

    #[test]
    fn a_malformed_or_incomplete_line_reads_as_nothing() {
        for bad in [
            &b""[..],
            b"[]",
            b"{\"type\":\"grant\",\"at\":1}",
            b"{\"type\":\"grant\",\"grant\":\"zz\",\"at\":1}",
            b"{\"type\":\"grant\",\"grant\":\"01\",\"at\":-1}",
            b"{\"type\":\"grant\",\"grant\":\"01\"}",
            b"{\"type\":\"token\",\"at\":1}",
            b"{\"type\":\"token\",\"token\":\"00\",\"at\":1}",
            b"{\"type\":\"subject\",\"at\":1}",
            b"{\"type\":\"subject\",\"user\":7,\"at\":1}",
            b"{\"type\":\"other\",\"user\":\"a\",\"at\":1}",
            b"{\"type\":\"grant\",\"grant\":\"01\",\"at\":1,\"exp\":\"soon\"}",
        ] {
            assert!(
                read_line(bad, "s/0".into()).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
