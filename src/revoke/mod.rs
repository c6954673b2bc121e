//! The RFC 7009 revocation service.
//!
//! [`RevokeService`] answers `POST /oauth2/revoke` ([RFC 7009 §2.1]) behind
//! [`FormLayer`](crate::form::FormLayer) and
//! [`ClientAuthLayer`](crate::client_auth::ClientAuthLayer): it takes `token` and
//! `token_type_hint` from the [`FormParams`](crate::form::FormParams), the
//! [`AuthenticatedClient`](crate::client_auth::AuthenticatedClient) from the
//! extensions, and asks the [`TokenStore`](crate::store::TokenStore) to revoke, atomically.
//!
//! | case | answer |
//! |---|---|
//! | token revoked (or unknown, expired, already revoked: [RFC 7009 §2.2]) | 200, empty body |
//! | `token` missing or empty | 400 `invalid_request` |
//! | token of another client, asked by a public client | 200, nothing revoked |
//! | token of another client, asked by a confidential client | 400 `invalid_grant`, nothing revoked |
//! | the store fails | 503 `temporarily_unavailable` + `Retry-After` |
//!
//! A refresh token revokes its whole grant; an access token revokes itself alone unless
//! [`RevocationPolicy::access_token_scope`] says the grant. `token_type_hint`
//! (`access_token`, `refresh_token` or their `urn:ietf:params:oauth:token-type:` forms)
//! orders the look-up only; an unknown hint is ignored. The [`RevocationOutcome`](crate::store::RevocationOutcome) goes in
//! the response's extensions, for request logs (from
//! [`RevocationEndpoint`](crate::RevocationEndpoint), with
//! [`annotate_responses`](crate::endpoint::EndpointBuilder::annotate_responses)). Every answer carries
//! `Cache-Control: no-store` and `Pragma: no-cache`.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_oauth_revoke::client_auth::{AuthenticatedClient, Client, ClientAuthMethod};
//! use tower_oauth_revoke::revoke::{revoke, RevocationPolicy};
//! use tower_oauth_revoke::store::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::new();
//! let expires = SystemTime::now() + Duration::from_secs(60);
//! store.issue(TokenHash::of("t"), TokenRecord::new(TokenKind::AccessToken, "app", GrantId::random(), expires)).await.unwrap();
//! let client = AuthenticatedClient::new(Client::confidential("app", "s"), ClientAuthMethod::ClientSecretBasic);
//!
//! let outcome = revoke(&store, &client, "t", None, &RevocationPolicy::default()).await.unwrap();
//! assert!(matches!(outcome, RevocationOutcome::Revoked { .. }));
//! # }
//! ```
//!
//! [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
//! [RFC 7009 §2.2]: https://www.rfc-editor.org/rfc/rfc7009#section-2.2

mod endpoint;
mod protocol;
mod service;
mod step;

pub(crate) use self::protocol::{execute, read_request};
pub use self::{
    protocol::{answer, parse_token_type_hint, revoke, ForeignTokenResponse, RevocationPolicy},
    service::{ResponseFuture, RevokeService},
    step::Revoker,
};
