//! SBOMs pipelines attach to an image (an SPDX or CycloneDX document
//! pushed as a referrer whose subject is the image, as `syft attest`,
//! `trivy`, `oras attach` or `cosign attach sbom` do): read when the image
//! is inventoried, and again when such a referrer is pushed later, so
//! their packages are matched with the layers' own. Each package keeps
//! where it came from (`sbom:<referrer digest>`); what the layers already
//! hold is not repeated.

use berth_inventory::image::{AttachedSbom, ImageInventory};
use berth_inventory::sbom::read;
use berth_oci::{Digest, ParsedManifest, Reference, RepoName};

use super::job::{is_generated, is_sbom_type};
use futures_util::TryStreamExt;

use crate::error::RegistryError;
use crate::jobs::JobFailure;
use crate::registry::Registry;

/// Largest attached SBOM read.
const MAX_SBOM: u64 = 64 * 1024 * 1024;

/// Merge the SBOMs attached to `digest` in `repo` into `image`.
pub(crate) async fn merge(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
    image: &mut ImageInventory,
) -> Result<(), JobFailure> {
    let referrers = registry.meta().referrers(repo, digest, None).await?;
    for r in referrers {
        if !r.artifact_type.as_deref().is_some_and(is_sbom_type) {
            continue;
        }
        let annotations: Option<serde_json::Map<String, serde_json::Value>> = r
            .annotations
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok());
        if is_generated(annotations.as_ref()) {
            continue;
        }
        let origin = format!("sbom:{}", r.digest);
        let attached = match read_one(registry, repo, &r.digest).await? {
            Ok(a) => a,
            Err(why) => {
                image.attach(AttachedSbom::failed(r.digest.as_str(), why));
                continue;
            }
        };
        image.attach_packages(r.digest.as_str(), &origin, attached);
    }
    Ok(())
}

/// The SBOM in one referrer: its first SPDX or CycloneDX layer (or, when
/// no layer says, its first layer), read within [`MAX_SBOM`]. The outer
/// error is a fault to retry; the inner one is why the document was not
/// read.
async fn read_one(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Result<read::Attached, String>, JobFailure> {
    let manifest = match registry
        .get_manifest(repo, &Reference::Digest(digest.clone()), false)
        .await
    {
        Ok(m) => m,
        Err(RegistryError::ManifestUnknown(_)) => return Ok(Err("deleted".into())),
        Err(e) => return Err(e.into()),
    };
    let parsed = match ParsedManifest::parse(&manifest.content, Some(&manifest.media_type)) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("its manifest: {e}"))),
    };
    let Some(layer) = parsed
        .layers
        .iter()
        .find(|l| is_sbom_type(&l.media_type))
        .or(parsed.layers.first())
    else {
        return Ok(Err("it has no layer".into()));
    };
    if u64::try_from(layer.size).map_or(true, |n| n > MAX_SBOM) {
        return Ok(Err(format!(
            "{} bytes, over the {MAX_SBOM}-byte limit: not read",
            layer.size
        )));
    }
    let blob = match registry
        .open_blob(repo, &layer.digest, None, |_| 256 * 1024)
        .await
    {
        Ok(b) => b,
        Err(RegistryError::BlobUnknown(_)) => {
            return Ok(Err("its document is not in storage".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let mut body = blob.body;
    let mut doc = Vec::with_capacity(blob.total.min(MAX_SBOM) as usize);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| JobFailure::retry(format!("reading an attached SBOM: {e}")))?
    {
        if (doc.len() + chunk.len()) as u64 > MAX_SBOM {
            return Ok(Err(format!("over the {MAX_SBOM}-byte limit: not read")));
        }
        doc.extend_from_slice(&chunk);
    }
    tokio::task::spawn_blocking(move || read::read(&doc))
        .await
        .map_err(|e| JobFailure::retry(format!("the SBOM thread: {e}")))
}
