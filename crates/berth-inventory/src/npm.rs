//! npm packages: each `node_modules/<name>/package.json` (and scoped
//! `node_modules/@scope/<name>/package.json`).

use serde::Deserialize;

use crate::Package;

/// Whether `path` is an installed package's manifest.
pub fn is_manifest(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some(i) = rest.rfind("node_modules/") else {
        return false;
    };
    let name = &rest[i + "node_modules/".len()..];
    match name.split_once('/') {
        None => !name.is_empty() && !name.starts_with('@') && !name.starts_with('.'),
        Some((scope, n)) => scope.starts_with('@') && !n.is_empty() && !n.contains('/'),
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
}

/// The package a manifest names.
pub fn parse(bytes: &[u8], path: &str) -> Option<Package> {
    let m: Manifest = serde_json::from_slice(bytes).ok()?;
    let (name, version) = (
        m.name.filter(|n| !n.is_empty() && n.len() <= 214)?,
        m.version.filter(|v| !v.is_empty())?,
    );
    Some(Package {
        ecosystem: "npm".into(),
        name,
        version,
        source: None,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_package_manifests() {
        assert!(is_manifest("app/node_modules/lodash/package.json"));
        assert!(is_manifest("app/node_modules/@babel/core/package.json"));
        assert!(is_manifest(
            "app/node_modules/a/node_modules/b/package.json"
        ));
        assert!(!is_manifest("app/package.json"));
        assert!(!is_manifest("app/node_modules/lodash/fp/package.json"));
        assert!(!is_manifest("app/node_modules/@babel/package.json"));
        let p = parse(br#"{"name":"lodash","version":"4.17.20"}"#, "p").unwrap();
        assert_eq!(p.version, "4.17.20");
        assert!(parse(br#"{"name":"x"}"#, "p").is_none());
        assert!(parse(b"not json", "p").is_none());
    }
}
