//! SBOMs that pipelines attach to an image (syft, trivy, cyclonedx-py…):
//! SPDX 2.x or CycloneDX JSON, read for the packages they name by package
//! URL (purl), each turned back into the ecosystem advisories use
//! (`pkg:deb/debian/libc6@…?distro=debian-12` → `Debian:12`). Packages
//! without a purl, or of a type advisories do not name, are counted, not
//! kept.

use serde_json::Value;

use crate::Package;

/// What one attached SBOM holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `SPDX-2.3`, `CycloneDX-1.5`, …
    pub format: String,
    /// The tools that made it, as the document names them.
    pub tools: Vec<String>,
    /// The packages it names with a usable purl (`path` is left empty for
    /// the caller to fill with where the SBOM came from).
    pub packages: Vec<Package>,
    /// Entries without a usable purl.
    pub unnamed: usize,
}

/// Most packages kept from one document.
const MAX_PACKAGES: usize = 200_000;

/// Read an SPDX or CycloneDX JSON document.
pub fn read(doc: &[u8]) -> Result<Attached, String> {
    let v: Value = serde_json::from_slice(doc).map_err(|e| format!("not an SBOM in JSON: {e}"))?;
    let mut out = Attached {
        format: String::new(),
        tools: Vec::new(),
        packages: Vec::new(),
        unnamed: 0,
    };
    let mut purls: Vec<&str> = Vec::new();
    if let Some(version) = v.get("spdxVersion").and_then(Value::as_str) {
        out.format = version.to_owned();
        if let Some(creators) = v
            .pointer("/creationInfo/creators")
            .and_then(Value::as_array)
        {
            out.tools = creators
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|c| c.strip_prefix("Tool:"))
                .map(|t| t.trim().to_owned())
                .collect();
        }
        for p in v
            .get("packages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let purl = p
                .get("externalRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|r| r.get("referenceType").and_then(Value::as_str) == Some("purl"))
                .and_then(|r| r.get("referenceLocator"))
                .and_then(Value::as_str);
            match purl {
                Some(u) => purls.push(u),
                None => out.unnamed += 1,
            }
        }
    } else if v.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        let spec = v.get("specVersion").and_then(Value::as_str).unwrap_or("?");
        out.format = format!("CycloneDX-{spec}");
        // 1.5 lists tools under `components`; 1.4 and earlier as an array.
        let tools = v.pointer("/metadata/tools");
        let tools = tools.and_then(Value::as_array).or_else(|| {
            tools
                .and_then(|t| t.get("components"))
                .and_then(Value::as_array)
        });
        for t in tools.into_iter().flatten() {
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
            let version = t.get("version").and_then(Value::as_str).unwrap_or_default();
            if !name.is_empty() {
                out.tools
                    .push(format!("{name} {version}").trim().to_owned());
            }
        }
        let mut stack: Vec<&Value> = v
            .get("components")
            .and_then(Value::as_array)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        while let Some(c) = stack.pop() {
            match c.get("purl").and_then(Value::as_str) {
                Some(u) => purls.push(u),
                None => out.unnamed += 1,
            }
            if let Some(inner) = c.get("components").and_then(Value::as_array) {
                stack.extend(inner);
            }
            if purls.len() > MAX_PACKAGES {
                break;
            }
        }
    } else {
        return Err("neither SPDX (spdxVersion) nor CycloneDX (bomFormat) JSON".into());
    }
    for u in purls.into_iter().take(MAX_PACKAGES) {
        match package(u) {
            Some(p) => out.packages.push(p),
            None => out.unnamed += 1,
        }
    }
    Ok(out)
}

