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
//! [`Collector`] is the online garbage collector; [`integrity::Integrity`]
//! checks stored data (`berth fsck`, the scrub) and repairs it from another
//! region.
//!
//! Regions are part of the registry: each has its own blob storage, and
//! [`Registry`] copies images between them (on push, or on demand at the
//! first pull). [`platform`] holds what reaches outside one registry:
//! synchronization rules and records, remote registries, pull-through
//! proxies and replication to other registries; [`RuleTriggers`](platform::RuleTriggers)
//! plugs its rules into a push or delete through the [`Triggers`] hook.
//!
//! [`events`] tells the outside what happened: webhooks, signed and
//! delivered through the database's job queue, whose worker is in [`jobs`].
//!
//! Layering: calls `berth-meta`, `berth-blob` and `berth-oci`; is called by the
//! HTTP surfaces and the binary. It knows nothing of HTTP.
//!
//! # In detail
//!
//! One folder per domain. `registry/`: `Registry` and its files, `uploads`
//! (sessions, chunks, commits), `blobs` (reads with on-demand fetches from
//! other regions, mounts, links), `manifests` (validation, the push in one
//! transaction, deletes), `listings` (tags, catalog, referrers), `space` (the
//! reserve kept for deletes on a full disk), `regions` (the blob stores by
//! region and their counters) and `region_copies` (copies of images between
//! Berth's own regions, eagerly on push and on demand at the first pull).
//! `directory/`: accounts and groups, namespaces, registry users,
//! authentication and the access facts. `management/`: namespaces, images and
//! tags, retention, API tokens, sessions, audit queries, paging. `platform/`:
//! what reaches outside one registry (sync rules, remotes, remote
//! replication, the pull-through cache, `confirm` for blobs a remote claims
//! to hold, and `RuleTriggers` which plugs the rules into pushes). `events/`:
//! events and webhooks. `pull_policy/`: the one hook a manifest read passes
//! (signature policies per namespace and platform, verdicts cached and
//! dropped by the change feed). `jobs/`: the worker of the database's job queue,
//! which dispatches each job kind to its domain.
//!
//! Small shared modules: `access` (the pure `allowed` and its facts,
//! table-tested), `auth` (logins with throttling, scope grants, tokens),
//! `token` (scopes and HS256 JWTs), `password` (argon2id on a bounded pool),
//! `secrets` (the `Sealer` for stored secrets), `read_cache` (hot reads,
//! dropped by the change feed), `policy` (namespace policies and
//! `retention_plan`, pure), `zones` (internal and external clients, pure),
//! `clock`, `validate` and `error` (`RegistryError`, `DirectoryError`, and
//! `Fault`, which tells a full disk and an unreachable database from other
//! failures).
//!
//! Every side effect of a change happens here, whichever surface asks:
//! `Management::delete_manifest` is the /v2 delete with its audit entry and
//! event, `Management::delete_tag` the API's; pushes write their audit entry,
//! events and jobs in their transaction.

pub mod access;
mod auth;
mod clock;
mod directory;
mod error;
pub mod events;
mod gc;
pub mod identity;
pub mod integrity;
pub mod jobs;
mod journal;
mod management;
pub mod model;
pub mod password;
pub mod platform;
pub mod policy;
pub mod pull_policy;
mod pulls;
pub mod read_cache;
mod registry;
pub mod reserve;
pub mod secrets;
pub mod throttle;
pub mod token;
mod validate;
pub mod vulnerabilities;
pub mod zones;

pub use auth::{Auth, AuthConfig, AuthError};
pub use clock::now_millis;
pub use directory::{Directory, DirectoryConfig, NamespaceSpec, RegistryUserSpec};
pub use error::{DirectoryError, Fault, RegistryError};
pub use gc::{
    progress as gc_progress, Collector, GcCause, GcConfig, GcError, GcOptions, GcProgress,
};
pub use journal::MetaJournal;
pub use management::{
    AuditFilter, ImageListFilter, ImageListView, ImageView, ListFilter, Management,
    ManagementConfig, NamespaceChanges, NamespaceFilter, NamespaceTab, NewSession, Page, Paging,
    PolicyView, RegionStatus, RetentionReport, SessionInfo, TagDeleted, TagView, API_TOKEN_PREFIX,
    MAX_PER_PAGE,
};
pub use pulls::PullCounter;
pub use registry::{
    BlobRead, Chunk, CopyCounts, LagHistogram, ManifestPush, NoTriggers, PlatformStats,
    PushedManifest, Region, RegionAvailability, Regions, Registry, RegistryConfig, Triggers,
    UploadState, DEFAULT_REGION, LAG_BUCKETS, REPLICATE_IMAGE_JOB,
};
pub use validate::{check_labels, parse_labels};
