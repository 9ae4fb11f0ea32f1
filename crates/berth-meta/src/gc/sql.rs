//! What the garbage collector reads and deletes, in SQL (`GcStore`).
//! Written once for both databases.
//!
//! Every step that decides what is garbage runs in a transaction begun with
//! `begin_exclusive` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the collection
//! advisory lock held exclusively), so it sees every reference-creating
//! transaction entirely or not at all. Searches (untagged manifests,
//! unreferenced links, blob claims, lost links) run before it without the
//! lock, and the locked step re-checks only what they found: pushes wait for
//! the decision, never for the search. Only the dry run's preview searches
//! under the lock, as it rolls everything back.

use async_trait::async_trait;
use sqlx::Row;

use super::{Db, DbRow, Store};
use crate::backend::placeholders;
use crate::error::MetaResult;
use crate::gc::{
    BlobClaim, ClaimBatch, GcCounts, GcPreview, GcRun, GcStore, LinkBatch, LinkCursor, NewGcRun,
    UntaggedBatch,
};

/// Untagged manifests nothing needs: no tag, not a child of a manifest in
/// the repository, no referrer pointing at it, and not itself a referrer
/// whose subject is present; after a cursor (`$3`, `$4`), a range of the
/// primary key, so each batch reads on from the last and never the
/// manifests before it again.
const UNTAGGED: &str = "SELECT m.repo_id, r.name, m.digest FROM manifests m \
     JOIN repositories r ON r.id = m.repo_id \
     WHERE (m.repo_id, m.digest) > ($3, $4) AND m.pushed_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.repo_id = m.repo_id \
                     AND mr.ref_digest = m.digest AND mr.kind = 1) \
     AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id AND s.subject = m.digest) \
     AND (m.subject IS NULL OR NOT EXISTS \
          (SELECT 1 FROM manifests p WHERE p.repo_id = m.repo_id AND p.digest = m.subject)) \
     ORDER BY m.repo_id, m.digest LIMIT $2";

/// [`UNTAGGED`]'s conditions for one manifest (`$1`, `$2`), re-checked
/// under the collection lock before it is deleted.
const UNTAGGED_DELETE: &str = "DELETE FROM manifests \
     WHERE repo_id = $1 AND digest = $2 AND pushed_at < $3 \
     AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = $1 AND t.digest = $2) \
     AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.repo_id = $1 \
                     AND mr.ref_digest = $2 AND mr.kind = 1) \
     AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = $1 AND s.subject = $2) \
     AND (subject IS NULL OR NOT EXISTS \
          (SELECT 1 FROM manifests p WHERE p.repo_id = $1 AND p.digest = manifests.subject))";

/// Links no manifest of their repository references, in key order. The
/// cursor is a row value, which both databases read as a range of the
/// primary key: spelled `repo_id > $2 OR (repo_id = $2 AND digest > $3)`,
/// PostgreSQL filtered the key from its start, so each batch read every
/// link before the cursor again (72 ms at 50,000 links; 8 ms now).
const UNREFERENCED_LINKS: &str = "SELECT rb.repo_id, rb.digest FROM repository_blobs rb \
     WHERE (rb.repo_id, rb.digest) > ($2, $3) AND rb.linked_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.repo_id = rb.repo_id \
                     AND mr.ref_digest = rb.digest) \
     ORDER BY rb.repo_id, rb.digest LIMIT $4";

/// Blob references of manifests whose repository does not link the
/// (stored) blob.
const MISSING_LINKS: &str =
    "SELECT DISTINCT mr.repo_id, r.name, mr.ref_digest FROM manifest_refs mr \
     JOIN repositories r ON r.id = mr.repo_id \
     JOIN blobs b ON b.digest = mr.ref_digest AND b.state = 0 \
     WHERE mr.kind = 0 AND NOT EXISTS (SELECT 1 FROM repository_blobs rb \
                     WHERE rb.repo_id = mr.repo_id AND rb.digest = mr.ref_digest) \
     ORDER BY mr.repo_id, mr.ref_digest LIMIT $1";

/// Live blobs nothing links, references or is about to commit.
const UNREFERENCED_BLOBS: &str = "SELECT b.digest, b.size FROM blobs b \
     WHERE b.state = 0 AND b.digest > $1 \
     AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.digest = b.digest) \
     ORDER BY b.digest LIMIT $2";

