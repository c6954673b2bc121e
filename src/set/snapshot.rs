//! The snapshot endpoint: every revocation still in force, as SETs, for a resource server
//! that starts after them.
//!
//! A receiver's replica ([`replica::Revocations`](super::replica::Revocations)) starts
//! empty, and the poll queue and the pushes only carry what happens after the issuer
//! started. `GET` on a [`SnapshotService`], with the HTTP Basic credentials of a client
//! allowed to read events (the same check as [`PollService`](super::poll::PollService)),
//! answers `200 application/json {"sets": ["<SET>", …]}`: one SET for each event of the
//! store's [`history`](crate::store::TokenStore::history), oldest first, each signed by
//! the same [`SetIssuer::encode`] as a pushed or polled one, so that the receiver verifies
//! each like any other SET ([`receive::fetch_snapshot`](super::receive::fetch_snapshot)).
//!
//! A receiver fetches the snapshot, applies it, and polls (or is pushed) from then on.
//! Events between the snapshot and the stream are not lost: the issuer's poll queue holds
//! every SET since the issuer started, and a SET of both the snapshot and the stream is
//! applied twice to no effect (the replica is idempotent).
//!
//! A store without a durable log (`MemoryStore`) has an empty history: the snapshot is
//! then empty, and every revocation of its lifetime is in the poll queue anyway.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tower_service::Service;

use super::{
    compact,
    poll::{json_response, poll_error, SetQueue},
    SetIssuer,
};
use crate::{
    client_auth::{AuthFailureLimiter, ClientRegistry, RemoteAddr},
    store::TokenStore,
};

/// The snapshot endpoint over a store's history; see the [module docs](self).
#[derive(Clone)]
pub struct SnapshotService<S, R> {
    store: S,
    queue: Option<SetQueue>,
    issuer: SetIssuer,
    registry: R,
    limiter: Option<AuthFailureLimiter>,
    realm: Arc<str>,
    /// Receivers may authenticate by an access token of theirs.
    tokens: Option<super::receiver_auth::BearerTokens>,
}

debug_fields!(SnapshotService < S, R > { issuer });

impl<S: TokenStore, R: ClientRegistry + Clone> SnapshotService<S, R> {
    /// Serves the history of `store`, signed by `issuer`, to the clients of `registry` that
    /// may introspect any token.
    pub fn new(store: S, issuer: SetIssuer, registry: R) -> Self {
        Self {
            store,
            queue: None,
            issuer,
            registry,
            limiter: None,
            realm: crate::error::DEFAULT_REALM.into(),
            tokens: None,
        }
    }

    setters! {
        /// Limits failed authentications, as the other endpoints do.
        pub fn limit_failures(limiter: AuthFailureLimiter) => limiter = Some(limiter);
        /// The realm of the `WWW-Authenticate` challenge.
        pub fn realm(realm: &str) => realm = realm.into();
        /// The poll queue the receivers read after the snapshot: for one that
        /// [follows](SetQueue::follow) a durable log, the receiver's cursor is opened
        /// ([`SetQueue::open`]) before the history is read, so that every revocation is in
        /// the snapshot, in the queue, or in both (applied twice, to no effect).
        pub fn queue(queue: SetQueue) => queue = Some(queue);
    }

    /// Lets a receiver authenticate by an access token of its own, as
    /// [`PollService::bearer_tokens`](super::poll::PollService::bearer_tokens) does.
    #[must_use]
    pub fn bearer_tokens(mut self, tokens: impl crate::guard::TokenCheck) -> Self {
        self.tokens = Some(super::receiver_auth::BearerTokens::new(tokens));
        self
    }

