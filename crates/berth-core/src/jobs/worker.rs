//! The worker that runs the database's job queue on every node: it leases
//! jobs for its region, renews the lease while it works, retries failures
//! with backoff, dispatches by kind (replication between regions and with
//! remote registries, synchronization, webhook deliveries, image
//! inventories, shards of another node's garbage collection), and starts the
//! periodic work: its region's reconcile pass, scheduled replication runs.

use std::sync::Arc;
use std::time::Duration;

use berth_meta::events::DELIVER_WEBHOOK_JOB;
use berth_meta::platform::remote_replication::{REPLICATE_REMOTE_JOB, REPLICATION_RUN_JOB};
use berth_meta::platform::SYNC_TAG_JOB;
use berth_meta::Job;
use tokio::sync::Semaphore;

use super::{Attempt, JobFailure};
use crate::clock::now_millis;
use crate::events::Webhooks;
use crate::gc::{Collector, GC_HELP_JOB};
use crate::platform::{Replications, Synchronizer};
use crate::registry::REPLICATE_IMAGE_JOB;
use crate::Registry;

/// How often scheduled replication rules are looked at.
const SCHEDULE_TICK: Duration = Duration::from_secs(2);

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once on this node (0: none; the node only serves).
    pub concurrency: usize,
    /// How often an idle worker looks for jobs other nodes queued.
    pub poll: Duration,
    /// How long a claimed job stays this node's without renewal: a node
    /// that dies leaves its jobs to others after this.
    pub lease: Duration,
    /// Attempts before a job is given up.
    pub max_attempts: i64,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// How often the region's reconcile pass runs (zero: never).
    pub reconcile_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            max_attempts: 10,
            max_backoff: Duration::from_secs(300),
            reconcile_every: Duration::from_secs(60),
        }
    }
}

/// Runs queued jobs.
#[derive(Debug, Clone)]
pub struct Worker {
    registry: Registry,
    sync: Synchronizer,
    replications: Replications,
    webhooks: Webhooks,
    collector: Collector,
    config: Arc<WorkerConfig>,
}

