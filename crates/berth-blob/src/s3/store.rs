//! The S3 store itself: its configuration, the client of the bucket, its
//! keys, and how S3 errors become blob errors.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use berth_oci::Digest;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::{BlobError, ByteStream, UploadJournal};

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
    /// upload sends up to 16 MiB of parts at once while the next fills.
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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: AmazonS3,
    pub(super) prefix: String,
    pub(super) part_size: usize,
    pub(super) journal: Arc<dyn UploadJournal>,
    pub(super) bucket: String,
    pub(super) redirect: Option<Duration>,
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

    pub(super) fn key(&self, rest: &str) -> Path {
        if self.inner.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.inner.prefix))
        }
    }

    pub(super) fn blob_key(&self, digest: &Digest) -> Path {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    pub(super) async fn head_size(&self, key: &Path) -> Result<Option<u64>, BlobError> {
        match self.inner.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// A stream of an object (or of `range`), `None` when absent.
    pub(super) async fn get_stream(
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

    /// Delete `keys` in `DeleteObjects` requests of up to 1,000 keys
    /// (several in flight); keys already gone are no error.
    pub(super) async fn delete_keys(&self, keys: Vec<Path>) -> Result<(), BlobError> {
        use futures_util::StreamExt;
        let locations = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut done = self.inner.store.delete_stream(locations);
        while let Some(r) = done.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error(e)),
            }
        }
        Ok(())
    }

    pub(super) async fn delete_key(&self, key: &Path) -> Result<(), BlobError> {
        match self.inner.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

pub(super) fn invalid(message: &str) -> BlobError {
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
pub(super) fn unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
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
