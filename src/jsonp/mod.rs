//! JSONP for JSON endpoints, done safely ([RFC 7009 §2.3]).
//!
//! [`JsonpLayer`] wraps any JSON endpoint: when a request carries a `callback` parameter
//! (in the query string, or in the urlencoded body that [`FormLayer`](crate::form::FormLayer)
//! parsed into [`FormParams`](crate::form::FormParams)), the response becomes the script
//! `/**/callback(<json>);`, or `/**/callback();` for an empty body (the RFC 7009 §2.3
//! success form).
//!
//! **Logs**: a JSON-P `GET` carries the token in its query string, and tower-http's default
//! request span records the whole URI. Mount [`trace::layer()`](crate::trace::layer) (or give
//! your `TraceLayer` [`PathSpan`](crate::trace::PathSpan)) so that spans hold the path only.
//!
//! | request | answer |
//! |---|---|
//! | no `callback` | the inner response, untouched |
//! | `callback` given twice (query and body, or twice in the query) | 400 `invalid_request`, plain JSON |
//! | `callback` not a dotted JavaScript identifier of at most 128 characters, or using a reserved word ([`Callback`]) | 400 `invalid_request`, plain JSON that does not repeat the name |
//! | valid `callback`, inner response JSON (`application/json`, `application/*+json`) or empty without a content type | **200**, `/**/callback(...);` |
//! | valid `callback`, inner response of another content type, or with a `Content-Encoding` | the inner response unwrapped, with `X-Content-Type-Options: nosniff` |
//!
//! A wrapped response always has status 200, because a browser does not run a script served
//! with 4xx or 5xx and the callback could not see the error otherwise. The inner status is
//! kept in the [`X-Original-Status`](X_ORIGINAL_STATUS) header (a JSONP caller reads the
//! outcome from the JSON it receives: an OAuth error carries `error`). Wrapped responses
//! have `Content-Type: application/javascript; charset=utf-8` and
//! `X-Content-Type-Options: nosniff`, lose `Content-Length`, and keep every other header of
//! the inner response (`Cache-Control: no-store` among them).
//!
//! Responses of other content types are never wrapped: text or HTML inside a callback could
//! become script. They pass through as they are, with `nosniff`, so a browser refuses to
//! run them.
//!
//! The body is wrapped frame by frame ([`JsonpBody`]), never buffered.
//!
//! The layer is useful around any JSON service:
//!
//! ```
//! use tower_oauth_revoke::jsonp::JsonpLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use bytes::Bytes;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(JsonpLayer::new())
//!     .service(service_fn(|_req: Request<Full<Bytes>>| async {
//!         let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
//!         response.headers_mut().insert("content-type", "application/json".parse().unwrap());
//!         Ok::<_, Infallible>(response)
//!     }));
//!
//! let request = Request::get("/status?callback=app.onStatus").body(Full::default()).unwrap();
//! let response = svc.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["content-type"], "application/javascript; charset=utf-8");
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"/**/app.onStatus({\"ok\":true});");
//! # }
//! ```
//!
//! JSONP requests are `GET`s from `<script>` tags: whatever they carry (a token to revoke)
//! travels in the URL and reaches access logs, proxies and browser history. Prefer `fetch()`
//! with CORS where browsers allow it; enable JSONP only for callers that need it.
//!
//! [RFC 7009 §2.3]: https://www.rfc-editor.org/rfc/rfc7009#section-2.3

mod body;
mod callback;
mod layer;
mod service;

use http::HeaderName;

pub(crate) use self::service::{find_callback, wrap};
pub use self::{
    body::JsonpBody,
    callback::{Callback, InvalidCallback, MAX_CALLBACK_LEN},
    layer::JsonpLayer,
    service::{Jsonp, ResponseFuture},
};

