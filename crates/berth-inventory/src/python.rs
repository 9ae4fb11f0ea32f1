//! Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`
//! (or an `*.egg-info` file), whose headers name the project and version.

use crate::Package;

/// Whether `path` is a Python distribution's metadata file.
pub fn is_metadata(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || (path.ends_with(".egg-info") && !path.contains("/.egg-info"))
}

/// The project the metadata names.
pub fn parse(text: &str, path: &str) -> Option<Package> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        match line.split_once(':') {
            Some(("Name", v)) => name = Some(v.trim()),
            Some(("Version", v)) => version = Some(v.trim()),
            _ => {}
        }
    }
    let (name, version) = (
        name.filter(|n| !n.is_empty())?,
        version.filter(|v| !v.is_empty())?,
    );
    Some(Package {
        ecosystem: "PyPI".into(),
        name: name.to_owned(),
        version: version.to_owned(),
        source: None,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers_are_read() {
        assert!(is_metadata(
            "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA"
        ));
        assert!(is_metadata(
            "usr/lib/python3/site-packages/six-1.16.0.egg-info"
        ));
        assert!(!is_metadata("app/README.md"));
        let p = parse(
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n\nVersion: 9\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("requests", "2.28.1")
        );
        assert!(parse("Name: x\n", "x").is_none());
    }
}
