//! The response body and future of an [`Endpoint`](super::Endpoint).

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::Response;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::{
    body::{Body, BoxError},
    jsonp::JsonpBody,
};

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the pipeline's one future yields.
pub(super) type PipelineResponse = Response<JsonpBody<Body>>;

pin_project! {
    /// The response body of an [`Endpoint`](super::Endpoint); empty by default.
    #[derive(Default)]
    pub struct EndpointBody {
        #[pin]
        inner: JsonpBody<Body>,
    }
}

impl fmt::Debug for EndpointBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBody").finish_non_exhaustive()
    }
}

impl http_body::Body for EndpointBody {
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

/// The response future of an [`Endpoint`](super::Endpoint).
pub struct EndpointFuture {
    pub(super) inner: BoxFuture<Result<PipelineResponse, Infallible>>,
}

impl fmt::Debug for EndpointFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointFuture").finish_non_exhaustive()
    }
}

impl Future for EndpointFuture {
    type Output = Result<Response<EndpointBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner
            .as_mut()
            .poll(cx)
            .map(|r| r.map(|response| response.map(|inner| EndpointBody { inner })))
    }
}
