//! Advisories: OSV documents and feed bundles (JSON, tar, tar+gzip) never
//! panic to read or evaluate, and every version scheme is a consistent
//! order (antisymmetric, reflexive) on whatever it accepts.
#![no_main]
use berth_advisory::bundle::{read_bundle, BundleKind};
use berth_advisory::{compare, parse, Scheme};
use libfuzzer_sys::fuzz_target;

const SCHEMES: [Scheme; 7] = [
    Scheme::Dpkg,
    Scheme::Apk,
    Scheme::Rpm,
    Scheme::Pep440,
    Scheme::Semver,
    Scheme::Maven,
    Scheme::Generic,
];

fuzz_target!(|data: &[u8]| {
    for kind in [BundleKind::Json, BundleKind::Tar, BundleKind::TarGzip] {
        let mut n = 0;
        let _ = read_bundle(data, kind, &mut |d| {
            let _ = parse(&d);
            n += 1;
            n < 64
        });
    }
    if let Ok(a) = parse(data) {
        for affected in a.affected.iter().take(8) {
            let eco = affected
                .package
                .as_ref()
                .map(|p| p.ecosystem.as_str())
                .unwrap_or("");
            for v in ["0", "1.0", "2.31.0", "1:2.3-4", "v1.2.3"] {
                let _ = affected.hit(eco, v);
            }
            let _ = a.severity_for(Some(affected));
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let (x, y) = s.split_once('|').unwrap_or((s, "1.0"));
        for scheme in SCHEMES {
            let xy = compare(scheme, x, y);
            let yx = compare(scheme, y, x);
            assert_eq!(xy, yx.map(std::cmp::Ordering::reverse), "{scheme:?} {x:?} {y:?}");
            if xy.is_some() {
                assert_eq!(compare(scheme, x, x), Some(std::cmp::Ordering::Equal));
            }
        }
    }
});
