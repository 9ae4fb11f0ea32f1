//! Errors of the registry service, one variant per distinct client-visible
//! condition; each HTTP surface maps them to its wire format.

use berth_blob::BlobError;
use berth_meta::MetaError;
use berth_oci::{Digest, DigestError, ManifestError, NameError};

/// What a registry operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Repository name grammar.
    #[error("{0}")]
    NameInvalid(NameError),
    /// The repository does not exist.
    #[error("repository {0} is not known to the registry")]
    NameUnknown(String),
    /// Unknown blob in this repository.
    #[error("blob {0} is not known to the registry")]
    BlobUnknown(String),
    /// Unknown or foreign upload session.
    #[error("upload {0} is not known to the registry")]
    BlobUploadUnknown(String),
    /// The upload request is malformed.
    #[error("{0}")]
    BlobUploadInvalid(String),
    /// Bad digest, or the content does not match it.
    #[error("{0}")]
    DigestInvalid(String),
    /// A size did not match the content.
    #[error("{0}")]
    SizeInvalid(String),
    /// Manifest references missing blobs.
    #[error("manifest references blobs unknown to the repository: {}", join(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    /// Manifest references missing child manifests.
    #[error("manifest references manifests unknown to the repository: {}", join(.0))]
    ManifestChildUnknown(Vec<Digest>),
    /// The manifest is refused.
    #[error("{0}")]
    ManifestInvalid(String),
    /// Unknown manifest or tag.
    #[error("manifest {0} is not known to the registry")]
    ManifestUnknown(String),
    /// A chunk that does not continue the upload; `current` bytes are stored.
    #[error("chunk does not start where the upload ends ({current} bytes received)")]
    UploadRangeMismatch {
        /// Bytes already in the upload.
        current: u64,
    },
    /// A requested byte range lies outside the blob.
    #[error("requested range is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// Blob size.
        size: u64,
    },
    /// Content larger than allowed.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Manifest or blob.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// Refused by a rule (such as a limit).
    #[error("{0}")]
    Denied(String),
    /// A temporary condition; the client should retry shortly.
    #[error("{0}")]
    Busy(String),
    /// Operation switched off by configuration.
    #[error("{0}")]
    Unsupported(String),
    /// A pull-through cache's upstream registry could not serve what is
    /// not cached.
    #[error("{0}")]
    Upstream(String),
    /// The client's body broke off.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// Database failure.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Storage failure.
    #[error("blob storage: {0}")]
    Storage(std::io::Error),
}

fn join(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RegistryError {
    /// Whether this is a server-side failure (to be logged and answered 500,
    /// or with its [`Fault`]'s own status when it has one).
    pub fn is_internal(&self) -> bool {
        matches!(self, RegistryError::Meta(_) | RegistryError::Storage(_))
    }

    /// The platform fault behind this error, if it is one.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            RegistryError::Meta(m) => meta_fault(m),
            RegistryError::Storage(e) => io_fault(e),
            _ => None,
        }
    }
}

/// Errors that may say the disk is full (see `Registry::freeing`), of
/// whichever layer.
pub(crate) trait FaultOf {
    fn fault_of(&self) -> Option<Fault>;
}

impl FaultOf for RegistryError {
    fn fault_of(&self) -> Option<Fault> {
        self.fault()
    }
}

impl FaultOf for MetaError {
    fn fault_of(&self) -> Option<Fault> {
        meta_fault(self)
    }
}

/// A failure of the platform rather than of the request, which clients and
/// operators must be told as such: the HTTP surfaces answer it with its own
/// status (507, 503) and message instead of a bare 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The disk (of the blob storage or of the embedded database) is full.
    StorageFull,
    /// The database cannot be reached (or is shutting down).
    DatabaseUnavailable,
    /// The blob storage service (S3) cannot be reached.
    StorageUnavailable,
}

impl Fault {
    /// What to tell the client.
    pub fn message(self) -> &'static str {
        match self {
            Fault::StorageFull => {
                "storage is full: Berth cannot store more data until space is freed \
                 (delete images or tags and run garbage collection, or add capacity)"
            }
            Fault::DatabaseUnavailable => {
                "the database is unavailable; retry shortly (Berth reconnects by itself)"
            }
            Fault::StorageUnavailable => {
                "the blob storage is unavailable; retry shortly (Berth reconnects by itself)"
            }
        }
    }
}

