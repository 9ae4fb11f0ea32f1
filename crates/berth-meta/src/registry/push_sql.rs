//! A manifest push in SQL: the manifest, its references, its tags, the
//! tag limit's evictions, the audit entry, the webhook deliveries and the
//! triggered jobs, in one transaction. Written once for both databases:
//! `backend` compiles this file for each, beside `registry/sql.rs`.

use super::events::insert_events;
use super::jobs::insert_job;
use super::platform::insert_sync;
use super::{Db, Store};
use crate::error::MetaResult;
use crate::registry::{EvictedTag, Eviction, NewManifest, PutManifestOutcome, TagLimit};
use berth_oci::Digest;

/// Reference kinds in `manifest_refs`.
pub(crate) const REF_BLOB: i64 = 0;
pub(crate) const REF_MANIFEST: i64 = 1;

/// The id of `name`, creating the repository if needed.
pub(crate) async fn ensure_repo(
    tx: &mut sqlx::Transaction<'_, Db>,
    name: &str,
    now: i64,
) -> MetaResult<i64> {
    sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(id)
}

/// Store a manifest push (see `MetaStore::put_manifest`).
pub(crate) async fn put_manifest(store: &Store, m: &NewManifest) -> MetaResult<PutManifestOutcome> {
    let mut tx = store.write.begin().await?;
    Store::gc_shared(&mut tx).await?;
    let repo_id = ensure_repo(&mut tx, m.repo.as_str(), m.now).await?;
    let missing = if m.cached {
        Vec::new()
    } else {
        missing_digests(
            &mut tx,
            "SELECT repo_id FROM repository_blobs WHERE repo_id = $1 AND digest = $2",
            repo_id,
            &m.blobs,
        )
        .await?
    };
    if !missing.is_empty() {
        return Ok(PutManifestOutcome::MissingBlobs(missing));
    }
    let missing = if m.cached {
        Vec::new()
    } else {
        missing_digests(
            &mut tx,
            "SELECT repo_id FROM manifests WHERE repo_id = $1 AND digest = $2",
            repo_id,
            &m.children,
        )
        .await?
    };
    if !missing.is_empty() {
        return Ok(PutManifestOutcome::MissingManifests(missing));
    }
    for declared in &m.declared_sizes {
        let stored: Option<(i64,)> = if declared.manifest {
            sqlx::query_as("SELECT size FROM manifests WHERE repo_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(declared.digest.as_str())
                .fetch_optional(&mut *tx)
                .await?
        } else {
            sqlx::query_as("SELECT size FROM blobs WHERE digest = $1")
                .bind(declared.digest.as_str())
                .fetch_optional(&mut *tx)
                .await?
        };
        if let Some((stored,)) = stored.filter(|(s,)| *s != declared.size) {
            return Ok(PutManifestOutcome::SizeMismatch {
                declared: declared.clone(),
                stored,
            });
        }
    }
    for tag in &m.tags {
        let Some(pattern) = berth_oci::first_match(&m.immutable, tag.as_str()) else {
            continue;
        };
        let current: Option<(String,)> =
            sqlx::query_as("SELECT digest FROM tags WHERE repo_id = $1 AND name = $2")
                .bind(repo_id)
                .bind(tag.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if current.is_some_and(|(d,)| d != m.digest.as_str()) {
            return Ok(PutManifestOutcome::Immutable {
                tag: tag.to_string(),
                pattern: pattern.to_owned(),
            });
        }
    }
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, size, content, subject, \
         artifact_type, annotations, pushed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (repo_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at",
    )
    .bind(repo_id)
    .bind(m.digest.as_str())
    .bind(&m.media_type)
    .bind(m.content.len() as i64)
    .bind(&m.content)
    .bind(m.subject.as_ref().map(|s| s.as_str()))
    .bind(m.artifact_type.as_deref())
    .bind(m.annotations.as_deref())
    .bind(m.now)
    .execute(&mut *tx)
    .await?;
    let refs = m
        .blobs
        .iter()
        .map(|d| (d, REF_BLOB))
        .chain(m.children.iter().map(|d| (d, REF_MANIFEST)));
    for (d, kind) in refs {
        sqlx::query(
            "INSERT INTO manifest_refs (repo_id, digest, ref_digest, kind) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(repo_id)
        .bind(m.digest.as_str())
        .bind(d.as_str())
        .bind(kind)
        .execute(&mut *tx)
        .await?;
    }
    let evicted = match m.tag_limit {
        Some(limit) => match make_room(&mut tx, repo_id, m, limit).await? {
            Some(e) => e,
            None => return Ok(PutManifestOutcome::TagLimit(limit.max)),
        },
        None => Vec::new(),
    };
    for tag in &m.tags {
        sqlx::query(
            "INSERT INTO tags (repo_id, name, digest, pushed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo_id, name) DO UPDATE \
             SET digest = excluded.digest, pushed_at = excluded.pushed_at",
        )
        .bind(repo_id)
        .bind(tag.as_str())
        .bind(m.digest.as_str())
        .bind(m.now)
        .execute(&mut *tx)
        .await?;
    }
    // The audit entry of the push commits with it: who, what
    // digest and tags, from where.
    let tags: Vec<&str> = m.tags.iter().map(|t| t.as_str()).collect();
    let detail = if tags.is_empty() {
        m.digest.to_string()
    } else {
        format!("{} tags: {}", m.digest, tags.join(", "))
    };
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail, client_addr) \
         VALUES ($1, $2, 'image.push', $3, $4, $5)",
    )
    .bind(m.now)
    .bind(&m.actor)
    .bind(m.repo.as_str())
    .bind(&detail)
    .bind(m.client_addr.as_deref())
    .execute(&mut *tx)
    .await?;
    // The work the push triggers commits with it.
    for job in &m.jobs {
        // Already queued (an image pushed again): one job does.
        insert_job(&mut tx, job, m.now).await?;
    }
    for sync in &m.syncs {
        insert_sync(&mut tx, sync, m.now).await?;
    }
    insert_events(&mut tx, &m.events, m.now).await?;
    // The image's last push, for the image lists. Last, so the
    // repository row is locked after the manifest and its tags,
    // as the pull-count flush takes them (no deadlock on PostgreSQL).
    sqlx::query("UPDATE repositories SET pushed_at = $2 WHERE id = $1")
        .bind(repo_id)
        .bind(m.now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(PutManifestOutcome::Stored(evicted))
}

/// Evict the tags the limit's rule picks for the new ones to fit,
/// deleting images left without tags, and audit each with the rule's
/// text. `None` when the rule finds too few.
pub(crate) async fn make_room(
    tx: &mut sqlx::Transaction<'_, Db>,
    repo_id: i64,
    m: &NewManifest,
    limit: TagLimit,
) -> MetaResult<Option<Vec<(String, String, bool)>>> {
    let tags: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT name, digest, pushed_at, last_pulled_at FROM tags WHERE repo_id = $1",
    )
    .bind(repo_id)
    .fetch_all(&mut **tx)
    .await?;
    let fresh = m
        .tags
        .iter()
        .filter(|t| !tags.iter().any(|e| e.0 == t.as_str()))
        .count() as i64;
    let needed = tags.len() as i64 + fresh - limit.max;
    if needed <= 0 {
        return Ok(Some(Vec::new()));
    }
    let Some(victims) = (limit.evict)(&Eviction {
        tags: &tags,
        needed: needed as usize,
        pushing: &m.tags,
        immutable: &m.immutable,
        idle_before: limit.idle_before,
    }) else {
        return Ok(None);
    };
    let mut evicted = Vec::new();
    for name in victims {
        let Some((_, digest, _, _)) = tags.iter().find(|t| t.0 == name) else {
            continue;
        };
        sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2")
            .bind(repo_id)
            .bind(&name)
            .execute(&mut **tx)
            .await?;
        // The image goes too when no tag and no other manifest needs it.
        let image_deleted = digest != m.digest.as_str()
            && sqlx::query(
                "DELETE FROM manifests WHERE repo_id = $1 AND digest = $2 \
                 AND NOT EXISTS (SELECT 1 FROM tags WHERE repo_id = $1 AND digest = $2) \
                 AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = $1 AND ref_digest = $2)",
            )
            .bind(repo_id)
            .bind(digest)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                > 0;
        let detail = (limit.audit_detail)(&EvictedTag {
            max: limit.max,
            tag: &name,
            digest,
            image_deleted,
        });
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(m.now)
        .bind(&m.actor)
        .bind("tag.evict")
        .bind(format!("{}:{name}", m.repo))
        .bind(detail)
        .execute(&mut **tx)
        .await?;
        evicted.push((name, digest.clone(), image_deleted));
    }
    Ok(Some(evicted))
}

pub(crate) async fn missing_digests(
    tx: &mut sqlx::Transaction<'_, Db>,
    sql: &str,
    repo_id: i64,
    digests: &[Digest],
) -> MetaResult<Vec<Digest>> {
    let mut missing = Vec::new();
    for d in digests {
        let found: Option<(i64,)> = sqlx::query_as(sql)
            .bind(repo_id)
            .bind(d.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        if found.is_none() && !missing.contains(d) {
            missing.push(d.clone());
        }
    }
    Ok(missing)
}
