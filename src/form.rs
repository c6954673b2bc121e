//! The bounded `application/x-www-form-urlencoded` form layer.
//!
//! OAuth endpoints take their parameters as a urlencoded body ([RFC 6749 Appendix B]).
//! [`FormLayer`] reads that body once, bounded, parses it strictly and hands the
//! [`FormParams`] on in the request's extensions, so that every layer behind it (JSONP,
//! client authentication, the revoke service) reads the parameters without parsing again.
//!
//! | request | answer |
//! |---|---|
//! | not `POST` (and not a JSONP `GET`) | 405 with `Allow: POST` |
//! | content type other than `application/x-www-form-urlencoded` | 400 `invalid_request` |
//! | body over the limit (default 8 KiB) | 413 `invalid_request`, the rest unread |
//! | parameter given twice, bad percent-encoding, invalid UTF-8 | 400 `invalid_request` naming it |
//! | body not complete before the host's body timeout | 408 `invalid_request` |
//!
//! Credentials and tokens are never read from the query string of a `POST`. With
//! [`FormLayer::allow_get_with_callback`], a `GET` whose query string carries `callback`
//! (a JSONP request, [RFC 7009 §2.3]) takes its parameters from the query string instead,
//! except `client_secret`, which is always refused there: secrets never travel in URLs.
//!
//! ```
//! use tower_oauth_revoke::form::{FormLayer, FormParams};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use http::{Request, Response};
//! use tower_oauth_revoke::body::Body;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(FormLayer::new().limit(4096))
//!     .service(service_fn(|req: Request<Body>| async move {
//!         let params = req.extensions().get::<FormParams>().unwrap();
//!         let token = params.get("token").unwrap_or_default().to_owned();
//!         Ok::<_, Infallible>(Response::new(Body::from(token)))
//!     }));
//!
//! let request = Request::post("/oauth2/revoke")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Body::from("token=abc%2B1"))
//!     .unwrap();
//! let response = svc.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! [RFC 6749 Appendix B]: https://www.rfc-editor.org/rfc/rfc6749#appendix-B
//! [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3

use std::{
    fmt,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use http::{header, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    body::{self, BoxError, ResponseBody},
    error::OAuthError,
    urlencoded::query_has,
};

pub use crate::future::ResponseFuture;
pub use crate::urlencoded::{form_decode, FormError, FormParams, ParamSource, MAX_PARAMS};

/// The default body limit: 8 KiB.
pub const DEFAULT_LIMIT: usize = 8 * 1024;

/// Why the form step refused a request, before anything else ran. Each rejection knows its
/// status and renders as an OAuth error ([`OAuthError::from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormRejection {
    /// Not `POST` (nor a JSON-P `GET` with `callback`): 405 with `Allow: POST`.
    MethodNotAllowed,
    /// The content type is not `application/x-www-form-urlencoded`: 400.
    UnsupportedContentType,
    /// Two `Content-Type` headers: 400.
    RepeatedContentType,
    /// The body is over the limit, by its `Content-Length` or while read: 413.
    TooLarge,
    /// The body did not arrive before the host's deadline: 408.
    TimedOut,
    /// The body could not be read: 400.
    Unreadable,
    /// `client_secret` in a URL: 400.
    SecretInUrl,
    /// The form itself is invalid: 400.
    Invalid(FormError),
}

impl FormRejection {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            FormRejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            FormRejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FormRejection::TimedOut => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for FormRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormRejection::MethodNotAllowed => {
                f.write_str("the method is not allowed here; use POST")
            }
            FormRejection::UnsupportedContentType => {
                f.write_str("the content type must be application/x-www-form-urlencoded")
            }
            FormRejection::RepeatedContentType => {
                f.write_str("the content-type header must not be repeated")
            }
            FormRejection::TooLarge => f.write_str("the request body is too large"),
            FormRejection::TimedOut => f.write_str("the request body did not arrive in time"),
            FormRejection::Unreadable => f.write_str("the request body could not be read"),
            FormRejection::SecretInUrl => {
                f.write_str("`client_secret` must not be sent in the URL")
            }
            FormRejection::Invalid(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for FormRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FormRejection::Invalid(err) => Some(err),
            _ => None,
        }
    }
}

impl From<FormError> for FormRejection {
    fn from(err: FormError) -> Self {
        FormRejection::Invalid(err)
    }
}

impl From<FormRejection> for OAuthError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::MethodNotAllowed => OAuthError::method_not_allowed("POST"),
            other => OAuthError::invalid_request(other.to_string()).with_status(other.status()),
        }
    }
}

/// Whether a content type is `application/x-www-form-urlencoded`, parameters allowed.
fn is_form_content_type(value: &http::HeaderValue) -> bool {
    if value
        .as_bytes()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// A [`Layer`] that reads and parses the urlencoded body; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct FormLayer {
    limit: usize,
    allow_get_with_callback: bool,
}

