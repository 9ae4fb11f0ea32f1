//! The jobs a manifest push queues in its transaction, and which pushes
//! queue them: the inventory job for each image whose layers are
//! filesystem layers, keyed by the manifest digest (a digest pushed to
//! many repositories is read once), and again for an image an SBOM is
//! attached to; the feed job for each artifact pushed to the advisory
//! feed repository.

use berth_meta::platform::NewJob;
use berth_oci::{Digest, ManifestKind, ParsedManifest};
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
        urgent: false,
    }
}

/// The job kind that imports an advisory artifact.
pub const IMPORT_FEED_JOB: &str = "import_advisory_feed";

/// What the feed job needs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FeedPayload {
    pub repo: String,
    pub digest: String,
}

/// The job for an artifact pushed to the feed repository.
pub(crate) fn feed_job(repo: &str, digest: &str, region: &str, now: i64) -> NewJob {
    NewJob {
        kind: IMPORT_FEED_JOB.to_owned(),
        region: Some(region.to_owned()),
        dedupe_key: Some(format!("advisory-feed:{digest}")),
        payload: serde_json::to_string(&FeedPayload {
            repo: repo.to_owned(),
            digest: digest.to_owned(),
        })
        .unwrap_or_default(),
        run_after: now,
        urgent: false,
    }
}

/// The annotation that marks Berth's own SBOM artifact (`publish`),
/// valued with the inventory's SHA-256.
pub(crate) const GENERATED: &str = "dev.berth.sbom.inventory";

/// Whether a manifest's annotations mark Berth's own SBOM.
pub(crate) fn is_generated(
    annotations: Option<&serde_json::Map<String, serde_json::Value>>,
) -> bool {
    annotations.is_some_and(|a| a.contains_key(GENERATED))
}

/// Whether an artifact type (or a layer's media type) is an SBOM Berth
/// reads: SPDX or CycloneDX JSON (`application/spdx+json`,
/// `application/vnd.cyclonedx+json`).
pub(crate) fn is_sbom_type(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    (t.contains("spdx") || t.contains("cyclonedx")) && t.contains("json")
}

/// The subject of a pushed SBOM referrer (by its artifact type, else its
/// config's media type, as the referrers API lists it), whose inventory
/// it joins; `None` for Berth's own.
pub(crate) fn sbom_subject(m: &ParsedManifest) -> Option<&Digest> {
    let subject = m.subject.as_ref()?;
    if is_generated(m.annotations.as_ref()) {
        return None;
    }
    m.artifact_type
        .as_deref()
        .is_some_and(is_sbom_type)
        .then_some(&subject.digest)
}
