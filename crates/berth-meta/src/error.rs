//! Errors of the metadata store, and how to tell a full disk or an
//! unreachable database from a failure.

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A unique name is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A count limit was reached.
    #[error("limit reached")]
    LimitReached,
    /// A stored value did not parse (corrupt or foreign data).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl MetaError {
    /// Whether the database refused a write because its disk is full
    /// (SQLite `SQLITE_FULL`, PostgreSQL `disk_full`, or `ENOSPC`).
    pub fn is_storage_full(&self) -> bool {
        let MetaError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Database(d) => {
                // SQLite reports its primary result code (13, SQLITE_FULL),
                // PostgreSQL its SQLSTATE (53100, disk_full).
                matches!(d.code().as_deref(), Some("13" | "53100"))
            }
            sqlx::Error::Io(io) => is_enospc(io),
            _ => false,
        }
    }

    /// Whether the database could not be reached or is shutting down: the
    /// caller may retry once it is back (answered 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        let MetaError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            sqlx::Error::Io(io) => !is_enospc(io),
            sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|c| {
                // Class 08: connection exceptions; 57P01-57P03: the server
                // is shutting down, crashed, or not yet accepting.
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

fn is_enospc(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
}

/// Result alias for the store.
pub type MetaResult<T> = Result<T, MetaError>;
