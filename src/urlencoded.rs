//! The strict `application/x-www-form-urlencoded` codec ([RFC 6749 Appendix B]): the
//! form step, client credentials and the owner API's paths all decode with it.
//!
//! Stricter than the usual decoders on purpose: every `%` must start a valid escape, names
//! and values must be UTF-8, no name may repeat, at most [`MAX_PARAMS`] parameters. A
//! request an ordinary parser would read one way and a proxy another is refused instead.
//!
//! ```
//! use tower_oauth_revoke::urlencoded::{form_decode, FormError, FormParams};
//!
//! let params = FormParams::parse(b"token=abc%2B1&token_type_hint=access_token").unwrap();
//! assert_eq!(params.get("token"), Some("abc+1"));
//! assert_eq!(FormParams::parse(b"a=1&a=2"), Err(FormError::Repeated("a".into())));
//! assert_eq!(form_decode(b"s3cr%3At+%26x").as_deref(), Some("s3cr:t &x"));
//! ```
//!
//! [RFC 6749 Appendix B]: https://www.rfc-editor.org/rfc/rfc6749#appendix-B

use std::{borrow::Cow, fmt};

/// The most parameters a form may carry; OAuth requests carry fewer than ten.
pub const MAX_PARAMS: usize = 64;

/// Where the parameters of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSource {
    /// The urlencoded body of a `POST`.
    Body,
    /// The query string of a JSONP `GET`.
    Query,
}

/// The parsed parameters of a request, in the request's extensions.
///
/// Names are unique (a repeated parameter is refused) and values are decoded UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct FormParams {
    decoded: String,
    // (name start, name end, value end) into `decoded`; the value starts at name end.
    spans: Vec<(u32, u32, u32)>,
    source: ParamSource,
}

impl fmt::Debug for FormParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be tokens or secrets: show the names only.
        f.debug_struct("FormParams")
            .field("names", &self.names().collect::<Vec<_>>())
            .field("source", &self.source)
            .finish()
    }
}

/// Why a form was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A parameter was given more than once.
    Repeated(String),
    /// A parameter's name or value has bad percent-encoding or is not UTF-8.
    Malformed(String),
    /// The form has more than [`MAX_PARAMS`] parameters.
    TooMany,
}

impl fmt::Display for FormError {
    /// The message names the parameter only as far as it is plain ASCII (letters, digits,
    /// `_`, `-`, `.`, `:`; anything else shows as `?`, at most 40 characters), so that an
    /// `error_description` never reflects request bytes and keeps to the characters of
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Repeated(name) => {
                write!(f, "the parameter `{}` is repeated", shown_name(name))
            }
            FormError::Malformed(name) => write!(
                f,
                "the parameter `{}` is not valid urlencoded UTF-8",
                shown_name(name)
            ),
            FormError::TooMany => write!(f, "the request has too many parameters"),
        }
    }
}

impl std::error::Error for FormError {}

