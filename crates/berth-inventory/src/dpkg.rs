//! Debian's `dpkg` database: `/var/lib/dpkg/status` (and the one-stanza
//! files of `status.d/` that distroless images use). Only packages whose
//! `Status` says installed count.

use crate::Package;

/// The packages a status file lists as installed.
pub fn parse(text: &str, path: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut source, mut status) = (None, None, None, None);
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k {
                "Package" => name = Some(v),
                "Version" => version = Some(v),
                "Source" => source = Some(v),
                "Status" => status = Some(v),
                _ => {}
            }
        }
        let installed = status.is_none_or(|s| s.ends_with(" installed"));
        if let (Some(n), Some(v), true) = (name, version, installed) {
            // `Source: name (version)` when the source's version differs.
            let source = source.map(|s| s.split_whitespace().next().unwrap_or(s).to_owned());
            out.push(Package {
                ecosystem: "dpkg".into(),
                name: n.to_owned(),
                version: v.to_owned(),
                source: source.filter(|s| s != n),
                path: path.to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_stanzas_are_read() {
        let text = "Package: libssl3\nStatus: install ok installed\nPriority: optional\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: Secure Sockets Layer\n toolkit\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1\n";
        let p = parse(text, "var/lib/dpkg/status");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("libssl3", "3.0.11-1~deb12u2")
        );
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[1].source.as_deref(), Some("zlib"));
        // distroless status.d stanzas carry no Status field.
        let p = parse(
            "Package: tzdata\nVersion: 2024a-0+deb12u1\n",
            "var/lib/dpkg/status.d/tzdata",
        );
        assert_eq!(p.len(), 1);
    }
}
