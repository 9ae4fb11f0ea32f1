//! Upload sessions: start, chunks (ranged, streamed, or of known length),
//! status, commit (digest pinned, verified, linked), cancel and expiry.

use std::time::{Duration, SystemTime};

use berth_blob::ByteStream;
use berth_meta::{LinkOutcome, UploadPin, UploadRecord};
use berth_oci::{Algorithm, Digest, RepoName};

use crate::clock::now_millis;
use crate::{Fault, RegistryError};

use super::{group_quota_error, quota_error, Registry};

type Result<T> = std::result::Result<T, RegistryError>;

impl std::fmt::Debug for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadState({}, {} bytes)", self.id, self.size)
    }
}

/// Where an upload session stands.
pub struct UploadState {
    /// Session id.
    pub id: String,
    /// Bytes received.
    pub size: u64,
}

/// A chunk of upload data as the client sent it.
pub struct Chunk {
    /// `Content-Range` (inclusive), if given.
    pub range: Option<(u64, u64)>,
    /// `Content-Length`, if given.
    pub length: Option<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({:?}, {:?})", self.range, self.length)
    }
}

impl Registry {
    /// Open a new upload session.
    pub async fn start_upload(&self, repo: &RepoName, algorithm: Algorithm) -> Result<UploadState> {
        self.check_room()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_millis();
        let record = UploadRecord {
            id: id.clone(),
            repo: repo.to_string(),
            created_at: now,
            updated_at: now,
        };
        // The row first: a backend that keeps its upload state in the
        // database (S3) writes it there.
        self.meta.create_upload(&record).await?;
        if let Err(e) = self.blobs.upload_create(&id, algorithm).await {
            let _ = self.meta.delete_upload(&id).await;
            return Err(e.into());
        }
        Ok(UploadState { id, size: 0 })
    }

    async fn check_upload(&self, repo: &RepoName, id: &str) -> Result<UploadRecord> {
        match self.meta.get_upload(id).await? {
            Some(u) if u.repo == repo.as_str() => Ok(u),
            _ => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
        }
    }

    /// How stale an upload's recorded activity may get before a chunk
    /// refreshes it: a minute, or a tenth of the expiry if that is shorter.
    /// Each refresh is a database commit (an fsync with SQLite), which a
    /// chunked push of 5 MiB chunks paid on every chunk.
    fn touch_interval_ms(&self) -> i64 {
        let tenth = self.config.upload_expiry.as_millis() / 10;
        i64::try_from(tenth.min(60_000)).unwrap_or(60_000)
    }

    /// Bytes received by an upload session.
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadState> {
        self.check_upload(repo, id).await?;
        // A write that failed after its chunk was answered is reported here.
        let size = self
            .blobs
            .upload_size(id)
            .await
            .map_err(RegistryError::from);
        match self.discard_if_full(id, size).await? {
            Some(size) => Ok(UploadState {
                id: id.to_owned(),
                size,
            }),
            None => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
        }
    }

    /// Append a chunk. `range` is the inclusive `Content-Range` if the client
    /// sent one; without it the body is appended at the end (streamed upload).
    pub async fn upload_chunk(
        &self,
        repo: &RepoName,
        id: &str,
        chunk: Chunk,
    ) -> Result<UploadState> {
        let upload = self.check_upload(repo, id).await?;
        self.append_chunk(&upload, chunk).await
    }

    /// Append a chunk to `upload`, a session already checked.
    async fn append_chunk(&self, upload: &UploadRecord, chunk: Chunk) -> Result<UploadState> {
        let result = self.append_chunk_to(upload, chunk).await;
        self.discard_if_full(&upload.id, result).await
    }

