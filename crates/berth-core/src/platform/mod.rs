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
mod proxy;
mod remote_replication;
mod remotes;
mod sync;
mod triggers;

pub use proxy::{Proxy, ProxyNamespace};
pub use remote_replication::{
    destination_name, direction, rule_filters, trigger, Filters, PatternSet, Replications,
    RuleSpec, MIN_INTERVAL_SECS,
};
pub use remotes::{
    check_name as check_remote_name, ConnectionTest, DeclaredRemote, Remote, RemoteSpec, Remotes,
};
pub use sync::{target_repository, SyncRuleSpec, SyncTags, Synchronizer, MAX_MANUAL_TAGS};
pub use triggers::RuleTriggers;
