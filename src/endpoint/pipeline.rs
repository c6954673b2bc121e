//! The pipeline after CORS: form, JSONP, client authentication, the origin check and the
//! step, in one future per request.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use http::{request::Parts, HeaderMap, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::{
    body::{BoxFuture, EndpointBody},
    EndpointStep, StepRequest,
};
use crate::{
    body::BoxError,
    client_auth::{authenticate_request, ClientAuthLayer, ClientKind, ClientRegistry, RemoteAddr},
    cors::{add_vary, check_origin},
    error::OAuthError,
    form::{read_form, FormLayer, FormParams, FormPlan},
    jsonp::{find_callback, wrap, JsonpBody},
    origin::Origin,
};

/// The steps after CORS, configured once and shared by every request.
pub(super) struct Pipeline<R, T> {
    pub(super) form: FormLayer,
    pub(super) jsonp: bool,
    pub(super) auth: ClientAuthLayer<R>,
    pub(super) origins: Arc<[Origin]>,
    pub(super) step: T,
    pub(super) annotate: bool,
    pub(super) quiet: bool,
}

impl<R: ClientRegistry, T: EndpointStep> Pipeline<R, T> {
    /// Form, JSONP, then the rest, with `Vary` when `tower_http::cors` is not in front. As
    /// in the layered stack, the form's refusals and a bad callback are answered unwrapped.
    ///
    /// This is the one future of a request: it takes the pipeline by `Arc` and keeps across
    /// its awaits only what the later steps read, so that it stays small to move.
    pub(super) async fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
        vary: bool,
    ) -> Result<Response<EndpointBody>, Infallible>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let plan = self.form.plan(&parts);
        let Parts {
            uri,
            headers,
            extensions,
            ..
        } = parts;
        let addr = RemoteAddr::from_extensions(&extensions);
        let certificate = crate::client_auth::presented_certificate(&extensions).cloned();
        drop(extensions);
        let mut response = 'answer: {
            let params = match plan {
                Ok(FormPlan::Query(params)) => params,
                Ok(FormPlan::Body { limit }) => match read_form(body, limit).await {
                    Ok((_, params)) => params,
                    Err(err) => break 'answer OAuthError::from(err).to_response(),
                },
                Err(err) => break 'answer OAuthError::from(err).to_response(),
            };
            let callback = if self.jsonp {
                match find_callback(uri.query(), Some(&params)) {
                    Ok(callback) => callback,
                    Err(err) => break 'answer err.to_response(),
                }
            } else {
                None
            };
            let response = self
                .authenticated(&headers, addr, &params, uri.path(), certificate.as_ref())
                .await;
            match callback {
                Some(callback) => wrap(response, &callback),
                None => response.map(JsonpBody::plain),
            }
        };
        if vary {
            add_vary(response.headers_mut());
        }
        Ok(response)
    }

    /// Client authentication, the origin check and the step; with
    /// [`annotate_responses`](super::EndpointBuilder::annotate_responses), the client goes in the
    /// response's extensions.
    async fn authenticated(
        &self,
        headers: &HeaderMap,
        addr: Option<RemoteAddr>,
        params: &FormParams,
        path: &str,
        certificate: Option<&crate::client_auth::PresentedCertificate>,
    ) -> Response<crate::body::Body> {
        let client = match authenticate_request(
            self.auth.registry(),
            self.auth.config(),
            headers,
            Some(params),
            addr,
            path,
            certificate,
        )
        .await
        {
            Ok(client) => client,
            Err(err) => return err.to_response(),
        };
        if let Err(err) = check_origin(&self.origins, headers, Some(&client)) {
            return err.to_response();
        }
        if client.kind() == ClientKind::Public && !self.step.accepts_public_clients() {
            return super::step::public_client_refused()
                .with_www_authenticate(self.auth.config().challenge().clone())
                .to_response();
        }
        let request = StepRequest {
            client: &client,
            params,
            headers,
            remote_addr: addr,
            certificate: certificate.filter(|_| self.auth.config().accepts_certificates()),
            annotate: self.annotate,
            quiet: self.quiet,
        };
        let mut response = super::step::render(self.step.answer(request).await);
        if self.annotate {
            response.extensions_mut().insert(client);
        }
        response
    }
}

/// The pipeline after CORS as the service `tower_http::cors` wraps.
pub(super) struct Fused<R, T>(pub(super) Arc<Pipeline<R, T>>);

impl<R, T> Clone for Fused<R, T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<R, T, B> Service<Request<B>> for Fused<R, T>
where
    R: ClientRegistry,
    T: EndpointStep,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EndpointBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<EndpointBody>, Infallible>>;

    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(self.0.clone().handle(req, false))
    }
}
