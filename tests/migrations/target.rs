//! A database for one migrations test: the embedded SQLite file in a temporary prefix, or a
//! fresh database on the test PostgreSQL, with a `kong.conf` pointing at it.
//!
//! Commands run the real binary ([`Target::kong`]) the way an operator would; a few run the
//! same command code in-process with other migration lists ([`Target::kong_with`]), to play an
//! earlier or later version of the binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use kong::store::migrations::{Catalog, Db, Migration, POSTGRES, SQLITE};

use crate::support::http::rt;
use crate::support::kong::bin;
use crate::support::pg::{require_pg, TestPg};

/// One database under test and its configuration.
pub struct Target {
    /// Holds `kong.conf` and the prefix.
    pub dir: tempfile::TempDir,
    /// The server and database name, for PostgreSQL.
    pg: Option<(&'static TestPg, String)>,
}

impl Target {
    /// The embedded SQLite file in a fresh prefix (not created yet).
    pub fn sqlite() -> Target {
        let t = Target {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        };
        t.write_conf("");
        t
    }

    /// A fresh database on the test PostgreSQL; `None` (test skipped) when there is none.
    pub fn postgres(hint: &str) -> Option<Target> {
        let pg = require_pg()?;
        let database = pg.create_database(hint).expect("create database");
        let t = Target {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some((pg, database)),
        };
        t.write_conf("");
        Some(t)
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Host and port of the PostgreSQL server.
    pub fn pg_server(&self) -> Option<(String, u16)> {
        self.pg.as_ref().map(|(pg, _)| (pg.host.clone(), pg.port))
    }

    /// The `kong.conf` lines selecting this database (without prefix or listeners).
    pub fn database_lines(&self) -> String {
        match &self.pg {
            None => "database = sqlite\n".into(),
            Some((pg, database)) => {
                let mut lines = format!(
                    "database = postgres\npg_host = {}\npg_port = {}\npg_user = {}\npg_database = {database}\n",
                    pg.host, pg.port, pg.user
                );
                if let Some(password) = &pg.password {
                    lines.push_str(&format!("pg_password = {password}\n"));
                }
                lines
            }
        }
    }

    /// Rewrites `kong.conf`: the prefix, this database, then `extra` lines.
    pub fn write_conf(&self, extra: &str) {
        let conf = format!(
            "prefix = {}\n{}{extra}\n",
            self.prefix().display(),
            self.database_lines()
        );
        std::fs::write(self.conf(), conf).expect("write kong.conf");
    }

    /// The `kong.conf` path.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("kong.conf")
    }

    /// The prefix (holds the SQLite file).
    pub fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    /// This binary's migrations for this backend.
    pub fn embedded(&self) -> &'static [Migration] {
        if self.is_postgres() {
            POSTGRES
        } else {
            SQLITE
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("migrations")
            .args(args)
            .arg("-c")
            .arg(self.conf())
            .env_remove("KONG_PREFIX")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `kong migrations ARGS -c kong.conf` and returns its output.
    pub fn kong(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kong runs")
    }

    /// Starts `kong migrations ARGS -c kong.conf` with its output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kong starts")
    }

    /// Runs `kong migrations ARGS` in this process, as a binary with `migrations` would.
    pub fn kong_with(&self, migrations: &[Migration], args: &[&str]) -> anyhow::Result<i32> {
        let conf = self.conf().display().to_string();
        let mut argv = vec!["kong", "migrations"];
        argv.extend_from_slice(args);
        argv.extend(["-c", &conf]);
        let cli = <kong::cli::Cli as clap::Parser>::try_parse_from(argv).expect("valid command");
        let kong::cli::Command::Migrations(args) = cli.command else {
            panic!("not a migrations command");
        };
        let catalog = Catalog {
            sqlite: migrations,
            postgres: migrations,
        };
        kong::cli::migrations::run_with(&args, catalog, &BTreeMap::<String, String>::new())
    }

    /// The resolved configuration.
    pub fn config(&self) -> kong::config::Config {
        let opts = kong::config::LoadOptions {
            conf_path: Some(self.conf()),
            ..Default::default()
        };
        kong::config::load(&opts, &BTreeMap::<String, String>::new())
            .expect("valid kong.conf")
            .config
    }

    /// A connection pool to the database (on the shared test runtime).
    pub fn db(&self) -> Db {
        rt().block_on(Db::connect(&self.config()))
            .expect("database reachable")
            .expect("a database")
    }

    /// Runs one SQL statement and returns its single column, rows joined by newlines.
    pub fn sql(&self, sql: &str) -> String {
        if let Some((pg, database)) = &self.pg {
            return pg.psql(database, sql).expect("psql");
        }
        let db = self.db();
        let Db::Sqlite { pool, .. } = &db else {
            unreachable!("SQLite target")
        };
        let rows = rt()
            .block_on(sqlx::query(sql).fetch_all(pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rt().block_on(db.close());
        rows.iter()
            .map(|row| {
                use sqlx::Row;
                row.try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether table `name` exists (in the connection's schema).
    pub fn has_table(&self, name: &str) -> bool {
        let db = self.db();
        let exists = rt().block_on(db.table_exists(name)).expect("catalog query");
        rt().block_on(db.close());
        exists
    }
}

/// Text of stdout and stderr.
pub fn text(out: &Output) -> String {
    crate::support::kong::text(out)
}
