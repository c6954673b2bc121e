//! The bearer guard: resource servers refuse revoked tokens ([RFC 6750]).
//!
//! [`BearerGuardLayer`] reads `Authorization: Bearer TOKEN` ([RFC 6750 §2.1]), asks the
//! [`TokenStore`] whether the token is an active access token, and passes the token's
//! [`TokenRecord`] (client, resource owner, grant, expiry; never the token) on in the
//! request's extensions. Revocation at the endpoint thus takes effect at once wherever the
//! guard shares the store.
//!
//! | request | answer |
//! |---|---|
//! | no `Authorization: Bearer` | 401 + `WWW-Authenticate: Bearer realm="..."` |
//! | revoked, expired, unknown, or a refresh token | 401 + `WWW-Authenticate: Bearer realm="...", error="invalid_token"` |
//! | malformed header (`Bearer` with no or an ill-formed token) | 400 `invalid_request` |
//! | the store fails | 503 `temporarily_unavailable` + `Retry-After`, never a pass |
//! | a token bound to a DPoP key (`cnf.jkt`) sent as `Bearer`, or without a proof of that key | 401 `invalid_token` (with [`dpop`](BearerGuardLayer::dpop): a `DPoP` challenge) |
//! | `Authorization: DPoP` with a proof that fails ([RFC 9449 §4.3]: method, URL, age, `ath`, replay, signature) | 401 + `WWW-Authenticate: DPoP …, error="invalid_dpop_proof"` |
//! | a token bound to a client certificate (`cnf.x5t#S256`) over a connection without it | 401 `invalid_token` |
//!
//! A bound token never passes as a bearer token, whether or not the guard checks DPoP.
//!
//! A check costs one SHA-256 of the token (on the stack) and one store look-up; the only
//! allocation is the boxed store future. With the [`MemoryStore`](crate::store::MemoryStore)
//! the look-up is two short mutex sections: 414 instructions whatever the store's size,
//! 113 ns at 1,000 tokens and 541 ns at 1,000,000 (memory latency; measured with
//! `cargo bench --bench micro -- store` and callgrind on the project's 2-core VM).
//!
//! ```
//! use tower_oauth_revoke::guard::BearerGuardLayer;
//! use tower_oauth_revoke::store::{MemoryStore, TokenRecord};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let api = ServiceBuilder::new()
//!     .layer(BearerGuardLayer::new(store).realm("api"))
//!     .service(service_fn(|req: Request<Full<Bytes>>| async move {
//!         let token = req.extensions().get::<TokenRecord>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(token.client_id.to_string()))))
//!     }));
//!
//! let request = Request::get("/api").body(Full::default()).unwrap();
//! let response = api.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! # }
//! ```
//!
//! [RFC 6750]: https://www.rfc-editor.org/rfc/rfc6750
//! [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3
//! [RFC 6750 §2.1]: https://www.rfc-editor.org/rfc/rfc6750#section-2.1

use std::{
    future::Future,
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::future::ResponseFuture;

mod binding;
pub(crate) use binding::certificate_thumbprint;
#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub mod remote;
use crate::{
    body::ResponseBody,
    error::{challenge, refuse_repeated, set_no_store, ErrorCode, OAuthError, DEFAULT_REALM},
    store::{TokenHash, TokenKind, TokenRecord, TokenStore},
};

/// The token could not be checked (the store or the authorization server failed); the
/// guard answers 503, never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCheckError;

impl std::fmt::Display for TokenCheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the token could not be checked")
    }
}

impl std::error::Error for TokenCheckError {}

/// How a guard decides whether a bearer token is an active access token: every
/// [`TokenStore`] (a look-up by the token's hash), or a
/// [`RemoteGuard`](remote::RemoteGuard) that asks the authorization server (feature
/// `remote`).
pub trait TokenCheck: Clone + Send + Sync + 'static {
    /// The token's record if it is an active access token, `None` if it is not, an error if
    /// that cannot be known now. The future owns what it needs.
    fn check(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send + 'static;
}

