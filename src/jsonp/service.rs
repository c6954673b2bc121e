use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Callback, JsonpBody, JsonpLayer, X_ORIGINAL_STATUS};
use crate::{
    error::OAuthError,
    urlencoded::{form_decode, FormParams, ParamSource},
};

/// The service of [`JsonpLayer`].
#[derive(Debug, Clone)]
pub struct Jsonp<S> {
    pub(super) inner: S,
    pub(super) enabled: bool,
}

impl<S> Jsonp<S> {
    /// Wraps `inner` with JSONP on.
    pub fn new(inner: S) -> Self {
        JsonpLayer::new().layer(inner)
    }

    /// The layer, JSONP on.
    pub fn layer() -> JsonpLayer {
        JsonpLayer::new()
    }

    inner_service_accessors!(S);
}

/// Finds a request's `callback` in its query string and its parsed form: `Ok(None)`
/// without one, an error when it is given more than once or is not a valid name.
pub(crate) fn find_callback(
    query: Option<&str>,
    params: Option<&FormParams>,
) -> Result<Option<Callback>, OAuthError> {
    let result = scan_callback(query, params);
    if let Err(err) = &result {
        tracing::debug!(outcome = "invalid_request", reason = %err.description(), "JSONP callback refused");
    }
    result
}

fn scan_callback(
    query: Option<&str>,
    params: Option<&FormParams>,
) -> Result<Option<Callback>, OAuthError> {
    // A JSON-P `GET`'s query is already parsed, strictly (no repeated name).
    if let Some(params) = params.filter(|p| p.source() == ParamSource::Query) {
        return match params.get("callback") {
            None => Ok(None),
            Some(name) => Callback::parse(name)
                .map(Some)
                .map_err(|err| OAuthError::invalid_request(err.to_string())),
        };
    }
    let mut found: Option<std::borrow::Cow<'_, str>> = None;
    let mut count = 0usize;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(name.as_bytes()).as_deref() != Some("callback") {
            continue;
        }
        count += 1;
        found = Some(form_decode(value.as_bytes()).ok_or_else(|| {
            OAuthError::invalid_request("the `callback` parameter is not valid urlencoded UTF-8")
        })?);
    }
    if let Some(value) = params.and_then(|p| p.get("callback")) {
        count += 1;
        found = Some(value.into());
    }
    match (count, found) {
        (0, _) | (_, None) => Ok(None),
        (1, Some(name)) => Callback::parse(&name)
            .map(Some)
            .map_err(|err| OAuthError::invalid_request(err.to_string())),
        _ => Err(OAuthError::invalid_request(
            "the `callback` parameter is given more than once",
        )),
    }
}

/// Whether a content type is `application/json` or `application/*+json`.
fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const JAVASCRIPT: HeaderValue = HeaderValue::from_static("application/javascript; charset=utf-8");

/// Wraps a JSON or empty response for `callback`; passes any other through with `nosniff`.
pub(crate) fn wrap<B: Body>(response: Response<B>, callback: &Callback) -> Response<JsonpBody<B>> {
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    // Encoded (compressed) bytes cannot be wrapped; place compression outside this layer.
    let encoded = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v != "identity");
    let wrappable = !encoded
        && match parts.headers.get(header::CONTENT_TYPE) {
            Some(ct) => is_json(ct),
            None => body.is_end_stream() || body.size_hint().exact() == Some(0),
        };
    if !wrappable {
        return Response::from_parts(parts, JsonpBody::plain(body));
    }
    parts
        .headers
        .insert(X_ORIGINAL_STATUS, HeaderValue::from(parts.status.as_u16()));
    parts.status = StatusCode::OK;
    parts.headers.insert(header::CONTENT_TYPE, JAVASCRIPT);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, JsonpBody::wrapped(body, callback))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Jsonp<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<JsonpBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    forward_ready!();

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !self.enabled {
            return ResponseFuture::inner(self.inner.call(req), None);
        }
        match find_callback(req.uri().query(), req.extensions().get::<FormParams>()) {
            Ok(callback) => ResponseFuture::inner(self.inner.call(req), callback),
            Err(err) => ResponseFuture::reject(err),
        }
    }
}

pin_project! {
    /// The response future of [`Jsonp`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Reject { error: Option<OAuthError> },
        Inner { #[pin] future: F, callback: Option<Callback> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(future: F, callback: Option<Callback>) -> Self {
        Self {
            kind: Kind::Inner { future, callback },
        }
    }

    fn reject(error: OAuthError) -> Self {
        Self {
            kind: Kind::Reject { error: Some(error) },
        }
    }
}

opaque_debug!(ResponseFuture<F>);

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<JsonpBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Reject { error } => Poll::Ready(Ok(error
                .take()
                .expect("polled after completion")
                .to_response())),
            KindProj::Inner { future, callback } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(match callback.take() {
                    Some(callback) => wrap(response, &callback),
                    None => response.map(JsonpBody::plain),
                }))
            }
        }
    }
}
