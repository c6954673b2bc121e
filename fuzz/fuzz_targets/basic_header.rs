//! `Authorization: Basic` decoding: never panics, and whatever it accepts re-encodes to
//! the same credentials, unless the re-encoding (which form-encodes bytes that the
//! decoder took raw) outgrows the decoder's 4096-byte limit, when it is refused whole.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tower_oauth_revoke::client_auth::{decode_basic, encode_basic};

fuzz_target!(|data: &[u8]| {
    // Raw header bytes, as hyper would hand them over (no CR/LF/NUL).
    if let Ok(value) = HeaderValue::from_bytes(data) {
        if let Some((id, secret)) = decode_basic(&value) {
            assert!(!id.is_empty(), "an empty client id was accepted");
            round_trip(id, secret);
        }
    }
    // The same bytes as the decoded part of `Basic <base64>`.
    let value = HeaderValue::from_str(&format!("Basic {}", base64_standard(data)))
        .expect("base64 is a valid header value");
    if let Some((id, secret)) = decode_basic(&value) {
        assert!(!id.is_empty());
        round_trip(id, secret);
    }
});

/// The longest base64 credentials `decode_basic` reads.
const LIMIT: usize = 4096;

fn round_trip(id: String, secret: String) {
    let encoded = encode_basic(&id, &secret);
    let again = decode_basic(&encoded);
    if encoded.len() - "Basic ".len() <= LIMIT {
        assert_eq!(
            again,
            Some((id, secret)),
            "re-encoding changed the credentials"
        );
    } else {
        assert_eq!(again, None, "credentials over the limit were read");
    }
}

/// Standard base64 with padding, written out here so the target needs no extra crate.
fn base64_standard(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
