//! The vocabulary every layer shares: a token's digest ([`TokenHash`]), its kind
//! ([`TokenKind`]), its grant ([`GrantId`]) and the key it is bound to
//! ([`Confirmation`]).
//!
//! These sit below the store and the events that both name them, so that neither has to
//! reach into the other for its words. [`store`](crate::store) re-exports them where users
//! have always found them.

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a token: how stores key tokens, never by the token itself.
///
/// Its `Debug` shows only a short prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A hash from its 32 bytes (e.g. read back from a store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash from its 64 hex digits ([`to_hex`](Self::to_hex)); `None` for anything else.
    ///
    /// ```
    /// use tower_oauth_revoke::store::TokenHash;
    ///
    /// let hash = TokenHash::of("a token");
    /// assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
    /// assert_eq!(TokenHash::from_hex("not hex"), None);
    /// ```
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }

    /// A value in `0..n` taken from the digest, for sharding.
    pub(crate) fn shard(&self, n: usize) -> usize {
        self.0[31] as usize % n
    }
}

impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_digest(&self.0, state);
    }
}

/// Hashes (for a hash table) bytes that are already a uniform digest: their first eight
/// bytes are a fine hash. Every digest-keyed table of the crate uses it.
pub(crate) fn hash_digest<H: Hasher>(digest: &[u8], state: &mut H) {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    state.write_u64(u64::from_le_bytes(first));
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex_string(&self.0[..4]))
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The kind of a token ([RFC 7009 §2.1] `token_type_hint` values).
///
/// [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

impl TokenKind {
    /// `access_token` or `refresh_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::AccessToken => "access_token",
            TokenKind::RefreshToken => "refresh_token",
        }
    }
}

/// The identifier of a grant: one authorization of one client, by one resource owner (or by
/// the client itself), and every access and refresh token issued under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantId(u64);

impl GrantId {
    /// A fresh random grant id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A grant id from its number.
    pub fn from_u64(id: u64) -> Self {
        Self(id)
    }

    /// The grant id's number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn shard(self, n: usize) -> usize {
        (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % n
    }
}

impl Hash for GrantId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The key a sender-constrained token is bound to: the SHA-256 thumbprint of a DPoP key or of
/// a client certificate, as the token's confirmation ([RFC 7800] `cnf`) carries it.
///
/// Only a client that proves possession of that key may use the token. A store keeps the
/// thumbprint with the token for its lifetime; introspection and JWT access tokens show it
/// as the `cnf` member it names.
///
/// ```
/// use tower_oauth_revoke::store::Confirmation;
///
/// let jkt = Confirmation::Jkt([7; 32]);
/// assert_eq!(jkt.member(), "jkt");
/// let b64 = jkt.to_base64url();
/// assert_eq!(b64.len(), 43);
/// assert_eq!(Confirmation::from_member("jkt", &b64), Some(jkt));
/// assert_eq!(
///     Confirmation::from_member("x5t#S256", &b64),
///     Some(Confirmation::X5tS256([7; 32]))
/// );
/// assert_eq!(Confirmation::from_member("jwk", &b64), None);
/// assert_eq!(Confirmation::from_member("jkt", "too-short"), None);
/// ```
///
/// [RFC 7800]: https://www.rfc-editor.org/rfc/rfc7800#section-3.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confirmation {
    /// The JWK SHA-256 thumbprint ([RFC 7638]) of the client's DPoP key: `cnf.jkt`
    /// ([RFC 9449 §6]).
    ///
    /// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
    /// [RFC 9449 §6]: https://www.rfc-editor.org/rfc/rfc9449#section-6
    Jkt([u8; 32]),
    /// The SHA-256 thumbprint of the DER of the client's X.509 certificate, as mutual TLS
    /// presented it: `cnf.x5t#S256` ([RFC 8705 §3.1]).
    ///
    /// [RFC 8705 §3.1]: https://www.rfc-editor.org/rfc/rfc8705#section-3.1
    X5tS256([u8; 32]),
}

impl Confirmation {
    /// The name of its member in a `cnf` object: `jkt` or `x5t#S256`.
    pub fn member(&self) -> &'static str {
        match self {
            Confirmation::Jkt(_) => "jkt",
            Confirmation::X5tS256(_) => "x5t#S256",
        }
    }

    /// The 32 bytes of the thumbprint.
    pub fn thumbprint(&self) -> &[u8; 32] {
        match self {
            Confirmation::Jkt(t) | Confirmation::X5tS256(t) => t,
        }
    }

    /// The thumbprint as 43 characters of unpadded base64url ([RFC 4648 §5]): the value of
    /// its `cnf` member.
    ///
    /// [RFC 4648 §5]: https://www.rfc-editor.org/rfc/rfc4648#section-5
    pub fn to_base64url(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.thumbprint())
    }

    /// The confirmation a `cnf` member names: `member` `jkt` or `x5t#S256`, `value` the
    /// thumbprint in unpadded base64url ([`to_base64url`](Self::to_base64url)). `None` for
    /// another member, or a value that is not exactly 32 bytes in canonical unpadded
    /// base64url.
    pub fn from_member(member: &str, value: &str) -> Option<Self> {
        use base64::Engine as _;
        let make = match member {
            "jkt" => Confirmation::Jkt,
            "x5t#S256" => Confirmation::X5tS256,
            _ => return None,
        };
        if value.len() != 43 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()?;
        Some(make(bytes.try_into().ok()?))
    }
}
