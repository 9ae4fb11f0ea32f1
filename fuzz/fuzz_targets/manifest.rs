//! Manifests and indexes as pushed: the first line is the Content-Type the
//! client sent, the rest the body. Parsing never panics, and what it
//! accepts is consistent (an image has a config, an index is of an index
//! media type, no size is negative).
#![no_main]
use berth_oci::{ManifestKind, ParsedManifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    if let Ok(m) = ParsedManifest::parse(body, ct.filter(|c| !c.is_empty())) {
        match m.kind {
            ManifestKind::Image => assert!(m.config.is_some()),
            ManifestKind::Index => assert!(m.media_type.contains("index") || m.media_type.contains("list")),
            ManifestKind::Other => {}
        }
        for d in m.blob_references().chain(m.manifests.iter()) {
            assert!(d.size >= 0);
        }
    }
});
