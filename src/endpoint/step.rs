//! The last step of an endpoint: the seam where the protocol goes.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use tower_service::Service;

use crate::{
    body::Body,
    client_auth::{AuthenticatedClient, ClientKind, RemoteAddr},
    error::{challenge, OAuthError, DEFAULT_REALM},
    form::FormParams,
};

/// What an [`Endpoint`](super::Endpoint) does once the pipeline has read the form,
/// authenticated the client and checked the origin: revoke, introspect, issue a token.
///
/// The pipeline renders an `Err` as the OAuth error response, and turns an `Ok` response's
/// bytes into the body; CORS and JSON-P wrap either. A step is called only for requests that
/// passed every earlier step, so it never sees an unauthenticated request.
///
/// A host's own token endpoint is the pipeline with its own step:
///
/// ```
/// use bytes::Bytes;
/// use http::{header, Response};
/// use tower_oauth_revoke::{
///     client_auth::{Client, MemoryClientRegistry},
///     endpoint::{Endpoint, EndpointStep, StepRequest},
///     error::OAuthError,
/// };
///
/// /// Answers `grant_type=client_credentials` with a greeting instead of a token.
/// struct Greeter;
///
/// impl EndpointStep for Greeter {
///     async fn answer(&self, request: StepRequest<'_>) -> Result<Response<Bytes>, OAuthError> {
///         if request.params().get("grant_type") != Some("client_credentials") {
///             return Err(OAuthError::invalid_request("`grant_type` must be client_credentials"));
///         }
///         let body = format!("{{\"hello\":\"{}\"}}", request.client().id());
///         let mut response = Response::new(Bytes::from(body));
///         response.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
///         Ok(response)
///     }
/// }
///
/// let clients = MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]);
/// let token_endpoint = Endpoint::with_step(clients, Greeter).realm("example").build().unwrap();
/// let app: axum::Router = axum::Router::new().route_service("/oauth2/token", token_endpoint);
/// # let _ = app;
/// ```
pub trait EndpointStep: Send + Sync + 'static {
    /// Answers an authenticated request.
    fn answer(
        &self,
        request: StepRequest<'_>,
    ) -> impl Future<Output = Result<Response<Bytes>, OAuthError>> + Send;

    /// Whether public clients (a `client_id` alone) may use the endpoint; true by default.
    /// When false, the pipeline answers them 401 `invalid_client` before the step runs, and
    /// the authorization server metadata leaves `none` out of the endpoint's methods.
    fn accepts_public_clients(&self) -> bool {
        true
    }
}

impl<T: EndpointStep> EndpointStep for Arc<T> {
    forward_to_pointee! {
        fn answer(&self, request: StepRequest<'_>)
            -> impl Future<Output = Result<Response<Bytes>, OAuthError>> + Send;
        fn accepts_public_clients(&self) -> bool;
    }
}

/// The refusal of a public client at an endpoint that does not accept them.
pub(crate) fn public_client_refused() -> OAuthError {
    OAuthError::invalid_client("a public client may not use this endpoint")
}

/// What the pipeline hands its last step.
#[derive(Debug, Clone, Copy)]
pub struct StepRequest<'a> {
    pub(crate) client: &'a AuthenticatedClient,
    pub(crate) params: &'a FormParams,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) remote_addr: Option<RemoteAddr>,
    pub(crate) certificate: Option<&'a crate::client_auth::PresentedCertificate>,
    pub(crate) annotate: bool,
    pub(crate) quiet: bool,
}

impl<'a> StepRequest<'a> {
    /// A request for a step, for tests and hosts that call a step themselves.
    pub fn new(
        client: &'a AuthenticatedClient,
        params: &'a FormParams,
        headers: &'a HeaderMap,
    ) -> Self {
        Self {
            client,
            params,
            headers,
            remote_addr: None,
            certificate: None,
            annotate: false,
            quiet: false,
        }
    }

    /// Whether the host logs every request itself
    /// ([`log_outcomes(false)`](super::EndpointBuilder::log_outcomes)): a step then logs its
    /// per-request outcome at DEBUG rather than INFO.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// The authenticated client.
    pub fn client(&self) -> &'a AuthenticatedClient {
        self.client
    }

    /// The request's parameters (the form body, or a JSON-P `GET`'s query).
    pub fn params(&self) -> &'a FormParams {
        self.params
    }

    /// The request's headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The peer's address, when the host provides it.
    pub fn remote_addr(&self) -> Option<RemoteAddr> {
        self.remote_addr
    }

    /// The client certificate of the connection (mutual TLS; feature `mtls`), when the
    /// endpoint reads certificates: what a certificate-bound token is bound to.
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn client_certificate(&self) -> Option<&'a crate::client_auth::mtls::ClientCertificate> {
        self.certificate
    }

    /// Whether the endpoint annotates responses for request logs
    /// ([`annotate_responses`](super::EndpointBuilder::annotate_responses)): a step may then
    /// put what it did in its response's extensions.
    pub fn annotate(&self) -> bool {
        self.annotate
    }
}

/// An [`EndpointStep`] as a tower service behind the composed layers: it reads the
/// [`FormParams`] and the [`AuthenticatedClient`] that [`FormLayer`](crate::form::FormLayer)
/// and [`ClientAuthLayer`](crate::client_auth::ClientAuthLayer) put in the request's
/// extensions. [`EndpointBuilder::build_layered`](super::EndpointBuilder::build_layered)
/// puts it last.
#[derive(Debug)]
pub struct StepService<T> {
    step: Arc<T>,
}

impl<T> Clone for StepService<T> {
    fn clone(&self) -> Self {
        Self {
            step: self.step.clone(),
        }
    }
}

impl<T> StepService<T> {
    /// The service of `step`.
    pub fn new(step: T) -> Self {
        Self {
            step: Arc::new(step),
        }
    }

    /// The step.
    pub fn step(&self) -> &T {
        &self.step
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<T, B> Service<Request<B>> for StepService<T>
where
    T: EndpointStep,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (parts, _body) = req.into_parts();
        let step = self.step.clone();
        Box::pin(async move {
            let (Some(params), Some(client)) = (
                parts.extensions.get::<FormParams>(),
                parts.extensions.get::<AuthenticatedClient>(),
            ) else {
                tracing::error!("an endpoint step needs FormLayer and ClientAuthLayer in front");
                return Ok(OAuthError::server_error("the endpoint is misconfigured").to_response());
            };
            if client.kind() == ClientKind::Public && !step.accepts_public_clients() {
                return Ok(public_client_refused()
                    .with_www_authenticate(challenge("Basic", DEFAULT_REALM, ""))
                    .to_response());
            }
            let request = StepRequest {
                client,
                params,
                headers: &parts.headers,
                remote_addr: RemoteAddr::from_extensions(&parts.extensions),
                certificate: crate::client_auth::presented_certificate(&parts.extensions),
                // The layers always annotate: `ClientAuth` puts the client in the response.
                annotate: true,
                quiet: false,
            };
            Ok(render(step.answer(request).await))
        })
    }
}

/// A step's answer as a response: its bytes as the body, or the OAuth error.
pub(crate) fn render(answer: Result<Response<Bytes>, OAuthError>) -> Response<Body> {
    match answer {
        Ok(response) => response.map(Body::new),
        Err(err) => err.to_response(),
    }
}
