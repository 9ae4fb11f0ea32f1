//! A collection's blob step, spread over the nodes that run jobs. The run
//! splits it into up to sixteen shards (ranges of blob digests, each of at
//! least sixteen batches) and queues a
//! `gc_help` job; the node running the collection and every node whose
//! worker picks the job up take shards one at a time, each leased, and in
//! each claim, delete and forget blobs batch by batch. A shard records its
//! search's cursor and what it deleted, so a node that dies leaves its
//! shard to the next taker once the lease ends, who finishes the claims it
//! left and resumes at the cursor.
//!
//! The help job passes itself on: a node already working on the run queues
//! it again for another node, until no shard is free.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_blob::BlobStore;
use berth_meta::{BlobClaim, GcShard, GcStore, MetaError, NewJob};
use berth_oci::Digest;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};

use super::run::{GcConfig, GcError};
use crate::clock::now_millis;
use crate::Registry;

/// The job kind that asks a node to take shards of a run's blob step.
pub const GC_HELP_JOB: &str = "gc_help";

/// Batches of claimed blobs being deleted at once, per shard.
const BATCHES_IN_FLIGHT: usize = 4;
/// How often the help job is passed on at most.
const HELP_HOP: Duration = Duration::from_secs(1);
/// The help job stops passing itself on after this many hops.
const MAX_HOPS: u32 = 3600;

/// Most shards a run's blob step is split into.
const MAX_SHARDS: usize = 16;
/// Batches a shard holds at least: each shard ends by waiting for its
/// last batches, so small ones leave the pipeline empty much of the time
/// (on Garage, 20,000 blobs in sixteen shards of two or three batches:
/// 1,136 objects/s; in two shards: 1,600; docs/benchmarks.md).
const MIN_SHARD_BATCHES: i64 = 16;

/// How many shards for `expected` blobs in batches of `batch`: a power of
/// two from 1 to [`MAX_SHARDS`], each of at least [`MIN_SHARD_BATCHES`].
fn shard_count(expected: i64, batch: i64) -> usize {
    let fits = expected / (batch.max(1) * MIN_SHARD_BATCHES);
    let mut n = 1;
    while n < MAX_SHARDS && (n as i64) * 2 <= fits {
        n *= 2;
    }
    n
}

/// Where `n` shards (a power of two up to sixteen) begin: evenly by the
/// first hex digit of a SHA-256 digest (other algorithms sort after
/// `sha256:` and fall in the last shard).
fn shard_bounds(n: usize) -> Vec<String> {
    let step = MAX_SHARDS / n.clamp(1, MAX_SHARDS);
    (1..n).map(|i| format!("sha256:{:x}", i * step)).collect()
}

/// What the help job carries.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct HelpPayload {
    /// The run to help.
    pub run: i64,
    /// How many times the job was passed on.
    pub hop: u32,
}

/// A paced claim holds this much of the pace's work at most, so the
/// deletions come in small steps rather than a burst of `gc.batch` blobs
/// and a pause (the push tail beside them: docs/benchmarks.md).
const PACED_CLAIM: Duration = Duration::from_millis(40);
/// Fewest blobs a paced claim takes (each claim is a query and a lease
/// renewal: a slow pace need not make them for every blob).
const MIN_PACED_BATCH: i64 = 10;

/// This node's pace (`gc.objects_per_sec`) over all the shards it takes.
struct Pace {
    per_second: u64,
    started: Instant,
    claimed: u64,
}

impl Pace {
    /// How many blobs one claim takes: `batch`, or fewer when paced.
    fn batch(&self, batch: i64) -> i64 {
        let batch = batch.max(1);
        if self.per_second == 0 {
            return batch;
        }
        let step = (self.per_second as f64 * PACED_CLAIM.as_secs_f64()) as i64;
        step.max(MIN_PACED_BATCH).min(batch)
    }

