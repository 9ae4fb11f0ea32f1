//! Berth's business rules.
//!
//! [`Directory`] holds the tenancy model and access rules: accounts, project
//! groups, namespaces, members, per-repository permissions, registry users
//! and grants, authentication, and [`access::allowed`], the pure function
//! that decides what a principal may do on a repository.
//!
//! [`Registry`] implements the OCI Distribution operations over a
//! [`MetaStore`](berth_meta::MetaStore) and a [`BlobStore`](berth_blob::BlobStore):
//! upload sessions, manifest validation and reference checks, deletes,
//! listings, referrers and batched pull counting.
//!
//! Layering: calls `berth-meta`, `berth-blob` and `berth-oci`; is called by the
//! HTTP surfaces and the binary. It knows nothing of HTTP.

pub mod access;
mod auth;
mod directory;
mod error;
pub mod password;
mod pulls;
mod registry;
pub mod token;

pub use auth::{Auth, AuthConfig, AuthError};
pub use directory::{Directory, DirectoryConfig, DirectoryError, NamespaceSpec, RegistryUserSpec};
pub use error::RegistryError;
pub use pulls::PullCounter;
pub use registry::{
    now_millis, BlobRead, Chunk, ManifestPush, PushedManifest, Registry, RegistryConfig,
    UploadState,
};
