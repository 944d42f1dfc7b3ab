//! The database the migration runner talks to: an SQLite or a PostgreSQL pool, plus the few
//! statements that differ between the two (the [`Dialect`]).
//!
//! Everything else is one SQL text for both backends (sqlx-sqlite accepts `$n` placeholders),
//! run through `with_pool!`, which expands the same code once per backend.

use sqlx::{PgPool, SqlitePool};

use super::state::{Recorded, Status};
use crate::config::{Config, Database};
use crate::store::{postgres, StoreError};

/// The bookkeeping table: one row per migration that ran.
pub const STATE_TABLE: &str = "migration_state";
/// The lock table.
pub const LOCKS_TABLE: &str = "locks";
/// Where binaries before `migration_state` recorded executed migrations (SQLite only).
const LEGACY_TABLE: &str = "schema_migrations";

/// Creates the bookkeeping tables. Times are milliseconds since the epoch.
const BOOKKEEPING: &str = "
CREATE TABLE IF NOT EXISTS migration_state (
    subsystem  TEXT NOT NULL,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subsystem, name)
);
CREATE TABLE IF NOT EXISTS locks (
    key        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);";

/// Whether PostgreSQL schema `$1` exists.
const SCHEMA_EXISTS: &str = "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1";

/// Moves the legacy table's rows (all executed; `executed_at` in seconds) into `migration_state`.
const ADOPT_LEGACY: &str = "
INSERT INTO migration_state (subsystem, name, checksum, state, updated_at)
    SELECT l.subsystem, l.name, l.checksum, 'executed', l.executed_at * 1000
    FROM schema_migrations l
    WHERE NOT EXISTS (SELECT 1 FROM migration_state m
                      WHERE m.subsystem = l.subsystem AND m.name = l.name);
DROP TABLE schema_migrations;";

/// What differs between SQLite and PostgreSQL.
#[derive(Debug)]
pub struct Dialect {
    /// Starts a transaction that will write. SQLite takes the write lock at once, so a
    /// transaction never fails half-way because another process wrote first.
    pub begin: &'static str,
    /// The database's clock, in milliseconds since the epoch (one clock for every node).
    pub now_ms: &'static str,
    /// `count(*)` of tables named `$1` where the connection creates its tables.
    pub table_exists: &'static str,
    /// Names of every table where the connection creates its tables.
    pub list_tables: &'static str,
    /// Appended to `DROP TABLE` so dependent objects go too.
    pub drop_suffix: &'static str,
    /// Serialises bookkeeping creation between nodes (concurrent `CREATE TABLE IF NOT EXISTS`
    /// can fail on PostgreSQL); SQLite's `BEGIN IMMEDIATE` already does.
    pub guard: Option<&'static str>,
}

const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    now_ms: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    table_exists: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
    list_tables: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    drop_suffix: "",
    guard: None,
};

const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    now_ms: "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
    table_exists: "SELECT count(*) FROM pg_catalog.pg_tables \
                   WHERE schemaname = current_schema() AND tablename = $1",
    list_tables: "SELECT CAST(tablename AS TEXT) FROM pg_catalog.pg_tables \
                  WHERE schemaname = current_schema()",
    drop_suffix: " CASCADE",
    // 0x6b6f6e67 is "kong": an arbitrary key, the same on every node.
    guard: Some("SELECT pg_advisory_xact_lock(1802464871)"),
};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
}

/// A database to migrate.
#[derive(Debug, Clone)]
pub enum Db {
    /// The embedded SQLite file.
    Sqlite {
        /// The pool.
        pool: SqlitePool,
        /// The file, for messages.
        database: String,
    },
    /// A PostgreSQL database.
    Postgres {
        /// The pool (its connections' `search_path` is the configured schema).
        pool: PgPool,
        /// The database name, for messages.
        database: String,
        /// `pg_schema`, created by bootstrap if missing.
        schema: Option<String>,
    },
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite { pool: $pool, .. } => $body,
            Db::Postgres { pool: $pool, .. } => $body,
        }
    };
}

