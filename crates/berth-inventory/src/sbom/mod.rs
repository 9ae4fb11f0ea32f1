//! An image's inventory as the two SBOM formats tools exchange: SPDX 2.3
//! and CycloneDX 1.5 (JSON). Pure: the caller passes the image's name,
//! digest and the time; identifiers derive from the digest, so the same
//! image yields the same document apart from its creation time. [`read`]
//! goes the other way: the packages an attached SBOM names.

mod cyclonedx;
pub mod read;
mod spdx;

pub use cyclonedx::cyclonedx;
pub use spdx::spdx;

use crate::image::ImageInventory;
use crate::Package;

/// What a document describes besides the inventory.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The repository (`team/app`).
    pub repository: &'a str,
    /// The image manifest's digest (`sha256:…`).
    pub digest: &'a str,
    /// When the document is made, RFC 3339 (`2026-12-06T12:00:00Z`).
    pub created: &'a str,
    /// The producing tool's version.
    pub tool_version: &'a str,
}

/// The inventory to describe.
pub type Inventory = ImageInventory;

/// Percent-encode a purl segment (letters, digits and `.-_~` stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package URL (purl) of a package, when its ecosystem has a type.
pub fn purl(p: &Package) -> Option<String> {
    let version = encode(&p.version);
    let (eco, release) = p
        .ecosystem
        .split_once(':')
        .map_or((p.ecosystem.as_str(), None), |(e, r)| (e, Some(r)));
    let distro = |id: &str| {
        release
            .map(|r| format!("?distro={id}-{}", encode(r.trim_start_matches('v'))))
            .unwrap_or_default()
    };
    Some(match eco {
        "PyPI" => format!(
            "pkg:pypi/{}@{version}",
            encode(&p.name.to_ascii_lowercase().replace('_', "-"))
        ),
        "npm" => match p.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, name)) => {
                format!("pkg:npm/%40{}/{}@{version}", encode(scope), encode(name))
            }
            None => format!("pkg:npm/{}@{version}", encode(&p.name)),
        },
        "Go" => {
            let path: Vec<String> = p.name.split('/').map(encode).collect();
            format!("pkg:golang/{}@{version}", path.join("/"))
        }
        "crates.io" => format!("pkg:cargo/{}@{version}", encode(&p.name)),
        "Maven" => {
            let (group, artifact) = p.name.split_once(':')?;
            format!("pkg:maven/{}/{}@{version}", encode(group), encode(artifact))
        }
        "Debian" => format!(
            "pkg:deb/debian/{}@{version}{}",
            encode(&p.name),
            distro("debian")
        ),
        "Ubuntu" => format!(
            "pkg:deb/ubuntu/{}@{version}{}",
            encode(&p.name),
            distro("ubuntu")
        ),
        "Alpine" => format!(
            "pkg:apk/alpine/{}@{version}{}",
            encode(&p.name),
            distro("alpine")
        ),
        "Rocky Linux" | "AlmaLinux" | "Red Hat" | "rpm" => {
            // The epoch is a qualifier in an rpm purl, not in its version.
            let (epoch, v) = match p.version.split_once(':') {
                Some((e, v)) => (Some(e), v),
                None => (None, p.version.as_str()),
            };
            let namespace = match eco {
                "Rocky Linux" => "rocky/",
                "AlmaLinux" => "almalinux/",
                "Red Hat" => "redhat/",
                _ => "",
            };
            let mut q: Vec<String> = epoch
                .map(|e| format!("epoch={}", encode(e)))
                .into_iter()
                .collect();
            if !namespace.is_empty() {
                q.extend(release.map(|r| {
                    format!(
                        "distro={}{}",
                        namespace.trim_end_matches('/'),
                        encode(&format!("-{r}"))
                    )
                }));
            }
            let q = if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            };
            format!("pkg:rpm/{namespace}{}@{}{q}", encode(&p.name), encode(v))
        }
        "dpkg" => format!("pkg:deb/{}@{version}", encode(&p.name)),
        "apk" => format!("pkg:apk/{}@{version}", encode(&p.name)),
        _ => return None,
    })
}

/// A UUID-shaped identifier derived from the digest's hex.
fn uuid_of(digest: &str) -> String {
    let hex: String = digest
        .split_once(':')
        .map_or(digest, |(_, h)| h)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    // Version 4 and the RFC 4122 variant, as validators expect.
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests;