impl<S: TokenStore> TokenCheck for S {
    fn check(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, TokenCheckError>> + Send + 'static {
        // Hashed at once: the future carries the digest, never a copy of the token.
        let hash = TokenHash::of(token);
        let store = self.clone();
        async move { active_access_token(&store, &hash).await }
    }
}

/// The record of `key` in `store` if it is an active access token: what a [`TokenCheck`]
/// over a store answers. A store failure is logged and becomes a [`TokenCheckError`].
pub(crate) async fn active_access_token<S: TokenStore>(
    store: &S,
    key: &TokenHash,
) -> Result<Option<TokenRecord>, TokenCheckError> {
    match store.inspect(key).await {
        Ok(Some(record)) if record.kind == TokenKind::AccessToken => Ok(Some(record)),
        Ok(_) => Ok(None),
        Err(err) => {
            tracing::error!(error = %err, "token store unavailable at the bearer guard");
            Err(TokenCheckError)
        }
    }
}

/// A [`Layer`] that admits only active access tokens; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct BearerGuardLayer<S> {
    store: S,
    challenges: Arc<Challenges>,
}

#[derive(Debug, Clone)]
struct Challenges {
    realm: String,
    missing: HeaderValue,
    invalid_token: HeaderValue,
    invalid_request: HeaderValue,
    /// DPoP-bound tokens: how proofs are checked, if they are.
    dpop: Option<binding::DpopConfig>,
}

impl Challenges {
    fn new(realm: &str) -> Self {
        Self {
            realm: realm.to_owned(),
            missing: challenge("Bearer", realm, ""),
            invalid_token: challenge("Bearer", realm, ", error=\"invalid_token\""),
            invalid_request: challenge("Bearer", realm, ", error=\"invalid_request\""),
            dpop: None,
        }
    }
}

impl<S> BearerGuardLayer<S> {
    /// Checks tokens against `store`, realm [`DEFAULT_REALM`] (`oauth`).
    pub fn new(store: S) -> Self {
        Self {
            store,
            challenges: Arc::new(Challenges::new(DEFAULT_REALM)),
        }
    }

    /// Sets the realm of the `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: &str) -> Self {
        let dpop = self.challenges.dpop.clone().map(|mut d| {
            d.set_realm(realm);
            d
        });
        let mut challenges = Challenges::new(realm);
        challenges.dpop = dpop;
        self.challenges = Arc::new(challenges);
        self
    }

    /// Admits DPoP-bound tokens ([RFC 9449 §7]) sent as `Authorization: DPoP TOKEN` with a
    /// proof `verifier` accepts for this request: `htu` is `origin` (the scheme, host and
    /// port clients reach this server at) and the request's path, `ath` the token's hash,
    /// the key the token's `cnf.jkt`. Without it, a DPoP-bound token is refused whatever
    /// is sent (feature `jwt`).
    ///
    /// [RFC 9449 §7]: https://www.rfc-editor.org/rfc/rfc9449#section-7
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn dpop(mut self, verifier: crate::dpop::DpopVerifier, origin: &str) -> Self {
        let mut challenges = (*self.challenges).clone();
        challenges.dpop = Some(binding::DpopConfig::new(
            verifier,
            origin,
            &challenges.realm,
        ));
        self.challenges = Arc::new(challenges);
        self
    }
}

impl<S: Clone, I> Layer<I> for BearerGuardLayer<S> {
    type Service = BearerGuard<I, S>;

    fn layer(&self, inner: I) -> Self::Service {
        BearerGuard {
            inner,
            store: self.store.clone(),
            challenges: self.challenges.clone(),
        }
    }
}

/// The service of [`BearerGuardLayer`].
#[derive(Debug, Clone)]
pub struct BearerGuard<I, S> {
    inner: I,
    store: S,
    challenges: Arc<Challenges>,
}

