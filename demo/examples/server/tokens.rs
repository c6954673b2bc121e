//! The token endpoint: the crate's pipeline with the demo's own issuing step. It exists
//! to exercise revocation end to end.

use std::time::{Duration, SystemTime};

use crate::{
    store::DemoStore,
    users::{too_many_attempts, UserAuthError, Users},
};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use tower_oauth_revoke::{
    client_auth::{AuthenticatedClient, ClientAuthMethod, ClientKind},
    dpop::DpopVerifier,
    endpoint::{EndpointStep, StepRequest},
    error::{set_no_store, ErrorCode, OAuthError},
    jwt::JwtAccessTokens,
    store::{Confirmation, GrantId, IssueError, TokenHash, TokenKind, TokenRecord, TokenStore},
};

pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Clone)]
pub(crate) struct Issuer {
    pub(crate) store: DemoStore,
    pub(crate) users: Users,
    pub(crate) access_token_ttl: Duration,
    /// With `--jwt`: access tokens are JWTs.
    pub(crate) jwts: Option<JwtAccessTokens>,
    /// DPoP proofs at the token endpoint (RFC 9449 §5), and the `htu` they must name.
    pub(crate) dpop: DpopVerifier,
    pub(crate) token_url: String,
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_no_store(response.headers_mut());
    response
}

/// The successful token response of RFC 6749 §5.1: `token_type` `DPoP` for a token bound to
/// a DPoP key (RFC 9449 §5), else `Bearer` (a certificate-bound token is used as a bearer
/// token over its TLS connection, RFC 8705 §3).
pub(crate) fn token_response(
    access: &str,
    refresh: &str,
    ttl: Duration,
    binding: Option<Confirmation>,
) -> http::Response<Bytes> {
    let token_type = match binding {
        Some(Confirmation::Jkt(_)) => "DPoP",
        _ => "Bearer",
    };
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access,
            "token_type": token_type,
            "expires_in": ttl.as_secs(),
            "refresh_token": refresh,
        }),
    )
}

impl Issuer {
    /// What a new access token is bound to: the key of the request's DPoP proof, else the
    /// client certificate a client authenticated with (RFC 8705 §3), else nothing. Refresh
    /// tokens of confidential clients stay unbound (RFC 9449 §5).
    async fn binding(&self, request: &StepRequest<'_>) -> Result<Option<Confirmation>, OAuthError> {
        let proof = self
            .dpop
            .check(
                request.headers(),
                &http::Method::POST,
                &self.token_url,
                None,
            )
            .await
            .map_err(|e| e.to_token_error())?;
        if let Some(thumbprint) = proof {
            return Ok(Some(Confirmation::Jkt(*thumbprint.as_bytes())));
        }
        let by_certificate = matches!(
            request.client().method(),
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
        );
        Ok(request
            .client_certificate()
            .filter(|_| by_certificate)
            .map(|c| Confirmation::X5tS256(c.thumbprint())))
    }

    async fn issue_pair(
        &self,
        client: &AuthenticatedClient,
        owner: Option<&str>,
        binding: Option<Confirmation>,
    ) -> Result<http::Response<Bytes>, OAuthError> {
        let grant = GrantId::random();
        let now = SystemTime::now();
        let mut refresh_record = TokenRecord::new(
            TokenKind::RefreshToken,
            client.id(),
            grant,
            now + REFRESH_TOKEN_TTL,
        )
        .with_issued_at(now);
        refresh_record.owner = owner.map(Into::into);
        let mut access_record = TokenRecord::new(
            TokenKind::AccessToken,
            client.id(),
            grant,
            now + self.access_token_ttl,
        )
        .with_issued_at(now);
        access_record.owner = owner.map(Into::into);
        access_record.confirmation = binding;
        let refresh = self.mint(refresh_record).await?;
        let access = self.mint_access(access_record).await?;
        Ok(token_response(
            &access,
            &refresh,
            self.access_token_ttl,
            binding,
        ))
    }

    /// A new access token: a JWT with `--jwt`, else opaque; registered with the store.
    async fn mint_access(&self, record: TokenRecord) -> Result<String, OAuthError> {
        match &self.jwts {
            Some(jwts) => jwts.issue(&self.store, record).await.map_err(issue_error),
            None => self.mint(record).await,
        }
    }

    /// A new opaque token, registered with the store.
    async fn mint(&self, record: TokenRecord) -> Result<String, OAuthError> {
        self.store.mint(record).await.map_err(issue_error)
    }
}

fn issue_error(e: IssueError) -> OAuthError {
    match e {
        IssueError::GrantRevoked => OAuthError::invalid_grant("the grant has been revoked"),
        IssueError::Store(_) => {
            OAuthError::temporarily_unavailable("the token store is unavailable", 1)
        }
    }
}

impl Issuer {
    async fn token(&self, request: &StepRequest<'_>) -> Result<http::Response<Bytes>, OAuthError> {
        let (params, client, addr) = (request.params(), request.client(), request.remote_addr());
        let binding = self.binding(request).await?;
        match params.get("grant_type") {
            Some("client_credentials") => {
                if client.kind() == ClientKind::Public {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::UnauthorizedClient,
                        "a public client cannot use client_credentials",
                    ));
                }
                self.issue_pair(client, None, binding).await
            }
            Some("password") => {
                let (Some(user), Some(password)) = (params.get("username"), params.get("password"))
                else {
                    return Err(OAuthError::invalid_request(
                        "`username` and `password` are required",
                    ));
                };
                match self.users.authenticate(user, password, addr) {
                    Ok(()) => {}
                    Err(UserAuthError::Limited(retry)) => return Err(too_many_attempts(retry)),
                    Err(UserAuthError::Invalid) => {
                        return Err(OAuthError::invalid_grant(
                            "the resource owner credentials are invalid",
                        ))
                    }
                }
                self.issue_pair(client, Some(user), binding).await
            }
            Some("refresh_token") => {
                let Some(refresh) = params.get("refresh_token").filter(|t| !t.is_empty()) else {
                    return Err(OAuthError::invalid_request("`refresh_token` is required"));
                };
                let record = self
                    .store
                    .inspect(&TokenHash::of(refresh))
                    .await
                    .map_err(|_| {
                        OAuthError::temporarily_unavailable("the token store is unavailable", 1)
                    })?;
                let record = match record {
                    Some(r)
                        if r.kind == TokenKind::RefreshToken && &*r.client_id == client.id() =>
                    {
                        r
                    }
                    _ => {
                        return Err(OAuthError::invalid_grant(
                            "the refresh token is invalid, expired or revoked",
                        ))
                    }
                };
                let now = SystemTime::now();
                let mut access_record = TokenRecord::new(
                    TokenKind::AccessToken,
                    client.id(),
                    record.grant,
                    now + self.access_token_ttl,
                )
                .with_issued_at(now);
                access_record.owner = record.owner.clone();
                access_record.confirmation = binding;
                let access = self.mint_access(access_record).await?;
                Ok(token_response(
                    &access,
                    refresh,
                    self.access_token_ttl,
                    binding,
                ))
            }
            Some(other) if !other.is_empty() => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                "the grant type is not supported",
            )),
            _ => Err(OAuthError::invalid_request("`grant_type` is required")),
        }
    }
}

impl EndpointStep for Issuer {
    async fn answer(&self, request: StepRequest<'_>) -> Result<http::Response<Bytes>, OAuthError> {
        self.token(&request).await
    }
}
