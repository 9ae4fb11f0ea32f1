//! Replication with remote registries in SQL (`ReplicationStore`): rules,
//! runs and their tasks. Written once for both databases.

use async_trait::async_trait;
use sqlx::Row;

use super::jobs::insert_job;
use super::platform::insert_sync;
use super::{DbRow, Store};
use crate::error::{MetaError, MetaResult};
use crate::platform::remote_replication::{
    run_status, ReplicationRule, ReplicationRuleInput, ReplicationRun, ReplicationStore, RunCounts,
    REPLICATION_RUN_JOB,
};
use crate::platform::NewJob;
use crate::platform::NewSyncRecord;

const RULE_COLUMNS: &str = "id, name, description, direction, remote, filters, destination, \
     flatten, override, deletions, referrers, bandwidth, trigger, interval_secs, next_run_at, enabled, \
     author, created_at, updated_at";

/// A run with its tasks counted by status.
const RUN_SELECT: &str = "SELECT r.id, r.rule_id, r.rule_name, r.trigger, r.operator, r.status, \
     r.error, r.created_at, r.listed_at, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id) AS total, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id AND s.status = 'waiting') AS waiting, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id AND s.status = 'running') AS running, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id AND s.status = 'succeeded') AS succeeded, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id AND s.status = 'failed') AS failed, \
     (SELECT COUNT(*) FROM sync_records s WHERE s.run_id = r.id AND s.status = 'conflict') AS conflict, \
     (SELECT CAST(COALESCE(SUM(s.bytes_copied), 0) AS BIGINT) FROM sync_records s WHERE s.run_id = r.id) AS bytes \
     FROM replication_runs r";

fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> MetaError {
    super::directory::conflict(format!("a replication rule named {name}"))
}

