//! Vulnerability advisories, without I/O: OSV documents as published,
//! version ordering per ecosystem (dpkg, apk, rpm, PEP 440, semver,
//! Maven), OSV range evaluation, and severities from CVSS vectors. The
//! core stores advisories and matches them against inventories; this
//! crate only decides whether one version is affected, and reads the
//! bundles (JSON or tar layers) an advisory feed artifact carries.
//!
//! Layering: a pure crate at the bottom, beside `berth-oci`; fuzz target
//! `advisory`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod cvss;
pub mod osv;
pub mod version;

pub use cvss::Severity;
pub use osv::{ecosystem_covers, normalise_name, parse, Advisory, Affected, Hit, OsvError};
pub use version::{compare, Scheme};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_advisory_affects_only_its_range() {
        let a = parse(include_bytes!("../testdata/GHSA-j8r2-6x86-q33q.json")).unwrap();
        assert_eq!(a.aliases, ["CVE-2023-32681"]);
        let affected = &a.affected[0];
        assert_eq!(
            affected.hit("PyPI", "2.28.1"),
            Some(Hit {
                fixed: Some("2.31.0".into())
            })
        );
        assert_eq!(
            affected.hit("PyPI", "2.3.0").map(|h| h.fixed),
            Some(Some("2.31.0".into()))
        );
        assert_eq!(affected.hit("PyPI", "2.31.0"), None);
        assert_eq!(affected.hit("PyPI", "2.2.1"), None);
        assert_eq!(affected.hit("PyPI", "not a version"), None);
        // CVSS 3.1 AV:N/AC:H/PR:N/UI:R/S:C/C:H = 6.1 (medium); GitHub says MODERATE.
        assert_eq!(a.severity_for(Some(affected)), Severity::Medium);
        assert_eq!(
            normalise_name("PyPI", "Requests_OAuthlib"),
            "requests-oauthlib"
        );
    }

    #[test]
    fn ranges_follow_osv_evaluation() {
        let doc = br#"{"id":"DSA-0000-1","modified":"2024-01-01T00:00:00Z","affected":[
          {"package":{"ecosystem":"Debian:12","name":"openssl"},
           "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]},
          {"package":{"ecosystem":"npm","name":"x"},
           "ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"last_affected":"1.4.2"},
                                               {"introduced":"2.0.0"},{"fixed":"2.1.0"}]}],
           "versions":["0.9.9"]},
          {"package":{"ecosystem":"Go","name":"m"},
           "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"1.2.0"}]}]}]}"#;
        let a = parse(doc).unwrap();
        // The schema requires `modified` (re-imports compare it).
        let bare =
            String::from_utf8_lossy(doc).replace(r#""modified":"2024-01-01T00:00:00Z","#, "");
        assert!(parse(bare.as_bytes()).is_err());
        let deb = &a.affected[0];
        assert!(deb.hit("Debian:12", "3.0.11-1~deb12u1").is_some());
        assert!(deb.hit("Debian:12", "1:0.9").is_none(), "an epoch is above");
        assert!(deb.hit("Debian:12", "3.0.11-1~deb12u2").is_none());
        assert!(deb.hit("Debian:12", "3.0.13-1~deb12u1").is_none());
        let npm = &a.affected[1];
        assert!(npm.hit("npm", "1.4.2").is_some());
        assert!(npm.hit("npm", "1.4.3").is_none());
        assert_eq!(
            npm.hit("npm", "2.0.5").unwrap().fixed.as_deref(),
            Some("2.1.0")
        );
        assert!(npm.hit("npm", "0.9.9").is_some(), "listed one by one");
        assert!(npm.hit("npm", "3.0.0").is_none());
        let go = &a.affected[2];
        assert!(go.hit("Go", "v1.1.9").is_some());
        assert!(go.hit("Go", "v1.2.0").is_none());
        assert!(ecosystem_covers("Debian:12", "Debian:12"));
        assert!(!ecosystem_covers("Debian:11", "Debian:12"));
        assert!(ecosystem_covers("Alpine:v3.19", "Alpine:3.19.1"));
        assert!(!ecosystem_covers("Alpine:v3.1", "Alpine:3.19.1"));
        assert!(ecosystem_covers("PyPI", "PyPI"));
        assert!(ecosystem_covers("Ubuntu:22.04:LTS", "Ubuntu:22.04"));
        assert!(!ecosystem_covers("Ubuntu:22.04:LTS", "Ubuntu:24.04"));
        assert!(parse(b"{}").is_err());
        assert!(parse(br#"{"id":""}"#).is_err());
    }
}
