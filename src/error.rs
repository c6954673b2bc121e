//! OAuth error responses: [RFC 6749 §5.2], [RFC 7009 §2.2.1] and [RFC 6750 §3.1].
//!
//! Every error this crate answers with is an [`OAuthError`]: it knows its status, its
//! registered error code, its description and the extra headers it needs
//! (`WWW-Authenticate`, `Retry-After`). One function, [`OAuthError::to_response`], renders
//! all of them as `application/json` with `Cache-Control: no-store` and `Pragma: no-cache`.
//!
//! ```
//! use tower_oauth_revoke::error::{ErrorCode, OAuthError};
//! use http::StatusCode;
//!
//! let err = OAuthError::invalid_request("the `token` parameter is missing");
//! assert_eq!(err.status(), StatusCode::BAD_REQUEST);
//! assert_eq!(err.code(), ErrorCode::InvalidRequest);
//! let response: http::Response<http_body_util::Full<bytes::Bytes>> = err.to_response();
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! ```
//!
//! [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
//! [RFC 7009 §2.2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.2.1
//! [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1

use std::{borrow::Cow, fmt};

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// The registered OAuth error codes this crate answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed ([RFC 6749 §5.2]).
    ///
    /// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
    InvalidRequest,
    /// `invalid_client`: client authentication failed ([RFC 6749 §5.2]).
    ///
    /// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
    InvalidClient,
    /// `invalid_grant`: the grant or token was not issued to this client ([RFC 6749 §5.2]).
    ///
    /// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this method ([RFC 6749 §5.2]).
    ///
    /// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
    UnauthorizedClient,
    /// `unsupported_grant_type` ([RFC 6749 §5.2]).
    ///
    /// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
    UnsupportedGrantType,
    /// `unsupported_token_type` ([RFC 7009 §2.2.1]).
    ///
    /// [RFC 7009 §2.2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.2.1
    UnsupportedTokenType,
    /// `temporarily_unavailable`: the server cannot answer now; try again later.
    TemporarilyUnavailable,
    /// `invalid_token`: the bearer token is revoked, expired or unknown ([RFC 6750 §3.1]).
    ///
    /// [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1
    InvalidToken,
    /// `server_error`: a fault of the server, never of the client.
    ServerError,
    /// `access_denied`: the resource owner is not authenticated or refused ([RFC 6749 §4.1.2.1]).
    ///
    /// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
    AccessDenied,
    /// `invalid_dpop_proof`: the DPoP proof is malformed, unsigned, stale, replayed or does
    /// not match the request ([RFC 9449 §5] at the token endpoint, [RFC 9449 §7.1] at a
    /// resource server).
    ///
    /// [RFC 9449 §5]: https://www.rfc-editor.org/rfc/rfc9449#section-5
    /// [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
    InvalidDpopProof,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ServerError => "server_error",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error that renders itself as an HTTP response.
///
/// Build one with the named constructors, add headers with the `with_*` methods, and turn
/// it into a response with [`to_response`](Self::to_response).
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    code: ErrorCode,
    description: Cow<'static, str>,
    www_authenticate: Option<HeaderValue>,
    retry_after: Option<u64>,
    allow: Option<&'static str>,
}

impl OAuthError {
    /// An error with any status, code and description.
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            www_authenticate: None,
            retry_after: None,
            allow: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            description,
        )
    }

    /// 400 `invalid_grant`.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidGrant,
            description,
        )
    }

    /// 503 `temporarily_unavailable` with `Retry-After`.
    pub fn temporarily_unavailable(
        description: impl Into<Cow<'static, str>>,
        retry_after_secs: u64,
    ) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TemporarilyUnavailable,
            description,
        )
        .with_retry_after(retry_after_secs)
    }

    /// 500 `server_error`: a misconfiguration of the host, never a client mistake.
    pub fn server_error(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            description,
        )
    }

    /// 405 `invalid_request` for a method the endpoint does not accept, with
    /// `Allow: allow` (RFC 9110 §15.5.6), e.g. `"POST"` or `"GET, DELETE"`.
    ///
    /// # Panics
    ///
    /// If `allow` is not a valid header value (a constant such as `"POST"` always is).
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let _ = HeaderValue::from_static(allow);
        let mut err = Self::invalid_request(format!("the method is not allowed here; use {allow}"))
            .with_status(StatusCode::METHOD_NOT_ALLOWED);
        err.allow = Some(allow);
        err
    }

    setters! {
        /// Replaces the status code.
        #[must_use]
        pub fn with_status(status: StatusCode) => status;

        /// Adds a `WWW-Authenticate` header.
        #[must_use]
        pub fn with_www_authenticate(value: HeaderValue) => www_authenticate = Some(value);

        /// Adds a `Retry-After` header, in seconds.
        #[must_use]
        pub fn with_retry_after(secs: u64) => retry_after = Some(secs);
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The OAuth error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable `error_description`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON body: `{"error":"...","error_description":"..."}`.
    pub fn to_json(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(40 + self.description.len());
        buf.put_slice(b"{\"error\":\"");
        buf.put_slice(self.code.as_str().as_bytes());
        buf.put_slice(b"\",\"error_description\":\"");
        write_json_string_contents(&mut buf, &self.description);
        buf.put_slice(b"\"}");
        buf.freeze()
    }

    /// Renders the error: JSON body, `Cache-Control: no-store`, `Pragma: no-cache`, and the
    /// `WWW-Authenticate`, `Retry-After` and `Allow` headers it carries, with any body type
    /// made from bytes (this crate's [`Body`](crate::body::Body) and [`ResponseBody`](crate::body::ResponseBody),
    /// axum's `Body`, `http_body_util::Full<Bytes>`).
    pub fn to_response<B>(&self) -> Response<B>
    where
        B: From<Bytes>,
    {
        self.to_bytes_response().map(B::from)
    }

    /// The response of [`to_response`](Self::to_response) with its body as bytes: what an
    /// [`EndpointStep`](crate::endpoint::EndpointStep) returns when it must put something
    /// in an error response's extensions.
    pub fn to_bytes_response(&self) -> Response<Bytes> {
        let mut response = Response::new(self.to_json());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, APPLICATION_JSON);
        set_no_store(headers);
        if let Some(value) = &self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, value.clone());
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// With the `axum` feature, an axum handler can return `Result<_, OAuthError>`:
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_oauth_revoke::error::OAuthError;
///
/// async fn token() -> Result<&'static str, OAuthError> {
///     Err(OAuthError::invalid_request("`grant_type` is required"))
/// }
/// let app: Router = Router::new().route("/token", post(token));
/// # let _ = app;
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for OAuthError {
    fn into_response(self) -> axum::response::Response {
        self.to_response()
    }
}

/// Refuses a request that repeats a header that must appear once ([RFC 9110 §5.3]:
/// `Authorization`, `Content-Type` and `Origin` are not lists): a proxy in front may read
/// one copy and this server the other. 400 `invalid_request` naming the header.
///
/// [RFC 9110 §5.3]: https://www.rfc-editor.org/rfc/rfc9110#section-5.3
pub(crate) fn refuse_repeated(
    headers: &HeaderMap,
    name: &header::HeaderName,
) -> Result<(), OAuthError> {
    let mut values = headers.get_all(name).iter();
    if values.next().is_some() && values.next().is_some() {
        return Err(OAuthError::invalid_request(format!(
            "the {} header must not be repeated",
            name.as_str()
        )));
    }
    Ok(())
}

/// The realm of every `WWW-Authenticate` challenge the crate sends unless told otherwise:
/// the revocation endpoint's, [`ClientAuthLayer`](crate::client_auth::ClientAuthLayer)'s and
/// [`BearerGuardLayer`](crate::guard::BearerGuardLayer)'s alike.
pub const DEFAULT_REALM: &str = "oauth";

/// A `WWW-Authenticate` challenge, `SCHEME realm="REALM"` followed by `params` (e.g.
/// `, error="invalid_token"`). Quotes, backslashes and control characters are dropped from
/// the realm, so no realm can break the header.
pub(crate) fn challenge(scheme: &str, realm: &str, params: &str) -> HeaderValue {
    let clean: String = realm
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    HeaderValue::from_str(&format!("{scheme} realm=\"{clean}\"{params}"))
        .unwrap_or_else(|_| HeaderValue::from_str(scheme).expect("a token68 scheme name"))
}

pub(crate) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Sets `Cache-Control: no-store` and `Pragma: no-cache` ([RFC 6749 §5.1]).
///
/// [RFC 6749 §5.1]: https://www.rfc-editor.org/rfc/rfc6749#section-5.1
pub fn set_no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Writes `s` as the inside of a JSON string, escaping what JSON requires and what could
/// end a script or an HTML context (`<`, `>`, `&`, U+2028, U+2029).
pub(crate) fn write_json_string_contents(buf: &mut BytesMut, s: &str) {
    for c in s.chars() {
        match c {
            '"' => buf.put_slice(b"\\\""),
            '\\' => buf.put_slice(b"\\\\"),
            '<' => buf.put_slice(b"\\u003c"),
            '>' => buf.put_slice(b"\\u003e"),
            '&' => buf.put_slice(b"\\u0026"),
            '\u{2028}' => buf.put_slice(b"\\u2028"),
            '\u{2029}' => buf.put_slice(b"\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = std::fmt::Write::write_fmt(
                    &mut StrBuf(buf),
                    format_args!("\\u{:04x}", c as u32),
                );
            }
            c => {
                let mut tmp = [0u8; 4];
                buf.put_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

struct StrBuf<'a>(&'a mut BytesMut);

impl fmt::Write for StrBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn challenges_drop_what_would_break_the_header() {
        assert_eq!(challenge("Basic", "oauth", ""), "Basic realm=\"oauth\"");
        assert_eq!(
            challenge("Bearer", "a\"b\\c\nd", ", error=\"invalid_token\""),
            "Bearer realm=\"abcd\", error=\"invalid_token\""
        );
        // Non-ASCII goes through as the UTF-8 bytes of obs-text.
        assert_eq!(
            challenge("Basic", "réalm\u{7f}", "").as_bytes(),
            "Basic realm=\"réalm\"".as_bytes()
        );
    }

    #[test]
    fn json_escapes_description() {
        let err = OAuthError::invalid_request("bad \"x\" <y>\n");
        assert_eq!(
            &err.to_json()[..],
            br#"{"error":"invalid_request","error_description":"bad \"x\" \u003cy\u003e\u000a"}"#
        );
    }

    #[test]
    fn response_has_headers() {
        let resp: Response<Full<Bytes>> = OAuthError::invalid_client("no")
            .with_www_authenticate(HeaderValue::from_static("Basic realm=\"x\""))
            .to_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"x\"");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["pragma"], "no-cache");
        let resp: Response<Full<Bytes>> =
            OAuthError::temporarily_unavailable("down", 5).to_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "5");
    }
}
