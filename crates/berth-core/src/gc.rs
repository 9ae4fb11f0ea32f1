//! Online garbage collection: reclaims what nothing needs any more while the
//! registry keeps serving pushes and pulls.
//!
//! A run goes through these steps, each in short batches:
//! 1. **uploads**: upload sessions idle longer than the upload expiry;
//! 2. **manifests** (when enabled): untagged manifests nothing needs (no
//!    index lists them, no referrer refers to them, and they are not
//!    referrers of a present subject), pushed before the grace period;
//! 3. **accounting**: links a manifest needs and its repository lost are
//!    restored and audited (usage is the sum of linked blobs; nothing
//!    Berth does loses one, a database restored or edited by hand can);
//! 4. **links**: a repository's links to blobs that no manifest of that
//!    repository references, made before the grace period (layers of
//!    deleted images, and layers uploaded but never used by a manifest);
//! 5. **blobs**: blobs nothing links, references or is about to commit are
//!    claimed, their bytes deleted, and forgotten;
//! 6. **sweep** (full runs only): the storage is listed for objects no
//!    metadata knows (left by a crash between storing and recording).
//!
//! Correctness does not depend on timing. Each deciding step runs under the
//! store's collection lock, which every reference-creating transaction
//! (link, manifest push, upload pin) holds shared; a claimed blob can be
//! neither linked nor committed, and an upload pins its digest before its
//! bytes move into place. So a blob being uploaded, mounted or referenced by
//! a manifest being pushed is never deleted: the push either completes
//! first, and its references protect the blob, or it is refused cleanly
//! (`MANIFEST_BLOB_UNKNOWN`) and nothing committed is ever left dangling.
//! The grace period only decides how long an uploaded layer may wait for
//! its manifest before it counts as abandoned.
//!
//! The metadata knows what is unreferenced, so only the optional full sweep
//! lists the storage.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_blob::{BlobError, BlobStore};
use berth_meta::{DirectoryStore, GcCounts, GcRun, GcStore, MetaError, NewGcRun};
use berth_oci::Digest;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::clock::now_millis;

/// Batches of claimed blobs being deleted at once.
const BATCHES_IN_FLIGHT: usize = 4;
/// How long finished webhook deliveries stay listed.
const DELIVERY_RECORDS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
use crate::{Registry, RegistryError};

/// How a collection behaves.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Unreferenced links and untagged manifests younger than this are kept
    /// (a push in progress uploads its layers before its manifest).
    pub grace: Duration,
    /// Whether untagged manifests nothing needs are deleted.
    pub delete_untagged: bool,
    /// How often the scheduled collection runs (zero: never).
    pub interval: Duration,
    /// Rows per batch (each batch is one short transaction).
    pub batch: i64,
    /// A run that has reported no progress for this long is presumed dead,
    /// and the blobs it claimed are finished by the next run.
    pub lease: Duration,
    /// Blobs the blob step claims per second at most (zero: as fast as it
    /// goes). On a small machine, a collection at full speed takes the
    /// processor from the pushes that run beside it.
    pub objects_per_sec: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace: Duration::from_secs(3600),
            delete_untagged: false,
            interval: Duration::from_secs(24 * 3600),
            batch: 500,
            lease: Duration::from_secs(15 * 60),
            objects_per_sec: 0,
        }
    }
}

/// What started a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcCause {
    /// The configured schedule.
    Schedule,
    /// `berth gc`.
    Cli,
    /// The management API.
    Api,
}

impl GcCause {
    /// The name recorded with the run.
    pub fn as_str(self) -> &'static str {
        match self {
            GcCause::Schedule => "schedule",
            GcCause::Cli => "cli",
            GcCause::Api => "api",
        }
    }
}

/// One collection request.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Only report what would be reclaimed.
    pub dry_run: bool,
    /// Also list the storage for objects no metadata knows.
    pub full_sweep: bool,
    /// What started it.
    pub cause: GcCause,
    /// Who started it (for the audit log).
    pub actor: String,
}

/// Why a collection could not run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// This node is already collecting.
    #[error("garbage collection run {0} is already in progress")]
    Running(i64),
    /// Database failure.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Storage failure.
    #[error("blob storage: {0}")]
    Storage(#[from] BlobError),
    /// A registry operation (upload expiry) failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl crate::error::FaultOf for GcError {
    fn fault_of(&self) -> Option<crate::Fault> {
        self.fault()
    }
}

