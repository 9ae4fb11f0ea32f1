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

mod upload;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use berth_oci::{Algorithm, Digest};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::{BlobError, BlobStore, ByteStream, UploadJournal};

/// The smallest part S3 accepts (but for the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The most parts one multipart upload may have.
pub const MAX_PARTS: usize = 10_000;

/// Where the bucket is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:3900`); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region name (Garage: `garage`).
    pub region: String,
    /// Key prefix inside the bucket, without slashes at the ends; may be empty.
    pub prefix: String,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never shown in `Debug`).
    pub secret_access_key: String,
    /// Size of every part but the last, at least [`MIN_PART_SIZE`]. An
    /// upload holds at most two parts in memory: one filling, one sending.
    pub part_size: usize,
    /// Let clients download from the bucket directly, through presigned
    /// URLs valid this long (`None`: Berth streams every download).
    pub redirect: Option<Duration>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("part_size", &self.part_size)
            .field("redirect", &self.redirect)
            .finish()
    }
}

/// Blob storage in an S3-compatible bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: AmazonS3,
    prefix: String,
    part_size: usize,
    journal: Arc<dyn UploadJournal>,
    bucket: String,
    redirect: Option<Duration>,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl S3BlobStore {
    /// A store on `config`'s bucket whose uploads keep their state in `journal`.
    pub fn new(config: &S3Config, journal: Arc<dyn UploadJournal>) -> Result<Self, BlobError> {
        if config.bucket.is_empty() {
            return Err(invalid("storage.s3.bucket is empty"));
        }
        if config.part_size < MIN_PART_SIZE {
            return Err(invalid("the S3 part size must be at least 5 MiB"));
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_disable_tagging(true)
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| invalid(&e.to_string()))?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                store,
                prefix: config.prefix.trim_matches('/').to_owned(),
                part_size: config.part_size,
                journal,
                bucket: config.bucket.clone(),
                redirect: config.redirect,
            }),
        })
    }

    fn key(&self, rest: &str) -> Path {
        if self.inner.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.inner.prefix))
        }
    }

    fn blob_key(&self, digest: &Digest) -> Path {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    async fn head_size(&self, key: &Path) -> Result<Option<u64>, BlobError> {
        match self.inner.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// A stream of an object (or of `range`), `None` when absent.
    async fn get_stream(
        &self,
        key: &Path,
        range: Option<(u64, u64)>,
    ) -> Result<Option<ByteStream>, BlobError> {
        let options = GetOptions {
            range: range.map(|(start, end)| GetRange::Bounded(start..end + 1)),
            ..Default::default()
        };
        match self.inner.store.get_opts(key, options).await {
            Ok(result) => Ok(Some(Box::pin(result.into_stream().map_err(
                |e| match storage_error(e) {
                    BlobError::Io(e) => e,
                    other => io::Error::other(other.to_string()),
                },
            )))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    async fn delete_key(&self, key: &Path) -> Result<(), BlobError> {
        match self.inner.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

fn invalid(message: &str) -> BlobError {
    BlobError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        message.to_owned(),
    ))
}

/// An object store error as an I/O error whose kind says what happened: a
/// bucket that cannot be reached is `NotConnected` (the services layer
/// answers 503), a refused write `PermissionDenied`, the rest `Other`.
pub(crate) fn storage_error(e: object_store::Error) -> BlobError {
    let kind = match &e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        _ if unreachable(&e) => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    BlobError::Io(io::Error::new(kind, e.to_string()))
}

/// Whether an error comes from not reaching the service at all (refused
/// connection, timeout) or from its saying it is unavailable (5xx).
fn unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            if r.is_connect() || r.is_timeout() || r.status().is_some_and(|s| s.is_server_error()) {
                return true;
            }
        }
        let text = err.to_string();
        if text.contains("Service Unavailable")
            || text.contains("status 503")
            || text.contains("error sending request")
        {
            return true;
        }
        cause = err.source();
    }
    false
}

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
