//! Matching an image's inventory against advisories: a package is hit
//! when an advisory's affected entry covers its ecosystem (same release
//! for distributions), names it (or, for distribution packages, its
//! source package), and its version falls in a range. Unreadable versions
//! are never guessed affected.

use std::collections::HashMap;

use berth_advisory::{ecosystem_covers, normalise_name, Advisory, Affected};
use berth_inventory::image::ImageInventory;
use berth_inventory::Package;
use berth_meta::vulnerability::FindingRow;

/// The names a package is indexed and matched under.
pub fn package_names(p: &Package) -> Vec<String> {
    let mut names = vec![normalise_name(&p.ecosystem, &p.name)];
    if let Some(s) = &p.source {
        let s = normalise_name(&p.ecosystem, s);
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

/// The names an advisory affects.
pub fn advisory_names(a: &Advisory) -> Vec<String> {
    let mut names: Vec<String> = a
        .affected
        .iter()
        .filter_map(|af| af.package.as_ref())
        .map(|p| normalise_name(&p.ecosystem, &p.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Advisories by the names they affect, so that matching an image costs
/// a lookup per package, whatever the number of advisories.
pub struct AdvisoryIndex<'a> {
    by_name: HashMap<String, Vec<(&'a Advisory, &'a Affected)>>,
}

impl<'a> AdvisoryIndex<'a> {
    /// Index `advisories` (withdrawn ones left out).
    pub fn new(advisories: &'a [Advisory]) -> Self {
        let mut by_name: HashMap<String, Vec<(&Advisory, &Affected)>> = HashMap::new();
        for a in advisories.iter().filter(|a| !a.is_withdrawn()) {
            for af in &a.affected {
                if let Some(ap) = &af.package {
                    by_name
                        .entry(normalise_name(&ap.ecosystem, &ap.name))
                        .or_default()
                        .push((a, af));
                }
            }
        }
        AdvisoryIndex { by_name }
    }
}

/// The findings of the indexed advisories in an image, by advisory then
/// package.
pub fn findings(
    manifest_digest: &str,
    inventory: &ImageInventory,
    index: &AdvisoryIndex<'_>,
    now: i64,
) -> Vec<FindingRow> {
    let mut out: Vec<FindingRow> = Vec::new();
    for p in &inventory.packages {
        for name in package_names(p) {
            let Some(candidates) = index.by_name.get(&name) else {
                continue;
            };
            for (a, af) in candidates {
                let covers = af
                    .package
                    .as_ref()
                    .is_some_and(|ap| ecosystem_covers(&ap.ecosystem, &p.ecosystem));
                if !covers {
                    continue;
                }
                let Some(hit) = af.hit(&p.ecosystem, &p.version) else {
                    continue;
                };
                let dup = out.iter().any(|f| {
                    f.advisory_id == a.id && f.package == p.name && f.version == p.version
                });
                if dup {
                    continue;
                }
                out.push(FindingRow {
                    manifest_digest: manifest_digest.to_owned(),
                    advisory_id: a.id.clone(),
                    ecosystem: p.ecosystem.clone(),
                    package: p.name.clone(),
                    version: p.version.clone(),
                    fixed: hit.fixed,
                    severity: a.severity_for(Some(af)).as_str().to_owned(),
                    path: p.path.clone(),
                    found_at: now,
                });
            }
        }
    }
    out.sort_by(|x, y| (&x.advisory_id, &x.package).cmp(&(&y.advisory_id, &y.package)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_packages_and_releases_match() {
        let inv = ImageInventory {
            os: None,
            packages: vec![
                Package {
                    ecosystem: "Debian:12".into(),
                    name: "libssl3".into(),
                    version: "3.0.11-1~deb12u1".into(),
                    source: Some("openssl".into()),
                    path: "var/lib/dpkg/status".into(),
                },
                Package {
                    ecosystem: "PyPI".into(),
                    name: "Requests".into(),
                    version: "2.28.1".into(),
                    source: None,
                    path: "x/METADATA".into(),
                },
            ],
            incomplete: false,
            attached: Vec::new(),
        };
        let adv = |doc: &str| berth_advisory::parse(doc.as_bytes()).unwrap();
        let advisories = [
            adv(
                r#"{"id":"DSA-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}"#,
            ),
            adv(
                r#"{"id":"DSA-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:11","name":"openssl"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#,
            ),
            adv(
                r#"{"id":"PYSEC-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31.0"}]}]}]}"#,
            ),
            adv(
                r#"{"id":"W-1","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#,
            ),
        ];
        let f = findings("sha256:x", &inv, &AdvisoryIndex::new(&advisories), 1);
        let ids: Vec<&str> = f.iter().map(|f| f.advisory_id.as_str()).collect();
        assert_eq!(ids, ["DSA-1", "PYSEC-1"]);
        assert_eq!(f[0].fixed.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(package_names(&inv.packages[1]), ["requests"]);
    }
}
