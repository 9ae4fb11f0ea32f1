//! SPDX 2.3 JSON: a document describing the image as a package that
//! contains each inventoried package (with its purl and where it was read).

use serde_json::{json, Value};

use super::{purl, uuid_of, Inventory, Subject};

/// The inventory as an SPDX 2.3 JSON document.
pub fn spdx(subject: Subject<'_>, inventory: &Inventory) -> Value {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "name": subject.repository,
        "SPDXID": image_id,
        "versionInfo": subject.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": checksum(subject.digest).into_iter().collect::<Vec<_>>(),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    for (i, p) in inventory.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        let mut pkg = json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "sourceInfo": format!("{} package read from {}", p.ecosystem, p.path),
        });
        if let Some(purl) = purl(p) {
            pkg["externalRefs"] = json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }]);
        }
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut comment = format!(
        "Package inventory of {}@{} made by Berth.",
        subject.repository, subject.digest
    );
    if inventory.incomplete {
        comment.push_str(" A layer's walk stopped early: the inventory may miss packages.");
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", subject.repository, subject.digest),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/berth/{}/{}",
            subject.repository,
            uuid_of(subject.digest)
        ),
        "comment": comment,
        "creationInfo": {
            "created": subject.created,
            "creators": [format!("Tool: berth-{}", subject.tool_version)],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// The SPDX checksum of a `sha256:`/`sha512:` digest.
fn checksum(digest: &str) -> Option<Value> {
    let (algorithm, hex) = digest.split_once(':')?;
    let algorithm = match algorithm {
        "sha256" => "SHA256",
        "sha512" => "SHA512",
        _ => return None,
    };
    Some(json!({"algorithm": algorithm, "checksumValue": hex}))
}
