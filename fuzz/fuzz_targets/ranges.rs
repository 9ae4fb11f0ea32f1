//! `Content-Range` of upload chunks and `Range` of downloads: parsing
//! never panics, a chunk range never ends before it starts, and a download
//! range names at least one end.
#![no_main]
use berth_registry::wire::{content_range, request_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Some((start, end)) = content_range(s) {
        assert!(start <= end);
    }
    if let Some((start, end)) = request_range(s) {
        assert!(start.is_some() || end.is_some());
    }
});
