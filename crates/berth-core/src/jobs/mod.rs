//! The database's durable job queue, seen from the services: why a job
//! failed ([`JobFailure`]), where an attempt stands ([`Attempt`]), and the
//! [`Worker`] that leases jobs on every node and dispatches them by kind
//! to the platform (replication, synchronization) and to the events
//! (webhook deliveries).

mod worker;

pub use worker::{Worker, WorkerConfig};

/// Where a job stands when it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// How many times the job was claimed, this time included.
    pub number: i64,
    /// Whether a failure now is the last one.
    pub last: bool,
}

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

impl From<crate::RegistryError> for JobFailure {
    fn from(e: crate::RegistryError) -> Self {
        if e.is_internal() {
            JobFailure::retry(e.to_string())
        } else {
            JobFailure::permanent(e.to_string())
        }
    }
}
