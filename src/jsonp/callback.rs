//! Validation of JSONP callback names.

use std::fmt;

/// The longest callback name accepted, in bytes.
pub const MAX_CALLBACK_LEN: usize = 128;

/// Words that are reserved in every ECMAScript script, plus `await`, `yield` and `let`
/// (reserved in modules and strict code). Strict-mode-only reserved words such as `package`
/// stay allowed: a JSONP response runs as a classic script, and `package.myCallback` is a
/// common namespace.
const RESERVED: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "let",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// A validated JSONP callback: a dotted JavaScript identifier such as `package.myCallback`,
/// `cb_1` or `$jsonp`.
///
/// Each dot-separated segment is an ASCII identifier (`[A-Za-z_$][A-Za-z0-9_$]*`) and not a
/// reserved word; the whole name is at most [`MAX_CALLBACK_LEN`] bytes. Anything else
/// (brackets, parentheses, quotes, spaces, `\u` escapes, non-ASCII letters) is refused, so
/// a valid callback can never change the meaning of the script it names.
///
/// ```
/// use tower_oauth_revoke::jsonp::Callback;
///
/// assert_eq!(Callback::parse("package.myCallback").unwrap().as_str(), "package.myCallback");
/// assert!(Callback::parse("alert(1)//").is_err());
/// assert!(Callback::parse("window.delete").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Callback(Box<str>);

/// A callback name that is not a valid dotted JavaScript identifier. Its message never
/// repeats the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCallback(Reason);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Empty,
    TooLong,
    BadSegment,
    Reserved,
}

impl fmt::Display for InvalidCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Reason::Empty => "the `callback` parameter is empty",
            Reason::TooLong => "the `callback` parameter is longer than 128 characters",
            Reason::BadSegment => "the `callback` parameter must be a dotted JavaScript identifier",
            Reason::Reserved => "the `callback` parameter must not use a reserved word",
        })
    }
}

impl std::error::Error for InvalidCallback {}

impl Callback {
    /// Validates a callback name; see the [type docs](Self).
    pub fn parse(name: &str) -> Result<Self, InvalidCallback> {
        if name.is_empty() {
            return Err(InvalidCallback(Reason::Empty));
        }
        if name.len() > MAX_CALLBACK_LEN {
            return Err(InvalidCallback(Reason::TooLong));
        }
        for segment in name.split('.') {
            let mut bytes = segment.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$');
            if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
                return Err(InvalidCallback(Reason::BadSegment));
            }
            if RESERVED.contains(&segment) {
                return Err(InvalidCallback(Reason::Reserved));
            }
        }
        Ok(Self(name.into()))
    }

    /// The callback name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Callback({})", self.0)
    }
}

impl fmt::Display for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Callback {
    type Err = InvalidCallback;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for ok in [
            "package.myCallback",
            "cb_1",
            "$jsonp",
            "_",
            "a.b.c.d",
            "jQuery123456_789",
            &"a".repeat(MAX_CALLBACK_LEN),
        ] {
            assert_eq!(Callback::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "",
            "alert(1)//",
            "<script>",
            "a b",
            "a'b",
            "a\"b",
            "\\u0061lert",
            "a\\u002e",
            "caf\u{e9}",
            "a..b",
            ".a",
            "a.",
            "1abc",
            "a.1b",
            "a[0]",
            "a;b",
            "a,b",
            "a\nb",
            "a-b",
            "a\u{2028}",
            "/**/",
            &"a".repeat(MAX_CALLBACK_LEN + 1),
        ] {
            assert!(Callback::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_words_are_refused_as_any_segment() {
        for bad in [
            "delete",
            "new",
            "this.x",
            "a.function",
            "x.true.y",
            "typeof",
        ] {
            assert_eq!(
                Callback::parse(bad),
                Err(InvalidCallback(Reason::Reserved)),
                "{bad}"
            );
        }
        assert!(Callback::parse("package.callback").is_ok());
    }

    #[test]
    fn error_never_echoes_the_name() {
        let err = Callback::parse("evilName(").unwrap_err();
        assert!(!err.to_string().contains("evilName"));
    }
}
