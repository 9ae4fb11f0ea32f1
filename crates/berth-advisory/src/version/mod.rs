//! Version ordering per ecosystem. Each scheme has its own file; this one
//! maps OSV ecosystem names to them and compares two version strings,
//! `None` when either does not parse under the ecosystem's rules (a
//! mismatch is never guessed as affected or not).

mod apk;
mod dpkg;
mod maven;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;

/// How an ecosystem orders versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian, Ubuntu (dpkg).
    Dpkg,
    /// Alpine, Wolfi, Chainguard (apk).
    Apk,
    /// Red Hat, AlmaLinux, Rocky Linux, SUSE, openSUSE… (rpm).
    Rpm,
    /// PyPI (PEP 440).
    Pep440,
    /// npm, crates.io, Go (semantic versions).
    Semver,
    /// Maven.
    Maven,
    /// Anything else: digit runs numerically, the rest as text.
    Generic,
}

impl Scheme {
    /// The scheme of an OSV ecosystem (`Debian:12`, `Alpine:v3.19`,
    /// `PyPI`, `crates.io`, …).
    pub fn of(ecosystem: &str) -> Scheme {
        let base = ecosystem.split(':').next().unwrap_or_default();
        match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" | "Alpaquita" | "BellSoft Hardened Containers" => {
                Scheme::Apk
            }
            "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Mageia"
            | "openEuler" | "Photon OS" | "Azure Linux" | "CentOS" | "Fedora" | "Oracle" => {
                Scheme::Rpm
            }
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "Go" | "Hex" | "Pub" | "SwiftURL" => Scheme::Semver,
            "Maven" => Scheme::Maven,
            _ => Scheme::Generic,
        }
    }
}

/// Compare `a` and `b` under `scheme`; `None` when either is unreadable.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    Some(match scheme {
        Scheme::Dpkg => dpkg::compare(&dpkg::parse(a)?, &dpkg::parse(b)?),
        Scheme::Apk => apk::compare(&apk::parse(a)?, &apk::parse(b)?),
        Scheme::Rpm => rpm::compare(&rpm::parse(a)?, &rpm::parse(b)?),
        Scheme::Pep440 => pep440::compare(&pep440::parse(a)?, &pep440::parse(b)?),
        Scheme::Semver => semver::compare(&semver::parse(a)?, &semver::parse(b)?),
        Scheme::Maven => maven::compare(&maven::parse(a)?, &maven::parse(b)?),
        Scheme::Generic => generic(a.trim(), b.trim())?,
    })
}

/// Whether `v` is a version under `scheme`.
pub fn valid(scheme: Scheme, v: &str) -> bool {
    compare(scheme, v, v).is_some()
}

fn generic(a: &str, b: &str) -> Option<Ordering> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let runs = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            if !c.is_ascii_alphanumeric() {
                out.push((false, String::new()));
                continue;
            }
            let d = c.is_ascii_digit();
            match out.last_mut() {
                Some((ld, r)) if *ld == d && !r.is_empty() => r.push(c),
                _ => out.push((d, c.to_string())),
            }
        }
        out.retain(|(_, r)| !r.is_empty());
        out
    };
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(&rb) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (p, q) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.1.cmp(&y.1),
        };
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    Some(ra.len().cmp(&rb.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_pick_their_scheme() {
        assert_eq!(Scheme::of("Debian:12"), Scheme::Dpkg);
        assert_eq!(Scheme::of("Ubuntu:22.04:LTS"), Scheme::Dpkg);
        assert_eq!(Scheme::of("Alpine:v3.19"), Scheme::Apk);
        assert_eq!(
            Scheme::of("Red Hat:enterprise_linux:9::appstream"),
            Scheme::Rpm
        );
        assert_eq!(Scheme::of("PyPI"), Scheme::Pep440);
        assert_eq!(Scheme::of("crates.io"), Scheme::Semver);
        assert_eq!(Scheme::of("Maven"), Scheme::Maven);
        assert_eq!(Scheme::of("RubyGems"), Scheme::Generic);
        // The same strings order differently under each scheme.
        assert_eq!(
            compare(Scheme::Dpkg, "1.0~rc1", "1.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Scheme::Pep440, "1.0rc1", "1.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Scheme::Semver, "1.0.0-rc1", "1.0.0"),
            Some(Ordering::Less)
        );
        assert_eq!(compare(Scheme::Semver, "1.0", "x"), None);
        assert_eq!(
            compare(Scheme::Generic, "2.10", "2.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(Scheme::Generic, "1.0.1", "1.0"),
            Some(Ordering::Greater)
        );
    }
}
