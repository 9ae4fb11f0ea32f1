//! What a platform of several regions keeps in the database: where each
//! blob's bytes are, the durable job queue, namespaces' replication
//! regions, and synchronization rules with their records
//! ([`PlatformStore`]).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::MetaResult;

/// Job states.
pub mod job_state {
    /// Waiting for its time (`run_after`) and a worker.
    pub const WAITING: &str = "waiting";
    /// Leased by a worker.
    pub const RUNNING: &str = "running";
    /// Gave up after too many attempts; kept with its error.
    pub const FAILED: &str = "failed";
}

/// A job to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do (the services layer dispatches on it).
    pub kind: String,
    /// Only workers of this region run it; `None`: any worker.
    pub region: Option<String>,
    /// At most one live job per key: enqueueing a second is a no-op.
    pub dedupe_key: Option<String>,
    /// Its arguments, as JSON text.
    pub payload: String,
    /// Not before this time, Unix milliseconds.
    pub run_after: i64,
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// What to do.
    pub kind: String,
    /// The region whose workers run it.
    pub region: Option<String>,
    /// Arguments, as JSON text.
    pub payload: String,
    /// How many times it was claimed, this time included.
    pub attempts: i64,
    /// When it was enqueued, Unix milliseconds.
    pub created_at: i64,
}

/// How many jobs of a region are in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    /// The region (`None`: any).
    pub region: Option<String>,
    /// `waiting`, `running` or `failed`.
    pub state: String,
    /// Jobs.
    pub count: i64,
}

/// A blob an image needs, with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlob {
    /// Digest.
    pub digest: String,
    /// Bytes.
    pub size: i64,
}

/// What a region's storage holds, by the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionUsage {
    /// Region.
    pub region: String,
    /// Blobs recorded there.
    pub blobs: i64,
    /// Their bytes.
    pub bytes: i64,
}

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

/// The platform's tables.
#[async_trait]
pub trait PlatformStore:
    crate::events::EventStore
    + crate::remotes::RemoteStore
    + crate::replication::ReplicationStore
    + Send
    + Sync
    + Debug
{
    /// Record that `region` holds a blob, if the blob is known and not
    /// being collected. Returns whether it is recorded.
    async fn add_blob_location(&self, digest: &str, region: &str, now: i64) -> MetaResult<bool>;
    /// The regions recorded as holding a blob.
    async fn blob_locations(&self, digest: &str) -> MetaResult<Vec<String>>;
    /// Every blob a manifest needs, its child manifests' included; `None`
    /// when the manifest is not in the repository.
    async fn image_blobs(&self, repo: &str, digest: &str) -> MetaResult<Option<Vec<ImageBlob>>>;
    /// Per region, how many of a manifest's blobs (its children's
    /// included) it holds; with the number of blobs it needs.
    async fn image_presence(
        &self,
        repo: &str,
        digest: &str,
    ) -> MetaResult<(i64, Vec<(String, i64)>)>;
    /// Manifests with a blob `region` does not hold, after the cursor
    /// `(repo, digest)`, at most `limit`: (repo, digest, pushed at).
    async fn unreplicated_images(
        &self,
        region: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> MetaResult<Vec<(String, String, i64)>>;
    /// Blobs and bytes recorded per region.
    async fn region_usage(&self) -> MetaResult<Vec<RegionUsage>>;

    /// A namespace's replication regions as stored (JSON list, `None`: all);
    /// the outer `None` for an unknown namespace.
    async fn namespace_replication(&self, namespace: &str) -> MetaResult<Option<Option<String>>>;
    /// Set them. Returns false for an unknown namespace.
    async fn set_namespace_replication(
        &self,
        namespace: &str,
        regions: Option<&str>,
        now: i64,
    ) -> MetaResult<bool>;

    /// Queue jobs (each a no-op when a live job has its dedupe key).
    /// Returns how many were queued.
    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> MetaResult<usize>;
    /// Lease the next job for a worker of `region`: a waiting one whose
    /// time has come, or a running one whose lease ran out.
    async fn claim_job(
        &self,
        region: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> MetaResult<Option<Job>>;
    /// Extend a lease. Returns false when `owner` lost it.
    async fn renew_job(&self, id: i64, owner: &str, until: i64) -> MetaResult<bool>;
    /// Done: remove the job. Returns false when `owner` had lost it.
    async fn finish_job(&self, id: i64, owner: &str) -> MetaResult<bool>;
    /// Failed: wait until `run_after` and try again, or, with `None`, give
    /// up and keep it as failed.
    async fn fail_job(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        run_after: Option<i64>,
        now: i64,
    ) -> MetaResult<()>;
    /// Jobs per region and state.
    async fn job_counts(&self) -> MetaResult<Vec<JobCount>>;

    /// Create a rule; `Conflict` when the same target exists.
    async fn create_sync_rule(&self, rule: &NewSyncRule) -> MetaResult<SyncRule>;
    /// A repository's rules.
    async fn sync_rules(&self, repo: &str) -> MetaResult<Vec<SyncRule>>;
    /// A rule.
    async fn sync_rule(&self, id: i64) -> MetaResult<Option<SyncRule>>;
    /// Delete a rule. Returns whether it existed.
    async fn delete_sync_rule(&self, id: i64) -> MetaResult<bool>;
    /// Record synchronizations and queue a job for each, in one
    /// transaction. Returns the records' ids.
    async fn start_syncs(&self, records: &[NewSyncRecord], now: i64) -> MetaResult<Vec<i64>>;
    /// A record.
    async fn sync_record(&self, id: i64) -> MetaResult<Option<SyncRecord>>;
    /// Write a record's progress, with the events its end causes, in one
    /// transaction.
    async fn update_sync_record(
        &self,
        id: i64,
        progress: &SyncProgress,
        events: &[crate::events::NewEvent],
    ) -> MetaResult<()>;
    /// A page of records, newest first, with the total matching.
    async fn sync_records(&self, query: &SyncRecordQuery) -> MetaResult<(Vec<SyncRecord>, i64)>;
}

/// The job kind that carries out a synchronization record.
pub const SYNC_TAG_JOB: &str = "sync_tag";
