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
//!
//! # In detail
//!
//! Each domain has a folder: `registry/` (repositories, blob links,
//! manifests, tags, uploads, pull counts), `directory/` (tenancy, registry
//! users, grants, audit log, settings), `views/` (the management surfaces'
//! lists), `gc/`, `events/` (webhooks and their deliveries), `platform/`
//! (blob locations per region, the job queue, records, remotes, remote
//! replication) `identity/` (trust rules of workload identity),
//! `pull_policy/`, `vulnerability/` (inventories, advisories, findings),
//! `integrity/` (what integrity checks read and record) and `changes/`
//! (the change feed); `backup.rs` copies the SQLite database online for
//! `berth backup`. `SCHEMA_VERSION` is the schema this build migrates to. Each folder's `mod.rs`
//! holds its types and trait; its `sql.rs` holds the SQL as ordinary async
//! functions, written once in the dialect both databases speak (numbered `$n`
//! parameters, `ON CONFLICT`).
//!
//! `backend/sqlite.rs` and `backend/postgres.rs` define, for their database,
//! the pool and row types (`Db`, `DbRow`), the few statements that differ
//! (claiming a job, a JSON array test), how to open the store and its change
//! feed, and then compile every domain's `sql.rs` against those types through
//! `#[path]`. So the SQL is formatted by rustfmt and read by rust-analyzer,
//! and each backend is a real type: [`SqliteStore`] (WAL, one writer
//! connection and a read pool) or [`PostgresStore`]. Each backend has its own
//! `migrations/` directory.
//!
//! A namespace's repositories are found by a range scan on the unique name
//! index (`ns/` < name < `ns0`), so lists page in the database. The image
//! list across namespaces joins each repository to its namespace through
//! `repositories.namespace`, a generated column with an index. Registry
//! tables: `repositories`, `blobs` (one row per stored blob),
//! `repository_blobs` (which repository may see which blob), `manifests`
//! (exact bytes, subject, artifact type, pull counters), `manifest_refs`,
//! `tags`, `uploads`. Times are Unix milliseconds. A manifest push (manifest,
//! references, tags, tag evictions, audit entry, events and the jobs it
//! triggers) is one transaction (`registry/sql.rs`, `put_manifest`).
//!
//! The store suite in `tests/store_suite.rs` runs the same checks against
//! SQLite always and against PostgreSQL when `BERTH_TEST_POSTGRES_URL` is
//! set.

mod backend;
pub mod backup;
pub mod changes;
mod directory;
mod error;
pub mod events;
mod gc;
pub mod identity;
pub mod integrity;
pub mod platform;
pub mod pull_policy;
mod registry;
mod views;
pub mod vulnerability;

pub use backend::{PostgresStore, SqliteStore};

// `SCHEMA_VERSION`: the schema this build migrates to (build.rs).
include!(concat!(env!("OUT_DIR"), "/schema_version.rs"));
pub use directory::{
    Account, AuditEntry, DirectoryStore, Grant, Member, Namespace, NewAccount, NewNamespace,
    NewRegistryUser, ProjectGroup, RegistryUser, RepositoryPermission,
};
pub use error::{MetaError, MetaResult};
pub use events::{
    DeliveryAttempt, EventStore, NewEvent, NewWebhook, Webhook, WebhookDelivery, WebhookUpdate,
};
pub use gc::{
    BlobClaim, ClaimBatch, GcCounts, GcPreview, GcRun, GcShard, GcShardRecord, GcShardStore,
    GcStore, LinkBatch, LinkCursor, NewGcRun, UntaggedBatch, UploadPin,
};
pub use identity::{
    GroupMappingRecord, IdentityStore, MappedMembership, MembershipKind, NewTrustRule, TrustRule,
};
pub use platform::{
    ImageBlob, Job, JobCount, NewJob, NewSyncRecord, NewSyncRule, PlatformStore, RegionUsage,
    ReplicationTask, SyncProgress, SyncRecord, SyncRecordQuery, SyncRule,
};
pub use platform::{RemoteRecord, RemoteStore, RemoteUpdate};
pub use platform::{
    ReplicationRule, ReplicationRuleInput, ReplicationRun, ReplicationStore, RunCounts,
};
pub use pull_policy::{PullPolicyInput, PullPolicyRecord, PullPolicyStore};
pub use registry::*;
pub use views::{
    ApiToken, AuditQuery, ImageListQuery, ImageListing, ImageScope, ManagementStore,
    NamespaceQuery, NamespaceScope, NamespaceSort, NamespaceSummary, NamespaceUpdate, NewApiToken,
    RepositoryQuery, RepositorySort, RepositorySummary, Session, TagQuery, TagSort, TagSummary,
    Window,
};
