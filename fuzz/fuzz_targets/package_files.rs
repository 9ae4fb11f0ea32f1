//! One package file of each kind (RPM's SQLite database, a Java archive,
//! a pom.properties, dpkg and apk databases, npm and Python metadata, an
//! executable), chosen by the first byte, read from any bytes within the
//! limits without a panic or an endless loop.
#![no_main]
use berth_inventory::{read_file, Limits};
use libfuzzer_sys::fuzz_target;

const PATHS: &[(&str, u32)] = &[
    ("var/lib/rpm/rpmdb.sqlite", 0o644),
    ("srv/app.jar", 0o644),
    ("META-INF/maven/g/a/pom.properties", 0o644),
    ("var/lib/dpkg/status", 0o644),
    ("lib/apk/db/installed", 0o644),
    ("app/node_modules/x/package.json", 0o644),
    ("usr/lib/python3/dist-packages/x-1.dist-info/METADATA", 0o644),
    ("usr/bin/x", 0o755),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (path, mode) = PATHS[usize::from(pick) % PATHS.len()];
    let limits = Limits {
        max_entries: 1000,
        max_bytes: 4 * 1024 * 1024,
        max_database: 1024 * 1024,
        max_metadata: 64 * 1024,
        max_binary: 1024 * 1024,
        max_packages: 1000,
    };
    let inv = read_file(path, rest, mode, &limits);
    assert!(inv.packages.len() <= limits.max_packages + 1000);
});
