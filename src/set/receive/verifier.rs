//! SETs of one issuer checked against its key set: [`SetVerifier`], and why a SET is refused.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use http::Uri;
use serde_json::Value;

use crate::{
    jose::{http_client, remote::HttpClient, KeySet, RemoteKeySet},
    set::{ReceivedEvent, TYP},
};

const REPLAY_WINDOW: Duration = Duration::from_secs(3600);
const REPLAY_CAPACITY: usize = 100_000;

/// Why a SET was refused: an RFC 8935 §2.4 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    /// `invalid_request`, `invalid_key`, `invalid_issuer` or `authentication_failed`.
    pub err: &'static str,
    /// What was wrong.
    pub description: String,
}

impl SetError {
    fn new(err: &'static str, description: impl Into<String>) -> Self {
        Self {
            err,
            description: description.into(),
        }
    }
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.err, self.description)
    }
}

impl std::error::Error for SetError {}

/// The issuer's keys could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysUnavailable(pub String);

impl fmt::Display for KeysUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the issuer's keys are unavailable: {}", self.0)
    }
}

impl std::error::Error for KeysUnavailable {}

struct Inner {
    issuer: String,
    metadata: Uri,
    /// The issuer's keys, at the `jwks_uri` its metadata names.
    keys: RemoteKeySet,
    seen: Mutex<HashMap<String, Instant>>,
}

/// Verifies SETs from one issuer; see the [module docs](super). Cheap to clone.
#[derive(Clone)]
pub struct SetVerifier {
    inner: Arc<Inner>,
}

debug_fields!(SetVerifier {
    issuer: inner.issuer
});

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SetVerifier {
    /// A verifier for SETs of `issuer`, whose metadata is at
    /// `{issuer}/.well-known/oauth-authorization-server`. `tls` overrides the webpki roots
    /// (e.g. to trust a test certificate). Must be used within a Tokio runtime.
    pub fn new(issuer: &str, tls: Option<rustls::ClientConfig>) -> Result<Self, KeysUnavailable> {
        let metadata: Uri = format!(
            "{}/.well-known/oauth-authorization-server",
            issuer.trim_end_matches('/')
        )
        .parse()
        .map_err(|e| KeysUnavailable(format!("issuer {issuer:?}: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                metadata,
                keys: RemoteKeySet::unset(http_client(tls)),
                seen: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The keys known now.
    pub fn keys(&self) -> KeySet {
        self.inner.keys.keys()
    }

    /// Reads the key set again (the metadata first, until read once). Rate-limited: does
    /// nothing within 5 s of the last fetch unless `force`.
    pub async fn refresh_keys(&self, force: bool) -> Result<(), KeysUnavailable> {
        let discover = || async {
            let metadata = self
                .inner
                .keys
                .get_json(self.inner.metadata.clone())
                .await?;
            if metadata.get("issuer").and_then(|i| i.as_str()) != Some(&self.inner.issuer) {
                return Err(crate::jose::JoseError::new(
                    "the metadata names another issuer",
                ));
            }
            metadata
                .get("jwks_uri")
                .and_then(|u| u.as_str())
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| crate::jose::JoseError::new("the metadata has no jwks_uri"))
        };
        self.inner
            .keys
            .refresh_with(force, discover)
            .await
            .map_err(|e| KeysUnavailable(e.to_string()))
    }

    /// Verifies a SET; see the [module docs](super) for what is checked. A `jti` is
    /// remembered only once the SET passed every check.
    pub async fn verify(&self, jws: &str) -> Result<ReceivedEvent, SetError> {
        let claims = self.verify_signed(jws, TYP).await?;
        let event = ReceivedEvent::from_claims(&claims).ok_or_else(|| {
            SetError::new("invalid_request", "no revocation event of a known type")
        })?;
        let mut seen = lock(&self.inner.seen);
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, at| at.elapsed() < REPLAY_WINDOW);
        }
        if seen.contains_key(&event.set_id) {
            return Err(SetError::new(
                "invalid_request",
                "this SET was already received",
            ));
        }
        seen.insert(event.set_id.clone(), Instant::now());
        Ok(event)
    }

    /// The claims of a JWS of header `typ` signed by a key of the issuer's set (fetched
    /// again for an unknown `kid`) with that key's algorithm, of `iss` the issuer and an
    /// `iat` not in the future.
    pub(super) async fn verify_signed(&self, jws: &str, typ: &str) -> Result<Value, SetError> {
        let keys = self.keys();
        if keys.is_empty() || keys.names_unknown_key(jws) {
            if let Err(e) = self.refresh_keys(false).await {
                tracing::warn!(error = %e, "cannot read the issuer's keys");
            }
        }
        let keys = self.keys();
        let claims: Value = keys.verify(jws, typ).map_err(|e| {
            let err = if keys.names_unknown_key(jws) {
                "invalid_key"
            } else {
                "authentication_failed"
            };
            SetError::new(err, e.to_string())
        })?;
        if claims.get("iss").and_then(|i| i.as_str()) != Some(self.inner.issuer.as_str()) {
            return Err(SetError::new(
                "invalid_issuer",
                "the SET is from another issuer",
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        match claims.get("iat").and_then(|i| i.as_u64()) {
            Some(iat) if iat <= now + 60 => {}
            _ => {
                return Err(SetError::new(
                    "invalid_request",
                    "iat is missing or in the future",
                ))
            }
        }
        Ok(claims)
    }
}

impl SetVerifier {
    /// The HTTP client the verifier fetches keys with, for the poller to poll with.
    pub(super) fn client(&self) -> &HttpClient {
        self.inner.keys.client()
    }
}
