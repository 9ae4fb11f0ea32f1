//! The registry's tables in SQL (`MetaStore`): repositories, blob links,
//! manifests and their references, tags, upload sessions, pull counters.
//! Written once for both databases: `backend` compiles this file for each.

use std::str::FromStr;

use async_trait::async_trait;
use berth_oci::{Digest, RepoName, Tag};

use super::registry_push::{ensure_repo, REF_MANIFEST};
use super::Store;
use crate::error::{MetaError, MetaResult};
use crate::gc::UploadPin;
use crate::registry::{
    LinkOutcome, ManifestRecord, MetaStore, NewManifest, PolicyRecord, PullIncrement, PullStats,
    PutManifestOutcome, Referrer, TagFacts, UploadRecord,
};

pub(crate) fn digest(s: &str) -> MetaResult<Digest> {
    Digest::from_str(s).map_err(|e| MetaError::Corrupt(e.to_string()))
}

pub(crate) fn manifest_record(
    row: (String, String, Vec<u8>, Option<String>),
) -> MetaResult<ManifestRecord> {
    let (d, media_type, content, subject) = row;
    Ok(ManifestRecord {
        digest: digest(&d)?,
        media_type,
        content,
        subject: subject.as_deref().map(digest).transpose()?,
    })
}

pub(crate) fn pull_stats(row: (i64, i64, Option<i64>)) -> PullStats {
    PullStats {
        pushed_at: row.0,
        pull_count: row.1,
        last_pulled_at: row.2,
    }
}

/// The repository names of a namespace lie strictly between these.
pub(crate) fn namespace_range(namespace: &str) -> (String, String) {
    (format!("{namespace}/"), format!("{namespace}0"))
}

/// Bytes of the distinct blobs linked in the repositories between $1 and $2.
pub(crate) const NAMESPACE_USAGE: &str =
    "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b \
     WHERE b.digest IN (SELECT rb.digest FROM repository_blobs rb \
     JOIN repositories r ON r.id = rb.repo_id WHERE r.name > $1 AND r.name < $2)";

/// Bytes a project group's namespaces hold ($1: the group's id): each
/// namespace's distinct blobs, summed over its namespaces.
pub(crate) const GROUP_USAGE: &str =
    "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b \
     JOIN (SELECT DISTINCT r.namespace, rb.digest FROM repository_blobs rb \
           JOIN repositories r ON r.id = rb.repo_id \
           WHERE r.namespace IN (SELECT n.name FROM namespaces n WHERE n.group_id = $1)) x \
     ON x.digest = b.digest";

pub(crate) fn string_list(json: &str) -> MetaResult<Vec<String>> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("pattern list: {e}")))
}

pub(crate) const MANIFEST_COLUMNS: &str = "m.digest, m.media_type, m.content, m.subject";

#[async_trait]
impl MetaStore for Store {
    async fn ping(&self) -> MetaResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn schema_version(&self) -> MetaResult<i64> {
        let (v,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.read)
                .await?;
        Ok(v.unwrap_or(0))
    }

    fn change_feed(&self) -> Box<dyn crate::changes::ChangeFeed> {
        self.open_change_feed()
    }

