//! Schema migrations: embedded in the binary, tracked per database, applied under a lock.
//!
//! Each backend has its own ordered list (`migrations/<backend>/NNN_name.sql`). A file may end
//! with a teardown part after a line `-- teardown`: `up` runs the part before it (the schema
//! additions old nodes can live with), `finish` runs the part after it (removing what only old
//! nodes needed). Until `finish`, such a migration is *pending*; one without teardown is
//! *executed* as soon as its `up` ran. `bootstrap` runs both parts at once.
//!
//! The database records every migration that ran in `migration_state` (one row per migration:
//! subsystem, name, SHA-256 of the file, `pending` or `executed`). A recorded checksum that
//! differs from the embedded file is refused, never silently re-run. Writers serialise on a
//! row in `locks` (key `migrations`) whose expiry is the lock timeout: a second node waits for
//! the first, then re-reads the state and finds nothing left to do; a node that died holding
//! the lock loses it when it expires.
//!
//! The runner is the same for SQLite and PostgreSQL: [`db::Db`] holds the few statements that
//! differ between the two, everything else is shared SQL with `$n` placeholders.

pub mod db;
pub mod lock;
mod runner;
mod state;

use sha2::{Digest, Sha256};

pub use db::Db;
pub use runner::{Event, Migrator, Outcome};
pub use state::{SchemaState, Status};

/// Subsystem of the core migrations (plugins would get their own).
pub const CORE: &str = "core";

/// The line separating a migration's up part from its teardown part.
pub const TEARDOWN_MARKER: &str = "-- teardown";

/// One migration: a name and the text of its file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Name, e.g. `000_base`; migrations run in list order.
    pub name: &'static str,
    /// The whole file: up part, then optionally [`TEARDOWN_MARKER`] and the teardown part.
    pub text: &'static str,
}

impl Migration {
    /// A migration named `name` with file contents `text`.
    pub const fn new(name: &'static str, text: &'static str) -> Self {
        Migration { name, text }
    }

    /// The part `up` runs: everything before the teardown marker.
    pub fn up(&self) -> &'static str {
        self.split().0
    }

    /// The part `finish` runs, if the file has one with any SQL in it.
    pub fn teardown(&self) -> Option<&'static str> {
        self.split().1.filter(|sql| has_sql(sql))
    }

    /// Hex SHA-256 of the whole file, as recorded in the database.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn split(&self) -> (&'static str, Option<&'static str>) {
        let text = self.text;
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            if line.trim() == TEARDOWN_MARKER {
                return (&text[..offset], Some(&text[offset + line.len()..]));
            }
            offset += line.len();
        }
        (text, None)
    }
}

/// Whether `sql` holds anything but blank lines and `--` comments.
pub(crate) fn has_sql(sql: &str) -> bool {
    sql.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with("--")
    })
}

/// The SQLite migrations, in order.
pub static SQLITE: &[Migration] = &[
    Migration::new(
        "000_base",
        include_str!("../../../migrations/sqlite/000_base.sql"),
    ),
    Migration::new(
        "001_entities",
        include_str!("../../../migrations/sqlite/001_entities.sql"),
    ),
    Migration::new(
        "002_ratelimiting_metrics",
        include_str!("../../../migrations/sqlite/002_ratelimiting_metrics.sql"),
    ),
];

/// The PostgreSQL migrations, in order.
pub static POSTGRES: &[Migration] = &[
    Migration::new(
        "000_base",
        include_str!("../../../migrations/postgres/000_base.sql"),
    ),
    Migration::new(
        "001_entities",
        include_str!("../../../migrations/postgres/001_entities.sql"),
    ),
    Migration::new(
        "002_ratelimiting_metrics",
        include_str!("../../../migrations/postgres/002_ratelimiting_metrics.sql"),
    ),
];

/// The migration lists a command works with, one per backend. Tests inject other lists to
/// build databases as an earlier version of the binary would have left them.
#[derive(Debug, Clone, Copy)]
pub struct Catalog<'a> {
    /// Migrations for `database = sqlite`.
    pub sqlite: &'a [Migration],
    /// Migrations for `database = postgres`.
    pub postgres: &'a [Migration],
}

impl Catalog<'static> {
    /// The migrations embedded in this binary.
    pub const EMBEDDED: Catalog<'static> = Catalog {
        sqlite: SQLITE,
        postgres: POSTGRES,
    };
}