/// The fault behind a database error.
pub fn meta_fault(e: &MetaError) -> Option<Fault> {
    if e.is_storage_full() {
        Some(Fault::StorageFull)
    } else if e.is_unavailable() {
        Some(Fault::DatabaseUnavailable)
    } else {
        None
    }
}

/// The fault behind a storage error (object storage that cannot be reached
/// reads as `NotConnected`).
pub fn io_fault(e: &std::io::Error) -> Option<Fault> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded => Some(Fault::StorageFull),
        K::NotConnected | K::ConnectionRefused | K::TimedOut => Some(Fault::StorageUnavailable),
        _ => None,
    }
}

/// The fault behind a blob storage error.
pub fn blob_fault(e: &BlobError) -> Option<Fault> {
    match e {
        BlobError::Io(io) => io_fault(io),
        BlobError::Journal(source) => source.downcast_ref::<MetaError>().and_then(meta_fault),
        _ => None,
    }
}

/// An error saying that storage is full, made by Berth itself (while the
/// space reserve is released, uploads are refused before the disk is).
pub(crate) fn storage_full(detail: &str) -> RegistryError {
    RegistryError::Storage(std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        detail.to_owned(),
    ))
}

impl From<NameError> for RegistryError {
    fn from(e: NameError) -> Self {
        match e {
            NameError::InvalidDigest(d) => RegistryError::DigestInvalid(d.to_string()),
            other => RegistryError::NameInvalid(other),
        }
    }
}

impl From<DigestError> for RegistryError {
    fn from(e: DigestError) -> Self {
        RegistryError::DigestInvalid(e.to_string())
    }
}

impl From<ManifestError> for RegistryError {
    fn from(e: ManifestError) -> Self {
        RegistryError::ManifestInvalid(e.to_string())
    }
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::UploadUnknown(id) => RegistryError::BlobUploadUnknown(id),
            BlobError::RangeMismatch { current, .. } => {
                RegistryError::UploadRangeMismatch { current }
            }
            BlobError::DigestMismatch { expected, actual } => RegistryError::DigestInvalid(
                format!("content digest {actual} does not match the provided digest {expected}"),
            ),
            BlobError::TooLarge { limit } => RegistryError::TooLarge {
                what: "blob",
                limit,
            },
            BlobError::Body(e) => RegistryError::Body(e.to_string()),
            BlobError::Io(e) => RegistryError::Storage(e),
            BlobError::Journal(source) => match source.downcast::<MetaError>() {
                Ok(meta) => RegistryError::Meta(*meta),
                Err(other) => RegistryError::Storage(std::io::Error::other(other)),
            },
        }
    }
}

/// What a directory operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// The thing still holds content that must go first.
    #[error("{0}")]
    NotEmpty(String),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A limit would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// Wrong credentials, or a disabled or expired user (deliberately vague).
    #[error("invalid username or password")]
    AuthenticationFailed,
    /// Database failure.
    #[error(transparent)]
    Meta(MetaError),
    /// Hashing failure.
    #[error("password hashing: {0}")]
    Hashing(String),
    /// Too many password checks at once: the client should retry shortly.
    #[error("{0}")]
    Busy(String),
    /// A registry operation failed (see its error).
    #[error(transparent)]
    Registry(RegistryError),
}

impl DirectoryError {
    /// Whether this is a server-side failure (to be logged and answered 500).
    pub fn is_internal(&self) -> bool {
        match self {
            DirectoryError::Meta(_) | DirectoryError::Hashing(_) => true,
            DirectoryError::Registry(e) => e.is_internal(),
            _ => false,
        }
    }

    /// The platform fault behind this error, if it is one.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            DirectoryError::Meta(m) => meta_fault(m),
            DirectoryError::Registry(e) => e.fault(),
            _ => None,
        }
    }
}

impl FaultOf for DirectoryError {
    fn fault_of(&self) -> Option<Fault> {
        self.fault()
    }
}

impl From<RegistryError> for DirectoryError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Meta(m) => DirectoryError::Meta(m),
            RegistryError::NameInvalid(n) => DirectoryError::Invalid(n.to_string()),
            RegistryError::NameUnknown(n) => DirectoryError::NotFound(format!("image {n}")),
            RegistryError::ManifestUnknown(m) => DirectoryError::NotFound(format!("tag {m}")),
            other => DirectoryError::Registry(other),
        }
    }
}

impl From<MetaError> for DirectoryError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Conflict(what) => DirectoryError::Conflict(what),
            other => DirectoryError::Meta(other),
        }
    }
}