    async fn repo_blob_size(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT b.size FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repo_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn blob_size(&self, digest: &Digest) -> MetaResult<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT size FROM blobs WHERE digest = $1 AND state = 0")
                .bind(digest.as_str())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: i64,
        now: i64,
        quota: Option<i64>,
        upload: Option<&str>,
    ) -> MetaResult<LinkOutcome> {
        let mut tx = self.write.begin().await?;
        Self::gc_shared(&mut tx).await?;
        let repo_id = ensure_repo(&mut tx, repo.as_str(), now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest.as_str())
        .bind(size)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (state,): (i64,) = sqlx::query_as("SELECT state FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if state != 0 {
            // Being collected: it cannot be linked until it is gone.
            return Ok(LinkOutcome::Collecting);
        }
        if let Some(id) = upload {
            sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        // The project group's quota, if it has one.
        let group: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT g.id, g.name, g.quota_bytes FROM namespaces n \
             JOIN project_groups g ON g.id = n.group_id WHERE n.name = $1",
        )
        .bind(repo.namespace())
        .fetch_optional(&mut *tx)
        .await?;
        let group_quota = group.and_then(|(id, name, q)| q.map(|q| (id, name, q)));
        if quota.is_some() || group_quota.is_some() {
            if let Some((id, _, _)) = &group_quota {
                Self::group_quota_lock(&mut tx, *id).await?;
            }
            Self::quota_lock(&mut tx, repo.namespace()).await?;
            let (from, to) = namespace_range(repo.namespace());
            // A blob the namespace holds already costs nothing.
            let present: Option<(i64,)> = sqlx::query_as(
                "SELECT rb.repo_id FROM repository_blobs rb JOIN repositories r ON r.id = rb.repo_id \
                 WHERE rb.digest = $1 AND r.name > $2 AND r.name < $3 LIMIT 1",
            )
            .bind(digest.as_str())
            .bind(&from)
            .bind(&to)
            .fetch_optional(&mut *tx)
            .await?;
            if present.is_none() {
                if let Some(quota) = quota {
                    let (used,): (i64,) = sqlx::query_as(NAMESPACE_USAGE)
                        .bind(&from)
                        .bind(&to)
                        .fetch_one(&mut *tx)
                        .await?;
                    if used + size > quota {
                        // The blob row stays (unlinked): the collector reclaims it.
                        tx.commit().await?;
                        return Ok(LinkOutcome::OverQuota { used });
                    }
                }
                if let Some((id, group, quota)) = group_quota {
                    let (used,): (i64,) = sqlx::query_as(GROUP_USAGE)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    if used + size > quota {
                        tx.commit().await?;
                        return Ok(LinkOutcome::OverGroupQuota { group, used, quota });
                    }
                }
            }
        }
        // A fresh link (or a repeated upload or mount) restarts the
        // grace period in which an unreferenced link is kept.
        sqlx::query(
            "INSERT INTO repository_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LinkOutcome::Linked)
    }

    async fn blob_repositories(&self, digest: &Digest, limit: i64) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repo_id \
             WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.as_str())
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2 \
             AND repo_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repo, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&upload.id)
        .bind(&upload.repo)
        .bind(upload.created_at)
        .bind(upload.updated_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> MetaResult<Option<UploadRecord>> {
        let row: Option<(String, String, i64, i64)> =
            sqlx::query_as("SELECT id, repo, created_at, updated_at FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(id, repo, created_at, updated_at)| UploadRecord {
            id,
            repo,
            created_at,
            updated_at,
        }))
    }

    async fn touch_upload(&self, id: &str, now: i64) -> MetaResult<()> {
        sqlx::query("UPDATE uploads SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn delete_upload(&self, id: &str) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn try_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> MetaResult<bool> {
        let done = sqlx::query(
            "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET owner = $2, until = $4 \
             WHERE leases.until < $3 OR leases.owner = $2",
        )
        .bind(name)
        .bind(owner)
        .bind(now)
        .bind(until)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> MetaResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn upload_state(&self, id: &str) -> MetaResult<Option<(i64, Option<String>)>> {
        Ok(
            sqlx::query_as("SELECT state_version, state FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn save_upload_state(&self, id: &str, version: i64, state: &str) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET state = $3, state_version = state_version + 1 \
             WHERE id = $1 AND state_version = $2",
        )
        .bind(id)
        .bind(version)
        .bind(state)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn namespace_usage(&self, namespace: &str) -> MetaResult<i64> {
        let (from, to) = namespace_range(namespace);
        let (used,): (i64,) = sqlx::query_as(NAMESPACE_USAGE)
            .bind(&from)
            .bind(&to)
            .fetch_one(&self.read)
            .await?;
        Ok(used)
    }

    async fn namespace_policy(&self, namespace: &str) -> MetaResult<PolicyRecord> {
        let row: Option<(String, Option<i64>, String, bool)> = sqlx::query_as(
            "SELECT p.immutable_tags, p.quota_bytes, p.retention, p.attach_sbom FROM namespace_policies p \
             JOIN namespaces n ON n.id = p.namespace_id WHERE n.name = $1",
        )
        .bind(namespace)
        .fetch_optional(&self.read)
        .await?;
        match row {
            None => Ok(PolicyRecord {
                retention: "[]".into(),
                ..PolicyRecord::default()
            }),
            Some((immutable, quota_bytes, retention, attach_sbom)) => Ok(PolicyRecord {
                immutable_tags: string_list(&immutable)?,
                quota_bytes,
                retention,
                attach_sbom,
            }),
        }
    }

    async fn set_namespace_policy(
        &self,
        namespace: &str,
        policy: &PolicyRecord,
        now: i64,
    ) -> MetaResult<bool> {
        let immutable = serde_json::to_string(&policy.immutable_tags)
            .map_err(|e| MetaError::Corrupt(e.to_string()))?;
        let done = sqlx::query(
            "INSERT INTO namespace_policies (namespace_id, immutable_tags, quota_bytes, retention, updated_at, attach_sbom) \
             SELECT id, $2, $3, $4, $5, $6 FROM namespaces WHERE name = $1 \
             ON CONFLICT (namespace_id) DO UPDATE SET immutable_tags = excluded.immutable_tags, \
             quota_bytes = excluded.quota_bytes, retention = excluded.retention, updated_at = excluded.updated_at, \
             attach_sbom = excluded.attach_sbom",
        )
        .bind(namespace)
        .bind(immutable)
        .bind(policy.quota_bytes)
        .bind(&policy.retention)
        .bind(now)
        .bind(policy.attach_sbom)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn retention_namespaces(&self) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT n.name FROM namespace_policies p JOIN namespaces n ON n.id = p.namespace_id \
             WHERE p.retention <> '[]' ORDER BY n.name",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn namespace_tags(&self, namespace: &str) -> MetaResult<Vec<TagFacts>> {
        let (from, to) = namespace_range(namespace);
        let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT r.name, t.name, t.digest, t.pushed_at, t.last_pulled_at FROM tags t \
             JOIN repositories r ON r.id = t.repo_id WHERE r.name > $1 AND r.name < $2 \
             ORDER BY r.name, t.name",
        )
        .bind(&from)
        .bind(&to)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(repo, tag, digest, pushed_at, last_pulled_at)| TagFacts {
                repo,
                tag,
                digest,
                pushed_at,
                last_pulled_at,
            })
            .collect())
    }

    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id \
             WHERE r.name = $1 AND t.digest = $2 ORDER BY t.name",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn manifest_parents(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<Digest>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT m.digest FROM manifest_refs m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = $1 AND m.ref_digest = $2 AND m.kind = 1 ORDER BY m.digest LIMIT 16",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| Digest::parse(&r.0).map_err(|e| MetaError::Corrupt(e.to_string())))
            .collect()
    }

    async fn pin_upload(&self, id: &str, digest: &Digest) -> MetaResult<UploadPin> {
        let mut tx = self.write.begin().await?;
        Self::gc_shared(&mut tx).await?;
        let pinned = sqlx::query("UPDATE uploads SET digest = $2 WHERE id = $1")
            .bind(id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        if pinned.rows_affected() == 0 {
            return Ok(UploadPin::NoSession);
        }
        let state: Option<(i64,)> = sqlx::query_as("SELECT state FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if state.is_some_and(|(s,)| s != 0) {
            return Ok(UploadPin::Collecting);
        }
        tx.commit().await?;
        Ok(UploadPin::Pinned)
    }

    async fn upload_count(&self) -> MetaResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    async fn idle_uploads(&self, before: i64) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM uploads WHERE updated_at < $1")
            .bind(before)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn put_manifest(&self, m: &NewManifest) -> MetaResult<PutManifestOutcome> {
        super::registry_push::put_manifest(self, m).await
    }

    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestRecord>> {
        let sql = format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = $1 AND m.digest = $2"
        );
        let row: Option<(String, String, Vec<u8>, Option<String>)> = sqlx::query_as(&sql)
            .bind(repo.as_str())
            .bind(digest.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.map(manifest_record).transpose()
    }

    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> MetaResult<Option<ManifestRecord>> {
        let sql = format!(
            "SELECT {MANIFEST_COLUMNS} FROM tags t JOIN repositories r ON r.id = t.repo_id \
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest \
             WHERE r.name = $1 AND t.name = $2"
        );
        let row: Option<(String, String, Vec<u8>, Option<String>)> = sqlx::query_as(&sql)
            .bind(repo.as_str())
            .bind(tag.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.map(manifest_record).transpose()
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        // Tags and references go with it (ON DELETE CASCADE).
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $2 \
             AND repo_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $2 \
             AND repo_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
            .bind(repo.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: i64,
    ) -> MetaResult<Option<Vec<String>>> {
        if !self.repository_exists(repo).await? {
            return Ok(None);
        }
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id \
             WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
        )
        .bind(repo.as_str())
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(Some(rows.into_iter().map(|r| r.0).collect()))
    }

    async fn catalog(&self, last: Option<&str>, limit: i64) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn catalog_visible(
        &self,
        scope: &crate::CatalogScope<'_>,
        last: Option<&str>,
        limit: i64,
    ) -> MetaResult<Vec<String>> {
        if scope.all {
            return self.catalog(last, limit).await;
        }
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT r.name FROM repositories r WHERE r.name > $1 AND ( \
               r.namespace IN (SELECT n.name FROM namespaces n WHERE n.public <> 0 OR n.name = $3 \
                 OR n.group_id IN (SELECT gm.group_id FROM group_members gm WHERE gm.account_id = $4) \
                 OR n.id IN (SELECT nm.namespace_id FROM namespace_members nm WHERE nm.account_id = $4) \
                 OR n.id IN (SELECT g.namespace_id FROM registry_user_grants g \
                             WHERE g.registry_user_id = $5 AND (g.can_pull <> 0 OR g.can_push <> 0))) \
               OR r.name IN (SELECT rp.repository FROM repository_permissions rp WHERE rp.account_id = $4)) \
             ORDER BY r.name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .bind(scope.platform)
        .bind(scope.account)
        .bind(scope.registry_user)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> MetaResult<Vec<Referrer>> {
        let rows: Vec<(String, String, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations \
             FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = $1 AND m.subject = $2 \
             AND ($3 IS NULL OR m.artifact_type = $3) ORDER BY m.digest",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .bind(artifact_type)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(d, media_type, size, artifact_type, annotations)| {
                Ok(Referrer {
                    digest: self::digest(&d)?,
                    media_type,
                    size,
                    artifact_type,
                    annotations,
                })
            })
            .collect()
    }

    async fn record_pulls(&self, pulls: &[PullIncrement]) -> MetaResult<()> {
        let mut tx = self.write.begin().await?;
        const BUMP: &str = "pull_count = pull_count + $3, \
            last_pulled_at = CASE WHEN last_pulled_at IS NULL OR last_pulled_at < $4 \
                             THEN $4 ELSE last_pulled_at END";
        // The manifest always. The tag it was pulled by; or, pulled
        // by digest, the tags pointing at it. The image when the
        // pull was by tag or of a manifest no index in the
        // repository contains (an index's children do not count
        // twice). Every manifest first, then every tag, then every
        // repository: the order a push locks rows in (its manifest,
        // its tags, then its repository's last push), so the two
        // cannot deadlock on PostgreSQL.
        let statements = [
            format!("UPDATE manifests SET {BUMP} WHERE digest = $2 \
                     AND repo_id = (SELECT id FROM repositories WHERE name = $1)"),
            format!("UPDATE tags SET {BUMP} WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) \
                     AND (name = $5 OR ($5 IS NULL AND digest = $2))"),
            format!("UPDATE repositories SET {BUMP} WHERE name = $1 AND ($5 IS NOT NULL OR NOT EXISTS \
                     (SELECT 1 FROM manifest_refs mr WHERE mr.repo_id = repositories.id \
                      AND mr.ref_digest = $2 AND mr.kind = {REF_MANIFEST}))"),
        ];
        for (i, sql) in statements.iter().enumerate() {
            for p in pulls {
                let q = sqlx::query(sql)
                    .bind(&p.repo)
                    .bind(&p.digest)
                    .bind(p.count)
                    .bind(p.last);
                // Only the tag and image statements use the tag.
                let q = if i == 0 { q } else { q.bind(p.tag.as_deref()) };
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tag_stats(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<PullStats>> {
        let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT t.pushed_at, t.pull_count, t.last_pulled_at FROM tags t \
             JOIN repositories r ON r.id = t.repo_id WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(pull_stats))
    }

    async fn manifest_stats(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<PullStats>> {
        let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT m.pushed_at, m.pull_count, m.last_pulled_at FROM manifests m \
             JOIN repositories r ON r.id = m.repo_id WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(pull_stats))
    }
}
