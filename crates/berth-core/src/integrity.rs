//! Integrity checks (`berth fsck` and the background scrub): re-hash every
//! stored blob in every region that claims it, find references whose
//! target is gone and stored objects no blob row knows, record and audit
//! what was found, and, when asked, repair damaged or missing blobs from a
//! good copy in another region.
//!
//! Nothing is deleted without being asked: a damaged blob is replaced only
//! by a copy whose digest checks (the storage's upload commit verifies it),
//! and orphans are only reported (`berth gc --full` reclaims them, with the
//! care for uploads in flight that the collector takes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_blob::{BlobError, BlobStore};
use berth_meta::integrity::IntegrityStore;
pub use berth_meta::integrity::{IntegrityCounts, IntegrityProblem, IntegrityRun};
use berth_meta::{DirectoryStore, MetaError};
use berth_oci::{Digest, Hasher, RepoName};
use futures_util::stream::{self, StreamExt};

use crate::clock::now_millis;
use crate::platform::Proxy;
use crate::{Region, Regions, Registry};

/// Blobs listed (and checked, a few at once) at a time.
const PAGE: i64 = 200;
/// Blobs re-hashed at once.
const PARALLEL: usize = 4;
/// Bytes read at a time.
const CHUNK: usize = 1 << 20;
/// The repository named on a repair's upload session (sessions belong to
/// one; this one only says what the session was for).
const REPAIR_SESSION_REPO: &str = "_integrity/repair";
/// Problems a run keeps in its report (all are counted and logged).
const PROBLEMS_KEPT: usize = 100;

/// How the scheduled scrub runs.
#[derive(Debug, Clone)]
pub struct IntegrityConfig {
    /// How often (zero: never).
    pub scrub_interval: Duration,
    /// Bytes re-hashed per second at most (zero: no limit).
    pub scrub_bytes_per_sec: u64,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            scrub_interval: Duration::from_secs(7 * 24 * 3600),
            scrub_bytes_per_sec: 50 << 20,
        }
    }
}

/// What one check does.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Copy damaged or missing blobs back from a good copy.
    pub repair: bool,
    /// Bytes re-hashed per second at most (`None`: no limit).
    pub bytes_per_sec: Option<u64>,
    /// `cli`, `api` or `schedule`.
    pub cause: String,
    /// Who asked (for the audit log).
    pub actor: String,
}

/// Why a check could not run (what it found is in its report instead).
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// Database failure.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Storage failure that stopped the check (listing a region).
    #[error("blob storage: {0}")]
    Storage(#[from] BlobError),
}

impl IntegrityError {
    /// The platform fault behind this error, if it is one.
    pub fn fault(&self) -> Option<crate::Fault> {
        match self {
            IntegrityError::Meta(m) => crate::error::meta_fault(m),
            IntegrityError::Storage(e) => crate::error::blob_fault(e),
        }
    }
}

/// What checking one copy of a blob found.
enum Verdict {
    Good,
    Missing,
    Damaged(String),
}

/// Runs integrity checks.
#[derive(Debug, Clone)]
pub struct Integrity {
    store: Arc<dyn IntegrityStore>,
    registry: Registry,
    /// The pull-through cache, whose upstreams hold what it cached.
    proxy: Option<Proxy>,
    regions: Regions,
    audit: Arc<dyn DirectoryStore>,
    config: IntegrityConfig,
}

/// A run in progress: its counts and problems.
struct Report {
    id: i64,
    counts: IntegrityCounts,
    problems: Vec<IntegrityProblem>,
}

impl Report {
    fn found(&mut self, kind: &str, region: &str, digest: &str, detail: String) {
        tracing::error!(run = self.id, kind, region, digest, %detail, "integrity problem");
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(IntegrityProblem {
                kind: kind.into(),
                region: region.into(),
                digest: digest.into(),
                detail,
            });
        }
    }
}

impl Integrity {
    /// Checks over `store` and the regions of `registry` (which repairs
    /// copy through), auditing to `audit`.
    pub fn new(
        store: Arc<dyn IntegrityStore>,
        registry: Registry,
        audit: Arc<dyn DirectoryStore>,
        config: IntegrityConfig,
    ) -> Self {
        Integrity {
            store,
            regions: registry.regions().clone(),
            registry,
            proxy: None,
            audit,
            config,
        }
    }