    /// An upload that failed on a full disk is removed at once, its data
    /// with it: the client cannot finish it, and it holds space.
    async fn discard_if_full<T>(&self, id: &str, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.fault() == Some(Fault::StorageFull) {
                tracing::warn!(
                    upload = id,
                    "upload refused on a full disk; its data is removed"
                );
                self.discard_upload(id).await;
            }
        }
        result
    }

    async fn append_chunk_to(&self, upload: &UploadRecord, chunk: Chunk) -> Result<UploadState> {
        self.check_room()?;
        let id = upload.id.as_str();
        let Chunk {
            range,
            length,
            body,
        } = chunk;
        if let Some((start, end)) = range.filter(|(s, e)| e < s) {
            return Err(RegistryError::BlobUploadInvalid(format!(
                "Content-Range {start}-{end} ends before it starts"
            )));
        }
        // Where the chunk starts, and the most the upload may hold after it.
        // A ranged chunk may not run past its range's end. A body of known
        // length is placed at the size just read, as a ranged chunk would
        // be, so that a large one goes to the blob store's large blocks
        // from its first byte rather than after its first megabytes. A body
        // of unknown length may grow the upload up to the limit.
        let max = self.config.max_blob_bytes;
        let (offset, limit) = match (range, length) {
            (Some((start, end)), _) => (Some(start), end.saturating_add(1)),
            (None, Some(len)) => {
                let current = self.blobs.upload_size(id).await?.unwrap_or(0);
                (Some(current), current.saturating_add(len))
            }
            (None, None) => (None, max),
        };
        // A chunk that announces more than the limit is refused before any of it is read.
        if offset.is_some() && limit > max {
            self.discard_upload(id).await;
            return Err(RegistryError::TooLarge {
                what: "blob",
                limit: max,
            });
        }
        let result = self.blobs.upload_append(id, offset, body, limit).await;
        let now = now_millis();
        if now - upload.updated_at >= self.touch_interval_ms() {
            self.meta.touch_upload(id, now).await?;
        }
        let size = match result {
            Ok(size) => size,
            Err(berth_blob::BlobError::TooLarge { .. }) if range.is_some() => {
                return Err(RegistryError::SizeInvalid(
                    "chunk is longer than its Content-Range".into(),
                ))
            }
            Err(e @ berth_blob::BlobError::TooLarge { .. }) => {
                self.discard_upload(id).await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((_, end)) = range {
            if size != end + 1 {
                return Err(RegistryError::SizeInvalid(format!(
                    "chunk ended at byte {size} but Content-Range said {}",
                    end + 1
                )));
            }
        }
        Ok(UploadState {
            id: id.to_owned(),
            size,
        })
    }

    /// Close an upload: append an optional last chunk, verify the digest,
    /// store the blob and link it into the repository.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        last_chunk: Option<Chunk>,
    ) -> Result<()> {
        let upload = self.check_upload(repo, id).await?;
        let result = self.finish_checked(repo, &upload, digest, last_chunk).await;
        self.discard_if_full(id, result).await
    }

    async fn finish_checked(
        &self,
        repo: &RepoName,
        upload: &UploadRecord,
        digest: &Digest,
        last_chunk: Option<Chunk>,
    ) -> Result<()> {
        let id = upload.id.as_str();
        match last_chunk {
            // The digest is pinned while the last chunk arrives: the pin is a
            // database commit the push would otherwise wait for after it.
            // The chunk's failure, if any, is the one reported.
            Some(chunk) => {
                let (appended, pinned) = tokio::join!(
                    self.append_chunk_to(upload, chunk),
                    self.pin_upload(id, digest)
                );
                appended?;
                pinned?;
            }
            None => self.pin_upload(id, digest).await?,
        }
        // The quota is checked exactly when the blob is linked (a blob the
        // namespace already holds costs nothing); refused bytes stay unlinked
        // and garbage collection reclaims them.
        let quota = self.policy(repo.namespace()).await?.quota_bytes;
        let committed = self.blobs.upload_commit(id, digest).await;
        if matches!(committed, Err(berth_blob::BlobError::DigestMismatch { .. })) {
            // The content is gone; so is the session.
            self.meta.delete_upload(id).await?;
        }
        let size = committed?;
        let outcome = self
            .meta
            .link_blob(repo, digest, size as i64, now_millis(), quota, Some(id))
            .await?;
        match outcome {
            LinkOutcome::Linked => self.record_local(digest).await,
            // The pin keeps the collector away, so this does not happen.
            LinkOutcome::Collecting => {
                self.meta.delete_upload(id).await?;
                Err(RegistryError::Busy(format!(
                    "blob {digest} is being deleted by garbage collection; upload it again"
                )))
            }
            LinkOutcome::OverQuota { used } => {
                self.quota_reached(repo, used, quota.unwrap_or(0)).await;
                Err(quota_error(repo, used, quota.unwrap_or(0), size as i64))
            }
            LinkOutcome::OverGroupQuota { group, used, quota } => {
                Err(group_quota_error(&group, used, quota, size as i64))
            }
        }
    }

    /// Pin the digest an upload is about to commit. While the collector is
    /// deleting a blob with that digest, wait (a deletion takes moments);
    /// the bytes are moved into place only after it is gone.
    pub(crate) async fn pin_upload(&self, id: &str, digest: &Digest) -> Result<()> {
        const WAIT: Duration = Duration::from_millis(100);
        const ATTEMPTS: u32 = 300;
        for _ in 0..ATTEMPTS {
            match self.meta.pin_upload(id, digest).await? {
                UploadPin::Pinned => return Ok(()),
                UploadPin::NoSession => {
                    return Err(RegistryError::BlobUploadUnknown(id.to_owned()))
                }
                UploadPin::Collecting => tokio::time::sleep(WAIT).await,
            }
        }
        Err(RegistryError::Busy(format!(
            "blob {digest} is being deleted by garbage collection; retry the upload shortly"
        )))
    }

    /// Cancel an upload session.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        self.check_upload(repo, id).await?;
        self.blobs.upload_delete(id).await?;
        self.meta.delete_upload(id).await?;
        Ok(())
    }

    async fn discard_upload(&self, id: &str) {
        if let Err(e) = self.blobs.upload_delete(id).await {
            tracing::warn!(upload = id, error = %e, "could not remove upload data");
        }
        if let Err(e) = self.meta.delete_upload(id).await {
            tracing::warn!(upload = id, error = %e, "could not remove upload record");
        }
    }

    /// Discard upload sessions idle for longer than the expiry, and upload
    /// data no session owns. Returns how many were removed.
    pub async fn expire_uploads(&self) -> Result<usize> {
        let cutoff = now_millis() - self.config.upload_expiry.as_millis() as i64;
        let idle = self.meta.idle_uploads(cutoff).await?;
        let mut removed = 0;
        for id in &idle {
            self.discard_upload(id).await;
            removed += 1;
        }
        let cutoff_time = SystemTime::now() - self.config.upload_expiry;
        for (id, modified) in self.blobs.list_uploads().await? {
            if modified < cutoff_time && self.meta.get_upload(&id).await?.is_none() {
                self.discard_upload(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
