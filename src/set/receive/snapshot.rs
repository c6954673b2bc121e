//! [`fetch_snapshot`]: the revocations made before a resource server started.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;

use super::SetVerifier;
use crate::{
    client_auth::encode_basic,
    set::{compact, ReceivedEvent},
};

/// The largest snapshot read: about 90,000 SETs, or about 2,000,000 revocations in the
/// compact form.
const MAX_SNAPSHOT: usize = 256 * 1024 * 1024;

/// Reads an issuer's snapshot ([`set::snapshot`](crate::set::snapshot)) from `endpoint`,
/// authenticating with HTTP Basic as `client_id`, and verifies it with `verifier`.
///
/// It asks for the [compact](crate::set::compact) form (one signature over the digest of
/// one line per revocation), and reads the SET form too (each SET verified as a pushed or
/// polled one is) from an issuer that answers it.
///
/// All or nothing: the events are returned only when the whole snapshot verified, so that
/// the caller applies a whole snapshot or none of it (a revocation refused would be one
/// missed); on any failure (the issuer unreachable, an answer other than 200, a signature,
/// digest, count or line that does not check) the error says why, and the caller tries
/// again later.
pub async fn fetch_snapshot(
    verifier: &SetVerifier,
    endpoint: Uri,
    client_id: &str,
    client_secret: &str,
) -> Result<Vec<ReceivedEvent>, String> {
    let request = Request::get(endpoint)
        .header(
            header::AUTHORIZATION,
            encode_basic(client_id, client_secret),
        )
        .header(
            header::ACCEPT,
            format!("{}, application/json;q=0.5", compact::CONTENT_TYPE),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(120), async {
        let response = verifier
            .client()
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_SNAPSHOT)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        Ok((headers, body))
    });
    let (headers, body) = answer
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))?;
    let compact_answer = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(compact::CONTENT_TYPE));
    if compact_answer {
        let signature = headers
            .get(compact::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or("a compact snapshot without its signature")?;
        return read_compact(verifier, signature, &body).await;
    }
    let json: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let Some(Value::Array(sets)) = json.get("sets") else {
        return Err("no sets in the answer".to_owned());
    };
    let mut events = Vec::with_capacity(sets.len());
    for set in sets {
        let jws = set.as_str().ok_or("a SET that is not a string")?;
        let event = verifier.verify(jws).await.map_err(|e| e.to_string())?;
        events.push(event);
    }
    Ok(events)
}

/// Checks a compact snapshot's signature, then its digest and count, then reads each line.
async fn read_compact(
    verifier: &SetVerifier,
    signature: &str,
    body: &[u8],
) -> Result<Vec<ReceivedEvent>, String> {
    let claims = verifier
        .verify_signed(signature, compact::TYP)
        .await
        .map_err(|e| format!("the snapshot's signature: {e}"))?;
    check_compact(&claims, body)
}

/// The events of a compact snapshot `body` whose signature's `claims` verified: only if
/// the body is the one signed (digest) and whole (count), and every line reads.
fn check_compact(claims: &Value, body: &[u8]) -> Result<Vec<ReceivedEvent>, String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = claims
        .get("sha256")
        .and_then(|d| d.as_str())
        .and_then(|d| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(d)
                .ok()
        })
        .ok_or("the snapshot's signature names no digest")?;
    if digest[..] != sha2::Sha256::digest(body)[..] {
        return Err("the snapshot's body is not the one signed".to_owned());
    }
    let count = claims
        .get("count")
        .and_then(|c| c.as_u64())
        .ok_or("the snapshot's signature names no count")?;
    let id = claims
        .get("jti")
        .and_then(|j| j.as_str())
        .unwrap_or("snapshot");
    let mut events = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(4_000_000));
    for (i, line) in body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let event = compact::read_line(line, format!("{id}/{i}"))
            .ok_or_else(|| format!("line {} of the snapshot is malformed", i + 1))?;
        events.push(event);
    }
    if events.len() as u64 != count {
        return Err(format!(
            "the snapshot has {} lines, signed for {count}",
            events.len()
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;
    use sha2::Digest as _;

    use super::*;

    fn claims(body: &[u8], count: usize) -> Value {
        let digest = sha2::Sha256::digest(body);
        json!({
            "jti": "s1",
            "count": count,
            "sha256": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        })
    }

    #[test]
    fn a_compact_snapshot_is_taken_whole_or_not_at_all() {
        let body = b"{\"type\":\"subject\",\"user\":\"ann\",\"at\":1.5}\n\
                     {\"type\":\"grant\",\"grant\":\"2a\",\"at\":2}\n";
        let events = check_compact(&claims(body, 2), body).expect("the body signed");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].user.as_deref(), Some("ann"));
        assert_eq!(events[1].set_id, "s1/1");

        let mut changed = body.to_vec();
        changed[30] ^= 1;
        assert!(
            check_compact(&claims(body, 2), &changed).is_err(),
            "one byte changed"
        );
        let shorter = &body[..body.len() / 2];
        assert!(
            check_compact(&claims(body, 2), shorter).is_err(),
            "cut short"
        );
        assert!(
            check_compact(&claims(body, 3), body).is_err(),
            "a line missing"
        );
        let bad = b"{\"type\":\"grant\",\"at\":2}\n";
        assert!(
            check_compact(&claims(bad, 1), bad).is_err(),
            "a malformed line, even signed"
        );
        assert!(
            check_compact(&json!({"count": 2}), body).is_err(),
            "no digest"
        );
    }
}
