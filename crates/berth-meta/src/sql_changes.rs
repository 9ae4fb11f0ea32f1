//! The change feed of each database (see [`crate::changes`]).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqlitePool;

use crate::changes::{Change, ChangeFeed};
use crate::sql::{PostgresStore, SqliteStore};
use crate::{MetaError, MetaResult};

/// The PostgreSQL channel the triggers announce on.
const CHANNEL: &str = "berth_changes";
/// How often SQLite's table is read.
const SQLITE_POLL: Duration = Duration::from_millis(100);
/// A quiet PostgreSQL listener is checked this often, and must answer
/// within as long: a connection that died without a word (a network
/// partition) is noticed within about twice this time.
const PG_CHECK: Duration = Duration::from_millis(500);
/// How long SQLite's rows are kept (another process may still read them).
const SQLITE_KEEP_MS: i64 = 600_000;

impl SqliteStore {
    pub(crate) fn open_change_feed(&self) -> Box<dyn ChangeFeed> {
        Box::new(SqliteFeed {
            read: self.read.clone(),
            write: self.write.clone(),
            cursor: None,
            last_prune: Instant::now(),
        })
    }
}

impl PostgresStore {
    pub(crate) fn open_change_feed(&self) -> Box<dyn ChangeFeed> {
        Box::new(PgFeed {
            pool: self.read.clone(),
            listener: None,
        })
    }
}

struct SqliteFeed {
    read: SqlitePool,
    write: SqlitePool,
    /// The last row read; `None` until the feed has started.
    cursor: Option<i64>,
    last_prune: Instant,
}

#[async_trait]
impl ChangeFeed for SqliteFeed {
    async fn next(&mut self) -> MetaResult<Vec<Change>> {
        let Some(cursor) = self.cursor else {
            // Start after what was ever written: nothing is cached yet.
            let issued: Option<(i64,)> =
                sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'change_feed'")
                    .fetch_optional(&self.read)
                    .await?;
            self.cursor = Some(issued.map_or(0, |(seq,)| seq));
            return Ok(Vec::new());
        };
        tokio::time::sleep(SQLITE_POLL).await;
        self.poll(cursor).await
    }
}

impl SqliteFeed {
    async fn poll(&mut self, cursor: i64) -> MetaResult<Vec<Change>> {
        // The highest id ever given (AUTOINCREMENT: never reused, and a
        // rolled-back insert gives its id back), read before the rows: every
        // id up to it must be there, or rows this process had not read yet
        // were pruned (it stalled for longer than they are kept).
        let issued: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'change_feed'")
                .fetch_optional(&self.read)
                .await?;
        let issued = issued.map_or(0, |(seq,)| seq);
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, topic FROM change_feed WHERE id > $1 ORDER BY id LIMIT 10000",
        )
        .bind(cursor)
        .fetch_all(&self.read)
        .await?;
        let expected = (issued - cursor).clamp(0, 10_000) as usize;
        let seen = rows.iter().filter(|(id, _)| *id <= issued).count();
        self.cursor = Some(rows.last().map_or(cursor.max(issued), |(last, _)| *last));
        if seen < expected {
            return Err(MetaError::Corrupt(format!(
                "{} change feed rows were pruned before this process read them",
                expected - seen
            )));
        }
        if self.last_prune.elapsed() >= Duration::from_secs(60) {
            self.last_prune = Instant::now();
            sqlx::query("DELETE FROM change_feed WHERE at < $1")
                .bind(now_millis() - SQLITE_KEEP_MS)
                .execute(&self.write)
                .await?;
        }
        let mut changes: Vec<Change> = Vec::new();
        for (_, topic) in rows {
            if let Some(c) = Change::parse(&topic) {
                if !changes.contains(&c) {
                    changes.push(c);
                }
            }
        }
        Ok(changes)
    }
}

struct PgFeed {
    pool: PgPool,
    listener: Option<PgListener>,
}

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn next(&mut self) -> MetaResult<Vec<Change>> {
        let Some(listener) = self.listener.as_mut() else {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(CHANNEL).await?;
            self.listener = Some(listener);
            return Ok(Vec::new());
        };
        let outcome = match tokio::time::timeout(PG_CHECK, listener.try_recv()).await {
            Ok(Ok(Some(n))) => Ok(Change::parse(n.payload()).into_iter().collect()),
            // The connection was lost: announcements may be too.
            Ok(Ok(None)) => Err(sqlx::Error::Protocol(
                "the notification connection was closed".into(),
            )),
            Ok(Err(e)) => Err(e),
            // Quiet for a while: make sure the connection still answers.
            Err(_) => match tokio::time::timeout(
                PG_CHECK,
                sqlx::query("SELECT 'berth_changes'").execute(&mut *listener),
            )
            .await
            {
                Ok(done) => done.map(|_| Vec::new()),
                Err(_) => Err(sqlx::Error::Protocol(
                    "the notification connection did not answer its check".into(),
                )),
            },
        };
        outcome.map_err(|e| {
            self.listener = None;
            e.into()
        })
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