impl FormParams {
    /// Parses `application/x-www-form-urlencoded` bytes strictly: `+` is a space, every `%`
    /// must start a valid escape, names and values must be UTF-8, and no name may repeat.
    ///
    /// ```
    /// use tower_oauth_revoke::form::{FormError, FormParams};
    ///
    /// let params = FormParams::parse(b"token=a%2Bb&token_type_hint=access_token").unwrap();
    /// assert_eq!(params.get("token"), Some("a+b"));
    /// assert_eq!(
    ///     FormParams::parse(b"token=a&token=b").unwrap_err(),
    ///     FormError::Repeated("token".into())
    /// );
    /// ```
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        Self::parse_from(input, ParamSource::Body)
    }

    /// Parses a query string with the same rules as [`parse`](Self::parse).
    pub fn parse_query(query: &str) -> Result<Self, FormError> {
        Self::parse_from(query.as_bytes(), ParamSource::Query)
    }

    fn parse_from(input: &[u8], source: ParamSource) -> Result<Self, FormError> {
        let mut decoded = String::with_capacity(input.len());
        let mut spans: Vec<(u32, u32, u32)> = Vec::with_capacity(4);
        // The usual form has no escape and is valid UTF-8 as a whole: check that once, then
        // copy its pieces (cut at ASCII `&` and `=`, so at character boundaries) unchecked.
        let plain = (!input.contains(&b'%') && !input.contains(&b'+'))
            .then(|| std::str::from_utf8(input).ok())
            .flatten();
        let decode = |raw: &[u8], out: &mut String| -> Result<(), Malformed> {
            match plain {
                _ if raw.is_empty() => Ok(()),
                Some(text) => {
                    let at = raw.as_ptr() as usize - input.as_ptr() as usize;
                    out.push_str(&text[at..at + raw.len()]);
                    Ok(())
                }
                None => decode_into(raw, out),
            }
        };
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            if spans.len() == MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let start = decoded.len();
            if decode(raw_name, &mut decoded).is_err() {
                return Err(FormError::Malformed(lossy_name(raw_name)));
            }
            let name_end = decoded.len();
            let name = &decoded[start..name_end];
            if spans
                .iter()
                .any(|&(s, e, _)| &decoded[s as usize..e as usize] == name)
            {
                return Err(FormError::Repeated(name.to_owned()));
            }
            if decode(raw_value, &mut decoded).is_err() {
                return Err(FormError::Malformed(decoded[start..name_end].to_owned()));
            }
            spans.push((start as u32, name_end as u32, decoded.len() as u32));
        }
        Ok(Self {
            decoded,
            spans,
            source,
        })
    }

    /// The value of a parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether a parameter is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(move |&(s, n, e)| {
            (
                &self.decoded[s as usize..n as usize],
                &self.decoded[n as usize..e as usize],
            )
        })
    }

    /// All parameter names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(n, _)| n)
    }

    /// The parameters as a typed value (feature `serde`), through `serde_urlencoded`: for
    /// a host's own step reading its own parameters. The strict decoding and the
    /// no-repetition rule have already run; this only maps names to fields and parses
    /// values (numbers, booleans, options).
    ///
    /// ```
    /// use serde::Deserialize;
    /// use tower_oauth_revoke::urlencoded::FormParams;
    ///
    /// #[derive(Debug, Deserialize)]
    /// struct TokenRequest {
    ///     grant_type: String,
    ///     scope: Option<String>,
    ///     expires_in: Option<u64>,
    /// }
    ///
    /// let params = FormParams::parse(b"grant_type=client_credentials&expires_in=60").unwrap();
    /// let request: TokenRequest = params.deserialize().unwrap();
    /// assert_eq!(request.grant_type, "client_credentials");
    /// assert_eq!((request.scope, request.expires_in), (None, Some(60)));
    ///
    /// let missing = FormParams::parse(b"scope=a").unwrap().deserialize::<TokenRequest>();
    /// let err = tower_oauth_revoke::error::OAuthError::from(missing.unwrap_err());
    /// assert_eq!(err.description(), "missing field `grant_type`");
    /// ```
    #[cfg(feature = "serde")]
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, DeserializeError> {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.iter())
            .finish();
        serde_urlencoded::from_str(&encoded).map_err(DeserializeError)
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Where the parameters came from.
    pub fn source(&self) -> ParamSource {
        self.source
    }
}

/// A decoded parameter name as error messages show it: see `FormError`'s `Display`.
fn shown_name(name: &str) -> String {
    name.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A name for error messages: printable ASCII only, bounded, never the raw bytes.
fn lossy_name(raw: &[u8]) -> String {
    raw.iter()
        .take(40)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

struct Malformed;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict urlencoded decoding, appended to `out`.
fn decode_into(raw: &[u8], out: &mut String) -> Result<(), Malformed> {
    decode_with(raw, out, true)
}

/// Strict percent-decoding, appended to `out`; `+` is a space when `plus_is_space`.
fn decode_with(raw: &[u8], out: &mut String, plus_is_space: bool) -> Result<(), Malformed> {
    if !raw
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        let s = std::str::from_utf8(raw).map_err(|_| Malformed)?;
        out.push_str(s);
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus_is_space => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex).ok_or(Malformed)?;
                let lo = raw.get(i + 2).copied().and_then(hex).ok_or(Malformed)?;
                bytes.push(hi << 4 | lo);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    let s = std::str::from_utf8(&bytes).map_err(|_| Malformed)?;
    out.push_str(s);
    Ok(())
}

/// Strict `application/x-www-form-urlencoded` decoding of one component (`+` is a space).
///
/// Returns `None` on bad percent-encoding or invalid UTF-8.
pub fn form_decode(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut out = String::new();
    decode_into(raw, &mut out).ok()?;
    Some(Cow::Owned(out))
}

/// Strict percent-decoding of a URL path segment ([RFC 3986 §2.1]): as [`form_decode`],
/// but `+` is a literal plus.
///
/// ```
/// use tower_oauth_revoke::urlencoded::decode_path_segment;
///
/// assert_eq!(decode_path_segment(b"my%20app+1").as_deref(), Some("my app+1"));
/// assert_eq!(decode_path_segment(b"bad%zz"), None);
/// ```
///
/// [RFC 3986 §2.1]: https://www.rfc-editor.org/rfc/rfc3986#section-2.1
pub fn decode_path_segment(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.contains(&b'%') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut out = String::new();
    decode_with(raw, &mut out, false).ok()?;
    Some(Cow::Owned(out))
}

/// Whether a query string has a `callback` parameter.
pub(crate) fn query_has(query: &str, name: &str) -> bool {
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        key == name
    })
}