    async fn answer<B>(&self, req: Request<B>) -> Response<crate::body::Body> {
        if req.method() != Method::GET {
            let mut response = poll_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "read the snapshot with GET",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        let addr = RemoteAddr::from_extensions(req.extensions());
        let headers = req.headers();
        let client = super::receiver_auth::authenticate_receiver(
            &self.registry,
            self.limiter.as_ref(),
            headers,
            addr,
            &self.realm,
            self.tokens.as_ref(),
            crate::guard::certificate_thumbprint(&req),
        );
        let client = match client.await {
            Ok(client) => client,
            Err(err) => return err.to_response(),
        };
        if !client.client().may_introspect_any() {
            return poll_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this client may not read security events",
            );
        }
        if let Some(queue) = &self.queue {
            if let Err(e) = queue.open(client.client().id()).await {
                tracing::warn!(error = %e, "cannot open a receiver's poll cursor");
                return poll_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the event log cannot be read",
                );
            }
        }
        let history = match self.store.history().await {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the revocation history");
                return poll_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the revocation history cannot be read",
                );
            }
        };
        if wants_compact(req.headers()) {
            return self.compact(&history);
        }
        // All or nothing: a snapshot missing one revocation would let its token through.
        let mut sets = Vec::with_capacity(history.len());
        for event in &history {
            match self.issuer.encode(event) {
                Ok(set) => sets.push(Value::String(set.jws.to_string())),
                Err(e) => {
                    tracing::error!(error = %e, "cannot sign a security event token");
                    return poll_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal_error",
                        "cannot sign the snapshot",
                    );
                }
            }
        }
        json_response(StatusCode::OK, json!({ "sets": sets }))
    }
}

/// Whether the request asks for the [compact](super::compact) form.
fn wants_compact(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(compact::CONTENT_TYPE)
        })
}

impl<S: TokenStore, R> SnapshotService<S, R> {
    /// The [compact](super::compact) snapshot of `history`: one line each, one signature.
    fn compact(&self, history: &[crate::events::RevocationEvent]) -> Response<crate::body::Body> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let mut body = Vec::with_capacity(history.len() * 128);
        for event in history {
            compact::write_line(&mut body, event);
        }
        let digest = sha2::Sha256::digest(&body);
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = json!({
            "iss": self.issuer.issuer(),
            "iat": iat,
            "jti": crate::store::generate_token(),
            "count": history.len(),
            "sha256": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        });
        let signature = match self.issuer.key().sign(compact::TYP, &claims) {
            Ok(jws) => jws,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign a snapshot");
                return poll_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "cannot sign the snapshot",
                );
            }
        };
        let mut response = Response::new(crate::body::Body::new(bytes::Bytes::from(body)));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(compact::CONTENT_TYPE),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(&signature) {
            headers.insert(compact::SIGNATURE_HEADER, value);
        }
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
        response
    }
}

