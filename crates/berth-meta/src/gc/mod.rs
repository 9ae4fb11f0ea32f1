//! What the garbage collector needs from the metadata store.
//!
//! The collector works in short transactions that hold the store's
//! *collection lock* exclusively; every transaction that creates a reference
//! (a blob link, a manifest push, an upload about to commit) holds it
//! shared. So a collection step sees either all of such a transaction or
//! none of it, and never decides on a state that a concurrent push is about
//! to change. (SQLite has one writer at a time, which gives the same
//! guarantee; PostgreSQL uses a transaction-scoped advisory lock.)
//!
//! Blob bytes are deleted in three steps: a blob that nothing links,
//! references or is about to commit is *claimed* (its `state` becomes the
//! collecting run's id, so it can no longer be linked or committed), its
//! bytes are deleted, and it is *forgotten*. An upload that finds its digest
//! claimed waits until the claim is gone.

use async_trait::async_trait;

use crate::error::MetaResult;

mod shards;

pub use shards::{GcShard, GcShardRecord, GcShardStore};

/// A blob claimed for deletion (or that a dry run would claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobClaim {
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
}

/// Where a scan of repository blob links (or of manifests) resumes: a
/// repository and a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCursor {
    repo_id: i64,
    digest: String,
}

impl LinkCursor {
    pub(crate) fn new(repo_id: i64, digest: String) -> Self {
        LinkCursor { repo_id, digest }
    }

    pub(crate) fn parts(&self) -> (i64, &str) {
        (self.repo_id, &self.digest)
    }
}

/// One batch of claimed blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimBatch {
    /// Blobs claimed, in digest order.
    pub claims: Vec<BlobClaim>,
    /// Where the next batch's search starts; `None` when it is complete.
    pub next: Option<String>,
}

/// One batch of deleted untagged manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntaggedBatch {
    /// Manifests deleted, as (repository, digest).
    pub deleted: Vec<(String, String)>,
    /// Where the next batch starts; `None` when the scan is complete.
    pub next: Option<LinkCursor>,
}

/// One batch of deleted links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBatch {
    /// Links deleted.
    pub deleted: i64,
    /// Where the next batch starts; `None` when the scan is complete.
    pub next: Option<LinkCursor>,
}

/// What a collection would do right now (computed in a transaction that is
/// rolled back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPreview {
    /// Untagged manifests that would be deleted, as (repository, digest).
    pub manifests: Vec<(String, String)>,
    /// Repository blob links that would be removed.
    pub links: i64,
    /// Blobs whose bytes would be deleted.
    pub blobs: Vec<BlobClaim>,
}

/// Counters of one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcCounts {
    /// Idle upload sessions discarded.
    pub uploads_expired: i64,
    /// Untagged manifests deleted.
    pub manifests_deleted: i64,
    /// Repository blob links removed.
    pub links_deleted: i64,
    /// Missing links restored (a manifest referenced a blob its repository
    /// did not link).
    pub links_restored: i64,
    /// Blobs whose bytes were deleted.
    pub blobs_deleted: i64,
    /// Bytes reclaimed (blobs and orphaned storage objects).
    pub bytes_reclaimed: i64,
    /// Storage objects no metadata knew, deleted by a full sweep.
    pub orphans_deleted: i64,
    /// Blobs the blob step expected to delete when it began (an estimate:
    /// pushes and deletes go on meanwhile).
    pub blobs_expected: i64,
    /// Their bytes.
    pub bytes_expected: i64,
}

/// A collection to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGcRun {
    /// What started it: `schedule`, `cli` or `api`.
    pub cause: String,
    /// Who started it.
    pub actor: String,
    /// Only report what would be reclaimed.
    pub dry_run: bool,
    /// Also list the storage for objects no metadata knows.
    pub full_sweep: bool,
    /// Start time, Unix milliseconds.
    pub now: i64,
}

/// A recorded collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRun {
    /// Run id.
    pub id: i64,
    /// What started it.
    pub cause: String,
    /// Who started it.
    pub actor: String,
    /// Whether it only reported.
    pub dry_run: bool,
    /// Whether it listed the storage.
    pub full_sweep: bool,
    /// `running`, `finished`, `failed` or `abandoned`.
    pub status: String,
    /// The step it is in (or ended in).
    pub stage: String,
    /// Start, Unix milliseconds.
    pub started_at: i64,
    /// Last progress report, Unix milliseconds.
    pub updated_at: i64,
    /// End, Unix milliseconds.
    pub finished_at: Option<i64>,
    /// What it did so far.
    pub counts: GcCounts,
    /// When its blob step began, Unix milliseconds.
    pub blobs_started_at: Option<i64>,
    /// When its blob step ended, Unix milliseconds.
    pub blobs_ended_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Whether an upload could pin the digest it is about to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadPin {
    /// Pinned: the collector leaves the digest alone while the session lives.
    Pinned,
    /// A blob with this digest is being deleted; try again shortly.
    Collecting,
    /// The session no longer exists.
    NoSession,
}