/// Percent-decoding of one purl segment.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `pkg:type/namespace/name@version?qualifiers#subpath` as a package in
/// an advisory ecosystem; `None` when it has no version or its type is not
/// one advisories name.
pub fn package(purl: &str) -> Option<Package> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split('#').next()?;
    let (rest, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
    let (path, version) = rest.rsplit_once('@')?;
    let version = decode(version);
    let mut parts = path.trim_matches('/').split('/');
    let kind = parts.next()?.to_ascii_lowercase();
    let segments: Vec<String> = parts.map(decode).collect();
    let (name, ns) = segments.split_last()?;
    let (namespace, name) = (ns.join("/"), name.clone());
    let q = |key: &str| {
        qualifiers
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| decode(v))
    };
    // `debian-12.5` → ("debian", "12.5").
    let distro = q("distro");
    let release = distro
        .as_deref()
        .and_then(|d| d.split_once('-').map(|(_, r)| r.to_owned()));
    let major = release
        .as_deref()
        .map(|r| r.split('.').next().unwrap_or(r).to_owned());
    let (ecosystem, name, version, source) = match kind.as_str() {
        "deb" => {
            let eco = match (namespace.as_str(), &release, &major) {
                ("debian", _, Some(m)) => format!("Debian:{m}"),
                ("ubuntu", Some(r), _) => format!("Ubuntu:{r}"),
                _ => "dpkg".to_owned(),
            };
            // syft names the source package as `upstream=name` (or `name@version`).
            let source = q("upstream").map(|u| u.split('@').next().unwrap_or(&u).to_owned());
            (eco, name, version, source)
        }
        "apk" => {
            let eco = match (namespace.as_str(), &release) {
                ("alpine", Some(r)) => {
                    let mm: Vec<&str> = r.split('.').take(2).collect();
                    format!("Alpine:v{}", mm.join("."))
                }
                _ => "apk".to_owned(),
            };
            let source = q("upstream").map(|u| u.split('@').next().unwrap_or(&u).to_owned());
            (eco, name, version, source)
        }
        "rpm" => {
            let eco = match (namespace.as_str(), &major) {
                ("almalinux", Some(m)) => format!("AlmaLinux:{m}"),
                ("rocky", Some(m)) => format!("Rocky Linux:{m}"),
                _ => "rpm".to_owned(),
            };
            let version = match q("epoch") {
                Some(e) if e != "0" && !e.is_empty() => format!("{e}:{version}"),
                _ => version,
            };
            (eco, name, version, None)
        }
        "npm" if namespace.is_empty() => ("npm".to_owned(), name, version, None),
        "npm" => (
            "npm".to_owned(),
            format!("{namespace}/{name}"),
            version,
            None,
        ),
        "pypi" => ("PyPI".to_owned(), name, version, None),
        "golang" if namespace.is_empty() => ("Go".to_owned(), name, version, None),
        "golang" => (
            "Go".to_owned(),
            format!("{namespace}/{name}"),
            version,
            None,
        ),
        "cargo" => ("crates.io".to_owned(), name, version, None),
        "maven" if !namespace.is_empty() => (
            "Maven".to_owned(),
            format!("{namespace}:{name}"),
            version,
            None,
        ),
        "gem" => ("RubyGems".to_owned(), name, version, None),
        "nuget" => ("NuGet".to_owned(), name, version, None),
        "composer" if !namespace.is_empty() => (
            "Packagist".to_owned(),
            format!("{namespace}/{name}"),
            version,
            None,
        ),
        "hex" => ("Hex".to_owned(), name, version, None),
        "pub" => ("Pub".to_owned(), name, version, None),
        _ => return None,
    };
    if name.is_empty() || version.is_empty() {
        return None;
    }
    Some(Package {
        ecosystem,
        source: source.filter(|s| !s.is_empty() && *s != name),
        name,
        version,
        path: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eco(purl: &str) -> Option<(String, String, String, Option<String>)> {
        package(purl).map(|p| (p.ecosystem, p.name, p.version, p.source))
    }

    #[test]
    fn purls_become_advisory_ecosystems() {
        let t = |e: &str, n: &str, v: &str, s: Option<&str>| {
            Some((
                e.to_owned(),
                n.to_owned(),
                v.to_owned(),
                s.map(str::to_owned),
            ))
        };
        assert_eq!(
            eco("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12"),
            t("Debian:12", "libssl3", "3.0.11-1~deb12u2", Some("openssl"))
        );
        assert_eq!(
            eco("pkg:deb/ubuntu/libc6@2.35-0ubuntu3.6?distro=ubuntu-22.04&upstream=glibc%402.35"),
            t("Ubuntu:22.04", "libc6", "2.35-0ubuntu3.6", Some("glibc"))
        );
        assert_eq!(
            eco("pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&upstream=openssl&distro=alpine-3.19.1"),
            t("Alpine:v3.19", "libcrypto3", "3.1.4-r5", Some("openssl"))
        );
        assert_eq!(
            eco("pkg:rpm/almalinux/openssl-libs@3.0.7-27.el9?epoch=1&distro=almalinux-9.4"),
            t("AlmaLinux:9", "openssl-libs", "1:3.0.7-27.el9", None)
        );
        assert_eq!(
            eco("pkg:npm/%40babel/core@7.24.0"),
            t("npm", "@babel/core", "7.24.0", None)
        );
        assert_eq!(eco("pkg:pypi/pip@23.0.1"), t("PyPI", "pip", "23.0.1", None));
        assert_eq!(
            eco("pkg:golang/golang.org/x/net@v0.17.0"),
            t("Go", "golang.org/x/net", "v0.17.0", None)
        );
        assert_eq!(
            eco("pkg:maven/com.fasterxml.jackson.core/jackson-core@2.14.1?type=jar"),
            t(
                "Maven",
                "com.fasterxml.jackson.core:jackson-core",
                "2.14.1",
                None
            )
        );
        assert_eq!(
            eco("pkg:cargo/serde@1.0.200"),
            t("crates.io", "serde", "1.0.200", None)
        );
        assert_eq!(eco("pkg:generic/thing@1"), None, "no advisory names it");
        assert_eq!(eco("pkg:npm/left-pad"), None, "no version");
        assert_eq!(eco("not a purl"), None);
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("%zz%41"), "%zzA");
    }

    #[test]
    fn spdx_and_cyclonedx_documents_are_read() {
        let spdx = br#"{"spdxVersion": "SPDX-2.3", "creationInfo": {"creators": ["Organization: x", "Tool: syft-1.4.1"]},
            "packages": [
              {"name": "pip", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:pypi/pip@23.0.1"}]},
              {"name": "image"}]}"#;
        let a = read(spdx).unwrap();
        assert_eq!(
            (a.format.as_str(), a.tools.clone(), a.unnamed),
            ("SPDX-2.3", vec!["syft-1.4.1".to_owned()], 1)
        );
        assert_eq!(a.packages.len(), 1);
        let cdx = br#"{"bomFormat": "CycloneDX", "specVersion": "1.5",
            "metadata": {"tools": {"components": [{"name": "cyclonedx-py", "version": "4.6.1"}]}},
            "components": [
              {"name": "a", "purl": "pkg:pypi/a@1.0", "components": [{"name": "b", "purl": "pkg:pypi/b@2.0"}]},
              {"name": "c", "purl": "pkg:generic/c@1"}]}"#;
        let a = read(cdx).unwrap();
        assert_eq!(a.format, "CycloneDX-1.5");
        assert_eq!(a.tools, ["cyclonedx-py 4.6.1"]);
        let mut names: Vec<&str> = a.packages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!((names, a.unnamed), (vec!["a", "b"], 1));
        assert!(read(b"{}").is_err());
        assert!(read(b"[").is_err());
    }
}
