//! Certificates as text: PEM ([RFC 7468]) and bare base64 DER, as proxies forward them.
//!
//! [RFC 7468]: https://www.rfc-editor.org/rfc/rfc7468

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use percent_encoding::percent_decode;

use super::CertificateError;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Standard base64, padded or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The DER of the first `CERTIFICATE` block of `pem`.
pub(super) fn decode(pem: &str) -> Result<Vec<u8>, CertificateError> {
    let start = pem
        .find(BEGIN)
        .ok_or(CertificateError("no PEM CERTIFICATE block"))?
        + BEGIN.len();
    let len = pem[start..]
        .find(END)
        .ok_or(CertificateError("the PEM CERTIFICATE block does not end"))?;
    base64(&pem[start..start + len])
}

/// Base64 with any whitespace in it ignored.
fn base64(text: &str) -> Result<Vec<u8>, CertificateError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact)
        .map_err(|_| CertificateError("malformed base64"))
}

/// The DER a proxy's header value carries: URL-encoded PEM (nginx's
/// `$ssl_client_escaped_cert`), PEM with spaces for line breaks, or base64 DER. `None` for
/// an empty value: no certificate.
pub(super) fn decode_forwarded(value: &[u8]) -> Result<Option<Vec<u8>>, CertificateError> {
    // Percent-decoding, not form-decoding: a `+` is base64's, never a space.
    let decoded: Vec<u8> = percent_decode(value).collect();
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| CertificateError("the certificate header is not text"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    let der = if text.starts_with("-----BEGIN") {
        decode(text)?
    } else {
        base64(text)?
    };
    Ok(Some(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_with_any_line_breaks() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAwQ=\n-----END CERTIFICATE-----\n";
        assert_eq!(decode(pem).unwrap(), [0, 1, 2, 3, 4]);
        let spaced = "-----BEGIN CERTIFICATE----- AAEC AwQ= -----END CERTIFICATE-----";
        assert_eq!(decode(spaced).unwrap(), [0, 1, 2, 3, 4]);
        let chain = format!("{pem}-----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----\n");
        assert_eq!(decode(&chain).unwrap(), [0, 1, 2, 3, 4], "the first block");
    }

    #[test]
    fn forwarded_forms() {
        let escaped =
            b"-----BEGIN%20CERTIFICATE-----%0AAAEC%2BwQ%3D%0A-----END%20CERTIFICATE-----%0A";
        assert_eq!(
            decode_forwarded(escaped).unwrap().unwrap(),
            [0, 1, 2, 0xfb, 4]
        );
        // A literal `+` stays base64's.
        assert_eq!(
            decode_forwarded(b"AAEC+wQ").unwrap().unwrap(),
            [0, 1, 2, 0xfb, 4]
        );
        assert_eq!(decode_forwarded(b"").unwrap(), None);
        assert_eq!(decode_forwarded(b"  ").unwrap(), None);
    }

    #[test]
    fn malformed_text_is_an_error() {
        for value in [
            &b"not base64!"[..],
            b"-----BEGIN CERTIFICATE-----AAEC",
            b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----",
            b"%FF%FE",
        ] {
            assert!(decode_forwarded(value).is_err(), "{value:?}");
        }
    }
}
