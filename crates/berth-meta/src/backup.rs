//! Online backups of the embedded database (SQLite): a consistent copy
//! taken while Berth serves, made self-contained for a restore.
//!
//! The copy is SQLite's `VACUUM INTO`, run on a read connection: one read
//! transaction, so it holds every committed push entirely or not at all and
//! never blocks writers. The collector does not claim blobs while the
//! [`BACKUP_LEASE`] is held (see `gc/sql.rs`), so every blob the copy calls
//! live stays in storage until the backup has copied it. PostgreSQL is
//! backed up with its own tools (docs/operations.md).

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::backend::SqliteStore;
use crate::error::MetaResult;

/// The prefix of the leases running backups hold (and renew), one each
/// (`backup:<id>`); the collector claims no blob for deletion while any is
/// held. A backup killed midway holds its lease until it lapses.
pub const BACKUP_LEASE: &str = "backup:";

/// Write a consistent copy of the database to `dest` (which must not exist).
pub async fn snapshot_into(store: &SqliteStore, dest: &Path) -> MetaResult<()> {
    let dest = dest.to_string_lossy().into_owned();
    sqlx::query("VACUUM INTO $1")
        .bind(dest)
        .execute(&store.read)
        .await?;
    Ok(())
}

/// A database copy made by [`snapshot_into`], opened on its own.
#[derive(Debug)]
pub struct Snapshot {
    pool: SqlitePool,
}

impl Snapshot {
    /// Open a copy (it is not migrated: it keeps the schema it was taken
    /// at); read-only unless `writable`.
    pub async fn open(path: &Path, writable: bool) -> MetaResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .read_only(!writable)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Snapshot { pool })
    }

    /// Make the copy stand on its own: what belonged to the running
    /// registry and not to its data goes. Leases (the backup's own
    /// included), upload sessions (their bytes are not copied), and blobs a
    /// collection had claimed (nothing references them; their bytes may
    /// already be gone); runs that were in progress are marked abandoned.
    pub async fn seal(&self) -> MetaResult<()> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM leases",
            "DELETE FROM uploads",
            "DELETE FROM blobs WHERE state <> 0",
            "UPDATE gc_runs SET status = 'abandoned', finished_at = updated_at \
             WHERE status = 'running'",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // One file, readable without a write-ahead log (Berth turns WAL
        // on again when it opens a restored copy).
        sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The schema version the copy is at.
    pub async fn schema_version(&self) -> MetaResult<i64> {
        let (v,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Live blobs (digest and size) in digest order after `after`, at most
    /// `limit`.
    pub async fn blobs(&self, after: &str, limit: i64) -> MetaResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(crate::integrity::LIVE_BLOBS)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Close the copy (its file may then be moved).
    pub async fn close(self) {
        self.pool.close().await;
    }
}
