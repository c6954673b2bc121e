//! Revocation by the resource owner: the REST form of WSO2's
//! `revokeAuthzForAppsByResourceOwner`.
//!
//! [`OwnerAuthorizations`] lets a resource owner see which clients hold grants from them,
//! and take one client's access away at once, or every client's:
//!
//! | request (relative to where it is mounted) | answer |
//! |---|---|
//! | `GET /` | 200 `{"authorizations":[{"client_id":..,"client_name":..,"grants":n}]}` (`client_name` only when the registry knows one) |
//! | `DELETE /` | 204: every grant this owner gave, to any client, is revoked in one write ([`TokenStore::revoke_subject`]: "sign out everywhere"); idempotent |
//! | `DELETE /{client_id}` | 204: every grant and token that client holds from this owner is revoked, atomically; idempotent |
//! | no [`ResourceOwner`] in the extensions | 401 `access_denied` |
//! | another method | 405 + `Allow` |
//! | the store fails | 503 + `Retry-After` |
//!
//! The host authenticates its users its own way (a session cookie, a login form, HTTP
//! Basic...) and hands the owner's id in a [`ResourceOwner`] request extension. Other
//! clients' grants of the same owner, and the same client's grants of other owners, are
//! untouched.
//!
//! # Mounting
//!
//! The service reads the path after the prefix it is mounted at, set with
//! [`OwnerAuthorizations::mount_path`]; a path that does not start with it is read whole
//! (so axum's `nest_service`, which strips the prefix, works too):
//!
//! ```
//! use tower_oauth_revoke::owner::{OwnerAuthorizations, ResourceOwner};
//! use tower_oauth_revoke::client_auth::MemoryClientRegistry;
//! use tower_oauth_revoke::store::MemoryStore;
//! use tower::ServiceBuilder;
//! use tower_http::add_extension::AddExtensionLayer;
//!
//! let owner_api = OwnerAuthorizations::new(MemoryStore::new(), MemoryClientRegistry::default())
//!     .mount_path("/users/me/authorizations");
//! // In axum: the host's own login layer puts the ResourceOwner in (here a fixed one).
//! let app: axum::Router = axum::Router::new().nest_service(
//!     "/users/me/authorizations",
//!     ServiceBuilder::new()
//!         .layer(AddExtensionLayer::new(ResourceOwner::new("alice")))
//!         .service(owner_api),
//! );
//! # let _ = app;
//! ```
//!
//! The protocol step behind `DELETE /` is one store operation, a cut-off whatever the number
//! of grants, callable without HTTP:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::events::Initiator;
//! use tower_oauth_revoke::store::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let expires = SystemTime::now() + Duration::from_secs(60);
//! for (token, client, owner) in [("t1", "app", "alice"), ("t2", "other-app", "alice"), ("t3", "app", "bob")] {
//!     let mut record = TokenRecord::new(TokenKind::AccessToken, client, GrantId::random(), expires);
//!     record.owner = Some(owner.into());
//!     store.issue(TokenHash::of(token), record).await.unwrap();
//! }
//!
//! let by = Initiator::Owner("alice".into());
//! assert_eq!(store.revoke_subject("alice", by).await.unwrap(), 2);
//! assert!(store.inspect(&TokenHash::of("t1")).await.unwrap().is_none());
//! assert!(store.inspect(&TokenHash::of("t2")).await.unwrap().is_none());
//! // Other owners' grants are untouched.
//! assert!(store.inspect(&TokenHash::of("t3")).await.unwrap().is_some());
//! # }
//! ```
//!
//! # CSRF
//!
//! When the host authenticates owners with cookies, a `DELETE` can be forged by another
//! site only if the browser sends the cookie cross-site and the request passes CORS. Use
//! `SameSite=Lax` or `Strict` session cookies, do not allow other origins on this path with
//! CORS, and, for defence in depth, require an anti-CSRF header or token the host checks
//! before this service. Hosts that authenticate with an `Authorization` header are not
//! exposed.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};

use crate::events::Initiator;
use http::{header, Method, Request, Response, StatusCode};
use tower_service::Service;

use crate::escape::Escaped;
use crate::{
    body::Body,
    client_auth::ClientRegistry,
    error::{set_no_store, write_json_string_contents, ErrorCode, OAuthError, APPLICATION_JSON},
    store::TokenStore,
    urlencoded::decode_path_segment,
};

