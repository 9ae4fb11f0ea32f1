//! Layer inventories: any bytes as a layer (plain, gzip or zstd tar) are
//! walked within the limits without a panic, and an image's union of such
//! layers never panics either.
#![no_main]
use berth_inventory::{image, read_layer, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entries: 1000,
        max_bytes: 4 * 1024 * 1024,
        max_database: 256 * 1024,
        max_metadata: 64 * 1024,
        max_binary: 1024 * 1024,
        max_packages: 1000,
    };
    let inv = read_layer(data, &limits);
    assert!(inv.packages.len() <= limits.max_packages);
    assert!(inv.bytes <= limits.max_bytes + 64 * 1024);
    let _ = image::union(&[inv.clone(), inv]);
});
