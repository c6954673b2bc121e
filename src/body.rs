//! The response bodies of this crate's services and layers.
//!
//! [`Body`] is the crate's own complete, in-memory body: what its services answer (the
//! revoke service, the metadata document, an endpoint step) and what [`FormLayer`] hands
//! its inner service once it has read the form.
//!
//! A layer that may answer early (a rejected client, a malformed form) must still return the
//! inner service's body type on the normal path. [`ResponseBody`] is either the inner body or
//! a [`Body`] of this crate's own: no boxing, no allocation beyond the bytes.
//!
//! [`FormLayer`]: crate::form::FormLayer

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

/// The error type of bodies that may carry any inner error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A complete body held in memory: one data frame of [`Bytes`], or none when empty.
///
/// Its [`size_hint`](http_body::Body::size_hint) is exact and it never fails
/// (`Error = Infallible`). It is what this crate's services answer with, and what
/// [`FormLayer`](crate::form::FormLayer) gives its inner service as the request body.
///
/// ```
/// use bytes::Bytes;
/// use http_body::Body as _;
/// use http_body_util::BodyExt;
/// use tower_oauth_revoke::body::Body;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let body = Body::from("token=abc");
/// assert_eq!(body.size_hint().exact(), Some(9));
/// assert!(!body.is_end_stream());
/// assert_eq!(body.collect().await.unwrap().to_bytes(), Bytes::from_static(b"token=abc"));
///
/// let empty = Body::default();
/// assert!(empty.is_end_stream());
/// assert_eq!(empty.size_hint().exact(), Some(0));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// The bytes not yet polled; `None` once polled, or when there were none.
    data: Option<Bytes>,
}

impl Body {
    /// A body of `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            data: (!bytes.is_empty()).then_some(bytes),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::default()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::new(bytes)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::new(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::new(Bytes::from_static(bytes))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::new(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(Bytes::from(bytes))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, Bytes::len) as u64)
    }
}

pin_project! {
    /// Either the inner service's body, or a [`Body`] this crate wrote (an OAuth error, an
    /// empty success).
    ///
    /// It is [`Default`] (empty) for any inner body, so `tower_http::cors` can answer
    /// preflights with it.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Own { body: Body },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from(Body::empty())
    }
}

impl<B> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<B> From<Body> for ResponseBody<B> {
    fn from(body: Body) -> Self {
        Self {
            kind: Kind::Own { body },
        }
    }
}

impl<B> From<Bytes> for ResponseBody<B> {
    fn from(bytes: Bytes) -> Self {
        Self::from(Body::new(bytes))
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Own { body } => Pin::new(body).poll_frame(cx).map_err(|e| match e {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn one_frame_then_the_end() {
        let mut body = std::pin::pin!(Body::from(String::from("abc")));
        assert_eq!(body.size_hint().exact(), Some(3));
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"abc"));
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn empty_bytes_are_an_empty_body() {
        for body in [
            Body::new(Bytes::new()),
            Body::from(Vec::new()),
            Body::from(""),
        ] {
            assert!(body.is_end_stream());
            assert_eq!(body.size_hint().exact(), Some(0));
            assert!(body.collect().await.unwrap().to_bytes().is_empty());
        }
    }
}