impl GcError {
    /// The platform fault behind this error, if it is one.
    pub fn fault(&self) -> Option<crate::Fault> {
        match self {
            GcError::Running(_) => None,
            GcError::Meta(m) => crate::error::meta_fault(m),
            GcError::Storage(e) => crate::error::blob_fault(e),
            GcError::Registry(e) => e.fault(),
        }
    }
}

/// How fast a run's blob step goes and how long it has left.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GcProgress {
    /// Blobs deleted a second in the blob step so far (or in all of it).
    pub blobs_per_second: Option<f64>,
    /// Bytes reclaimed a second in the blob step (with a full sweep, its
    /// orphans' bytes too).
    pub bytes_per_second: Option<f64>,
    /// Share of the expected blobs deleted, 0–100.
    pub percent: Option<f64>,
    /// Seconds the blob step has left at its rate so far (0 once it ended).
    pub eta_seconds: Option<f64>,
}

/// A run's progress from its record: `None`s until its blob step began (and
/// for dry runs, which delete nothing).
pub fn progress(run: &GcRun) -> GcProgress {
    let Some(started) = run.blobs_started_at else {
        return GcProgress::default();
    };
    let running = run.status == "running";
    let end = run.blobs_ended_at.unwrap_or(if running {
        run.updated_at
    } else {
        run.finished_at.unwrap_or(run.updated_at)
    });
    let seconds = end.saturating_sub(started) as f64 / 1000.0;
    let c = &run.counts;
    let rate = |n: i64| (seconds > 0.0 && n > 0).then(|| n as f64 / seconds);
    let blobs_per_second = rate(c.blobs_deleted);
    let ended = run.blobs_ended_at.is_some();
    let percent = if c.blobs_expected > 0 {
        Some((c.blobs_deleted as f64 * 100.0 / c.blobs_expected as f64).min(100.0))
    } else {
        ended.then_some(100.0)
    };
    let eta_seconds = if ended {
        Some(0.0)
    } else if running {
        let left = c.blobs_expected.saturating_sub(c.blobs_deleted).max(0);
        match (left, blobs_per_second) {
            (0, _) => Some(0.0),
            (left, Some(r)) => Some(left as f64 / r),
            _ => None,
        }
    } else {
        None
    };
    GcProgress {
        blobs_per_second,
        bytes_per_second: rate(c.bytes_reclaimed),
        percent,
        eta_seconds,
    }
}

/// The garbage collector of one node. Runs on several nodes may overlap
/// safely: each blob is claimed by one run only.
#[derive(Debug, Clone)]
pub struct Collector {
    registry: Registry,
    store: Arc<dyn GcStore>,
    blobs: Arc<dyn BlobStore>,
    audit: Arc<dyn DirectoryStore>,
    config: Arc<GcConfig>,
    running: Arc<Mutex<Option<i64>>>,
}

/// Frees this node's run slot when the run ends, however it ends.
struct Slot(Arc<Mutex<Option<i64>>>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Progress of a run, reported to its record and (now and then) the log.
struct Progress<'a> {
    store: &'a dyn GcStore,
    run: i64,
    counts: GcCounts,
    logged: Instant,
}

