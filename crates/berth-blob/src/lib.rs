//! Content-addressed blob storage.
//!
//! Blobs are stored once for the whole registry under their digest; uploads
//! are written to a private file, verified against the expected digest while
//! streaming, fsynced and renamed into place, so a blob is either complete
//! and verified or absent. Nothing here holds a whole blob in memory.
//!
//! Layering: depends only on `berth-oci`. The services layer (`berth-core`)
//! calls it; it knows nothing of repositories, which live in the metadata store.

mod fs;
mod read;
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
    /// The storage itself failed.
    #[error("blob storage I/O: {0}")]
    Io(#[from] io::Error),
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
}
