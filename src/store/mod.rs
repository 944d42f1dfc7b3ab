//! The datastore: entities and their backends.
//!
//! Backends: `sqlite` (the embedded default, a file in the prefix that prepares its own schema),
//! `postgres` and `off` (DB-less). The entity layer grows with the datastore work; this module
//! owns connecting and schema preparation.

pub mod migrations;
pub mod postgres;
pub(crate) mod sqlite;

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
    /// PostgreSQL.
    Postgres(postgres::PgStore),
    /// DB-less: entities live in memory.
    Off,
}

impl Store {
    /// Opens the configured datastore. The embedded SQLite default creates its file and applies
    /// its migrations itself, so nobody needs to run `kong migrations` to try the gateway;
    /// PostgreSQL must have been migrated with `kong migrations` (see [`postgres::PgStore::open`]).
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        match config.database {
            Database::Sqlite => {
                let pool = sqlite::open(&config.sqlite_path).await?;
                let db = migrations::Db::Sqlite {
                    pool: pool.clone(),
                    database: config.sqlite_path.display().to_string(),
                };
                let ran = migrations::Migrator::new(db, migrations::SQLITE)
                    .up_to_date()
                    .await?;
                if !ran.is_empty() {
                    tracing::info!(file = %config.sqlite_path.display(), migrations = ?ran, "prepared the embedded datastore");
                }
                Ok(Store::Sqlite(pool))
            }
            Database::Off => Ok(Store::Off),
            Database::Postgres => Ok(Store::Postgres(postgres::PgStore::open(config).await?)),
        }
    }

    /// Whether the database answers (always true without one).
    pub async fn reachable(&self) -> bool {
        match self {
            Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Store::Postgres(pg) => sqlx::query("SELECT 1").execute(&pg.rw).await.is_ok(),
            Store::Off => true,
        }
    }

    /// The backend's name as `GET /` reports it.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
            Store::Off => "off",
        }
    }
}
