//! Repository names, tags and references: parsing never panics; what
//! parses round-trips, and a name's namespace is its first component.
#![no_main]
use berth_oci::{Reference, RepoName, Tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(r) = RepoName::parse(s) {
        assert_eq!(r.as_str(), s);
        assert!(s.len() <= berth_oci::MAX_NAME_LEN);
        assert_eq!(Some(r.namespace()), s.split('/').next());
    }
    if let Ok(t) = Tag::parse(s) {
        assert_eq!(t.as_str(), s);
        assert!(s.len() <= 128);
    }
    if let Ok(r) = Reference::parse(s) {
        assert_eq!(Reference::parse(&r.to_string()).ok(), Some(r));
    }
});
