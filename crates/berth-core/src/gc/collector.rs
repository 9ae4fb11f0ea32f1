//! The collector of one node: starts runs (the API, the command line,
//! the schedule), takes them through their steps, records and audits how
//! they end, and helps other nodes' runs when its job worker is asked to.
//! The blob step's shards are [`BlobStep`]'s.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_blob::BlobStore;
use berth_meta::{DirectoryStore, GcCounts, GcRun, GcStore, MetaError, NewGcRun};
use berth_oci::Digest;

use super::blob_step::{BlobStep, HelpPayload};
use super::run::{GcCause, GcConfig, GcError, GcOptions, Progress};
use crate::clock::now_millis;
use crate::jobs::JobFailure;
use crate::Registry;

/// How long finished webhook deliveries stay listed.
const DELIVERY_RECORDS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
/// How many collection records stay listed (with their shards): years of
/// daily runs, and a run's record is small.
const GC_RUNS_KEPT: i64 = 1000;
/// How often the running node reports the blob step's progress (and looks
/// for shards whose holder stopped renewing them).
const BLOB_STEP_REPORT: Duration = Duration::from_millis(250);

/// The garbage collector of one node. Runs on several nodes may overlap
/// safely: each blob is claimed by one run only.
#[derive(Debug, Clone)]
pub struct Collector {
    registry: Registry,
    store: Arc<dyn GcStore>,
    blobs: Arc<dyn BlobStore>,
    audit: Arc<dyn DirectoryStore>,
    config: Arc<GcConfig>,
    step: BlobStep,
    running: Arc<Mutex<Option<i64>>>,
    /// Runs of other nodes this node is taking shards of.
    helping: Arc<Mutex<HashSet<i64>>>,
}

