//! Berth's business rules.
//!
//! [`Registry`] implements the OCI Distribution operations over a
//! [`MetaStore`](berth_meta::MetaStore) and a [`BlobStore`](berth_blob::BlobStore):
//! upload sessions, manifest validation and reference checks, deletes,
//! listings, referrers and batched pull counting.
//!
//! Layering: calls `berth-meta`, `berth-blob` and `berth-oci`; is called by the
//! HTTP surfaces and the binary. It knows nothing of HTTP.

mod error;
mod pulls;
mod registry;

pub use error::RegistryError;
pub use pulls::PullCounter;
pub use registry::{
    now_millis, BlobRead, ManifestPush, PushedManifest, Registry, RegistryConfig, UploadState,
};