/// `X-Original-Status`: on a wrapped JSONP response (always 200), the status the inner
/// service answered with, such as `401`.
pub const X_ORIGINAL_STATUS: HeaderName = HeaderName::from_static("x-original-status");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{error::OAuthError, form::FormLayer};
    use bytes::Bytes;
    use http::{HeaderMap, Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;
    use tower::{service_fn, ServiceBuilder, ServiceExt};
    use tower_layer::Layer;
    use tower_service::Service;

    /// A JSON service that answers with the status in the `status` query parameter.
    fn json_service<B: Send + 'static>() -> impl Service<
        Request<B>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        service_fn(|req: Request<B>| async move {
            let query = req.uri().query().unwrap_or("");
            let response = if query.contains("fail") {
                OAuthError::invalid_client("no").to_response()
            } else if query.contains("empty") {
                Response::new(Full::default())
            } else if query.contains("gzip") {
                let mut r = Response::new(Full::new(Bytes::from_static(b"\x1f\x8b")));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                r.headers_mut()
                    .insert("content-encoding", "gzip".parse().unwrap());
                r
            } else if query.contains("html") {
                let mut r = Response::new(Full::new(Bytes::from_static(b"<b>hi</b>")));
                r.headers_mut()
                    .insert("content-type", "text/html".parse().unwrap());
                r
            } else {
                let mut r = Response::new(Full::new(Bytes::from_static(b"{\"n\":1}")));
                r.headers_mut()
                    .insert("content-type", "application/problem+json".parse().unwrap());
                r.headers_mut()
                    .insert("content-length", "7".parse().unwrap());
                r
            };
            Ok::<_, Infallible>(response)
        })
    }

    async fn send<S, B>(svc: S, req: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, String)
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = svc.oneshot(req).await.unwrap().into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn get(uri: &str) -> Request<Full<Bytes>> {
        Request::get(uri).body(Full::default()).unwrap()
    }

    /// `GET uri` through the JSONP layer over [`json_service`].
    async fn get_jsonp(uri: &str) -> (StatusCode, HeaderMap, String) {
        send(JsonpLayer::new().layer(json_service()), get(uri)).await
    }

    #[tokio::test]
    async fn wraps_json_of_any_service() {
        let (status, headers, body) = get_jsonp("/?callback=package.myCallback").await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/package.myCallback({\"n\":1});");
        assert_eq!(
            headers["content-type"],
            "application/javascript; charset=utf-8"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers[X_ORIGINAL_STATUS], "200");
        assert!(headers.get("content-length").is_none());
    }

    #[tokio::test]
    async fn errors_are_wrapped_with_status_200_and_original_status() {
        let (status, headers, body) = get_jsonp("/?fail&callback=cb_1").await;
        assert_eq!(status, 200);
        assert_eq!(headers[X_ORIGINAL_STATUS], "401");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            body.starts_with("/**/cb_1({\"error\":\"invalid_client\""),
            "{body}"
        );
        assert!(body.ends_with("});"));
    }

    #[tokio::test]
    async fn empty_body_is_the_rfc_7009_success_form() {
        let (status, headers, body) = get_jsonp("/?empty&callback=$jsonp").await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/$jsonp();");
        assert_eq!(headers[X_ORIGINAL_STATUS], "200");
    }

    #[tokio::test]
    async fn other_content_types_pass_through_unwrapped() {
        let (status, headers, body) = get_jsonp("/?html&callback=cb").await;
        assert_eq!(status, 200);
        assert_eq!(body, "<b>hi</b>");
        assert_eq!(headers["content-type"], "text/html");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.get(X_ORIGINAL_STATUS).is_none());
    }

    #[tokio::test]
    async fn encoded_json_passes_through_unwrapped() {
        let svc = JsonpLayer::new().layer(json_service());
        let response = svc.oneshot(get("/?gzip&callback=cb")).await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"\x1f\x8b");
    }

    #[tokio::test]
    async fn without_callback_nothing_changes() {
        let (status, headers, body) = get_jsonp("/?fail").await;
        assert_eq!(status, 401);
        assert_eq!(headers["content-type"], "application/json");
        assert!(body.starts_with("{\"error\""));
    }

    #[tokio::test]
    async fn disabled_layer_ignores_callback() {
        let svc = JsonpLayer::disabled().layer(json_service());
        let (status, _, body) = send(svc.clone(), get("/?fail&callback=cb")).await;
        assert_eq!(status, 401);
        assert!(body.starts_with("{\"error\""));
        let (status, _, _) = send(svc, get("/?callback=alert(1)")).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn invalid_callbacks_are_400_plain_json_without_echo() {
        for bad in [
            "alert(1)//",
            "%3Cscript%3E",
            "a%20b",
            "a%22b",
            "%5Cu0061lert",
            "new.cb",
            "",
        ] {
            let (status, headers, body) = get_jsonp(&format!("/?callback={bad}")).await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(headers["content-type"], "application/json", "{bad}");
            assert!(body.starts_with("{\"error\":\"invalid_request\""), "{body}");
            assert!(
                !body.contains("alert") && !body.contains("u003cscript"),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn callback_twice_in_the_query_is_400() {
        let (status, _, body) = get_jsonp("/?callback=a&callback=b").await;
        assert_eq!(status, 400);
        assert!(body.contains("more than once"), "{body}");
    }

    /// A form service echoing JSON, behind the form layer as in the revocation endpoint.
    fn form_stack() -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<impl http_body::Body<Data = Bytes, Error = crate::body::BoxError>>,
        Error = Infallible,
    > + Clone {
        ServiceBuilder::new()
            .layer(FormLayer::new().allow_get_with_callback(true))
            .layer(JsonpLayer::new())
            .service(json_service())
    }

    fn post(uri: &str, body: &'static str) -> Request<Full<Bytes>> {
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn callback_from_the_form_body() {
        let (status, _, body) = send(
            form_stack(),
            post("/", "token=t&callback=package.myCallback"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/package.myCallback({\"n\":1});");
    }

    #[tokio::test]
    async fn callback_in_query_and_body_is_400() {
        let (status, headers, body) =
            send(form_stack(), post("/?callback=a", "token=t&callback=b")).await;
        assert_eq!(status, 400);
        assert_eq!(headers["content-type"], "application/json");
        assert!(body.contains("more than once"), "{body}");
    }

    #[tokio::test]
    async fn get_with_callback_through_the_form_layer_is_counted_once() {
        let (status, _, body) = send(form_stack(), get("/?token=t&callback=cb")).await;
        assert_eq!(status, 200);
        assert_eq!(body, "/**/cb({\"n\":1});");
    }
}