impl Progress<'_> {
    async fn report(&mut self, stage: &str) -> Result<(), GcError> {
        self.store
            .gc_update_run(self.run, stage, &self.counts, now_millis())
            .await?;
        if self.logged.elapsed() >= Duration::from_secs(10) {
            self.logged = Instant::now();
            tracing::info!(run = self.run, stage, counts = ?self.counts, "garbage collection in progress");
        }
        Ok(())
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
        Collector {
            registry,
            store,
            blobs,
            audit,
            config: Arc::new(config),
            running: Arc::new(Mutex::new(None)),
        }
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
            loop {
                let deleted = self.store.gc_delete_untagged(self.cutoff(), batch).await?;
                for (repo, digest) in &deleted {
                    tracing::debug!(%repo, %digest, "collected untagged manifest");
                }
                p.counts.manifests_deleted += deleted.len() as i64;
                p.report("manifests").await?;
                if deleted.is_empty() {
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
            self.delete_claimed(p, &adopted).await?;
            if done {
                break;
            }
        }
        // New claims: the next batch is claimed while earlier ones are
        // deleted, a few batches in flight (storage requests take longer
        // than the claims). Each batch is a task of its own: a batch that
        // holds a database connection must go on while this loop waits for
        // one (SQLite has a single writer), or both would wait for ever.
        let mut after: Option<String> = None;
        let mut in_flight = FuturesUnordered::new();
        let (started, mut claimed_total) = (Instant::now(), 0u64);
        loop {
            if self.config.objects_per_sec > 0 {
                let due = Duration::from_secs_f64(
                    claimed_total as f64 / self.config.objects_per_sec as f64,
                );
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let claimed = self
                .store
                .gc_claim_blobs(p.run, after.as_deref(), batch)
                .await?;
            let done = claimed.next.is_none();
            after = claimed.next;
            claimed_total += claimed.claims.len() as u64;
            if !claimed.claims.is_empty() {
                let this = self.clone();
                let run = p.run;
                let claims = claimed.claims;
                in_flight.push(tokio::spawn(
                    async move { this.delete_batch(run, claims).await },
                ));
            }
            while in_flight.len() >= BATCHES_IN_FLIGHT || done && !in_flight.is_empty() {
                if let Some(deleted) = in_flight.next().await {
                    let (blobs, bytes) = deleted.map_err(|e| {
                        GcError::Storage(BlobError::Io(std::io::Error::other(format!(
                            "a deletion batch ended abnormally: {e}"
                        ))))
                    })??;
                    p.counts.blobs_deleted += blobs;
                    p.counts.bytes_reclaimed += bytes;
                    p.report("blobs").await?;
                }
            }
            if done {
                break;
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

    async fn delete_claimed(
        &self,
        p: &mut Progress<'_>,
        claims: &[berth_meta::BlobClaim],
    ) -> Result<(), GcError> {
        let (blobs, bytes) = self.delete_batch(p.run, claims.to_vec()).await?;
        p.counts.blobs_deleted += blobs;
        p.counts.bytes_reclaimed += bytes;
        p.report("blobs").await
    }

    /// Delete a batch of claimed blobs: their bytes (in as few storage
    /// requests as the backend allows), then their rows in one
    /// transaction. A crash between the two leaves the claims, which the
    /// next run adopts. Returns the blobs and bytes reclaimed.
    async fn delete_batch(
        &self,
        run: i64,
        claims: Vec<berth_meta::BlobClaim>,
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
        self.store.gc_forget_blobs(run, &names).await?;
        Ok((
            claims.len() as i64,
            claims.iter().map(|c| c.size).sum::<i64>(),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str, started: Option<i64>, ended: Option<i64>, deleted: i64) -> GcRun {
        GcRun {
            id: 1,
            cause: "api".into(),
            actor: "admin".into(),
            dry_run: false,
            full_sweep: false,
            status: status.into(),
            stage: "blobs".into(),
            started_at: 0,
            updated_at: 12_000,
            finished_at: (status != "running").then_some(20_000),
            counts: GcCounts {
                blobs_deleted: deleted,
                bytes_reclaimed: deleted * 1000,
                blobs_expected: 4000,
                bytes_expected: 4_000_000,
                ..GcCounts::default()
            },
            blobs_started_at: started,
            blobs_ended_at: ended,
            error: None,
        }
    }

    #[test]
    fn rate_and_time_left_come_from_the_blob_step() {
        // 1,000 of 4,000 blobs in the 10 s since the blob step began.
        let p = progress(&run("running", Some(2_000), None, 1000));
        assert_eq!(p.blobs_per_second, Some(100.0));
        assert_eq!(p.bytes_per_second, Some(100_000.0));
        assert_eq!(p.percent, Some(25.0));
        assert_eq!(p.eta_seconds, Some(30.0));
        // Ended: the rate over the whole step, nothing left.
        let p = progress(&run("finished", Some(2_000), Some(6_000), 4000));
        assert_eq!(p.blobs_per_second, Some(1000.0));
        assert_eq!((p.percent, p.eta_seconds), (Some(100.0), Some(0.0)));
        // Not begun yet, or nothing deleted yet: no rate, no estimate.
        assert_eq!(
            progress(&run("running", None, None, 0)),
            GcProgress::default()
        );
        let p = progress(&run("running", Some(2_000), None, 0));
        assert_eq!((p.blobs_per_second, p.eta_seconds), (None, None));
        // A run that died in its blob step has no time left to announce.
        let p = progress(&run("abandoned", Some(2_000), None, 1000));
        assert_eq!(p.eta_seconds, None);
        // More deleted than expected (deletes went on): capped.
        let p = progress(&run("running", Some(2_000), None, 5000));
        assert_eq!((p.percent, p.eta_seconds), (Some(100.0), Some(0.0)));
    }
}
