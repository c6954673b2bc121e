//! The JSONP callback validator: never panics, and accepts only a dotted path of plain
//! ASCII identifiers that cannot change the meaning of the script it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_revoke::jsonp::{Callback, MAX_CALLBACK_LEN};

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

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(callback) = Callback::parse(name) else {
        return;
    };
    assert_eq!(callback.as_str(), name);
    assert!(!name.is_empty() && name.len() <= MAX_CALLBACK_LEN);
    for segment in name.split('.') {
        let mut bytes = segment.bytes();
        let first = bytes.next().expect("no empty segment");
        assert!(
            first.is_ascii_alphabetic() || first == b'_' || first == b'$',
            "{name:?}"
        );
        assert!(
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'),
            "{name:?}"
        );
        assert!(
            !RESERVED.contains(&segment),
            "reserved word accepted: {name:?}"
        );
    }
});
