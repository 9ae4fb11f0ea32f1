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
