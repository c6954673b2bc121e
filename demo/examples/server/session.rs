//! Sign-in sessions for the resource owner's page: a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie, kept on the server by its SHA-256 hash, and a CSRF token bound
//! to it that every state-changing request must echo in `X-CSRF-Token`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /account/session`, JSON `{"username","password"}` | 200 `{"user","csrf_token","expires_in"}` + `Set-Cookie`; 401 `access_denied` for a wrong password, 429 + `Retry-After` when limited |
//! | `GET /account/session` with the cookie | 200 `{"user","csrf_token","expires_in"}`; 401 without a live session |
//! | `DELETE /account/session` with the cookie and `X-CSRF-Token` | 204, the session ended on the server and the cookie cleared |
//!
//! Sessions live in memory only: they are a demo of how a host hands a
//! [`ResourceOwner`](tower_oauth_revoke::owner::ResourceOwner) to the owner API, not a
//! session store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::{
    tokens::json_response,
    users::{too_many_attempts, UserAuthError, Users},
};
use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_oauth_revoke::{
    client_auth::RemoteAddr,
    error::{ErrorCode, OAuthError},
};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "account_session";
/// The header that carries the CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts from sign-in.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// At most this many sessions per user: a new one ends the oldest.
const SESSIONS_PER_USER: usize = 16;
/// At most this many sessions in all; past it, sign-in answers 503 until some expire.
const MAX_SESSIONS: usize = 10_000;
/// The largest sign-in body read.
const MAX_SIGN_IN_BODY: usize = 4096;

/// A live session: whose, its CSRF token, until when.
struct Session {
    user: Arc<str>,
    csrf: Arc<str>,
    created: Instant,
    expires: Instant,
}

/// What a live session tells the page.
pub(crate) struct SessionView {
    pub(crate) user: Arc<str>,
    csrf: Arc<str>,
    expires_in: Duration,
}

/// The live sessions, keyed by the SHA-256 of their id: the raw id lives only in the
/// browser's cookie.
#[derive(Clone)]
pub(crate) struct Sessions {
    live: Arc<Mutex<HashMap<[u8; 32], Session>>>,
    /// Served over HTTPS: the cookie is `Secure`.
    secure: bool,
}

/// 32 random bytes from the operating system's generator, as unpadded base64url.
fn random_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of the session cookie, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether the request carries the session cookie at all.
pub(crate) fn has_session_cookie(headers: &HeaderMap) -> bool {
    session_cookie(headers).is_some()
}

/// Refuses a state-changing request that the browser says comes from another site:
/// `Sec-Fetch-Site` other than `same-origin` or `none`, or an `Origin` that is not this
/// server's (by its `Host`, or the request's authority in HTTP/2). Clients that send
/// neither (curl) pass: they carry no browser's ambient cookie by accident.
fn from_this_site<B>(req: &Request<B>, secure: bool) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return false;
        }
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let scheme = if secure { "https" } else { "http" };
            let host = match headers.get(header::HOST) {
                Some(host) => host.to_str().ok(),
                None => req.uri().authority().map(|a| a.as_str()),
            };
            match (origin.to_str(), host) {
                (Ok(origin), Some(host)) => {
                    origin
                        .strip_prefix(scheme)
                        .and_then(|o| o.strip_prefix("://"))
                        == Some(host)
                }
                _ => false,
            }
        }
    }
}

fn access_denied(status: StatusCode, description: &'static str) -> OAuthError {
    OAuthError::new(status, ErrorCode::AccessDenied, description)
}

fn no_session() -> OAuthError {
    access_denied(
        StatusCode::UNAUTHORIZED,
        "no session, or it has ended; sign in again",
    )
}

fn forbidden_csrf() -> OAuthError {
    access_denied(
        StatusCode::FORBIDDEN,
        "a state-changing request needs this session's CSRF token in X-CSRF-Token",
    )
}