impl<'a> Catalog<'a> {
    /// The list for the backend behind `db`.
    pub fn for_db(&self, db: &Db) -> &'a [Migration] {
        match db {
            Db::Sqlite { .. } => self.sqlite,
            Db::Postgres { .. } => self.postgres,
        }
    }
}

/// Migration problems.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database rejected a migration's statements; its transaction was rolled back.
    #[error("migration {subsystem}/{name} ({part}) failed, nothing of it was applied: {source}")]
    Failed {
        /// Subsystem, e.g. `core`.
        subsystem: &'static str,
        /// Migration name.
        name: String,
        /// `up` or `teardown`.
        part: &'static str,
        /// Driver error.
        source: sqlx::Error,
    },
    /// A migration's recorded checksum differs from the embedded file.
    #[error(
        "migration {subsystem}/{name} differs from the one that ran on this database \
         (recorded checksum {recorded}, this kong has {embedded}); refusing to continue. \
         Use the kong version that ran it, or start over with 'kong migrations reset'"
    )]
    Checksum {
        /// Subsystem, e.g. `core`.
        subsystem: String,
        /// Migration name.
        name: String,
        /// Checksum in the database.
        recorded: String,
        /// Checksum of the embedded file.
        embedded: String,
    },
    /// The bookkeeping tables could not be read or written.
    #[error("could not read or write the migration state: {0}")]
    State(#[from] sqlx::Error),
    /// Another node held the migrations lock for longer than we were willing to wait.
    #[error(
        "timed out after {seconds} s waiting for the migrations lock held by {owner}: another \
         node is performing database changes (raise --lock-timeout to wait longer)"
    )]
    LockTimeout {
        /// How long we waited.
        seconds: u64,
        /// Who holds the lock.
        owner: String,
    },
    /// The lock expired while we were migrating, so another node may have taken it.
    #[error(
        "lost the migrations lock (it expired after {seconds} s); another node may be \
         migrating now. Run the command again, with a larger --lock-timeout"
    )]
    LockLost {
        /// The lock's time to live.
        seconds: u64,
    },
    /// The database has never been bootstrapped.
    #[error("Database needs bootstrapping; run 'kong migrations bootstrap'")]
    NeedsBootstrap,
    /// Migrations this binary knows have not run yet.
    #[error("New migrations available; run 'kong migrations up' to proceed")]
    NewMigrations,
    /// `up` refused because an earlier `up` was not finished.
    #[error("Database has pending migrations; run 'kong migrations finish'")]
    PendingMigrations,
    /// `reset` on a database without migrations.
    #[error("Database not bootstrapped, nothing to reset")]
    NothingToReset,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_marker_is_all_up() {
        let m = Migration::new("x", "CREATE TABLE a (x INT);\n");
        assert_eq!(m.up(), "CREATE TABLE a (x INT);\n");
        assert_eq!(m.teardown(), None);
    }

    #[test]
    fn the_marker_line_splits_up_and_teardown() {
        let m = Migration::new(
            "x",
            "CREATE TABLE b (x INT);\n  -- teardown  \nDROP TABLE a;\n",
        );
        assert_eq!(m.up(), "CREATE TABLE b (x INT);\n");
        assert_eq!(m.teardown(), Some("DROP TABLE a;\n"));
    }

    #[test]
    fn a_marker_inside_a_line_or_an_empty_teardown_is_no_teardown() {
        let inline = Migration::new("x", "SELECT 1; -- teardown\n");
        assert_eq!(inline.teardown(), None);
        let empty = Migration::new("x", "SELECT 1;\n-- teardown\n-- nothing yet\n\n");
        assert_eq!(empty.up(), "SELECT 1;\n");
        assert_eq!(empty.teardown(), None);
    }

    #[test]
    fn checksums_cover_the_whole_file_and_differ_per_text() {
        let a = Migration::new("x", "SELECT 1;\n-- teardown\nSELECT 2;\n");
        let b = Migration::new("x", "SELECT 1;\n-- teardown\nSELECT 3;\n");
        assert_eq!(a.checksum().len(), 64);
        assert_ne!(a.checksum(), b.checksum());
    }

    #[test]
    fn embedded_lists_are_ordered_and_parallel() {
        for list in [SQLITE, POSTGRES] {
            let names: Vec<_> = list.iter().map(|m| m.name).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "migrations run in name order");
        }
        let sqlite: Vec<_> = SQLITE.iter().map(|m| m.name).collect();
        let postgres: Vec<_> = POSTGRES.iter().map(|m| m.name).collect();
        assert_eq!(sqlite, postgres, "both backends have the same migrations");
    }
}