impl Default for FormLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl FormLayer {
    /// A form layer with the default 8 KiB limit, `POST` only.
    pub fn new() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            allow_get_with_callback: false,
        }
    }

    setters! {
        /// Sets the body limit in bytes.
        pub fn limit(limit: usize) => limit;

        /// Accepts `GET` when the query string has a `callback` parameter (JSONP), taking the
        /// parameters from the query string. Off by default.
        pub fn allow_get_with_callback(allow: bool) => allow_get_with_callback;
    }
}

impl<S> Layer<S> for FormLayer {
    type Service = Form<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Form {
            inner,
            config: *self,
        }
    }
}

/// The service of [`FormLayer`].
#[derive(Debug, Clone)]
pub struct Form<S> {
    inner: S,
    config: FormLayer,
}

impl<S> Form<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        FormLayer::new().layer(inner)
    }

    /// The layer with the default configuration.
    pub fn layer() -> FormLayer {
        FormLayer::new()
    }

    inner_service_accessors!(S);
}

fn reject<B>(err: OAuthError) -> Response<ResponseBody<B>> {
    err.to_response()
}

/// Where a request's parameters are, once its method and headers are checked.
pub(crate) enum FormPlan {
    /// A JSONP `GET`: the parameters of its query string.
    Query(FormParams),
    /// A `POST`: the body, at most `limit` bytes, is still to be read.
    Body { limit: usize },
}

/// The parameters of a JSON-P `GET`, from its query string, parsed once and strictly: the
/// request must name a `callback` (else it is not a JSON-P request: 405), and must not put
/// a `client_secret` in the URL.
fn jsonp_get_params(query: &str) -> Result<FormParams, FormRejection> {
    let params = match FormParams::parse_query(query) {
        Ok(params) => params,
        // Without a callback it is no JSON-P request, however malformed.
        Err(_) if !query_has(query, "callback") => return Err(FormRejection::MethodNotAllowed),
        Err(err) => return Err(err.into()),
    };
    if !params.contains("callback") {
        return Err(FormRejection::MethodNotAllowed);
    }
    if params.contains("client_secret") {
        return Err(FormRejection::SecretInUrl);
    }
    Ok(params)
}

impl FormLayer {
    /// The checks made before the body is read: method, content type, declared length,
    /// and the whole of a JSONP `GET`.
    pub(crate) fn plan(&self, parts: &http::request::Parts) -> Result<FormPlan, FormRejection> {
        if parts.method == Method::GET && self.allow_get_with_callback {
            let params = jsonp_get_params(parts.uri.query().unwrap_or(""))?;
            return Ok(FormPlan::Query(params));
        }
        if parts.method != Method::POST {
            return Err(FormRejection::MethodNotAllowed);
        }
        let mut content_types = parts.headers.get_all(header::CONTENT_TYPE).iter();
        match (content_types.next(), content_types.next()) {
            (Some(_), Some(_)) => return Err(FormRejection::RepeatedContentType),
            (Some(ct), None) if is_form_content_type(ct) => {}
            _ => return Err(FormRejection::UnsupportedContentType),
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limit as u64) {
            return Err(FormRejection::TooLarge);
        }
        Ok(FormPlan::Body { limit: self.limit })
    }
}

/// Reads a body of at most `limit` bytes and parses it: the bytes and their parameters.
pub(crate) async fn read_form<B>(
    body: B,
    limit: usize,
) -> Result<(Bytes, FormParams), FormRejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let bytes = read_limited(body, limit).await.map_err(body_error)?;
    let params = FormParams::parse(&bytes)?;
    Ok((bytes, params))
}

/// Reads a body of at most `limit` bytes (any content): [`FormRejection::TooLarge`],
/// [`TimedOut`](FormRejection::TimedOut) or [`Unreadable`](FormRejection::Unreadable) when
/// it cannot.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, FormRejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    read_limited(body, limit).await.map_err(body_error)
}

fn body_error(err: BoxError) -> FormRejection {
    if err.downcast_ref::<LengthLimitError>().is_some() {
        return FormRejection::TooLarge;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() || e.is::<crate::deadline::BodyTimedOut>() {
            return FormRejection::TimedOut;
        }
        source = e.source();
    }
    FormRejection::Unreadable
}

/// Reads a whole body, at most `limit` bytes. A body of one data frame (the usual case) is
/// kept as it is, without a copy or a buffer list; several frames are joined.
async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue; // trailers
        };
        // No copy when the frame is already `Bytes`.
        let data = data.copy_to_bytes(data.remaining());
        if data.is_empty() {
            continue;
        }
        if joined.is_empty() {
            match single.take() {
                None => {
                    single = Some(data);
                    continue;
                }
                Some(first) => joined.extend_from_slice(&first),
            }
        }
        joined.extend_from_slice(&data);
    }
    Ok(single.unwrap_or_else(|| joined.freeze()))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Form<S>
