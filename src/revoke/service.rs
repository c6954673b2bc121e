//! The revocation step as a tower service, last behind the composed layers.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;

use super::{RevocationPolicy, Revoker};
use crate::{body::Body, endpoint::StepService, store::TokenStore};

/// The RFC 7009 revocation service, last behind the composed layers; see the
/// [module docs](crate::revoke). It is the [`Revoker`] step as a service.
#[derive(Debug, Clone)]
pub struct RevokeService<S> {
    inner: StepService<Revoker<S>>,
}

impl<S> RevokeService<S> {
    /// Revokes in `store` with the default policy.
    pub fn new(store: S) -> Self {
        Self {
            inner: StepService::new(Revoker::new(store)),
        }
    }

    /// Sets the policy.
    #[must_use]
    pub fn policy(self, policy: RevocationPolicy) -> Self
    where
        S: Clone,
    {
        let step = self.inner.step().clone().policy(policy);
        Self {
            inner: StepService::new(step),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.inner.step().store()
    }
}

impl<S, B> Service<Request<B>> for RevokeService<S>
where
    S: TokenStore,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture::new(self.inner.call(req))
    }
}

opaque_future! {
    /// The response future of [`RevokeService`].
    pub struct ResponseFuture(BoxFuture<Result<Response<Body>, Infallible>>);
}
