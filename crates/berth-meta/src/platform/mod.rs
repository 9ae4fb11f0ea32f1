//! What a platform of several regions keeps in the database: where each
//! blob's bytes are, the durable job queue, namespaces' replication
//! regions, and synchronization rules with their records
//! ([`PlatformStore`]).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::MetaResult;
use crate::events::EventStore;

pub mod jobs;
pub mod records;
pub mod regions;
pub mod remote_replication;
pub mod remotes;

pub use jobs::{job_state, Job, JobCount, NewJob};
pub use records::{
    record_kind, sync_status, NewSyncRecord, NewSyncRule, ReplicationTask, SyncProgress,
    SyncRecord, SyncRecordQuery, SyncRule, SYNC_TAG_JOB,
};
pub use regions::{ImageBlob, RegionUsage};
pub use remote_replication::{
    ReplicationRule, ReplicationRuleInput, ReplicationRun, ReplicationStore, RunCounts,
};
pub use remotes::{RemoteRecord, RemoteStore, RemoteUpdate};

/// The platform's tables.
#[async_trait]
pub trait PlatformStore:
    EventStore
    + crate::platform::remotes::RemoteStore
    + crate::platform::remote_replication::ReplicationStore
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
    async fn namespace_copy_regions(&self, namespace: &str) -> MetaResult<Option<Option<String>>>;
    /// Set them. Returns false for an unknown namespace.
    async fn set_namespace_copy_regions(
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
