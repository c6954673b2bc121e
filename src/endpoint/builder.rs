//! Configuring an [`Endpoint`]: one configuration for the fused pipeline and the composed
//! layers alike.

use std::{fmt, sync::Arc, time::Duration};

use tower_layer::Layer;

use super::{
    pipeline::{Fused, Pipeline},
    Endpoint, EndpointStep, StepService,
};
use crate::{
    client_auth::{AuthFailureLimiter, ClientAuth, ClientAuthLayer, ClientRegistry},
    cors::{CorsPolicy, CorsPolicyService, OriginCheck, DEFAULT_MAX_AGE},
    form::{Form, FormLayer, DEFAULT_LIMIT},
    jsonp::{Jsonp, JsonpLayer},
};

/// Builds an [`Endpoint`]: [`RevocationEndpoint::builder`](crate::RevocationEndpoint)
/// for revocation, [`Endpoint::with_step`] for any other last step.
#[must_use]
pub struct EndpointBuilder<R, T> {
    clients: R,
    step: T,
    body_limit: usize,
    realm: String,
    limiter: Option<AuthFailureLimiter>,
    cors_origins: Vec<String>,
    cors_max_age: Duration,
    jsonp: bool,
    annotate: bool,
    quiet: bool,
    #[cfg(feature = "jwt")]
    assertions: Option<crate::client_auth::ClientAssertions>,
    #[cfg(feature = "mtls")]
    certificates: bool,
}

debug_fields!(EndpointBuilder<R, T> { body_limit, realm, cors_origins, cors_max_age, jsonp, annotate });

/// A configuration the builder cannot build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// An origin given to [`cors_origins`](EndpointBuilder::cors_origins) is not a valid
    /// origin.
    InvalidCorsOrigin(crate::origin::InvalidOrigin),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidCorsOrigin(err) => write!(f, "cors_origins: {err}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::InvalidCorsOrigin(err) => Some(err),
        }
    }
}

impl<R, T> Endpoint<R, T> {
    /// A builder of the pipeline with `step` last: a host's own OAuth endpoint (see
    /// [`EndpointStep`]).
    pub fn with_step(clients: R, step: T) -> EndpointBuilder<R, T> {
        EndpointBuilder::new(clients, step)
    }
}

impl<R, T> EndpointBuilder<R, T> {
    /// The builder with its step changed by `f`: how a step's module adds settings of its
    /// own to the builder.
    pub(crate) fn map_step(mut self, f: impl FnOnce(T) -> T) -> Self {
        self.step = f(self.step);
        self
    }

    fn new(clients: R, step: T) -> Self {
        Self {
            clients,
            step,
            body_limit: DEFAULT_LIMIT,
            realm: crate::error::DEFAULT_REALM.to_owned(),
            limiter: None,
            cors_origins: Vec::new(),
            cors_max_age: DEFAULT_MAX_AGE,
            jsonp: false,
            annotate: false,
            quiet: false,
            #[cfg(feature = "jwt")]
            assertions: None,
            #[cfg(feature = "mtls")]
            certificates: false,
        }
    }

    setters! {
        /// The body limit in bytes (default 8 KiB).
        pub fn body_limit(limit: usize) => body_limit;

        /// The realm of `WWW-Authenticate: Basic realm="..."` (default
        /// [`DEFAULT_REALM`](crate::error::DEFAULT_REALM), `oauth`).
        pub fn realm(realm: impl Into<String>) => realm = realm.into();

        /// Limits failed client authentications per client id and remote address.
        pub fn limit_failures(limiter: AuthFailureLimiter) => limiter = Some(limiter);
    }

