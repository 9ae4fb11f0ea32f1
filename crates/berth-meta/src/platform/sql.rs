//! The platform's tables in SQL (`PlatformStore`): where each blob's bytes
//! are by region, the durable job queue, synchronization rules and records.
//! Written once for both databases; claiming a job differs in one clause
//! (`CLAIM_LOCK`: PostgreSQL locks the chosen row with `FOR UPDATE SKIP
//! LOCKED`, so workers on several nodes never take the same job).

use async_trait::async_trait;
use sqlx::Row;

use super::events::insert_events;
use super::jobs::insert_job;
use super::{Db, DbRow, Store, CLAIM_LOCK};
use crate::error::{MetaError, MetaResult};
use crate::platform::remote_replication::REPLICATE_REMOTE_JOB;
use crate::platform::{
    record_kind, ImageBlob, Job, JobCount, NewJob, NewSyncRecord, NewSyncRule, PlatformStore,
    RegionUsage, ReplicationTask, SyncProgress, SyncRecord, SyncRecordQuery, SyncRule,
    SYNC_TAG_JOB,
};

/// The manifests of an image: itself and its children, recursively.
/// `$1` is the repository id, `$2` the manifest digest.
const IMAGE_MANIFESTS: &str = "WITH RECURSIVE ms(digest) AS ( \
       SELECT CAST($2 AS TEXT) \
       UNION SELECT mr.ref_digest FROM manifest_refs mr JOIN ms ON mr.digest = ms.digest \
       WHERE mr.repo_id = $1 AND mr.kind = 1) ";

/// The distinct blobs of those manifests (append to `IMAGE_MANIFESTS`).
const IMAGE_NEEDS: &str =
    ", needs(digest) AS (SELECT DISTINCT mr.ref_digest FROM manifest_refs mr \
       JOIN ms ON mr.digest = ms.digest WHERE mr.repo_id = $1 AND mr.kind = 0) ";

const RULE_COLUMNS: &str =
    "id, repo, target_region, target_namespace, overwrite, author, created_at";

pub(crate) const RECORD_COLUMNS: &str = "id, rule_id, repo, tag, digest, target_region, \
     target_namespace, overwrite, trigger, operator, status, created_at, started_at, finished_at, \
     bytes_copied, blobs_copied, blobs_present, attempts, error, kind, run_id, replication_rule_id, \
     remote, remote_repo, direction, action";

/// Record a synchronization and queue its job inside a transaction.
pub(crate) async fn insert_sync(
    tx: &mut sqlx::Transaction<'_, Db>,
    r: &NewSyncRecord,
    now: i64,
) -> MetaResult<i64> {
    let task = r.replication.as_ref();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO sync_records (rule_id, repo, tag, digest, target_region, target_namespace, \
         overwrite, trigger, operator, status, created_at, kind, run_id, replication_rule_id, \
         remote, remote_repo, direction, action) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', $10, $11, $12, $13, $14, $15, $16, $17) \
         RETURNING id",
    )
    .bind(task.is_none().then_some(r.rule_id))
    .bind(&r.repo)
    .bind(&r.tag)
    .bind(&r.digest)
    .bind(&r.target_region)
    .bind(&r.target_namespace)
    .bind(i64::from(r.overwrite))
    .bind(&r.trigger)
    .bind(&r.operator)
    .bind(now)
    .bind(if task.is_some() { record_kind::REPLICATION } else { record_kind::SYNC })
    .bind(task.and_then(|t| t.run_id))
    .bind(task.and_then(|t| t.rule_id))
    .bind(task.map(|t| t.remote.as_str()))
    .bind(task.map(|t| t.remote_repo.as_str()))
    .bind(task.map(|t| t.direction.as_str()))
    .bind(task.map_or("copy", |t| t.action.as_str()))
    .fetch_one(&mut **tx)
    .await?;
    let job = NewJob {
        kind: if task.is_some() {
            REPLICATE_REMOTE_JOB
        } else {
            SYNC_TAG_JOB
        }
        .to_owned(),
        region: Some(r.target_region.clone()),
        dedupe_key: Some(format!("sync:{id}")),
        payload: serde_json::json!({ "record": id }).to_string(),
        run_after: now,
        urgent: false,
    };
    insert_job(tx, &job, now).await?;
    Ok(id)
}

pub(crate) async fn platform_repo_id(store: &Store, repo: &str) -> MetaResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
        .bind(repo)
        .fetch_optional(&store.read)
        .await?;
    Ok(row.map(|(id,)| id))
}

