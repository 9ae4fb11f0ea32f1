//! What integrity checks read and record, in SQL (`IntegrityStore`).
//! Written once for both databases. Reads go to the read pool: a check
//! never holds a lock pushes wait for.

use async_trait::async_trait;
use sqlx::Row;

use super::{DbRow, Store};
use crate::backend::placeholders;
use crate::error::MetaResult;
use crate::integrity::{
    DanglingRef, IntegrityCounts, IntegrityProblem, IntegrityRun, IntegrityStore,
};

/// References whose target is gone: a blob without a live row, or a child
/// manifest missing from the repository.
const DANGLING: &str = "FROM manifest_refs mr JOIN repositories r ON r.id = mr.repo_id \
     WHERE (mr.kind = 0 AND NOT EXISTS (SELECT 1 FROM blobs b \
                WHERE b.digest = mr.ref_digest AND b.state = 0)) \
        OR (mr.kind = 1 AND NOT EXISTS (SELECT 1 FROM manifests m \
                WHERE m.repo_id = mr.repo_id AND m.digest = mr.ref_digest))";

const RUN_COLUMNS: &str = "SELECT id, cause, actor, repair, status, started_at, updated_at, \
     finished_at, blobs_checked, bytes_checked, damaged, missing, repaired, dangling, orphans, \
     problems, error FROM integrity_runs";

fn problems_json(problems: &[IntegrityProblem]) -> String {
    serde_json::Value::Array(
        problems
            .iter()
            .map(|p| {
                serde_json::json!({"kind": p.kind, "region": p.region,
                    "digest": p.digest, "detail": p.detail})
            })
            .collect(),
    )
    .to_string()
}

fn problems_of(json: &str) -> Vec<IntegrityProblem> {
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    serde_json::from_str::<Vec<serde_json::Value>>(json)
        .unwrap_or_default()
        .iter()
        .map(|v| IntegrityProblem {
            kind: field(v, "kind"),
            region: field(v, "region"),
            digest: field(v, "digest"),
            detail: field(v, "detail"),
        })
        .collect()
}

fn run_row(r: &DbRow) -> MetaResult<IntegrityRun> {
    Ok(IntegrityRun {
        id: r.try_get("id")?,
        cause: r.try_get("cause")?,
        actor: r.try_get("actor")?,
        repair: r.try_get::<i64, _>("repair")? != 0,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: IntegrityCounts {
            blobs_checked: r.try_get("blobs_checked")?,
            bytes_checked: r.try_get("bytes_checked")?,
            damaged: r.try_get("damaged")?,
            missing: r.try_get("missing")?,
            repaired: r.try_get("repaired")?,
            dangling: r.try_get("dangling")?,
            orphans: r.try_get("orphans")?,
        },
        problems: problems_of(&r.try_get::<String, _>("problems")?),
        error: r.try_get("error")?,
    })
}

#[async_trait]
impl IntegrityStore for Store {
    async fn integrity_blobs(&self, after: &str, limit: i64) -> MetaResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(crate::integrity::LIVE_BLOBS)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    async fn integrity_newest_blobs(&self, limit: i64) -> MetaResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT digest, size FROM blobs WHERE state = 0 \
             ORDER BY created_at DESC, digest LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn integrity_locations(&self, digests: &[String]) -> MetaResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        for chunk in digests.chunks(100) {
            let sql = format!(
                "SELECT digest, region FROM blob_locations WHERE digest IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_as(&sql);
            for d in chunk {
                q = q.bind(d);
            }
            found.extend(q.fetch_all(&self.read).await?);
        }
        Ok(found)
    }

    async fn integrity_dangling(&self, limit: i64) -> MetaResult<(Vec<DanglingRef>, i64)> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT r.name, mr.digest, mr.ref_digest, mr.kind {DANGLING} \
             ORDER BY r.name, mr.digest, mr.ref_digest LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {DANGLING}"))
            .fetch_one(&self.read)
            .await?;
        Ok((
            rows.into_iter()
                .map(|(repo, manifest, target, kind)| DanglingRef {
                    repo,
                    manifest,
                    target,
                    child: kind == 1,
                })
                .collect(),
            count,
        ))
    }

    async fn integrity_unknown(&self, digests: &[String]) -> MetaResult<Vec<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in digests.chunks(100) {
            let sql = format!(
                "SELECT digest FROM blobs WHERE digest IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String,)>(&sql);
            for d in chunk {
                q = q.bind(d);
            }
            known.extend(q.fetch_all(&self.read).await?.into_iter().map(|(d,)| d));
        }
        Ok(digests
            .iter()
            .filter(|d| !known.contains(*d))
            .cloned()
            .collect())
    }

    async fn integrity_start(
        &self,
        cause: &str,
        actor: &str,
        repair: bool,
        now: i64,
    ) -> MetaResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO integrity_runs (cause, actor, repair, status, started_at, updated_at) \
             VALUES ($1, $2, $3, 'running', $4, $4) RETURNING id",
        )
        .bind(cause)
        .bind(actor)
        .bind(i64::from(repair))
        .bind(now)
        .fetch_one(&self.write)
        .await?;
        Ok(id)
    }

    async fn integrity_report(
        &self,
        id: i64,
        status: &str,
        counts: &IntegrityCounts,
        problems: &[IntegrityProblem],
        error: Option<&str>,
        now: i64,
    ) -> MetaResult<()> {
        let finished = (status != "running").then_some(now);
        sqlx::query(
            "UPDATE integrity_runs SET status = $2, updated_at = $3, finished_at = $4, \
             blobs_checked = $5, bytes_checked = $6, damaged = $7, missing = $8, repaired = $9, \
             dangling = $10, orphans = $11, problems = $12, error = $13 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(now)
        .bind(finished)
        .bind(counts.blobs_checked)
        .bind(counts.bytes_checked)
        .bind(counts.damaged)
        .bind(counts.missing)
        .bind(counts.repaired)
        .bind(counts.dangling)
        .bind(counts.orphans)
        .bind(problems_json(problems))
        .bind(error)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn integrity_runs(&self, limit: i64) -> MetaResult<Vec<IntegrityRun>> {
        let rows = sqlx::query(&format!("{RUN_COLUMNS} ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(run_row).collect()
    }

    async fn integrity_run(&self, id: i64) -> MetaResult<Option<IntegrityRun>> {
        let row = sqlx::query(&format!("{RUN_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(run_row).transpose()
    }
}
