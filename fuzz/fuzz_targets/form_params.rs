//! The strict form parser: never panics; what it accepts has unique names, at most
//! `MAX_PARAMS` of them, and every decoded byte came from the input.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tower_oauth_revoke::form::{FormParams, MAX_PARAMS};

fuzz_target!(|data: &[u8]| {
    let Ok(params) = FormParams::parse(data) else {
        return;
    };
    assert!(params.len() <= MAX_PARAMS);
    let mut seen = HashSet::new();
    for (name, value) in params.iter() {
        assert!(seen.insert(name), "the name {name:?} was accepted twice");
        assert_eq!(params.get(name), Some(value));
    }
    // Decoding never makes text longer than its encoding.
    let decoded: usize = params.iter().map(|(n, v)| n.len() + v.len()).sum();
    assert!(decoded <= data.len());
    // The query-string parser applies the same rules.
    if let Ok(text) = std::str::from_utf8(data) {
        let query = FormParams::parse_query(text).expect("a valid body is a valid query");
        assert!(query.iter().eq(params.iter()));
    }
});
