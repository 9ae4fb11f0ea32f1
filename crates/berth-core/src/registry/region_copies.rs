//! Copies of blobs between regions ("push once, pull everywhere"): a blob
//! copied storage to storage, streamed and verified against its digest
//! (`copy_blob`, also behind on-demand fetches); after a push, each other
//! region the namespace's images go to gets a job that copies the image's
//! missing blobs; a periodic reconcile pass queues the same job for
//! anything an interrupted or failed job missed. (Not to be mixed up with
//! synchronization rules, `platform::sync`, nor with replication to other
//! registries, `platform::remote_replication`.)

use std::io;

use berth_blob::ByteStream;
use berth_meta::{NewJob, UploadRecord};
use berth_oci::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::regions::Region;
use super::Registry;
use crate::clock::now_millis;
use crate::jobs::JobFailure;
use crate::RegistryError;

/// Chunk size of copies between regions.
const COPY_CHUNK: usize = 1 << 20;

/// A stream over a channel's receiving end.
pub(crate) fn channel_stream(rx: mpsc::Receiver<io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

impl Registry {
    /// Copy a blob of `size` bytes from `source`'s storage into
    /// `target`'s, and record it there. `client`, when given, receives the
    /// bytes as they pass (an on-demand pull); it may hang up without
    /// stopping the copy. Returns false when the blob was collected
    /// meanwhile (nothing is left behind in `target`).
    pub(crate) async fn copy_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Region,
        target: &Region,
        client: Option<mpsc::Sender<io::Result<Bytes>>>,
    ) -> Result<bool, RegistryError> {
        let platform = &self.platform;
        let Some(mut from) = source.blobs.open_chunks(digest, None, COPY_CHUNK).await? else {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        };
        // An upload session of its own: the S3 backend keeps its state in
        // the session's row, and the digest pinned on it keeps the
        // collector away from this blob until the copy is recorded.
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_millis();
        self.meta
            .create_upload(&UploadRecord {
                id: id.clone(),
                repo: repo.to_owned(),
                created_at: now,
                updated_at: now,
            })
            .await?;
        let result = async {
            target.blobs.upload_create(&id, digest.algorithm()).await?;
            let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
            let upload = target
                .blobs
                .upload_append(&id, Some(0), channel_stream(rx), size);
            let pump = async move {
                let mut client = client;
                while let Some(item) = from.next().await {
                    match item {
                        Ok(bytes) => {
                            if let Some(c) = &client {
                                if c.send(Ok(bytes.clone())).await.is_err() {
                                    client = None;
                                }
                            }
                            if tx.send(Ok(bytes)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            if let Some(c) = &client {
                                let _ = c.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                            }
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            };
            let (appended, ()) = tokio::join!(upload, pump);
            appended?;
            self.pin_upload(&id, digest).await?;
            let stored = target.blobs.upload_commit(&id, digest).await?;
            let recorded = platform
                .add_blob_location(digest.as_str(), &target.name, now_millis())
                .await?;
            if !recorded {
                // Collected while it was copied: leave nothing behind.
                target.blobs.delete(digest).await?;
            } else {
                self.stats.copied(stored);
            }
            Ok(recorded)
        }
        .await;
        if result.is_err() {
            if let Err(e) = target.blobs.upload_delete(&id).await {
                tracing::warn!(upload = id, error = %e, "could not remove a failed copy's data");
            }
        }
        if let Err(e) = self.meta.delete_upload(&id).await {
            tracing::warn!(upload = id, error = %e, "could not remove a copy's session");
        }
        result
    }
}

/// The job kind that copies an image's blobs into a region.
pub const REPLICATE_IMAGE_JOB: &str = "replicate_image";

/// Images looked at per reconcile query.
const RECONCILE_PAGE: i64 = 500;

#[derive(Debug, Serialize, Deserialize)]
struct ReplicatePayload {
    repo: String,
    digest: String,
    /// When the image was pushed (for the lag histogram); absent for the
    /// reconcile pass's jobs.
    #[serde(default)]
    pushed_at: Option<i64>,
}

/// The job that makes an image whole in `region`.
pub(crate) fn replicate_job(repo: &str, digest: &str, region: &str, pushed_at: i64) -> NewJob {
    NewJob {
        kind: REPLICATE_IMAGE_JOB.to_owned(),
        region: Some(region.to_owned()),
        dedupe_key: Some(format!("replicate:{region}:{repo}@{digest}")),
        payload: serde_json::to_string(&ReplicatePayload {
            repo: repo.to_owned(),
            digest: digest.to_owned(),
            pushed_at: Some(pushed_at),
        })
        .unwrap_or_default(),
        run_after: pushed_at,
        urgent: false,
    }
}

/// What copying an image's blobs into a region did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyCounts {
    /// Bytes copied.
    pub bytes: i64,
    /// Blobs copied.
    pub copied: i64,
    /// Blobs the region already held.
    pub present: i64,
}

/// Whether an image is whole in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionAvailability {
    /// Region.
    pub region: String,
    /// Every blob of the image is there.
    pub available: bool,
}

impl Registry {
    /// The regions a namespace's images are replicated to (every
    /// configured region unless the namespace names some).
    pub async fn region_copy_targets(&self, namespace: &str) -> Result<Vec<String>, RegistryError> {
        let all = || self.regions.all().iter().map(|r| r.name.clone()).collect();
        let stored = self.platform.namespace_copy_regions(namespace).await?;
        let Some(Some(json)) = stored else {
            return Ok(all());
        };
        let listed: Vec<String> = serde_json::from_str(&json).map_err(|e| {
            RegistryError::Meta(berth_meta::MetaError::Corrupt(format!(
                "replication regions of {namespace}: {e}"
            )))
        })?;
        Ok(self
            .regions
            .all()
            .iter()
            .filter(|r| listed.contains(&r.name))
            .map(|r| r.name.clone())
            .collect())
    }

    /// Where an image is whole now, region by region.
    pub async fn image_availability(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Vec<RegionAvailability>, RegistryError> {
        let (total, held) = self.platform.image_presence(repo, digest).await?;
        Ok(self
            .regions
            .all()
            .iter()
            .map(|r| RegionAvailability {
                region: r.name.clone(),
                available: held.iter().any(|(name, n)| *name == r.name && *n >= total),
            })
            .collect())
    }

    /// Make every blob of an image present in `target`, copying what is
    /// missing from a region that has it. `None` when the image is gone.
    pub(crate) async fn copy_image_blobs(
        &self,
        repo: &str,
        digest: &str,
        target: &Region,
    ) -> Result<Option<CopyCounts>, JobFailure> {
        let platform = &self.platform;
        let Some(blobs) = platform.image_blobs(repo, digest).await? else {
            return Ok(None);
        };
        let mut counts = CopyCounts::default();
        for blob in blobs {
            let d: Digest = blob.digest.parse().map_err(|_| {
                JobFailure::permanent(format!("stored digest {} is invalid", blob.digest))
            })?;
            let locations = platform.blob_locations(&blob.digest).await?;
            if locations.contains(&target.name) {
                counts.present += 1;
                continue;
            }
            if target.blobs.stat(&d).await?.is_some() {
                platform
                    .add_blob_location(&blob.digest, &target.name, now_millis())
                    .await?;
                counts.present += 1;
                continue;
            }
            let mut copied = false;
            let mut last_error: Option<JobFailure> = None;
            for source in self.sources(&d, &target.name).await? {
                match source.blobs.stat(&d).await {
                    Ok(Some(_)) => {}
                    Ok(None) => continue,
                    Err(e) => {
                        last_error = Some(JobFailure::retry(format!(
                            "region {}'s storage: {e}",
                            source.name
                        )));
                        continue;
                    }
                }
                match self
                    .copy_blob(repo, &d, blob.size as u64, &source, target, None)
                    .await
                {
                    Ok(true) => {
                        counts.copied += 1;
                        counts.bytes += blob.size;
                        copied = true;
                        break;
                    }
                    // Collected meanwhile: nothing needs it any more.
                    Ok(false) => {
                        copied = true;
                        break;
                    }
                    Err(e) => last_error = Some(e.into()),
                }
            }
            if !copied {
                return Err(last_error.unwrap_or_else(|| {
                    JobFailure::retry(format!(
                        "no region's storage holds blob {} of {repo}@{digest}",
                        blob.digest
                    ))
                }));
            }
        }
        Ok(Some(counts))
    }

    /// Run a `replicate_image` job for `target`.
    pub(crate) async fn run_replicate_job(
        &self,
        payload: &str,
        target: &str,
    ) -> Result<(), JobFailure> {
        let p: ReplicatePayload = serde_json::from_str(payload)
            .map_err(|e| JobFailure::permanent(format!("invalid payload: {e}")))?;
        let Some(region) = self.regions.get(target).cloned() else {
            return Err(JobFailure::permanent(format!(
                "region {target} is not configured on this node"
            )));
        };
        let counts = self.copy_image_blobs(&p.repo, &p.digest, &region).await?;
        if let (Some(counts), Some(pushed)) = (counts, p.pushed_at) {
            let lag = (now_millis() - pushed).max(0) as f64 / 1000.0;
            self.stats.observe_lag(target, lag);
            tracing::debug!(
                repo = p.repo,
                digest = p.digest,
                region = target,
                copied = counts.copied,
                lag,
                "image replicated"
            );
        }
        Ok(())
    }

    /// Queue replication of every image `region` should hold but does not
    /// (whole or in part). Returns how many jobs were queued.
    pub async fn reconcile_region(&self, region: &str) -> Result<usize, RegistryError> {
        let platform = &self.platform;
        let mut queued = 0;
        let mut after: Option<(String, String)> = None;
        let mut targets: std::collections::HashMap<String, bool> = Default::default();
        loop {
            let page = platform
                .unreplicated_images(
                    region,
                    after.as_ref().map(|(r, d)| (r.as_str(), d.as_str())),
                    RECONCILE_PAGE,
                )
                .await?;
            let mut jobs = Vec::new();
            for (repo, digest, _) in &page {
                let namespace = repo.split('/').next().unwrap_or(repo);
                let wanted = match targets.get(namespace) {
                    Some(w) => *w,
                    None => {
                        let w = self
                            .region_copy_targets(namespace)
                            .await?
                            .iter()
                            .any(|r| r == region);
                        targets.insert(namespace.to_owned(), w);
                        w
                    }
                };
                if wanted {
                    let mut job = replicate_job(repo, digest, region, now_millis());
                    // Not a fresh push: no lag to observe.
                    job.payload = serde_json::to_string(&ReplicatePayload {
                        repo: repo.clone(),
                        digest: digest.clone(),
                        pushed_at: None,
                    })
                    .unwrap_or_default();
                    jobs.push(job);
                }
            }
            queued += platform.enqueue_jobs(&jobs).await?;
            if (page.len() as i64) < RECONCILE_PAGE {
                break;
            }
            after = page.last().map(|(r, d, _)| (r.clone(), d.clone()));
        }
        if queued > 0 {
            self.jobs_queued.notify_one();
        }
        Ok(queued)
    }
}
