//! SQLite, the embedded default: WAL mode, writes through one connection
//! (SQLite has one writer at a time anyway), reads from a pool.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::changes::{feeds, ChangeFeed};
use crate::error::MetaResult;

// Each domain's SQL, compiled for this database (and for the other in
// its own file: hence clippy's duplicate_mod is allowed).
#[allow(clippy::duplicate_mod)]
#[path = "../directory/sql.rs"]
mod directory;
#[allow(clippy::duplicate_mod)]
#[path = "../events/sql.rs"]
mod events;
#[allow(clippy::duplicate_mod)]
#[path = "../gc/sql.rs"]
mod gc;
#[allow(clippy::duplicate_mod)]
#[path = "../gc/shards_sql.rs"]
mod gc_shards;

#[allow(clippy::duplicate_mod)]
#[path = "../identity/sql.rs"]
mod identity;
#[allow(clippy::duplicate_mod)]
#[path = "../integrity/sql.rs"]
mod integrity;
#[allow(clippy::duplicate_mod)]
#[path = "../platform/jobs_sql.rs"]
mod jobs;
#[allow(clippy::duplicate_mod)]
#[path = "../platform/sql.rs"]
mod platform;
#[allow(clippy::duplicate_mod)]
#[path = "../pull_policy/sql.rs"]
mod pull_policy;
#[allow(clippy::duplicate_mod)]
#[path = "../registry/sql.rs"]
mod registry;
#[allow(clippy::duplicate_mod)]
#[path = "../registry/push_sql.rs"]
mod registry_push;
#[allow(clippy::duplicate_mod)]
#[path = "../platform/remote_replication_sql.rs"]
mod remote_replication;
#[allow(clippy::duplicate_mod)]
#[path = "../platform/remotes_sql.rs"]
mod remotes;
#[allow(clippy::duplicate_mod)]
#[path = "../views/sql.rs"]
mod views;
#[allow(clippy::duplicate_mod)]
#[path = "../vulnerability/sql.rs"]
mod vulnerability;

/// The database of this backend, for the shared SQL.
pub(crate) type Db = sqlx::Sqlite;
/// A row of this backend.
pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
/// The store of this backend.
pub(crate) type Store = SqliteStore;
/// Announce a change (`$1`, a feed payload) in the writing transaction.
pub(crate) const ANNOUNCE: &str = "INSERT INTO change_feed (topic, at) \
     VALUES ($1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))";
/// Claiming a job needs no row lock: SQLite has one writer.
pub(crate) const CLAIM_LOCK: &str = "";
/// `AND r.name IN` the names of the JSON array bound as `$4`.
pub(crate) const JSON_IN_ARRAY: &str = " AND r.name IN (SELECT value FROM json_each($4))";

/// The embedded default: SQLite in WAL mode. Writes go through a single
/// connection (SQLite has one writer at a time anyway); reads use a pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database file and apply migrations.
    pub async fn open(path: &Path) -> MetaResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // When a COMMIT fails on a full disk, SQLite rolls the
            // transaction back itself; sqlx's own ROLLBACK then fails and
            // its transaction depth stays 1, after which it opens the next
            // transaction with a SAVEPOINT, whose ROLLBACK TO leaves an open
            // transaction behind: later writes were answered as done but
            // never committed. A connection still "in a transaction" when
            // released (pending rollbacks flushed first) is closed instead,
            // which rolls back whatever is open; the next one starts clean.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options.clone())
            .await?;
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        // A database a newer build migrated further is served as it is:
        // during a rolling upgrade, the newer build's migrations only add.
        migrator.set_ignore_missing(true);
        migrator.run(&write).await?;
        super::note_newer_schema(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            // A local file's connection cannot go away; a ping before each
            // use would cost a second hand-off to its worker thread.
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { read, write })
    }
}

impl SqliteStore {
    /// A transaction that holds the collection lock exclusively: SQLite's
    /// write lock, taken at `BEGIN`.
    pub(crate) async fn begin_exclusive(
        &self,
    ) -> MetaResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Hold the collection lock shared: every SQLite write transaction
    /// already excludes the collector.
    pub(crate) async fn gc_shared(_tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> MetaResult<()> {
        Ok(())
    }

    /// Serialize quota checks of one namespace: SQLite's single writer
    /// already does.
    async fn quota_lock(
        _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        _namespace: &str,
    ) -> MetaResult<()> {
        Ok(())
    }

    async fn group_quota_lock(
        _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        _group: i64,
    ) -> MetaResult<()> {
        Ok(())
    }
}

impl SqliteStore {
    /// Subscribe to the change feed.
    pub(crate) fn open_change_feed(&self) -> Box<dyn ChangeFeed> {
        feeds::sqlite(self.read.clone(), self.write.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Change;

    async fn announce(store: &SqliteStore, topic: &str) {
        sqlx::query("INSERT INTO change_feed (topic, at) VALUES ($1, 0)")
            .bind(topic)
            .execute(&store.write)
            .await
            .expect("insert");
    }

    #[tokio::test]
    async fn sqlite_feed_reads_changes_and_notices_rows_pruned_unread() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("feed.db"))
            .await
            .expect("open");
        // Changes before the feed starts are not its business.
        announce(&store, "a").await;
        let mut feed = store.open_change_feed();
        assert!(feed.next().await.expect("start").is_empty());
        announce(&store, "r:team/app").await;
        announce(&store, "a").await;
        announce(&store, "r:team/app").await;
        assert_eq!(
            feed.next().await.expect("changes"),
            vec![Change::Repository("team/app".into()), Change::Access]
        );
        assert!(feed.next().await.expect("quiet").is_empty());
        // A change pruned before this process read it: the feed is broken.
        announce(&store, "r:team/web").await;
        sqlx::query("DELETE FROM change_feed")
            .execute(&store.write)
            .await
            .expect("prune");
        assert!(feed.next().await.is_err());
        // Then it goes on from there.
        assert!(feed.next().await.expect("again").is_empty());
        announce(&store, "a").await;
        assert_eq!(feed.next().await.expect("later"), vec![Change::Access]);
        // A feed started after a prune does not take the gap for a loss.
        let mut late = store.open_change_feed();
        sqlx::query("DELETE FROM change_feed")
            .execute(&store.write)
            .await
            .expect("prune");
        assert!(late.next().await.expect("start").is_empty());
        assert!(late.next().await.expect("quiet").is_empty());
    }
}
