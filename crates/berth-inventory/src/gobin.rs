//! Go binaries' build information (Go 1.18 and later): the
//! `\xff Go buildinf:` header, then the Go version and the module list
//! (`mod`, `dep`, `=>` replacement lines) as length-prefixed strings.
//! Yields the standard library (`stdlib`) and each dependency module.

use crate::Package;

const MAGIC: &[u8] = b"\xff Go buildinf:";

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        x |= u64::from(c & 0x7f) << (7 * i);
        if c < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

fn string(b: &[u8]) -> Option<(&[u8], usize)> {
    let (n, used) = uvarint(b)?;
    let n = usize::try_from(n).ok()?;
    let end = used.checked_add(n)?;
    Some((b.get(used..end)?, end))
}

/// The modules a Go binary was built from; `Ok(empty)` when `bin` is no
/// Go binary, `Err` when it is one whose information cannot be read.
pub fn parse(bin: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let Some(off) = bin
        .windows(MAGIC.len())
        .enumerate()
        .step_by(16)
        .find(|(_, w)| *w == MAGIC)
        .map(|(i, _)| i)
    else {
        return Ok(Vec::new());
    };
    let header = bin
        .get(off..off + 32)
        .ok_or("a truncated Go build information header")?;
    if header[15] & 2 == 0 {
        return Err(format!(
            "{path}: a Go binary built before Go 1.18; its build information is not read"
        ));
    }
    let rest = &bin[off + 32..];
    let (version, used) = string(rest).ok_or("unreadable Go version")?;
    let (mut modinfo, _) = string(&rest[used..]).ok_or("unreadable Go module information")?;
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let mut out = Vec::new();
    let go = String::from_utf8_lossy(version);
    if let Some(v) = go
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("go"))
    {
        out.push(Package {
            ecosystem: "Go".into(),
            name: "stdlib".into(),
            version: v.to_owned(),
            source: None,
            path: path.to_owned(),
        });
    }
    for line in String::from_utf8_lossy(modinfo).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["dep", module, version, ..] => out.push(Package {
                ecosystem: "Go".into(),
                name: (*module).to_owned(),
                version: (*version).to_owned(),
                source: None,
                path: path.to_owned(),
            }),
            ["=>", module, version, ..] => {
                // The previous dependency is replaced by this module.
                if let Some(last) = out.last_mut().filter(|p| p.name != "stdlib") {
                    last.name = (*module).to_owned();
                    last.version = (*version).to_owned();
                }
            }
            ["mod", module, version, ..] if *version != "(devel)" => out.push(Package {
                ecosystem: "Go".into(),
                name: (*module).to_owned(),
                version: (*version).to_owned(),
                source: None,
                path: path.to_owned(),
            }),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut n = s.len();
        while n >= 0x80 {
            v.push((n as u8) | 0x80);
            n >>= 7;
        }
        v.push(n as u8);
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn inline_build_information_is_read() {
        let mut bin = vec![0u8; 48];
        let mut header = MAGIC.to_vec();
        header.extend([8, 2]);
        header.resize(32, 0);
        bin.extend(header);
        bin.extend(lp(b"go1.21.5"));
        let info = b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:abc=\ndep\tgithub.com/a/b\tv1.0.0\th1:x=\n=>\tgithub.com/c/b\tv1.2.0\th1:y=\n";
        bin.extend(lp(info));
        let p = parse(&bin, "usr/bin/app").unwrap();
        let names: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("stdlib", "1.21.5"),
                ("golang.org/x/net", "v0.17.0"),
                ("github.com/c/b", "v1.2.0")
            ]
        );
        assert!(parse(b"\x7fELF not go", "x").unwrap().is_empty());
        let mut old = vec![0u8; 16];
        old.extend(MAGIC);
        old.extend([8, 0]);
        old.resize(64, 0);
        assert!(parse(&old, "x").unwrap_err().contains("before Go 1.18"));
    }
}
