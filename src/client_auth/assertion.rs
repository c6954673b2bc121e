//! `private_key_jwt`: client assertions and their checks ([`ClientAssertions`]).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;

use crate::{
    jose::{ClientKeys, JoseError, KeysSource},
    registry::Client,
    store::{
        replay::{DynReplay, SharedReplay},
        ReplayCache, StoreError,
    },
};

/// The longest assertion read, in bytes.
pub(crate) const MAX_ASSERTION: usize = super::credentials::MAX_ASSERTION;

/// Clock skew allowed either way.
const LEEWAY: u64 = 30;

/// The claims of `jws`, checked by the client's keys: a key it names or the one key of
/// its algorithm; a remote set is fetched again (rate-limited) when that fails.
async fn verify_by(keys: &ClientKeys, jws: &str) -> Result<Claims, AssertionError> {
    const TYPS: &[&str] = &["JWT", "client-authentication+jwt"];
    match keys.source() {
        KeysSource::Inline(keys) => keys.verify_any(jws, TYPS).map_err(AssertionError::jose),
        #[cfg(feature = "remote")]
        KeysSource::Remote(remote) => {
            let held = remote.keys();
            if !held.is_empty() {
                if let Ok(claims) = held.verify_any(jws, TYPS) {
                    return Ok(claims);
                }
            }
            if let Err(e) = remote.refresh(held.is_empty()).await {
                tracing::warn!(error = %e, "cannot read a client's jwks_uri");
            }
            remote
                .keys()
                .verify_any(jws, TYPS)
                .map_err(AssertionError::jose)
        }
    }
}

/// Why an assertion was refused.
#[derive(Debug)]
pub enum AssertionError {
    /// The assertion is malformed, forged, expired, replayed, or for another audience or
    /// client: 401 `invalid_client`, with what was wrong.
    Invalid(String),
    /// The replay cache could not be asked: 503.
    Unavailable(StoreError),
}

impl AssertionError {
    fn invalid(what: impl Into<String>) -> Self {
        AssertionError::Invalid(what.into())
    }

    fn jose(err: JoseError) -> Self {
        AssertionError::Invalid(format!("the client assertion is not valid: {err}"))
    }
}

impl fmt::Display for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssertionError::Invalid(what) => f.write_str(what),
            AssertionError::Unavailable(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for AssertionError {}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: serde_json::Value,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    jti: Option<String>,
}

/// `private_key_jwt` ([RFC 7523 §2.2], [OpenID Connect Core §9]): a client authenticates
/// with a JWT it signed with a key it registered, sent as `client_assertion` with
/// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
///
/// This checks them, for [`ClientAuthLayer::assertions`] and the
/// endpoints' builders:
///
/// | claim or header | rule |
/// |---|---|
/// | signature | by a key of the client's set ([`ClientKeys`], inline or at a `jwks_uri`), with an algorithm that key is pinned to: never `none`, never HMAC |
/// | `typ` | absent, `JWT` or `client-authentication+jwt` (no other kind of JWT passes for an assertion) |
/// | `iss`, `sub` | both the client's id |
/// | `aud` | the issuer, or the URL of the endpoint called (the issuer's origin and the request's path), as a string or in an array; with [`issuer_audience_only`](Self::issuer_audience_only), only the issuer as a string |
/// | `exp` | required, not past, at most [`max_lifetime`](Self::max_lifetime) (default 5 minutes) ahead |
/// | `iat`, `nbf` | if present, not in the future |
/// | `jti` | required; used once, across every node sharing the [`ReplayCache`] (checked last, so that nothing unverified is recorded) |
///
/// Clock skew of 30 seconds is allowed either way. `client_secret_jwt` is not offered:
/// registries keep only digests of secrets, and an HMAC can only be checked with the
/// secret itself.
///
/// ```
/// use std::time::{SystemTime, UNIX_EPOCH};
/// use serde_json::json;
/// use tower_oauth_revoke::{
///     client_auth::{Client, ClientAssertions, ClientKeys},
///     jose::{KeySet, SigningKey},
///     store::MemoryStore,
/// };
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // The client's key pair; the server knows only the public half.
/// let key = SigningKey::generate();
/// let keys = ClientKeys::inline(KeySet::from_jwks(&key.jwks()).unwrap());
/// let client = Client::private_key_jwt("app", keys);
///
/// let assertions = ClientAssertions::new("https://as.example", MemoryStore::new());
/// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
/// let claims = json!({
///     "iss": "app", "sub": "app", "aud": "https://as.example",
///     "exp": now + 60, "jti": "a-unique-id",
/// });
/// let assertion = key.sign("JWT", &claims).unwrap();
/// assertions.verify(&client, &assertion, "/oauth2/token").await.unwrap();
/// // The same assertion again is a replay.
/// assert!(assertions.verify(&client, &assertion, "/oauth2/token").await.is_err());
/// # }
/// ```
///
/// [RFC 7523 §2.2]: https://www.rfc-editor.org/rfc/rfc7523#section-2.2
/// [OpenID Connect Core §9]: https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication
/// [`ClientAuthLayer::assertions`]: crate::client_auth::ClientAuthLayer::assertions
#[derive(Clone)]
pub struct ClientAssertions {
    inner: Arc<Config>,
}

struct Config {
    issuer: String,
    /// `scheme://host[:port]` of the issuer: an endpoint's URL is this and its path.
    origin: String,
    audiences: Vec<String>,
    issuer_only: bool,
    max_lifetime: Duration,
    replay: SharedReplay,
}

