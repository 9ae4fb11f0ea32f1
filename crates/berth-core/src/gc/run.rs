//! What a collection is configured with, what it reports, and how it
//! fails: shared by the collector and its blob step.

use std::time::{Duration, Instant};

use berth_blob::BlobError;
use berth_meta::{GcCounts, GcRun, GcStore, MetaError};

use crate::clock::now_millis;
use crate::RegistryError;

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
    /// Blobs this node's share of a blob step claims per second at most
    /// (zero: as fast as it goes). On a small machine, a collection at full
    /// speed takes the processor from the pushes that run beside it.
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
    /// A task of the collection ended abnormally (a bug: it panicked).
    #[error("a collection task ended abnormally: {0}")]
    Aborted(String),
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
            GcError::Running(_) | GcError::Aborted(_) => None,
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

/// Progress of a run, reported to its record and (now and then) the log.
pub(super) struct Progress<'a> {
    pub(super) store: &'a dyn GcStore,
    pub(super) run: i64,
    pub(super) counts: GcCounts,
    pub(super) logged: Instant,
}

impl Progress<'_> {
    pub(super) async fn report(&mut self, stage: &str) -> Result<(), GcError> {
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
