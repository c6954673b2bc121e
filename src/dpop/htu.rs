//! Comparing a proof's `htu` with the URI of the request that carries it.

/// Whether the `htu` claim of a DPoP proof names the URI `expected`, the request's own
/// ([RFC 9449 §4.3], check 9): both `http` or `https` URIs, compared without their query
/// and fragment, after the syntax- and scheme-based normalizations of [RFC 3986 §6.2.2]
/// and [§6.2.3]: scheme and host without case, the default port (80, 443) or an empty one
/// as none, an empty path as `/`, percent-encodings in upper case and those of unreserved
/// characters decoded, and `.` and `..` segments removed. A URI with user information
/// matches nothing.
///
/// ```
/// use tower_oauth_revoke::dpop::htu_matches;
///
/// assert!(htu_matches("https://AS.example:443/token?x=1", "https://as.example/token"));
/// assert!(htu_matches("HTTPS://as.example/a/../%7Etoken", "https://as.example/~token"));
/// assert!(!htu_matches("https://as.example/token", "https://as.example:8443/token"));
/// assert!(!htu_matches("http://as.example/token", "https://as.example/token"));
/// ```
///
/// [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3
/// [RFC 3986 §6.2.2]: https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
/// [§6.2.3]: https://www.rfc-editor.org/rfc/rfc3986#section-6.2.3
pub fn htu_matches(claim: &str, expected: &str) -> bool {
    match (HttpUri::parse(claim), HttpUri::parse(expected)) {
        (Some(claim), Some(expected)) => claim == expected,
        _ => false,
    }
}

/// An `http` or `https` URI without query and fragment, normalized.
#[derive(Debug, PartialEq, Eq)]
struct HttpUri {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl HttpUri {
    fn parse(uri: &str) -> Option<Self> {
        let uri = uri.split(['?', '#']).next().unwrap_or_default();
        let (scheme, rest) = uri.split_once("://")?;
        let (https, default_port) = if scheme.eq_ignore_ascii_case("https") {
            (true, 443)
        } else if scheme.eq_ignore_ascii_case("http") {
            (false, 80)
        } else {
            return None;
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return None;
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty() {
            return None;
        }
        let port = match port {
            "" => default_port,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
            _ => return None,
        };
        let path = if path.is_empty() { "/" } else { path };
        Some(Self {
            https,
            host: normalize_percent(host)?.to_ascii_lowercase(),
            port,
            path: remove_dot_segments(&normalize_percent(path)?),
        })
    }
}

/// The host and the port (empty if none) of an authority; an IPv6 literal stays bracketed.
fn split_port(authority: &str) -> Option<(&str, &str)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        return match rest {
            "" => Some((host, "")),
            _ => Some((host, rest.strip_prefix(':')?)),
        };
    }
    Some(authority.split_once(':').unwrap_or((authority, "")))
}

/// Percent-encodings in upper case, those of unreserved characters (`A-Z a-z 0-9 - . _ ~`)
/// decoded ([RFC 3986 §6.2.2.2]); `None` for a `%` not followed by two hex digits.
///
/// [RFC 3986 §6.2.2.2]: https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2.2
fn normalize_percent(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest
            .get(at + 1..at + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The path without `.` and `..` segments ([RFC 3986 §5.2.4]); `path` starts with `/`.
///
/// [RFC 3986 §5.2.4]: https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            segment => out.push(segment),
        }
        // A path that ends in a dot segment names a directory: keep its final slash.
        if i == last && matches!(segment, "." | "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_fragment_are_ignored() {
        assert!(htu_matches(
            "https://as.example/token?a=1#f",
            "https://as.example/token"
        ));
        assert!(htu_matches(
            "https://as.example/token",
            "https://as.example/token?b=2"
        ));
        assert!(htu_matches("https://as.example#f", "https://as.example/"));
    }

    #[test]
    fn scheme_host_and_default_ports_are_normalized() {
        assert!(htu_matches("https://x:443/a", "https://X/a"));
        assert!(htu_matches("HTTPS://X.Example/a", "https://x.example/a"));
        assert!(htu_matches("http://x:80/a", "http://x/a"));
        assert!(htu_matches("http://x:/a", "http://x/a"));
        assert!(htu_matches("https://x", "https://x/"));
        assert!(htu_matches("https://[::1]:443/a", "https://[::1]/a"));
        assert!(htu_matches("https://[::1]:8443/a", "https://[::1]:8443/a"));
        assert!(!htu_matches("https://[::1]:8443/a", "https://[::1]/a"));
        assert!(
            !htu_matches("https://x:80/a", "https://x/a"),
            "80 is not https's"
        );
        assert!(!htu_matches("http://x/a", "https://x/a"));
        assert!(!htu_matches("https://x/a", "https://y/a"));
        assert!(!htu_matches("https://x:8443/a", "https://x/a"));
    }

    #[test]
    fn paths_are_compared_with_case_after_normalization() {
        assert!(!htu_matches("https://x/A", "https://x/a"));
        assert!(!htu_matches("https://x/a/", "https://x/a"));
        assert!(htu_matches("https://x/%7euser", "https://x/~user"));
        assert!(htu_matches("https://x/a%2fb", "https://x/a%2Fb"));
        assert!(
            !htu_matches("https://x/a%2Fb", "https://x/a/b"),
            "%2F is reserved"
        );
        assert!(htu_matches("https://x/a/./b/../c", "https://x/a/c"));
        assert!(htu_matches("https://x/a/%2E%2E/c", "https://x/c"));
        assert!(htu_matches("https://x/a/b/..", "https://x/a/"));
        assert!(htu_matches("https://x/../a", "https://x/a"));
    }

    #[test]
    fn what_is_not_an_http_uri_matches_nothing() {
        for bad in [
            "",
            "/token",
            "as.example/token",
            "ftp://x/a",
            "https:///a",
            "https://user@x/a",
            "https://x:99999/a",
            "https://x:+443/a",
            "https://x:44a/a",
            "https://x/%zz",
            "https://x/%4",
            "https://x/%+1",
            "https://[::1/a",
            "https://[::1]x/a",
        ] {
            assert!(!htu_matches(bad, bad), "{bad:?}");
            assert!(!htu_matches(bad, "https://x/a"), "{bad:?}");
        }
    }
}
