//! The platform beyond one region and one repository: regions with their
//! own blob storage ([`Regions`]), eager replication and on-demand fetches
//! between them, synchronization rules with their records
//! ([`Synchronizer`]), and the worker that runs the database's job queue
//! ([`Worker`]).
//!
//! Layering: above the registry and the directory (it calls both); the
//! binary starts the worker and the HTTP surfaces call the synchronizer.

mod copy;
mod regions;
mod replication;
mod sync;
mod worker;

pub(crate) use copy::channel_stream;
pub use regions::{LagHistogram, PlatformStats, Region, Regions, DEFAULT_REGION, LAG_BUCKETS};
pub(crate) use replication::replicate_job;
pub use replication::{CopyCounts, RegionAvailability, REPLICATE_IMAGE_JOB};
pub use sync::{target_repository, SyncRuleSpec, SyncTags, Synchronizer, MAX_MANUAL_TAGS};
pub use worker::{Worker, WorkerConfig};

/// Why a job failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// What went wrong.
    pub message: String,
    /// Retrying cannot help (bad input, a refusal): give up now.
    pub permanent: bool,
}

impl JobFailure {
    /// A failure worth retrying (storage or database trouble).
    pub fn retry(message: impl Into<String>) -> Self {
        JobFailure {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobFailure {
            message: message.into(),
            permanent: true,
        }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<berth_meta::MetaError> for JobFailure {
    fn from(e: berth_meta::MetaError) -> Self {
        JobFailure::retry(format!("database: {e}"))
    }
}

impl From<berth_blob::BlobError> for JobFailure {
    fn from(e: berth_blob::BlobError) -> Self {
        JobFailure::retry(format!("blob storage: {e}"))
    }
}
