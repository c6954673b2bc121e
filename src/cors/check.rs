//! The origin check after client authentication.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::CorsPolicy;
use crate::{
    body::ResponseBody,
    error::{refuse_repeated, OAuthError},
    escape::Escaped,
    future::ResponseFuture,
    origin::Origin,
    registry::{AuthenticatedClient, ClientRegistry},
};

/// A [`Layer`] that refuses a request whose `Origin` is allowed neither by the
/// [`CorsPolicy`] nor for the [`AuthenticatedClient`]; place it after client
/// authentication. See the [module docs](crate::cors).
#[derive(Debug, Clone)]
#[must_use]
pub struct OriginCheckLayer {
    pub(super) origins: Arc<[Origin]>,
}

impl<S> Layer<S> for OriginCheckLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginCheck {
            inner,
            origins: self.origins.clone(),
        }
    }
}

/// The service of [`OriginCheckLayer`].
#[derive(Debug, Clone)]
pub struct OriginCheck<S> {
    inner: S,
    origins: Arc<[Origin]>,
}

impl<S> OriginCheck<S> {
    /// The layer for `policy`.
    pub fn layer(policy: &CorsPolicy) -> OriginCheckLayer {
        policy.origin_check()
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginCheck<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    forward_ready!();

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let client = req.extensions().get::<AuthenticatedClient>();
        if let Err(err) = check_origin(&self.origins, req.headers(), client) {
            return ResponseFuture::ready(err.to_response());
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}

/// Refuses a request whose `Origin` is allowed neither in `origins` nor for `client`.
pub(crate) fn check_origin(
    origins: &[Origin],
    headers: &http::HeaderMap,
    client: Option<&AuthenticatedClient>,
) -> Result<(), OAuthError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin.as_bytes() != b"null"
        && (origins.iter().any(|o| o.matches(origin))
            || client.is_some_and(|c| c.client().allows_origin(origin)));
    if allowed {
        return Ok(());
    }
    tracing::info!(
        client_id = %Escaped(client.map_or("-", |c| c.id())),
        outcome = "invalid_request",
        "request from an origin not allowed for the client"
    );
    Err(OAuthError::invalid_request(
        "the request's origin is not allowed for this client",
    ))
}

/// Refuses a request that repeats `Origin`, or whose `Origin` nothing allows (neither
/// `origins` nor any client of the registry), before its credentials are looked at.
pub(crate) async fn known_origin<R: ClientRegistry>(
    registry: &R,
    origins: &[Origin],
    headers: &HeaderMap,
) -> Result<(), OAuthError> {
    refuse_repeated(headers, &header::ORIGIN)?;
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if origins.iter().any(|o| o.matches(origin)) {
        return Ok(());
    }
    // `null` and anything else that is not an origin never reach the registry.
    let well_formed = Origin::is_well_formed(origin);
    let registered = well_formed
        && registry.origin_registered(origin).await.map_err(|err| {
            tracing::error!(error = %err, "client registry unavailable");
            OAuthError::temporarily_unavailable(
                "the client registry is unavailable; try again later",
                1,
            )
        })?;
    if registered {
        return Ok(());
    }
    tracing::info!(
        outcome = "invalid_request",
        "request from an origin no client may use"
    );
    Err(OAuthError::invalid_request(
        "the request's origin is not allowed",
    ))
}
