//! The client authentication layer, and the whole authentication of a request that both
//! the layer and the fused pipeline run.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::{AuthError, AuthFailureLimiter, ClientCredentials, CredentialsError, RemoteAddr};
use crate::{
    body::ResponseBody,
    cors::CorsPolicy,
    error::{challenge, ErrorCode, OAuthError, DEFAULT_REALM},
    escape::Escaped,
    form::FormParams,
    future::ResponseFuture,
    origin::Origin,
    registry::{AuthenticatedClient, ClientRegistry},
};

/// A [`Layer`] that authenticates the OAuth client; see the [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientAuthLayer<R> {
    registry: R,
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    www_authenticate: HeaderValue,
    limiter: Option<AuthFailureLimiter>,
    /// Browser origins allowed for every client, besides each client's own.
    origins: Arc<[Origin]>,
    /// `private_key_jwt`: how assertions are checked; none accepted without.
    #[cfg(feature = "jwt")]
    assertions: Option<super::ClientAssertions>,
    /// Mutual TLS: whether the request's client certificate authenticates clients.
    certificates: bool,
}

impl<R> ClientAuthLayer<R> {
    /// Authenticates against `registry`, realm [`DEFAULT_REALM`] (`oauth`), no failure
    /// limit.
    pub fn new(registry: R) -> Self {
        Self {
            registry,
            config: Arc::new(Config {
                www_authenticate: challenge("Basic", DEFAULT_REALM, ""),
                limiter: None,
                origins: Arc::from(Vec::new()),
                #[cfg(feature = "jwt")]
                assertions: None,
                certificates: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the realm of `WWW-Authenticate: Basic realm="..."`. Quotes, backslashes and
    /// control characters are dropped from it.
    pub fn realm(mut self, realm: &str) -> Self {
        self.config_mut().www_authenticate = challenge("Basic", realm, "");
        self
    }

    /// The browser origins allowed for every client: a [`CorsPolicy`]'s configured origins.
    ///
    /// A request whose `Origin` is neither one of these nor listed by any client of the
    /// registry is refused (400 `invalid_request`) before its credentials are looked at, so
    /// that a page on another site cannot spend a client's failure budget from its
    /// visitor's address. By default only the clients' own origins are allowed. Requests
    /// without `Origin` (servers) are not affected.
    pub fn cors(mut self, policy: &CorsPolicy) -> Self {
        self.config_mut().origins = policy.configured_origins().into();
        self
    }

    /// Limits failed authentications per client id and remote address.
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.config_mut().limiter = Some(limiter);
        self
    }

    /// Accepts `tls_client_auth` and `self_signed_tls_client_auth` from clients registered
    /// with a [`CertificateAuth`](super::CertificateAuth): the request's
    /// [`ClientCertificate`](super::mtls::ClientCertificate) (feature `mtls`) is matched
    /// against it. Without it, certificates are not looked at.
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn certificates(mut self, enabled: bool) -> Self {
        self.config_mut().certificates = enabled;
        self
    }

    /// Accepts `private_key_jwt` from clients registered with keys, checked by
    /// `assertions` (feature `jwt`). Without it, a client assertion is refused.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn assertions(mut self, assertions: super::ClientAssertions) -> Self {
        self.config_mut().assertions = Some(assertions);
        self
    }
}

impl<S, R: Clone> Layer<S> for ClientAuthLayer<R> {
    type Service = ClientAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAuth {
            inner,
            registry: self.registry.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service of [`ClientAuthLayer`].
#[derive(Debug, Clone)]
pub struct ClientAuth<S, R> {
    inner: S,
    registry: R,
    config: Arc<Config>,
}

impl<S, R> ClientAuth<S, R> {
    /// Wraps `inner`, authenticating against `registry`.
    pub fn new(inner: S, registry: R) -> Self
    where
        R: Clone,
    {
        ClientAuthLayer::new(registry).layer(inner)
    }

    /// The layer for `registry`.
    pub fn layer(registry: R) -> ClientAuthLayer<R> {
        ClientAuthLayer::new(registry)
    }

    inner_service_accessors!(S);
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for ClientAuth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: ClientRegistry,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    forward_ready!();

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let registry = self.registry.clone();
        let config = self.config.clone();
        let mut inner = crate::future::take_ready(&mut self.inner);
        ResponseFuture::steps(async move {
            let result = authenticate_request(
                &registry,
                &config,
                req.headers(),
                req.extensions().get::<FormParams>(),
                RemoteAddr::from_extensions(req.extensions()),
                req.uri().path(),
                super::presented_certificate(req.extensions()),
            )
            .await;
            match result {
                Ok(client) => {
                    req.extensions_mut().insert(client.clone());
                    let mut response = inner.call(req).await?;
                    // For the host's request log: who was served, never how.
                    response.extensions_mut().insert(client);
                    Ok(response.map(ResponseBody::new))
                }
                Err(err) => Ok(err.to_response()),
            }
        })
    }
}

impl Config {
    /// The `WWW-Authenticate: Basic realm=…` challenge of a 401.
    pub(crate) fn challenge(&self) -> &HeaderValue {
        &self.www_authenticate
    }

    /// Whether mutual-TLS client authentication is accepted.
    pub(crate) fn accepts_certificates(&self) -> bool {
        self.certificates
    }

    /// Whether `private_key_jwt` is accepted.
    pub(crate) fn accepts_assertions(&self) -> bool {
        #[cfg(feature = "jwt")]
        return self.assertions.is_some();
        #[cfg(not(feature = "jwt"))]
        return false;
    }
}

impl<R> ClientAuthLayer<R> {
    /// The registry.
    pub(crate) fn registry(&self) -> &R {
        &self.registry
    }

    /// The configuration shared by the layer's services.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }
}

/// The whole client authentication of a request, failure limit and logs included: the
/// client, or the error to answer with (a 401 always with `WWW-Authenticate: Basic`).
///
/// The failure budget counts only real guesses: a request from an origin nothing allows,
/// malformed credentials, and credentials with no secret to check (a confidential client
/// named alone, a public client with a secret) are refused without spending it.
pub(crate) async fn authenticate_request<R: ClientRegistry>(
    registry: &R,
    config: &Config,
    headers: &HeaderMap,
    params: Option<&FormParams>,
    addr: Option<RemoteAddr>,
    path: &str,
    certificate: Option<&super::PresentedCertificate>,
) -> Result<AuthenticatedClient, OAuthError> {
    crate::cors::known_origin(registry, &config.origins, headers).await?;
    // RFC 9110 §15.5.2: every 401 carries a challenge, whichever way the client tried.
    let challenge = |err: OAuthError| -> OAuthError {
        if err.status() == StatusCode::UNAUTHORIZED {
            err.with_www_authenticate(config.www_authenticate.clone())
        } else {
            err
        }
    };
    let credentials = match ClientCredentials::from_request(headers, params) {
        Ok(c) => c,
        Err(err) => {
            // Malformed or missing credentials guess no secret: nothing to count.
            let oauth = match err {
                CredentialsError::MultipleMethods | CredentialsError::RepeatedHeader => {
                    OAuthError::invalid_request(err.to_string())
                }
                _ => OAuthError::invalid_client(err.to_string()),
            };
            tracing::debug!(outcome = "invalid_client", reason = %err, "client authentication failed");
            return Err(challenge(oauth));
        }
    };
    // A secret is a guess. A client named alone guesses nothing (there is nothing to
    // guess), so its budget is left alone.
    let guesses = credentials.secret().is_some_and(|s| !s.is_empty())
        || credentials.client_assertion().is_some();
    // The attempt spends its unit of the budget now, before the registry is asked, so that
    // concurrent attempts cannot overspend it.
    let attempt = match config
        .limiter
        .as_ref()
        .filter(|_| guesses)
        .map(|l| l.begin(credentials.client_id(), addr))
    {
        None => None,
        Some(Ok(attempt)) => Some(attempt),
        Some(Err(retry)) => {
            tracing::warn!(
                client_id = %Escaped(credentials.client_id()),
                outcome = "rate_limited",
                "too many failed client authentications"
            );
            return Err(OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TemporarilyUnavailable,
                "too many failed client authentications; try again later",
            )
            .with_retry_after(retry));
        }
    };
    // Timed only for the debug events below: a clock read is not free.
    let start = tracing::enabled!(tracing::Level::DEBUG).then(std::time::Instant::now);
    let latency_us = || start.map(|s| s.elapsed().as_micros() as u64);
    let failed = |reason: &'static str| {
        tracing::debug!(
            client_id = %Escaped(credentials.client_id()),
            outcome = "invalid_client",
            reason,
            latency_us = latency_us(),
            "client authentication failed"
        );
        Err(challenge(OAuthError::invalid_client(
            "client authentication failed",
        )))
    };
    let context = super::authenticate::AuthContext {
        #[cfg(feature = "jwt")]
        assertions: config.assertions.as_ref(),
        path,
        certificate: certificate.filter(|_| config.certificates),
    };
    match super::authenticate::authenticate_in(registry, &credentials, context).await {
        Ok(client) => {
            if let Some(attempt) = attempt {
                attempt.succeeded();
            }
            tracing::debug!(
                client_id = %Escaped(client.id()),
                method = client.method().as_str(),
                latency_us = latency_us(),
                "client authenticated"
            );
            Ok(client)
        }
        Err(AuthError::Unavailable(err)) => {
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            tracing::error!(error = %err, "client registry unavailable");
            Err(OAuthError::temporarily_unavailable(
                "the client registry is unavailable; try again later",
                1,
            ))
        }
        Err(AuthError::SecretForPublicClient) => {
            // Nothing was guessed: the unit goes back.
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            failed("a public client sent a secret")
        }
        Err(AuthError::CertificateRefused(why)) => {
            if let Some(attempt) = attempt {
                attempt.abandon();
            }
            tracing::debug!(
                client_id = %Escaped(credentials.client_id()),
                outcome = "invalid_client",
                reason = why,
                latency_us = latency_us(),
                "client authentication failed"
            );
            Err(challenge(OAuthError::invalid_client(why)))
        }
        Err(AuthError::InvalidAssertion(why)) => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            tracing::debug!(
                client_id = %Escaped(credentials.client_id()),
                outcome = "invalid_client",
                reason = %why,
                latency_us = latency_us(),
                "client authentication failed"
            );
            Err(challenge(OAuthError::invalid_client(why)))
        }
        Err(_) => {
            if let Some(attempt) = attempt {
                attempt.failed();
            }
            failed(if guesses { "rejected" } else { "no secret" })
        }
    }
}
