//! Token introspection ([RFC 7662]): the pipeline with an introspection step.
//!
//! [`Introspector`] is an [`EndpointStep`]: behind the same CORS, form, client
//! authentication and origin check as revocation, it tells a resource server whether a
//! token is active, from the same [`TokenStore`].
//!
//! | case | answer |
//! |---|---|
//! | an active token the caller may see | 200 `{"active":true,"client_id","token_type","exp","iat","sub","grant_id","iss"?,"jti"?,"cnf"?}` |
//! | revoked, expired, unknown, or not the caller's to see | 200, exactly `{"active":false}` |
//! | `token` missing or empty | 400 `invalid_request` |
//! | a public client | 401 `invalid_client` ([RFC 7662 §2.1]: the endpoint is protected) |
//! | the store fails | 503 `temporarily_unavailable` + `Retry-After`, never `active:false` |
//!
//! Who sees what: a client the registry marks with
//! [`with_introspection`](crate::client_auth::Client::with_introspection) (a resource
//! server) sees any client's tokens; any other confidential client only its own.
//! `token_type` is `Bearer` for an access token, `DPoP` for one bound to a DPoP key
//! ([RFC 9449 §6.2]), and `refresh_token` for a refresh token;
//! `sub` is the resource owner, or the client for `client_credentials`; `grant_id` (an
//! extension, [RFC 7662 §2.2]) names the token's grant, so that a resource server can tie
//! later revocation events to the answer. A token bound to a key
//! ([`TokenRecord::confirmation`]) has `cnf` ([RFC 7800 §3.1]): `{"jkt":"<thumbprint>"}`
//! for a DPoP key ([RFC 9449 §6.2]), `{"x5t#S256":"<thumbprint>"}` for a client certificate
//! ([RFC 8705 §3.2]), the SHA-256 thumbprint in unpadded base64url; a JWT's binding is its
//! claims' ([`jwt`](crate::jwt), feature `jwt`). Every answer carries `Cache-Control:
//! no-store`.
//!
//! ```
//! use tower_oauth_revoke::{
//!     client_auth::{Client, MemoryClientRegistry},
//!     endpoint::Endpoint,
//!     introspect::Introspector,
//!     store::MemoryStore,
//! };
//!
//! let clients = MemoryClientRegistry::new([
//!     Client::confidential("resource-server", "a-long-random-secret").with_introspection(),
//! ]);
//! let introspect = Endpoint::with_step(clients, Introspector::new(MemoryStore::new()))
//!     .build()
//!     .unwrap();
//! assert_eq!(introspect.auth_methods_supported(), ["client_secret_basic", "client_secret_post"]);
//! let app: axum::Router = axum::Router::new().route_service("/oauth2/introspect", introspect);
//! # let _ = app;
//! ```
//!
//! [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
//! [RFC 7662 §2.1]: https://www.rfc-editor.org/rfc/rfc7662#section-2.1
//! [RFC 7662 §2.2]: https://www.rfc-editor.org/rfc/rfc7662#section-2.2
//! [RFC 7800 §3.1]: https://www.rfc-editor.org/rfc/rfc7800#section-3.1
//! [RFC 8705 §3.2]: https://www.rfc-editor.org/rfc/rfc8705#section-3.2
//! [RFC 9449 §6.2]: https://www.rfc-editor.org/rfc/rfc9449#section-6.2

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, Response};

use crate::{
    endpoint::{EndpointStep, StepRequest},
    error::{set_no_store, write_json_string_contents, OAuthError, APPLICATION_JSON},
    escape::Escaped,
    store::{Confirmation, TokenHash, TokenKind, TokenRecord, TokenStore},
};

/// The introspection step; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Introspector<S> {
    store: S,
    issuer: Option<Arc<str>>,
    #[cfg(feature = "jwt")]
    jwt: Option<crate::jwt::JwtAccessTokens>,
}

impl<S> Introspector<S> {
    /// Introspects tokens of `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            issuer: None,
            #[cfg(feature = "jwt")]
            jwt: None,
        }
    }

    setters! {
        /// Introspects JWT access tokens of `jwts` too (feature `jwt`): a token shaped as a JWT
        /// is checked locally, then looked up by `(iss, jti)`; the answer adds its `jti`. One
        /// that fails the checks is `{"active":false}`.
        #[cfg(feature = "jwt")]
        #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
        #[must_use]
        pub fn jwt(jwts: crate::jwt::JwtAccessTokens) => jwt = Some(jwts);

        /// The issuer identifier put in active answers as `iss`.
        #[must_use]
        pub fn issuer(issuer: impl Into<Arc<str>>) => issuer = Some(issuer.into());
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

const INACTIVE: &[u8] = b"{\"active\":false}";

impl<S: TokenStore> EndpointStep for Introspector<S> {
    fn accepts_public_clients(&self) -> bool {
        false
    }

    async fn answer(&self, request: StepRequest<'_>) -> Result<Response<Bytes>, OAuthError> {
        let client = request.client();
        let token = match request.params().get("token") {
            Some(token) if !token.is_empty() => token,
            _ => {
                return Err(OAuthError::invalid_request(
                    "the `token` parameter is required",
                ))
            }
        };
        // A JWT's `jti` and the binding its claims give, which wins over the store's.
        #[cfg(feature = "jwt")]
        let (key, jwt) = match &self.jwt {
            Some(jwts) if crate::jwt::looks_like_jwt(token) => match jwts.verify(token) {
                Some(claims) => (Some(claims.store_key()), Some((claims.jti, claims.cnf))),
                None => (None, None),
            },
            _ => (Some(TokenHash::of(token)), None),
        };
        #[cfg(not(feature = "jwt"))]
        let (key, jwt): (Option<TokenHash>, Option<(String, ())>) =
            (Some(TokenHash::of(token)), None);
        let record = match key {
            Some(key) => self.store.inspect(&key).await,
            None => Ok(None),
        };
        let record = record.map_err(|err| {
            tracing::error!(
                client_id = %Escaped(client.id()),
                error = %err,
                "token store unavailable at introspection"
            );
            OAuthError::temporarily_unavailable(
                "the token store is unavailable; try again later",
                1,
            )
        })?;
        #[cfg(feature = "jwt")]
        let (record, jti) = match jwt {
            Some((jti, claimed)) => (
                record.and_then(|r| crate::jwt::bound_as_claimed(r, claimed)),
                Some(jti),
            ),
            None => (record, None),
        };
        #[cfg(not(feature = "jwt"))]
        let jti = jwt.map(|(jti, ())| jti);
        let visible =
            record.filter(|r| client.client().may_introspect_any() || &*r.client_id == client.id());
        if request.quiet() {
            tracing::debug!(
                client_id = %Escaped(client.id()),
                active = visible.is_some(),
                "token introspection"
            );
        } else {
            tracing::info!(
                client_id = %Escaped(client.id()),
                active = visible.is_some(),
                "token introspection"
            );
        }
        let body = match visible {
            Some(record) => active(&record, self.issuer.as_deref(), jti.as_deref()),
            None => Bytes::from_static(INACTIVE),
        };
        let mut response = Response::new(body);
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, APPLICATION_JSON);
        set_no_store(response.headers_mut());
        Ok(response)
    }
}

