//! Alpine's installed database, `/lib/apk/db/installed`: blocks of
//! `X:value` lines (`P` name, `V` version, `o` origin).

use crate::Package;

/// The packages the database lists; odd lines are ignored.
pub fn parse(text: &str, path: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut name, mut version, mut origin) = (None, None, None);
        for line in block.lines() {
            match line.split_once(':') {
                Some(("P", v)) => name = Some(v.trim()),
                Some(("V", v)) => version = Some(v.trim()),
                Some(("o", v)) => origin = Some(v.trim()),
                _ => {}
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            if !n.is_empty() && !v.is_empty() {
                out.push(Package {
                    ecosystem: "apk".into(),
                    name: n.to_owned(),
                    version: v.to_owned(),
                    source: origin
                        .filter(|o| *o != n && !o.is_empty())
                        .map(str::to_owned),
                    path: path.to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_and_odd_lines_ignored() {
        let text = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4_git20230717-r4\n\n???\nnot a line\nP:\nV:\n\nV:1.0\n";
        let p = parse(text, "lib/apk/db/installed");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[1].name, "musl");
    }
}
