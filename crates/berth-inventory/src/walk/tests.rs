use std::io::Write;

use super::*;

fn tar_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        if path.contains("..") {
            // The builder refuses such paths: write the name raw.
            let name = &mut h.as_gnu_mut().unwrap().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        } else {
            b.append_data(&mut h, path, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(b).unwrap();
    z.finish().unwrap()
}

const STATUS: &[u8] = b"Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n";

fn sample() -> Vec<u8> {
    tar_of(&[
        ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n", 0o644),
        ("var/lib/dpkg/status", STATUS, 0o644),
        ("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\n\n", 0o644),
        (
            "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA",
            b"Name: requests\nVersion: 2.28.1\n",
            0o644,
        ),
        (
            "app/node_modules/lodash/package.json",
            br#"{"name":"lodash","version":"4.17.20"}"#,
            0o644,
        ),
        ("app/node_modules/.wh.left-pad", b"", 0o644),
        ("app/.wh..wh..opq", b"", 0o644),
        ("../../etc/shadow", b"nope", 0o644),
        (
            "usr/bin/tool",
            b"#!/bin/sh\necho this is a script, not a binary, at least 64 bytes long\n",
            0o755,
        ),
    ])
}

#[test]
fn a_layer_is_read_plain_gzip_or_zstd() {
    let plain = sample();
    let zstd =
        ruzstd::encoding::compress_to_vec(&plain[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (what, blob) in [
        ("plain", plain.clone()),
        ("gzip", gzip(&plain)),
        ("zstd", zstd),
    ] {
        let inv = read_layer(&blob[..], &Limits::default());
        assert_eq!(inv.stopped, None, "{what}");
        let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "musl", "requests", "lodash"], "{what}");
        assert_eq!(inv.os.as_ref().unwrap().version_id, "12");
        assert_eq!(inv.whiteouts, ["app/node_modules/left-pad"]);
        assert_eq!(inv.opaque, ["app"]);
        assert!(
            inv.skipped
                .iter()
                .any(|s| s.contains("outside the image's root")),
            "{:?}",
            inv.skipped
        );
        assert!(inv.bytes > 0 && inv.bytes <= plain.len() as u64, "{what}");
    }
}

#[test]
fn crafted_layers_are_bounded_and_reported() {
    // A tar bomb: many entries.
    let many: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("f{i}"), vec![0u8; 10])).collect();
    let files: Vec<(&str, &[u8], u32)> = many
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice(), 0o644))
        .collect();
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let inv = read_layer(&gzip(&tar_of(&files))[..], &limits);
    assert!(inv.stopped.as_deref().unwrap().contains("over 10 entries"));
    // Decompressed size past the bound.
    let limits = Limits {
        max_bytes: 4096,
        ..Limits::default()
    };
    let big = vec![0u8; 1 << 20];
    let inv = read_layer(&gzip(&tar_of(&[("big", &big, 0o644)]))[..], &limits);
    assert!(
        inv.stopped
            .as_deref()
            .unwrap()
            .contains("over 4096 uncompressed bytes"),
        "{:?}",
        inv.stopped
    );
    // A huge status file: not read, the rest is.
    let limits = Limits {
        max_database: 16,
        ..Limits::default()
    };
    let inv = read_layer(&sample()[..], &limits);
    assert!(
        inv.skipped
            .iter()
            .any(|s| s.starts_with("var/lib/dpkg/status:")),
        "{:?}",
        inv.skipped
    );
    assert!(inv.packages.iter().all(|p| p.name != "libssl3"));
    assert!(inv.databases.contains(&"var/lib/dpkg/status".to_owned()));
    // A corrupt gzip stream: stops with the reason.
    let mut z = gzip(&sample());
    let n = z.len();
    z[n / 2] ^= 0xff;
    z.truncate(n - 8);
    let inv = read_layer(&z[..], &Limits::default());
    assert!(inv.stopped.is_some(), "{inv:?}");
    // Not a tar at all.
    let inv = read_layer(
        &b"hello, not a layer at all; just some text."[..],
        &Limits::default(),
    );
    assert!(inv.stopped.is_some() || inv.entries == 0, "{inv:?}");
    // Empty.
    let inv = read_layer(&b""[..], &Limits::default());
    assert!(inv.packages.is_empty());
}
