//! The advisory feed: a repository Berth watches (`registry.advisory_feed`)
//! where an air-gapped site pushes OSV advisories as an OCI artifact (with
//! `oras push`, for instance). Each manifest pushed there queues a job, in
//! the push's transaction, that reads its layers — JSON (a document or an
//! array) or tar (plain or gzip) of `*.json` files — streamed from storage
//! on a blocking thread, and imports the documents in batches, re-matching
//! only the images the new or changed advisories touch.

use berth_advisory::bundle::{read_bundle, BundleKind};
use berth_oci::{Digest, ParsedManifest, Reference, RepoName};
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::import::{self, ImportReport};
use super::job::FeedPayload;
use crate::error::RegistryError;
use crate::jobs::JobFailure;
use crate::registry::Registry;

/// Documents per import batch (and per batch in flight from the reader).
const BATCH: usize = 1000;
/// Layers of one artifact read.
const MAX_LAYERS: usize = 64;
/// Chunk size of layer reads.
const CHUNK: usize = 256 * 1024;

/// Run one feed job (idempotent: a second run finds the advisories stored
/// as they are).
pub(crate) async fn run_feed_job(registry: &Registry, payload: &str) -> Result<(), JobFailure> {
    let p: FeedPayload = serde_json::from_str(payload)
        .map_err(|e| JobFailure::permanent(format!("an unreadable feed job: {e}")))?;
    let (Ok(repo), Ok(digest)) = (RepoName::parse(&p.repo), Digest::parse(&p.digest)) else {
        return Err(JobFailure::permanent("a feed job for an invalid artifact"));
    };
    let manifest = match registry
        .get_manifest(&repo, &Reference::Digest(digest.clone()), false)
        .await
    {
        Ok(m) => m,
        Err(RegistryError::ManifestUnknown(_) | RegistryError::NameUnknown(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let parsed = ParsedManifest::parse(&manifest.content, Some(&manifest.media_type))
        .map_err(|e| JobFailure::permanent(format!("the manifest: {e}")))?;
    let mut total = ImportReport::default();
    let mut skipped = Vec::new();
    for layer in parsed.layers.iter().take(MAX_LAYERS) {
        let Some(kind) = BundleKind::of(&layer.media_type) else {
            skipped.push(layer.media_type.clone());
            continue;
        };
        let report = import_layer(registry, &repo, &layer.digest, kind).await?;
        total.imported += report.imported;
        total.unchanged += report.unchanged;
        total.images_matched += report.images_matched;
        total.new_findings += report.new_findings;
        total.invalid.extend(report.invalid);
    }
    tracing::info!(
        artifact = %format!("{repo}@{digest}"),
        imported = total.imported,
        unchanged = total.unchanged,
        refused = total.invalid.len(),
        images_matched = total.images_matched,
        new_findings = total.new_findings,
        skipped_layers = ?skipped,
        "advisory feed imported"
    );
    Ok(())
}

/// Read one layer on a blocking thread, importing batches as they come.
async fn import_layer(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
    kind: BundleKind,
) -> Result<ImportReport, JobFailure> {
    let read = registry.open_blob(repo, digest, None, |_| CHUNK).await?;
    let reader = SyncIoBridge::new(StreamReader::new(read.body.map_err(std::io::Error::other)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(2);
    let reading = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let result = read_bundle(reader, kind, &mut |doc| {
            batch.push(doc);
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                return tx.blocking_send(full).is_ok();
            }
            true
        });
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        result
    });
    let mut report = ImportReport::default();
    while let Some(batch) = rx.recv().await {
        let r = import::import_documents(registry, &batch).await?;
        report.imported += r.imported;
        report.unchanged += r.unchanged;
        report.images_matched += r.images_matched;
        report.new_findings += r.new_findings;
        report.invalid.extend(r.invalid);
    }
    match reading.await {
        Ok(Ok(_)) => Ok(report),
        // What was read before is kept; the rest of the layer is not
        // readable however often it is tried.
        Ok(Err(e)) => Err(JobFailure::permanent(format!("the layer {digest}: {e}"))),
        Err(e) => Err(JobFailure::retry(format!("the reading thread: {e}"))),
    }
}
