//! Writes to the durable job queue inside another change's transaction,
//! shared by every domain that queues work. Written once for both
//! databases.

use super::Db;
use crate::error::MetaResult;
use crate::platform::NewJob;

/// Queue a job inside a transaction (a no-op when a live job
/// has its dedupe key).
pub(crate) async fn insert_job(
    tx: &mut sqlx::Transaction<'_, Db>,
    job: &NewJob,
    now: i64,
) -> MetaResult<bool> {
    let done = sqlx::query(
        "INSERT INTO jobs (kind, region, dedupe_key, payload, state, run_after, created_at, updated_at, urgent) \
         VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&job.kind)
    .bind(job.region.as_deref())
    .bind(job.dedupe_key.as_deref())
    .bind(&job.payload)
    .bind(job.run_after)
    .bind(now)
    .bind(i64::from(job.urgent))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}
