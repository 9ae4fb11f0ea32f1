//! The change feed of each database (see [`crate::changes`]).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqlitePool;

use crate::changes::{Change, ChangeFeed};
use crate::sql::{PostgresStore, SqliteStore};
use crate::MetaResult;

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
            // Start after what is there: nothing is cached yet.
            let (max,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM change_feed")
                .fetch_one(&self.read)
                .await?;
            self.cursor = Some(max);
            return Ok(Vec::new());
        };
        tokio::time::sleep(SQLITE_POLL).await;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, topic FROM change_feed WHERE id > $1 ORDER BY id LIMIT 10000",
        )
        .bind(cursor)
        .fetch_all(&self.read)
        .await?;
        if let Some((last, _)) = rows.last() {
            self.cursor = Some(*last);
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
