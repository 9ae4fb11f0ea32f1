//! Pull policies in SQL (`PullPolicyStore`). Written once for both databases.

use async_trait::async_trait;
use sqlx::Row;

use super::{DbRow, Store};
use crate::error::MetaResult;
use crate::pull_policy::{PullPolicyInput, PullPolicyRecord, PullPolicyStore};

const SELECT: &str = "SELECT p.id, n.name AS namespace, p.kind, p.mode, p.settings, \
     p.updated_by, p.updated_at FROM pull_policies p LEFT JOIN namespaces n ON n.id = p.namespace_id";

fn row(r: &DbRow) -> MetaResult<PullPolicyRecord> {
    Ok(PullPolicyRecord {
        id: r.try_get("id")?,
        namespace: r.try_get("namespace")?,
        kind: r.try_get("kind")?,
        mode: r.try_get("mode")?,
        settings: r.try_get("settings")?,
        updated_by: r.try_get("updated_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl PullPolicyStore for Store {
    async fn pull_policies(&self) -> MetaResult<Vec<PullPolicyRecord>> {
        let rows = sqlx::query(&format!("{SELECT} ORDER BY p.id"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn set_pull_policy(&self, p: &PullPolicyInput<'_>) -> MetaResult<PullPolicyRecord> {
        let mut tx = self.write.begin().await?;
        // Replace in two steps: the partial unique indexes (one for the
        // platform's NULL, one per namespace) take no single ON CONFLICT.
        let updated = sqlx::query(
            "UPDATE pull_policies SET mode = $1, settings = $2, updated_by = $3, updated_at = $4 \
             WHERE kind = $5 AND ((namespace_id IS NULL AND $6 IS NULL) OR namespace_id = $6) \
             RETURNING id",
        )
        .bind(p.mode)
        .bind(p.settings)
        .bind(p.updated_by)
        .bind(p.now)
        .bind(p.kind)
        .bind(p.namespace_id)
        .fetch_optional(&mut *tx)
        .await?;
        let id: i64 = match updated {
            Some(r) => r.try_get("id")?,
            None => sqlx::query(
                "INSERT INTO pull_policies (namespace_id, kind, mode, settings, updated_by, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(p.namespace_id)
            .bind(p.kind)
            .bind(p.mode)
            .bind(p.settings)
            .bind(p.updated_by)
            .bind(p.now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?,
        };
        let r = sqlx::query(&format!("{SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let record = row(&r)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_pull_policy(&self, namespace_id: Option<i64>, kind: &str) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM pull_policies WHERE kind = $1 \
             AND ((namespace_id IS NULL AND $2 IS NULL) OR namespace_id = $2)",
        )
        .bind(kind)
        .bind(namespace_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
