//! A key set published at a URL: [`RemoteKeySet`].

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::Value;

use super::{JoseError, KeySet};

/// How often the keys may be fetched again.
pub(crate) const REFETCH_EVERY: Duration = Duration::from_secs(5);
/// The largest document read.
const MAX_BODY: usize = 64 * 1024;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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

/// A key set published at a URL (a `jwks_uri`), fetched and cached: [`RemoteKeySet`]. What
/// a SET receiver trusts of its issuer, and what a client registered by `jwks_uri` signs
/// its assertions with.
///
/// The rules, for every such set: the keys are fetched on first use, and again when a
/// token names a `kid` the set does not hold or fails with the keys held (the party rotated
/// its keys), at most once every 5 seconds, one fetch at a time; each fetch has 5 seconds
/// and at most 64 KiB; a failed fetch keeps the keys held. Cheap to clone: clones share
/// the cache.
///
/// ```no_run
/// use tower_oauth_revoke::jose::RemoteKeySet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let keys = RemoteKeySet::new("https://client.example/jwks.json", None).unwrap();
/// keys.refresh(true).await.unwrap();
/// println!("{} keys", keys.keys().len());
/// # }
/// ```
#[derive(Clone)]
pub struct RemoteKeySet {
    inner: Arc<Inner>,
}

struct Inner {
    uri: RwLock<Option<Uri>>,
    client: HttpClient,
    keys: RwLock<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
    fetch: tokio::sync::Mutex<()>,
    timeout: Duration,
    refetch_every: Duration,
}

impl std::fmt::Debug for RemoteKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeySet")
            .field("uri", &*read(&self.inner.uri))
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl RemoteKeySet {
    /// The key set at `jwks_uri` (`https`, or `http` for tests on loopback); `tls`
    /// overrides the webpki roots. Nothing is fetched yet. Must be used within a Tokio
    /// runtime.
    pub fn new(jwks_uri: &str, tls: Option<rustls::ClientConfig>) -> Result<Self, JoseError> {
        let uri: Uri = jwks_uri
            .parse()
            .map_err(|e| JoseError::new(format!("jwks_uri {jwks_uri:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
            return Err(JoseError::new(format!(
                "jwks_uri {jwks_uri:?} is not an http(s) URL"
            )));
        }
        let keys = Self::unset(http_client(tls));
        *write(&keys.inner.uri) = Some(uri);
        Ok(keys)
    }

    /// Sets how long after a fetch the keys may be fetched again (default 5 s): a token
    /// naming an unknown key within that time is refused without a fetch, so that a flood of
    /// made-up key ids cannot make the server hammer the URL.
    #[must_use]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.refetch_every = interval,
            None => {
                let old = &self.inner;
                let copy = Self::unset(old.client.clone());
                *write(&copy.inner.uri) = read(&old.uri).clone();
                return copy.min_refetch_interval(interval);
            }
        }
        self
    }

    /// A set whose URL is learnt later ([`set_uri`](Self::set_uri)), fetched with `client`.
    pub(crate) fn unset(client: HttpClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                uri: RwLock::new(None),
                client,
                keys: RwLock::new(KeySet::default()),
                last_fetch: Mutex::new(None),
                fetch: tokio::sync::Mutex::new(()),
                timeout: Duration::from_secs(5),
                refetch_every: REFETCH_EVERY,
            }),
        }
    }

    /// The URL, once known.
    pub(crate) fn uri(&self) -> Option<Uri> {
        read(&self.inner.uri).clone()
    }

    /// Sets the URL.
    pub(crate) fn set_uri(&self, uri: Uri) {
        *write(&self.inner.uri) = Some(uri);
    }

    /// The HTTP client keys are fetched with.
    pub(crate) fn client(&self) -> &HttpClient {
        &self.inner.client
    }

    /// The keys held now (none before the first fetch).
    pub fn keys(&self) -> KeySet {
        read(&self.inner.keys).clone()
    }

    /// Fetches the keys again, unless fetched within the last 5 seconds (`force` fetches
    /// anyway). A failed fetch keeps the keys held.
    pub async fn refresh(&self, force: bool) -> Result<(), JoseError> {
        self.refresh_with(force, || async {
            Err(JoseError::new("the key set's URL is not known yet"))
        })
        .await
    }

    /// [`refresh`](Self::refresh), learning the URL with `discover` if it is not known yet
    /// (within the same rate limit).
    pub(crate) async fn refresh_with<F, Fut>(
        &self,
        force: bool,
        discover: F,
    ) -> Result<(), JoseError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Uri, JoseError>>,
    {
        let _one_at_a_time = self.inner.fetch.lock().await;
        {
            let mut last = self
                .inner
                .last_fetch
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !force && last.is_some_and(|at| at.elapsed() < self.inner.refetch_every) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let uri = match self.uri() {
            Some(uri) => uri,
            None => {
                let uri = discover().await?;
                self.set_uri(uri.clone());
                uri
            }
        };
        let jwks = self.get_json(uri).await?;
        let keys = KeySet::from_jwks(&jwks.to_string())?;
        *write(&self.inner.keys) = keys;
        Ok(())
    }

    /// A GET of JSON, in the time and size limits.
    pub(crate) async fn get_json(&self, uri: Uri) -> Result<Value, JoseError> {
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| JoseError::new(e.to_string()))?;
        let answer = tokio::time::timeout(self.inner.timeout, async {
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(|e| JoseError::new(e.to_string()))?;
            if response.status() != StatusCode::OK {
                return Err(JoseError::new(format!("answered {}", response.status())));
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| JoseError::new(e.to_string()))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| JoseError::new(e.to_string()))
        })
        .await;
        answer.unwrap_or_else(|_| Err(JoseError::new("timed out")))
    }
}
