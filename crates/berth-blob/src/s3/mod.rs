//! S3-compatible object storage, for several nodes sharing one bucket.
//!
//! Keys under the configured prefix:
//! - `blobs/<algorithm>/<hex>`: a stored blob, written only after its digest
//!   was verified;
//! - `uploads/<id>/data`: the multipart upload of a large blob;
//! - `uploads/<id>/pending/<offset>`: received bytes not yet a whole part
//!   (S3 refuses parts under 5 MiB but the last, and clients send small
//!   chunks), staged so that any node can continue the upload.
//!
//! The upload's state (multipart id, part ETags, staged segments, the
//! digest's hash state) lives in the [`UploadJournal`], that is the
//! database. Committing a small blob is one PUT; a large one is completed
//! and copied once server-side to its digest key.

mod store;
mod upload;

pub use store::{S3BlobStore, S3Config, MIN_PART_SIZE};

use std::time::SystemTime;

use async_trait::async_trait;
use berth_oci::{Algorithm, Digest};
use futures_util::StreamExt;
use object_store::signer::Signer;
use object_store::ObjectStore;

use crate::{BlobError, BlobStore, ByteStream};

use store::*;

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        self.head_size(&self.blob_key(digest)).await
    }

    async fn open_chunks(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
        _chunk: usize,
    ) -> Result<Option<ByteStream>, BlobError> {
        self.get_stream(&self.blob_key(digest), range).await
    }

    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        let key = self.blob_key(digest);
        if self.head_size(&key).await?.is_none() {
            return Ok(false);
        }
        self.delete_key(&key).await?;
        Ok(true)
    }

    async fn delete_many(&self, digests: &[Digest]) -> Result<(), BlobError> {
        self.delete_keys(digests.iter().map(|d| self.blob_key(d)).collect())
            .await
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<(Digest, u64)>, BlobError> {
        let prefix = self.key("blobs");
        let skip = prefix.as_ref().len() + 1;
        let mut listing = match after {
            Some(d) => self
                .inner
                .store
                .list_with_offset(Some(&prefix), &self.blob_key(d)),
            None => self.inner.store.list(Some(&prefix)),
        };
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(storage_error)?;
            let rest = &meta.location.as_ref()[skip..];
            // `<algorithm>/<hex>`; anything else is not Berth's and is left alone.
            let Some(digest) = rest
                .split_once('/')
                .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok())
            else {
                continue;
            };
            if after.is_some_and(|a| digest.as_str() <= a.as_str()) {
                continue;
            }
            out.push((digest, meta.size));
            // S3 lists in key order, which is digest order: a page ends
            // here rather than after listing the rest of the bucket.
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn upload_create(&self, id: &str, algorithm: Algorithm) -> Result<(), BlobError> {
        upload::create(self, id, algorithm).await
    }

    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError> {
        upload::size(self, id).await
    }

    async fn upload_append(
        &self,
        id: &str,
        offset: Option<u64>,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        upload::append(self, id, offset, body, limit).await
    }

    async fn upload_commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        upload::commit(self, id, expected).await
    }

    async fn upload_delete(&self, id: &str) -> Result<bool, BlobError> {
        upload::delete(self, id).await
    }

    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        let prefix = self.key("uploads");
        let skip = prefix.as_ref().len() + 1;
        let mut listing = self.inner.store.list(Some(&prefix));
        let mut latest: std::collections::BTreeMap<String, SystemTime> = Default::default();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(storage_error)?;
            let rest = &meta.location.as_ref()[skip..];
            let Some((id, _)) = rest.split_once('/') else {
                continue;
            };
            let modified = SystemTime::from(meta.last_modified);
            let entry = latest.entry(id.to_owned()).or_insert(modified);
            *entry = (*entry).max(modified);
        }
        Ok(latest.into_iter().collect())
    }

    async fn download_url(&self, digest: &Digest) -> Result<Option<String>, BlobError> {
        let Some(valid) = self.inner.redirect else {
            return Ok(None);
        };
        let url = self
            .inner
            .store
            .signed_url(reqwest::Method::GET, &self.blob_key(digest), valid)
            .await
            .map_err(storage_error)?;
        Ok(Some(url.to_string()))
    }

    async fn ping(&self) -> Result<(), BlobError> {
        self.inner
            .store
            .list_with_delimiter(Some(&self.key("blobs")))
            .await
            .map(|_| ())
            .map_err(storage_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:3900".into()),
            bucket: "b".into(),
            region: "garage".into(),
            prefix: String::new(),
            path_style: true,
            access_key_id: "GKid".into(),
            secret_access_key: "very-secret".into(),
            part_size: MIN_PART_SIZE,
            redirect: None,
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("very-secret") && text.contains("[redacted]"),
            "{text}"
        );
    }
}
