//! Authorization server metadata ([RFC 8414]): the document resource servers and clients
//! read to find the endpoints, served at `/.well-known/oauth-authorization-server`.
//!
//! The document is built from the endpoints themselves: each endpoint's
//! `*_auth_methods_supported` is what that [`Endpoint`] accepts
//! ([`Endpoint::auth_methods_supported`]: `none` only where its step takes public clients),
//! never a list typed by hand. Every URL is absolute, under the issuer.
//!
//! ```
//! use tower_oauth_revoke::{
//!     client_auth::{Client, MemoryClientRegistry},
//!     endpoint::Endpoint,
//!     introspect::Introspector,
//!     metadata::AuthorizationServerMetadata,
//!     store::MemoryStore,
//!     RevocationEndpoint,
//! };
//!
//! let (clients, store) = (MemoryClientRegistry::new([Client::public("spa")]), MemoryStore::new());
//! let revoke = RevocationEndpoint::builder(clients.clone(), store.clone()).build().unwrap();
//! let introspect = Endpoint::with_step(clients, Introspector::new(store)).build().unwrap();
//! let metadata = AuthorizationServerMetadata::new("https://as.example.com")
//!     .unwrap()
//!     .revocation_endpoint("/oauth2/revoke", &revoke)
//!     .introspection_endpoint("/oauth2/introspect", &introspect);
//! let json: serde_json::Value = serde_json::from_slice(&metadata.to_json()).unwrap();
//! assert_eq!(json["revocation_endpoint"], "https://as.example.com/oauth2/revoke");
//! assert_eq!(
//!     json["revocation_endpoint_auth_methods_supported"],
//!     serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
//! );
//! assert_eq!(
//!     json["introspection_endpoint_auth_methods_supported"],
//!     serde_json::json!(["client_secret_basic", "client_secret_post"])
//! );
//! // Served by a tower service: `metadata.into_service()`.
//! ```
//!
//! [RFC 8414]: https://www.rfc-editor.org/rfc/rfc8414

use std::{
    convert::Infallible,
    fmt,
    future::{ready, Ready},
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue, Method, Request, Response};
use tower_service::Service;

use crate::{
    body::Body,
    endpoint::{Endpoint, EndpointStep},
    error::{write_json_string_contents, OAuthError, APPLICATION_JSON},
};

/// The algorithms client assertions may be signed with: those a key set pins its keys to.
const ASSERTION_ALGORITHMS: &[&str] = &[
    "ES256", "ES384", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
];
/// An issuer identifier that RFC 8414 §2 does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIssuer(String);

impl fmt::Display for InvalidIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid issuer {:?}: an http(s) URL with no query or fragment",
            self.0
        )
    }
}

impl std::error::Error for InvalidIssuer {}

/// The metadata document of an authorization server; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizationServerMetadata {
    issuer: String,
    /// Members after `issuer`, each already rendered as `"name":value`.
    members: Vec<String>,
}

fn json_string(value: &str) -> String {
    let mut buf = BytesMut::new();
    buf.put_u8(b'"');
    write_json_string_contents(&mut buf, value);
    buf.put_u8(b'"');
    String::from_utf8(buf.to_vec()).expect("JSON of a str is UTF-8")
}

fn json_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.into_iter().map(json_string).collect();
    format!("[{}]", items.join(","))
}

