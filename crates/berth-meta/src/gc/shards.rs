//! A run's blob step split into shares ("shards") that several nodes work
//! on at once: each shard is a range of blob digests, leased by one node at
//! a time, with the cursor its search has passed and what it deleted. A
//! node that dies leaves its shard to the next taker once the lease ends;
//! the taker first finishes the claims the dead one left in the range, then
//! resumes at the cursor, so no finished work is done again.

use async_trait::async_trait;

use super::BlobClaim;
use crate::error::MetaResult;

/// A shard a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcShard {
    /// The run it belongs to.
    pub run: i64,
    /// Its number within the run.
    pub shard: i64,
    /// Digests after this one (`""`: from the first)...
    pub after: String,
    /// ...up to and including this one (`None`: to the last).
    pub until: Option<String>,
    /// Where its search stopped last (`None`: not begun).
    pub cursor: Option<String>,
}

/// A shard as recorded, for progress and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcShardRecord {
    /// Its number within the run.
    pub shard: i64,
    /// The node that last held it.
    pub owner: Option<String>,
    /// Whether its search reached the end of its range.
    pub done: bool,
    /// Until when its owner holds it, Unix milliseconds.
    pub lease_until: i64,
    /// Blobs it deleted.
    pub blobs_deleted: i64,
    /// Their bytes.
    pub bytes_reclaimed: i64,
}

/// The shards' side of the metadata store.
#[async_trait]
pub trait GcShardStore: Send + Sync {
    /// Split run `run`'s blob step at `bounds` (ascending digests): one
    /// shard before the first bound, one between each pair, one after the
    /// last. Planning twice is a no-op.
    async fn gc_plan_shards(&self, run: i64, bounds: &[String]) -> MetaResult<()>;
    /// Lease a shard of `run` that is neither done nor held (its lease
    /// ended before `now`) to `owner` until `until`; `None` when there is
    /// none, or the run is no longer running.
    async fn gc_take_shard(
        &self,
        run: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> MetaResult<Option<GcShard>>;
    /// Record where `owner`'s search of the shard stopped and extend its
    /// lease; `false` when the shard is no longer `owner`'s.
    async fn gc_shard_moved(
        &self,
        shard: &GcShard,
        owner: &str,
        cursor: Option<&str>,
        until: i64,
    ) -> MetaResult<bool>;
    /// Forget claimed blobs whose bytes are deleted and add them to the
    /// shard's counts, in one transaction; returns the blobs and bytes
    /// forgotten (another run may have adopted some meanwhile).
    async fn gc_forget_shard_blobs(
        &self,
        shard: &GcShard,
        digests: &[String],
    ) -> MetaResult<(i64, i64)>;
    /// Mark `owner`'s shard done.
    async fn gc_finish_shard(&self, shard: &GcShard, owner: &str) -> MetaResult<bool>;
    /// Up to `limit` blobs the shard's run claimed in its range, after
    /// `after` (what a node that died left).
    async fn gc_shard_claims(
        &self,
        shard: &GcShard,
        after: &str,
        limit: i64,
    ) -> MetaResult<Vec<BlobClaim>>;
    /// The run's shards, in order.
    async fn gc_shards(&self, run: i64) -> MetaResult<Vec<GcShardRecord>>;
}