/// The window of blob digests a claim's search reads next: how many there
/// are after `$1` (at most `$2`), and the last. Bounding each search to a
/// window read in key order keeps its cost the same at any table size.
const CLAIM_WINDOW: &str = "SELECT COUNT(*), MAX(w.digest) FROM \
     (SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2) w";

/// [`CLAIM_WINDOW`] up to `$3` (a shard's end), inclusive. A statement of
/// its own: with `($3 = '' OR digest <= $3)` instead, PostgreSQL's generic
/// plan read the window 50-180 ms a batch (bench/gc.sh, 200,000 blobs).
const CLAIM_WINDOW_UNTIL: &str = "SELECT COUNT(*), MAX(w.digest) FROM \
     (SELECT digest FROM blobs WHERE digest > $1 AND digest <= $3 \
      ORDER BY digest LIMIT $2) w";

/// [`UNREFERENCED_BLOBS`] within a window of digests (`$1`, `$2`].
const UNREFERENCED_IN_WINDOW: &str = "SELECT b.digest FROM blobs b \
     WHERE b.state = 0 AND b.digest > $1 AND b.digest <= $2 \
     AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.digest = b.digest) \
     ORDER BY b.digest LIMIT $3";

/// Windows read per claim batch, in batches.
const CLAIM_WINDOW_BATCHES: i64 = 8;

/// Blobs claimed, or links deleted, per transaction that holds the
/// collection lock.
const ROWS_PER_LOCK: usize = 100;

/// A run's blob counts are its own (claims it adopted, orphans) plus its
/// shards', which each shard adds in the transaction that forgets the
/// blobs: exact even for a run whose node died.
const RUN_COLUMNS: &str =
    "SELECT id, cause, actor, dry_run, full_sweep, status, stage, started_at, \
     updated_at, finished_at, uploads_expired, manifests_deleted, links_deleted, links_restored, \
     blobs_deleted + (SELECT CAST(COALESCE(SUM(s.blobs_deleted), 0) AS BIGINT) FROM gc_shards s \
         WHERE s.run = gc_runs.id) AS blobs_deleted, \
     bytes_reclaimed + (SELECT CAST(COALESCE(SUM(s.bytes_reclaimed), 0) AS BIGINT) FROM gc_shards s \
         WHERE s.run = gc_runs.id) AS bytes_reclaimed, \
     orphans_deleted, blobs_expected, bytes_expected, blobs_started_at, \
     blobs_ended_at, error FROM gc_runs";

/// What [`UNREFERENCED_BLOBS`] would claim, counted, plus the claims of
/// runs that no longer run (the next run adopts them).
const ESTIMATE_BLOBS: &str =
    "SELECT COUNT(*), CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b \
     WHERE (b.state = 0 \
       AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
       AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = b.digest) \
       AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.digest = b.digest)) \
     OR (b.state <> 0 \
       AND NOT EXISTS (SELECT 1 FROM gc_runs g WHERE g.id = b.state AND g.status = 'running'))";

pub(crate) fn gc_run_row(r: &DbRow) -> MetaResult<GcRun> {
    Ok(GcRun {
        id: r.try_get("id")?,
        cause: r.try_get("cause")?,
        actor: r.try_get("actor")?,
        dry_run: r.try_get::<i64, _>("dry_run")? != 0,
        full_sweep: r.try_get::<i64, _>("full_sweep")? != 0,
        status: r.try_get("status")?,
        stage: r.try_get("stage")?,
        started_at: r.try_get("started_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: GcCounts {
            uploads_expired: r.try_get("uploads_expired")?,
            manifests_deleted: r.try_get("manifests_deleted")?,
            links_deleted: r.try_get("links_deleted")?,
            links_restored: r.try_get("links_restored")?,
            blobs_deleted: r.try_get("blobs_deleted")?,
            bytes_reclaimed: r.try_get("bytes_reclaimed")?,
            orphans_deleted: r.try_get("orphans_deleted")?,
            blobs_expected: r.try_get("blobs_expected")?,
            bytes_expected: r.try_get("bytes_expected")?,
        },
        blobs_started_at: r.try_get("blobs_started_at")?,
        blobs_ended_at: r.try_get("blobs_ended_at")?,
        error: r.try_get("error")?,
    })
}

