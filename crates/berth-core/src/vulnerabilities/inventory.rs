//! Running the inventory job: each layer of the image read once per layer
//! digest (streamed from blob storage into `berth-inventory` on a blocking
//! thread, in bounded chunks), the image's union kept with the SBOMs
//! attached to it, and the image matched against the advisories that name
//! its packages.

use std::collections::{BTreeMap, HashMap};

use berth_inventory::image::{self, ImageInventory};
use berth_inventory::{read_layer, LayerInventory, Limits};
use berth_meta::vulnerability::{FindingRow, ImageFindings};
use berth_oci::{Digest, Reference, RepoName};
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::job::InventoryPayload;
use super::matching::{findings, package_names, AdvisoryIndex};
use crate::clock::now_millis;
use crate::error::RegistryError;
use crate::events::{kind, Event};
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
    // An SBOM may be attached to an index or an artifact: they have no
    // inventory of their own.
    if !super::wants_inventory(&parsed) {
        return Ok(());
    }
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
    let mut image = image::union(&layers);
    super::attached::merge(registry, &repo, &digest, &mut image).await?;
    let json = serde_json::to_string(&image).map_err(|e| JobFailure::permanent(e.to_string()))?;
    let mut sbom_names: Vec<String> = image
        .packages
        .iter()
        .filter(|p| p.path.starts_with("sbom:"))
        .flat_map(package_names)
        .collect();
    sbom_names.sort();
    sbom_names.dedup();
    meta.put_image_inventory(digest.as_str(), &json, &sbom_names, now_millis())
        .await?;
    match_image(registry, digest.as_str(), &image).await?;
    let subject = super::publish::Subject {
        repo: &repo,
        digest: &digest,
        media_type: &manifest.media_type,
        size: manifest.content.len(),
    };
    super::publish::publish(registry, subject, &image, &json).await?;
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

/// Match a new image against every advisory naming its packages. Returns
/// how many findings are new.
pub(crate) async fn match_image(
    registry: &Registry,
    digest: &str,
    image: &ImageInventory,
) -> Result<usize, berth_meta::MetaError> {
    let meta = registry.meta();
    let mut names: Vec<String> = image.packages.iter().flat_map(package_names).collect();
    names.sort();
    names.dedup();
    let docs = meta.advisories_naming(&names).await?;
    let parsed: Vec<berth_advisory::Advisory> = docs
        .iter()
        .filter_map(|d| berth_advisory::parse(d.as_bytes()).ok())
        .collect();
    let rows = findings(digest, image, &AdvisoryIndex::new(&parsed), now_millis());
    let new = meta
        .replace_findings(
            None,
            &[ImageFindings {
                digest: digest.to_owned(),
                findings: rows,
            }],
        )
        .await?;
    announce(registry, &new, &parsed).await?;
    Ok(new.len())
}

/// Repositories named in one `vulnerability.found` event at most.
const EVENT_REPOSITORIES: i64 = 100;

/// Raise `vulnerability.found` for each image and advisory among the new
/// findings, once per namespace holding the image (events are
/// namespace-scoped). Nothing is built when no webhook listens: a re-match
/// can find millions.
pub(crate) async fn announce(
    registry: &Registry,
    new: &[FindingRow],
    advisories: &[berth_advisory::Advisory],
) -> Result<(), berth_meta::MetaError> {
    if new.is_empty() {
        return Ok(());
    }
    let listening = registry
        .platform()
        .all_webhooks()
        .await?
        .iter()
        .any(|w| w.enabled && w.events.iter().any(|e| e == kind::VULNERABILITY_FOUND));
    if !listening {
        return Ok(());
    }
    let advisories: HashMap<&str, &berth_advisory::Advisory> =
        advisories.iter().map(|a| (a.id.as_str(), a)).collect();
    // By image, then by advisory.
    let mut hits: BTreeMap<&str, BTreeMap<&str, Vec<&FindingRow>>> = BTreeMap::new();
    for f in new {
        hits.entry(&f.manifest_digest)
            .or_default()
            .entry(&f.advisory_id)
            .or_default()
            .push(f);
    }
    let mut events = Vec::new();
    for (digest, by_advisory) in hits {
        let repos = registry
            .meta()
            .manifest_repositories(digest, EVENT_REPOSITORIES)
            .await?;
        let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in &repos {
            let ns = r.split_once('/').map_or(r.as_str(), |(ns, _)| ns);
            by_namespace.entry(ns).or_default().push(r);
        }
        for (id, found) in by_advisory {
            let advisory = advisories.get(id);
            let packages: Vec<serde_json::Value> = found
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "ecosystem": f.ecosystem, "name": f.package,
                        "installed": f.version, "fixed": f.fixed,
                    })
                })
                .collect();
            for (ns, repositories) in &by_namespace {
                events.push(
                    Event::new(kind::VULNERABILITY_FOUND, Some(ns))
                        .with("digest", digest)
                        .with("repositories", repositories.clone())
                        .with("advisory", id)
                        .with(
                            "aliases",
                            advisory.map(|a| a.aliases.clone()).unwrap_or_default(),
                        )
                        .with(
                            "summary",
                            advisory.and_then(|a| a.summary.clone()).unwrap_or_default(),
                        )
                        .with("severity", found[0].severity.as_str())
                        .with("packages", packages.clone())
                        .build(),
                );
            }
        }
    }
    if let Err(e) = registry.emit(&events).await {
        // The findings are kept either way; the events are best effort.
        tracing::warn!(error = %e, "could not queue vulnerability.found events");
    }
    Ok(())
}