impl Sessions {
    /// Sessions whose cookie is `Secure` when `secure` (the server speaks HTTPS).
    pub(crate) fn new(secure: bool) -> Self {
        Self {
            live: Arc::default(),
            secure,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `user`: its raw id (for the cookie) and its view.
    fn create(&self, user: &str) -> Result<(String, SessionView), OAuthError> {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            user: Arc::from(user),
            csrf: Arc::from(random_token()),
            created: now,
            expires: now + SESSION_TTL,
        };
        let view = SessionView {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            expires_in: SESSION_TTL,
        };
        let mut live = self.lock();
        live.retain(|_, s| s.expires > now);
        let mine: Vec<([u8; 32], Instant)> = live
            .iter()
            .filter(|(_, s)| *s.user == *user)
            .map(|(k, s)| (*k, s.created))
            .collect();
        if mine.len() >= SESSIONS_PER_USER {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, created)| *created) {
                live.remove(oldest);
            }
        }
        if live.len() >= MAX_SESSIONS {
            return Err(OAuthError::temporarily_unavailable(
                "too many sessions; try again later",
                60,
            ));
        }
        live.insert(digest(&id), session);
        Ok((id, view))
    }

    /// The live session the request's cookie names, if any.
    pub(crate) fn find(&self, headers: &HeaderMap) -> Option<SessionView> {
        let key = digest(session_cookie(headers)?);
        let now = Instant::now();
        let mut live = self.lock();
        let session = live.get(&key)?;
        if session.expires <= now {
            live.remove(&key);
            return None;
        }
        Some(SessionView {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            expires_in: session.expires - now,
        })
    }

    fn end(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            self.lock().remove(&digest(id));
        }
    }

    /// The owner a request made with the session cookie acts for: 401 without a live
    /// session; for a method other than `GET`/`HEAD`, 403 unless it comes from this site
    /// and carries the session's CSRF token in `X-CSRF-Token` (compared in constant time).
    pub(crate) fn authorize<B>(&self, req: &Request<B>) -> Result<SessionView, OAuthError> {
        let session = self.find(req.headers()).ok_or_else(no_session)?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            self.check_csrf(&session, req)?;
        }
        Ok(session)
    }

    fn check_csrf<B>(&self, session: &SessionView, req: &Request<B>) -> Result<(), OAuthError> {
        if !from_this_site(req, self.secure) {
            return Err(forbidden_csrf());
        }
        let mut sent = req.headers().get_all(CSRF_HEADER).iter();
        match (sent.next(), sent.next()) {
            (Some(token), None) if bool::from(token.as_bytes().ct_eq(session.csrf.as_bytes())) => {
                Ok(())
            }
            _ => Err(forbidden_csrf()),
        }
    }

    fn cookie(&self, value: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            max_age.as_secs()
        );
        HeaderValue::from_str(&cookie).expect("a base64url id makes a valid header")
    }

    /// `/account/session`: sign in (`POST`), read the session (`GET`), sign out (`DELETE`).
    pub(crate) async fn handle(&self, users: &Users, req: Request<Body>) -> Response<Full<Bytes>> {
        let result = match *req.method() {
            Method::POST => self.sign_in(users, req).await,
            Method::GET | Method::HEAD => self
                .find(req.headers())
                .map(|session| session_answer(&session))
                .ok_or_else(no_session),
            Method::DELETE => self.sign_out(&req),
            _ => Err(OAuthError::method_not_allowed("GET, POST, DELETE")),
        };
        result.unwrap_or_else(|err| err.to_response())
    }

    async fn sign_in(
        &self,
        users: &Users,
        req: Request<Body>,
    ) -> Result<Response<Full<Bytes>>, OAuthError> {
        if !from_this_site(&req, self.secure) {
            return Err(access_denied(
                StatusCode::FORBIDDEN,
                "sign-in is accepted from this site only",
            ));
        }
        // JSON only: a form on another site cannot send it, nor can a page elsewhere
        // without a CORS preflight, which this path never allows.
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(OAuthError::invalid_request(
                "sign in with a JSON body {\"username\",\"password\"}",
            )
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let addr = req.extensions().get::<RemoteAddr>().copied();
        let body = axum::body::to_bytes(req.into_body(), MAX_SIGN_IN_BODY)
            .await
            .map_err(|_| {
                OAuthError::invalid_request("the body is too large or did not arrive")
                    .with_status(StatusCode::BAD_REQUEST)
            })?;
        #[derive(serde::Deserialize)]
        struct Credentials {
            username: String,
            password: String,
        }
        let credentials: Credentials = serde_json::from_slice(&body).map_err(|_| {
            OAuthError::invalid_request("the body must be JSON {\"username\",\"password\"}")
        })?;
        // Argon2 takes its time: off the async workers.
        let checker = users.clone();
        let name = credentials.username.clone();
        let checked = tokio::task::spawn_blocking(move || {
            checker.authenticate(&name, &credentials.password, addr)
        })
        .await
        .map_err(|_| OAuthError::server_error("the password check failed"))?;
        match checked {
            Ok(()) => {}
            Err(UserAuthError::Limited(retry)) => return Err(too_many_attempts(retry)),
            Err(UserAuthError::Invalid) => {
                return Err(access_denied(
                    StatusCode::UNAUTHORIZED,
                    "wrong username or password",
                ))
            }
        }
        let (id, session) = self.create(&credentials.username)?;
        let mut response = session_answer(&session);
        response
            .headers_mut()
            .insert(header::SET_COOKIE, self.cookie(&id, SESSION_TTL));
        Ok(response)
    }

    fn sign_out(&self, req: &Request<Body>) -> Result<Response<Full<Bytes>>, OAuthError> {
        self.authorize(req)?;
        self.end(req.headers());
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        tower_oauth_revoke::error::set_no_store(response.headers_mut());
        response
            .headers_mut()
            .insert(header::SET_COOKIE, self.cookie("", Duration::ZERO));
        Ok(response)
    }
}

