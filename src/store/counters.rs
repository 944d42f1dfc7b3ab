//! Rate-limit counters kept in the datastore: the `cluster` policy of the rate-limiting and
//! response-ratelimiting plugins, one row per (identifier, period, window start, service,
//! route) in the tables of migration `002_ratelimiting_metrics`, as Kong keeps them.
//!
//! SQLite stores window starts and expiry times as Unix seconds; PostgreSQL as Kong does
//! (`timestamp with time zone`, ids as `uuid`). Rows outlive their window by at most the time
//! until the next [`Store::expire_counters`].

use sqlx::{Postgres, QueryBuilder, Row, Sqlite};

use super::{Backend, Store};

/// Which plugin's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsTable {
    /// `ratelimiting_metrics`.
    RateLimiting,
    /// `response_ratelimiting_metrics` (periods named `<limit>_<period>`).
    ResponseRateLimiting,
}

impl MetricsTable {
    fn name(self) -> &'static str {
        match self {
            MetricsTable::RateLimiting => "ratelimiting_metrics",
            MetricsTable::ResponseRateLimiting => "response_ratelimiting_metrics",
        }
    }
}

/// Whose counters: the identifier (consumer, IP, ...) within a plugin's scope.
#[derive(Debug, Clone, Copy)]
pub struct CounterOwner<'a> {
    /// What the plugin limits by: a consumer id, an IP, a header value, ...
    pub identifier: &'a str,
    /// The plugin's service, or the nil UUID.
    pub service_id: &'a str,
    /// The plugin's route, or the nil UUID.
    pub route_id: &'a str,
}

/// One counter of an owner: a period's window.
#[derive(Debug, Clone)]
pub struct CounterWindow<'a> {
    /// `second` … `year` (response-ratelimiting: `<limit>_<period>`).
    pub period: &'a str,
    /// Start of the window, Unix seconds.
    pub start: i64,
    /// When the row may be deleted, Unix seconds.
    pub expires: i64,
}

