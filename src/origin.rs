//! Web origins ([RFC 6454]) as configured for CORS.
//!
//! ```
//! use tower_oauth_revoke::origin::Origin;
//!
//! let origin = Origin::parse("https://app.example.com").unwrap();
//! assert_eq!(origin.as_str(), "https://app.example.com");
//! assert!(Origin::parse("null").is_err());
//! assert!(Origin::parse("https://app.example.com/").is_err());
//! assert!(Origin::parse("*").is_err());
//! ```
//!
//! [RFC 6454]: https://www.rfc-editor.org/rfc/rfc6454

use std::fmt;

use http::HeaderValue;

/// A serialized origin: `scheme://host[:port]`, exactly as browsers send it in `Origin`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin(HeaderValue);

/// A configured origin that is not a valid origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin {
    origin: String,
    reason: &'static str,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid origin {:?}: {}", self.origin, self.reason)
    }
}

impl std::error::Error for InvalidOrigin {}

impl Origin {
    /// Parses a list of origins, failing on the first that is not valid ([`parse`](Self::parse)).
    pub fn parse_all<I, T>(origins: I) -> Result<Vec<Self>, InvalidOrigin>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        origins
            .into_iter()
            .map(|o| Self::parse(o.as_ref()))
            .collect()
    }

    /// Whether a request's `Origin` value is a well-formed origin (`null`, `*` and anything
    /// else are not).
    pub(crate) fn is_well_formed(value: &HeaderValue) -> bool {
        value.to_str().is_ok_and(|s| Self::parse(s).is_ok())
    }

    /// Parses an origin: `http` or `https`, a host, an optional port, nothing else. `null`,
    /// `*`, paths, a trailing `/`, user info and upper-case letters are refused, so that a
    /// configured origin compares byte for byte with what a browser sends.
    pub fn parse(origin: &str) -> Result<Self, InvalidOrigin> {
        let err = |reason| InvalidOrigin {
            origin: origin.chars().take(200).collect(),
            reason,
        };
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| err("an origin starts with http:// or https://"))?;
        if rest.is_empty() {
            return Err(err("an origin has a host"));
        }
        let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped
                .find(']')
                .ok_or_else(|| err("an IPv6 host ends with ]"))?;
            let host = &stripped[..end];
            if host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(err("an IPv6 host has hex digits and colons only"));
            }
            let after = &stripped[end + 1..];
            (
                host,
                after.strip_prefix(':').map(Some).unwrap_or_else(|| {
                    if after.is_empty() {
                        None
                    } else {
                        Some("x")
                    }
                }),
            )
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty()
            || !host.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == ':'
            })
        {
            return Err(err(
                "the host has lower-case letters, digits, '-' and '.' only (no path, no '/')",
            ));
        }
        if let Some(port) = port {
            if port.is_empty()
                || port.len() > 5
                || !port.bytes().all(|b| b.is_ascii_digit())
                || port.parse::<u32>().map_or(true, |p| p > 65535)
            {
                return Err(err("the port is a number up to 65535"));
            }
        }
        HeaderValue::from_str(origin)
            .map(Self)
            .map_err(|_| err("not a valid header value"))
    }

    /// The origin as a string.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The origin as a header value.
    pub fn as_header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Whether a request's `Origin` header is this origin.
    pub fn matches(&self, value: &HeaderValue) -> bool {
        self.0.as_bytes() == value.as_bytes()
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.as_str())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Origin {
    type Err = InvalidOrigin;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_origins() {
        for ok in [
            "http://127.0.0.1:8765",
            "https://app.example.com",
            "http://localhost",
            "http://[::1]:3000",
        ] {
            assert!(Origin::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn invalid_origins() {
        for bad in [
            "null",
            "*",
            "",
            "https://",
            "ftp://x.com",
            "https://x.com/",
            "https://x.com/path",
            "https://X.com",
            "https://user@x.com",
            "https://x.com:",
            "https://x.com:99999",
            "https://x.com:80a",
            "x.com",
            "https://x.com\n",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?}");
        }
    }
}
