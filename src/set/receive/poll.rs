//! [`Poller`]: SETs polled ([RFC 8936]).
//!
//! [RFC 8936]: https://www.rfc-editor.org/rfc/rfc8936

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};

use super::{Handler, SetVerifier};
use crate::{client_auth::encode_basic, set::ReceivedEvent};

/// Polls an RFC 8936 endpoint for SETs, verifies each, hands it to the handler, and
/// acknowledges it in the next poll (SETs that fail verification are reported in
/// `setErrs`). Long polls (the transmitter answers when an event arrives); after an error,
/// retries every 250 ms.
#[derive(Clone)]
pub struct Poller {
    verifier: SetVerifier,
    endpoint: Uri,
    authorization: HeaderValue,
    handler: Handler,
}

debug_fields!(Poller { endpoint });

impl Poller {
    /// A poller of `endpoint`, authenticating with HTTP Basic as `client_id`.
    pub fn new(
        verifier: SetVerifier,
        endpoint: Uri,
        client_id: &str,
        client_secret: &str,
        handler: impl Fn(&ReceivedEvent) + Send + Sync + 'static,
    ) -> Self {
        Self {
            verifier,
            endpoint,
            authorization: encode_basic(client_id, client_secret),
            handler: Arc::new(handler),
        }
    }

    /// Polls forever; spawn it.
    pub async fn run(self) {
        let mut ack: Vec<String> = Vec::new();
        let mut errs = serde_json::Map::new();
        let mut failing = false;
        loop {
            let body = json!({
                "ack": ack,
                "setErrs": Value::Object(errs.clone()),
                "maxEvents": 100,
                "returnImmediately": false,
            });
            match self.poll_once(body).await {
                Ok(sets) => {
                    if failing {
                        tracing::info!("polling security events again");
                        failing = false;
                    }
                    ack.clear();
                    errs.clear();
                    for (jti, set) in sets {
                        let Some(jws) = set.as_str() else {
                            continue;
                        };
                        match self.verifier.verify(jws).await {
                            Ok(event) => {
                                (self.handler)(&event);
                                ack.push(jti);
                            }
                            Err(e) if e.description == "this SET was already received" => {
                                ack.push(jti);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "refused a polled security event");
                                errs.insert(
                                    jti,
                                    json!({"err": e.err, "description": e.description}),
                                );
                            }
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot poll security events; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    async fn poll_once(&self, body: Value) -> Result<serde_json::Map<String, Value>, String> {
        let request = Request::post(self.endpoint.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            let response = self
                .verifier
                .client()
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), 16 * 1024 * 1024)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(format!("answered {status}"));
            }
            let json: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            json.get("sets")
                .and_then(|s| s.as_object())
                .cloned()
                .ok_or_else(|| "no sets in the answer".to_owned())
        })
        .await;
        answer.unwrap_or_else(|_| Err("timed out".to_owned()))
    }
}
