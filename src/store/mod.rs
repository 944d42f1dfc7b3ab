//! The datastore: entities and their backends.
//!
//! Backends: `sqlite` (the embedded default, a file in the prefix that prepares its own schema),
//! `postgres` and `off` (DB-less). The entity layer grows with the datastore work; this module
//! owns connecting and schema preparation.

pub mod entities;
pub mod migrations;
pub mod schema;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::config::{Config, Database};

/// Datastore problems.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("could not open the {backend} datastore at {location}: {source}")]
    Connect {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// File or server.
        location: String,
        /// Driver error.
        source: sqlx::Error,
    },
    /// The schema could not be prepared.
    #[error(transparent)]
    Migration(#[from] migrations::MigrationError),
    /// A backend this build does not support yet.
    #[error("database = {0} is not supported yet by this node")]
    Unsupported(&'static str),
}

/// An open datastore.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// DB-less: entities live in memory.
    Off,
}

impl Store {
    /// Opens the configured datastore. The embedded SQLite default creates its file and applies
    /// its migrations itself, so nobody needs to run `kong migrations` to try the gateway.
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        match config.database {
            Database::Sqlite => {
                let location = config.sqlite_path.display().to_string();
                let connect = |source| StoreError::Connect {
                    backend: "sqlite",
                    location: location.clone(),
                    source,
                };
                let options = SqliteConnectOptions::from_str("sqlite://")
                    .map_err(connect)?
                    .filename(&config.sqlite_path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(connect)?;
                let ran = migrations::apply_sqlite(&pool).await?;
                if !ran.is_empty() {
                    tracing::info!(file = %location, migrations = ?ran, "prepared the embedded datastore");
                }
                Ok(Store::Sqlite(pool))
            }
            Database::Off => Ok(Store::Off),
            Database::Postgres => Err(StoreError::Unsupported("postgres")),
        }
    }

    /// Whether the database answers (always true without one).
    pub async fn reachable(&self) -> bool {
        match self {
            Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Store::Off => true,
        }
    }

    /// The backend's name as `GET /` reports it.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Off => "off",
        }
    }
}
