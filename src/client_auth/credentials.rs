//! Client credentials as presented in a request ([RFC 6749 §2.3.1]).
//!
//! [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1

use std::{borrow::Cow, fmt};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::{header, HeaderMap, HeaderValue};

use crate::{
    registry::ClientAuthMethod,
    urlencoded::{form_decode, FormParams},
};

/// The credentials a request presents. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    method: ClientAuthMethod,
    // The id, then the secret or the assertion if any: one allocation for both.
    text: String,
    id_len: usize,
    has_secret: bool,
}

/// The `client_assertion_type` of a JWT assertion ([RFC 7523 §2.2]), for `private_key_jwt`.
///
/// [RFC 7523 §2.2]: https://www.rfc-editor.org/rfc/rfc7523#section-2.2
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest client assertion read, in bytes.
pub(crate) const MAX_ASSERTION: usize = 8 * 1024;

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("method", &self.method)
            .field("client_id", &self.client_id())
            .field("secret", &self.has_secret.then_some("<redacted>"))
            .field(
                "assertion",
                &(self.method == ClientAuthMethod::PrivateKeyJwt).then_some("<redacted>"),
            )
            .finish()
    }
}

/// Why the presented credentials are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// No credentials at all.
    Missing,
    /// The `Authorization` header is not valid Basic credentials (bad base64, no colon, bad
    /// encoding, empty id, another scheme).
    MalformedBasic,
    /// `client_secret` without `client_id` in the body.
    SecretWithoutId,
    /// Two methods at once: Basic plus `client_secret` in the body, or a body `client_id`
    /// that differs from the Basic one.
    MultipleMethods,
    /// Two `Authorization` headers: a proxy may have read the other one.
    RepeatedHeader,
    /// `client_assertion_type` is not `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
    /// or assertions are not accepted (built without the feature `jwt`).
    UnsupportedAssertionType,
    /// `client_assertion` or its type is missing, too long, or names no client.
    MalformedAssertion,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialsError::Missing => "client authentication is required",
            CredentialsError::MalformedBasic => {
                "the Authorization header is not valid Basic credentials"
            }
            CredentialsError::SecretWithoutId => "`client_secret` was sent without `client_id`",
            CredentialsError::MultipleMethods => {
                "the request uses more than one client authentication method"
            }
            CredentialsError::RepeatedHeader => "the authorization header must not be repeated",
            CredentialsError::UnsupportedAssertionType => {
                "the client_assertion_type is not supported"
            }
            CredentialsError::MalformedAssertion => {
                "client_assertion and client_assertion_type must come together, and the assertion must be a JWT naming its client"
            }
        })
    }
}

impl std::error::Error for CredentialsError {}

impl ClientCredentials {
    fn new(method: ClientAuthMethod, client_id: &str, secret: Option<&str>) -> Self {
        let mut text = String::with_capacity(client_id.len() + secret.map_or(0, str::len));
        text.push_str(client_id);
        text.push_str(secret.unwrap_or(""));
        Self {
            method,
            text,
            id_len: client_id.len(),
            has_secret: secret.is_some(),
        }
    }

    /// Credentials for `client_secret_basic`.
    pub fn basic(client_id: impl AsRef<str>, secret: impl AsRef<str>) -> Self {
        Self::new(
            ClientAuthMethod::ClientSecretBasic,
            client_id.as_ref(),
            Some(secret.as_ref()),
        )
    }

    /// Credentials for `client_secret_post`.
    pub fn post(client_id: impl AsRef<str>, secret: impl AsRef<str>) -> Self {
        Self::new(
            ClientAuthMethod::ClientSecretPost,
            client_id.as_ref(),
            Some(secret.as_ref()),
        )
    }

    /// Credentials for `private_key_jwt`: the client the assertion names, and the
    /// assertion.
    pub fn assertion(client_id: impl AsRef<str>, assertion: impl AsRef<str>) -> Self {
        let mut credentials = Self::new(
            ClientAuthMethod::PrivateKeyJwt,
            client_id.as_ref(),
            Some(assertion.as_ref()),
        );
        credentials.has_secret = false;
        credentials
    }

    /// The client assertion, for `private_key_jwt`.
    pub fn client_assertion(&self) -> Option<&str> {
        (self.method == ClientAuthMethod::PrivateKeyJwt).then(|| &self.text[self.id_len..])
    }

