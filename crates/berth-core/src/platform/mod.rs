//! What reaches beyond one registry: sync rules that copy tags from one
//! namespace to another, across regions too, with their records
//! ([`Synchronizer`]); the remote registries Berth talks to ([`Remotes`]);
//! remote replication, pushing to and pulling from them
//! ([`Replications`]); and the pull-through cache of them ([`Proxy`]).
//! Copies between Berth's own regions are the registry's
//! (`crate::registry`, "region copies"). The work runs as jobs of the
//! database's queue (`crate::jobs`); [`RuleTriggers`] plugs the rules into
//! pushes through the registry's [`crate::Triggers`] hook.
//!
//! Layering: above the registry and the directory (it calls both); the
//! HTTP surfaces call it.

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
