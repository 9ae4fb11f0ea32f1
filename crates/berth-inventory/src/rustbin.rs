//! Rust binaries built with `cargo auditable`: the ELF section `.dep-v0`
//! holds the dependency tree as zlib-compressed JSON. Crates from
//! crates.io are reported (build-only dependencies are not in the binary).

use std::io::Read;

use serde::Deserialize;

use crate::Package;

/// Largest decompressed dependency list read.
const MAX_JSON: u64 = 8 * 1024 * 1024;

fn int(b: &[u8], at: usize, len: usize, le: bool) -> Option<u64> {
    let s = b.get(at..at.checked_add(len)?)?;
    let mut v = 0u64;
    for i in 0..len {
        let byte = if le { s[len - 1 - i] } else { s[i] };
        v = (v << 8) | u64::from(byte);
    }
    Some(v)
}

/// The bytes of the ELF section `name`, when `bin` is an ELF file with it.
pub fn elf_section<'a>(bin: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if bin.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match bin.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = *bin.get(5)? == 1;
    let usz = |at: usize| int(bin, at, if wide { 8 } else { 4 }, le);
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (
            usz(0x28)?,
            int(bin, 0x3A, 2, le)?,
            int(bin, 0x3C, 2, le)?,
            int(bin, 0x3E, 2, le)?,
        )
    } else {
        (
            usz(0x20)?,
            int(bin, 0x2E, 2, le)?,
            int(bin, 0x30, 2, le)?,
            int(bin, 0x32, 2, le)?,
        )
    };
    let header = |i: u64| -> Option<(u64, u64, u64)> {
        let at = usize::try_from(shoff.checked_add(i.checked_mul(shentsize)?)?).ok()?;
        let name = int(bin, at, 4, le)?;
        let (off, size) = if wide {
            (int(bin, at + 0x18, 8, le)?, int(bin, at + 0x20, 8, le)?)
        } else {
            (int(bin, at + 0x10, 4, le)?, int(bin, at + 0x14, 4, le)?)
        };
        Some((name, off, size))
    };
    let slice = |off: u64, size: u64| -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        bin.get(start..start.checked_add(usize::try_from(size).ok()?)?)
    };
    let (_, stroff, strsize) = header(shstrndx)?;
    let strtab = slice(stroff, strsize)?;
    for i in 0..shnum.min(4096) {
        let (n, off, size) = header(i)?;
        let n = usize::try_from(n).ok()?;
        let sname = strtab.get(n..)?.split(|b| *b == 0).next()?;
        if sname == name.as_bytes() {
            return slice(off, size);
        }
    }
    None
}

#[derive(Deserialize)]
struct Auditable {
    packages: Vec<Crate>,
}

#[derive(Deserialize)]
struct Crate {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The crates a `cargo auditable` binary lists; `Ok(empty)` without the
/// section, `Err` when the section is unreadable.
pub fn parse(bin: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let Some(section) = elf_section(bin, ".dep-v0") else {
        return Ok(Vec::new());
    };
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_JSON)
        .read_to_end(&mut json)
        .map_err(|e| format!("{path}: the cargo auditable section does not inflate: {e}"))?;
    let a: Auditable = serde_json::from_slice(&json)
        .map_err(|e| format!("{path}: the cargo auditable section: {e}"))?;
    Ok(a.packages
        .into_iter()
        .filter(|c| c.source == "crates.io" && c.kind.as_deref() != Some("build"))
        .map(|c| Package {
            ecosystem: "crates.io".into(),
            name: c.name,
            version: c.version,
            source: None,
            path: path.to_owned(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal ELF64 little-endian file with sections `.shstrtab` and
    /// `.dep-v0`.
    pub fn elf_with(section: &[u8]) -> Vec<u8> {
        let strtab = b"\0.shstrtab\0.dep-v0\0";
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        let str_off = b.len();
        b.extend_from_slice(strtab);
        let dep_off = b.len();
        b.extend_from_slice(section);
        let shoff = b.len();
        let sh = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h
        };
        b.extend(sh(0, 0, 0));
        b.extend(sh(1, str_off, strtab.len()));
        b.extend(sh(11, dep_off, section.len()));
        b[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        b[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
        b[0x3E..0x40].copy_from_slice(&1u16.to_le_bytes());
        b
    }

    #[test]
    fn the_dependency_section_is_read() {
        let json = br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true},
            {"name":"smallvec","version":"1.6.0","source":"crates.io"},
            {"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let bin = elf_with(&z.finish().unwrap());
        let p = parse(&bin, "usr/bin/app").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("smallvec", "1.6.0")
        );
        assert!(parse(&elf_with(b"not zlib"), "x")
            .unwrap_err()
            .contains("inflate"));
        assert!(parse(b"\x7fELF", "x").unwrap().is_empty());
    }
}