/// Frees this node's run slot when the run ends, however it ends.
struct Slot(Arc<Mutex<Option<i64>>>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// This node's share of a run's blob step, stopped when the run no longer
/// waits for it.
struct Share(tokio::task::JoinHandle<Result<usize, GcError>>);

impl Drop for Share {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends this node's help with a run, however it ends.
struct Helping(Arc<Mutex<HashSet<i64>>>, i64);

impl Drop for Helping {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

impl Collector {
    /// A collector over the registry's stores.
    pub fn new(
        registry: Registry,
        store: Arc<dyn GcStore>,
        blobs: Arc<dyn BlobStore>,
        audit: Arc<dyn DirectoryStore>,
        config: GcConfig,
    ) -> Self {
        let config = Arc::new(config);
        let step = BlobStep::new(
            registry.clone(),
            store.clone(),
            blobs.clone(),
            config.clone(),
        );
        Collector {
            registry,
            store,
            blobs,
            audit,
            config,
            step,
            running: Arc::new(Mutex::new(None)),
            helping: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Take shards of another node's run (the `gc_help` job): unless this
    /// node already works on the run, as long as some are free. The job is
    /// passed on first, so that more nodes join while this one works.
    pub async fn help(&self, payload: &str) -> Result<(), JobFailure> {
        let help: HelpPayload = serde_json::from_str(payload)
            .map_err(|e| JobFailure::permanent(format!("bad gc help payload: {e}")))?;
        let run = help.run;
        let retry = |e: GcError| JobFailure::retry(e.to_string());
        if !self.step.has_free_shard(run).await.map_err(retry)? {
            return Ok(());
        }
        self.step
            .ask_for_help(run, help.hop + 1)
            .await
            .map_err(retry)?;
        let _helping = {
            let mut helping = self.helping.lock().unwrap_or_else(|p| p.into_inner());
            let own = *self.running.lock().unwrap_or_else(|p| p.into_inner()) == Some(run);
            if own || !helping.insert(run) {
                return Ok(());
            }
            Helping(self.helping.clone(), run)
        };
        let taken = self.step.work(run).await.map_err(retry)?;
        if taken > 0 {
            tracing::info!(
                run,
                shards = taken,
                "helped another node's garbage collection"
            );
        }
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &GcConfig {
        &self.config
    }

    /// Recorded runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<GcRun>, GcError> {
        Ok(self.store.gc_runs(limit).await?)
    }

    /// One recorded run.
    pub async fn run_record(&self, id: i64) -> Result<Option<GcRun>, GcError> {
        Ok(self.store.gc_run(id).await?)
    }

    async fn begin(&self, options: &GcOptions) -> Result<(i64, Slot), GcError> {
        // Take the slot first, so two requests cannot both start a run.
        {
            let mut slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(id) = *slot {
                return Err(GcError::Running(id));
            }
            *slot = Some(0);
        }
        let slot = Slot(self.running.clone());
        // On a full disk the run's record goes into the space reserve: a
        // collection is how an operator frees space.
        let run = NewGcRun {
            cause: options.cause.as_str().to_owned(),
            actor: options.actor.clone(),
            dry_run: options.dry_run,
            full_sweep: options.full_sweep,
            now: now_millis(),
        };
        let id = self
            .registry
            .freeing(|| self.store.gc_start_run(&run))
            .await?;
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        Ok((id, slot))
    }

    /// Start a run in the background and return its record as started.
    pub async fn spawn(&self, options: GcOptions) -> Result<GcRun, GcError> {
        let (id, slot) = self.begin(&options).await?;
        let record = self.store.gc_run(id).await?;
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.complete(id, slot, &options).await {
                tracing::error!(run = id, error = %e, "could not record the end of garbage collection");
            }
        });
        record.ok_or_else(|| MetaError::Corrupt(format!("gc run {id} vanished")).into())
    }

    /// Run to the end and return the finished record (its status says
    /// whether it failed).
    pub async fn run(&self, options: GcOptions) -> Result<GcRun, GcError> {
        let (id, slot) = self.begin(&options).await?;
        self.complete(id, slot, &options).await?;
        self.store
            .gc_run(id)
            .await?
            .ok_or_else(|| MetaError::Corrupt(format!("gc run {id} vanished")).into())
    }

    /// Run the scheduled collection unless a run (on any node) started
    /// within the last half interval.
    pub async fn run_scheduled(&self) -> Result<Option<GcRun>, GcError> {
        let half = (self.config.interval / 2).as_millis() as i64;
        if let Some(last) = self.store.gc_runs(1).await?.first() {
            if last.started_at > now_millis() - half {
                return Ok(None);
            }
        }
        let options = GcOptions {
            dry_run: false,
            full_sweep: false,
            cause: GcCause::Schedule,
            actor: "system".into(),
        };
        match self.run(options).await {
            Ok(run) => Ok(Some(run)),
            Err(GcError::Running(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Carry out a run and record its outcome (a failed run is recorded,
    /// audited and logged as failed); errors only when recording fails.
    async fn complete(&self, id: i64, slot: Slot, options: &GcOptions) -> Result<(), GcError> {
        let started = Instant::now();
        let mut progress = Progress {
            store: self.store.as_ref(),
            run: id,
            counts: GcCounts::default(),
            logged: Instant::now(),
        };
        let outcome = if options.dry_run {
            self.preview(&mut progress, options.full_sweep).await
        } else {
            self.collect(&mut progress, options).await
        };
        let counts = progress.counts;
        let seconds = started.elapsed().as_secs_f64();
        let (status, error) = match &outcome {
            Ok(()) => ("finished", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        let finished = self
            .store
            .gc_finish_run(id, status, &counts, error.as_deref(), now_millis())
            .await;
        // Once the record says the run ended, this node may start the next:
        // the audit entry and housekeeping below need no slot.
        drop(slot);
        finished?;
        // With the shards' counts, which only the record sums.
        let counts = match self.store.gc_run(id).await {
            Ok(Some(record)) => record.counts,
            _ => counts,
        };
        let action = if options.dry_run {
            "gc.dry_run"
        } else {
            "gc.run"
        };
        let detail = format!(
            "{status} in {seconds:.1} s ({}): {} upload(s) expired, {} untagged manifest(s), \
             {} link(s), {} blob(s) and {} orphaned object(s) deleted, {} bytes reclaimed, \
             {} missing link(s) restored{}",
            options.cause.as_str(),
            counts.uploads_expired,
            counts.manifests_deleted,
            counts.links_deleted,
            counts.blobs_deleted,
            counts.orphans_deleted,
            counts.bytes_reclaimed,
            counts.links_restored,
            error
                .as_deref()
                .map(|e| format!("; error: {e}"))
                .unwrap_or_default(),
        );
        let audited = self
            .audit
            .append_audit(
                &options.actor,
                action,
                &format!("gc/{id}"),
                &detail,
                None,
                now_millis(),
            )
            .await;
        if let Err(e) = audited {
            tracing::warn!(run = id, error = %e, "could not audit garbage collection");
        }
        if !options.dry_run {
            // Housekeeping beside the collection: webhook delivery records
            // are kept for DELIVERY_RECORDS_KEPT.
            {
                let platform = self.registry.platform();
                let before = now_millis() - DELIVERY_RECORDS_KEPT.as_millis() as i64;
                match platform.prune_deliveries(before).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(run = id, deliveries = n, "forgot old webhook deliveries")
                    }
                    Err(e) => {
                        tracing::warn!(run = id, error = %e, "could not prune webhook deliveries")
                    }
                }
            }
            let event = crate::events::Event::new(crate::events::kind::GC_RUN, None)
                .actor(&options.actor)
                .with("run", id)
                .with("cause", options.cause.as_str())
                .with("status", status)
                .with("seconds", seconds)
                .with("uploads_expired", counts.uploads_expired)
                .with("manifests_deleted", counts.manifests_deleted)
                .with("blobs_deleted", counts.blobs_deleted)
                .with("orphans_deleted", counts.orphans_deleted)
                .with("bytes_reclaimed", counts.bytes_reclaimed)
                .with("error", error.clone())
                .build();
            if let Err(e) = self.registry.emit(&[event]).await {
                tracing::warn!(run = id, error = %e, "could not queue the collection's webhook event");
            }
        }
        match self.store.gc_prune_runs(GC_RUNS_KEPT).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(run = id, runs = n, "forgot old collection records"),
            Err(e) => tracing::warn!(run = id, error = %e, "could not prune collection records"),
        }
        // The space it freed may hold the reserve again.
        self.registry.restore_reserve().await;
        match &outcome {
            Ok(()) => tracing::info!(
                run = id,
                dry_run = options.dry_run,
                uploads_expired = counts.uploads_expired,
                manifests_deleted = counts.manifests_deleted,
                links_deleted = counts.links_deleted,
                blobs_deleted = counts.blobs_deleted,
                orphans_deleted = counts.orphans_deleted,
                bytes_reclaimed = counts.bytes_reclaimed,
                seconds,
                "garbage collection finished"
            ),
            Err(e) => tracing::error!(run = id, error = %e, "garbage collection failed"),
        }
        Ok(())
    }

    fn cutoff(&self) -> i64 {
        now_millis() - self.config.grace.as_millis() as i64
    }

    async fn collect(&self, p: &mut Progress<'_>, options: &GcOptions) -> Result<(), GcError> {
        let batch = self.config.batch.max(1);
        p.report("uploads").await?;
        p.counts.uploads_expired = self.registry.expire_uploads().await? as i64;

        if self.config.delete_untagged {
            // Scan after scan until one deletes nothing: deleting an index
            // or a subject leaves its children or referrers untagged.
            loop {
                let (mut cursor, mut deleted) = (None, 0);
                loop {
                    let found = self
                        .store
                        .gc_delete_untagged(self.cutoff(), cursor.as_ref(), batch)
                        .await?;
                    for (repo, digest) in &found.deleted {
                        tracing::debug!(%repo, %digest, "collected untagged manifest");
                    }
                    deleted += found.deleted.len() as i64;
                    p.counts.manifests_deleted += found.deleted.len() as i64;
                    p.report("manifests").await?;
                    match found.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                if deleted == 0 {
                    break;
                }
            }
        }

        self.reconcile_links(p, &options.actor).await?;

        let mut cursor = None;
        loop {
            let links = self
                .store
                .gc_delete_links(self.cutoff(), cursor.as_ref(), batch)
                .await?;
            p.counts.links_deleted += links.deleted;
            p.report("links").await?;
            match links.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }

        // What the blob step expects to delete, for its progress.
        let (blobs, bytes) = self.store.gc_estimate_blobs().await?;
        p.counts.blobs_expected = blobs;
        p.counts.bytes_expected = bytes;
        p.report("blobs").await?;
        // Claims a dead run left behind first, then new ones.
        let stale = now_millis() - self.config.lease.as_millis() as i64;
        loop {
            let adopted = self.store.gc_adopt_claims(p.run, stale, batch).await?;
            let done = (adopted.len() as i64) < batch;
            let (blobs, bytes) = self.step.delete_adopted(p.run, adopted).await?;
            p.counts.blobs_deleted += blobs;
            p.counts.bytes_reclaimed += bytes;
            p.report("blobs").await?;
            if done {
                break;
            }
        }
        // New claims, shard by shard, with any node that runs jobs: this
        // node works until no shard is free, then waits for the shards
        // others hold (taking over any whose holder stops renewing it).
        self.step.plan(p.run, p.counts.blobs_expected).await?;
        // This node's share is a task of its own: it holds database
        // connections a report may wait for (SQLite has one writer), so it
        // must go on while this loop waits. When the run fails, dropping
        // it stops the share too (its claims stay, for the shard's next
        // taker).
        let work =
            |step: BlobStep, run: i64| Share(tokio::spawn(async move { step.work(run).await }));
        let mut own = Some(work(self.step.clone(), p.run));
        let mut tick = tokio::time::interval(BLOB_STEP_REPORT);
        loop {
            match own.as_mut() {
                Some(share) => tokio::select! {
                    ended = &mut share.0 => {
                        own = None;
                        ended.map_err(|e| GcError::Aborted(format!("the blob step: {e}")))??;
                    }
                    _ = tick.tick() => {}
                },
                None => {
                    tick.tick().await;
                }
            }
            // The record adds the shards' counts to the run's own.
            p.report("blobs").await?;
            let shards = self.store.gc_shards(p.run).await?;
            if shards.iter().all(|s| s.done) {
                break;
            }
            let now = now_millis();
            if own.is_none() && shards.iter().any(|s| !s.done && s.lease_until < now) {
                own = Some(work(self.step.clone(), p.run));
            }
        }

        if options.full_sweep {
            self.sweep(p, false).await?;
        }
        Ok(())
    }

    /// Restore links that manifests need and their repositories lost
    /// (usage is the sum of linked blobs, and blob reads follow links), and
    /// say so in the audit log: nothing Berth does leaves one, so each is
    /// news for an operator.
    async fn reconcile_links(&self, p: &mut Progress<'_>, actor: &str) -> Result<(), GcError> {
        const NAMED: usize = 10;
        let batch = self.config.batch.max(1);
        let mut named = Vec::new();
        loop {
            let restored = self.store.gc_restore_links(now_millis(), batch).await?;
            p.counts.links_restored += restored.len() as i64;
            p.report("accounting").await?;
            for (repo, digest) in &restored {
                tracing::warn!(run = p.run, %repo, %digest, "restored a missing blob link");
            }
            let done = (restored.len() as i64) < batch;
            named.extend(
                restored
                    .into_iter()
                    .take(NAMED.saturating_sub(named.len()))
                    .map(|(repo, digest)| format!("{repo}@{digest}")),
            );
            if done {
                break;
            }
        }
        let n = p.counts.links_restored;
        if n > 0 {
            let more = if n as usize > named.len() {
                ", …"
            } else {
                ""
            };
            let detail = format!(
                "{n} blob link(s) that manifests reference were missing and are restored \
                 (usage counts them again): {}{more}",
                named.join(", ")
            );
            self.audit
                .append_audit(
                    actor,
                    "gc.links_restored",
                    &format!("gc/{}", p.run),
                    &detail,
                    None,
                    now_millis(),
                )
                .await?;
        }
        Ok(())
    }

    /// List every region's storage for objects no metadata knows; delete
    /// them unless this is a dry run.
    async fn sweep(&self, p: &mut Progress<'_>, dry_run: bool) -> Result<(), GcError> {
        let stores: Vec<Arc<dyn BlobStore>> = if self.registry.regions().is_multi() {
            self.registry
                .regions()
                .all()
                .iter()
                .map(|r| r.blobs.clone())
                .collect()
        } else {
            vec![self.blobs.clone()]
        };
        for store in stores {
            self.sweep_store(p, dry_run, store.as_ref()).await?;
        }
        Ok(())
    }

    async fn sweep_store(
        &self,
        p: &mut Progress<'_>,
        dry_run: bool,
        blobs: &dyn BlobStore,
    ) -> Result<(), GcError> {
        let page = usize::try_from(self.config.batch.max(1)).unwrap_or(500);
        let mut after: Option<Digest> = None;
        loop {
            let listed = blobs.list_blobs(after.as_ref(), page).await?;
            let done = listed.len() < page;
            for (digest, size) in &listed {
                if self.registry.meta().blob_size(digest).await?.is_some() {
                    continue;
                }
                let size = *size as i64;
                if dry_run {
                    p.counts.orphans_deleted += 1;
                    p.counts.bytes_reclaimed += size;
                    continue;
                }
                if self
                    .store
                    .gc_claim_orphan(p.run, digest.as_str(), size, now_millis())
                    .await?
                {
                    blobs.delete(digest).await?;
                    self.store.gc_forget_blob(p.run, digest.as_str()).await?;
                    p.counts.orphans_deleted += 1;
                    p.counts.bytes_reclaimed += size;
                }
            }
            p.report("sweep").await?;
            after = listed.last().map(|(d, _)| d.clone());
            if done {
                return Ok(());
            }
        }
    }

    async fn preview(&self, p: &mut Progress<'_>, full_sweep: bool) -> Result<(), GcError> {
        let upload_cutoff = now_millis() - self.registry.config().upload_expiry.as_millis() as i64;
        p.counts.uploads_expired = self
            .registry
            .meta()
            .idle_uploads(upload_cutoff)
            .await?
            .len() as i64;
        let untagged = self.config.delete_untagged.then(|| self.cutoff());
        let preview = self.store.gc_preview(untagged, self.cutoff()).await?;
        for (repo, digest) in &preview.manifests {
            tracing::info!(%repo, %digest, "dry run: would delete untagged manifest");
        }
        for blob in &preview.blobs {
            tracing::info!(digest = %blob.digest, size = blob.size, "dry run: would delete blob");
        }
        p.counts.manifests_deleted = preview.manifests.len() as i64;
        p.counts.links_deleted = preview.links;
        p.counts.blobs_deleted = preview.blobs.len() as i64;
        p.counts.bytes_reclaimed = preview.blobs.iter().map(|b| b.size).sum();
        p.counts.blobs_expected = p.counts.blobs_deleted;
        p.counts.bytes_expected = p.counts.bytes_reclaimed;
        p.report("preview").await?;
        if full_sweep {
            self.sweep(p, true).await?;
        }
        Ok(())
    }
}