pub(crate) fn replication_rule_row(r: &DbRow) -> MetaResult<ReplicationRule> {
    Ok(ReplicationRule {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        direction: r.try_get("direction")?,
        remote: r.try_get("remote")?,
        filters: r.try_get("filters")?,
        destination: r.try_get("destination")?,
        flatten: r.try_get("flatten")?,
        overwrite: r.try_get::<i64, _>("override")? != 0,
        deletions: r.try_get::<i64, _>("deletions")? != 0,
        referrers: r.try_get::<i64, _>("referrers")? != 0,
        bandwidth: r.try_get("bandwidth")?,
        trigger: r.try_get("trigger")?,
        interval_secs: r.try_get("interval_secs")?,
        next_run_at: r.try_get("next_run_at")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        author: r.try_get("author")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) fn run_row(r: &DbRow) -> MetaResult<ReplicationRun> {
    Ok(ReplicationRun {
        id: r.try_get("id")?,
        rule_id: r.try_get("rule_id")?,
        rule_name: r.try_get("rule_name")?,
        trigger: r.try_get("trigger")?,
        operator: r.try_get("operator")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        listed_at: r.try_get("listed_at")?,
        tasks: RunCounts {
            total: r.try_get("total")?,
            waiting: r.try_get("waiting")?,
            running: r.try_get("running")?,
            succeeded: r.try_get("succeeded")?,
            failed: r.try_get("failed")?,
            conflict: r.try_get("conflict")?,
            bytes: r.try_get("bytes")?,
        },
    })
}

#[async_trait]
impl ReplicationStore for Store {
    async fn create_replication_rule(
        &self,
        r: &ReplicationRuleInput,
    ) -> MetaResult<ReplicationRule> {
        let sql = format!(
            "INSERT INTO replication_rules (name, description, direction, remote, filters, \
             destination, flatten, override, deletions, bandwidth, trigger, interval_secs, \
             next_run_at, enabled, author, created_at, updated_at, referrers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17) \
             RETURNING {RULE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&r.name)
            .bind(&r.description)
            .bind(&r.direction)
            .bind(&r.remote)
            .bind(&r.filters)
            .bind(&r.destination)
            .bind(r.flatten)
            .bind(i64::from(r.overwrite))
            .bind(i64::from(r.deletions))
            .bind(r.bandwidth)
            .bind(&r.trigger)
            .bind(r.interval_secs)
            .bind(r.next_run_at)
            .bind(i64::from(r.enabled))
            .bind(&r.author)
            .bind(r.now)
            .bind(i64::from(r.referrers))
            .fetch_one(&self.write)
            .await
            .map_err(name_taken(&r.name))?;
        replication_rule_row(&row)
    }

    async fn update_replication_rule(
        &self,
        id: i64,
        r: &ReplicationRuleInput,
    ) -> MetaResult<Option<ReplicationRule>> {
        let sql = format!(
            "UPDATE replication_rules SET name = $2, description = $3, direction = $4, \
             remote = $5, filters = $6, destination = $7, flatten = $8, override = $9, \
             deletions = $10, bandwidth = $11, trigger = $12, interval_secs = $13, \
             next_run_at = $14, enabled = $15, updated_at = $16, referrers = $17 WHERE id = $1 \
             RETURNING {RULE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(&r.name)
            .bind(&r.description)
            .bind(&r.direction)
            .bind(&r.remote)
            .bind(&r.filters)
            .bind(&r.destination)
            .bind(r.flatten)
            .bind(i64::from(r.overwrite))
            .bind(i64::from(r.deletions))
            .bind(r.bandwidth)
            .bind(&r.trigger)
            .bind(r.interval_secs)
            .bind(r.next_run_at)
            .bind(i64::from(r.enabled))
            .bind(r.now)
            .bind(i64::from(r.referrers))
            .fetch_optional(&self.write)
            .await
            .map_err(name_taken(&r.name))?;
        row.as_ref().map(replication_rule_row).transpose()
    }

    async fn replication_rules(&self) -> MetaResult<Vec<ReplicationRule>> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM replication_rules ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(replication_rule_row).collect()
    }

    async fn replication_rule(&self, id: i64) -> MetaResult<Option<ReplicationRule>> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM replication_rules WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(replication_rule_row).transpose()
    }

    async fn delete_replication_rule(&self, id: i64) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM replication_rules WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn due_replication_rules(&self, now: i64) -> MetaResult<Vec<ReplicationRule>> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM replication_rules WHERE trigger = 'schedule' \
             AND enabled = 1 AND next_run_at <= $1 ORDER BY next_run_at"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.read).await?;
        rows.iter().map(replication_rule_row).collect()
    }

    async fn start_replication_run(
        &self,
        rule_id: i64,
        trigger: &str,
        operator: &str,
        now: i64,
        next_run_at: Option<i64>,
    ) -> MetaResult<Option<i64>> {
        let mut tx = self.write.begin().await?;
        let name: Option<(String,)> = match next_run_at {
            // Only the node that moves the schedule on starts the run.
            Some(next) => {
                sqlx::query_as(
                    "UPDATE replication_rules SET next_run_at = $2 \
                 WHERE id = $1 AND next_run_at <= $3 RETURNING name",
                )
                .bind(rule_id)
                .bind(next)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as("SELECT name FROM replication_rules WHERE id = $1")
                    .bind(rule_id)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        let Some((name,)) = name else {
            return Ok(None);
        };
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO replication_runs (rule_id, rule_name, trigger, operator, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(rule_id)
        .bind(&name)
        .bind(trigger)
        .bind(operator)
        .bind(run_status::LISTING)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let job = NewJob {
            kind: REPLICATION_RUN_JOB.to_owned(),
            region: None,
            dedupe_key: Some(format!("replication-run:{id}")),
            payload: serde_json::json!({ "run": id }).to_string(),
            run_after: now,
            urgent: false,
        };
        insert_job(&mut tx, &job, now).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    async fn replication_run(&self, id: i64) -> MetaResult<Option<ReplicationRun>> {
        let sql = format!("{RUN_SELECT} WHERE r.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    async fn replication_runs(
        &self,
        rule: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> MetaResult<(Vec<ReplicationRun>, i64)> {
        let (total,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM replication_runs WHERE ($1 IS NULL OR rule_id = $1)",
        )
        .bind(rule)
        .fetch_one(&self.read)
        .await?;
        let sql = format!(
            "{RUN_SELECT} WHERE ($1 IS NULL OR r.rule_id = $1) \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(rule)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let runs = rows.iter().map(run_row).collect::<MetaResult<Vec<_>>>()?;
        Ok((runs, total))
    }

    async fn finish_run_listing(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        tasks: &[NewSyncRecord],
        now: i64,
    ) -> MetaResult<Vec<i64>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE replication_runs SET status = $2, error = $3, listed_at = $4 \
             WHERE id = $1 AND status = 'listing'",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Listed already (a job that ran twice): keep the first tasks.
        if done.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(tasks.len());
        for t in tasks {
            ids.push(insert_sync(&mut tx, t, now).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }
}
