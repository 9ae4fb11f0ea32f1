//! Semantic versions (npm, crates.io, Go's `v`-prefixed module versions):
//! `MAJOR.MINOR.PATCH[-pre][+build]`, pre-release identifiers compared
//! numerically or as text, a release above its pre-releases; build
//! metadata ignored. Missing minor or patch read as 0.

use std::cmp::Ordering;

/// A version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    Number(u64),
    Text(String),
}

/// Read `s`; `None` when it is no semantic version.
pub fn parse(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let s = s.split_once('+').map_or(s, |(v, _)| v);
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    let mut parts = [0u64; 3];
    for (n, p) in core.split('.').enumerate() {
        if n == 3 || p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        parts[n] = p.parse().ok()?;
    }
    let pre = match pre {
        Some("") => return None,
        Some(p) => p
            .split('.')
            .map(|i| {
                if i.is_empty() {
                    None
                } else if i.bytes().all(|c| c.is_ascii_digit()) {
                    i.parse().ok().map(Ident::Number)
                } else {
                    Some(Ident::Text(i.to_owned()))
                }
            })
            .collect::<Option<_>>()?,
        None => Vec::new(),
    };
    Some(Version { core: parts, pre })
}

/// Compare two versions.
pub fn compare(a: &Version, b: &Version) -> Ordering {
    a.core
        .cmp(&b.core)
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.pre.cmp(&b.pre),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_precedence() {
        // The example of semver.org §11, ascending, and Go's forms.
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "v1.0.1",
            "1.2",
            "v1.10.0",
            "v2.0.0-20240101000000-abcdef123456",
            "2.0.0",
        ];
        for w in ascending.windows(2) {
            let (a, b) = (parse(w[0]).unwrap(), parse(w[1]).unwrap());
            assert_eq!(compare(&a, &b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        let eq = |a: &str, b: &str| compare(&parse(a).unwrap(), &parse(b).unwrap());
        assert_eq!(eq("1.0.0+build.5", "1.0.0"), Ordering::Equal);
        assert!(parse("1.0.0.0").is_none());
        assert!(parse("one").is_none());
    }
}