impl Worker {
    /// A worker for this node's region.
    pub fn new(
        registry: Registry,
        sync: Synchronizer,
        replications: Replications,
        webhooks: Webhooks,
        collector: Collector,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            registry,
            sync,
            replications,
            webhooks,
            collector,
            config: Arc::new(config),
        }
    }

    /// The wait before attempt `attempts + 1`: 1 s, doubling, bounded.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 20) as u32 - 1;
        Duration::from_secs(1u64 << exp).min(self.config.max_backoff)
    }

    /// Run jobs until the task is dropped.
    pub async fn run(self) {
        let store = self.registry.platform.clone();
        if self.config.concurrency == 0 {
            return;
        }
        if self.registry.regions.is_multi() && !self.config.reconcile_every.is_zero() {
            tokio::spawn(self.clone().reconcile_loop());
        }
        tokio::spawn(self.clone().schedule_loop());
        let region = self.registry.regions.local().name.clone();
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let now = now_millis();
            let until = now + self.config.lease.as_millis() as i64;
            match store
                .claim_job(&region, &self.registry.node_id, now, until)
                .await
            {
                Ok(Some(job)) => {
                    let worker = self.clone();
                    tokio::spawn(async move {
                        worker.run_one(job).await;
                        drop(slot);
                    });
                }
                Ok(None) => {
                    drop(slot);
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = self.registry.jobs_queued.notified() => {}
                    }
                }
                Err(e) => {
                    drop(slot);
                    tracing::warn!(error = %e, "cannot claim jobs; will retry");
                    tokio::time::sleep(self.config.poll * 4).await;
                }
            }
        }
    }

    /// Claim and run jobs one at a time until none is ready (for tests
    /// and the command line). Returns how many ran.
    pub async fn run_ready(&self) -> Result<usize, berth_meta::MetaError> {
        let store = self.registry.platform.clone();
        let region = self.registry.regions.local().name.clone();
        let mut ran = 0;
        loop {
            let now = now_millis();
            let until = now + self.config.lease.as_millis() as i64;
            match store
                .claim_job(&region, &self.registry.node_id, now, until)
                .await?
            {
                Some(job) => {
                    self.run_one(job).await;
                    ran += 1;
                }
                None => return Ok(ran),
            }
        }
    }

    /// Run one claimed job, renewing its lease meanwhile, and record how
    /// it ended.
    async fn run_one(&self, job: Job) {
        let store = self.registry.platform.clone();
        let owner = self.registry.node_id.clone();
        let renewal = {
            let store = store.clone();
            let owner = owner.clone();
            let lease = self.config.lease;
            let id = job.id;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let until = now_millis() + lease.as_millis() as i64;
                    match store.renew_job(id, &owner, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = id, "lost the lease of a running job");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(job = id, error = %e, "cannot renew a job's lease")
                        }
                    }
                }
            })
        };
        let last = job.attempts >= self.config.max_attempts;
        let result = self.dispatch(&job, last).await;
        renewal.abort();
        let now = now_millis();
        let recorded = match result {
            Ok(()) => store.finish_job(job.id, &owner).await.map(|_| ()),
            Err(f) if f.permanent || last => {
                tracing::error!(job = job.id, kind = job.kind, attempts = job.attempts, error = %f, "job failed; giving up");
                store.fail_job(job.id, &owner, &f.message, None, now).await
            }
            Err(f) => {
                let wait = self.backoff(job.attempts);
                tracing::warn!(job = job.id, kind = job.kind, attempts = job.attempts, error = %f, retry_in = ?wait, "job failed; will retry");
                let at = now + wait.as_millis() as i64;
                store
                    .fail_job(job.id, &owner, &f.message, Some(at), now)
                    .await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the job runs again: jobs are idempotent.
            tracing::error!(job = job.id, error = %e, "cannot record a job's end");
        }
    }

    async fn dispatch(&self, job: &Job, last: bool) -> Result<(), JobFailure> {
        let local = &self.registry.regions.local().name;
        match job.kind.as_str() {
            REPLICATE_IMAGE_JOB => {
                self.registry
                    .run_replicate_job(&job.payload, job.region.as_deref().unwrap_or(local))
                    .await
            }
            SYNC_TAG_JOB => {
                self.sync
                    .run_job(
                        &job.payload,
                        Attempt {
                            number: job.attempts,
                            last,
                        },
                    )
                    .await
            }
            REPLICATION_RUN_JOB => {
                self.replications
                    .run_listing_job(
                        &job.payload,
                        Attempt {
                            number: job.attempts,
                            last,
                        },
                    )
                    .await
            }
            REPLICATE_REMOTE_JOB => {
                self.replications
                    .run_task_job(
                        &job.payload,
                        Attempt {
                            number: job.attempts,
                            last,
                        },
                    )
                    .await
            }
            crate::vulnerabilities::INVENTORY_IMAGE_JOB => {
                crate::vulnerabilities::run_job(&self.registry, &job.payload).await
            }
            crate::vulnerabilities::IMPORT_FEED_JOB => {
                crate::vulnerabilities::run_feed_job(&self.registry, &job.payload).await
            }
            DELIVER_WEBHOOK_JOB => {
                self.webhooks
                    .run_job(
                        &job.payload,
                        Attempt {
                            number: job.attempts,
                            last,
                        },
                    )
                    .await
            }
            GC_HELP_JOB => self.collector.help(&job.payload).await,
            // A newer node's kind: leave it to a node that knows it.
            other => Err(JobFailure::retry(format!("unknown job kind {other}"))),
        }
    }

    /// Start the runs of scheduled replication rules when they are due
    /// (each run once: the node that moves a rule's schedule on starts it).
    async fn schedule_loop(self) {
        let mut tick = tokio::time::interval(SCHEDULE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.replications.run_due().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(runs = n, "started scheduled replication runs"),
                Err(e) => tracing::warn!(error = %e, "cannot start scheduled replication runs"),
            }
        }
    }

    /// Every so often, on one node of the region, queue what replication
    /// missed.
    async fn reconcile_loop(self) {
        let every = self.config.reconcile_every;
        let region = self.registry.regions.local().name.clone();
        let lease = format!("reconcile:{region}");
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.registry.try_lease(&lease, every / 2).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the reconcile lease");
                    continue;
                }
            }
            match self.registry.reconcile_region(&region).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(region, queued = n, "reconcile pass queued replication"),
                Err(e) => tracing::warn!(region, error = %e, "reconcile pass failed"),
            }
        }
    }
}