impl fmt::Debug for ClientAssertions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertions")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("issuer_only", &self.inner.issuer_only)
            .field("max_lifetime", &self.inner.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl ClientAssertions {
    /// Assertions for the authorization server `issuer` (its RFC 8414 issuer identifier),
    /// their `jti`s kept in `replay` (the token store, so that every node shares them).
    pub fn new(issuer: &str, replay: impl ReplayCache) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let origin = match issuer.find("://") {
            Some(i) => match issuer[i + 3..].find('/') {
                Some(j) => issuer[..i + 3 + j].to_owned(),
                None => issuer.clone(),
            },
            None => issuer.clone(),
        };
        Self {
            inner: Arc::new(Config {
                issuer,
                origin,
                audiences: Vec::new(),
                issuer_only: false,
                max_lifetime: Duration::from_secs(300),
                replay: Arc::new(replay) as Arc<dyn DynReplay>,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(config) => f(config),
            None => {
                let old = &self.inner;
                let mut config = Config {
                    issuer: old.issuer.clone(),
                    origin: old.origin.clone(),
                    audiences: old.audiences.clone(),
                    issuer_only: old.issuer_only,
                    max_lifetime: old.max_lifetime,
                    replay: old.replay.clone(),
                };
                f(&mut config);
                self.inner = Arc::new(config);
            }
        }
        self
    }

    /// Accepts `aud` as an audience too (another URL the server is known by).
    #[must_use]
    pub fn audience(self, aud: impl Into<String>) -> Self {
        let aud = aud.into();
        self.edit(|c| c.audiences.push(aud))
    }

    /// Accepts only the issuer identifier, as a single string, as the audience (what
    /// `draft-ietf-oauth-rfc7523bis` asks of new deployments); by default the endpoint's URL
    /// and arrays are accepted too, as RFC 7523 and OpenID Connect allowed.
    #[must_use]
    pub fn issuer_audience_only(self) -> Self {
        self.edit(|c| c.issuer_only = true)
    }

    /// How far ahead an assertion's `exp` may be (default 5 minutes).
    #[must_use]
    pub fn max_lifetime(self, lifetime: Duration) -> Self {
        self.edit(|c| c.max_lifetime = lifetime)
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Checks `assertion` for `client`, sent to the endpoint at `path`; see the
    /// [type docs](Self) for the rules. The `jti` is recorded only once every other
    /// check passed.
    pub async fn verify(
        &self,
        client: &Client,
        assertion: &str,
        path: &str,
    ) -> Result<(), AssertionError> {
        self.verify_at(client, assertion, path, SystemTime::now())
            .await
    }

    pub(crate) async fn verify_at(
        &self,
        client: &Client,
        assertion: &str,
        path: &str,
        now: SystemTime,
    ) -> Result<(), AssertionError> {
        if assertion.len() > MAX_ASSERTION {
            return Err(AssertionError::invalid("the client assertion is too long"));
        }
        let keys = client
            .keys()
            .ok_or_else(|| AssertionError::invalid("the client has no registered keys"))?;
        let claims = verify_by(keys, assertion).await?;
        let id = client.id();
        if claims.iss.as_deref() != Some(id) || claims.sub.as_deref() != Some(id) {
            return Err(AssertionError::invalid(
                "the client assertion's iss and sub must both be the client's id",
            ));
        }
        if !self.audience_ok(&claims.aud, path) {
            return Err(AssertionError::invalid(
                "the client assertion's aud is not this server",
            ));
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let leeway = LEEWAY as f64;
        let exp = claims
            .exp
            .ok_or_else(|| AssertionError::invalid("the client assertion has no exp"))?;
        if exp + leeway <= now {
            return Err(AssertionError::invalid("the client assertion has expired"));
        }
        if exp > now + self.inner.max_lifetime.as_secs_f64() + leeway {
            return Err(AssertionError::invalid(
                "the client assertion's exp is too far ahead",
            ));
        }
        for (claim, value) in [("iat", claims.iat), ("nbf", claims.nbf)] {
            if value.is_some_and(|v| v > now + leeway) {
                return Err(AssertionError::invalid(format!(
                    "the client assertion's {claim} is in the future"
                )));
            }
        }
        let jti = match claims.jti.as_deref() {
            Some(jti) if !jti.is_empty() && jti.len() <= 256 => jti,
            _ => {
                return Err(AssertionError::invalid(
                    "the client assertion needs a jti of 1 to 256 characters",
                ))
            }
        };
        let until = UNIX_EPOCH + Duration::from_secs_f64(exp.max(0.0) + leeway);
        match self.inner.replay.first_use_dyn(id, jti, until).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AssertionError::invalid(
                "the client assertion was used before",
            )),
            Err(err) => Err(AssertionError::Unavailable(err)),
        }
    }

    fn audience_ok(&self, aud: &serde_json::Value, path: &str) -> bool {
        let config = &self.inner;
        let one = |aud: &str| {
            let aud = aud.trim_end_matches('/');
            aud == config.issuer
                || (!config.issuer_only
                    && ((aud.len() == config.origin.len() + path.len()
                        && aud.starts_with(&config.origin)
                        && aud.ends_with(path)
                        && path.starts_with('/'))
                        || config
                            .audiences
                            .iter()
                            .any(|a| a.trim_end_matches('/') == aud)))
        };
        match aud {
            serde_json::Value::String(aud) => one(aud),
            serde_json::Value::Array(auds) if !config.issuer_only => {
                auds.iter().any(|a| a.as_str().is_some_and(one))
            }
            _ => false,
        }
    }
}

/// The client id an assertion claims (`sub`), read without checking anything: which
/// client's keys to check it with.
pub(crate) fn claimed_client(assertion: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(Deserialize)]
    struct Subject {
        sub: Option<String>,
    }
    serde_json::from_slice::<Subject>(&bytes).ok()?.sub
}

#[cfg(test)]
mod tests;