fn secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The JSON of an active token ([RFC 7662 §2.2]).
///
/// [RFC 7662 §2.2]: https://www.rfc-editor.org/rfc/rfc7662#section-2.2
fn active(record: &TokenRecord, issuer: Option<&str>, jti: Option<&str>) -> Bytes {
    let mut buf = BytesMut::with_capacity(192);
    let string = |buf: &mut BytesMut, name: &str, value: &str| {
        buf.put_slice(b",\"");
        buf.put_slice(name.as_bytes());
        buf.put_slice(b"\":\"");
        write_json_string_contents(buf, value);
        buf.put_u8(b'"');
    };
    buf.put_slice(b"{\"active\":true");
    string(&mut buf, "client_id", &record.client_id);
    let token_type = match (record.kind, record.confirmation) {
        (TokenKind::AccessToken, Some(Confirmation::Jkt(_))) => "DPoP",
        (TokenKind::AccessToken, _) => "Bearer",
        (TokenKind::RefreshToken, _) => "refresh_token",
    };
    string(&mut buf, "token_type", token_type);
    buf.put_slice(format!(",\"exp\":{}", secs(record.expires_at)).as_bytes());
    // A store that does not know the issue time gives the epoch: no `iat` then.
    if record.issued_at > UNIX_EPOCH {
        buf.put_slice(format!(",\"iat\":{}", secs(record.issued_at)).as_bytes());
    }
    string(
        &mut buf,
        "sub",
        record.owner.as_deref().unwrap_or(&record.client_id),
    );
    string(&mut buf, "grant_id", &record.grant.to_string());
    if let Some(issuer) = issuer {
        string(&mut buf, "iss", issuer);
    }
    if let Some(jti) = jti {
        string(&mut buf, "jti", jti);
    }
    if let Some(confirmation) = &record.confirmation {
        // A member name and base64url: nothing to escape.
        buf.put_slice(b",\"cnf\":{\"");
        buf.put_slice(confirmation.member().as_bytes());
        buf.put_slice(b"\":\"");
        buf.put_slice(confirmation.to_base64url().as_bytes());
        buf.put_slice(b"\"}");
    }
    buf.put_u8(b'}');
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GrantId;
    use std::time::Duration;

    #[test]
    fn active_answers_are_json() {
        let record = TokenRecord::new(
            TokenKind::RefreshToken,
            "app \"1\"",
            GrantId::from_u64(255),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .with_owner("alice")
        .with_issued_at(UNIX_EPOCH + Duration::from_secs(1_699_999_000));
        let json: serde_json::Value =
            serde_json::from_slice(&active(&record, Some("https://as.example"), None)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "active": true,
                "client_id": "app \"1\"",
                "token_type": "refresh_token",
                "exp": 1_700_000_000u64,
                "iat": 1_699_999_000u64,
                "sub": "alice",
                "grant_id": "00000000000000ff",
                "iss": "https://as.example",
            })
        );
    }

    #[test]
    fn a_bound_token_has_its_cnf_and_a_dpop_key_its_token_type() {
        let exp = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let access = TokenRecord::new(TokenKind::AccessToken, "app", GrantId::from_u64(1), exp);
        let refresh = TokenRecord {
            kind: TokenKind::RefreshToken,
            ..access.clone()
        };
        let jkt = Confirmation::Jkt([0xfb; 32]);
        let x5t = Confirmation::X5tS256([0; 32]);
        for (record, token_type, cnf) in [
            (access.clone(), "Bearer", None),
            (
                access.clone().with_confirmation(jkt),
                "DPoP",
                Some(("jkt", jkt)),
            ),
            (
                access.with_confirmation(x5t),
                "Bearer",
                Some(("x5t#S256", x5t)),
            ),
            (
                refresh.with_confirmation(jkt),
                "refresh_token",
                Some(("jkt", jkt)),
            ),
        ] {
            let json: serde_json::Value =
                serde_json::from_slice(&active(&record, None, None)).unwrap();
            assert_eq!(json["token_type"], token_type, "{record:?}");
            match cnf {
                Some((member, c)) => {
                    assert_eq!(json["cnf"], serde_json::json!({ member: c.to_base64url() }))
                }
                None => assert!(json.get("cnf").is_none()),
            }
        }
    }
}
