//! The resource owner's page, `GET /account`: sign in, see the apps that hold grants from
//! you, revoke one or all. Plain HTML, a script and a style sheet served from this
//! process; the page talks to `/account/session` and the owner API.
//!
//! Every answer under `/account` and from the owner API carries a strict
//! `Content-Security-Policy` (no inline script or style, no framing, requests to this
//! origin only), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store`.

use std::convert::Infallible;

use crate::{session::Sessions, users::Users};
use axum::{body::Body, middleware, response::Response as AxumResponse, Router};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::service_fn;
use tower_oauth_revoke::error::OAuthError;

const PAGE: &str = include_str!("account/index.html");
const SCRIPT: &str = include_str!("account/app.js");
const STYLE: &str = include_str!("account/app.css");

/// Scripts, styles, images and requests from this origin only; no inline script or
/// style, no plugins, no framing, forms posted here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// Adds the page's security headers to `headers`.
fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The middleware that adds the security headers to every answer of a router.
async fn with_security_headers(mut response: AxumResponse) -> AxumResponse {
    protect(response.headers_mut());
    response
}

/// `router` with the page's security headers on every answer.
pub(crate) fn protected(router: Router) -> Router {
    router.layer(middleware::map_response(with_security_headers))
}

fn asset(
    req: &Request<Body>,
    body: &'static str,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return OAuthError::method_not_allowed("GET, HEAD").to_response();
    }
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The routes under `/account`: the page, its script and style sheet, and the session.
pub(crate) fn routes(sessions: Sessions, users: Users) -> Router {
    let page = service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(asset(&req, PAGE, "text/html; charset=utf-8"))
    });
    let script = service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(asset(&req, SCRIPT, "text/javascript; charset=utf-8"))
    });
    let style = service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(asset(&req, STYLE, "text/css; charset=utf-8"))
    });
    let session = service_fn(move |req: Request<Body>| {
        let (sessions, users) = (sessions.clone(), users.clone());
        async move { Ok::<_, Infallible>(sessions.handle(&users, req).await) }
    });
    protected(
        Router::new()
            .route_service("/account", page)
            .route_service("/account/app.js", script)
            .route_service("/account/app.css", style)
            .route_service("/account/session", session),
    )
}