/// Why a counter could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// A DB-less node has no table to keep counters in.
    #[error("the cluster policy needs a database; this node is DB-less")]
    NoDatabase,
    /// The database failed.
    #[error("counter database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl Store {
    /// The current values of `windows` (0 for a counter without a row), in order.
    pub async fn counter_values(
        &self,
        table: MetricsTable,
        owner: CounterOwner<'_>,
        windows: &[CounterWindow<'_>],
    ) -> Result<Vec<i64>, CounterError> {
        let mut values = vec![0; windows.len()];
        if windows.is_empty() {
            return Ok(values);
        }
        let rows: Vec<(String, i64, i64)> = match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let mut q = QueryBuilder::<Sqlite>::new(format!(
                    "SELECT period, period_date, value FROM {} WHERE identifier = ",
                    table.name()
                ));
                q.push_bind(owner.identifier)
                    .push(" AND service_id = ")
                    .push_bind(owner.service_id)
                    .push(" AND route_id = ")
                    .push_bind(owner.route_id)
                    .push(" AND (");
                for (i, w) in windows.iter().enumerate() {
                    q.push(if i == 0 { "(" } else { " OR (" })
                        .push("period = ")
                        .push_bind(w.period)
                        .push(" AND period_date = ")
                        .push_bind(w.start)
                        .push(")");
                }
                q.push(")");
                q.build()
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<_, sqlx::Error>>()?
            }
            Backend::Postgres(pg) => {
                let mut q = QueryBuilder::<Postgres>::new(format!(
                    "SELECT period, CAST(extract(epoch FROM period_date) AS BIGINT), \
                     CAST(COALESCE(value, 0) AS BIGINT) FROM {} WHERE identifier = ",
                    table.name()
                ));
                q.push_bind(owner.identifier)
                    .push(" AND service_id = CAST(")
                    .push_bind(owner.service_id)
                    .push(" AS uuid) AND route_id = CAST(")
                    .push_bind(owner.route_id)
                    .push(" AS uuid) AND (");
                for (i, w) in windows.iter().enumerate() {
                    q.push(if i == 0 { "(" } else { " OR (" })
                        .push("period = ")
                        .push_bind(w.period)
                        .push(" AND period_date = to_timestamp(")
                        .push_bind(w.start as f64)
                        .push("))");
                }
                q.push(")");
                q.build()
                    .fetch_all(&pg.rw)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<_, sqlx::Error>>()?
            }
            Backend::Memory(_) => return Err(CounterError::NoDatabase),
        };
        for (period, start, value) in rows {
            if let Some(i) = windows
                .iter()
                .position(|w| w.period == period && w.start == start)
            {
                values[i] = value.max(0);
            }
        }
        Ok(values)
    }

    /// Adds `value` to each of `windows`, creating missing rows, in one statement.
    pub async fn counter_add(
        &self,
        table: MetricsTable,
        owner: CounterOwner<'_>,
        windows: &[CounterWindow<'_>],
        value: i64,
    ) -> Result<(), CounterError> {
        if windows.is_empty() {
            return Ok(());
        }
        let head = format!(
            "INSERT INTO {} (identifier, period, period_date, service_id, route_id, value, ttl) ",
            table.name()
        );
        let tail = format!(
            " ON CONFLICT (identifier, period, period_date, service_id, route_id) \
             DO UPDATE SET value = {}.value + excluded.value",
            table.name()
        );
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let mut q = QueryBuilder::<Sqlite>::new(head);
                q.push_values(windows, |mut row, w| {
                    row.push_bind(owner.identifier)
                        .push_bind(w.period)
                        .push_bind(w.start)
                        .push_bind(owner.service_id)
                        .push_bind(owner.route_id)
                        .push_bind(value)
                        .push_bind(w.expires);
                });
                q.push(tail);
                q.build().execute(pool).await?;
            }
            Backend::Postgres(pg) => {
                let mut q = QueryBuilder::<Postgres>::new(head);
                q.push_values(windows, |mut row, w| {
                    row.push_bind(owner.identifier)
                        .push_bind(w.period)
                        .push_unseparated(", to_timestamp(")
                        .push_bind_unseparated(w.start as f64)
                        .push_unseparated("), CAST(")
                        .push_bind_unseparated(owner.service_id)
                        .push_unseparated(" AS uuid), CAST(")
                        .push_bind_unseparated(owner.route_id)
                        .push_unseparated(" AS uuid), ")
                        .push_bind_unseparated(value as i32)
                        .push_unseparated(", to_timestamp(")
                        .push_bind_unseparated(w.expires as f64)
                        .push_unseparated(")");
                });
                q.push(tail);
                q.build().execute(&pg.rw).await?;
            }
            Backend::Memory(_) => return Err(CounterError::NoDatabase),
        }
        Ok(())
    }

    /// Deletes the counters of both tables that expired before `now` (Unix seconds); returns
    /// how many rows went.
    pub async fn expire_counters(&self, now: i64) -> Result<u64, CounterError> {
        let mut gone = 0;
        for table in [
            MetricsTable::RateLimiting,
            MetricsTable::ResponseRateLimiting,
        ] {
            gone += match &self.inner.backend {
                Backend::Sqlite(pool) => {
                    sqlx::query(&format!("DELETE FROM {} WHERE ttl < $1", table.name()))
                        .bind(now)
                        .execute(pool)
                        .await?
                        .rows_affected()
                }
                Backend::Postgres(pg) => sqlx::query(&format!(
                    "DELETE FROM {} WHERE ttl < to_timestamp($1)",
                    table.name()
                ))
                .bind(now as f64)
                .execute(&pg.rw)
                .await?
                .rows_affected(),
                Backend::Memory(_) => return Err(CounterError::NoDatabase),
            };
        }
        Ok(gone)
    }
}
