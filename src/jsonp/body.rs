//! The streaming JSONP response body.

use std::{
    fmt,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::Callback;
use crate::body::{self, BoxError, ResponseBody};

/// The bytes after the callback name's wrapped body: `);`.
const SUFFIX: &[u8] = b");";

pin_project! {
    /// The response body of [`Jsonp`](super::Jsonp): the inner body wrapped frame by frame
    /// as `/**/callback(...);`, or a [`ResponseBody`] (the inner body unchanged, or an
    /// error of the layer's own).
    ///
    /// Wrapping never buffers the body: each inner data frame becomes one output frame, with
    /// U+2028 and U+2029 (valid in JSON strings, line terminators in older JavaScript)
    /// escaped as `\u2028` and `\u2029`, also when their three UTF-8 bytes are split across
    /// frames. [`size_hint`](Body::size_hint) is exact once the inner body's remaining
    /// length is exactly known to be zero (an empty body, such as an RFC 7009 success), and
    /// a correct range otherwise.
    pub struct JsonpBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Plain { #[pin] body: ResponseBody<B> },
        // Boxed: the usual, unwrapped body stays small to move.
        Wrapped { #[pin] body: B, state: Box<Wrap> },
    }
}

struct Wrap {
    /// `/**/callback(`, until sent.
    prefix: Option<Bytes>,
    /// The first one or two bytes of a possible U+2028/U+2029 at the end of the last frame.
    carry: [u8; 2],
    carry_len: usize,
    inner_done: bool,
    finished: bool,
    trailers: Option<HeaderMap>,
}

impl<B> fmt::Debug for JsonpBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Plain { .. } => "Plain",
            Kind::Wrapped { .. } => "Wrapped",
        };
        f.debug_struct("JsonpBody").field("kind", &kind).finish()
    }
}

impl<B> JsonpBody<B> {
    /// The inner body, unchanged.
    pub fn plain(body: B) -> Self {
        Self::from(ResponseBody::new(body))
    }

    /// The inner body wrapped as `/**/callback(<body>);`.
    pub fn wrapped(body: B, callback: &Callback) -> Self {
        let name = callback.as_str();
        let mut prefix = BytesMut::with_capacity(name.len() + 5);
        prefix.put_slice(b"/**/");
        prefix.put_slice(name.as_bytes());
        prefix.put_u8(b'(');
        Self {
            kind: Kind::Wrapped {
                body,
                state: Box::new(Wrap {
                    prefix: Some(prefix.freeze()),
                    carry: [0; 2],
                    carry_len: 0,
                    inner_done: false,
                    finished: false,
                    trailers: None,
                }),
            },
        }
    }
}

impl<B> Default for JsonpBody<B> {
    fn default() -> Self {
        Self::from(body::Body::empty())
    }
}

impl<B> From<ResponseBody<B>> for JsonpBody<B> {
    fn from(body: ResponseBody<B>) -> Self {
        Self {
            kind: Kind::Plain { body },
        }
    }
}

impl<B> From<body::Body> for JsonpBody<B> {
    fn from(body: body::Body) -> Self {
        Self::from(ResponseBody::from(body))
    }
}

impl<B> From<Bytes> for JsonpBody<B> {
    fn from(bytes: Bytes) -> Self {
        Self::from(body::Body::new(bytes))
    }
}

/// Escapes U+2028 and U+2029 in `carry ++ data`. An incomplete sequence at the end goes
/// back into `carry`.
fn escape(state: &mut Wrap, data: Bytes) -> Bytes {
    if state.carry_len == 0 && !data.contains(&0xE2) {
        return data;
    }
    let mut input = Vec::with_capacity(state.carry_len + data.len());
    input.extend_from_slice(&state.carry[..state.carry_len]);
    input.extend_from_slice(&data);
    state.carry_len = 0;
    let mut out = BytesMut::with_capacity(input.len() + 8);
    let mut i = 0;
    while i < input.len() {
        let Some(at) = input[i..].iter().position(|&b| b == 0xE2) else {
            out.put_slice(&input[i..]);
            break;
        };
        out.put_slice(&input[i..i + at]);
        i += at;
        let rest = &input[i..];
        match rest {
            [0xE2, 0x80, 0xA8, ..] => {
                out.put_slice(b"\\u2028");
                i += 3;
            }
            [0xE2, 0x80, 0xA9, ..] => {
                out.put_slice(b"\\u2029");
                i += 3;
            }
            [0xE2] | [0xE2, 0x80] => {
                state.carry[..rest.len()].copy_from_slice(rest);
                state.carry_len = rest.len();
                break;
            }
            _ => {
                out.put_u8(0xE2);
                i += 1;
            }
        }
    }
    out.freeze()
}

