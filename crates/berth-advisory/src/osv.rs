//! OSV documents (the Open Source Vulnerability schema, as osv.dev, GitHub,
//! PyPA, Go, RustSec, Debian, Ubuntu and Alpine publish them), read as
//! published, and the question they answer: does this advisory affect
//! this package at this version, and what version fixes it.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::Value;

use crate::cvss::{v2_score, v3_score, Severity};
use crate::version::{compare, Scheme};

/// Largest document read.
pub const MAX_DOCUMENT: usize = 8 * 1024 * 1024;

/// Why a document was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsvError {
    /// Not an OSV document.
    #[error("not an OSV advisory: {0}")]
    Invalid(String),
    /// Too large.
    #[error("an OSV document over {MAX_DOCUMENT} bytes")]
    TooLarge,
}

/// An advisory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Advisory {
    /// Its id (`GHSA-…`, `CVE-…`, `PYSEC-…`, `DSA-…`, `RUSTSEC-…`).
    pub id: String,
    /// When it last changed (RFC 3339; required by the schema: a
    /// re-import with the same value is a no-op).
    pub modified: String,
    /// When it was published.
    #[serde(default)]
    pub published: Option<String>,
    /// When it was withdrawn: it then affects nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Severities of the whole advisory.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// The packages it affects.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Links.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Database-specific facts (GitHub's `severity`).
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// A severity entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SeverityEntry {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector or rating.
    pub score: String,
}

/// An affected package.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Affected {
    /// The package.
    #[serde(default)]
    pub package: Option<Package>,
    /// Severities for this package.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Versions listed one by one.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Database-specific facts.
    #[serde(default)]
    pub database_specific: Option<Value>,
    /// Ecosystem-specific facts.
    #[serde(default)]
    pub ecosystem_specific: Option<Value>,
}

/// A package named by an advisory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Package {
    /// OSV ecosystem (`Debian:12`, `PyPI`, …).
    #[serde(default)]
    pub ecosystem: String,
    /// Its name in the ecosystem.
    #[serde(default)]
    pub name: String,
    /// Its package URL, when given.
    #[serde(default)]
    pub purl: Option<String>,
}

/// A range of versions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Range {
    /// `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events in order of versions.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Event {
    /// Affected from this version (`0`: from the start).
    #[serde(default)]
    pub introduced: Option<String>,
    /// Not affected from this version.
    #[serde(default)]
    pub fixed: Option<String>,
    /// Affected up to and including this version.
    #[serde(default)]
    pub last_affected: Option<String>,
    /// Not affected from this version (an upper bound).
    #[serde(default)]
    pub limit: Option<String>,
}

/// A link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `WEB`, `FIX`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The address.
    pub url: String,
}

/// Read a document as published (one advisory).
pub fn parse(bytes: &[u8]) -> Result<Advisory, OsvError> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(OsvError::TooLarge);
    }
    let a: Advisory =
        serde_json::from_slice(bytes).map_err(|e| OsvError::Invalid(e.to_string()))?;
    if a.id.trim().is_empty() || a.id.len() > 128 || a.id.chars().any(char::is_control) {
        return Err(OsvError::Invalid(
            "an advisory needs an id of 1 to 128 characters".into(),
        ));
    }
    if a.modified.trim().is_empty() || a.modified.len() > 64 {
        return Err(OsvError::Invalid(format!(
            "advisory {}: `modified` must be its last change time",
            a.id
        )));
    }
    Ok(a)
}

/// Whether an advisory's ecosystem covers a package's: the same base,
/// and the same release when the advisory names one (`Debian:12`
/// covers `Debian:12` only; `PyPI` covers `PyPI`).
pub fn ecosystem_covers(advisory: &str, package: &str) -> bool {
    let (ab, ar) = advisory.split_once(':').unwrap_or((advisory, ""));
    let (pb, pr) = package.split_once(':').unwrap_or((package, ""));
    if ab != pb {
        return false;
    }
    if ar.is_empty() {
        return true;
    }
    // Alpine writes `v3.19`, os-release `3.19.1`; Ubuntu `22.04:LTS`.
    let norm = |r: &str| {
        r.split(':')
            .next()
            .unwrap_or(r)
            .trim_start_matches('v')
            .to_owned()
    };
    let (ar, pr) = (norm(ar), norm(pr));
    pr == ar || pr.starts_with(&format!("{ar}.")) || pr.starts_with(&format!("{ar}:"))
}

/// A package name as its ecosystem compares names (PyPI's normalised form,
/// case-insensitive where the ecosystem is).
pub fn normalise_name(ecosystem: &str, name: &str) -> String {
    match ecosystem.split(':').next().unwrap_or_default() {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.trim().chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.push(c.to_ascii_lowercase());
                }
            }
            out
        }
        "Maven" | "Go" | "crates.io" | "npm" => name.trim().to_owned(),
        _ => name.trim().to_ascii_lowercase(),
    }
}

