//! The change feed of each database: SQLite's table read every 100 ms,
//! PostgreSQL's channel listened to.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqlitePool;

use crate::changes::{Change, ChangeFeed};
use crate::error::{MetaError, MetaResult};

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

/// SQLite's feed: rows of the table `change_feed`, read from `read`,
/// pruned through `write`.
pub(crate) fn sqlite(read: SqlitePool, write: SqlitePool) -> Box<dyn ChangeFeed> {
    Box::new(SqliteFeed {
        read,
        write,
        cursor: None,
        last_prune: Instant::now(),
    })
}

/// PostgreSQL's feed: notifications on the channel, listened to with a
/// connection of `pool`.
pub(crate) fn postgres(pool: PgPool) -> Box<dyn ChangeFeed> {
    Box::new(PgFeed {
        pool,
        listener: None,
    })
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
