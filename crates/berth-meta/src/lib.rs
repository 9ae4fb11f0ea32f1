//! The metadata store: repositories, blob links, manifests, tags, upload
//! sessions and pull counters ([`MetaStore`]); and the directory of
//! accounts, project groups, namespaces, permissions, registry users, the
//! audit log and settings ([`DirectoryStore`]); and the paginated views,
//! API tokens and console sessions of the management surfaces
//! ([`ManagementStore`]); and what the garbage collector needs
//! ([`GcStore`]); and, for a platform of several regions, where each
//! blob's bytes are, the durable job queue and synchronization rules with
//! their records ([`PlatformStore`]).
//!
//! [`MetaStore`] is the registry contract; [`SqliteStore`] (the embedded default) and
//! [`PostgresStore`] implement it with the same SQL, each with its own
//! `migrations/` directory.
//!
//! Layering: depends only on `berth-oci`. The services layer (`berth-core`)
//! calls it; it holds no business rules beyond keeping its data consistent.

mod backend;
pub mod changes;
mod directory;
mod error;
pub mod events;
mod gc;
pub mod platform;
mod registry;
mod views;

pub use backend::{PostgresStore, SqliteStore};
pub use directory::{
    Account, AuditEntry, DirectoryStore, Grant, Member, Namespace, NewAccount, NewNamespace,
    NewRegistryUser, ProjectGroup, RegistryUser, RepositoryPermission,
};
pub use error::{MetaError, MetaResult};
pub use events::{
    DeliveryAttempt, EventStore, NewEvent, NewWebhook, Webhook, WebhookDelivery, WebhookUpdate,
};
pub use gc::{
    BlobClaim, GcCounts, GcPreview, GcRun, GcStore, LinkBatch, LinkCursor, NewGcRun, UploadPin,
};
pub use platform::{
    ImageBlob, Job, JobCount, NewJob, NewSyncRecord, NewSyncRule, PlatformStore, RegionUsage,
    ReplicationTask, SyncProgress, SyncRecord, SyncRecordQuery, SyncRule,
};
pub use platform::{RemoteRecord, RemoteStore, RemoteUpdate};
pub use platform::{
    ReplicationRule, ReplicationRuleInput, ReplicationRun, ReplicationStore, RunCounts,
};
pub use registry::*;
pub use views::{
    ApiToken, AuditQuery, ImageListQuery, ImageListing, ImageScope, ManagementStore,
    NamespaceQuery, NamespaceScope, NamespaceSort, NamespaceSummary, NamespaceUpdate, NewApiToken,
    RepositoryQuery, RepositorySort, RepositorySummary, Session, TagQuery, TagSort, TagSummary,
    Window,
};
