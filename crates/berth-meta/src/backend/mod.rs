//! The two databases: SQLite (the embedded default) and PostgreSQL (for
//! several nodes). Both speak the same SQL (numbered `$n` parameters, `ON
//! CONFLICT`, `RETURNING`), so each domain's SQL is written once, in its
//! folder's `sql.rs`, as ordinary functions and trait impls over `Db`,
//! `DbRow` and `Store`; `sqlite.rs` and `postgres.rs` compile those files
//! once each with their own types. What differs (connection setup,
//! migrations, locks, the change feed) is written in each.

pub(crate) mod postgres;
pub(crate) mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// `$from, $from+1, …` for `n` parameters of an `IN (…)` list (the same
/// text for both databases).
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Say so when a newer build has migrated the database past this build's
/// schema (a rolling upgrade in progress): this build serves it as it is.
pub(crate) async fn note_newer_schema<DB>(pool: &sqlx::Pool<DB>) -> crate::MetaResult<()>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
    if let Some(newest) = newest.filter(|v| *v > crate::SCHEMA_VERSION) {
        tracing::warn!(
            database = newest,
            build = crate::SCHEMA_VERSION,
            "the database's schema is newer than this build's: serving it as it is \
             (a rolling upgrade in progress; upgrade this node next)"
        );
    }
    Ok(())
}
