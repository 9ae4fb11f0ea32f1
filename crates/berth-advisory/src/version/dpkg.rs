//! Debian version ordering (`[epoch:]upstream[-revision]`), as dpkg
//! compares them (deb-version(7)): `~` sorts before anything, even the end
//! of a part; letters before non-letters; digit runs numerically.

use std::cmp::Ordering;

/// A Debian version, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

/// Split `s`; `None` when it is no Debian version.
pub fn parse(s: &str) -> Option<Version<'_>> {
    let s = s.trim();
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) => (e.parse().ok()?, r),
        None => (0, s),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    let ok = |p: &str, extra: &str| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c) || extra.contains(c))
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit())
        || !ok(upstream, "-:")
        || !ok(revision, "")
    {
        return None;
    }
    Some(Version {
        epoch,
        upstream,
        revision,
    })
}

fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on one part.
fn part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, numerically (leading zeros ignored).
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Compare two parsed versions.
pub fn compare(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| part(a.upstream, b.upstream))
        .then_with(|| part(a.revision, b.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(&parse(a).unwrap(), &parse(b).unwrap())
    }

    #[test]
    fn debian_policy_ordering() {
        // Ascending, each pair from deb-version(7) and dpkg's own tests.
        let ascending = [
            "1.0~~",
            "1.0~~a",
            "1.0~",
            "1.0",
            "1.0-1",
            "1.0-1ubuntu0.1",
            "1.0-2",
            "1.0a",
            "1.0+dfsg",
            "1.0.1",
            "1.1",
            "1:0.9",
        ];
        for w in ascending.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
            assert_eq!(cmp(w[1], w[0]), Ordering::Greater, "{} > {}", w[1], w[0]);
        }
        assert_eq!(cmp("1.0-1", "1.00-1"), Ordering::Equal);
        assert_eq!(cmp("0:1.2", "1.2"), Ordering::Equal);
        assert_eq!(cmp("2.36-9+deb12u4", "2.36-9+deb12u10"), Ordering::Less);
        assert_eq!(cmp("3.0.11-1~deb12u2", "3.0.11-1"), Ordering::Less);
        assert!(parse("a:1").is_none());
        assert!(parse("").is_none());
    }
}
