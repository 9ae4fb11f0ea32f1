//! Synchronization rules, and the one record model of every copy between
//! regions and every replication task with a remote registry: a record
//! per tag and target, its status, progress and the job that carries it.

/// A synchronization rule: each new tag of `repo` is copied to the same
/// repository name in `target_namespace`, its blobs placed in
/// `target_region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRule {
    /// Id.
    pub id: i64,
    /// Source repository.
    pub repo: String,
    /// Region the copy's blobs are placed in.
    pub target_region: String,
    /// Namespace the copy goes to.
    pub target_namespace: String,
    /// Whether a differing tag in the target is overwritten.
    pub overwrite: bool,
    /// Who made the rule.
    pub author: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
}

/// A rule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSyncRule {
    /// Source repository.
    pub repo: String,
    /// Target region.
    pub target_region: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Overwrite differing tags.
    pub overwrite: bool,
    /// Author.
    pub author: String,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// Statuses of a synchronization record.
pub mod sync_status {
    /// Queued.
    pub const WAITING: &str = "waiting";
    /// A worker copies it.
    pub const RUNNING: &str = "running";
    /// Copied.
    pub const SUCCEEDED: &str = "succeeded";
    /// Gave up; see the error.
    pub const FAILED: &str = "failed";
    /// The target's tag differs and the rule does not overwrite.
    pub const CONFLICT: &str = "conflict";
}

/// What makes a record a replication task with a remote registry (the
/// record's `repo` is then the local repository, the source of a push or
/// the destination of a pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationTask {
    /// The replication rule (gone when deleted since).
    pub rule_id: Option<i64>,
    /// The run it belongs to (`None` for a task triggered by a push or a
    /// delete).
    pub run_id: Option<i64>,
    /// The remote registry.
    pub remote: String,
    /// The repository on the remote.
    pub remote_repo: String,
    /// `push` or `pull`.
    pub direction: String,
    /// `copy` or `delete`.
    pub action: String,
}

/// Kinds of record.
pub mod record_kind {
    /// A synchronization between regions.
    pub const SYNC: &str = "sync";
    /// A replication task with a remote registry.
    pub const REPLICATION: &str = "replication";
}

/// A synchronization of one tag to one target, to record and queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSyncRecord {
    /// The rule it follows.
    pub rule_id: i64,
    /// Source repository.
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// The manifest the tag pointed at.
    pub digest: String,
    /// Target region.
    pub target_region: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Overwrite differing tags.
    pub overwrite: bool,
    /// `automatic` or `manual`.
    pub trigger: String,
    /// Who caused it.
    pub operator: String,
    /// Set for a replication task.
    pub replication: Option<ReplicationTask>,
}

/// A synchronization record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    /// Id.
    pub id: i64,
    /// The rule (gone when it was deleted since).
    pub rule_id: Option<i64>,
    /// Source repository.
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// Manifest digest.
    pub digest: String,
    /// Target region.
    pub target_region: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Overwrite differing tags.
    pub overwrite: bool,
    /// `automatic` or `manual`.
    pub trigger: String,
    /// Who caused it.
    pub operator: String,
    /// See [`sync_status`].
    pub status: String,
    /// Queued, Unix milliseconds.
    pub created_at: i64,
    /// Started (last attempt).
    pub started_at: Option<i64>,
    /// Finished.
    pub finished_at: Option<i64>,
    /// Bytes copied between regions.
    pub bytes_copied: i64,
    /// Blobs copied.
    pub blobs_copied: i64,
    /// Blobs the target region already held.
    pub blobs_present: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// Why it failed or conflicted.
    pub error: Option<String>,
    /// See [`record_kind`].
    pub kind: String,
    /// Set for a replication task.
    pub replication: Option<ReplicationTask>,
}

/// A record's progress, written by its job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// New status.
    pub status: String,
    /// Attempt start.
    pub started_at: Option<i64>,
    /// End.
    pub finished_at: Option<i64>,
    /// Bytes copied.
    pub bytes_copied: i64,
    /// Blobs copied.
    pub blobs_copied: i64,
    /// Blobs already present.
    pub blobs_present: i64,
    /// Attempts.
    pub attempts: i64,
    /// Error.
    pub error: Option<String>,
}

/// A filter over synchronization records, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRecordQuery {
    /// Source repository.
    pub repo: Option<String>,
    /// Source repositories in this namespace.
    pub namespace: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Created at or after, Unix milliseconds.
    pub since: Option<i64>,
    /// Created before.
    pub until: Option<i64>,
    /// Of this kind (see [`record_kind`]).
    pub kind: Option<String>,
    /// Tasks of this replication run.
    pub run: Option<i64>,
    /// Tasks of this replication rule.
    pub replication_rule: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Records skipped.
    pub offset: i64,
}

/// The job kind that carries out a synchronization record.
pub const SYNC_TAG_JOB: &str = "sync_tag";
