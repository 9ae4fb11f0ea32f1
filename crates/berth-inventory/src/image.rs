//! An image's inventory: its layers applied in order, as the container's
//! filesystem would be — a package database file a later layer writes
//! replaces the earlier copy's packages, whiteouts and opaque directories
//! remove what lies below them — and the distribution's packages named
//! in the ecosystem of the image's `os-release` (`Debian:12`,
//! `Ubuntu:22.04`, `Alpine:v3.19`), as advisories name them.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::sbom::read::Attached;
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
    /// SBOMs attached to the image whose packages joined these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<AttachedSbom>,
}

/// An SBOM a pipeline attached to the image, as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedSbom {
    /// The referrer's manifest digest.
    pub digest: String,
    /// `SPDX-2.3`, `CycloneDX-1.5`, … (empty when it was not read).
    pub format: String,
    /// The tools that made it.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Packages it added (those the layers did not already show).
    pub packages: usize,
    /// Entries it names without a usable package URL.
    pub unnamed: usize,
    /// Why it was not read, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AttachedSbom {
    /// An attached SBOM that could not be read, and why.
    pub fn failed(digest: &str, why: String) -> AttachedSbom {
        AttachedSbom {
            digest: digest.to_owned(),
            error: Some(why),
            ..AttachedSbom::default()
        }
    }
}

impl ImageInventory {
    /// Record an attached SBOM (one that was not read).
    pub fn attach(&mut self, sbom: AttachedSbom) {
        self.attached.push(sbom);
    }

    /// Add the packages of the SBOM attached as `digest` that the image
    /// does not already show (same ecosystem, name and version), with
    /// `origin` as their path.
    pub fn attach_packages(&mut self, digest: &str, origin: &str, sbom: Attached) {
        let mut have: HashSet<(String, String, String)> = self
            .packages
            .iter()
            .map(|p| (p.ecosystem.clone(), p.name.clone(), p.version.clone()))
            .collect();
        let mut added = 0;
        for mut p in sbom.packages {
            if have.insert((p.ecosystem.clone(), p.name.clone(), p.version.clone())) {
                p.path = origin.to_owned();
                self.packages.push(p);
                added += 1;
            }
        }
        self.attached.push(AttachedSbom {
            digest: digest.to_owned(),
            format: sbom.format,
            tools: sbom.tools,
            packages: added,
            unnamed: sbom.unnamed,
            error: None,
        });
    }
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.starts_with(dir) && path[dir.len()..].starts_with('/')
}

/// The OSV ecosystem of a distribution's packages, with the package
/// format it names (`dpkg`, `apk`, `rpm`): only packages read from that
/// format's database take it.
pub fn distro_ecosystem(os: &Os) -> Option<(String, &'static str)> {
    let v = &os.version_id;
    let major = v.split('.').next().unwrap_or(v);
    Some(match os.id.as_str() {
        "debian" => (format!("Debian:{major}"), "dpkg"),
        "ubuntu" => (format!("Ubuntu:{v}"), "dpkg"),
        "alpine" => {
            let mm: Vec<&str> = v.split('.').take(2).collect();
            (format!("Alpine:v{}", mm.join(".")), "apk")
        }
        "almalinux" => (format!("AlmaLinux:{major}"), "rpm"),
        "rocky" => (format!("Rocky Linux:{major}"), "rpm"),
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
            if let Some((eco, format)) = &distro {
                if p.ecosystem == *format {
                    p.ecosystem.clone_from(eco);
                }
            }
            p
        })
        .collect();
    ImageInventory {
        os,
        packages,
        incomplete,
        attached: Vec::new(),
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
        let eco = |id: &str, v: &str| {
            distro_ecosystem(&Os {
                id: id.into(),
                version_id: v.into(),
            })
        };
        assert_eq!(
            eco("alpine", "3.19.1"),
            Some(("Alpine:v3.19".into(), "apk"))
        );
        assert_eq!(eco("rocky", "9.3"), Some(("Rocky Linux:9".into(), "rpm")));
        assert_eq!(eco("fedora", "40"), None);
    }

    #[test]
    fn only_the_distributions_own_format_takes_its_ecosystem() {
        let layer = LayerInventory {
            os: Some(Os {
                id: "almalinux".into(),
                version_id: "9.4".into(),
            }),
            databases: vec![
                "var/lib/rpm/rpmdb.sqlite".into(),
                "var/lib/dpkg/status".into(),
            ],
            packages: vec![
                pkg(
                    "rpm",
                    "openssl-libs",
                    "1:3.0.7-27.el9",
                    "var/lib/rpm/rpmdb.sqlite",
                ),
                pkg("dpkg", "stray", "1.0", "var/lib/dpkg/status"),
            ],
            ..Default::default()
        };
        let img = union(&[layer]);
        let ecos: Vec<&str> = img.packages.iter().map(|p| p.ecosystem.as_str()).collect();
        assert_eq!(ecos, ["dpkg", "AlmaLinux:9"]);
    }
}