impl<S, R, B> Service<Request<B>> for SnapshotService<S, R>
where
    S: TokenStore,
    R: ClientRegistry + Clone + Send + Sync + 'static,
    B: Send + 'static,
{
    answer_service!(Request<B>);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tower_service::Service;

    use super::*;
    use crate::{
        events::{Events, Initiator, RevocationEvent, Revoked},
        jose::{KeySet, SigningKey},
        registry::{Client, MemoryClientRegistry},
        set::{ReceivedEvent, ReceivedKind, TYP},
        store::{
            GrantId, IssueError, MemoryStore, OwnerGrants, RevocationOutcome, RevocationRequest,
            StoreError, TokenHash, TokenRecord,
        },
    };

    /// A memory store with a fixed history.
    #[derive(Clone)]
    struct Logged(MemoryStore, Vec<RevocationEvent>);

    impl TokenStore for Logged {
        fn events(&self) -> &Events {
            self.0.events()
        }
        async fn issue(&self, t: TokenHash, r: TokenRecord) -> Result<(), IssueError> {
            self.0.issue(t, r).await
        }
        async fn inspect(&self, t: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
            self.0.inspect(t).await
        }
        async fn revoke(
            &self,
            t: &TokenHash,
            r: RevocationRequest<'_>,
        ) -> Result<RevocationOutcome, StoreError> {
            self.0.revoke(t, r).await
        }
        async fn revoke_grant(&self, g: GrantId) -> Result<(), StoreError> {
            self.0.revoke_grant(g).await
        }
        async fn revoke_client_for_owner(
            &self,
            o: &str,
            c: &str,
            by: Initiator,
        ) -> Result<usize, StoreError> {
            self.0.revoke_client_for_owner(o, c, by).await
        }
        async fn revoke_subject(&self, s: &str, by: Initiator) -> Result<usize, StoreError> {
            self.0.revoke_subject(s, by).await
        }
        async fn revoke_client(&self, c: &str, by: Initiator) -> Result<usize, StoreError> {
            self.0.revoke_client(c, by).await
        }
        async fn clients_of_owner(&self, o: &str) -> Result<Vec<OwnerGrants>, StoreError> {
            self.0.clients_of_owner(o).await
        }
        async fn history(&self) -> Result<Vec<RevocationEvent>, StoreError> {
            Ok(self.1.clone())
        }
    }

    fn event(revoked: Revoked, jti: Option<&str>) -> RevocationEvent {
        RevocationEvent {
            revoked,
            client_id: Some("app".into()),
            jti: jti.map(Into::into),
            subject: Some("alice".into()),
            initiator: Initiator::System,
            at: SystemTime::now(),
            expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
            relayed: true,
        }
    }

    async fn get(
        service: &mut SnapshotService<Logged, MemoryClientRegistry>,
        auth: Option<&str>,
    ) -> (StatusCode, Bytes) {
        let mut req = Request::get("/oauth2/events/snapshot");
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let response = service.call(req.body(()).unwrap()).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn the_snapshot_is_the_history_as_sets_for_event_readers_only() {
        let key = SigningKey::generate();
        let grant = GrantId::from_u64(0x42);
        let history = vec![
            event(Revoked::Grant { grant }, Some("jwt-1")),
            event(Revoked::Subject, None),
        ];
        let registry = MemoryClientRegistry::new([
            Client::confidential("rs", "rs-secret").with_introspection(),
            Client::confidential("app", "app-secret"),
        ]);
        let store = Logged(MemoryStore::new(), history);
        let issuer = SetIssuer::new("https://as.example", key.clone());
        let mut service = SnapshotService::new(store, issuer, registry);

        let (status, _) = get(&mut service, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
        let wrong = crate::client_auth::encode_basic("rs", "wrong");
        let (status, _) = get(&mut service, Some(wrong.to_str().unwrap())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong secret");
        let app = crate::client_auth::encode_basic("app", "app-secret");
        let (status, _) = get(&mut service, Some(app.to_str().unwrap())).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a client that may not read events"
        );

        let rs = crate::client_auth::encode_basic("rs", "rs-secret");
        let (status, body) = get(&mut service, Some(rs.to_str().unwrap())).await;
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let sets = body["sets"].as_array().unwrap();
        assert_eq!(sets.len(), 2, "one SET an event");
        let keys = KeySet::from_jwks(&key.jwks()).unwrap();
        let read: Vec<ReceivedEvent> = sets
            .iter()
            .map(|set| {
                let claims: Value = keys.verify(set.as_str().unwrap(), TYP).unwrap();
                ReceivedEvent::from_claims(&claims).unwrap()
            })
            .collect();
        assert_eq!(read[0].kind, ReceivedKind::Grant, "oldest first");
        assert_eq!(read[0].grant, Some(grant));
        assert_eq!(read[0].jti.as_deref(), Some("jwt-1"));
        assert_eq!(read[1].kind, ReceivedKind::Subject);
        assert_eq!(read[1].user.as_deref(), Some("alice"));

        // The compact form: one line an event, one signature over their digest.
        let req = Request::get("/oauth2/events/snapshot")
            .header(header::AUTHORIZATION, rs.clone())
            .header(header::ACCEPT, "application/x-ndjson")
            .body(())
            .unwrap();
        let response = service.call(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            compact::CONTENT_TYPE
        );
        let signature = response.headers()[compact::SIGNATURE_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let claims: Value = keys.verify(&signature, compact::TYP).unwrap();
        assert_eq!(claims["count"], 2);
        assert_eq!(claims["iss"], "https://as.example");
        use base64::Engine as _;
        use sha2::Digest as _;
        assert_eq!(
            claims["sha256"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&body))
        );
        assert!(
            keys.verify::<Value>(&signature, TYP).is_err(),
            "a snapshot's signature is not a SET"
        );
        let lines: Vec<ReceivedEvent> = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| compact::read_line(l, String::new()).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].grant, Some(grant));
        assert_eq!(lines[0].jti.as_deref(), Some("jwt-1"));
        assert_eq!(lines[1].kind, ReceivedKind::Subject);

        let post = Request::post("/oauth2/events/snapshot")
            .header(header::AUTHORIZATION, rs)
            .body(())
            .unwrap();
        let response = service.call(post).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