    /// Repair cached blobs of proxy namespaces from their upstreams too.
    pub fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// How the scheduled scrub runs.
    pub fn config(&self) -> &IntegrityConfig {
        &self.config
    }

    /// Runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<IntegrityRun>, IntegrityError> {
        Ok(self.store.integrity_runs(limit).await?)
    }

    /// One run.
    pub async fn run_of(&self, id: i64) -> Result<Option<IntegrityRun>, IntegrityError> {
        Ok(self.store.integrity_run(id).await?)
    }

    /// At start: whether this region's storage holds the blobs stored last
    /// (a database restored from a later point than the bucket refers to
    /// blobs the bucket lacks). Returns how many of `sample` are missing;
    /// only a report, for the log: Berth serves what it has either way.
    pub async fn sample_newest(&self, sample: i64) -> Result<(usize, usize), IntegrityError> {
        let newest = self.store.integrity_newest_blobs(sample).await?;
        let local = self.regions.local();
        let mut missing = 0;
        for (digest, _) in &newest {
            // With several regions, only blobs recorded here count.
            if self.regions.is_multi() {
                let here = self
                    .store
                    .integrity_locations(std::slice::from_ref(digest))
                    .await?;
                if !here.iter().any(|(_, r)| *r == local.name) {
                    continue;
                }
            }
            let Ok(d) = Digest::parse(digest) else {
                continue;
            };
            if local.blobs.stat(&d).await?.is_none() {
                missing += 1;
            }
        }
        Ok((missing, newest.len()))
    }

    /// The scheduled scrub: a check at the configured rate, repairing.
    pub async fn scrub(&self) -> Result<IntegrityRun, IntegrityError> {
        let rate = self.config.scrub_bytes_per_sec;
        self.check(CheckOptions {
            repair: true,
            bytes_per_sec: (rate > 0).then_some(rate),
            cause: "schedule".into(),
            actor: "scheduler".into(),
        })
        .await
    }

    /// Run one check to the end; its report says what it found.
    pub async fn check(&self, options: CheckOptions) -> Result<IntegrityRun, IntegrityError> {
        let id = self.begin(&options).await?;
        self.finish(id, options).await
    }

    /// Start a check in the background; returns its record as it begins
    /// (follow it with [`Integrity::run_of`]).
    pub async fn spawn(&self, options: CheckOptions) -> Result<IntegrityRun, IntegrityError> {
        let id = self.begin(&options).await?;
        let run = self
            .store
            .integrity_run(id)
            .await?
            .expect("the run was just recorded");
        let this = self.clone();
        tokio::spawn(async move {
            // What it found, or why it failed, is recorded and audited.
            if let Err(e) = this.finish(id, options).await {
                tracing::error!(run = id, error = %e, "integrity check failed");
            }
        });
        Ok(run)
    }

    async fn begin(&self, options: &CheckOptions) -> Result<i64, IntegrityError> {
        Ok(self
            .store
            .integrity_start(&options.cause, &options.actor, options.repair, now_millis())
            .await?)
    }

    async fn finish(&self, id: i64, options: CheckOptions) -> Result<IntegrityRun, IntegrityError> {
        let mut report = Report {
            id,
            counts: IntegrityCounts::default(),
            problems: Vec::new(),
        };
        let outcome = self.steps(&mut report, &options).await;
        let error = outcome.as_ref().err().map(ToString::to_string);
        let status = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        self.store
            .integrity_report(
                id,
                status,
                &report.counts,
                &report.problems,
                error.as_deref(),
                now_millis(),
            )
            .await?;
        let c = &report.counts;
        let detail = format!(
            "{status}: {} blobs ({} bytes) re-hashed; {} damaged, {} missing, {} repaired, \
             {} dangling references, {} orphaned objects{}",
            c.blobs_checked,
            c.bytes_checked,
            c.damaged,
            c.missing,
            c.repaired,
            c.dangling,
            c.orphans,
            error.map(|e| format!("; error: {e}")).unwrap_or_default()
        );
        let action = if c.damaged + c.missing + c.dangling + c.orphans > 0 {
            "integrity.problems"
        } else {
            "integrity.checked"
        };
        if let Err(e) = self
            .audit
            .append_audit(
                &options.actor,
                action,
                &format!("integrity/{id}"),
                &detail,
                None,
                now_millis(),
            )
            .await
        {
            tracing::warn!(run = id, error = %e, "could not audit the integrity check");
        }
        outcome?;
        Ok(self
            .store
            .integrity_run(id)
            .await?
            .expect("the run was just recorded"))
    }

    async fn steps(
        &self,
        report: &mut Report,
        options: &CheckOptions,
    ) -> Result<(), IntegrityError> {
        self.check_blobs(report, options).await?;
        let (dangling, count) = self.store.integrity_dangling(PROBLEMS_KEPT as i64).await?;
        report.counts.dangling = count;
        for d in dangling {
            let what = if d.child { "child manifest" } else { "blob" };
            report.found(
                "dangling",
                "",
                &d.manifest,
                format!(
                    "{}@{} refers to {what} {}, which is gone",
                    d.repo, d.manifest, d.target
                ),
            );
        }
        for region in self.regions.all() {
            self.find_orphans(report, region).await?;
        }
        self.progress(report).await
    }

    async fn progress(&self, report: &Report) -> Result<(), IntegrityError> {
        Ok(self
            .store
            .integrity_report(
                report.id,
                "running",
                &report.counts,
                &report.problems,
                None,
                now_millis(),
            )
            .await?)
    }

    /// Re-hash every live blob in every region that claims it.
    async fn check_blobs(
        &self,
        report: &mut Report,
        options: &CheckOptions,
    ) -> Result<(), IntegrityError> {
        let started = Instant::now();
        let mut after = String::new();
        loop {
            let page = self.store.integrity_blobs(&after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            // Which regions claim each blob: with one region, it holds all.
            let mut claims: Vec<(String, i64, Vec<Region>)> = Vec::new();
            if self.regions.is_multi() {
                let digests: Vec<String> = page.iter().map(|(d, _)| d.clone()).collect();
                let locations = self.store.integrity_locations(&digests).await?;
                for (digest, size) in page {
                    let regions = locations
                        .iter()
                        .filter(|(d, _)| *d == digest)
                        .filter_map(|(_, r)| self.regions.get(r).cloned())
                        .collect();
                    claims.push((digest, size, regions));
                }
            } else {
                for (digest, size) in page {
                    claims.push((digest, size, vec![self.regions.local().clone()]));
                }
            }
            let checks: Vec<_> = claims
                .iter()
                .flat_map(|(digest, size, regions)| {
                    regions
                        .iter()
                        .map(move |r| (digest.clone(), *size, r.clone()))
                })
                .collect();
            let verdicts: Vec<(String, i64, Region, Verdict)> = stream::iter(checks)
                .map(|(digest, size, region)| async move {
                    let verdict = check_copy(&region.blobs, &digest, size).await;
                    (digest, size, region, verdict)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for (digest, size, region, verdict) in verdicts {
                report.counts.blobs_checked += 1;
                let (kind, detail) = match verdict {
                    Verdict::Good => {
                        report.counts.bytes_checked += size;
                        continue;
                    }
                    Verdict::Missing => {
                        report.counts.missing += 1;
                        ("missing", "missing from storage".to_owned())
                    }
                    Verdict::Damaged(detail) => {
                        report.counts.bytes_checked += size;
                        report.counts.damaged += 1;
                        ("damaged", detail)
                    }
                };
                let others: Vec<Region> = claims
                    .iter()
                    .find(|(d, _, _)| *d == digest)
                    .map(|(_, _, rs)| rs.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.name != region.name)
                    .collect();
                let detail = if !options.repair {
                    format!("{detail}; run with repair to copy it back from another region")
                } else {
                    match self.repair(&region, &others, &digest, size).await {
                        Ok(from) => {
                            report.counts.repaired += 1;
                            format!("{detail}; repaired from {from}")
                        }
                        Err(why) => format!("{detail}; not repaired: {why}"),
                    }
                };
                report.found(kind, &region.name, &digest, detail);
            }
            if let Some(rate) = options.bytes_per_sec {
                // Sleep off whatever the run is ahead of its rate.
                let due = Duration::from_secs_f64(report.counts.bytes_checked as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(ahead).await;
                }
            }
            self.progress(report).await?;
        }
        Ok(())
    }

    /// Copy `digest` into `region` from the first of `others` whose copy
    /// checks (the target's upload commit verifies the digest); returns
    /// that region's name.
    async fn repair(
        &self,
        region: &Region,
        others: &[Region],
        digest: &str,
        size: i64,
    ) -> Result<String, String> {
        let d = Digest::parse(digest).map_err(|e| e.to_string())?;
        for source in others {
            // Only a source whose copy checks replaces anything.
            if !matches!(check_copy(&source.blobs, digest, size).await, Verdict::Good) {
                continue;
            }
            // The damaged copy goes first: a commit onto an existing blob
            // may keep it. If the copy then fails, the blob is missing
            // rather than damaged, and the next check tries again.
            region
                .blobs
                .delete(&d)
                .await
                .map_err(|e| format!("deleting the damaged copy: {e}"))?;
            // The copy goes through an upload session of its own, pinned
            // so that the collector leaves the blob alone meanwhile.
            return match self
                .registry
                .copy_blob(REPAIR_SESSION_REPO, &d, size as u64, source, region, None)
                .await
            {
                Ok(true) => Ok(format!("region {}", source.name)),
                Ok(false) => Err("collected meanwhile".into()),
                Err(e) => Err(format!("copying from region {}: {e}", source.name)),
            };
        }
        // A proxy namespace's cached blob: its upstream has it.
        if let Some(proxy) = &self.proxy {
            let repos = self
                .registry
                .meta()
                .blob_repositories(&d, 20)
                .await
                .map_err(|e| e.to_string())?;
            for repo in repos.iter().filter_map(|r| RepoName::parse(r).ok()) {
                match proxy.refetch_blob(&repo, &d).await {
                    Ok(Some(remote)) => {
                        return Ok(format!("the upstream {remote} of {repo}"));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(digest, %repo, error = %e, "refetch from the upstream failed")
                    }
                }
            }
        }
        Err(if others.is_empty() {
            "no other region or upstream holds it".into()
        } else {
            "no other region or upstream has a good copy".into()
        })
    }

    /// Report stored objects of `region` that no blob row knows.
    async fn find_orphans(
        &self,
        report: &mut Report,
        region: &Region,
    ) -> Result<(), IntegrityError> {
        let mut after: Option<Digest> = None;
        loop {
            let page = region.blobs.list_blobs(after.as_ref(), 1000).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let digests: Vec<String> = page.iter().map(|(d, _)| d.as_str().to_owned()).collect();
            for orphan in self.store.integrity_unknown(&digests).await? {
                report.counts.orphans += 1;
                report.found(
                    "orphan",
                    &region.name,
                    &orphan,
                    "stored, but no blob row knows it (berth gc --full reclaims it)".into(),
                );
            }
        }
        Ok(())
    }
}

/// Re-hash one stored copy.
async fn check_copy(blobs: &Arc<dyn BlobStore>, digest: &str, size: i64) -> Verdict {
    let Ok(d) = Digest::parse(digest) else {
        return Verdict::Damaged(format!("the database names it {digest:?}, not a digest"));
    };
    let mut body = match blobs.open_chunks(&d, None, CHUNK).await {
        Ok(Some(body)) => body,
        Ok(None) => return Verdict::Missing,
        Err(e) => return Verdict::Damaged(format!("cannot be read: {e}")),
    };
    let mut hasher = Hasher::new(d.algorithm());
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                n += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Err(e) => return Verdict::Damaged(format!("cannot be read: {e}")),
        }
    }
    let got = hasher.finish();
    if got != d || n != size as u64 {
        return Verdict::Damaged(format!(
            "damaged: {n} bytes (expected {size}) hashing to {got}"
        ));
    }
    Verdict::Good
}
