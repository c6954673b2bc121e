//! [`PushReceiver`]: pushed SETs ([RFC 8935]).
//!
//! [RFC 8935]: https://www.rfc-editor.org/rfc/rfc8935

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};
use tower_service::Service;

use super::{Handler, SetVerifier, MAX_BODY};
use crate::set::{ReceivedEvent, CONTENT_TYPE};

/// Takes pushed SETs (RFC 8935): `POST` with `Content-Type: application/secevent+jwt`;
/// 202 once verified and handed to the handler, 400 `{"err","description"}` otherwise.
#[derive(Clone)]
pub struct PushReceiver {
    verifier: SetVerifier,
    handler: Handler,
}

debug_fields!(PushReceiver { verifier });

impl PushReceiver {
    /// A receiver handing each verified event to `handler`.
    pub fn new(
        verifier: SetVerifier,
        handler: impl Fn(&ReceivedEvent) + Send + Sync + 'static,
    ) -> Self {
        Self {
            verifier,
            handler: Arc::new(handler),
        }
    }
}

fn answer(status: StatusCode, body: Option<Value>) -> Response<crate::body::Body> {
    let mut response = Response::new(crate::body::Body::new(
        body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    ));
    *response.status_mut() = status;
    if status != StatusCode::ACCEPTED {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

fn refused(err: &str, description: &str) -> Response<crate::body::Body> {
    answer(
        StatusCode::BAD_REQUEST,
        Some(json!({"err": err, "description": description})),
    )
}

impl<B> Service<Request<B>> for PushReceiver
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    answer_service!(Request<B>);
}

impl PushReceiver {
    async fn answer<B>(&self, req: Request<B>) -> Response<crate::body::Body>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        if req.method() != Method::POST {
            let mut response = refused("invalid_request", "push with POST");
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some(CONTENT_TYPE) {
            return refused(
                "invalid_request",
                "the content type must be application/secevent+jwt",
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return refused("invalid_request", "the body is too large"),
        };
        let Ok(jws) = std::str::from_utf8(&body) else {
            return refused("invalid_request", "the body is not a SET");
        };
        match self.verifier.verify(jws.trim()).await {
            Ok(event) => {
                (self.handler)(&event);
                answer(StatusCode::ACCEPTED, None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a pushed security event");
                refused(e.err, &e.description)
            }
        }
    }
}
