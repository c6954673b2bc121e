//! Any bytes as a SOAP request envelope, of either version: the parser never panics, and
//! what it accepts is one of the two operations, its application names non-empty and
//! trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_revoke::soap::{envelope, Operation, SoapVersion};

fuzz_target!(|data: &[u8]| {
    for version in [SoapVersion::Soap11, SoapVersion::Soap12] {
        if let Ok(Operation::Revoke { apps, .. }) = envelope::parse(data, version) {
            for app in &apps {
                assert!(!app.is_empty() && app.trim() == app, "{app:?}");
            }
        }
    }
});