where
    S: Service<Request<body::Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    forward_ready!();

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        match self.config.plan(&parts) {
            Err(err) => ResponseFuture::ready(reject(err.into())),
            Ok(FormPlan::Query(params)) => {
                parts.extensions.insert(params);
                let req = Request::from_parts(parts, body::Body::empty());
                ResponseFuture::inner(self.inner.call(req))
            }
            Ok(FormPlan::Body { limit }) => {
                let mut inner = crate::future::take_ready(&mut self.inner);
                ResponseFuture::steps(async move {
                    let (bytes, params) = match read_form(body, limit).await {
                        Ok(read) => read,
                        Err(err) => return Ok(reject(err.into())),
                    };
                    parts.extensions.insert(params);
                    let response = inner
                        .call(Request::from_parts(parts, body::Body::new(bytes)))
                        .await?;
                    Ok(response.map(ResponseBody::new))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{convert::Infallible, future::Future};
    use tower::{service_fn, ServiceExt};

    fn echo() -> Form<
        impl Service<
                Request<body::Body>,
                Response = Response<body::Body>,
                Error = Infallible,
                Future = impl Future + Send,
            > + Clone,
    > {
        Form::new(service_fn(|req: Request<body::Body>| async move {
            let params = req.extensions().get::<FormParams>().unwrap();
            let out: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
            Ok::<_, Infallible>(Response::new(body::Body::new(Bytes::from(out.join(";")))))
        }))
    }

    async fn send(
        svc: impl Service<
            Request<body::Body>,
            Response = Response<ResponseBody<body::Body>>,
            Error = Infallible,
        >,
        req: Request<body::Body>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let resp = svc.oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn post(ct: &str, body: &'static str) -> Request<body::Body> {
        Request::post("/x")
            .header("content-type", ct)
            .body(body::Body::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn post_form_is_parsed() {
        let (status, _, body) = send(
            echo(),
            post(
                "application/x-www-form-urlencoded;charset=UTF-8",
                "token=a%2Bb",
            ),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, "token=a+b");
    }

    #[tokio::test]
    async fn wrong_method_is_405_with_allow() {
        let req = Request::get("/x?token=a")
            .body(body::Body::empty())
            .unwrap();
        let (status, headers, body) = send(echo(), req).await;
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "POST");
        assert!(body.contains("invalid_request"));
    }

    #[tokio::test]
    async fn wrong_content_type_is_400() {
        let (status, _, body) = send(echo(), post("application/json", "{}")).await;
        assert_eq!(status, 400);
        assert!(body.contains("invalid_request"));
        let req = Request::post("/x")
            .body(body::Body::from("token=a"))
            .unwrap();
        assert_eq!(send(echo(), req).await.0, 400);
    }

    #[tokio::test]
    async fn duplicate_is_400_naming_it() {
        let (status, headers, body) = send(
            echo(),
            post("application/x-www-form-urlencoded", "token=a&token=b"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(headers["cache-control"], "no-store");
        assert!(body.contains("`token`"), "{body}");
    }

    #[tokio::test]
    async fn too_large_is_413() {
        let big: &'static str = Box::leak("a".repeat(DEFAULT_LIMIT + 1).into_boxed_str());
        let (status, _, _) = send(echo(), post("application/x-www-form-urlencoded", big)).await;
        assert_eq!(status, 413);
        let svc = FormLayer::new().limit(4).layer(echo().into_inner());
        let (status, _, _) = send(svc, post("application/x-www-form-urlencoded", "a=123")).await;
        assert_eq!(status, 413);
    }

    fn chunked(chunks: &[&'static [u8]]) -> Request<impl Body<Data = Bytes, Error = Infallible>> {
        let frames: Vec<Result<http_body::Frame<Bytes>, Infallible>> = chunks
            .iter()
            .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c))))
            .collect();
        Request::post("/x")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::StreamBody::new(futures_util::stream::iter(
                frames,
            )))
            .unwrap()
    }

    #[tokio::test]
    async fn frames_are_joined_and_bounded_together() {
        let req = chunked(&[b"tok", b"", b"en=a%2", b"Bb"]);
        let resp = echo().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"token=a+b");

        let svc = FormLayer::new().limit(8).layer(echo().into_inner());
        let resp = svc.oneshot(chunked(&[b"token", b"=abcd"])).await.unwrap();
        assert_eq!(resp.status(), 413);
    }

    #[tokio::test]
    async fn post_never_reads_query() {
        let req = Request::post("/x?token=q")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body::Body::from("a=1"))
            .unwrap();
        assert_eq!(send(echo(), req).await.2, "a=1");
    }

    #[tokio::test]
    async fn get_with_callback_reads_query() {
        let svc = FormLayer::new()
            .allow_get_with_callback(true)
            .layer(echo().into_inner());
        let req = Request::get("/x?token=a&callback=cb")
            .body(body::Body::empty())
            .unwrap();
        let (status, _, body) = send(svc.clone(), req).await;
        assert_eq!(status, 200);
        assert_eq!(body, "token=a;callback=cb");
        let req = Request::get("/x?token=a")
            .body(body::Body::empty())
            .unwrap();
        assert_eq!(send(svc.clone(), req).await.0, 405);
        let req = Request::get("/x?callback=cb&client_id=a&client_secret=b")
            .body(body::Body::empty())
            .unwrap();
        let (status, _, body) = send(svc, req).await;
        assert_eq!(status, 400);
        assert!(body.contains("client_secret"));
    }
}