    /// Accepts `private_key_jwt` from clients registered with keys, checked by
    /// `assertions` (feature `jwt`); the metadata then lists it for this endpoint.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn client_assertions(mut self, assertions: crate::client_auth::ClientAssertions) -> Self {
        self.assertions = Some(assertions);
        self
    }

    /// Accepts mutual-TLS client authentication (`tls_client_auth`,
    /// `self_signed_tls_client_auth`; feature `mtls`): see
    /// [`ClientAuthLayer::certificates`]. The metadata then lists both methods for this
    /// endpoint.
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn client_certificates(mut self, enabled: bool) -> Self {
        self.certificates = enabled;
        self
    }

    /// Browser origins allowed for every client (CORS), such as `https://app.example.com`:
    /// exact origins, no path, no `*`, not `null`. Clients' own origins are allowed too.
    /// An invalid origin makes [`build`](Self::build) fail.
    pub fn cors_origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        self.cors_origins = origins.into_iter().map(|o| o.as_ref().to_owned()).collect();
        self
    }

    setters! {
        /// How long browsers may cache a CORS preflight answer (default 10 minutes).
        pub fn cors_max_age(max_age: Duration) => cors_max_age;

        /// Turns JSONP on ([RFC 7009 §2.3]): responses are wrapped for a valid `callback`, and
        /// `GET` with `callback` is accepted, its parameters taken from the query string. Off
        /// by default. See [`Endpoint`] on tokens in URLs.
        ///
        /// [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3
        pub fn jsonp(enabled: bool) => jsonp;

        /// Puts, for request logs, the [`AuthenticatedClient`] in each response's extensions,
        /// and lets the step add what it did (the revocation step: the [`RevocationOutcome`]),
        /// as the composed layers do. Off by default: it costs four allocations per request.
        ///
        /// ```
        /// use bytes::Bytes;
        /// use http_body_util::Full;
        /// use tower::ServiceExt;
        /// use tower_oauth_revoke::{
        ///     client_auth::{encode_basic, AuthenticatedClient, Client, MemoryClientRegistry},
        ///     store::{MemoryStore, RevocationOutcome},
        ///     RevocationEndpoint,
        /// };
        ///
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let clients = MemoryClientRegistry::new([Client::confidential("app", "s3cret")]);
        /// let endpoint = RevocationEndpoint::builder(clients, MemoryStore::new())
        ///     .annotate_responses(true)
        ///     .build()
        ///     .unwrap();
        /// let request = http::Request::post("/oauth2/revoke")
        ///     .header("authorization", encode_basic("app", "s3cret"))
        ///     .header("content-type", "application/x-www-form-urlencoded")
        ///     .body(Full::new(Bytes::from_static(b"token=unknown")))
        ///     .unwrap();
        /// let response = endpoint.oneshot(request).await.unwrap();
        /// assert_eq!(response.extensions().get::<AuthenticatedClient>().unwrap().id(), "app");
        /// assert_eq!(
        ///     response.extensions().get::<RevocationOutcome>(),
        ///     Some(&RevocationOutcome::NotActive)
        /// );
        /// # }
        /// ```
        ///
        /// [`AuthenticatedClient`]: crate::client_auth::AuthenticatedClient
        /// [`RevocationOutcome`]: crate::store::RevocationOutcome
        pub fn annotate_responses(enabled: bool) => annotate;

        /// Whether the step logs each request's outcome (`token revocation`, `token
        /// introspection`) at INFO (the default) or, with `false`, at DEBUG: for a host whose own
        /// request log already says it (from [`annotate_responses`](Self::annotate_responses)),
        /// so that each request costs one formatted event, not two. Failures (a store down) are
        /// logged at ERROR either way. Applies to [`build`](Self::build).
        pub fn log_outcomes(enabled: bool) => quiet = !enabled;
    }

    fn cors(&self) -> Result<CorsPolicy, BuildError> {
        Ok(CorsPolicy::new()
            .origins(&self.cors_origins)
            .map_err(BuildError::InvalidCorsOrigin)?
            .max_age(self.cors_max_age)
            .allow_get(self.jsonp))
    }

    fn form(&self) -> FormLayer {
        FormLayer::new()
            .limit(self.body_limit)
            .allow_get_with_callback(self.jsonp)
    }

    fn auth(&self, cors: &CorsPolicy) -> ClientAuthLayer<R>
    where
        R: Clone,
    {
        let auth = ClientAuthLayer::new(self.clients.clone())
            .realm(&self.realm)
            .cors(cors);
        #[cfg(feature = "mtls")]
        let auth = auth.certificates(self.certificates);
        #[cfg(feature = "jwt")]
        let auth = match &self.assertions {
            Some(assertions) => auth.assertions(assertions.clone()),
            None => auth,
        };
        match &self.limiter {
            Some(limiter) => auth.limit_failures(limiter.clone()),
            None => auth,
        }
    }
}

/// The composed layers an [`EndpointBuilder`] builds with
/// [`build_layered`](EndpointBuilder::build_layered).
pub type LayeredEndpoint<R, T> =
    CorsPolicyService<Form<Jsonp<ClientAuth<OriginCheck<StepService<T>>, R>>>>;

impl<R: ClientRegistry, T: EndpointStep> EndpointBuilder<R, T> {
    /// Builds the endpoint: the pipeline in one future per request.
    ///
    /// Fails when an origin given to [`cors_origins`](Self::cors_origins) is not a valid
    /// origin.
    pub fn build(self) -> Result<Endpoint<R, T>, BuildError> {
        let cors = self.cors()?;
        let pipeline = Arc::new(Pipeline {
            form: self.form(),
            jsonp: self.jsonp,
            auth: self.auth(&cors),
            origins: cors.configured_origins().into(),
            step: self.step,
            annotate: self.annotate,
            quiet: self.quiet,
        });
        let with_cors = cors
            .layer_with_clients(self.clients)
            .layer(Fused(pipeline.clone()));
        Ok(Endpoint {
            pipeline,
            cors: Arc::new(with_cors),
        })
    }

    /// Builds the same endpoint as the public layers composed by hand: CORS, form, JSON-P,
    /// client authentication, the origin check and the step as a [`StepService`]. It
    /// answers as [`build`](Self::build)'s endpoint does (`tests/equivalence.rs` checks it),
    /// at the cost of a clone and a boxed future per layer; it is there to check, and for
    /// hosts that insert layers of their own between the steps.
    pub fn build_layered(self) -> Result<LayeredEndpoint<R, T>, BuildError> {
        let cors = self.cors()?;
        let inner = self.form().layer(
            JsonpLayer::new().enabled(self.jsonp).layer(
                self.auth(&cors)
                    .layer(cors.origin_check().layer(StepService::new(self.step))),
            ),
        );
        Ok(cors.layer_with_clients(self.clients).layer(inner))
    }
}