    /// A public client's `client_id` alone.
    pub fn public(client_id: impl AsRef<str>) -> Self {
        Self::new(ClientAuthMethod::None, client_id.as_ref(), None)
    }

    /// The method used.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.text[..self.id_len]
    }

    /// The secret, if the method carries one.
    pub fn secret(&self) -> Option<&str> {
        self.has_secret.then(|| &self.text[self.id_len..])
    }

    /// Reads the credentials of a request: the `Authorization` header and the parsed form.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tower_oauth_revoke::client_auth::{ClientAuthMethod, ClientCredentials};
    /// use tower_oauth_revoke::form::FormParams;
    ///
    /// let mut headers = HeaderMap::new();
    /// // "my client" : "s3cr:t+ &x", each form-urlencoded, then base64.
    /// headers.insert("authorization", "Basic bXkrY2xpZW50OnMzY3IlM0F0JTJCKyUyNng=".parse().unwrap());
    /// let creds = ClientCredentials::from_request(&headers, None).unwrap();
    /// assert_eq!(creds.method(), ClientAuthMethod::ClientSecretBasic);
    /// assert_eq!(creds.client_id(), "my client");
    /// assert_eq!(creds.secret(), Some("s3cr:t+ &x"));
    ///
    /// let form = FormParams::parse(b"client_id=spa&token=x").unwrap();
    /// let creds = ClientCredentials::from_request(&HeaderMap::new(), Some(&form)).unwrap();
    /// assert_eq!(creds.method(), ClientAuthMethod::None);
    /// ```
    pub fn from_request(
        headers: &HeaderMap,
        params: Option<&FormParams>,
    ) -> Result<Self, CredentialsError> {
        let body_id = params.and_then(|p| p.get("client_id"));
        let body_secret = params.and_then(|p| p.get("client_secret"));
        let assertion_type = params.and_then(|p| p.get("client_assertion_type"));
        let assertion = params.and_then(|p| p.get("client_assertion"));
        if assertion_type.is_some() || assertion.is_some() {
            if headers.contains_key(header::AUTHORIZATION) || body_secret.is_some() {
                return Err(CredentialsError::MultipleMethods);
            }
            return Self::from_assertion(body_id, assertion_type, assertion);
        }
        let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
        if let Some(value) = authorization.next() {
            if authorization.next().is_some() {
                return Err(CredentialsError::RepeatedHeader);
            }
            return decode_basic_with(value, |id, secret| {
                if body_secret.is_some() || body_id.is_some_and(|b| b != id) {
                    return Err(CredentialsError::MultipleMethods);
                }
                Ok(Self::basic(id, secret))
            })
            .ok_or(CredentialsError::MalformedBasic)?;
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) if !id.is_empty() => Ok(Self::post(id, secret)),
            (Some(id), None) if !id.is_empty() => Ok(Self::public(id)),
            (_, Some(_)) => Err(CredentialsError::SecretWithoutId),
            _ => Err(CredentialsError::Missing),
        }
    }
}

