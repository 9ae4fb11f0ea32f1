//! Running the inventory job: each layer of the image read once per layer
//! digest (streamed from blob storage into `berth-inventory` on a blocking
//! thread, in bounded chunks), the image's union kept, and the image
//! matched against the advisories that name its packages.

use berth_inventory::image::{self, ImageInventory};
use berth_inventory::{read_layer, LayerInventory, Limits};
use berth_oci::{Digest, Reference, RepoName};
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::job::InventoryPayload;
use super::matching::{findings, package_names};
use crate::clock::now_millis;
use crate::error::RegistryError;
use crate::jobs::JobFailure;
use crate::registry::Registry;

/// Chunk size of layer reads.
const CHUNK: usize = 256 * 1024;

/// Run one inventory job (idempotent: a second run finds the layers read).
pub(crate) async fn run_job(registry: &Registry, payload: &str) -> Result<(), JobFailure> {
    let p: InventoryPayload = serde_json::from_str(payload)
        .map_err(|e| JobFailure::permanent(format!("an unreadable inventory job: {e}")))?;
    let (Ok(repo), Ok(digest)) = (RepoName::parse(&p.repo), Digest::parse(&p.digest)) else {
        return Err(JobFailure::permanent(
            "an inventory job for an invalid image",
        ));
    };
    let manifest = match registry
        .get_manifest(&repo, &Reference::Digest(digest.clone()), false)
        .await
    {
        Ok(m) => m,
        // Deleted since: nothing to do.
        Err(RegistryError::ManifestUnknown(_) | RegistryError::NameUnknown(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let parsed = berth_oci::ParsedManifest::parse(&manifest.content, Some(&manifest.media_type))
        .map_err(|e| JobFailure::permanent(format!("the manifest: {e}")))?;
    let meta = registry.meta();
    let mut layers = Vec::with_capacity(parsed.layers.len());
    for l in &parsed.layers {
        let known = meta
            .layer_inventory(l.digest.as_str())
            .await?
            .and_then(|j| serde_json::from_str::<LayerInventory>(&j).ok());
        let inv = match known {
            Some(inv) => inv,
            None => {
                let inv = read_blob(registry, &repo, &l.digest).await?;
                let mut names: Vec<String> = inv.packages.iter().flat_map(package_names).collect();
                names.sort();
                names.dedup();
                let json = serde_json::to_string(&inv)
                    .map_err(|e| JobFailure::permanent(e.to_string()))?;
                meta.put_layer_inventory(l.digest.as_str(), &json, &names, now_millis())
                    .await?;
                inv
            }
        };
        layers.push(inv);
    }
    let image = image::union(&layers);
    let json = serde_json::to_string(&image).map_err(|e| JobFailure::permanent(e.to_string()))?;
    meta.put_image_inventory(digest.as_str(), &json, now_millis())
        .await?;
    match_image(registry, digest.as_str(), &image, None).await?;
    Ok(())
}

/// Read one layer blob through the inventory walk.
async fn read_blob(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
) -> Result<LayerInventory, JobFailure> {
    let read = match registry.open_blob(repo, digest, None, |_| CHUNK).await {
        Ok(r) => r,
        Err(RegistryError::BlobUnknown(_)) => {
            return Ok(LayerInventory {
                stopped: Some(format!("the layer {digest} is not in storage")),
                ..LayerInventory::default()
            })
        }
        Err(e) => return Err(e.into()),
    };
    let reader = SyncIoBridge::new(StreamReader::new(read.body.map_err(std::io::Error::other)));
    tokio::task::spawn_blocking(move || read_layer(reader, &Limits::default()))
        .await
        .map_err(|e| JobFailure::retry(format!("the inventory thread: {e}")))
}

/// Match an image against the advisories naming its packages (all of them,
/// or only `advisories` when a re-match after an import). Returns how many
/// findings are new.
pub(crate) async fn match_image(
    registry: &Registry,
    digest: &str,
    image: &ImageInventory,
    advisories: Option<&[String]>,
) -> Result<usize, berth_meta::MetaError> {
    let meta = registry.meta();
    let mut names: Vec<String> = image.packages.iter().flat_map(package_names).collect();
    names.sort();
    names.dedup();
    let docs = meta.advisories_naming(&names).await?;
    let mut parsed: Vec<berth_advisory::Advisory> = docs
        .iter()
        .filter_map(|d| berth_advisory::parse(d.as_bytes()).ok())
        .collect();
    if let Some(ids) = advisories {
        parsed.retain(|a| ids.contains(&a.id));
    }
    let rows = findings(digest, image, &parsed, now_millis());
    let new = meta.replace_findings(digest, advisories, &rows).await?;
    Ok(new.len())
}
