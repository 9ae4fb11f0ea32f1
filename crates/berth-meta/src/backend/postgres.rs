//! PostgreSQL, for several stateless Berth nodes sharing one database.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions};

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
pub(crate) type Db = sqlx::Postgres;
/// A row of this backend.
pub(crate) type DbRow = sqlx::postgres::PgRow;
/// The store of this backend.
pub(crate) type Store = PostgresStore;
/// Announce a change (`$1`, a feed payload), delivered at commit.
pub(crate) const ANNOUNCE: &str = "SELECT pg_notify('berth_changes', $1)";
/// Claiming a job locks the chosen row, so workers on several nodes never
/// take the same job.
pub(crate) const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
/// `AND r.name IN` the names of the JSON array bound as `$4`.
pub(crate) const JSON_IN_ARRAY: &str =
    " AND r.name IN (SELECT jsonb_array_elements_text(CAST($4 AS jsonb)))";

/// The advisory lock key of garbage collection on PostgreSQL ("berth").
const GC_LOCK_KEY: i64 = 0x0062_6572_7468;
/// How long the collector tries the collection lock, giving way to the
/// pushes that hold it shared, before it waits in line for it.
const GC_LOCK_PATIENCE: Duration = Duration::from_millis(250);

/// PostgreSQL, for several stateless Berth nodes sharing one database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
}

impl PostgresStore {
    /// Connect and apply migrations.
    pub async fn connect(url: &str, max_connections: u32) -> MetaResult<Self> {
        Self::connect_with(url, max_connections, Duration::from_secs(10)).await
    }

    /// Connect and apply migrations; a request waits at most
    /// `acquire_timeout` for a connection (while the database is down, that
    /// bounds how long it takes to be told so).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> MetaResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        // A database a newer build migrated further is served as it is:
        // during a rolling upgrade, the newer build's migrations only add.
        // (Several nodes starting at once migrate once: sqlx holds a lock.)
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        super::note_newer_schema(&pool).await?;
        Ok(PostgresStore {
            read: pool.clone(),
            write: pool,
        })
    }
}

impl PostgresStore {
    /// A transaction that holds the collection lock exclusively.
    pub(crate) async fn begin_exclusive(
        &self,
    ) -> MetaResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.write.begin().await?;
        // Give way to pushes first. PostgreSQL grants a lock's requests in
        // order, so a collector *waiting* for the exclusive lock queues
        // every push that starts meanwhile behind it, for as long as the
        // push it waits for still runs. Trying (and pausing between tries)
        // lets those pushes through; after GC_LOCK_PATIENCE it waits in
        // line, so that a steady stream of pushes cannot starve it.
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        while started.elapsed() < GC_LOCK_PATIENCE {
            let (held,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
                .bind(GC_LOCK_KEY)
                .fetch_one(&mut *tx)
                .await?;
            if held {
                return Ok(tx);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(8));
        }
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(GC_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Hold the collection lock shared until the transaction ends.
    pub(crate) async fn gc_shared(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> MetaResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(GC_LOCK_KEY)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Serialize quota checks of one namespace until the transaction ends
    /// (a two-key advisory lock: a key space apart from the collection lock).
    async fn quota_lock(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        namespace: &str,
    ) -> MetaResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1))")
            .bind(namespace)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Serializes links into one project group's namespaces while its quota
    /// is checked (taken before any namespace's lock).
    async fn group_quota_lock(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        group: i64,
    ) -> MetaResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(3, CAST($1 AS INTEGER))")
            .bind(group)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl PostgresStore {
    /// Subscribe to the change feed.
    pub(crate) fn open_change_feed(&self) -> Box<dyn ChangeFeed> {
        feeds::postgres(self.read.clone())
    }
}
