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
    /// The response future of the form, JSONP-free wrapping and client authentication
    /// services: an early answer, the inner service's future, or an asynchronous step (a
    /// body read, a registry look-up) followed by the inner call.
    pub struct ResponseFuture<B, E> {
        #[pin]
        state: State<B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B, E> {
        Ready { response: Option<Response<ResponseBody<B>>> },
        Inner { future: BoxFuture<Result<Response<B>, E>> },
        Steps { future: BoxFuture<Result<Response<ResponseBody<B>>, E>> },
    }
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner<F>(future: F) -> Self
    where
        F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    {
        Self {
            state: State::Inner {
                future: Box::pin(future),
            },
        }
    }

    pub(crate) fn steps<F>(future: F) -> Self
    where
        F: Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static,
    {
        Self {
            state: State::Steps {
                future: Box::pin(future),
            },
        }
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            StateProj::Inner { future } => future
                .as_mut()
                .poll(cx)
                .map(|r| r.map(|resp| resp.map(ResponseBody::new))),
            StateProj::Steps { future } => future.as_mut().poll(cx),
        }
    }
}
