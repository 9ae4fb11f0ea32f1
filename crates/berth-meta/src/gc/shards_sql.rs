//! The shards of a run's blob step, in SQL (`GcShardStore`). Written once
//! for both databases (`CLAIM_LOCK`: PostgreSQL skips a shard another node
//! is taking at the same moment; SQLite has one writer).

use async_trait::async_trait;

use super::{Store, CLAIM_LOCK};
use crate::backend::placeholders;
use crate::error::MetaResult;
use crate::gc::{BlobClaim, GcShard, GcShardRecord, GcShardStore};

#[async_trait]
impl GcShardStore for Store {
    async fn gc_plan_shards(&self, run: i64, bounds: &[String]) -> MetaResult<()> {
        let mut tx = self.write.begin().await?;
        for shard in 0..=bounds.len() {
            let after = if shard == 0 { "" } else { &bounds[shard - 1] };
            sqlx::query(
                "INSERT INTO gc_shards (run, shard, after_digest, until_digest) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (run, shard) DO NOTHING",
            )
            .bind(run)
            .bind(shard as i64)
            .bind(after)
            .bind(bounds.get(shard))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn gc_take_shard(
        &self,
        run: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> MetaResult<Option<GcShard>> {
        // A short transaction, once per shard, that writes after it reads:
        // on SQLite it must hold the write lock from its start (a deferred
        // one fails at once if another process wrote meanwhile).
        let mut tx = self.begin_exclusive().await?;
        let sql = format!(
            "SELECT s.shard FROM gc_shards s WHERE s.run = $1 AND s.done = 0 \
             AND s.lease_until < $2 AND EXISTS (SELECT 1 FROM gc_runs g \
                 WHERE g.id = s.run AND g.status = 'running') \
             ORDER BY s.shard LIMIT 1{CLAIM_LOCK}"
        );
        let found: Option<(i64,)> = sqlx::query_as(&sql)
            .bind(run)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((shard,)) = found else {
            return Ok(None);
        };
        let (after, until_digest, cursor): (String, Option<String>, Option<String>) =
            sqlx::query_as(
                "UPDATE gc_shards SET owner = $3, lease_until = $4 \
                 WHERE run = $1 AND shard = $2 \
                 RETURNING after_digest, until_digest, cursor",
            )
            .bind(run)
            .bind(shard)
            .bind(owner)
            .bind(until)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(GcShard {
            run,
            shard,
            after,
            until: until_digest,
            cursor,
        }))
    }

    async fn gc_shard_moved(
        &self,
        shard: &GcShard,
        owner: &str,
        cursor: Option<&str>,
        until: i64,
    ) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE gc_shards SET cursor = COALESCE($4, cursor), lease_until = $5 \
             WHERE run = $1 AND shard = $2 AND owner = $3 AND done = 0",
        )
        .bind(shard.run)
        .bind(shard.shard)
        .bind(owner)
        .bind(cursor)
        .bind(until)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn gc_forget_shard_blobs(
        &self,
        shard: &GcShard,
        digests: &[String],
    ) -> MetaResult<(i64, i64)> {
        let mut tx = self.write.begin().await?;
        let (mut blobs, mut bytes) = (0i64, 0i64);
        for chunk in digests.chunks(100) {
            let sql = format!(
                "DELETE FROM blobs WHERE state = $1 AND digest IN ({}) RETURNING size",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (i64,)>(&sql).bind(shard.run);
            for d in chunk {
                q = q.bind(d);
            }
            for (size,) in q.fetch_all(&mut *tx).await? {
                blobs += 1;
                bytes += size;
            }
        }
        sqlx::query(
            "UPDATE gc_shards SET blobs_deleted = blobs_deleted + $3, \
             bytes_reclaimed = bytes_reclaimed + $4 WHERE run = $1 AND shard = $2",
        )
        .bind(shard.run)
        .bind(shard.shard)
        .bind(blobs)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((blobs, bytes))
    }

    async fn gc_finish_shard(&self, shard: &GcShard, owner: &str) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE gc_shards SET done = 1, lease_until = 0 \
             WHERE run = $1 AND shard = $2 AND owner = $3 AND done = 0",
        )
        .bind(shard.run)
        .bind(shard.shard)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn gc_shard_claims(
        &self,
        shard: &GcShard,
        after: &str,
        limit: i64,
    ) -> MetaResult<Vec<BlobClaim>> {
        let after = after.max(shard.after.as_str());
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT digest, size FROM blobs WHERE state = $1 AND digest > $2 \
             AND ($3 = '' OR digest <= $3) ORDER BY digest LIMIT $4",
        )
        .bind(shard.run)
        .bind(after)
        .bind(shard.until.as_deref().unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(digest, size)| BlobClaim { digest, size })
            .collect())
    }

    async fn gc_shards(&self, run: i64) -> MetaResult<Vec<GcShardRecord>> {
        let rows: Vec<(i64, Option<String>, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT shard, owner, done, lease_until, blobs_deleted, bytes_reclaimed FROM gc_shards \
             WHERE run = $1 ORDER BY shard",
        )
        .bind(run)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(shard, owner, done, lease_until, blobs_deleted, bytes_reclaimed)| GcShardRecord {
                    shard,
                    owner,
                    done: done != 0,
                    lease_until,
                    blobs_deleted,
                    bytes_reclaimed,
                },
            )
            .collect())
    }
}