impl AuthorizationServerMetadata {
    /// The document of the authorization server identified by `issuer`, an `https` (or, for
    /// tests and loopback, `http`) URL with no query or fragment; a trailing `/` is dropped.
    pub fn new(issuer: impl Into<String>) -> Result<Self, InvalidIssuer> {
        let issuer = issuer.into();
        let valid = (issuer.starts_with("https://") || issuer.starts_with("http://"))
            && !issuer.contains(['?', '#'])
            && issuer
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty());
        if !valid {
            return Err(InvalidIssuer(issuer));
        }
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            members: Vec::new(),
        })
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `path` (starting with `/`) as an absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn member(mut self, name: &str, value: String) -> Self {
        self.members.push(format!("{}:{value}", json_string(name)));
        self
    }

    fn endpoint<R, T: EndpointStep>(
        self,
        name: &str,
        path: &str,
        endpoint: &Endpoint<R, T>,
    ) -> Self {
        let url = json_string(&self.url(path));
        let supported = endpoint.auth_methods_supported();
        let assertions = supported.contains(&"private_key_jwt");
        let methods = json_strings(supported);
        let this = self
            .member(&format!("{name}_endpoint"), url)
            .member(&format!("{name}_endpoint_auth_methods_supported"), methods);
        if assertions {
            // What a client's registered key may sign its assertion with (RFC 8414 §2).
            this.member(
                &format!("{name}_endpoint_auth_signing_alg_values_supported"),
                json_strings(ASSERTION_ALGORITHMS.iter().copied()),
            )
        } else {
            this
        }
    }

    /// `token_endpoint` at `path`, and the methods `endpoint` accepts.
    pub fn token_endpoint<R, T: EndpointStep>(self, path: &str, endpoint: &Endpoint<R, T>) -> Self {
        self.endpoint("token", path, endpoint)
    }

    /// `revocation_endpoint` ([RFC 7009]) at `path`, and the methods `endpoint` accepts.
    ///
    /// [RFC 7009]: https://www.rfc-editor.org/rfc/rfc7009
    pub fn revocation_endpoint<R, T: EndpointStep>(
        self,
        path: &str,
        endpoint: &Endpoint<R, T>,
    ) -> Self {
        self.endpoint("revocation", path, endpoint)
    }

    /// `introspection_endpoint` ([RFC 7662]) at `path`, and the methods `endpoint` accepts.
    ///
    /// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
    pub fn introspection_endpoint<R, T: EndpointStep>(
        self,
        path: &str,
        endpoint: &Endpoint<R, T>,
    ) -> Self {
        self.endpoint("introspection", path, endpoint)
    }

    /// `jwks_uri` at `path`.
    pub fn jwks_uri(self, path: &str) -> Self {
        let url = json_string(&self.url(path));
        self.member("jwks_uri", url)
    }

    /// `grant_types_supported`.
    pub fn grant_types_supported<'a>(self, grants: impl IntoIterator<Item = &'a str>) -> Self {
        self.member("grant_types_supported", json_strings(grants))
    }

    /// A boolean member, such as `tls_client_certificate_bound_access_tokens` ([RFC 8705
    /// §3.3]).
    ///
    /// [RFC 8705 §3.3]: https://www.rfc-editor.org/rfc/rfc8705#section-3.3
    pub fn flag(self, name: &str, value: bool) -> Self {
        self.member(name, value.to_string())
    }

    /// Any other member, a string array (for example `response_types_supported`).
    pub fn strings<'a>(self, name: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.member(name, json_strings(values))
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Bytes {
        let mut json = format!("{{\"issuer\":{}", json_string(&self.issuer));
        for member in &self.members {
            json.push(',');
            json.push_str(member);
        }
        json.push('}');
        Bytes::from(json)
    }

    /// A service answering `GET` (and `HEAD`) with the document; any other method 405.
    pub fn into_service(self) -> MetadataService {
        MetadataService {
            json: self.to_json(),
        }
    }
}

/// The tower service of [`AuthorizationServerMetadata::into_service`].
#[derive(Debug, Clone)]
pub struct MetadataService {
    json: Bytes,
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    always_ready!();

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return ready(Ok(OAuthError::method_not_allowed("GET").to_response()));
        }
        let mut response = Response::new(Body::new(self.json.clone()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, APPLICATION_JSON);
        // Public, and stable for a process's life: caches may keep it a while.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_checked() {
        for bad in [
            "",
            "as.example",
            "https://",
            "https://as.example?x",
            "ftp://as",
        ] {
            assert!(AuthorizationServerMetadata::new(bad).is_err(), "{bad}");
        }
        let m = AuthorizationServerMetadata::new("https://as.example/").unwrap();
        assert_eq!(m.issuer(), "https://as.example");
        assert_eq!(m.url("/x"), "https://as.example/x");
    }
}
