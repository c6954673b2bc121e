//! A deadline on request bodies that costs no timer when the body is already there.
//!
//! `tower_http::timeout::RequestBodyDeadlineLayer` arms a timer for every request. Most
//! OAuth requests arrive whole with their headers, and their body is read at once: a timer
//! armed and dropped per request is pure cost. [`BodyDeadlineLayer`] reads the clock when
//! the request comes in, and arms a timer only if the body is not ready when it is read; a
//! body that has not fully arrived by the deadline ends with [`BodyTimedOut`], which the
//! form step answers 408.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth_revoke::{
//!     client_auth::{Client, MemoryClientRegistry},
//!     deadline::BodyDeadlineLayer,
//!     store::MemoryStore,
//!     RevocationEndpoint,
//! };
//!
//! let clients = MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]);
//! let revoke = RevocationEndpoint::builder(clients, MemoryStore::new()).build().unwrap();
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/oauth2/revoke", revoke)
//!     .layer(BodyDeadlineLayer::new(Duration::from_secs(10)));
//! # let _ = app;
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::Request;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::BoxError;

/// The request body did not fully arrive before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimedOut;

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A [`Layer`] that bounds how long a request's body may take to arrive; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadlineLayer {
    timeout: Duration,
}

impl BodyDeadlineLayer {
    /// Bodies must have fully arrived `timeout` after their request came in.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

copy_layer!(BodyDeadlineLayer => BodyDeadline { timeout });

/// The service of [`BodyDeadlineLayer`].
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S> BodyDeadline<S> {
    inner_service_accessors!(S);
}

impl<S, B> Service<Request<B>> for BodyDeadline<S>
where
    S: Service<Request<DeadlineBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    forward_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let deadline = Instant::now() + self.timeout;
        self.inner.call(req.map(|inner| DeadlineBody {
            inner,
            deadline,
            timer: None,
        }))
    }
}

pin_project! {
    /// A request body with a deadline: the timer is armed only once the body is found not
    /// ready.
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        deadline: Instant,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

debug_fields!(DeadlineBody<B> { deadline });

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = *this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_times_out_and_a_ready_one_needs_no_timer() {
        let mut ready = DeadlineBody {
            inner: Full::new(Bytes::from_static(b"token=t")),
            deadline: Instant::now() + Duration::from_secs(1),
            timer: None,
        };
        let frame = ready.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "token=t");
        assert!(ready.timer.is_none(), "no timer for a body that was ready");

        let stalled = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let mut stalled = DeadlineBody {
            inner: stalled,
            deadline: Instant::now() + Duration::from_secs(1),
            timer: None,
        };
        let err = stalled.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyTimedOut>());
    }
}
