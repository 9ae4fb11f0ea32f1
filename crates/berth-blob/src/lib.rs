//! Content-addressed blob storage.
//!
//! Blobs are stored once for the whole registry under their digest; uploads
//! are written to a private file, verified against the expected digest while
//! streaming, fsynced and renamed into place, so a blob is either complete
//! and verified or absent. Nothing here holds a whole blob in memory.
//!
//! Two backends: `fs/` (a local filesystem) and `s3/` (S3-compatible object
//! storage, for several nodes). An S3 upload keeps its state (multipart id,
//! parts, staged remainder, hash state) in an [`UploadJournal`] that the
//! services layer backs with the database, so any node can continue it.
//!
//! Layering: depends only on `berth-oci`. The services layer (`berth-core`)
//! calls it; it knows nothing of repositories, which live in the metadata store.

mod fs;
mod read;
mod s3;
mod sys;

use std::fmt::Debug;
use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::Stream;

pub use fs::{release_idle_buffers, FsBlobStore};
pub use s3::{S3BlobStore, S3Config, MIN_PART_SIZE as S3_MIN_PART_SIZE};

/// A stream of request body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Errors of the blob storage layer.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No such upload session.
    #[error("upload {0} not found")]
    UploadUnknown(String),
    /// A chunk did not start where the upload ends.
    #[error("chunk starts at {given} but the upload holds {current} bytes")]
    RangeMismatch {
        /// Bytes already in the upload.
        current: u64,
        /// Offset the chunk claimed.
        given: u64,
    },
    /// The content did not hash to the expected digest.
    #[error("content digest {actual} does not match {expected}")]
    DigestMismatch {
        /// What the client said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The upload would exceed the size limit.
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading the request body failed (client went away, bad chunking).
    #[error("reading the request body failed: {0}")]
    Body(#[source] io::Error),
    /// The storage itself failed. Object storage that cannot be reached
    /// reads as `NotConnected`.
    #[error("blob storage I/O: {0}")]
    Io(#[from] io::Error),
    /// The upload journal (the database, behind the services layer) failed.
    #[error("upload journal: {0}")]
    Journal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BlobError {
    /// The kind of the underlying I/O error (`Other` for the rest), so that
    /// a full disk reads as one however the error travelled.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            BlobError::Io(e) | BlobError::Body(e) => e.kind(),
            _ => io::ErrorKind::Other,
        }
    }

    /// Whether the storage refused a write because it is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, BlobError::Io(_))
            && matches!(
                self.io_kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            )
    }
}

/// The saved state of an upload, as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedUpload {
    /// Bumped by every save; a save names the version it read.
    pub version: i64,
    /// The backend's state, `None` until it first saves one.
    pub state: Option<String>,
}

/// Where a backend keeps the state of its uploads so that any node can
/// continue them: the upload's row in the database. Implemented by the
/// services layer; the filesystem backend needs none.
#[async_trait]
pub trait UploadJournal: Send + Sync + Debug {
    /// The saved state of upload `id`, or `None` when no such session exists.
    async fn load(&self, id: &str) -> Result<Option<SavedUpload>, BlobError>;
    /// Replace the state if it is still at `version`. Returns false when
    /// another request changed it first (or the session is gone).
    async fn save(&self, id: &str, version: i64, state: &str) -> Result<bool, BlobError>;
}

/// Where blob bytes live. Implemented by the filesystem backend; an
/// S3-compatible backend implements the same contract.
#[async_trait]
pub trait BlobStore: Send + Sync + Debug {
    /// Size of a stored blob, if present.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;
    /// Open a stored blob (or the inclusive byte range `start..=end`) as a
    /// stream of chunks of at most `chunk` bytes; a backend may read the
    /// next chunk while the current one is sent.
    async fn open_chunks(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
        chunk: usize,
    ) -> Result<Option<ByteStream>, BlobError>;
    /// Remove a stored blob. Returns whether it existed.
    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError>;
    /// Remove many stored blobs (those already gone are no error). A
    /// backend that can delete many objects in one request does (S3's
    /// `DeleteObjects`, 1,000 keys a request); others delete one by one.
    async fn delete_many(&self, digests: &[Digest]) -> Result<(), BlobError> {
        for d in digests {
            self.delete(d).await?;
        }
        Ok(())
    }
    /// Stored blobs with their sizes, in digest order after `after`, at
    /// most `limit` (a full listing of the storage, for the collector's
    /// sweep for objects no metadata knows).
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<(Digest, u64)>, BlobError>;

    /// Start an empty upload session.
    async fn upload_create(&self, id: &str, algorithm: Algorithm) -> Result<(), BlobError>;
    /// Bytes received so far, or `None` for an unknown upload.
    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError>;
    /// Append a chunk that must start at `offset` (the current size; `None`
    /// appends at the end), refusing to grow the upload past `limit` bytes.
    /// Returns the new size. The last of the chunk's bytes may still be
    /// being written when this returns: the upload's next operation waits
    /// for them, and fails if that write did.
    async fn upload_append(
        &self,
        id: &str,
        offset: Option<u64>,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError>;
    /// Verify the upload against `expected`, make it durable and move it into
    /// place. On a digest mismatch the upload is discarded. Returns the size.
    async fn upload_commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError>;
    /// Discard an upload. Returns whether it existed.
    async fn upload_delete(&self, id: &str) -> Result<bool, BlobError>;
    /// Upload sessions on storage with their last modification time.
    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError>;
    /// Whether the storage is reachable and writable.
    async fn ping(&self) -> Result<(), BlobError>;
    /// A short-lived URL a client may download the blob from directly, when
    /// the backend offers one and is configured to (S3 with `redirect`).
    async fn download_url(&self, _digest: &Digest) -> Result<Option<String>, BlobError> {
        Ok(None)
    }
}
