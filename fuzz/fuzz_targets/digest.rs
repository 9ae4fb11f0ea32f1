//! Digests from URLs and query strings: parsing never panics, and a digest
//! that parses prints as itself and parses again to the same value.
#![no_main]
use berth_oci::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.as_str(), s);
        assert_eq!(Digest::parse(d.as_str()).as_ref(), Ok(&d));
        assert_eq!(d.hex().len(), d.algorithm().hex_len());
    }
});