/// [`UNTAGGED`] searched and deleted in one transaction that holds the
/// collection lock throughout: the preview's way, which rolls back.
async fn untagged_batch(
    tx: &mut sqlx::Transaction<'static, Db>,
    before: i64,
    limit: i64,
) -> MetaResult<Vec<(String, String)>> {
    let victims: Vec<(i64, String, String)> = sqlx::query_as(UNTAGGED)
        .bind(before)
        .bind(limit)
        .bind(i64::MIN)
        .bind("")
        .fetch_all(&mut **tx)
        .await?;
    let mut deleted = Vec::with_capacity(victims.len());
    for (repo_id, repo, digest) in victims {
        // Tags (none) and references go with it.
        sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(&digest)
            .execute(&mut **tx)
            .await?;
        deleted.push((repo, digest));
    }
    Ok(deleted)
}

/// [`UNREFERENCED_LINKS`] searched and deleted under the lock, for the
/// preview (as [`untagged_batch`]).
async fn links_batch(
    tx: &mut sqlx::Transaction<'static, Db>,
    before: i64,
    after: Option<&LinkCursor>,
    limit: i64,
) -> MetaResult<LinkBatch> {
    let (repo_id, digest) = after.map(|c| c.parts()).unwrap_or((i64::MIN, ""));
    let victims: Vec<(i64, String)> = sqlx::query_as(UNREFERENCED_LINKS)
        .bind(before)
        .bind(repo_id)
        .bind(digest)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    // One statement per repository (and 100 links), not per link: the
    // collection lock is held exclusively meanwhile.
    for same_repo in victims.chunk_by(|a, b| a.0 == b.0) {
        for chunk in same_repo.chunks(100) {
            let sql = format!(
                "DELETE FROM repository_blobs WHERE repo_id = $1 AND digest IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(chunk[0].0);
            for (_, digest) in chunk {
                q = q.bind(digest);
            }
            q.execute(&mut **tx).await?;
        }
    }
    let deleted = victims.len() as i64;
    let next = if deleted < limit {
        None
    } else {
        victims
            .into_iter()
            .last()
            .map(|(r, d)| LinkCursor::new(r, d))
    };
    Ok(LinkBatch { deleted, next })
}

/// Whether a backup holds its lease: it copies every blob its database
/// copy calls live, so none may be claimed meanwhile.
async fn backup_running(tx: &mut sqlx::Transaction<'static, Db>) -> MetaResult<bool> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (held,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM leases WHERE name LIKE $1 AND until > $2")
            .bind(format!("{}%", crate::backup::BACKUP_LEASE))
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
    Ok(held > 0)
}

/// Claim up to `limit` blobs in one transaction that holds the collection
/// lock throughout (the preview, which rolls back).
async fn claim_batch(
    tx: &mut sqlx::Transaction<'static, Db>,
    run: i64,
    after: Option<&str>,
    limit: i64,
) -> MetaResult<Vec<BlobClaim>> {
    let victims: Vec<(String, i64)> = sqlx::query_as(UNREFERENCED_BLOBS)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    // A few statements rather than one per blob: the collection lock is
    // held exclusively meanwhile, and pushes wait for it.
    for chunk in victims.chunks(100) {
        let sql = format!(
            "UPDATE blobs SET state = $1 WHERE state = 0 AND digest IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(run);
        for (digest, _) in chunk {
            q = q.bind(digest);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(victims
        .into_iter()
        .map(|(digest, size)| BlobClaim { digest, size })
        .collect())
}

#[async_trait]
impl GcStore for Store {
    async fn gc_delete_untagged(
        &self,
        before: i64,
        after: Option<&LinkCursor>,
        limit: i64,
    ) -> MetaResult<UntaggedBatch> {
        // Searched on the read pool (pushes never wait for it); deleted
        // under the collection lock with every condition re-checked.
        let (repo_id, digest) = after.map(|c| c.parts()).unwrap_or((i64::MIN, ""));
        let found: Vec<(i64, String, String)> = sqlx::query_as(UNTAGGED)
            .bind(before)
            .bind(limit)
            .bind(repo_id)
            .bind(digest)
            .fetch_all(&self.read)
            .await?;
        let next = if (found.len() as i64) < limit {
            None
        } else {
            found.last().map(|(r, _, d)| LinkCursor::new(*r, d.clone()))
        };
        if found.is_empty() {
            return Ok(UntaggedBatch {
                deleted: Vec::new(),
                next,
            });
        }
        let mut tx = self.begin_exclusive().await?;
        let mut deleted = Vec::with_capacity(found.len());
        for (repo_id, repo, digest) in found {
            let done = sqlx::query(UNTAGGED_DELETE)
                .bind(repo_id)
                .bind(&digest)
                .bind(before)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() > 0 {
                deleted.push((repo, digest));
            }
        }
        tx.commit().await?;
        Ok(UntaggedBatch { deleted, next })
    }

    async fn gc_delete_links(
        &self,
        before: i64,
        after: Option<&LinkCursor>,
        limit: i64,
    ) -> MetaResult<LinkBatch> {
        // Searched on the read pool: at a million links the anti-join reads
        // far more rows than it finds, and pushes wait for the collection
        // lock. The delete takes the lock and re-checks the conditions.
        let (repo_id, digest) = after.map(|c| c.parts()).unwrap_or((i64::MIN, ""));
        let found: Vec<(i64, String)> = sqlx::query_as(UNREFERENCED_LINKS)
            .bind(before)
            .bind(repo_id)
            .bind(digest)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        let next = if (found.len() as i64) < limit {
            None
        } else {
            found.last().map(|(r, d)| LinkCursor::new(*r, d.clone()))
        };
        if found.is_empty() {
            return Ok(LinkBatch { deleted: 0, next });
        }
        // A transaction per repository and hundred links: pushes wait for
        // the one holding the lock (with the batch in one transaction, 138
        // pushes waited 5-22 ms in the four seconds of the step).
        let mut deleted = 0;
        for same_repo in found.chunk_by(|a, b| a.0 == b.0) {
            for chunk in same_repo.chunks(ROWS_PER_LOCK) {
                let sql = format!(
                    "DELETE FROM repository_blobs WHERE repo_id = $1 AND linked_at < $2 \
                     AND digest IN ({}) AND NOT EXISTS (SELECT 1 FROM manifest_refs mr \
                         WHERE mr.repo_id = repository_blobs.repo_id \
                         AND mr.ref_digest = repository_blobs.digest)",
                    placeholders(3, chunk.len())
                );
                let mut tx = self.begin_exclusive().await?;
                let mut q = sqlx::query(&sql).bind(chunk[0].0).bind(before);
                for (_, digest) in chunk {
                    q = q.bind(digest);
                }
                deleted += q.execute(&mut *tx).await?.rows_affected() as i64;
                tx.commit().await?;
            }
        }
        Ok(LinkBatch { deleted, next })
    }

    async fn gc_claim_blobs(
        &self,
        run: i64,
        after: Option<&str>,
        until: Option<&str>,
        limit: i64,
    ) -> MetaResult<ClaimBatch> {
        // The search reads without the collection lock (pushes never wait
        // for it); the claim takes the lock and re-checks every condition
        // for the blobs found, so it decides on what it sees under the lock.
        let after = after.unwrap_or("");
        let window = limit.saturating_mul(CLAIM_WINDOW_BATCHES).max(1);
        let window_query = match until {
            Some(until) => sqlx::query_as(CLAIM_WINDOW_UNTIL)
                .bind(after)
                .bind(window)
                .bind(until),
            None => sqlx::query_as(CLAIM_WINDOW).bind(after).bind(window),
        };
        let (scanned, end): (i64, Option<String>) = window_query.fetch_one(&self.read).await?;
        let Some(end) = end else {
            return Ok(ClaimBatch::default());
        };
        let found: Vec<(String,)> = sqlx::query_as(UNREFERENCED_IN_WINDOW)
            .bind(after)
            .bind(&end)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        let next = match found.last() {
            Some((last,)) if found.len() as i64 >= limit => Some(last.clone()),
            _ if scanned >= window => Some(end),
            _ => None,
        };
        if found.is_empty() {
            return Ok(ClaimBatch {
                claims: Vec::new(),
                next,
            });
        }
        // A transaction per hundred blobs: pushes wait for the one that
        // holds the lock, so it holds it for one statement only (with the
        // whole batch in one, pushes waited 15-30 ms behind it).
        let mut claims: Vec<BlobClaim> = Vec::with_capacity(found.len());
        for chunk in found.chunks(ROWS_PER_LOCK) {
            let mut tx = self.begin_exclusive().await?;
            // The next run collects what is left.
            if backup_running(&mut tx).await? {
                tracing::info!(run, "a backup is running: no blob is claimed until it ends");
                claims.sort_by(|a, b| a.digest.cmp(&b.digest));
                return Ok(ClaimBatch { claims, next: None });
            }
            let sql = format!(
                "UPDATE blobs SET state = $1 WHERE state = 0 AND digest IN ({}) \
                 AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest) \
                 AND NOT EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = blobs.digest) \
                 AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.digest = blobs.digest) \
                 RETURNING digest, size",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(run);
            for (digest,) in chunk {
                q = q.bind(digest);
            }
            claims.extend(
                q.fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(digest, size)| BlobClaim { digest, size }),
            );
            tx.commit().await?;
        }
        claims.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(ClaimBatch { claims, next })
    }

    async fn gc_restore_links(&self, now: i64, limit: i64) -> MetaResult<Vec<(String, String)>> {
        // The search is an anti-join over every manifest's references: run
        // it on the read pool, so pushes never wait for it, and take the
        // collection lock only to restore what it found (re-checked there:
        // the manifest or the blob may have gone in between).
        let missing: Vec<(i64, String, String)> = sqlx::query_as(MISSING_LINKS)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_exclusive().await?;
        let mut restored = Vec::with_capacity(missing.len());
        for (repo_id, repo, digest) in missing {
            let done = sqlx::query(
                "INSERT INTO repository_blobs (repo_id, digest, linked_at) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM manifest_refs mr \
                     WHERE mr.repo_id = $1 AND mr.ref_digest = $2 AND mr.kind = 0) \
                 AND EXISTS (SELECT 1 FROM blobs b WHERE b.digest = $2 AND b.state = 0) \
                 ON CONFLICT (repo_id, digest) DO NOTHING",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                restored.push((repo, digest));
            }
        }
        tx.commit().await?;
        Ok(restored)
    }

    async fn gc_adopt_claims(
        &self,
        run: i64,
        stale_before: i64,
        limit: i64,
    ) -> MetaResult<Vec<BlobClaim>> {
        let mut tx = self.begin_exclusive().await?;
        sqlx::query(
            "UPDATE gc_runs SET status = 'abandoned', finished_at = updated_at \
             WHERE status = 'running' AND updated_at < $1 AND id <> $2",
        )
        .bind(stale_before)
        .bind(run)
        .execute(&mut *tx)
        .await?;
        // Claims of runs that are no longer running (a crash, a failure).
        let orphaned: Vec<(String, i64)> = sqlx::query_as(
            "SELECT digest, size FROM blobs WHERE state <> 0 AND state <> $1 \
             AND NOT EXISTS (SELECT 1 FROM gc_runs g WHERE g.id = blobs.state AND g.status = 'running') \
             ORDER BY digest LIMIT $2",
        )
        .bind(run)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for (digest, _) in &orphaned {
            sqlx::query("UPDATE blobs SET state = $2 WHERE digest = $1")
                .bind(digest)
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(orphaned
            .into_iter()
            .map(|(digest, size)| BlobClaim { digest, size })
            .collect())
    }

    async fn gc_forget_blobs(&self, run: i64, digests: &[String]) -> MetaResult<()> {
        let mut tx = self.write.begin().await?;
        for chunk in digests.chunks(100) {
            let sql = format!(
                "DELETE FROM blobs WHERE state = $1 AND digest IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(run);
            for d in chunk {
                q = q.bind(d);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn gc_forget_blob(&self, run: i64, digest: &str) -> MetaResult<()> {
        sqlx::query("DELETE FROM blobs WHERE digest = $1 AND state = $2")
            .bind(digest)
            .bind(run)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn gc_claim_orphan(
        &self,
        run: i64,
        digest: &str,
        size: i64,
        now: i64,
    ) -> MetaResult<bool> {
        let mut tx = self.begin_exclusive().await?;
        let done = sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, state) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM uploads WHERE digest = $1) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size)
        .bind(now)
        .bind(run)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn gc_estimate_blobs(&self) -> MetaResult<(i64, i64)> {
        let (blobs, bytes): (i64, i64) =
            sqlx::query_as(ESTIMATE_BLOBS).fetch_one(&self.read).await?;
        Ok((blobs, bytes))
    }

    async fn gc_preview(
        &self,
        untagged_before: Option<i64>,
        links_before: i64,
    ) -> MetaResult<GcPreview> {
        const BATCH: i64 = 1000;
        let mut tx = self.begin_exclusive().await?;
        let mut preview = GcPreview::default();
        if let Some(before) = untagged_before {
            loop {
                let batch = untagged_batch(&mut tx, before, BATCH).await?;
                if batch.is_empty() {
                    break;
                }
                preview.manifests.extend(batch);
            }
        }
        let mut cursor = None;
        loop {
            let batch = links_batch(&mut tx, links_before, cursor.as_ref(), BATCH).await?;
            preview.links += batch.deleted;
            match batch.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        loop {
            let after = preview.blobs.last().map(|c| c.digest.clone());
            // Claimed for no run (-1); rolled back below anyway.
            let batch = claim_batch(&mut tx, -1, after.as_deref(), BATCH).await?;
            let done = (batch.len() as i64) < BATCH;
            preview.blobs.extend(batch);
            if done {
                break;
            }
        }
        tx.rollback().await?;
        Ok(preview)
    }

    async fn gc_start_run(&self, run: &NewGcRun) -> MetaResult<i64> {
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO gc_runs (cause, actor, dry_run, full_sweep, status, stage, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'running', 'starting', $5, $5) RETURNING id",
        )
        .bind(&run.cause)
        .bind(&run.actor)
        .bind(i64::from(run.dry_run))
        .bind(i64::from(run.full_sweep))
        .bind(run.now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn gc_update_run(
        &self,
        id: i64,
        stage: &str,
        counts: &GcCounts,
        now: i64,
    ) -> MetaResult<()> {
        // SET reads the row as it was, so the blob step's start is the
        // first report in `blobs` and its end the first report after it.
        sqlx::query(
            "UPDATE gc_runs SET stage = $2, updated_at = $3, uploads_expired = $4, \
             manifests_deleted = $5, links_deleted = $6, blobs_deleted = $7, \
             bytes_reclaimed = $8, orphans_deleted = $9, blobs_expected = $10, \
             bytes_expected = $11, links_restored = $12, \
             blobs_started_at = CASE WHEN blobs_started_at IS NULL AND $2 = 'blobs' \
                 THEN $3 ELSE blobs_started_at END, \
             blobs_ended_at = CASE WHEN blobs_started_at IS NOT NULL AND blobs_ended_at IS NULL \
                 AND $2 <> 'blobs' THEN $3 ELSE blobs_ended_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(stage)
        .bind(now)
        .bind(counts.uploads_expired)
        .bind(counts.manifests_deleted)
        .bind(counts.links_deleted)
        .bind(counts.blobs_deleted)
        .bind(counts.bytes_reclaimed)
        .bind(counts.orphans_deleted)
        .bind(counts.blobs_expected)
        .bind(counts.bytes_expected)
        .bind(counts.links_restored)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn gc_finish_run(
        &self,
        id: i64,
        status: &str,
        counts: &GcCounts,
        error: Option<&str>,
        now: i64,
    ) -> MetaResult<()> {
        self.gc_update_run(id, "done", counts, now).await?;
        sqlx::query("UPDATE gc_runs SET status = $2, finished_at = $3, error = $4 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(now)
            .bind(error)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn gc_prune_runs(&self, keep: i64) -> MetaResult<u64> {
        // Runs up to the newest run past `keep` (none: NULL, nothing goes).
        // A blob a forgotten run left claimed is adopted as from any ended
        // run: only a running run's claims are kept from others.
        const OLD: &str = "status <> 'running' AND id <= \
            (SELECT id FROM gc_runs ORDER BY id DESC LIMIT 1 OFFSET $1)";
        let mut tx = self.write.begin().await?;
        sqlx::query(&format!(
            "DELETE FROM gc_shards WHERE run IN (SELECT id FROM gc_runs WHERE {OLD})"
        ))
        .bind(keep.max(0))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(&format!("DELETE FROM gc_runs WHERE {OLD}"))
            .bind(keep.max(0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn gc_runs(&self, limit: i64) -> MetaResult<Vec<GcRun>> {
        let rows = sqlx::query(&format!("{RUN_COLUMNS} ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(gc_run_row).collect()
    }

    async fn gc_run(&self, id: i64) -> MetaResult<Option<GcRun>> {
        let row = sqlx::query(&format!("{RUN_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(gc_run_row).transpose()
    }
}
