//! Berth's own SBOM of an image, attached as a referrer when the
//! namespace's policy says so (`attach_sbom`): once the image is
//! inventoried, its inventory as SPDX 2.3 is pushed in the image's
//! repository as an artifact (`artifactType: application/spdx+json`)
//! whose subject is the image, so `oras discover`, `cosign tree` and any
//! tool reading referrers find it. The artifact carries the inventory's
//! hash: a job that finds the same inventory pushes nothing, and a changed
//! inventory replaces the earlier artifact. Berth's artifacts are never
//! read back as pipeline SBOMs (`attached`), nor do they queue work.

use berth_inventory::image::ImageInventory;
use berth_oci::{Algorithm, Digest, Reference, RepoName};
use bytes::Bytes;
use serde_json::json;

use super::job::{is_generated, GENERATED};
use crate::clock::now_millis;
use crate::error::RegistryError;
use crate::jobs::JobFailure;
use crate::registry::{Chunk, ManifestPush, Registry};

const SPDX: &str = "application/spdx+json";
const EMPTY: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The image manifest the SBOM refers to.
pub(crate) struct Subject<'a> {
    pub repo: &'a RepoName,
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub size: usize,
}

/// Attach the image's SBOM when its namespace asks for it.
pub(crate) async fn publish(
    registry: &Registry,
    subject: Subject<'_>,
    image: &ImageInventory,
    inventory_json: &str,
) -> Result<(), JobFailure> {
    let repo = subject.repo;
    if !registry.policy(repo.namespace()).await?.attach_sbom {
        return Ok(());
    }
    let stamp = Digest::of_bytes(Algorithm::Sha256, inventory_json.as_bytes()).to_string();
    let mut earlier = Vec::new();
    for r in registry
        .meta()
        .referrers(repo, subject.digest, Some(SPDX))
        .await?
    {
        let annotations: Option<serde_json::Map<String, serde_json::Value>> = r
            .annotations
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok());
        let Some(a) = annotations.filter(|a| is_generated(Some(a))) else {
            continue;
        };
        if a.get(GENERATED).and_then(|v| v.as_str()) == Some(stamp.as_str()) {
            return Ok(());
        }
        earlier.push(r.digest);
    }
    let created = crate::token::rfc3339(now_millis() / 1000);
    let doc = berth_inventory::sbom::spdx(
        berth_inventory::sbom::Subject {
            repository: repo.as_str(),
            digest: subject.digest.as_str(),
            created: &created,
            tool_version: env!("CARGO_PKG_VERSION"),
        },
        image,
    );
    let doc = serde_json::to_vec(&doc).map_err(|e| JobFailure::permanent(e.to_string()))?;
    let doc_digest = put_blob(registry, repo, doc.clone()).await?;
    let empty_digest = put_blob(registry, repo, EMPTY.to_vec()).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX,
        "config": {"mediaType": EMPTY_TYPE, "digest": empty_digest.as_str(), "size": EMPTY.len()},
        "layers": [{"mediaType": SPDX, "digest": doc_digest.as_str(), "size": doc.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.as_str(), "size": subject.size},
        "annotations": {GENERATED: stamp, "org.opencontainers.image.created": created},
    }))
    .map_err(|e| JobFailure::permanent(e.to_string()))?;
    let digest = Digest::of_bytes(Algorithm::Sha256, &manifest);
    let pushed = registry
        .put_manifest(ManifestPush {
            repo,
            reference: &Reference::Digest(digest),
            content_type: Some(OCI_MANIFEST),
            body: manifest,
            extra_tags: Vec::new(),
            actor: "berth",
            client_addr: None,
            cached: false,
        })
        .await;
    match pushed {
        Ok(_) => {}
        // A refusal (a limit, a quota) is the namespace's to fix, not to
        // retry; the SBOM is still served by the API.
        Err(e) if !e.is_internal() => {
            return Err(JobFailure::permanent(format!("attaching the SBOM: {e}")))
        }
        Err(e) => return Err(e.into()),
    }
    for old in earlier {
        match registry
            .delete_manifest(repo, &Reference::Digest(old))
            .await
        {
            Ok(()) | Err(RegistryError::ManifestUnknown(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Store `bytes` as a blob of `repo` in one upload.
async fn put_blob(
    registry: &Registry,
    repo: &RepoName,
    bytes: Vec<u8>,
) -> Result<Digest, JobFailure> {
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let upload = registry.start_upload(repo, Algorithm::Sha256).await?;
    let length = bytes.len() as u64;
    let body = Box::pin(futures_util::stream::once(async move {
        Ok::<Bytes, std::io::Error>(Bytes::from(bytes))
    }));
    let done = registry
        .finish_upload(
            repo,
            &upload.id,
            &digest,
            Some(Chunk {
                range: None,
                length: Some(length),
                body,
            }),
        )
        .await;
    if done.is_err() {
        let _ = registry.cancel_upload(repo, &upload.id).await;
    }
    done?;
    Ok(digest)
}
