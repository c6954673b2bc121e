//! The receiving side, for resource servers: verify SETs against the issuer's keys, take
//! pushes ([RFC 8935]), poll ([RFC 8936]).
//!
//! [`SetVerifier`] reads the issuer's metadata (`jwks_uri`) and key set, and accepts a SET
//! only when: it is a JWS of a key in that set (an unknown `kid` refetches the set, at most
//! once every 5 s), with that key's algorithm (never `none`), `typ` `secevent+jwt`, `iss`
//! the issuer, `iat` not in the future, a `jti` not seen before (kept an hour), and an
//! event of this crate's types ([`super::ReceivedEvent`]). Anything else changes nothing.
//!
//! [RFC 8935]: https://www.rfc-editor.org/rfc/rfc8935
//! [RFC 8936]: https://www.rfc-editor.org/rfc/rfc8936

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, RwLock},
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::{json, Value};
use tower_service::Service;

use super::{ReceivedEvent, CONTENT_TYPE, TYP};
use crate::{client_auth::encode_basic, jose::KeySet};

const MAX_BODY: usize = 64 * 1024;
const REPLAY_WINDOW: Duration = Duration::from_secs(3600);
const REPLAY_CAPACITY: usize = 100_000;
const REFETCH_EVERY: Duration = Duration::from_secs(5);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
    client: HttpClient,
    jwks_uri: RwLock<Option<Uri>>,
    keys: RwLock<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
    fetch: tokio::sync::Mutex<()>,
    seen: Mutex<HashMap<String, Instant>>,
    timeout: Duration,
}

/// Verifies SETs from one issuer; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct SetVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for SetVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetVerifier")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An HTTP client for `https` or `http`, with `tls` or the webpki roots.
pub(crate) fn http_client(tls: Option<rustls::ClientConfig>) -> HttpClient {
    let connector = match tls {
        Some(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config),
        None => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
    }
    .https_or_http()
    .enable_http1()
    .build();
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
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
                client: http_client(tls),
                jwks_uri: RwLock::new(None),
                keys: RwLock::new(KeySet::default()),
                last_fetch: Mutex::new(None),
                fetch: tokio::sync::Mutex::new(()),
                seen: Mutex::new(HashMap::new()),
                timeout: Duration::from_secs(5),
            }),
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The keys known now.
    pub fn keys(&self) -> KeySet {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A GET of JSON.
    pub(crate) async fn get_json(&self, uri: Uri) -> Result<Value, KeysUnavailable> {
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| KeysUnavailable(e.to_string()))?;
        let answer = tokio::time::timeout(self.inner.timeout, async {
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(|e| KeysUnavailable(e.to_string()))?;
            if response.status() != StatusCode::OK {
                return Err(KeysUnavailable(format!("answered {}", response.status())));
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| KeysUnavailable(e.to_string()))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| KeysUnavailable(e.to_string()))
        })
        .await;
        answer.unwrap_or_else(|_| Err(KeysUnavailable("timed out".into())))
    }

    /// Reads the key set again (the metadata first, until read once). Rate-limited: does
    /// nothing within 5 s of the last fetch unless `force`.
    pub async fn refresh_keys(&self, force: bool) -> Result<(), KeysUnavailable> {
        let _one_at_a_time = self.inner.fetch.lock().await;
        if !force {
            if let Some(last) = *lock(&self.inner.last_fetch) {
                if last.elapsed() < REFETCH_EVERY {
                    return Ok(());
                }
            }
        }
        *lock(&self.inner.last_fetch) = Some(Instant::now());
        let known = self
            .inner
            .jwks_uri
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => {
                let metadata = self.get_json(self.inner.metadata.clone()).await?;
                if metadata.get("issuer").and_then(|i| i.as_str()) != Some(&self.inner.issuer) {
                    return Err(KeysUnavailable("the metadata names another issuer".into()));
                }
                let uri: Uri = metadata
                    .get("jwks_uri")
                    .and_then(|u| u.as_str())
                    .and_then(|u| u.parse().ok())
                    .ok_or_else(|| KeysUnavailable("the metadata has no jwks_uri".into()))?;
                *self
                    .inner
                    .jwks_uri
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Some(uri.clone());
                uri
            }
        };
        let jwks = self.get_json(jwks_uri).await?;
        let keys =
            KeySet::from_jwks(&jwks.to_string()).map_err(|e| KeysUnavailable(e.to_string()))?;
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    /// Verifies a SET; see the [module docs](self) for what is checked. A `jti` is
    /// remembered only once the SET passed every check.
    pub async fn verify(&self, jws: &str) -> Result<ReceivedEvent, SetError> {
        let keys = self.keys();
        if keys.is_empty() || keys.names_unknown_key(jws) {
            if let Err(e) = self.refresh_keys(false).await {
                tracing::warn!(error = %e, "cannot read the issuer's keys");
            }
        }
        let keys = self.keys();
        let claims: Value = keys.verify(jws, TYP).map_err(|e| {
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
}

/// What to do with each verified event.
pub type Handler = Arc<dyn Fn(&ReceivedEvent) + Send + Sync>;

/// Takes pushed SETs (RFC 8935): `POST` with `Content-Type: application/secevent+jwt`;
/// 202 once verified and handed to the handler, 400 `{"err","description"}` otherwise.
#[derive(Clone)]
pub struct PushReceiver {
    verifier: SetVerifier,
    handler: Handler,
}

impl fmt::Debug for PushReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushReceiver")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl PushReceiver {
    /// A receiver handing each verified event to `handler`.
    pub fn new(
        verifier: SetVerifier,
        handler: impl Fn(&ReceivedEvent) + Send + Sync + 'static,
    ) -> Self {
        Self {
            verifier,
            handler: Arc::new(handler),
        }
    }
}

fn answer(status: StatusCode, body: Option<Value>) -> Response<crate::body::Body> {
    let mut response = Response::new(crate::body::Body::new(
        body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    ));
    *response.status_mut() = status;
    if status != StatusCode::ACCEPTED {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

fn refused(err: &str, description: &str) -> Response<crate::body::Body> {
    answer(
        StatusCode::BAD_REQUEST,
        Some(json!({"err": err, "description": description})),
    )
}

impl<B> Service<Request<B>> for PushReceiver
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    answer_service!(Request<B>);
}

impl PushReceiver {
    async fn answer<B>(&self, req: Request<B>) -> Response<crate::body::Body>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        if req.method() != Method::POST {
            let mut response = refused("invalid_request", "push with POST");
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some(CONTENT_TYPE) {
            return refused(
                "invalid_request",
                "the content type must be application/secevent+jwt",
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return refused("invalid_request", "the body is too large"),
        };
        let Ok(jws) = std::str::from_utf8(&body) else {
            return refused("invalid_request", "the body is not a SET");
        };
        match self.verifier.verify(jws.trim()).await {
            Ok(event) => {
                (self.handler)(&event);
                answer(StatusCode::ACCEPTED, None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a pushed security event");
                refused(e.err, &e.description)
            }
        }
    }
}

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

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

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
                .inner
                .client
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
