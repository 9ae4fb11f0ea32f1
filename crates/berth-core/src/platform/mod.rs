//! The platform beyond one region and one repository: regions with their
//! own blob storage ([`Regions`]), eager replication and on-demand fetches
//! between them, synchronization rules with their records
//! ([`Synchronizer`]), the remote registries Berth talks to
//! ([`Remotes`]), replication with them ([`Replications`]) and the
//! pull-through cache of them ([`Proxy`]). Their work runs as jobs of the database's queue
//! (`crate::jobs`).
//!
//! Layering: above the registry and the directory (it calls both); the
//! HTTP surfaces call the synchronizer.

mod confirm;
mod copy;
mod proxy;
mod regions;
mod remote_replication;
mod remotes;
mod replication;
mod sync;

pub use crate::jobs::{JobFailure, Worker, WorkerConfig};
pub(crate) use copy::channel_stream;
pub use proxy::{Proxy, ProxyNamespace};
pub use regions::{LagHistogram, PlatformStats, Region, Regions, DEFAULT_REGION, LAG_BUCKETS};
pub(crate) use remote_replication::{deletion_tasks, push_tasks, Deletion};
pub use remote_replication::{
    destination_name, direction, rule_filters, trigger, Filters, PatternSet, Replications,
    RuleSpec, MIN_INTERVAL_SECS,
};
pub use remotes::{
    check_name as check_remote_name, ConnectionTest, DeclaredRemote, Remote, RemoteSpec, Remotes,
};
pub(crate) use replication::replicate_job;
pub use replication::{CopyCounts, RegionAvailability, REPLICATE_IMAGE_JOB};
pub use sync::{target_repository, SyncRuleSpec, SyncTags, Synchronizer, MAX_MANUAL_TAGS};
