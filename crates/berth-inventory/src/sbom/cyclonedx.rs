//! CycloneDX 1.5 JSON: the image as the BOM's subject (a container) and
//! each inventoried package as a library component with its purl.

use serde_json::{json, Value};

use super::{purl, uuid_of, Inventory, Subject};

/// The inventory as a CycloneDX 1.5 JSON BOM.
pub fn cyclonedx(subject: Subject<'_>, inventory: &Inventory) -> Value {
    let components: Vec<Value> = inventory
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = json!({
                "type": "library",
                "bom-ref": format!("pkg-{i}"),
                "name": p.name,
                "version": p.version,
                "properties": [
                    {"name": "berth:ecosystem", "value": p.ecosystem},
                    {"name": "berth:path", "value": p.path},
                ],
            });
            if let Some(purl) = purl(p) {
                c["purl"] = json!(purl);
            }
            c
        })
        .collect();
    let mut properties = Vec::new();
    if inventory.incomplete {
        properties.push(json!({"name": "berth:incomplete", "value": "true"}));
    }
    if let Some(os) = &inventory.os {
        properties
            .push(json!({"name": "berth:os", "value": format!("{} {}", os.id, os.version_id)}));
    }
    let (alg, hex) = subject
        .digest
        .split_once(':')
        .unwrap_or(("", subject.digest));
    let mut image = json!({
        "type": "container",
        "bom-ref": "image",
        "name": subject.repository,
        "version": subject.digest,
    });
    if alg == "sha256" {
        image["hashes"] = json!([{"alg": "SHA-256", "content": hex}]);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid_of(subject.digest)),
        "version": 1,
        "metadata": {
            "timestamp": subject.created,
            "tools": {"components": [{"type": "application", "name": "berth", "version": subject.tool_version}]},
            "component": image,
            "properties": properties,
        },
        "components": components,
        "dependencies": [{
            "ref": "image",
            "dependsOn": (0..inventory.packages.len()).map(|i| format!("pkg-{i}")).collect::<Vec<_>>(),
        }],
    })
}
