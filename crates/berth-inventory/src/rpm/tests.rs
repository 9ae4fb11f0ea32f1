use std::io::Read;

use super::*;

/// A database written by RPM 4.18 itself (fixtures/make-rpmdb.sh).
fn fixture() -> Vec<u8> {
    let gz: &[u8] = include_bytes!("../../fixtures/rpmdb.sqlite.gz");
    let mut db = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut db)
        .unwrap();
    db
}

#[test]
fn a_real_rpmdb_lists_its_packages() {
    let p = parse(&fixture(), "var/lib/rpm/rpmdb.sqlite").unwrap();
    // 16 rows, one of them the imported signing key.
    assert_eq!(p.len(), 15, "{p:#?}");
    let get = |n: &str| p.iter().find(|x| x.name == n).unwrap();
    // epoch 2, and a 62 KB header read through its overflow pages.
    assert_eq!(get("berth-hello").version, "2:1.2.3-4.el9");
    assert_eq!(get("berth-hello").source, None);
    assert_eq!(get("world-libs").version, "3.0.7-16.el9_2");
    assert_eq!(get("world-libs").source.as_deref(), Some("world"));
    assert_eq!(get("filler12").ecosystem, "rpm");
    assert!(p.iter().all(|x| x.name != "gpg-pubkey"));
}

#[test]
fn damage_is_reported_not_panicked_on() {
    let good = fixture();
    // Cut short: the pages it refers to are missing.
    assert!(parse(&good[..good.len() / 3], "db").is_err());
    // Every byte of the first pages flipped in turn: an error or fewer
    // packages, never a panic nor an endless walk.
    for at in (0..good.len().min(16384)).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0xff;
        let _ = parse(&bad, "db");
    }
    assert!(parse(b"SQLite format 3\0", "db").is_err());
    assert!(parse(&[], "db").is_err());
}

#[test]
fn header_blobs_are_bounded() {
    assert_eq!(header(&[]), None);
    // il = 1 entry, dl = 2^32-1: past the blob.
    assert_eq!(header(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]), None);
    assert_eq!(source_name("openssl-3.0.7-16.el9.src.rpm"), Some("openssl"));
    assert_eq!(source_name("a-b-c-1-2.nosrc.rpm"), Some("a-b-c"));
    assert_eq!(source_name("odd.src.rpm"), None);
}