/// The authenticated resource owner, put in the request's extensions by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceOwner(Arc<str>);

impl ResourceOwner {
    /// The owner with this id (the `owner` of [`TokenRecord`](crate::store::TokenRecord)s).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The owner's id.
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// The resource-owner service; see the [module docs](self).
#[derive(Clone)]
pub struct OwnerAuthorizations<S, R> {
    store: S,
    registry: R,
    mount_path: Arc<str>,
}

debug_fields!(OwnerAuthorizations < S, R > { mount_path });

impl<S, R> OwnerAuthorizations<S, R> {
    /// Revokes in `store`; names clients from `registry`.
    pub fn new(store: S, registry: R) -> Self {
        Self {
            store,
            registry,
            mount_path: Arc::from(""),
        }
    }

    /// The path prefix the service is mounted at (e.g. `/users/me/authorizations`).
    #[must_use]
    pub fn mount_path(mut self, prefix: &str) -> Self {
        self.mount_path = Arc::from(prefix.trim_end_matches('/'));
        self
    }
}

enum Route {
    Collection,
    Client(String),
    NotFound,
}

fn route(path: &str, prefix: &str) -> Route {
    let rest = if prefix.is_empty() {
        path
    } else {
        match path.strip_prefix(prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            Some(_) => return Route::NotFound,
            None => path,
        }
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Route::Collection;
    }
    let segment = rest.strip_suffix('/').unwrap_or(rest);
    if segment.contains('/') {
        return Route::NotFound;
    }
    match decode_path_segment(segment.as_bytes()) {
        Some(id) if !id.is_empty() => Route::Client(id.into_owned()),
        _ => Route::NotFound,
    }
}

fn json_string(buf: &mut BytesMut, s: &str) {
    buf.put_u8(b'"');
    write_json_string_contents(buf, s);
    buf.put_u8(b'"');
}

fn respond(status: StatusCode, body: Bytes, json: bool) -> Response<Body> {
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    if json {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    }
    set_no_store(response.headers_mut());
    response
}

/// The answer when the store fails: logged, and 503 with `Retry-After`.
fn unavailable(err: &dyn fmt::Display) -> Response<Body> {
    tracing::error!(error = %err, "token store unavailable");
    OAuthError::temporarily_unavailable("the token store is unavailable; try again later", 1)
        .to_response()
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, R, B> Service<Request<B>> for OwnerAuthorizations<S, R>
where
    S: TokenStore,
    R: ClientRegistry,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(owner) = req.extensions().get::<ResourceOwner>().cloned() else {
            let response = OAuthError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::AccessDenied,
                "the resource owner is not authenticated",
            )
            .to_response();
            return Box::pin(async move { Ok(response) });
        };
        let store = self.store.clone();
        let registry = self.registry.clone();
        let method = req.method().clone();
        let route = route(req.uri().path(), &self.mount_path);
        Box::pin(async move {
            let response = match (route, method) {
                (Route::Collection, Method::GET) => {
                    match store.clients_of_owner(owner.id()).await {
                        Ok(clients) => {
                            let mut buf = BytesMut::with_capacity(64 + clients.len() * 64);
                            buf.put_slice(b"{\"authorizations\":[");
                            for (i, held) in clients.iter().enumerate() {
                                if i > 0 {
                                    buf.put_u8(b',');
                                }
                                buf.put_slice(b"{\"client_id\":");
                                json_string(&mut buf, &held.client_id);
                                let name = registry
                                    .find_client(&held.client_id)
                                    .await
                                    .ok()
                                    .flatten()
                                    .and_then(|c| c.name().map(str::to_owned));
                                if let Some(name) = name {
                                    buf.put_slice(b",\"client_name\":");
                                    json_string(&mut buf, &name);
                                }
                                buf.put_slice(format!(",\"grants\":{}}}", held.grants).as_bytes());
                            }
                            buf.put_slice(b"]}");
                            respond(StatusCode::OK, buf.freeze(), true)
                        }
                        Err(err) => unavailable(&err),
                    }
                }
                (Route::Client(client_id), Method::DELETE) => {
                    let by = Initiator::Owner(owner.id().into());
                    match store
                        .revoke_client_for_owner(owner.id(), &client_id, by)
                        .await
                    {
                        Ok(grants) => {
                            tracing::info!(
                                client_id = %Escaped(&client_id),
                                grants,
                                outcome = "owner_revoked",
                                "resource owner revoked a client's access"
                            );
                            respond(StatusCode::NO_CONTENT, Bytes::new(), false)
                        }
                        Err(err) => unavailable(&err),
                    }
                }
                (Route::Collection, Method::DELETE) => {
                    // Signing out everywhere: one write, whatever the number of grants.
                    let by = Initiator::Owner(owner.id().into());
                    match store.revoke_subject(owner.id(), by).await {
                        Ok(grants) => {
                            tracing::info!(
                                grants,
                                outcome = "owner_revoked_all",
                                "resource owner revoked every client's access"
                            );
                            respond(StatusCode::NO_CONTENT, Bytes::new(), false)
                        }
                        Err(err) => unavailable(&err),
                    }
                }
                (Route::Collection, _) => method_not_allowed("GET, DELETE"),
                (Route::Client(_), _) => method_not_allowed("DELETE"),
                (Route::NotFound, _) => OAuthError::invalid_request("no such resource")
                    .with_status(StatusCode::NOT_FOUND)
                    .to_response(),
            };
            Ok(response)
        })
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    OAuthError::method_not_allowed(allow).to_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let p = "/users/me/authorizations";
        assert!(matches!(route(p, p), Route::Collection));
        assert!(matches!(
            route("/users/me/authorizations/", p),
            Route::Collection
        ));
        assert!(matches!(route("/", p), Route::Collection));
        assert!(
            matches!(route("/users/me/authorizations/my%20client", p), Route::Client(id) if id == "my client")
        );
        assert!(matches!(route("/a+b", p), Route::Client(id) if id == "a+b"));
        assert!(matches!(
            route("/users/me/authorizationsX", p),
            Route::NotFound
        ));
        assert!(matches!(route("/a/b", p), Route::NotFound));
        assert!(matches!(route("/%zz", p), Route::NotFound));
    }

    async fn issue(store: &crate::store::MemoryStore, token: &str, client: &str, owner: &str) {
        use crate::store::{GrantId, TokenHash, TokenKind, TokenRecord};
        let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let mut record =
            TokenRecord::new(TokenKind::AccessToken, client, GrantId::random(), expires);
        record.owner = Some(owner.into());
        store.issue(TokenHash::of(token), record).await.unwrap();
    }

    async fn active(store: &crate::store::MemoryStore, token: &str) -> bool {
        store
            .inspect(&crate::store::TokenHash::of(token))
            .await
            .unwrap()
            .is_some()
    }

    fn request(method: Method, path: &str, owner: Option<&str>) -> Request<()> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        if let Some(owner) = owner {
            req.extensions_mut().insert(ResourceOwner::new(owner));
        }
        req
    }

    #[tokio::test]
    async fn delete_on_the_collection_revokes_every_client_of_the_owner_only() {
        use tower::ServiceExt as _;
        let store = crate::store::MemoryStore::new();
        issue(&store, "a1", "app", "alice").await;
        issue(&store, "a2", "other-app", "alice").await;
        issue(&store, "b1", "app", "bob").await;
        let service = OwnerAuthorizations::new(
            store.clone(),
            crate::client_auth::MemoryClientRegistry::default(),
        )
        .mount_path("/me/authorizations");

        let response = service
            .clone()
            .oneshot(request(Method::DELETE, "/me/authorizations", Some("alice")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(!active(&store, "a1").await);
        assert!(!active(&store, "a2").await);
        assert!(active(&store, "b1").await, "another owner's grant survives");

        // Idempotent.
        let response = service
            .clone()
            .oneshot(request(
                Method::DELETE,
                "/me/authorizations/",
                Some("alice"),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);

        // Without an owner: 401, and nothing changes.
        let response = service
            .clone()
            .oneshot(request(Method::DELETE, "/me/authorizations", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(active(&store, "b1").await);

        let response = service
            .oneshot(request(Method::POST, "/me/authorizations", Some("bob")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, DELETE");
        assert!(active(&store, "b1").await);
    }
}
