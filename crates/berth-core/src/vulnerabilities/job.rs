//! The inventory job: queued in a manifest push's transaction for each
//! image whose layers are filesystem layers, keyed by the manifest digest
//! (a digest pushed to many repositories is read once).

use berth_meta::platform::NewJob;
use berth_oci::{ManifestKind, ParsedManifest};
use serde::{Deserialize, Serialize};

/// The job kind that inventories an image and matches it.
pub const INVENTORY_IMAGE_JOB: &str = "inventory_image";

/// What the job needs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InventoryPayload {
    pub repo: String,
    pub digest: String,
}

/// Whether a pushed manifest is an image with filesystem layers (not an
/// index, a signature, an SBOM or another artifact).
pub(crate) fn wants_inventory(m: &ParsedManifest) -> bool {
    m.kind == ManifestKind::Image
        && m.subject.is_none()
        && !m.layers.is_empty()
        && m.layers
            .iter()
            .all(|l| l.media_type.contains(".tar") || l.media_type.contains("rootfs.diff"))
}

/// The job for an image pushed at `now` in `region` (whose workers read
/// the layers from their own storage), or for an image an SBOM was just
/// attached to (`sbom`, its own job: the image's may be running already).
pub(crate) fn inventory_job(
    repo: &str,
    digest: &str,
    region: &str,
    now: i64,
    sbom: Option<&str>,
) -> NewJob {
    NewJob {
        kind: INVENTORY_IMAGE_JOB.to_owned(),
        region: Some(region.to_owned()),
        dedupe_key: Some(match sbom {
            None => format!("inventory:{digest}"),
            Some(s) => format!("inventory:{digest}:{s}"),
        }),
        payload: serde_json::to_string(&InventoryPayload {
            repo: repo.to_owned(),
            digest: digest.to_owned(),
        })
        .unwrap_or_default(),
        run_after: now,
    }
}
