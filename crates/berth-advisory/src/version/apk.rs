//! Alpine `apk` version ordering: `digits{.digits}[letter]{_suffix[n]}[-rN]`
//! with suffixes `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn <
//! _git < _hg < _p`, as apk-tools compares them.

use std::cmp::Ordering;

/// An apk version, tokenised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<(u64, bool)>,
    letter: Option<u8>,
    suffixes: Vec<(i8, u64)>,
    revision: u64,
}

const SUFFIXES: [(&str, i8); 9] = [
    ("alpha", -4),
    ("beta", -3),
    ("pre", -2),
    ("rc", -1),
    ("cvs", 1),
    ("svn", 2),
    ("git", 3),
    ("hg", 4),
    ("p", 5),
];

/// Read `s`; `None` when it does not follow apk's grammar.
pub fn parse(s: &str) -> Option<Version> {
    let s = s.trim();
    let (main, revision) = match s.rsplit_once("-r") {
        Some((m, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => {
            (m, r.parse().ok()?)
        }
        _ => (s, 0),
    };
    let (core, suffix_text) = match main.find('_') {
        Some(i) => (&main[..i], &main[i..]),
        None => (main, ""),
    };
    let (digits, letter) = match core.bytes().last() {
        Some(c) if c.is_ascii_lowercase() => (&core[..core.len() - 1], Some(c)),
        _ => (core, None),
    };
    let mut numbers = Vec::new();
    for (i, n) in digits.split('.').enumerate() {
        if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) || n.len() > 18 {
            return None;
        }
        // After the first, a leading zero makes the component a fraction.
        numbers.push((n.parse().ok()?, i > 0 && n.starts_with('0') && n.len() > 1));
    }
    let mut suffixes = Vec::new();
    for part in suffix_text.split('_').skip(1) {
        let name_len = part.bytes().take_while(u8::is_ascii_lowercase).count();
        let (name, num) = part.split_at(name_len);
        let rank = SUFFIXES.iter().find(|(n, _)| *n == name)?.1;
        let num = if num.is_empty() { 0 } else { num.parse().ok()? };
        suffixes.push((rank, num));
    }
    Some(Version {
        numbers,
        letter,
        suffixes,
        revision,
    })
}

fn number(a: (u64, bool), b: (u64, bool)) -> Ordering {
    if a.1 || b.1 {
        // Fractional comparison, as strings would be.
        let (sa, sb) = (a.0.to_string(), b.0.to_string());
        return sa.cmp(&sb);
    }
    a.0.cmp(&b.0)
}

/// Compare two versions.
pub fn compare(a: &Version, b: &Version) -> Ordering {
    for (x, y) in a.numbers.iter().zip(&b.numbers) {
        let o = number(*x, *y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.numbers
        .len()
        .cmp(&b.numbers.len())
        .then_with(|| a.letter.cmp(&b.letter))
        .then_with(|| {
            let n = a.suffixes.len().max(b.suffixes.len());
            for i in 0..n {
                let x = a.suffixes.get(i).copied().unwrap_or((0, 0));
                let y = b.suffixes.get(i).copied().unwrap_or((0, 0));
                let o = x.cmp(&y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        })
        .then_with(|| a.revision.cmp(&b.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_ordering() {
        let ascending = [
            "1.0_alpha",
            "1.0_beta2",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0-r10",
            "1.0_p1",
            "1.0a",
            "1.0.1",
            "1.2",
            "1.10",
            "3.1.4-r5",
            "3.3.0_git20240101",
        ];
        for w in ascending.windows(2) {
            let (a, b) = (parse(w[0]).unwrap(), parse(w[1]).unwrap());
            assert_eq!(compare(&a, &b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(
            compare(&parse("1.2.3-r0").unwrap(), &parse("1.2.3").unwrap()),
            Ordering::Equal
        );
        assert!(parse("1.0_bogus").is_none());
        assert!(parse("x").is_none());
    }
}