impl<I, S> BearerGuard<I, S> {
    /// Wraps `inner`, checking tokens against `store`.
    pub fn new(inner: I, store: S) -> Self
    where
        S: Clone,
    {
        BearerGuardLayer::new(store).layer(inner)
    }

    /// The layer for `store`.
    pub fn layer(store: S) -> BearerGuardLayer<S> {
        BearerGuardLayer::new(store)
    }

    inner_service_accessors!(I);
}

/// What the `Authorization` header holds, for a resource server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bearer<'a> {
    Missing,
    Malformed,
    Token(&'a str),
    /// `Authorization: DPoP TOKEN` (RFC 9449 §7.1).
    Dpop(&'a str),
}

/// Reads `Authorization: Bearer b64token` ([RFC 6750 §2.1]) or `Authorization: DPoP
/// b64token` (RFC 9449 §7.1); the scheme is case-insensitive. Another scheme counts as no
/// token.
pub(crate) fn bearer(value: Option<&HeaderValue>) -> Bearer<'_> {
    let Some(value) = value else {
        return Bearer::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Bearer::Missing;
    }
    let token = rest.trim_matches(' ');
    let b64token =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(b64token) {
        return Bearer::Malformed;
    }
    if dpop {
        Bearer::Dpop(token)
    } else {
        Bearer::Token(token)
    }
}

fn unauthorized<B>(challenge: &HeaderValue) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.clone());
    set_no_store(response.headers_mut());
    response
}