impl<B> Body for JsonpBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Plain { body } => body.poll_frame(cx),
            KindProj::Wrapped { mut body, state } => loop {
                if let Some(prefix) = state.prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                if state.finished {
                    return Poll::Ready(state.trailers.take().map(|t| Ok(Frame::trailers(t))));
                }
                if state.inner_done {
                    let mut suffix = BytesMut::with_capacity(state.carry_len + SUFFIX.len());
                    suffix.put_slice(&state.carry[..state.carry_len]);
                    suffix.put_slice(SUFFIX);
                    state.carry_len = 0;
                    state.finished = true;
                    return Poll::Ready(Some(Ok(Frame::data(suffix.freeze()))));
                }
                match ready!(body.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            let out = escape(state, data);
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out))));
                            }
                        }
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                state.trailers = Some(trailers);
                                state.inner_done = true;
                            }
                        }
                    },
                    Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
                    None => state.inner_done = true,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Plain { body } => body.is_end_stream(),
            Kind::Wrapped { state, .. } => state.finished && state.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Plain { body } => body.size_hint(),
            Kind::Wrapped { body, state } => {
                if state.finished {
                    return SizeHint::with_exact(0);
                }
                let fixed =
                    state.prefix.as_ref().map_or(0, Bytes::len) as u64 + SUFFIX.len() as u64;
                let carry = state.carry_len as u64;
                let inner = if state.inner_done {
                    SizeHint::with_exact(0)
                } else {
                    body.size_hint()
                };
                if inner.exact() == Some(0) {
                    return SizeHint::with_exact(fixed + carry);
                }
                // Escaping turns 3 bytes into 6: the output is at most twice the input.
                let mut hint = SizeHint::new();
                hint.set_lower(fixed + carry + inner.lower());
                if let Some(upper) = inner.upper() {
                    hint.set_upper(fixed + 2 * (carry + upper));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;

    fn cb() -> Callback {
        Callback::parse("cb").unwrap()
    }

    fn frames(
        parts: Vec<&'static [u8]>,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
        StreamBody::new(futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok(Frame::data(Bytes::from_static(p)))),
        ))
    }

    async fn collect_frames<B>(body: B) -> Vec<Bytes>
    where
        B: Body<Data = Bytes>,
        B::Error: fmt::Debug,
    {
        let mut body = std::pin::pin!(body);
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                out.push(data);
            }
        }
        out
    }

    #[tokio::test]
    async fn empty_body_is_the_success_form_with_exact_hint() {
        let body = JsonpBody::wrapped(Full::<Bytes>::default(), &cb());
        assert_eq!(body.size_hint().exact(), Some(9));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"/**/cb();");
    }

    #[tokio::test]
    async fn wraps_frame_by_frame_without_buffering() {
        let body = JsonpBody::wrapped(frames(vec![b"{\"a\":", b"1}"]), &cb());
        let out = collect_frames(body).await;
        assert_eq!(
            out,
            vec![
                Bytes::from_static(b"/**/cb("),
                Bytes::from_static(b"{\"a\":"),
                Bytes::from_static(b"1}"),
                Bytes::from_static(b");"),
            ]
        );
    }

    #[tokio::test]
    async fn escapes_line_separators_even_when_split() {
        let whole = "{\"a\":\"x\u{2028}y\u{2029}z\u{20ac}\"}".as_bytes();
        // Every way of splitting the body in two and in three gives the same output.
        for i in 0..=whole.len() {
            for j in i..=whole.len() {
                let parts: Vec<&'static [u8]> = vec![
                    Box::leak(whole[..i].to_vec().into_boxed_slice()),
                    Box::leak(whole[i..j].to_vec().into_boxed_slice()),
                    Box::leak(whole[j..].to_vec().into_boxed_slice()),
                ];
                let body = JsonpBody::wrapped(frames(parts), &cb());
                let bytes = body.collect().await.unwrap().to_bytes();
                assert_eq!(
                    std::str::from_utf8(&bytes).unwrap(),
                    "/**/cb({\"a\":\"x\\u2028y\\u2029z\u{20ac}\"});",
                    "split at {i}, {j}"
                );
            }
        }
    }

    #[tokio::test]
    async fn incomplete_sequence_at_the_end_is_flushed() {
        let body = JsonpBody::wrapped(frames(vec![b"\"a\xE2\x80"]), &cb());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"/**/cb(\"a\xE2\x80);");
    }

    #[test]
    fn size_hint_is_a_correct_range() {
        let body = JsonpBody::wrapped(Full::new(Bytes::from_static(b"{}")), &cb());
        let hint = body.size_hint();
        assert_eq!(hint.lower(), 11);
        assert_eq!(hint.upper(), Some(13));
        let plain = JsonpBody::plain(Full::new(Bytes::from_static(b"abc")));
        assert_eq!(plain.size_hint().exact(), Some(3));
    }

    #[tokio::test]
    async fn size_hint_is_exact_after_the_inner_body_ends() {
        let mut body = std::pin::pin!(JsonpBody::wrapped(
            Full::new(Bytes::from_static(b"{}")),
            &cb()
        ));
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(!body.is_end_stream());
        body.frame().await.unwrap().unwrap();
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }
}
