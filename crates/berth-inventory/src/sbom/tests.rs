use super::*;
use crate::Os;

fn pkg(ecosystem: &str, name: &str, version: &str) -> Package {
    Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source: None,
        path: "var/lib/dpkg/status".into(),
    }
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn subject() -> Subject<'static> {
    Subject {
        repository: "team/app",
        digest: DIGEST,
        created: "2026-12-06T12:00:00Z",
        tool_version: "0.1.0",
    }
}

fn inventory() -> Inventory {
    Inventory {
        os: Some(Os {
            id: "debian".into(),
            version_id: "12".into(),
        }),
        packages: vec![
            pkg("Debian:12", "libc6", "2.36-9+deb12u4"),
            pkg("PyPI", "Foo_Bar", "1.0"),
            pkg("npm", "@scope/left-pad", "1.3.0"),
            pkg("Go", "github.com/x/y", "v1.2.3"),
            pkg("crates.io", "serde", "1.0.200"),
            pkg("Maven", "org.apache:commons-text", "1.9"),
            pkg("Alpine:v3.19", "musl", "1.2.4-r2"),
            pkg("Unknown", "x", "1"),
        ],
        incomplete: false,
        attached: Vec::new(),
    }
}

#[test]
fn purls_follow_each_types_rules() {
    let purls: Vec<Option<String>> = inventory().packages.iter().map(purl).collect();
    assert_eq!(
        purls,
        [
            Some("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12".to_owned()),
            Some("pkg:pypi/foo-bar@1.0".into()),
            Some("pkg:npm/%40scope/left-pad@1.3.0".into()),
            Some("pkg:golang/github.com/x/y@v1.2.3".into()),
            Some("pkg:cargo/serde@1.0.200".into()),
            Some("pkg:maven/org.apache/commons-text@1.9".into()),
            Some("pkg:apk/alpine/musl@1.2.4-r2?distro=alpine-3.19".into()),
            None,
        ]
    );
}

#[test]
fn spdx_describes_the_image_containing_every_package() {
    let d = spdx(subject(), &inventory());
    assert_eq!(d["spdxVersion"], "SPDX-2.3");
    assert_eq!(d["packages"].as_array().unwrap().len(), 9);
    assert_eq!(d["packages"][0]["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(
        d["packages"][1]["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12"
    );
    assert!(d["packages"][8].get("externalRefs").is_none());
    let rels = d["relationships"].as_array().unwrap();
    assert_eq!(rels.len(), 9);
    assert_eq!(rels[0]["relationshipType"], "DESCRIBES");
    assert!(d["documentNamespace"]
        .as_str()
        .unwrap()
        .ends_with("/01234567-89ab-4def-8123-456789abcdef"));
}

#[test]
fn cyclonedx_lists_components_under_the_container() {
    let d = cyclonedx(subject(), &inventory());
    assert_eq!(d["specVersion"], "1.5");
    assert_eq!(
        d["serialNumber"],
        "urn:uuid:01234567-89ab-4def-8123-456789abcdef"
    );
    assert_eq!(d["metadata"]["component"]["type"], "container");
    assert_eq!(d["components"].as_array().unwrap().len(), 8);
    assert_eq!(
        d["components"][2]["purl"],
        "pkg:npm/%40scope/left-pad@1.3.0"
    );
    assert_eq!(
        d["dependencies"][0]["dependsOn"].as_array().unwrap().len(),
        8
    );
}

#[test]
fn rpm_purls_carry_the_epoch_and_distro_as_qualifiers() {
    assert_eq!(
        purl(&pkg("AlmaLinux:9", "openssl-libs", "1:3.0.7-27.el9")).as_deref(),
        Some("pkg:rpm/almalinux/openssl-libs@3.0.7-27.el9?epoch=1&distro=almalinux-9")
    );
    assert_eq!(
        purl(&pkg("Rocky Linux:9", "bash", "5.1.8-9.el9")).as_deref(),
        Some("pkg:rpm/rocky/bash@5.1.8-9.el9?distro=rocky-9")
    );
    assert_eq!(
        purl(&pkg("rpm", "tzdata", "2024a-1.el9")).as_deref(),
        Some("pkg:rpm/tzdata@2024a-1.el9")
    );
}
