//! The durable job queue's rows: a job to queue, a job a worker holds,
//! and counts by state.

/// Job states.
pub mod job_state {
    /// Waiting for its time (`run_after`) and a worker.
    pub const WAITING: &str = "waiting";
    /// Leased by a worker.
    pub const RUNNING: &str = "running";
    /// Gave up after too many attempts; kept with its error.
    pub const FAILED: &str = "failed";
}

/// A job to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What to do (the services layer dispatches on it).
    pub kind: String,
    /// Only workers of this region run it; `None`: any worker.
    pub region: Option<String>,
    /// At most one live job per key: enqueueing a second is a no-op.
    pub dedupe_key: Option<String>,
    /// Its arguments, as JSON text.
    pub payload: String,
    /// Not before this time, Unix milliseconds.
    pub run_after: i64,
    /// Taken before every waiting job that is not (once due).
    pub urgent: bool,
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// What to do.
    pub kind: String,
    /// The region whose workers run it.
    pub region: Option<String>,
    /// Arguments, as JSON text.
    pub payload: String,
    /// How many times it was claimed, this time included.
    pub attempts: i64,
    /// When it was enqueued, Unix milliseconds.
    pub created_at: i64,
}

/// How many jobs of a region are in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    /// The region (`None`: any).
    pub region: Option<String>,
    /// `waiting`, `running` or `failed`.
    pub state: String,
    /// Jobs.
    pub count: i64,
}
