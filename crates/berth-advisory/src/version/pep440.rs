//! Python versions (PEP 440): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
//! normalised as pip reads them (`alpha`→`a`, `c`/`pre`/`preview`→`rc`,
//! `rev`/`r`/`-N`→post, optional separators, a leading `v`).

use std::cmp::Ordering;

/// A PEP 440 version's sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (-1 dev-only, 0 a, 1 b, 2 rc, 3 final) and its number.
    pre: (i8, u64),
    /// -1 when absent.
    post: i64,
    /// `u64::MAX` when absent (a dev release sorts first).
    dev: u64,
    local: Vec<Local>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    Text(String),
    Number(u64),
}

fn number(s: &str) -> Option<(u64, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return Some((0, s));
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn strip_sep(s: &str) -> &str {
    s.strip_prefix(['.', '-', '_']).unwrap_or(s)
}

/// Read `s`; `None` when it is no PEP 440 version.
pub fn parse(s: &str) -> Option<Version> {
    let lower = s.trim().to_ascii_lowercase();
    let mut s = lower.strip_prefix('v').unwrap_or(&lower);
    let (public, local) = match s.split_once('+') {
        Some((p, l)) => (p, Some(l)),
        None => (s, None),
    };
    s = public;
    let mut epoch = 0;
    if let Some((e, rest)) = s.split_once('!') {
        epoch = e.parse().ok()?;
        s = rest;
    }
    let mut release = Vec::new();
    loop {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 18 {
            return None;
        }
        release.push(s[..n].parse().ok()?);
        s = &s[n..];
        match s.strip_prefix('.') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => s = rest,
            _ => break,
        }
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let mut pre = None;
    let t = strip_sep(s);
    for (names, rank) in [
        (&["alpha", "a"][..], 0),
        (&["beta", "b"][..], 1),
        (&["preview", "pre", "rc", "c"][..], 2),
    ] {
        if let Some(name) = names.iter().find(|n| t.starts_with(**n)) {
            let (n, rest) = number(strip_sep(&t[name.len()..]))?;
            pre = Some((rank, n));
            s = rest;
            break;
        }
    }
    let mut post = -1i64;
    let t = strip_sep(s);
    if let Some(name) = ["post", "rev", "r"].iter().find(|n| t.starts_with(**n)) {
        let (n, rest) = number(strip_sep(&t[name.len()..]))?;
        post = i64::try_from(n).ok()?;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('-') {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let (n, rest) = number(rest)?;
            post = i64::try_from(n).ok()?;
            s = rest;
        }
    }
    let mut dev = u64::MAX;
    let t = strip_sep(s);
    if let Some(rest) = t.strip_prefix("dev") {
        let (n, rest) = number(strip_sep(rest))?;
        dev = n;
        s = rest;
    }
    if !s.is_empty() {
        return None;
    }
    let pre = match pre {
        Some(p) => p,
        None if post < 0 && dev != u64::MAX => (-1, 0),
        None => (3, 0),
    };
    let local = local
        .map(|l| {
            l.split(['.', '-', '_'])
                .map(|p| match p.parse() {
                    Ok(n) => Local::Number(n),
                    Err(_) => Local::Text(p.to_owned()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Version {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// Compare two versions.
pub fn compare(a: &Version, b: &Version) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep440_ordering() {
        // The ordering example of PEP 440, ascending.
        let ascending = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in ascending.windows(2) {
            let (a, b) = (parse(w[0]).unwrap(), parse(w[1]).unwrap());
            assert_eq!(compare(&a, &b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        let eq = |a: &str, b: &str| compare(&parse(a).unwrap(), &parse(b).unwrap());
        assert_eq!(eq("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(eq("1.0-alpha-1", "1.0a1"), Ordering::Equal);
        assert_eq!(eq("v2.31.0", "2.31"), Ordering::Equal);
        assert_eq!(eq("1.0-1", "1.0.post1"), Ordering::Equal);
        assert_eq!(eq("2.0RC1", "2.0rc1"), Ordering::Equal);
        assert!(parse("1.0 beta").is_none());
        assert!(parse("hello").is_none());
    }
}
