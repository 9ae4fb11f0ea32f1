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
//! [`Management`] serves the management API and console: listings with
//! statistics, namespace edits and deletes, image and tag deletes, API
//! tokens, console sessions and audit queries.
//!
//! [`Collector`] is the online garbage collector.
//!
//! [`platform`] spans regions: per-region blob storage, replication and
//! on-demand fetches between regions, synchronization rules and records.
//!
//! [`events`] tells the outside what happened: webhooks, signed and
//! delivered through the database's job queue, whose worker is in [`jobs`].
//!
//! Layering: calls `berth-meta`, `berth-blob` and `berth-oci`; is called by the
//! HTTP surfaces and the binary. It knows nothing of HTTP.

pub mod access;
mod auth;
mod directory;
mod error;
pub mod events;
mod gc;
pub mod jobs;
mod journal;
mod manage;
pub mod password;
pub mod platform;
pub mod policy;
mod pulls;
pub mod read_cache;
mod registry;
pub mod reserve;
pub mod secrets;
pub mod throttle;
pub mod token;
pub mod zones;

pub use auth::{Auth, AuthConfig, AuthError};
pub use directory::{Directory, DirectoryConfig, DirectoryError, NamespaceSpec, RegistryUserSpec};
pub use error::{Fault, RegistryError};
pub use gc::{Collector, GcCause, GcConfig, GcError, GcOptions};
pub use journal::MetaJournal;
pub use manage::{
    check_labels, parse_labels, AuditFilter, ImageListFilter, ImageListView, ImageView, ListFilter,
    Management, ManagementConfig, NamespaceChanges, NamespaceFilter, NamespaceTab, NewSession,
    Page, Paging, PolicyView, RetentionReport, SessionInfo, TagDeleted, TagView, API_TOKEN_PREFIX,
    MAX_PER_PAGE,
};
pub use pulls::PullCounter;
pub use registry::{
    now_millis, BlobRead, Chunk, ManifestPush, PushedManifest, Registry, RegistryConfig,
    UploadState,
};