/// The parameters do not fit the type asked of [`FormParams::deserialize`] (feature `serde`).
///
/// As an [`OAuthError`](crate::error::OAuthError) it is 400 `invalid_request`: "missing
/// field `name`" (a field of the host's type) or, for a value that does not parse, a fixed
/// message, so that no request bytes are reflected.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug)]
pub struct DeserializeError(serde_urlencoded::de::Error);

#[cfg(feature = "serde")]
impl fmt::Display for DeserializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "serde")]
impl std::error::Error for DeserializeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(feature = "serde")]
impl From<DeserializeError> for crate::error::OAuthError {
    fn from(err: DeserializeError) -> Self {
        let message = err.0.to_string();
        let shown = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
            .filter(|field| {
                field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
            .map(|field| format!("missing field `{field}`"));
        crate::error::OAuthError::invalid_request(
            shown.unwrap_or_else(|| "a parameter has an invalid value".to_owned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        let p = FormParams::parse(b"a=1&b=x+y&c=%E2%82%AC&&d").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y"));
        assert_eq!(p.get("c"), Some("€"));
        assert_eq!(p.get("d"), Some(""));
        assert_eq!(p.len(), 4);
        let repeated = |name: &str| Err(FormError::Repeated(name.into()));
        let malformed = Err(FormError::Malformed("token".into()));
        let refused: [(&[u8], Result<FormParams, FormError>); 6] = [
            (b"a=1&a=2", repeated("a")),
            (b"a%41=1&aA=2", repeated("aA")),
            (b"token=%zz", malformed.clone()),
            (b"token=%4", malformed.clone()),
            (b"token=%FF", malformed.clone()),
            (b"token=\xff", malformed),
        ];
        for (form, expected) in refused {
            assert_eq!(FormParams::parse(form), expected, "{form:?}");
        }
        let many = (0..65)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(FormParams::parse(many.as_bytes()), Err(FormError::TooMany));
    }

    #[test]
    fn error_messages_never_reflect_raw_names() {
        // A repeated non-ASCII name used to be echoed into the error_description, outside
        // the characters RFC 6749 §5.2 allows.
        let err = FormParams::parse("été=1&été=2".as_bytes()).unwrap_err();
        assert_eq!(err, FormError::Repeated("été".into()));
        assert_eq!(err.to_string(), "the parameter `?t?` is repeated");
        let err = FormParams::parse(b"a%22b%5C%3C=1&a%22b%5C%3C=2").unwrap_err();
        assert_eq!(err.to_string(), "the parameter `a?b??` is repeated");
        let long = format!("{0}=1&{0}=2", "n".repeat(500));
        let message = FormParams::parse(long.as_bytes()).unwrap_err().to_string();
        assert!(message.len() < 100, "{message}");
        let err = FormParams::parse("x\u{2028}=%FF".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the parameter `x?` is not valid urlencoded UTF-8"
        );
    }

    #[test]
    fn debug_hides_values() {
        let p = FormParams::parse(b"token=secret-value").unwrap();
        assert!(!format!("{p:?}").contains("secret-value"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn typed_parameters_never_reflect_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Request {
            expires_in: u64,
        }
        let params = FormParams::parse(b"expires_in=%22%3Cscript%3E").unwrap();
        let err = crate::error::OAuthError::from(params.deserialize::<Request>().unwrap_err());
        assert_eq!(err.description(), "a parameter has an invalid value");
    }
}
