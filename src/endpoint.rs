//! The composed revocation endpoint and its builder.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    body::{BoxError, ResponseBody},
    client_auth::{AuthFailureLimiter, ClientAuth, ClientAuthLayer, ClientRegistry},
    form::{Form, FormLayer, DEFAULT_LIMIT},
    revoke::{RevocationPolicy, RevokeService},
    store::TokenStore,
};

type Stack<R, S> = Form<ClientAuth<RevokeService<S>, R>>;
type StackBody = ResponseBody<ResponseBody<Full<Bytes>>>;

/// The RFC 7009 revocation endpoint: form, client authentication and revocation composed
/// into one `Clone + Send + Sync` service with `Error = Infallible`, ready for
/// `axum::Router::route_service` or hyper-util's `TowerToHyperService`.
///
/// Build it with [`RevocationEndpoint::builder`].
pub struct RevocationEndpoint<R, S> {
    inner: Stack<R, S>,
}

impl<R: Clone, S: Clone> Clone for RevocationEndpoint<R, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R, S> fmt::Debug for RevocationEndpoint<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpoint").finish_non_exhaustive()
    }
}

impl RevocationEndpoint<(), ()> {
    /// A builder: set [`clients`](RevocationEndpointBuilder::clients) and
    /// [`store`](RevocationEndpointBuilder::store), then [`build`](RevocationEndpointBuilder::build).
    pub fn builder() -> RevocationEndpointBuilder<(), ()> {
        RevocationEndpointBuilder {
            clients: (),
            store: (),
            body_limit: DEFAULT_LIMIT,
            realm: "oauth".to_owned(),
            policy: RevocationPolicy::default(),
            limiter: None,
        }
    }
}

/// Builds a [`RevocationEndpoint`].
#[must_use]
pub struct RevocationEndpointBuilder<R, S> {
    clients: R,
    store: S,
    body_limit: usize,
    realm: String,
    policy: RevocationPolicy,
    limiter: Option<AuthFailureLimiter>,
}

impl<R, S> fmt::Debug for RevocationEndpointBuilder<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpointBuilder")
            .field("body_limit", &self.body_limit)
            .field("realm", &self.realm)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A configuration the builder cannot build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    message: String,
}

impl BuildError {
    #[allow(dead_code)]
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

impl<R, S> RevocationEndpointBuilder<R, S> {
    /// The client registry that authenticates clients.
    pub fn clients<R2: ClientRegistry>(self, clients: R2) -> RevocationEndpointBuilder<R2, S> {
        RevocationEndpointBuilder {
            clients,
            store: self.store,
            body_limit: self.body_limit,
            realm: self.realm,
            policy: self.policy,
            limiter: self.limiter,
        }
    }

    /// The token store that revokes.
    pub fn store<S2: TokenStore>(self, store: S2) -> RevocationEndpointBuilder<R, S2> {
        RevocationEndpointBuilder {
            clients: self.clients,
            store,
            body_limit: self.body_limit,
            realm: self.realm,
            policy: self.policy,
            limiter: self.limiter,
        }
    }

    /// The body limit in bytes (default 8 KiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The realm of `WWW-Authenticate: Basic realm="..."` (default `oauth`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The revocation policy.
    pub fn policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Limits failed client authentications per client id and remote address.
    pub fn limit_failures(mut self, limiter: AuthFailureLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
}

impl<R: ClientRegistry, S: TokenStore> RevocationEndpointBuilder<R, S> {
    /// Builds the endpoint.
    pub fn build(self) -> Result<RevocationEndpoint<R, S>, BuildError> {
        let mut auth = ClientAuthLayer::new(self.clients).realm(&self.realm);
        if let Some(limiter) = self.limiter {
            auth = auth.limit_failures(limiter);
        }
        let revoke = RevokeService::new(self.store).policy(self.policy);
        let inner = FormLayer::new()
            .limit(self.body_limit)
            .layer(auth.layer(revoke));
        Ok(RevocationEndpoint { inner })
    }
}

pin_project! {
    /// The response body of [`RevocationEndpoint`].
    pub struct EndpointBody {
        #[pin]
        inner: StackBody,
    }
}

impl fmt::Debug for EndpointBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBody").finish_non_exhaustive()
    }
}

impl Default for EndpointBody {
    fn default() -> Self {
        Self {
            inner: ResponseBody::empty(),
        }
    }
}

impl Body for EndpointBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// The response future of [`RevocationEndpoint`].
    pub struct EndpointFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> fmt::Debug for EndpointFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointFuture").finish_non_exhaustive()
    }
}

impl<F> Future for EndpointFuture<F>
where
    F: Future<Output = Result<Response<StackBody>, Infallible>>,
{
    type Output = Result<Response<EndpointBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|r| r.map(|resp| resp.map(|inner| EndpointBody { inner })))
    }
}

impl<R, S, B> Service<Request<B>> for RevocationEndpoint<R, S>
where
    R: ClientRegistry,
    S: TokenStore,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EndpointBody>;
    type Error = Infallible;
    type Future = EndpointFuture<<Stack<R, S> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        EndpointFuture {
            inner: self.inner.call(req),
        }
    }
}
