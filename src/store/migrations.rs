//! Schema migrations embedded in the binary, tracked per database with checksums.
//!
//! Each backend has its own ordered list (`migrations/<backend>/NNN_name.sql`). A migration that
//! ran is recorded in `schema_migrations` with the SHA-256 of its text; if the text embedded in
//! this binary differs from what ran, the database is refused rather than silently diverging.

use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

/// One embedded migration.
#[derive(Debug)]
pub struct Migration {
    /// Name, e.g. `000_base`.
    pub name: &'static str,
    /// SQL text.
    pub sql: &'static str,
}

impl Migration {
    /// Hex SHA-256 of the SQL text.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The SQLite migrations, in order.
pub static SQLITE: &[Migration] = &[
    Migration {
        name: "000_base",
        sql: include_str!("../../migrations/sqlite/000_base.sql"),
    },
    Migration {
        name: "001_entities",
        sql: include_str!("../../migrations/sqlite/001_entities.sql"),
    },
];

/// The PostgreSQL migrations, in order.
pub static POSTGRES: &[Migration] = &[
    Migration {
        name: "000_base",
        sql: include_str!("../../migrations/postgres/000_base.sql"),
    },
    Migration {
        name: "001_entities",
        sql: include_str!("../../migrations/postgres/001_entities.sql"),
    },
];

/// Migration problems.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database rejected a statement.
    #[error("migration {name} failed: {source}")]
    Failed {
        /// Migration name.
        name: String,
        /// Driver error.
        source: sqlx::Error,
    },
    /// A migration's recorded checksum differs from the embedded text.
    #[error("migration {name} was changed after it ran (recorded checksum {recorded}, embedded {embedded}); refusing to continue")]
    Checksum {
        /// Migration name.
        name: String,
        /// Checksum in the database.
        recorded: String,
        /// Checksum of the embedded text.
        embedded: String,
    },
    /// The bookkeeping table could not be read or written.
    #[error("could not read migration state: {0}")]
    State(#[from] sqlx::Error),
}

/// Brings an SQLite database up to date; returns the names of migrations that ran.
pub async fn apply_sqlite(pool: &SqlitePool) -> Result<Vec<&'static str>, MigrationError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            subsystem TEXT NOT NULL,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            executed_at INTEGER NOT NULL,
            PRIMARY KEY (subsystem, name))",
    )
    .execute(pool)
    .await?;
    let mut ran = Vec::new();
    for m in SQLITE {
        let recorded: Option<(String,)> = sqlx::query_as(
            "SELECT checksum FROM schema_migrations WHERE subsystem = 'core' AND name = ?",
        )
        .bind(m.name)
        .fetch_optional(pool)
        .await?;
        let checksum = m.checksum();
        match recorded {
            Some((r,)) if r == checksum => continue,
            Some((r,)) => {
                return Err(MigrationError::Checksum {
                    name: m.name.into(),
                    recorded: r,
                    embedded: checksum,
                })
            }
            None => {}
        }
        let failed = |source| MigrationError::Failed {
            name: m.name.into(),
            source,
        };
        let mut tx = pool.begin().await.map_err(failed)?;
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (subsystem, name, checksum, executed_at) VALUES ('core', ?, ?, strftime('%s','now'))")
            .bind(m.name)
            .bind(&checksum)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        ran.push(m.name);
    }
    Ok(ran)
}
