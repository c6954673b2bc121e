//! OAuth 2.0 token revocation ([RFC 7009]) as composable [tower] layers.
//!
//! Mount a correct, safe revocation endpoint in any hyper-based stack (axum, plain hyper
//! 1.x) in one line:
//!
//! ```
//! use tower_oauth_revoke::{RevocationEndpoint, client_auth::{Client, MemoryClientRegistry}, store::MemoryStore};
//!
//! let registry = MemoryClientRegistry::new([Client::confidential("app", "a-long-random-secret")]);
//! let store = MemoryStore::new();
//! let revoke = RevocationEndpoint::builder(registry, store.clone())
//!     .cors_origins(["https://app.example.com"])
//!     .build()
//!     .expect("valid configuration");
//! let app: axum::Router = axum::Router::new().route_service("/oauth2/revoke", revoke);
//! # let _ = app;
//! ```
//!
//! A request flows once, outside in, and nothing is parsed twice:
//!
//! ```text
//! request
//!   -> CORS            tower_http::cors; answers preflights itself     (cors)
//!   -> form            reads the bounded urlencoded body once         (form)
//!   -> JSONP           validates `callback`, wraps the answer (opt-in) (jsonp)
//!   -> client auth     Basic, body credentials, or a public client_id (client_auth)
//!   -> origin check    the Origin is allowed for this client          (cors)
//!   -> revoke          token + token_type_hint, atomically in the store (revoke, store)
//! ```
//!
//! Each piece is a tower [`Layer`](tower_layer::Layer) or service useful on its own.
//! [`RevocationEndpoint`] runs the same steps in one future per request, without the
//! request extensions and per-layer clones that composing the layers costs, and answers
//! exactly as the composed layers do.
//!
//! # Layers
//!
//! The modules stand in layers, and a module imports only from layers below its own: never
//! from its own layer, never from one above. Files of one module use each other freely; the
//! crate root re-exports from every layer. The module graph so has no circles, and each
//! layer can be read knowing only the ones under it.
//!
//! ```text
//!  8  SOAP              soap
//!                          WSO2's OAuthAdminService for resource owners
//!  7  services          revoke  introspect  metadata  owner  admin  set  serve
//!                          revocation, introspection, server metadata, owner and admin
//!                          revocation, Security Event Tokens, the accept loop
//!  6  JWT               jwt
//!                          JWT access tokens that can be revoked
//!  5  pipeline, guards  endpoint  guard  trace
//!                          the fused pipeline and its builder; bearer guards; request logs
//!  4  client auth, DPoP client_auth  dpop
//!                          credentials, the authentication step and layer, the limiter;
//!                          DPoP proofs and their checks
//!  3  CORS              cors
//!                          the CORS policy and the origin checks
//!  2  parsing, storage  form  jsonp  store  registry
//!                          the bounded form step; JSONP callbacks and wrapping; TokenStore
//!                          and its stores; registered clients and their keys
//!  1  codecs, records   future  urlencoded  deadline  jose  events
//!                          the shared response future, the strict urlencoded codec, body
//!                          deadlines, signing keys and key sets, revocation events
//!  0  vocabulary        token  escape  body  error  origin  macros
//!                          token hashes, ids and kinds; log escaping; response bodies;
//!                          OAuth errors; web origins; the macros that write repeated impls
//!
//!     each module imports only from the layers below its own
//! ```
//!
//! `tests/layout.rs` keeps this table and fails on an import that points sideways or up,
//! and on a file of more than 500 code lines.
//!
//! [RFC 7009]: https://www.rfc-editor.org/rfc/rfc7009
//! [tower]: https://docs.rs/tower

#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod admin;
pub mod body;
pub use body::BoxError;
pub mod client_auth;
pub mod cors;
pub mod deadline;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod dpop;
pub mod endpoint;
pub mod error;
mod escape;
pub mod events;
pub mod form;
mod future;
pub mod guard;
pub mod introspect;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jose;
pub mod jsonp;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;
pub mod metadata;
pub mod origin;
pub mod owner;
mod registry;
pub mod revoke;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;
#[cfg(feature = "set")]
#[cfg_attr(docsrs, doc(cfg(feature = "set")))]
pub mod set;
#[cfg(feature = "soap")]
#[cfg_attr(docsrs, doc(cfg(feature = "soap")))]
pub mod soap;
pub mod store;
mod token;
pub mod trace;
pub mod urlencoded;

pub use endpoint::{BuildError, Endpoint};

/// The RFC 7009 revocation endpoint: the [`Endpoint`] pipeline with the
/// [`Revoker`](revoke::Revoker) step. Build it with `RevocationEndpoint::builder(clients,
/// store)`; see [`Endpoint`] and [`endpoint::EndpointBuilder`].
pub type RevocationEndpoint<R, S> = Endpoint<R, revoke::Revoker<S>>;

/// The builder of a [`RevocationEndpoint`].
pub type RevocationEndpointBuilder<R, S> = endpoint::EndpointBuilder<R, revoke::Revoker<S>>;