pub(crate) fn rule_row(r: &DbRow) -> MetaResult<SyncRule> {
    Ok(SyncRule {
        id: r.try_get("id")?,
        repo: r.try_get("repo")?,
        target_region: r.try_get("target_region")?,
        target_namespace: r.try_get("target_namespace")?,
        overwrite: r.try_get::<i64, _>("overwrite")? != 0,
        author: r.try_get("author")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) fn record_row(r: &DbRow) -> MetaResult<SyncRecord> {
    Ok(SyncRecord {
        id: r.try_get("id")?,
        rule_id: r.try_get("rule_id")?,
        repo: r.try_get("repo")?,
        tag: r.try_get("tag")?,
        digest: r.try_get("digest")?,
        target_region: r.try_get("target_region")?,
        target_namespace: r.try_get("target_namespace")?,
        overwrite: r.try_get::<i64, _>("overwrite")? != 0,
        trigger: r.try_get("trigger")?,
        operator: r.try_get("operator")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        bytes_copied: r.try_get("bytes_copied")?,
        blobs_copied: r.try_get("blobs_copied")?,
        blobs_present: r.try_get("blobs_present")?,
        attempts: r.try_get("attempts")?,
        error: r.try_get("error")?,
        replication: match r.try_get::<Option<String>, _>("remote")? {
            Some(remote) => Some(ReplicationTask {
                rule_id: r.try_get("replication_rule_id")?,
                run_id: r.try_get("run_id")?,
                remote,
                remote_repo: r
                    .try_get::<Option<String>, _>("remote_repo")?
                    .unwrap_or_default(),
                direction: r
                    .try_get::<Option<String>, _>("direction")?
                    .unwrap_or_default(),
                action: r.try_get("action")?,
            }),
            None => None,
        },
        kind: r.try_get("kind")?,
    })
}

#[async_trait]
impl PlatformStore for Store {
    async fn add_blob_location(&self, digest: &str, region: &str, now: i64) -> MetaResult<bool> {
        let mut tx = self.write.begin().await?;
        Self::gc_shared(&mut tx).await?;
        let live: Option<(i64,)> = sqlx::query_as("SELECT state FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
        if live != Some((0,)) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO blob_locations (digest, region, since) VALUES ($1, $2, $3) \
             ON CONFLICT (digest, region) DO NOTHING",
        )
        .bind(digest)
        .bind(region)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn blob_locations(&self, digest: &str) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT region FROM blob_locations WHERE digest = $1 ORDER BY since, region",
        )
        .bind(digest)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    async fn image_blobs(&self, repo: &str, digest: &str) -> MetaResult<Option<Vec<ImageBlob>>> {
        let Some(repo_id) = platform_repo_id(self, repo).await? else {
            return Ok(None);
        };
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT size FROM manifests WHERE repo_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(digest)
                .fetch_optional(&self.read)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "{IMAGE_MANIFESTS}{IMAGE_NEEDS} SELECT b.digest, b.size FROM needs \
             JOIN blobs b ON b.digest = needs.digest ORDER BY b.digest"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
            .bind(repo_id)
            .bind(digest)
            .fetch_all(&self.read)
            .await?;
        Ok(Some(
            rows.into_iter()
                .map(|(digest, size)| ImageBlob { digest, size })
                .collect(),
        ))
    }

    async fn image_presence(
        &self,
        repo: &str,
        digest: &str,
    ) -> MetaResult<(i64, Vec<(String, i64)>)> {
        let Some(repo_id) = platform_repo_id(self, repo).await? else {
            return Ok((0, Vec::new()));
        };
        let total_sql = format!("{IMAGE_MANIFESTS}{IMAGE_NEEDS} SELECT COUNT(*) FROM needs");
        let (total,): (i64,) = sqlx::query_as(&total_sql)
            .bind(repo_id)
            .bind(digest)
            .fetch_one(&self.read)
            .await?;
        let sql = format!(
            "{IMAGE_MANIFESTS}{IMAGE_NEEDS} SELECT bl.region, COUNT(*) FROM needs \
             JOIN blob_locations bl ON bl.digest = needs.digest GROUP BY bl.region ORDER BY bl.region"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
            .bind(repo_id)
            .bind(digest)
            .fetch_all(&self.read)
            .await?;
        Ok((total, rows))
    }

    async fn unreplicated_images(
        &self,
        region: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> MetaResult<Vec<(String, String, i64)>> {
        let (after_repo, after_digest) = after.unwrap_or(("", ""));
        Ok(sqlx::query_as(
            "SELECT r.name, m.digest, m.pushed_at FROM manifests m \
             JOIN repositories r ON r.id = m.repo_id \
             WHERE (r.name > $2 OR (r.name = $2 AND m.digest > $3)) \
             AND EXISTS (SELECT 1 FROM manifest_refs mr JOIN blobs b ON b.digest = mr.ref_digest \
                         WHERE mr.repo_id = m.repo_id AND mr.digest = m.digest AND mr.kind = 0 \
                         AND b.state = 0 AND NOT EXISTS (SELECT 1 FROM blob_locations bl \
                             WHERE bl.digest = mr.ref_digest AND bl.region = $1)) \
             ORDER BY r.name, m.digest LIMIT $4",
        )
        .bind(region)
        .bind(after_repo)
        .bind(after_digest)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn region_usage(&self) -> MetaResult<Vec<RegionUsage>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT bl.region, COUNT(*), CAST(COALESCE(SUM(b.size), 0) AS BIGINT) \
             FROM blob_locations bl JOIN blobs b ON b.digest = bl.digest \
             GROUP BY bl.region ORDER BY bl.region",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(region, blobs, bytes)| RegionUsage {
                region,
                blobs,
                bytes,
            })
            .collect())
    }

    async fn namespace_copy_regions(&self, namespace: &str) -> MetaResult<Option<Option<String>>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT replication_regions FROM namespaces WHERE name = $1")
                .bind(namespace)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(r,)| r))
    }

    async fn set_namespace_copy_regions(
        &self,
        namespace: &str,
        regions: Option<&str>,
        now: i64,
    ) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE namespaces SET replication_regions = $2, updated_at = $3 WHERE name = $1",
        )
        .bind(namespace)
        .bind(regions)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> MetaResult<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let now = jobs.iter().map(|j| j.run_after).min().unwrap_or(0);
        let mut tx = self.write.begin().await?;
        let mut queued = 0;
        for job in jobs {
            queued += usize::from(insert_job(&mut tx, job, now).await?);
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_job(
        &self,
        region: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> MetaResult<Option<Job>> {
        let mut tx = self.write.begin().await?;
        // Expired leases first (few), then the oldest urgent job (fewer),
        // then the oldest waiting job: each query an index range read in
        // order with LIMIT 1. One query with an OR sorted every ready job
        // per claim (30 ms a claim with 64,000 waiting).
        let mut found: Option<(i64,)> = None;
        for ready in [
            "state = 'running' AND lease_until < $2",
            "urgent = 1 AND state = 'waiting' AND run_after <= $2",
            "state = 'waiting' AND run_after <= $2",
        ] {
            let sql = format!(
                "SELECT id FROM jobs WHERE {ready} AND (region = $1 OR region IS NULL) \
                 ORDER BY run_after, id LIMIT 1{CLAIM_LOCK}"
            );
            found = sqlx::query_as(&sql)
                .bind(region)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_some() {
                break;
            }
        }
        let Some((id,)) = found else {
            return Ok(None);
        };
        let row = sqlx::query(
            "UPDATE jobs SET state = 'running', lease_owner = $2, lease_until = $3, \
             attempts = attempts + 1, updated_at = $4 WHERE id = $1 \
             RETURNING id, kind, region, payload, attempts, created_at",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Job {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            region: row.try_get("region")?,
            payload: row.try_get("payload")?,
            attempts: row.try_get("attempts")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn renew_job(&self, id: i64, owner: &str, until: i64) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_job(&self, id: i64, owner: &str) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail_job(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        run_after: Option<i64>,
        now: i64,
    ) -> MetaResult<()> {
        let q = match run_after {
            Some(at) => sqlx::query(
                "UPDATE jobs SET state = 'waiting', run_after = $3, lease_owner = NULL, \
                 lease_until = NULL, last_error = $4, updated_at = $5 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(at),
            // A failed job lets go of its key, so that a later pass
            // may queue the work again.
            None => sqlx::query(
                "UPDATE jobs SET state = 'failed', dedupe_key = NULL, lease_owner = NULL, \
                 lease_until = NULL, run_after = $3, last_error = $4, updated_at = $5 \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now),
        };
        q.bind(error).bind(now).execute(&self.write).await?;
        Ok(())
    }

    async fn job_counts(&self) -> MetaResult<Vec<JobCount>> {
        let rows: Vec<(Option<String>, String, i64)> = sqlx::query_as(
            "SELECT region, state, COUNT(*) FROM jobs GROUP BY region, state ORDER BY region, state",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(region, state, count)| JobCount {
                region,
                state,
                count,
            })
            .collect())
    }

    async fn create_sync_rule(&self, rule: &NewSyncRule) -> MetaResult<SyncRule> {
        let sql = format!(
            "INSERT INTO sync_rules (repo, target_region, target_namespace, overwrite, author, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repo, target_region, target_namespace) DO NOTHING \
             RETURNING {RULE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&rule.repo)
            .bind(&rule.target_region)
            .bind(&rule.target_namespace)
            .bind(i64::from(rule.overwrite))
            .bind(&rule.author)
            .bind(rule.now)
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(r) => rule_row(&r),
            None => Err(MetaError::Conflict(format!(
                "a synchronization rule of {} to namespace {} in region {}",
                rule.repo, rule.target_namespace, rule.target_region
            ))),
        }
    }

    async fn sync_rules(&self, repo: &str) -> MetaResult<Vec<SyncRule>> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM sync_rules WHERE repo = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(repo).fetch_all(&self.read).await?;
        rows.iter().map(rule_row).collect()
    }

    async fn sync_rule(&self, id: i64) -> MetaResult<Option<SyncRule>> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM sync_rules WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(rule_row).transpose()
    }

    async fn delete_sync_rule(&self, id: i64) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM sync_rules WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn start_syncs(&self, records: &[NewSyncRecord], now: i64) -> MetaResult<Vec<i64>> {
        let mut tx = self.write.begin().await?;
        let mut ids = Vec::with_capacity(records.len());
        for r in records {
            ids.push(insert_sync(&mut tx, r, now).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn sync_record(&self, id: i64) -> MetaResult<Option<SyncRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(record_row).transpose()
    }

    async fn update_sync_record(
        &self,
        id: i64,
        p: &SyncProgress,
        events: &[crate::events::NewEvent],
    ) -> MetaResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE sync_records SET status = $2, started_at = $3, finished_at = $4, \
             bytes_copied = $5, blobs_copied = $6, blobs_present = $7, attempts = $8, error = $9 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(&p.status)
        .bind(p.started_at)
        .bind(p.finished_at)
        .bind(p.bytes_copied)
        .bind(p.blobs_copied)
        .bind(p.blobs_present)
        .bind(p.attempts)
        .bind(p.error.as_deref())
        .execute(&mut *tx)
        .await?;
        let now = p.finished_at.or(p.started_at).unwrap_or(0);
        insert_events(&mut tx, events, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sync_records(&self, q: &SyncRecordQuery) -> MetaResult<(Vec<SyncRecord>, i64)> {
        let (from, to) = match &q.namespace {
            Some(ns) => (format!("{ns}/"), format!("{ns}0")),
            None => (String::new(), String::new()),
        };
        const WHERE: &str = "WHERE ($1 IS NULL OR repo = $1) \
             AND ($2 = '' OR (repo > $2 AND repo < $3)) \
             AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR created_at >= $5) AND ($6 IS NULL OR created_at < $6) \
             AND ($7 IS NULL OR kind = $7) AND ($8 IS NULL OR run_id = $8) \
             AND ($9 IS NULL OR replication_rule_id = $9)";
        let count_sql = format!("SELECT COUNT(*) FROM sync_records {WHERE}");
        let (total,): (i64,) = sqlx::query_as(&count_sql)
            .bind(q.repo.as_deref())
            .bind(&from)
            .bind(&to)
            .bind(q.status.as_deref())
            .bind(q.since)
            .bind(q.until)
            .bind(q.kind.as_deref())
            .bind(q.run)
            .bind(q.replication_rule)
            .fetch_one(&self.read)
            .await?;
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM sync_records {WHERE} ORDER BY created_at DESC, id DESC \
             LIMIT $10 OFFSET $11"
        );
        let rows = sqlx::query(&sql)
            .bind(q.repo.as_deref())
            .bind(&from)
            .bind(&to)
            .bind(q.status.as_deref())
            .bind(q.since)
            .bind(q.until)
            .bind(q.kind.as_deref())
            .bind(q.run)
            .bind(q.replication_rule)
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(&self.read)
            .await?;
        let records = rows
            .iter()
            .map(record_row)
            .collect::<MetaResult<Vec<_>>>()?;
        Ok((records, total))
    }
}
