//! Portal form bodies and query strings (shopper input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::http::form;

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = form::parse(data) {
        assert!(fields.len() <= form::MAX_FIELDS);
        let _ = form::get(&fields, "accept_terms");
    }
});
