//! Certificates as text: PEM ([RFC 7468]) and bare base64 DER, as proxies forward them.
//!
//! [RFC 7468]: https://www.rfc-editor.org/rfc/rfc7468

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};

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
    fn malformed_text_is_an_error() {
        for pem in [
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----AAEC",
            "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----",
        ] {
            assert!(decode(pem).is_err(), "{pem:?}");
        }
    }
}
