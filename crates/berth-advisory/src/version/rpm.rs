//! RPM version ordering (`[epoch:]version[-release]`), as rpmvercmp does:
//! alphanumeric segments, digits beat letters, `~` sorts before anything
//! and `^` after the end.

use std::cmp::Ordering;

/// An RPM version, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    epoch: u64,
    version: &'a str,
    release: &'a str,
}

/// Split `s`; `None` when empty or the epoch is no number.
pub fn parse(s: &str) -> Option<Version<'_>> {
    let s = s.trim();
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) => (e.parse().ok()?, r),
        None => (0, s),
    };
    let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
    (!version.is_empty()).then_some(Version {
        epoch,
        version,
        release,
    })
}

/// rpmvercmp.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.first().is_some_and(sep) {
            a = &a[1..];
        }
        while b.first().is_some_and(sep) {
            b = &b[1..];
        }
        if a.first() == Some(&b'~') || b.first() == Some(&b'~') {
            if a.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if b.first() != Some(&b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.first() == Some(&b'^') || b.first() == Some(&b'^') {
            if a.is_empty() {
                return Ordering::Less;
            }
            if b.is_empty() {
                return Ordering::Greater;
            }
            if a[0] != b'^' {
                return Ordering::Greater;
            }
            if b[0] != b'^' {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (la, lb) = (run(a), run(b));
        let (sa, sb) = (&a[..la], &b[..lb]);
        a = &a[la..];
        b = &b[lb..];
        if sb.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let o = if numeric {
            let za: &[u8] = &sa[sa.iter().take_while(|c| **c == b'0').count()..];
            let zb: &[u8] = &sb[sb.iter().take_while(|c| **c == b'0').count()..];
            za.len().cmp(&zb.len()).then_with(|| za.cmp(zb))
        } else {
            sa.cmp(sb)
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Compare two parsed versions; a missing release matches any.
pub fn compare(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| vercmp(a.version, b.version))
        .then_with(|| {
            if a.release.is_empty() || b.release.is_empty() {
                Ordering::Equal
            } else {
                vercmp(a.release, b.release)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpmvercmp_cases() {
        // From rpm's own test suite (rpmvercmp.at).
        for (a, b, o) in [
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0.1", "2.0", 1),
            ("2.0.1a", "2.0.1", 1),
            ("5.5p1", "5.5p2", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", -1),
            ("xyz10", "xyz10.1", -1),
            ("xyz.4", "8", -1),
            ("1.0010", "1.9", 1),
            ("1.05", "1.5", 0),
            ("2a", "2.0", -1),
            ("1.0~rc1", "1.0", -1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0^", "1.0", 1),
            ("1.0^git1", "1.01", -1),
            ("1.0^git1~pre", "1.0^git1", -1),
        ] {
            assert_eq!(vercmp(a, b) as i32, o, "{a} vs {b}");
        }
        let v = |s| parse(s).unwrap();
        assert_eq!(
            compare(&v("1:1.0-1.el9"), &v("2.0-1.el9")),
            Ordering::Greater
        );
        assert_eq!(
            compare(&v("3.0.7-24.el9"), &v("3.0.7-27.el9")),
            Ordering::Less
        );
        assert_eq!(compare(&v("3.0.7-24.el9"), &v("3.0.7")), Ordering::Equal);
    }
}
