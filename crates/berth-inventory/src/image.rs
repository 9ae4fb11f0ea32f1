//! An image's inventory: its layers applied in order, as the container's
//! filesystem would be — a package database file a later layer writes
//! replaces the earlier copy's packages, whiteouts and opaque directories
//! remove what lies below them — and the distribution's packages named
//! in the ecosystem of the image's `os-release` (`Debian:12`,
//! `Ubuntu:22.04`, `Alpine:v3.19`), as advisories name them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{LayerInventory, Os, Package};

/// What an image holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInventory {
    /// The distribution.
    pub os: Option<Os>,
    /// Packages, by file then order found.
    pub packages: Vec<Package>,
    /// Whether a layer's walk stopped early (the inventory may miss some).
    pub incomplete: bool,
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.starts_with(dir) && path[dir.len()..].starts_with('/')
}

/// The OSV ecosystem of a distribution's packages.
pub fn distro_ecosystem(os: &Os) -> Option<String> {
    let v = &os.version_id;
    Some(match os.id.as_str() {
        "debian" => format!("Debian:{}", v.split('.').next().unwrap_or(v)),
        "ubuntu" => format!("Ubuntu:{v}"),
        "alpine" => {
            let mm: Vec<&str> = v.split('.').take(2).collect();
            format!("Alpine:v{}", mm.join("."))
        }
        _ => return None,
    })
}

/// Apply `layers` (bottom first).
pub fn union(layers: &[LayerInventory]) -> ImageInventory {
    let mut files: BTreeMap<String, Vec<Package>> = BTreeMap::new();
    let mut os = None;
    let mut incomplete = false;
    for l in layers {
        for d in &l.opaque {
            files.retain(|p, _| !(under(p, d) && p != d));
        }
        for w in &l.whiteouts {
            files.retain(|p, _| !under(p, w));
            if under("etc/os-release", w) {
                os = None;
            }
        }
        for db in &l.databases {
            files.insert(db.clone(), Vec::new());
        }
        for p in &l.packages {
            files.entry(p.path.clone()).or_default().push(p.clone());
        }
        if l.os.is_some() {
            os.clone_from(&l.os);
        }
        incomplete |= l.stopped.is_some();
    }
    let distro = os.as_ref().and_then(distro_ecosystem);
    let packages = files
        .into_values()
        .flatten()
        .map(|mut p| {
            if p.ecosystem == "dpkg" || p.ecosystem == "apk" {
                if let Some(d) = &distro {
                    p.ecosystem.clone_from(d);
                }
            }
            p
        })
        .collect();
    ImageInventory {
        os,
        packages,
        incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(eco: &str, name: &str, version: &str, path: &str) -> Package {
        Package {
            ecosystem: eco.into(),
            name: name.into(),
            version: version.into(),
            source: None,
            path: path.into(),
        }
    }

    #[test]
    fn later_layers_replace_and_delete() {
        let base = LayerInventory {
            os: Some(Os {
                id: "debian".into(),
                version_id: "12".into(),
            }),
            databases: vec![
                "var/lib/dpkg/status".into(),
                "app/node_modules/a/package.json".into(),
                "app/node_modules/b/package.json".into(),
            ],
            packages: vec![
                pkg("dpkg", "libssl3", "3.0.9-1", "var/lib/dpkg/status"),
                pkg("dpkg", "curl", "7.88.1-10", "var/lib/dpkg/status"),
                pkg("npm", "a", "1.0.0", "app/node_modules/a/package.json"),
                pkg("npm", "b", "1.0.0", "app/node_modules/b/package.json"),
            ],
            ..Default::default()
        };
        let upgrade = LayerInventory {
            databases: vec!["var/lib/dpkg/status".into()],
            packages: vec![pkg(
                "dpkg",
                "libssl3",
                "3.0.11-1~deb12u2",
                "var/lib/dpkg/status",
            )],
            whiteouts: vec!["app/node_modules/a".into()],
            ..Default::default()
        };
        let img = union(&[base.clone(), upgrade]);
        let got: Vec<(&str, &str, &str)> = img
            .packages
            .iter()
            .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("npm", "b", "1.0.0"),
                ("Debian:12", "libssl3", "3.0.11-1~deb12u2")
            ]
        );
        let opaque = LayerInventory {
            opaque: vec!["app".into()],
            ..Default::default()
        };
        let img = union(&[base, opaque]);
        assert_eq!(img.packages.len(), 2, "only the dpkg packages stay");
        assert_eq!(
            distro_ecosystem(&Os {
                id: "alpine".into(),
                version_id: "3.19.1".into()
            })
            .as_deref(),
            Some("Alpine:v3.19")
        );
    }
}