fn session_answer(session: &SessionView) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "user": &*session.user,
            "csrf_token": &*session.csrf,
            "expires_in": session.expires_in.as_secs(),
        }),
    )
    .map(Full::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn request(method: Method, uri: &str, pairs: &[(&'static str, &str)]) -> Request<()> {
        let mut req = Request::builder().method(method).uri(uri).body(()).unwrap();
        *req.headers_mut() = headers(pairs);
        req
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; account_session=xyz ; b=2")]);
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "account_sessionx=1")])),
            None
        );
    }

    #[test]
    fn only_this_site() {
        let host = ("host", "127.0.0.1:8080");
        assert!(from_this_site(
            &request(Method::DELETE, "/", &[host]),
            false
        ));
        assert!(from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("origin", "http://127.0.0.1:8080")]
            ),
            false
        ));
        assert!(!from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("origin", "https://127.0.0.1:8080")]
            ),
            false
        ));
        assert!(!from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("origin", "http://evil.example")]
            ),
            false
        ));
        assert!(!from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("sec-fetch-site", "cross-site")]
            ),
            false
        ));
        assert!(!from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("sec-fetch-site", "same-site")]
            ),
            false
        ));
        assert!(from_this_site(
            &request(
                Method::DELETE,
                "/",
                &[host, ("sec-fetch-site", "same-origin")]
            ),
            false
        ));
    }

    #[test]
    fn http2_requests_are_judged_by_their_authority() {
        let req = request(
            Method::DELETE,
            "https://127.0.0.1:9443/users/me/authorizations",
            &[("origin", "https://127.0.0.1:9443")],
        );
        assert!(from_this_site(&req, true));
        let req = request(
            Method::DELETE,
            "https://127.0.0.1:9443/users/me/authorizations",
            &[("origin", "https://127.0.0.1:9444")],
        );
        assert!(!from_this_site(&req, true));
        let req = request(Method::DELETE, "/", &[("origin", "https://127.0.0.1:9443")]);
        assert!(!from_this_site(&req, true), "no host at all");
    }

    #[test]
    fn sessions_are_kept_by_hash_and_need_their_csrf_token() {
        let sessions = Sessions::new(false);
        let (id, view) = sessions.create("alice").unwrap();
        assert_eq!(id.len(), 43);
        assert!(!sessions.lock().contains_key(id.as_bytes()));
        assert!(sessions.lock().contains_key(&digest(&id)));
        let cookie = format!("{COOKIE}={id}");
        let with_cookie = [("cookie", cookie.as_str())];
        assert_eq!(
            &*sessions
                .authorize(&request(Method::GET, "/", &with_cookie))
                .unwrap()
                .user,
            "alice"
        );
        let err = sessions
            .authorize(&request(Method::DELETE, "/", &with_cookie))
            .err()
            .unwrap();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        let wrong = [("cookie", cookie.as_str()), (CSRF_HEADER, "nope")];
        assert!(sessions
            .authorize(&request(Method::DELETE, "/", &wrong))
            .is_err());
        let twice = [
            ("cookie", cookie.as_str()),
            (CSRF_HEADER, &view.csrf),
            (CSRF_HEADER, &view.csrf),
        ];
        assert!(sessions
            .authorize(&request(Method::DELETE, "/", &twice))
            .is_err());
        let right = [("cookie", cookie.as_str()), (CSRF_HEADER, &view.csrf)];
        assert!(sessions
            .authorize(&request(Method::DELETE, "/", &right))
            .is_ok());
        sessions.end(&headers(&right));
        let err = sessions
            .authorize(&request(Method::GET, "/", &with_cookie))
            .err()
            .unwrap();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_user_keeps_a_bounded_number_of_sessions() {
        let sessions = Sessions::new(true);
        let (first, _) = sessions.create("bob").unwrap();
        for _ in 0..SESSIONS_PER_USER {
            sessions.create("bob").unwrap();
        }
        assert_eq!(sessions.lock().len(), SESSIONS_PER_USER);
        let cookie = format!("{COOKIE}={first}");
        assert!(sessions.find(&headers(&[("cookie", &cookie)])).is_none());
        assert!(sessions
            .cookie("x", SESSION_TTL)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }
}
