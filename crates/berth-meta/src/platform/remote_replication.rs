//! Replication with remote registries: rules, their runs, and the tasks
//! of a run (rows of the synchronization records, the one record model;
//! see [`crate::platform::ReplicationTask`]).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::MetaResult;
use crate::platform::NewSyncRecord;

/// The job kind that lists what a run covers and makes its tasks.
pub const REPLICATION_RUN_JOB: &str = "replication_run";
/// The job kind that carries out one replication task.
pub const REPLICATE_REMOTE_JOB: &str = "replicate_remote";

/// Statuses of a run's listing (its outcome is its tasks').
pub mod run_status {
    /// The job lists what the rule covers.
    pub const LISTING: &str = "listing";
    /// Its tasks are made.
    pub const LISTED: &str = "listed";
    /// Listing failed; see the error.
    pub const FAILED: &str = "failed";
}

/// A replication rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRule {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `push` (local to remote) or `pull` (remote to local).
    pub direction: String,
    /// The remote registry's name.
    pub remote: String,
    /// Repository and tag filters, as JSON text.
    pub filters: String,
    /// Namespace (pull) or path prefix (push) of the copies.
    pub destination: String,
    /// Leading path components dropped from source names (-1: all but the last).
    pub flatten: i64,
    /// Whether a differing tag at the destination is overwritten.
    pub overwrite: bool,
    /// Whether deletions are replicated.
    pub deletions: bool,
    /// Whether referrers (signatures, SBOMs) of copied manifests go too.
    pub referrers: bool,
    /// Bytes per second per task (0: no limit).
    pub bandwidth: i64,
    /// `manual`, `on_push` or `schedule`.
    pub trigger: String,
    /// Seconds between scheduled runs.
    pub interval_secs: Option<i64>,
    /// When the next scheduled run is due, Unix milliseconds.
    pub next_run_at: Option<i64>,
    /// Disabled rules neither trigger nor run on schedule.
    pub enabled: bool,
    /// Who made it.
    pub author: String,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
}

/// A rule to create or the new state of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRuleInput {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `push` or `pull`.
    pub direction: String,
    /// The remote registry's name.
    pub remote: String,
    /// Filters, as JSON text.
    pub filters: String,
    /// Destination.
    pub destination: String,
    /// Flattening.
    pub flatten: i64,
    /// Overwrite differing tags.
    pub overwrite: bool,
    /// Replicate deletions.
    pub deletions: bool,
    /// Copy referrers.
    pub referrers: bool,
    /// Bytes per second per task.
    pub bandwidth: i64,
    /// Trigger.
    pub trigger: String,
    /// Seconds between scheduled runs.
    pub interval_secs: Option<i64>,
    /// First scheduled run.
    pub next_run_at: Option<i64>,
    /// Enabled.
    pub enabled: bool,
    /// Author (kept on update).
    pub author: String,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// How a run's tasks stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Tasks.
    pub total: i64,
    /// Waiting for a worker (or a retry).
    pub waiting: i64,
    /// Being carried out.
    pub running: i64,
    /// Done.
    pub succeeded: i64,
    /// Given up.
    pub failed: i64,
    /// Left alone: the destination's tag differs and the rule does not
    /// overwrite.
    pub conflict: i64,
    /// Bytes transferred.
    pub bytes: i64,
}

/// A run of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRun {
    /// Id.
    pub id: i64,
    /// The rule (gone when deleted since).
    pub rule_id: Option<i64>,
    /// The rule's name when it ran.
    pub rule_name: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Who started it.
    pub operator: String,
    /// See [`run_status`].
    pub status: String,
    /// Why listing failed.
    pub error: Option<String>,
    /// Started, Unix milliseconds.
    pub created_at: i64,
    /// When its tasks were made.
    pub listed_at: Option<i64>,
    /// Its tasks.
    pub tasks: RunCounts,
}

/// Replication rules and runs.
#[async_trait]
pub trait ReplicationStore: Send + Sync + Debug {
    /// Create a rule; `Conflict` when the name is taken.
    async fn create_replication_rule(
        &self,
        rule: &ReplicationRuleInput,
    ) -> MetaResult<ReplicationRule>;
    /// Replace a rule's settings (its author and creation stay); `None`
    /// for an unknown id, `Conflict` when the new name is taken.
    async fn update_replication_rule(
        &self,
        id: i64,
        rule: &ReplicationRuleInput,
    ) -> MetaResult<Option<ReplicationRule>>;
    /// Every rule, by id.
    async fn replication_rules(&self) -> MetaResult<Vec<ReplicationRule>>;
    /// A rule.
    async fn replication_rule(&self, id: i64) -> MetaResult<Option<ReplicationRule>>;
    /// Delete a rule (its runs and records stay). Returns whether it existed.
    async fn delete_replication_rule(&self, id: i64) -> MetaResult<bool>;
    /// Enabled scheduled rules whose next run is due.
    async fn due_replication_rules(&self, now: i64) -> MetaResult<Vec<ReplicationRule>>;
    /// Start a run of a rule: record it and queue its listing job, in one
    /// transaction. With `next_run_at` (a scheduled run), only when the
    /// rule's next run is still due (`<= now`), moving it on; `None` when
    /// another node started it first or the rule is gone.
    async fn start_replication_run(
        &self,
        rule_id: i64,
        trigger: &str,
        operator: &str,
        now: i64,
        next_run_at: Option<i64>,
    ) -> MetaResult<Option<i64>>;
    /// A run, with its tasks counted.
    async fn replication_run(&self, id: i64) -> MetaResult<Option<ReplicationRun>>;
    /// A page of runs, newest first (of one rule, or all), with the total.
    async fn replication_runs(
        &self,
        rule: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> MetaResult<(Vec<ReplicationRun>, i64)>;
    /// End a run's listing: record its tasks and queue their jobs, and set
    /// its status (and error), in one transaction. Returns the tasks' ids.
    async fn finish_run_listing(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        tasks: &[NewSyncRecord],
        now: i64,
    ) -> MetaResult<Vec<i64>>;
}
