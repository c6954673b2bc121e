//! The response future shared by this crate's wrapping services.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// The response future of the crate's wrapping services (form, client authentication,
    /// origin check, bearer guard), in the shape of tower-http's: an early answer; the inner
    /// service's future `F`, polled in place with nothing boxed; or, for a step that must
    /// await before it calls the inner service (a body read, a registry or store look-up),
    /// one boxed state machine that owns the inner service.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Ready { response: Option<Response<ResponseBody<B>>> },
        Inner { #[pin] future: F },
        Steps { future: BoxFuture<Result<Response<ResponseBody<B>>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn steps<G>(future: G) -> Self
    where
        G: Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static,
    {
        Self {
            state: State::Steps {
                future: Box::pin(future),
            },
        }
    }
}

opaque_debug!(ResponseFuture<F, B, E>);

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            StateProj::Inner { future } => future
                .poll(cx)
                .map(|r| r.map(|resp| resp.map(ResponseBody::new))),
            StateProj::Steps { future } => future.as_mut().poll(cx),
        }
    }
}

/// The ready inner service, for a future that calls it after awaiting something else: the
/// future owns the service that `poll_ready` readied, and a fresh clone stays behind for the
/// next request.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
