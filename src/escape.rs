//! Log values a request controls, made safe to write: [`Escaped`].

/// A value a request controls (a client id, a user name, a path segment), made safe to log:
/// at most 128 characters (then `...`), with control characters, line and paragraph
/// separators, quotes and backslashes escaped as Rust escapes them (`\n`, `\u{1b}`,
/// `\u{2028}`), so that no value can forge or break a log line.
///
/// ```
/// use tower_oauth_revoke::trace::Escaped;
///
/// assert_eq!(Escaped("app\nlevel=ERROR forged").to_string(), "app\\nlevel=ERROR forged");
/// assert_eq!(Escaped("\u{1b}[31m\u{2028}").to_string(), "\\u{1b}[31m\\u{2028}");
/// assert_eq!(Escaped(&"a".repeat(200)).to_string().len(), 128 + 3);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

/// How many characters of a value [`Escaped`] writes before it cuts the value short.
const MAX_ESCAPED_CHARS: usize = 128;

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Most values (paths, client ids) are short printable ASCII that `escape_debug`
        // leaves as they are: written in one piece.
        if self.0.len() <= MAX_ESCAPED_CHARS
            && self
                .0
                .bytes()
                .all(|b| matches!(b, b' '..=b'~') && !matches!(b, b'"' | b'\'' | b'\\'))
        {
            return f.write_str(self.0);
        }
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_ESCAPED_CHARS) {
            std::fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}