/// The verdict for one installed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The first version that fixes it, above the installed one, if known.
    pub fixed: Option<String>,
}

impl Affected {
    /// Whether `version` is affected: `Some(hit)` when it is, `None` when
    /// not — including when the version cannot be read under the
    /// ecosystem's rules (never guessed as affected).
    pub fn hit(&self, ecosystem: &str, version: &str) -> Option<Hit> {
        let scheme = Scheme::of(ecosystem);
        let mut listed = self.versions.iter().any(|v| v == version);
        let mut fixed: Option<String> = None;
        for r in &self.ranges {
            let scheme = match r.kind.as_str() {
                "SEMVER" => Scheme::Semver,
                "ECOSYSTEM" => scheme,
                _ => continue,
            };
            if let Some(f) = range_hit(scheme, &r.events, version) {
                listed = true;
                if let Some(f) = f {
                    let better = match &fixed {
                        None => true,
                        Some(old) => compare(scheme, &f, old) == Some(Ordering::Less),
                    };
                    if better {
                        fixed = Some(f);
                    }
                }
            }
        }
        listed.then_some(Hit { fixed })
    }
}

/// OSV's evaluation of one range: events in version order, `introduced`
/// turns affected on, `fixed` (≤ version) and `last_affected` (< version)
/// off; `limit` bounds it. `Some(fixed-above)` when affected.
fn range_hit(scheme: Scheme, events: &[Event], version: &str) -> Option<Option<String>> {
    let at = |e: &Event| -> Option<String> {
        e.introduced
            .clone()
            .or_else(|| e.fixed.clone())
            .or_else(|| e.last_affected.clone())
            .or_else(|| e.limit.clone())
    };
    let cmp = |a: &str, b: &str| -> Option<Ordering> {
        if a == "0" {
            return Some(if b == "0" {
                Ordering::Equal
            } else {
                Ordering::Less
            });
        }
        if b == "0" {
            return Some(Ordering::Greater);
        }
        compare(scheme, a, b)
    };
    // Every event version must be readable to decide.
    let mut sorted: Vec<(&Event, String)> = Vec::with_capacity(events.len());
    for e in events {
        let v = at(e)?;
        cmp(&v, &v)?;
        sorted.push((e, v));
    }
    cmp(version, version)?;
    let mut failed = false;
    sorted.sort_by(|a, b| {
        cmp(&a.1, &b.1).unwrap_or_else(|| {
            failed = true;
            Ordering::Equal
        })
    });
    if failed {
        return None;
    }
    let mut affected = false;
    for (e, v) in &sorted {
        let o = cmp(version, v)?;
        if e.introduced.is_some() {
            if o != Ordering::Less {
                affected = true;
            }
        } else if e.fixed.is_some() {
            if o != Ordering::Less {
                affected = false;
            }
        } else if e.last_affected.is_some() {
            if o == Ordering::Greater {
                affected = false;
            }
        } else if e.limit.is_some() && o != Ordering::Less {
            affected = false;
        }
    }
    if !affected {
        return None;
    }
    let fixed = sorted
        .iter()
        .filter(|(e, _)| e.fixed.is_some())
        .find(|(_, v)| cmp(version, v) == Some(Ordering::Less))
        .map(|(_, v)| v.clone());
    Some(fixed)
}

impl Advisory {
    /// The advisory's severity for `affected` (or the whole advisory):
    /// the highest of its CVSS v3/v2 scores and its textual ratings.
    pub fn severity_for(&self, affected: Option<&Affected>) -> Severity {
        let mut best = Severity::Unknown;
        let entries = self
            .severity
            .iter()
            .chain(affected.map(|a| a.severity.as_slice()).unwrap_or_default());
        for e in entries {
            let s = match e.kind.as_str() {
                "CVSS_V3" => v3_score(&e.score).map(Severity::of_score),
                "CVSS_V2" => v2_score(&e.score).map(Severity::of_score),
                _ => Severity::parse(&e.score),
            };
            best = best.max(s.unwrap_or(Severity::Unknown));
        }
        let texts = [
            self.database_specific.as_ref(),
            affected.and_then(|a| a.database_specific.as_ref()),
            affected.and_then(|a| a.ecosystem_specific.as_ref()),
        ];
        for t in texts.into_iter().flatten() {
            if let Some(s) = t
                .get("severity")
                .and_then(Value::as_str)
                .and_then(Severity::parse)
            {
                best = best.max(s);
            }
        }
        best
    }

    /// Whether it is withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}
