//! The datastore: entities, their schemas, and the backends that keep them.
//!
//! Backends: `sqlite` (the embedded default, a file in the prefix that prepares its own schema),
//! `postgres`, and `off` (DB-less: in memory, loaded from a declarative file). The entity logic
//! in [`dao`] is written once over the backends' small set of primitives, so all three behave
//! the same; one conformance suite (`tests/store_conformance.rs`) holds them to it.
//!
//! Every write also records a [`Change`]: in the database (for other nodes, later) and on a
//! local channel that the node's configuration rebuild listens to.

mod backend;
pub mod counters;
pub mod dao;
pub mod entities;
pub mod error;
pub mod import;
pub mod migrations;
pub mod postgres;
pub mod schema;
pub(crate) mod sqlite;

use std::sync::Arc;

use sqlx::{PgPool, SqlitePool};
use tokio::sync::broadcast;

pub use backend::{Change, TagFilter};
pub use dao::{EntityKey, Page, PageRequest, WriteOptions};
pub use error::DbError;
pub use import::{ImportError, ImportFailure, ImportItem, ImportOptions, ImportSummary};

use crate::config::{Config, Database};
use backend::memory::MemoryState;
use backend::sql::SqlTx;
use backend::Tx;
use schema::{NoPlugins, PluginSchemas};

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
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(postgres::PgStore),
    Memory(Arc<MemoryState>),
}

#[derive(Clone)]
struct Inner {
    backend: Backend,
    plugins: Arc<dyn PluginSchemas>,
    node_id: String,
    changes: broadcast::Sender<Change>,
}

/// An open datastore; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    fn new(backend: Backend) -> Store {
        let (changes, _) = broadcast::channel(1024);
        Store {
            inner: Arc::new(Inner {
                backend,
                plugins: Arc::new(NoPlugins),
                node_id: uuid::Uuid::nil().to_string(),
                changes,
            }),
        }
    }

    /// A store on an SQLite pool whose schema is already migrated.
    pub fn sqlite(pool: SqlitePool) -> Store {
        Store::new(Backend::Sqlite(pool))
    }

    /// A store on a PostgreSQL pool whose schema is already migrated.
    pub fn postgres(pool: PgPool) -> Store {
        Store::new(Backend::Postgres(postgres::PgStore { rw: pool, ro: None }))
    }

    /// An empty in-memory (DB-less) store.
    pub fn memory() -> Store {
        Store::new(Backend::Memory(Arc::new(MemoryState::default())))
    }

    fn with(&self, change: impl FnOnce(&mut Inner)) -> Store {
        let mut inner = (*self.inner).clone();
        change(&mut inner);
        Store {
            inner: Arc::new(inner),
        }
    }

    /// This store validating plugin configurations with `plugins`.
    pub fn with_plugins(&self, plugins: Arc<dyn PluginSchemas>) -> Store {
        self.with(|i| i.plugins = plugins)
    }

    /// An empty in-memory store validating with this store's plugins: a place to try an import
    /// without touching this one.
    pub fn scratch(&self) -> Store {
        let plugins = self.inner.plugins.clone();
        Store::memory().with(|i| i.plugins = plugins)
    }

    /// This store recording changes as made by node `id`.
    pub fn with_node_id(&self, id: &str) -> Store {
        let id = id.to_owned();
        self.with(|i| i.node_id = id)
    }

    /// The plugin schemas used for validation.
    pub fn plugins(&self) -> &dyn PluginSchemas {
        self.inner.plugins.as_ref()
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.inner.node_id
    }

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
                Ok(Store::sqlite(pool))
            }
            Database::Off => Ok(Store::memory()),
            Database::Postgres => Ok(Store::new(Backend::Postgres(
                postgres::PgStore::open(config).await?,
            ))),
        }
    }

    /// Whether the database answers (always true without one).
    pub async fn reachable(&self) -> bool {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Backend::Postgres(pg) => sqlx::query("SELECT 1").execute(&pg.rw).await.is_ok(),
            Backend::Memory(_) => true,
        }
    }

    /// The backend's name as `GET /` reports it (`database`).
    pub fn backend(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
            Backend::Memory(_) => "off",
        }
    }

    /// Changes committed through this store, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Announces a change to local listeners (the snapshot rebuild) without writing anything.
    pub fn notify(&self, change: Change) {
        // Nobody listening is fine: the node may not have started its rebuild loop yet.
        let _ = self.inner.changes.send(change);
    }

    /// A transaction for reading.
    pub(crate) async fn read(&self) -> Result<Tx, DbError> {
        Ok(match &self.inner.backend {
            Backend::Sqlite(pool) => Tx::Sql(SqlTx::Sqlite(pool.begin().await?)),
            // Reads go to the primary too: the Admin API must read its own writes.
            Backend::Postgres(pg) => Tx::Sql(SqlTx::Postgres(pg.rw.begin().await?)),
            Backend::Memory(state) => Tx::Memory(state.read()),
        })
    }

    /// A transaction for writing. SQLite takes its write lock up front, so two writers queue
    /// instead of failing when the second one tries to upgrade.
    pub(crate) async fn write(&self) -> Result<Tx, DbError> {
        Ok(match &self.inner.backend {
            Backend::Sqlite(pool) => {
                Tx::Sql(SqlTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?))
            }
            Backend::Postgres(pg) => Tx::Sql(SqlTx::Postgres(pg.rw.begin().await?)),
            Backend::Memory(state) => Tx::Memory(state.write().await),
        })
    }
}

/// Opens (creating if missing) the SQLite file at `path`, without migrating it.
pub async fn sqlite_pool(path: &std::path::Path) -> Result<SqlitePool, StoreError> {
    sqlite::open(path).await
}
