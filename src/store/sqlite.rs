//! The embedded SQLite file: how it is opened.
//!
//! WAL journal (readers never block the writer), `synchronous = NORMAL`, foreign keys on, and
//! a busy timeout so that writers from several processes (a node, `kong migrations`) queue up
//! instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::StoreError;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the file, creating it if missing (its directory must exist).
///
/// Switching a new file to WAL needs the file to itself, and SQLite reports "database is
/// locked" at once, without waiting, when two processes open a new file together; opening is
/// therefore retried for up to [`BUSY_TIMEOUT`].
pub async fn open(path: &Path) -> Result<SqlitePool, StoreError> {
    let connect = |source| StoreError::Connect {
        backend: "sqlite",
        location: path.display().to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(connect)?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let opened = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await;
        match opened {
            Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.map_err(connect),
        }
    }
}

/// Whether SQLite said `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended variant).
fn is_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
