//! The /v2 endpoint parser: the first byte picks the method, the rest is
//! `path?query`. Parsing never panics, and a parsed endpoint always states
//! the access it needs, which covers what a challenge would ask for.
#![no_main]
use berth_registry::{Access, Endpoint};
use http::Method;
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

fuzz_target!(|data: &[u8]| {
    let Some((m, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    let method = &METHODS[*m as usize % METHODS.len()];
    if let Ok(e) = Endpoint::parse(method, path, query) {
        let _ = e.kind();
        let wanted = e.wanted();
        if let Access::Repository(needed) = e.access() {
            assert!(!needed.is_empty());
            for n in needed {
                assert!(wanted.contains(&n));
            }
        }
    }
});
