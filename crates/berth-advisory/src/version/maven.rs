//! Maven versions, ordered as Maven's `ComparableVersion` does for the
//! common forms: items split at `.`, `-` and digit/letter changes, numbers
//! numerically, qualifiers `alpha < beta < milestone < rc < snapshot <
//! (release) < sp < others (alphabetically)`, trailing zeros and empty
//! qualifiers ignored.

use std::cmp::Ordering;

/// A version's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Number(u64),
    Qualifier(i8, String),
}

fn qualifier(q: &str, followed_by_digit: bool) -> Item {
    let rank = match q {
        "alpha" => 1,
        "a" if followed_by_digit => 1,
        "beta" => 2,
        "b" if followed_by_digit => 2,
        "milestone" => 3,
        "m" if followed_by_digit => 3,
        "rc" | "cr" => 4,
        "snapshot" => 5,
        "" | "ga" | "final" | "release" => 6,
        "sp" => 7,
        _ => 8,
    };
    Item::Qualifier(
        rank,
        if rank == 8 {
            q.to_owned()
        } else {
            String::new()
        },
    )
}

/// Read `s` (any text is some Maven version; `None` only when empty).
pub fn parse(s: &str) -> Option<Version> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut digit: Option<bool> = None;
    for c in s.chars() {
        if c == '.' || c == '-' {
            tokens.push(std::mem::take(&mut cur));
            digit = None;
            continue;
        }
        let d = c.is_ascii_digit();
        if digit.is_some_and(|prev| prev != d) {
            tokens.push(std::mem::take(&mut cur));
        }
        digit = Some(d);
        cur.push(c);
    }
    tokens.push(cur);
    let mut items = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
            items.push(Item::Number(t.parse().unwrap_or(u64::MAX)));
        } else {
            let next_digit = tokens
                .get(i + 1)
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
            items.push(qualifier(t, next_digit));
        }
    }
    while matches!(
        items.last(),
        Some(Item::Number(0)) | Some(Item::Qualifier(6, _))
    ) && items.len() > 1
    {
        items.pop();
    }
    Some(Version { items })
}

fn item(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    let pad = Item::Qualifier(6, String::new());
    let (a, b) = (a.unwrap_or(&pad), b.unwrap_or(&pad));
    match (a, b) {
        (Item::Number(x), Item::Number(y)) => x.cmp(y),
        // A number is above any qualifier, except padding compares a
        // number against "release": 1.0.1 > 1.0.
        (Item::Number(x), Item::Qualifier(r, _)) => {
            if *x == 0 && *r == 6 {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Qualifier(r, _), Item::Number(y)) => {
            if *y == 0 && *r == 6 {
                Ordering::Equal
            } else {
                Ordering::Less
            }
        }
        (Item::Qualifier(r1, s1), Item::Qualifier(r2, s2)) => r1.cmp(r2).then_with(|| s1.cmp(s2)),
    }
}

/// Compare two versions.
pub fn compare(a: &Version, b: &Version) -> Ordering {
    let n = a.items.len().max(b.items.len());
    for i in 0..n {
        let o = item(a.items.get(i), b.items.get(i));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maven_ordering() {
        let ascending = [
            "1.0-alpha1",
            "1.0-alpha2",
            "1.0-beta1",
            "1.0-M1",
            "1.0-RC1",
            "1.0-SNAPSHOT",
            "1.0",
            "1.0-sp1",
            "1.0.1",
            "1.1",
            "2.13.4.2",
            "2.15.0-rc1",
            "2.15.0",
        ];
        for w in ascending.windows(2) {
            let (a, b) = (parse(w[0]).unwrap(), parse(w[1]).unwrap());
            assert_eq!(compare(&a, &b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        let eq = |a: &str, b: &str| compare(&parse(a).unwrap(), &parse(b).unwrap());
        assert_eq!(eq("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(eq("1.0", "1.0-final"), Ordering::Equal);
        assert_eq!(eq("1.0.RELEASE", "1.0"), Ordering::Equal);
    }
}
