//! What integrity checks read and record (`IntegrityStore`): the live
//! blobs and which regions hold them, references whose target is gone,
//! which stored objects no blob row knows, and the runs' reports.

use async_trait::async_trait;

use crate::error::MetaResult;

/// Live blobs (digest, size) in digest order after `$1`, at most `$2`: what
/// an integrity check re-hashes and what a backup copies.
pub(crate) const LIVE_BLOBS: &str =
    "SELECT digest, size FROM blobs WHERE state = 0 AND digest > $1 ORDER BY digest LIMIT $2";

/// A manifest's reference whose target is not there: a blob with no live
/// row, or a child manifest missing from the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRef {
    /// Repository name.
    pub repo: String,
    /// The manifest that refers.
    pub manifest: String,
    /// What it refers to.
    pub target: String,
    /// Whether the target is a child manifest (else a blob).
    pub child: bool,
}

/// One problem a run found, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityProblem {
    /// `damaged`, `missing`, `dangling` or `orphan`.
    pub kind: String,
    /// The region whose storage it concerns (empty for the database).
    pub region: String,
    /// The blob or manifest digest.
    pub digest: String,
    /// What was found, and what was done about it.
    pub detail: String,
}

/// What a run counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityCounts {
    /// Blobs re-hashed (one per region holding it).
    pub blobs_checked: i64,
    /// Bytes re-hashed.
    pub bytes_checked: i64,
    /// Stored blobs whose bytes no longer hash to their digest.
    pub damaged: i64,
    /// Blobs a region should hold and does not.
    pub missing: i64,
    /// Damaged or missing blobs copied back from a good copy.
    pub repaired: i64,
    /// References whose target is gone.
    pub dangling: i64,
    /// Stored objects no blob row knows (reported; `berth gc --full`
    /// reclaims them).
    pub orphans: i64,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrityRun {
    /// Its id.
    pub id: i64,
    /// `cli`, `api` or `schedule`.
    pub cause: String,
    /// Who started it.
    pub actor: String,
    /// Whether it repaired what it could.
    pub repair: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds of its last report.
    pub updated_at: i64,
    /// Unix milliseconds, once it ended.
    pub finished_at: Option<i64>,
    /// What it counted so far.
    pub counts: IntegrityCounts,
    /// The first problems it found.
    pub problems: Vec<IntegrityProblem>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The metadata side of integrity checks.
#[async_trait]
pub trait IntegrityStore: Send + Sync + std::fmt::Debug {
    /// Live blobs (digest, size) in digest order after `after`, at most `limit`.
    async fn integrity_blobs(&self, after: &str, limit: i64) -> MetaResult<Vec<(String, i64)>>;
    /// The `limit` live blobs stored last (digest, size), newest first.
    async fn integrity_newest_blobs(&self, limit: i64) -> MetaResult<Vec<(String, i64)>>;
    /// (digest, region) of the given blobs' recorded locations.
    async fn integrity_locations(&self, digests: &[String]) -> MetaResult<Vec<(String, String)>>;
    /// Up to `limit` references whose target is gone, and how many there are.
    async fn integrity_dangling(&self, limit: i64) -> MetaResult<(Vec<DanglingRef>, i64)>;
    /// Which of `digests` no blob row knows (in any state).
    async fn integrity_unknown(&self, digests: &[String]) -> MetaResult<Vec<String>>;
    /// Record a run's start; returns its id.
    async fn integrity_start(
        &self,
        cause: &str,
        actor: &str,
        repair: bool,
        now: i64,
    ) -> MetaResult<i64>;
    /// Record a run's counts and problems so far, and its end when `status`
    /// is not `running`.
    async fn integrity_report(
        &self,
        id: i64,
        status: &str,
        counts: &IntegrityCounts,
        problems: &[IntegrityProblem],
        error: Option<&str>,
        now: i64,
    ) -> MetaResult<()>;
    /// Runs, newest first.
    async fn integrity_runs(&self, limit: i64) -> MetaResult<Vec<IntegrityRun>>;
    /// One run.
    async fn integrity_run(&self, id: i64) -> MetaResult<Option<IntegrityRun>>;
}
