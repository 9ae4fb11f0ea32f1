//! Copying a blob from one region's storage to another's, storage to
//! storage, streaming (never the whole blob in memory), verified against
//! its digest before it counts as there.

use std::io;

use berth_blob::ByteStream;
use berth_meta::UploadRecord;
use berth_oci::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Region;
use crate::registry::now_millis;
use crate::{Registry, RegistryError};

type Result<T> = std::result::Result<T, RegistryError>;

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
    ) -> Result<bool> {
        let platform = self.platform.as_deref().ok_or_else(|| {
            RegistryError::Unsupported("copies between regions need the platform tables".into())
        })?;
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
