//! Matching an image's inventory against advisories: a package is hit
//! when an advisory's affected entry covers its ecosystem (same release
//! for distributions), names it (or, for distribution packages, its
//! source package), and its version falls in a range. Unreadable versions
//! are never guessed affected.

use berth_advisory::{ecosystem_covers, normalise_name, Advisory};
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

/// The findings of `advisories` in an image.
pub fn findings(
    manifest_digest: &str,
    inventory: &ImageInventory,
    advisories: &[Advisory],
    now: i64,
) -> Vec<FindingRow> {
    let mut out: Vec<FindingRow> = Vec::new();
    for a in advisories.iter().filter(|a| !a.is_withdrawn()) {
        for af in &a.affected {
            let Some(ap) = &af.package else { continue };
            let wanted = normalise_name(&ap.ecosystem, &ap.name);
            for p in &inventory.packages {
                if !ecosystem_covers(&ap.ecosystem, &p.ecosystem)
                    || !package_names(p).contains(&wanted)
                {
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
        let f = findings("sha256:x", &inv, &advisories, 1);
        let ids: Vec<&str> = f.iter().map(|f| f.advisory_id.as_str()).collect();
        assert_eq!(ids, ["DSA-1", "PYSEC-1"]);
        assert_eq!(f[0].fixed.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(package_names(&inv.packages[1]), ["requests"]);
    }
}