    /// Wait until the blobs claimed so far are due.
    async fn wait(&self) {
        if self.per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.claimed as f64 / self.per_second as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The blob step of this node.
#[derive(Debug, Clone)]
pub(super) struct BlobStep {
    registry: Registry,
    store: Arc<dyn GcStore>,
    blobs: Arc<dyn BlobStore>,
    config: Arc<GcConfig>,
}

impl BlobStep {
    pub(super) fn new(
        registry: Registry,
        store: Arc<dyn GcStore>,
        blobs: Arc<dyn BlobStore>,
        config: Arc<GcConfig>,
    ) -> Self {
        BlobStep {
            registry,
            store,
            blobs,
            config,
        }
    }

    /// Split run `run`'s blob step into shards and ask the nodes that run
    /// jobs to help. `expected`: the blobs it expects to delete.
    pub(super) async fn plan(&self, run: i64, expected: i64) -> Result<(), GcError> {
        let n = shard_count(expected, self.config.batch);
        self.store.gc_plan_shards(run, &shard_bounds(n)).await?;
        self.ask_for_help(run, 0).await
    }

    /// Queue the help job (again), for whichever node claims it next.
    pub(super) async fn ask_for_help(&self, run: i64, hop: u32) -> Result<(), GcError> {
        if hop > MAX_HOPS {
            return Ok(());
        }
        let delay = if hop == 0 {
            0
        } else {
            HELP_HOP.as_millis() as i64
        };
        let job = NewJob {
            kind: GC_HELP_JOB.to_owned(),
            // The run's region: its nodes reach the storage it deletes from.
            region: Some(self.registry.regions().local().name.clone()),
            dedupe_key: Some(format!("gc-help:{run}:{hop}")),
            payload: serde_json::to_string(&HelpPayload { run, hop })
                .map_err(|e| MetaError::Corrupt(format!("gc help payload: {e}")))?,
            run_after: now_millis() + delay,
            urgent: true,
        };
        self.registry.platform.enqueue_jobs(&[job]).await?;
        self.registry.jobs_queued.notify_one();
        Ok(())
    }

    /// Whether run `run` has a shard no node holds.
    pub(super) async fn has_free_shard(&self, run: i64) -> Result<bool, GcError> {
        let now = now_millis();
        Ok(self
            .store
            .gc_shards(run)
            .await?
            .iter()
            .any(|s| !s.done && s.lease_until < now))
    }

    /// Take shards of run `run` one after another until none is free.
    /// Returns how many this node worked on.
    pub(super) async fn work(&self, run: i64) -> Result<usize, GcError> {
        let owner = self.registry.node_id().to_owned();
        let mut pace = Pace {
            per_second: self.config.objects_per_sec,
            started: Instant::now(),
            claimed: 0,
        };
        let mut taken = 0;
        loop {
            let now = now_millis();
            let Some(shard) = self
                .store
                .gc_take_shard(run, &owner, now, self.lease_end())
                .await?
            else {
                return Ok(taken);
            };
            taken += 1;
            tracing::debug!(run, shard = shard.shard, "took a shard of the blob step");
            self.shard(&shard, &owner, &mut pace).await?;
        }
    }

    fn lease_end(&self) -> i64 {
        now_millis() + self.config.lease.as_millis() as i64
    }

    /// One shard: the claims a node that died left in its range, then new
    /// claims from its cursor, a few batches in flight.
    async fn shard(&self, shard: &GcShard, owner: &str, pace: &mut Pace) -> Result<(), GcError> {
        let batch = self.config.batch.max(1);
        let mut after = shard.after.clone();
        loop {
            let left = self.store.gc_shard_claims(shard, &after, batch).await?;
            let Some(last) = left.last() else {
                break;
            };
            after = last.digest.clone();
            self.delete_batch(shard.run, Some(shard), left).await?;
            if !self
                .store
                .gc_shard_moved(shard, owner, None, self.lease_end())
                .await?
            {
                return Ok(());
            }
        }

        // Each batch is a task of its own: a batch that holds a database
        // connection must go on while this loop waits for one (SQLite has a
        // single writer), or both would wait for ever.
        let mut cursor = shard.cursor.clone().unwrap_or_else(|| shard.after.clone());
        let mut in_flight = FuturesUnordered::new();
        let claim = pace.batch(batch);
        loop {
            pace.wait().await;
            let claimed = self
                .store
                .gc_claim_blobs(shard.run, Some(&cursor), shard.until.as_deref(), claim)
                .await?;
            let done = claimed.next.is_none();
            pace.claimed += claimed.claims.len() as u64;
            if !claimed.claims.is_empty() {
                let this = self.clone();
                let shard = shard.clone();
                let claims = claimed.claims;
                in_flight.push(tokio::spawn(async move {
                    this.delete_batch(shard.run, Some(&shard), claims).await
                }));
            }
            if let Some(next) = claimed.next {
                cursor = next;
            }
            // The cursor moves past claims that may not be deleted yet: a
            // node that takes the shard over finds them as this run's.
            let held = self
                .store
                .gc_shard_moved(shard, owner, Some(&cursor), self.lease_end())
                .await?;
            while in_flight.len() >= BATCHES_IN_FLIGHT || (done || !held) && !in_flight.is_empty() {
                if let Some(deleted) = in_flight.next().await {
                    deleted.map_err(|e| GcError::Aborted(format!("a deletion batch: {e}")))??;
                }
            }
            if !held {
                tracing::warn!(
                    run = shard.run,
                    shard = shard.shard,
                    "lost a shard's lease to another node"
                );
                return Ok(());
            }
            if done {
                self.store.gc_finish_shard(shard, owner).await?;
                return Ok(());
            }
        }
    }

    /// Delete claims a run that died left (not in a shard): their bytes,
    /// then their rows. Returns the blobs and bytes reclaimed.
    pub(super) async fn delete_adopted(
        &self,
        run: i64,
        claims: Vec<BlobClaim>,
    ) -> Result<(i64, i64), GcError> {
        self.delete_batch(run, None, claims).await
    }

    /// Delete a batch of claimed blobs: their bytes (in as few storage
    /// requests as the backend allows), then their rows in one transaction
    /// (with the shard's counts). A crash between the two leaves the
    /// claims, which the shard's next taker (or the next run) finishes.
    async fn delete_batch(
        &self,
        run: i64,
        shard: Option<&GcShard>,
        claims: Vec<BlobClaim>,
    ) -> Result<(i64, i64), GcError> {
        let digests = claims
            .iter()
            .map(|c| {
                c.digest
                    .parse::<Digest>()
                    .map_err(|_| MetaError::Corrupt(format!("blob digest {}", c.digest)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.delete_everywhere(&digests).await?;
        let names: Vec<String> = claims.iter().map(|c| c.digest.clone()).collect();
        match shard {
            Some(shard) => Ok(self.store.gc_forget_shard_blobs(shard, &names).await?),
            None => {
                self.store.gc_forget_blobs(run, &names).await?;
                Ok((
                    claims.len() as i64,
                    claims.iter().map(|c| c.size).sum::<i64>(),
                ))
            }
        }
    }

    /// Delete blobs' bytes from every region's storage (one region's store
    /// with a single region). A region whose storage fails keeps the
    /// claims, and the next run tries again.
    async fn delete_everywhere(&self, digests: &[Digest]) -> Result<(), GcError> {
        let regions = self.registry.regions();
        if !regions.is_multi() {
            self.blobs.delete_many(digests).await?;
            return Ok(());
        }
        for region in regions.all() {
            region.blobs.delete_many(digests).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_digest_space_evenly_and_are_never_tiny() {
        assert_eq!(shard_count(0, 500), 1);
        assert_eq!(shard_count(20_000, 500), 2);
        assert_eq!(shard_count(64_000, 500), 8);
        assert_eq!(shard_count(1_000_000, 500), 16);
        assert_eq!(shard_count(240, 5), 2);
        assert!(shard_bounds(1).is_empty());
        assert_eq!(shard_bounds(2), ["sha256:8"]);
        assert_eq!(shard_bounds(4), ["sha256:4", "sha256:8", "sha256:c"]);
        let all = shard_bounds(16);
        assert_eq!(
            (all.len(), all[0].as_str(), all[14].as_str()),
            (15, "sha256:1", "sha256:f")
        );
    }

    #[test]
    fn a_paced_claim_holds_a_few_tens_of_milliseconds_of_work() {
        let pace = |per_second| Pace {
            per_second,
            started: Instant::now(),
            claimed: 0,
        };
        assert_eq!(pace(0).batch(500), 500);
        assert_eq!(pace(2_500).batch(500), 100);
        assert_eq!(pace(100_000).batch(500), 500);
        assert_eq!(pace(10).batch(500), MIN_PACED_BATCH);
        assert_eq!(pace(10).batch(5), 5);
        assert_eq!(pace(0).batch(0), 1);
    }
}