impl ClientCredentials {
    /// `private_key_jwt` from the form: the type must be JWT bearer, the assertion a JWT
    /// of at most 8 KiB; the client is the body's `client_id`, else the one the assertion
    /// names (`sub`; checked with the rest of the assertion later).
    fn from_assertion(
        body_id: Option<&str>,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        match assertion_type {
            Some(JWT_BEARER) => {}
            Some(_) => return Err(CredentialsError::UnsupportedAssertionType),
            None => return Err(CredentialsError::MalformedAssertion),
        }
        let assertion = match assertion {
            Some(a) if !a.is_empty() && a.len() <= MAX_ASSERTION => a,
            _ => return Err(CredentialsError::MalformedAssertion),
        };
        #[cfg(feature = "jwt")]
        {
            let id = match body_id {
                Some(id) if !id.is_empty() => id.to_owned(),
                Some(_) => return Err(CredentialsError::MalformedAssertion),
                None => super::assertion::claimed_client(assertion)
                    .filter(|id| !id.is_empty())
                    .ok_or(CredentialsError::MalformedAssertion)?,
            };
            Ok(Self::assertion(id, assertion))
        }
        #[cfg(not(feature = "jwt"))]
        {
            let _ = (body_id, assertion);
            Err(CredentialsError::UnsupportedAssertionType)
        }
    }
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))` strictly.
///
/// The scheme name is case-insensitive; the base64 must be canonical with padding and at
/// most 4096 characters long (longer credentials are refused unread); the decoded bytes
/// are split at the first `:`, then each half is form-decoded and must be UTF-8; the id
/// must not be empty.
pub fn decode_basic(value: &HeaderValue) -> Option<(String, String)> {
    decode_basic_with(value, |id, secret| (id.to_owned(), secret.to_owned()))
}

/// [`decode_basic`], handing the id and the secret to `f` without copying them.
fn decode_basic_with<T>(value: &HeaderValue, f: impl FnOnce(&str, &str) -> T) -> Option<T> {
    let value = value.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let encoded = rest.trim_ascii();
    if encoded.is_empty() || encoded.len() > 4096 {
        return None;
    }
    // Usual credentials decode on the stack; only unusually long ones need the heap.
    let mut stack = [0u8; 256];
    let heap;
    let decoded: &[u8] = if encoded.len() <= 340 {
        let n = STANDARD.decode_slice(encoded, &mut stack).ok()?;
        &stack[..n]
    } else {
        heap = STANDARD.decode(encoded).ok()?;
        &heap
    };
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (id, secret) = if !decoded.contains(&b'%') && !decoded.contains(&b'+') {
        // Nothing to unescape (the usual case): one UTF-8 check for both halves.
        let text = std::str::from_utf8(decoded).ok()?;
        (
            Cow::Borrowed(&text[..colon]),
            Cow::Borrowed(&text[colon + 1..]),
        )
    } else {
        (
            form_decode(&decoded[..colon])?,
            form_decode(&decoded[colon + 1..])?,
        )
    };
    if id.is_empty() {
        return None;
    }
    Some(f(&id, &secret))
}

/// Encodes Basic credentials as [RFC 6749 §2.3.1] asks: each of id and secret
/// form-urlencoded, joined by `:`, then base64.
///
/// [`decode_basic`] reads back whatever this writes, up to its limit of 4096 base64
/// characters (about 3000 bytes of form-encoded id and secret).
///
/// ```
/// use tower_oauth_revoke::client_auth::{decode_basic, encode_basic};
///
/// let value = encode_basic("my client", "s3cr:t+ &x");
/// assert_eq!(
///     decode_basic(&value).unwrap(),
///     ("my client".to_owned(), "s3cr:t+ &x".to_owned())
/// );
/// ```
///
/// [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
pub fn encode_basic(client_id: &str, secret: &str) -> HeaderValue {
    let joined = format!(
        "{}:{}",
        form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
    );
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(joined)))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn long_basic_credentials_decode() {
        // Past the stack buffer: decoded on the heap, same result.
        for len in [250, 255, 256, 300, 2000] {
            let secret = "s".repeat(len);
            let value = encode_basic("client", &secret);
            assert_eq!(decode_basic(&value), Some(("client".into(), secret)));
        }
    }

    #[test]
    fn basic_is_decoded_strictly() {
        let ok = |s: &str| decode_basic(&hv(s));
        assert_eq!(
            ok(&format!("Basic {}", b64("a:b"))),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(
            ok(&format!("bAsIc {}", b64("a:b"))),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(
            ok(&format!("Basic {}", b64("a:b:c"))),
            Some(("a".into(), "b:c".into())),
            "split at the first colon"
        );
        assert_eq!(
            ok(&format!("Basic {}", b64("a%3Ab:c+d"))),
            Some(("a:b".into(), "c d".into())),
            "each half is form-decoded"
        );
        assert_eq!(
            ok(&format!("Basic {}", b64("a:"))),
            Some(("a".into(), "".into()))
        );
        assert_eq!(ok(&format!("Basic {}", b64("ab"))), None, "no colon");
        assert_eq!(ok(&format!("Basic {}", b64(":b"))), None, "empty id");
        assert_eq!(ok(&format!("Bearer {}", b64("a:b"))), None, "other scheme");
        assert_eq!(ok("Basic YTpiYw"), None, "base64 without padding");
        assert_eq!(ok("Basic !!!!"), None, "not base64");
        assert_eq!(ok("Basic"), None, "no credentials");
        assert_eq!(ok(&format!("Basic {}", b64("a%zz:b"))), None, "bad escape");
        assert_eq!(
            decode_basic(&HeaderValue::from_bytes(b"Basic \xff").unwrap()),
            None
        );
        assert_eq!(
            decode_basic(&hv(&format!("Basic {}", STANDARD.encode(b"\xff:b")))),
            None,
            "invalid UTF-8"
        );
    }

    #[test]
    fn one_method_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, encode_basic("a", "b"));
        let form = FormParams::parse(b"client_secret=b").unwrap();
        assert_eq!(
            ClientCredentials::from_request(&headers, Some(&form)),
            Err(CredentialsError::MultipleMethods)
        );
        let form = FormParams::parse(b"client_id=other").unwrap();
        assert_eq!(
            ClientCredentials::from_request(&headers, Some(&form)),
            Err(CredentialsError::MultipleMethods)
        );
        let form = FormParams::parse(b"client_id=a").unwrap();
        assert_eq!(
            ClientCredentials::from_request(&headers, Some(&form)).unwrap(),
            ClientCredentials::basic("a", "b"),
            "the same client_id in the body is allowed"
        );
    }

    #[test]
    fn body_methods() {
        let h = HeaderMap::new();
        let f = |s: &str| FormParams::parse(s.as_bytes()).unwrap();
        assert_eq!(
            ClientCredentials::from_request(&h, Some(&f("client_id=a&client_secret=b"))),
            Ok(ClientCredentials::post("a", "b"))
        );
        assert_eq!(
            ClientCredentials::from_request(&h, Some(&f("client_id=a"))),
            Ok(ClientCredentials::public("a"))
        );
        assert_eq!(
            ClientCredentials::from_request(&h, Some(&f("client_secret=b"))),
            Err(CredentialsError::SecretWithoutId)
        );
        assert_eq!(
            ClientCredentials::from_request(&h, Some(&f("client_id="))),
            Err(CredentialsError::Missing)
        );
        assert_eq!(
            ClientCredentials::from_request(&h, None),
            Err(CredentialsError::Missing)
        );
    }

    #[test]
    fn assertions_from_the_form() {
        let f = |s: &str| FormParams::parse(s.as_bytes()).unwrap();
        let bearer = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, encode_basic("a", "b"));
        assert_eq!(
            ClientCredentials::from_request(
                &basic,
                Some(&f(&format!("{bearer}&client_assertion=x.y.z")))
            ),
            Err(CredentialsError::MultipleMethods)
        );
        let none = HeaderMap::new();
        let read = |form: &str| ClientCredentials::from_request(&none, Some(&f(form)));
        assert_eq!(
            read(&format!("{bearer}&client_assertion=x.y.z&client_secret=s")),
            Err(CredentialsError::MultipleMethods)
        );
        assert_eq!(
            read("client_assertion_type=urn%3Aother&client_assertion=x.y.z"),
            Err(CredentialsError::UnsupportedAssertionType)
        );
        assert_eq!(read(bearer), Err(CredentialsError::MalformedAssertion));
        assert_eq!(
            read("client_assertion=x.y.z"),
            Err(CredentialsError::MalformedAssertion)
        );
        let long = format!(
            "{bearer}&client_id=a&client_assertion={}",
            "x".repeat(MAX_ASSERTION + 1)
        );
        assert_eq!(read(&long), Err(CredentialsError::MalformedAssertion));
        let creds = read(&format!("{bearer}&client_id=app&client_assertion=x.y.z")).unwrap();
        assert_eq!(creds.method(), ClientAuthMethod::PrivateKeyJwt);
        assert_eq!(creds.client_id(), "app");
        assert_eq!(creds.client_assertion(), Some("x.y.z"));
        assert_eq!(creds.secret(), None);
        assert!(
            !format!("{creds:?}").contains("x.y.z"),
            "Debug hides the assertion"
        );
        #[cfg(feature = "jwt")]
        {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"named","iss":"named"}"#);
            let creds = read(&format!("{bearer}&client_assertion=e30.{payload}.sig")).unwrap();
            assert_eq!(creds.client_id(), "named", "the client the assertion names");
            assert_eq!(
                read(&format!("{bearer}&client_assertion=e30.e30.sig")),
                Err(CredentialsError::MalformedAssertion),
                "an assertion naming no client"
            );
        }
    }

    #[test]
    fn debug_hides_secret() {
        let c = ClientCredentials::basic("a", "very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
