//! DPoP proofs ([RFC 9449]): a client proves, request by request, that it holds the private
//! key an access token is bound to. This module names that key by its [`JwkThumbprint`]
//! and compares a proof's `htu` with the request's URI ([`htu_matches`]).
//!
//! [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449

mod htu;
mod thumbprint;

pub use htu::htu_matches;
pub use thumbprint::JwkThumbprint;
