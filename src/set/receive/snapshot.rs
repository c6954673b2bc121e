//! [`fetch_snapshot`]: the revocations made before a resource server started.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;

use super::SetVerifier;
use crate::{client_auth::encode_basic, set::ReceivedEvent};

/// The largest snapshot read (about 90,000 SETs).
const MAX_SNAPSHOT: usize = 64 * 1024 * 1024;

/// Reads an issuer's snapshot ([`set::snapshot`](crate::set::snapshot)) from `endpoint`,
/// authenticating with HTTP Basic as `client_id`, and verifies every SET in it with
/// `verifier`, as a pushed or polled one is.
///
/// All or nothing: the events are returned only when every SET verified, so that the
/// caller applies a whole snapshot or none of it (a SET refused would be a revocation
/// missed); on any failure (the issuer unreachable, an answer other than 200, a SET that
/// does not verify) the error says why, and the caller tries again later.
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
        .header(header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        let response = verifier
            .client()
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_SNAPSHOT)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        let json: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        match json.get("sets") {
            Some(Value::Array(sets)) => Ok(sets.clone()),
            _ => Err("no sets in the answer".to_owned()),
        }
    });
    let sets = answer
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))?;
    let mut events = Vec::with_capacity(sets.len());
    for set in sets {
        let jws = set.as_str().ok_or("a SET that is not a string")?;
        let event = verifier.verify(jws).await.map_err(|e| e.to_string())?;
        events.push(event);
    }
    Ok(events)
}