impl<I, S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerGuard<I, S>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    S: TokenCheck,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = I::Error;
    type Future = ResponseFuture<I::Future, ResBody, I::Error>;

    forward_ready!();

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if let Err(err) = refuse_repeated(req.headers(), &header::AUTHORIZATION) {
            return ResponseFuture::ready(
                err.with_www_authenticate(self.challenges.invalid_request.clone())
                    .to_response(),
            );
        }
        let (check, proof) = match bearer(req.headers().get(header::AUTHORIZATION)) {
            Bearer::Missing => {
                let mut response = unauthorized(&self.challenges.missing);
                if let Some(dpop) = &self.challenges.dpop {
                    response
                        .headers_mut()
                        .append(header::WWW_AUTHENTICATE, dpop.missing());
                }
                return ResponseFuture::ready(response);
            }
            Bearer::Malformed => {
                return ResponseFuture::ready(
                    OAuthError::invalid_request(
                        "the Authorization header is not a valid bearer token",
                    )
                    .with_www_authenticate(self.challenges.invalid_request.clone())
                    .to_response(),
                );
            }
            Bearer::Token(token) => (self.store.check(token), None),
            Bearer::Dpop(token) => match &self.challenges.dpop {
                Some(dpop) => (self.store.check(token), Some(dpop.proof(&req, token))),
                // A server that does not do DPoP knows no such scheme.
                None => return ResponseFuture::ready(unauthorized(&self.challenges.missing)),
            },
        };
        let certificate = binding::certificate_thumbprint(&req);
        let challenges = self.challenges.clone();
        let mut inner = crate::future::take_ready(&mut self.inner);
        ResponseFuture::steps(async move {
            // The proof first: a refused proof costs no store look-up.
            let dpop = match proof {
                Some(proof) => match proof.await {
                    Ok(thumbprint) => Some(thumbprint),
                    Err(err) => return Ok(err.to_response()),
                },
                None => None,
            };
            match check.await {
                Ok(Some(record)) => {
                    let presented = binding::Presented { dpop, certificate };
                    if let Err(err) = binding::confirm(
                        &record,
                        &presented,
                        challenges.dpop.as_ref(),
                        &challenges.invalid_token,
                    ) {
                        return Ok(err.to_response());
                    }
                    req.extensions_mut().insert(record);
                    let response = inner.call(req).await?;
                    Ok(response.map(ResponseBody::new))
                }
                Ok(None) => {
                    let mut response = OAuthError::new(
                        StatusCode::UNAUTHORIZED,
                        ErrorCode::InvalidToken,
                        "the access token is revoked, expired or unknown",
                    )
                    .to_response();
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, challenges.invalid_token.clone());
                    Ok(response)
                }
                Err(TokenCheckError) => Ok(OAuthError::temporarily_unavailable(
                    "the token could not be checked; try again later",
                    1,
                )
                .to_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{GrantId, MemoryStore, RevocationRequest, TokenRecord};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::{
        convert::Infallible,
        time::{Duration, SystemTime},
    };
    use tower::{service_fn, ServiceExt};

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn parses_bearer() {
        assert_eq!(bearer(None), Bearer::Missing);
        assert_eq!(bearer(Some(&hv("Basic abc"))), Bearer::Missing);
        assert_eq!(
            bearer(Some(&hv("Bearer abc-1.2_3~4+5/6=="))),
            Bearer::Token("abc-1.2_3~4+5/6==")
        );
        assert_eq!(bearer(Some(&hv("bearer abc"))), Bearer::Token("abc"));
        assert_eq!(bearer(Some(&hv("Bearer"))), Bearer::Malformed);
        assert_eq!(bearer(Some(&hv("Bearer "))), Bearer::Malformed);
        assert_eq!(bearer(Some(&hv("Bearer a b"))), Bearer::Malformed);
        assert_eq!(bearer(Some(&hv("Bearer a\"b"))), Bearer::Malformed);
    }

    async fn call(
        store: &MemoryStore,
        auth: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let svc = BearerGuardLayer::new(store.clone())
            .realm("test")
            .layer(service_fn(|req: Request<Full<Bytes>>| async move {
                let r = req.extensions().get::<TokenRecord>().unwrap();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                    r.client_id.to_string(),
                ))))
            }));
        let mut req = Request::get("/");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = svc
            .oneshot(req.body(Full::default()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn two_authorization_headers_are_refused() {
        let store = MemoryStore::new();
        let later = SystemTime::now() + Duration::from_secs(60);
        let record = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), later);
        store.issue(TokenHash::of("acc"), record).await.unwrap();
        let svc = BearerGuardLayer::new(store.clone()).layer(service_fn(
            |_req: Request<Full<Bytes>>| async move {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"in"))))
            },
        ));
        let req = Request::get("/")
            .header("authorization", "Bearer acc")
            .header("authorization", "Bearer other")
            .body(Full::default())
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer realm=\"oauth\", error=\"invalid_request\""
        );
    }

    #[tokio::test]
    async fn guard_rules() {
        let store = MemoryStore::new();
        let grant = GrantId::random();
        let later = SystemTime::now() + Duration::from_secs(60);
        for (token, kind) in [
            ("acc", TokenKind::AccessToken),
            ("ref", TokenKind::RefreshToken),
        ] {
            let record = TokenRecord::new(kind, "app", grant, later);
            store.issue(TokenHash::of(token), record).await.unwrap();
        }

        let (status, _, body) = call(&store, Some("Bearer acc")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "app"));

        let (status, headers, _) = call(&store, None).await;
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"test\"");

        for token in ["Bearer ref", "Bearer unknown"] {
            let (status, headers, body) = call(&store, Some(token)).await;
            assert_eq!(status, 401, "{token}");
            assert_eq!(
                headers["www-authenticate"],
                "Bearer realm=\"test\", error=\"invalid_token\""
            );
            assert!(body.contains("invalid_token"));
        }

        let (status, _, body) = call(&store, Some("Bearer a b")).await;
        assert_eq!(status, 400);
        assert!(body.contains("invalid_request"));

        store
            .revoke(&TokenHash::of("acc"), RevocationRequest::new("app"))
            .await
            .unwrap();
        let (status, _, _) = call(&store, Some("Bearer acc")).await;
        assert_eq!(status, 401, "a revoked token is refused at once");
    }
}
