//! PostgreSQL: connection pools built from `pg_*` (read-write) and `pg_ro_*` (a read-only
//! replica, when `pg_ro_host` is set).
//!
//! How the properties map onto the pool:
//! - `pg_host`, `pg_port`, `pg_user`, `pg_password`, `pg_database`: where and who;
//! - `pg_schema`: every connection's `search_path` (bootstrap creates the schema if missing);
//! - `pg_ssl` = on: TLS required (`sslmode=require`); with `pg_ssl_verify` = on the server
//!   certificate and host name are verified too (`verify-full`); off: no TLS;
//! - `pg_timeout`: how long to wait for a connection (connect or from the pool);
//! - `pg_max_concurrent_queries`: the pool's size, as each connection runs one query at a
//!   time; when 0 (unlimited), `pg_pool_size` if set, else [`DEFAULT_POOL_SIZE`].
//!
//! A node refuses to serve from a database whose schema is not up to date; see
//! [`PgStore::open`].

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

use super::migrations::{self, db::quote_ident, Db, Migrator};
use super::StoreError;
use crate::config::{Config, PgConfig};

/// Pool size when neither `pg_max_concurrent_queries` nor `pg_pool_size` limits it.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// The application name the server shows in `pg_stat_activity`.
const APPLICATION_NAME: &str = "kong";

/// An open PostgreSQL datastore.
#[derive(Debug, Clone)]
pub struct PgStore {
    /// Reads and writes.
    pub rw: PgPool,
    /// Reads that may lag behind, when a replica is configured.
    pub ro: Option<PgPool>,
}

impl PgStore {
    /// Connects to the configured database (and replica) and checks that its schema is ready:
    /// a database that needs bootstrap, has new migrations or changed migration files is
    /// refused with the command that fixes it. Pending migrations (an `up` whose `finish` has
    /// not run yet) are fine: that is how old and new nodes share a database during upgrades.
    pub async fn open(config: &Config) -> Result<PgStore, StoreError> {
        let rw = connect(&config.pg, "postgres").await?;
        let db = Db::Postgres {
            pool: rw.clone(),
            database: config.pg.database.clone(),
            schema: config.pg.schema.clone(),
        };
        let state = Migrator::new(db, migrations::POSTGRES)
            .prepare_for_start(false, &mut |_| {})
            .await?;
        if !state.pending.is_empty() {
            tracing::warn!(
                pending = ?state.pending,
                "database has pending migrations; run 'kong migrations finish' once every node runs this version"
            );
        }
        if !state.missing.is_empty() {
            tracing::warn!(
                unknown = ?state.missing,
                "database has migrations this version does not know; a newer version ran on it"
            );
        }
        let ro = match &config.pg_ro {
            Some(replica) => Some(connect(replica, "postgres (read-only replica)").await?),
            None => None,
        };
        Ok(PgStore { rw, ro })
    }

    /// The pool for reads: the replica when there is one.
    pub fn reader(&self) -> &PgPool {
        self.ro.as_ref().unwrap_or(&self.rw)
    }
}

/// Opens a pool to `pg` after checking, with one connection, that the server answers. Errors
/// name `host:port/database` and the driver's reason, never the password.
pub async fn connect(pg: &PgConfig, backend: &'static str) -> Result<PgPool, StoreError> {
    let failed = |source| StoreError::Connect {
        backend,
        location: location(pg),
        source,
    };
    let options = connect_options(pg);
    // A pool retries refused connections until its timeout and then reports only that it
    // timed out; one direct connection reports why.
    let timeout = Duration::from_millis(pg.timeout_ms.max(1));
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(probe)) => {
            let _ = probe.close().await;
        }
        Ok(Err(e)) => return Err(failed(e)),
        Err(_) => {
            return Err(failed(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms (pg_timeout)", pg.timeout_ms),
            ))))
        }
    }
    pool_options(pg).connect_with(options).await.map_err(failed)
}

/// `host:port/database`, for messages.
pub fn location(pg: &PgConfig) -> String {
    let host = if pg.host.contains(':') {
        format!("[{}]", pg.host)
    } else {
        pg.host.clone()
    };
    format!("{host}:{}/{}", pg.port, pg.database)
}

/// The connection settings for `pg`.
pub fn connect_options(pg: &PgConfig) -> PgConnectOptions {
    let ssl_mode = match (pg.ssl, pg.ssl_verify) {
        (false, _) => PgSslMode::Disable,
        (true, false) => PgSslMode::Require,
        (true, true) => PgSslMode::VerifyFull,
    };
    // Not `PgConnectOptions::new()`: a `~/.pgpass` must not change what kong.conf says.
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&pg.host)
        .port(pg.port)
        .username(&pg.user)
        .database(&pg.database)
        .ssl_mode(ssl_mode)
        .application_name(APPLICATION_NAME);
    if let Some(password) = &pg.password {
        options = options.password(password);
    }
    if let Some(schema) = &pg.schema {
        options = options.options([("search_path", quote_ident(schema))]);
    }
    options
}

/// The pool settings for `pg`.
pub fn pool_options(pg: &PgConfig) -> PgPoolOptions {
    let size = match (pg.max_concurrent_queries, pg.pool_size) {
        (0, Some(n)) if n > 0 => n,
        (0, _) => DEFAULT_POOL_SIZE,
        (n, _) => n,
    };
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_millis(pg.timeout_ms.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg() -> PgConfig {
        PgConfig {
            host: "db.example".into(),
            port: 6543,
            timeout_ms: 2500,
            user: "gateway".into(),
            password: Some("s3cret".into()),
            database: "gw".into(),
            schema: None,
            ssl: false,
            ssl_verify: false,
            max_concurrent_queries: 0,
            pool_size: None,
        }
    }

    #[test]
    fn options_carry_host_port_user_and_database() {
        let o = connect_options(&pg());
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_username(), "gateway");
        assert_eq!(o.get_database(), Some("gw"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Disable));
    }

    #[test]
    fn ssl_and_verify_map_to_require_and_verify_full() {
        let mut c = pg();
        c.ssl = true;
        assert!(matches!(
            connect_options(&c).get_ssl_mode(),
            PgSslMode::Require
        ));
        c.ssl_verify = true;
        assert!(matches!(
            connect_options(&c).get_ssl_mode(),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn the_schema_becomes_the_search_path() {
        let mut c = pg();
        c.schema = Some("Kong Data".into());
        let options = connect_options(&c);
        let startup = options.get_options().unwrap_or_default();
        assert!(startup.contains("search_path"), "{startup}");
        assert!(startup.contains("Kong"), "{startup}");
    }

    #[test]
    fn pool_size_follows_max_concurrent_queries_then_pool_size() {
        let mut c = pg();
        assert_eq!(pool_options(&c).get_max_connections(), DEFAULT_POOL_SIZE);
        c.pool_size = Some(7);
        assert_eq!(pool_options(&c).get_max_connections(), 7);
        c.max_concurrent_queries = 3;
        assert_eq!(pool_options(&c).get_max_connections(), 3);
        assert_eq!(
            pool_options(&c).get_acquire_timeout(),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn locations_never_include_the_password() {
        let l = location(&pg());
        assert_eq!(l, "db.example:6543/gw");
        let mut v6 = pg();
        v6.host = "::1".into();
        assert_eq!(location(&v6), "[::1]:6543/gw");
    }
}
