//! Property tests of the parsers that take attacker input: HTTP Basic client credentials
//! ([RFC 6749 §2.3.1]), the strict urlencoded form, and JSONP callback names.
//!
//! Case counts are modest so that the suite stays fast; the fuzz targets in `fuzz/` run the
//! same parsers for millions of executions.
//!
//! [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1

use std::collections::HashSet;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::HeaderValue;
use proptest::prelude::*;
use tower_oauth_revoke::{
    client_auth::{decode_basic, encode_basic},
    form::{FormError, FormParams, MAX_PARAMS},
    jsonp::{Callback, MAX_CALLBACK_LEN},
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// `VSCHAR = %x20-7E`, the characters of `client_id` and `client_secret` in
/// [RFC 6749 Appendix A.1, A.2](https://www.rfc-editor.org/rfc/rfc6749#appendix-A.1).
fn vschar_string(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0x20u8..=0x7e, min..40)
        .prop_map(|bytes| String::from_utf8(bytes).expect("ASCII"))
}

/// Any Unicode text, including `:`, `%`, `+`, `&`, `=`, controls and non-ASCII.
fn any_text(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), min..24).prop_map(|c| c.into_iter().collect())
}

/// A secret that certainly holds a colon somewhere.
fn secret_with_colon() -> impl Strategy<Value = String> {
    (any_text(0), any_text(0)).prop_map(|(a, b)| format!("{a}:{b}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn basic_round_trips_appendix_b_characters(id in vschar_string(1), secret in vschar_string(0)) {
        let value = encode_basic(&id, &secret);
        prop_assert_eq!(decode_basic(&value), Some((id, secret)));
    }

    #[test]
    fn basic_round_trips_colons_in_secrets(id in vschar_string(1), secret in secret_with_colon()) {
        let value = encode_basic(&id, &secret);
        prop_assert_eq!(decode_basic(&value), Some((id, secret)));
    }

    #[test]
    fn basic_round_trips_any_unicode(id in any_text(1), secret in any_text(0)) {
        let value = encode_basic(&id, &secret);
        prop_assert!(value.is_sensitive(), "the header is marked sensitive");
        let text = value.to_str().expect("ASCII header");
        let b64 = text.strip_prefix("Basic ").expect("Basic scheme");
        prop_assert!(STANDARD.decode(b64).is_ok(), "canonical padded base64");
        // The scheme is case-insensitive.
        let shouting = HeaderValue::from_str(&format!("BASIC {b64}")).unwrap();
        prop_assert_eq!(decode_basic(&shouting), Some((id.clone(), secret.clone())));
        prop_assert_eq!(decode_basic(&value), Some((id, secret)));
    }

    #[test]
    fn basic_without_form_encoding_splits_at_the_first_colon(
        id in "[A-Za-z0-9_.~-]{1,20}",
        secret in "[A-Za-z0-9_.~:-]{0,20}",
    ) {
        // Clients that skip the form-encoding (most of them) still work when their
        // credentials are unreserved characters; the secret may hold colons.
        let value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))).unwrap();
        prop_assert_eq!(decode_basic(&value), Some((id, secret)));
    }

    #[test]
    fn basic_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            if let Some((id, secret)) = decode_basic(&value) {
                prop_assert!(!id.is_empty());
                prop_assert_eq!(decode_basic(&encode_basic(&id, &secret)), Some((id, secret)));
            }
        }
        let value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(&bytes))).unwrap();
        if let Some((id, _)) = decode_basic(&value) {
            prop_assert!(!id.is_empty());
        }
    }

    #[test]
    fn basic_round_trips_up_to_the_decoder_limit(
        id in "[a-z]{1,8}",
        fill in any::<char>(),
        len in 0usize..1600,
    ) {
        // Found by the fuzz target: characters the decoder accepts raw (`\0`, `&`) grow
        // threefold when re-encoded, so long credentials can outgrow the 4096-character
        // limit; those are refused whole, never cut.
        let secret: String = std::iter::repeat_n(fill, len).collect();
        let value = encode_basic(&id, &secret);
        let decoded = decode_basic(&value);
        if value.len() - "Basic ".len() <= 4096 {
            prop_assert_eq!(decoded, Some((id, secret)));
        } else {
            prop_assert_eq!(decoded, None);
        }
    }

    #[test]
    fn basic_without_padding_is_refused(id in vschar_string(1), secret in vschar_string(0)) {
        let joined = format!("{}:{}", urlencode(&id), urlencode(&secret));
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&joined);
        let value = HeaderValue::from_str(&format!("Basic {unpadded}")).unwrap();
        if joined.len() % 3 == 0 {
            // No padding was needed: the same bytes as the canonical form.
            prop_assert_eq!(decode_basic(&value), Some((id, secret)));
        } else {
            prop_assert_eq!(decode_basic(&value), None);
        }
    }

    #[test]
    fn form_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(params) = FormParams::parse(&bytes) {
            prop_assert!(params.len() <= MAX_PARAMS);
            let names: HashSet<&str> = params.names().collect();
            prop_assert_eq!(names.len(), params.len(), "names are unique");
        }
    }

    #[test]
    fn form_parser_round_trips_unique_pairs(
        pairs in proptest::collection::btree_map(any_text(1), any_text(0), 0..MAX_PARAMS)
    ) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        let params = FormParams::parse(body.as_bytes()).expect("a unique, well-encoded form");
        prop_assert_eq!(params.len(), pairs.len());
        for (name, value) in &pairs {
            prop_assert_eq!(params.get(name), Some(value.as_str()));
        }
    }

    #[test]
    fn form_parser_rejects_every_duplicate(
        pairs in proptest::collection::vec((any_text(1), any_text(0)), 1..12),
        pick in any::<prop::sample::Index>(),
        value in any_text(0),
        spell_out in any::<bool>(),
        position in any::<prop::sample::Index>(),
    ) {
        let mut pairs = pairs;
        let name = pairs[pick.index(pairs.len())].0.clone();
        // The repeat may be spelled differently on the wire: every byte percent-encoded.
        let repeat = if spell_out { percent_every_byte(&name) } else { urlencode(&name) };
        let mut parts: Vec<String> = pairs
            .drain(..)
            .map(|(n, v)| format!("{}={}", urlencode(&n), urlencode(&v)))
            .collect();
        parts.insert(position.index(parts.len() + 1), format!("{repeat}={}", urlencode(&value)));
        let body = parts.join("&");
        match FormParams::parse(body.as_bytes()) {
            Err(FormError::Repeated(_)) => {}
            other => prop_assert!(false, "{body:?} gave {other:?}"),
        }
    }

    #[test]
    fn form_parser_bounds_the_parameter_count(extra in 1usize..32) {
        let body = (0..MAX_PARAMS + extra).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&");
        prop_assert_eq!(FormParams::parse(body.as_bytes()), Err(FormError::TooMany));
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn percent_every_byte(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

// The JSONP callback validator.

/// Identifier segments as the validator accepts them.
fn js_segment() -> impl Strategy<Value = String> {
    "[A-Za-z_$][A-Za-z0-9_$]{0,12}".prop_filter("reserved word", |s| !is_reserved(s))
}

fn is_reserved(s: &str) -> bool {
    [
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
    ]
    .contains(&s)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn callback_accepts_dotted_identifiers(segments in proptest::collection::vec(js_segment(), 1..5)) {
        let name = segments.join(".");
        let parsed = Callback::parse(&name);
        if name.len() <= MAX_CALLBACK_LEN {
            let callback = parsed.expect("a dotted identifier");
            prop_assert_eq!(callback.as_str(), name.as_str());
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn callback_refuses_any_character_outside_identifiers(
        prefix in js_segment(),
        bad in prop::sample::select(vec![
            '(', ')', ';', '<', '>', '"', '\'', '`', ' ', '\\', '/', '[', ']', '=', '+', '-',
            ',', '\n', '\u{2028}', '\u{2029}', 'é', 'π', '\0',
        ]),
        suffix in "[A-Za-z0-9_$]{0,6}",
    ) {
        let name = format!("{prefix}{bad}{suffix}");
        prop_assert!(Callback::parse(&name).is_err(), "{:?} was accepted", name);
    }

    #[test]
    fn callback_never_panics_and_accepts_only_safe_text(name in any::<String>()) {
        if let Ok(callback) = Callback::parse(&name) {
            prop_assert!(callback.as_str().len() <= MAX_CALLBACK_LEN);
            prop_assert!(callback
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.')));
        }
    }

    #[test]
    fn callback_refuses_reserved_words_and_empty_segments(
        head in js_segment(),
        word in prop::sample::select(vec!["this", "function", "new", "delete", "typeof"]),
        empty_segment in any::<bool>(),
    ) {
        let name = if empty_segment { format!("{head}..x") } else { format!("{head}.{word}") };
        prop_assert!(Callback::parse(&name).is_err(), "{:?} was accepted", name);
    }
}