/// Binds `$args` (a slice of [`Arg`]) to query `$q` in order.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for arg in $args {
            q = match arg {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

impl Db {
    /// Connects to the configured database; `None` for `database = off`. Creates the SQLite
    /// file (and its directory) if missing; does not create or check any table.
    pub async fn connect(config: &Config) -> Result<Option<Db>, StoreError> {
        match config.database {
            Database::Off => Ok(None),
            Database::Sqlite => {
                let path = &config.sqlite_path;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Connect {
                        backend: "sqlite",
                        location: path.display().to_string(),
                        source: sqlx::Error::Io(e),
                    })?;
                }
                Ok(Some(Db::Sqlite {
                    pool: crate::store::sqlite::open(path).await?,
                    database: path.display().to_string(),
                }))
            }
            Database::Postgres => Ok(Some(Db::Postgres {
                pool: postgres::connect(&config.pg, "postgres").await?,
                database: config.pg.database.clone(),
                schema: config.pg.schema.clone(),
            })),
        }
    }

    /// The database name (PostgreSQL) or file (SQLite), for messages.
    pub fn database(&self) -> &str {
        match self {
            Db::Sqlite { database, .. } | Db::Postgres { database, .. } => database,
        }
    }

    /// The statements that differ for this backend.
    pub fn dialect(&self) -> &'static Dialect {
        match self {
            Db::Sqlite { .. } => &SQLITE,
            Db::Postgres { .. } => &POSTGRES,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Whether table `name` exists where this connection creates tables.
    pub async fn table_exists(&self, name: &str) -> Result<bool, sqlx::Error> {
        let sql = self.dialect().table_exists;
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(name).fetch_one(pool).await?
        });
        Ok(count > 0)
    }

    /// The recorded migrations; `None` when there is no bookkeeping table at all.
    pub async fn recorded(&self) -> Result<Option<Vec<Recorded>>, sqlx::Error> {
        let sql = if self.table_exists(STATE_TABLE).await? {
            "SELECT subsystem, name, checksum, state FROM migration_state"
        } else if self.table_exists(LEGACY_TABLE).await? {
            "SELECT subsystem, name, checksum, 'executed' FROM schema_migrations"
        } else {
            return Ok(None);
        };
        let rows: Vec<(String, String, String, String)> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(Some(
            rows.into_iter()
                .map(|(subsystem, name, checksum, state)| Recorded {
                    subsystem,
                    name,
                    checksum,
                    status: Status::parse(&state),
                })
                .collect(),
        ))
    }

    /// Creates the configured schema (PostgreSQL) and the bookkeeping tables if missing, and
    /// adopts the rows of the legacy table. Safe to run from several nodes at once.
    pub async fn ensure_bookkeeping(&self) -> Result<(), sqlx::Error> {
        let d = self.dialect();
        let schema = match self {
            Db::Postgres {
                schema: Some(schema),
                ..
            } => Some(schema.as_str()),
            _ => None,
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(d.begin).await?;
            if let Some(guard) = d.guard {
                sqlx::query(guard).execute(&mut *tx).await?;
            }
            if let Some(schema) = schema {
                // Checked first: `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
                // database even when the schema exists.
                let exists: i64 = sqlx::query_scalar(SCHEMA_EXISTS)
                    .bind(schema)
                    .fetch_one(&mut *tx)
                    .await?;
                if exists == 0 {
                    let sql = format!("CREATE SCHEMA {}", quote_ident(schema));
                    sqlx::raw_sql(&sql).execute(&mut *tx).await?;
                }
            }
            sqlx::raw_sql(BOOKKEEPING).execute(&mut *tx).await?;
            let legacy: i64 = sqlx::query_scalar(d.table_exists)
                .bind(LEGACY_TABLE)
                .fetch_one(&mut *tx)
                .await?;
            if legacy > 0 {
                sqlx::raw_sql(ADOPT_LEGACY).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// Runs one statement outside any transaction; returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        with_pool!(self, pool => {
            Ok(bind_all!(sqlx::query(sql), args).execute(pool).await?.rows_affected())
        })
    }

    /// Fetches the first column of the first row of a query returning text, if any row.
    pub async fn fetch_text(&self, sql: &str, args: &[Arg]) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            bind_all!(sqlx::query_scalar(sql), args).fetch_optional(pool).await
        })
    }

    /// Runs `script` (any number of statements, may be empty) and then `record` with `args`,
    /// in one transaction: either both take effect or neither does.
    pub async fn apply(&self, script: &str, record: &str, args: &[Arg]) -> Result<(), sqlx::Error> {
        let begin = self.dialect().begin;
        let script = super::has_sql(script).then_some(script);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await?;
            if let Some(script) = script {
                sqlx::raw_sql(script).execute(&mut *tx).await?;
            }
            bind_all!(sqlx::query(record), args).execute(&mut *tx).await?;
            tx.commit().await
        })
    }

    /// Drops every table where this connection creates tables, in one transaction.
    pub async fn drop_all_tables(&self) -> Result<(), sqlx::Error> {
        let d = self.dialect();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(d.begin).await?;
            let tables: Vec<String> =
                sqlx::query_scalar(d.list_tables).fetch_all(&mut *tx).await?;
            for table in tables {
                let sql = format!("DROP TABLE IF EXISTS {}{}", quote_ident(&table), d.drop_suffix);
                sqlx::raw_sql(&sql).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }
}

/// `name` as a quoted SQL identifier (same rule for SQLite and PostgreSQL).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("kong"), "\"kong\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
