//! The response body and future of an [`Endpoint`](super::Endpoint).

use std::{convert::Infallible, future::Future, pin::Pin};

use http::Response;

use crate::{body::Body, jsonp::JsonpBody};

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The response body of an [`Endpoint`](super::Endpoint): the step's answer or an OAuth
/// error, as it is or wrapped for JSON-P; empty by default.
pub type EndpointBody = JsonpBody<Body>;

opaque_future! {
    /// The response future of an [`Endpoint`](super::Endpoint).
    pub struct EndpointFuture(BoxFuture<Result<Response<EndpointBody>, Infallible>>);
}
