//! WSO2's SOAP admin service for resource owners (`/services/OAuthAdminService`), with HTTP
//! Basic as the user, limited like every password check.

use std::convert::Infallible;

use axum::{body::Body, Router};
use http::{header, HeaderValue, Method, StatusCode};
use tower::{service_fn, ServiceExt};
use tower_oauth_revoke::{
    client_auth::{decode_basic, MemoryClientRegistry, RemoteAddr},
    owner::ResourceOwner,
    soap::{self, OAuthAdminService},
};

use crate::{
    store::DemoStore,
    users::{UserAuthError, Users},
};

/// Where WSO2 serves it: the service, and its SOAP 1.1 and 1.2 ports.
pub(crate) const PATHS: [&str; 3] = [
    "/services/OAuthAdminService",
    "/services/OAuthAdminService.OAuthAdminServiceHttpsSoap11Endpoint/",
    "/services/OAuthAdminService.OAuthAdminServiceHttpsSoap12Endpoint/",
];

pub(crate) fn routes(
    store: DemoStore,
    registry: MemoryClientRegistry,
    users: Users,
    issuer_url: &str,
) -> Router {
    let service = OAuthAdminService::new(store, registry).address(&format!(
        "{}{}",
        issuer_url.trim_end_matches('/'),
        PATHS[0]
    ));
    let soap = service_fn(move |mut req: http::Request<Body>| {
        let (service, users) = (service.clone(), users.clone());
        async move {
            // The description is public, as WSO2's is; every operation needs the user.
            if req.method() == Method::POST {
                let basic = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(decode_basic);
                let repeated = req.headers().get_all(header::AUTHORIZATION).iter().count() > 1;
                if let (Some((name, password)), false) = (basic, repeated) {
                    let addr = req.extensions().get::<RemoteAddr>().copied();
                    match users.authenticate(&name, &password, addr) {
                        Ok(()) => {
                            req.extensions_mut().insert(ResourceOwner::new(name));
                        }
                        Err(UserAuthError::Limited(retry)) => {
                            let mut response = soap::fault_for(
                                req.headers(),
                                StatusCode::TOO_MANY_REQUESTS,
                                "too many failed attempts; try again later",
                            );
                            response
                                .headers_mut()
                                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
                            return Ok::<_, Infallible>(response);
                        }
                        // No owner: the service answers 401 with a fault.
                        Err(UserAuthError::Invalid) => {}
                    }
                }
            }
            service.oneshot(req).await
        }
    });
    PATHS.iter().fold(Router::new(), |router, path| {
        router.route_service(path, soap.clone())
    })
}