/// The metadata side of garbage collection.
#[async_trait]
pub trait GcStore:
    GcShardStore + crate::integrity::IntegrityStore + Send + Sync + std::fmt::Debug
{
    /// Delete up to `limit` manifests pushed before `before` that no tag
    /// points at, no manifest in their repository lists, no referrer refers
    /// to, and that are not referrers of a present subject, scanning after
    /// `after`. A deletion can make a manifest the scan passed untagged in
    /// turn (an index's children): a caller scans again until a scan
    /// deletes nothing.
    async fn gc_delete_untagged(
        &self,
        before: i64,
        after: Option<&LinkCursor>,
        limit: i64,
    ) -> MetaResult<UntaggedBatch>;
    /// Delete up to `limit` repository blob links made before `before` that
    /// no manifest of their repository references, scanning after `after`.
    async fn gc_delete_links(
        &self,
        before: i64,
        after: Option<&LinkCursor>,
        limit: i64,
    ) -> MetaResult<LinkBatch>;
    /// Restore up to `limit` missing links: a blob a manifest references
    /// (config or layer) that its repository does not link, while the blob
    /// is stored. Nothing Berth does leaves one; a database restored or
    /// edited by hand can. Returns them as (repository, digest).
    async fn gc_restore_links(&self, now: i64, limit: i64) -> MetaResult<Vec<(String, String)>>;
    /// Claim for run `run` up to `limit` blobs (after digest `after`, up
    /// to and including `until`) that nothing links, references or is
    /// about to commit. The search runs without the collection lock; the
    /// claim re-checks each blob under it, so pushes wait only for the
    /// claim itself.
    async fn gc_claim_blobs(
        &self,
        run: i64,
        after: Option<&str>,
        until: Option<&str>,
        limit: i64,
    ) -> MetaResult<ClaimBatch>;
    /// Mark runs silent since `stale_before` as abandoned, and hand their
    /// claims (and those of ended runs) to run `run`, at most `limit`.
    async fn gc_adopt_claims(
        &self,
        run: i64,
        stale_before: i64,
        limit: i64,
    ) -> MetaResult<Vec<BlobClaim>>;
    /// Forget a blob claimed by run `run` once its bytes are gone.
    async fn gc_forget_blob(&self, run: i64, digest: &str) -> MetaResult<()>;
    /// Forget many blobs claimed by run `run` (one transaction).
    async fn gc_forget_blobs(&self, run: i64, digests: &[String]) -> MetaResult<()>;
    /// Claim for run `run` a storage object that no metadata knows and no
    /// upload is about to commit. Returns whether it was claimed.
    async fn gc_claim_orphan(
        &self,
        run: i64,
        digest: &str,
        size: i64,
        now: i64,
    ) -> MetaResult<bool>;
    /// How many blobs, and how many bytes, a collection's blob step would
    /// delete now: those nothing links, references or is about to commit,
    /// and those claimed by runs that are no longer running. Read without
    /// the collection lock, so an estimate.
    async fn gc_estimate_blobs(&self) -> MetaResult<(i64, i64)>;
    /// What a collection would delete now, without deleting anything.
    async fn gc_preview(
        &self,
        untagged_before: Option<i64>,
        links_before: i64,
    ) -> MetaResult<GcPreview>;

    /// Record the start of a collection; returns its id.
    async fn gc_start_run(&self, run: &NewGcRun) -> MetaResult<i64>;
    /// Report a run's progress. The first report in stage `blobs` marks
    /// the blob step's start, the first report after it its end.
    async fn gc_update_run(
        &self,
        id: i64,
        stage: &str,
        counts: &GcCounts,
        now: i64,
    ) -> MetaResult<()>;
    /// Record a run's end.
    async fn gc_finish_run(
        &self,
        id: i64,
        status: &str,
        counts: &GcCounts,
        error: Option<&str>,
        now: i64,
    ) -> MetaResult<()>;
    /// Forget ended runs (and their shards) but the newest `keep` runs.
    /// Returns how many runs it forgot.
    async fn gc_prune_runs(&self, keep: i64) -> MetaResult<u64>;
    /// The newest runs first, at most `limit`.
    async fn gc_runs(&self, limit: i64) -> MetaResult<Vec<GcRun>>;
    /// One run.
    async fn gc_run(&self, id: i64) -> MetaResult<Option<GcRun>>;
}
