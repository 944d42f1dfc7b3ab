//! The `redis` policy: one multiplexed connection per distinct Redis configuration (host,
//! port, credentials, database, TLS options, timeout), shared by every plugin instance that
//! names it and kept across configuration rebuilds while any instance uses it.
//!
//! The connection is opened on first use: TCP (and TLS with `ssl`, the SNI being
//! `server_name` or the host), then `AUTH` (with `username` when given, only when a password
//! is) and `SELECT database`. Every command is bounded by `timeout`. A connection that fails
//! (I/O error, closed by the server, timeout) is dropped and the next request connects
//! anew; after a failed connect, requests fail at once for [`RETRY_AFTER`] instead of each
//! waiting for a dead server. Callers decide what a failure means (`fault_tolerant`).
//!
//! Counting uses Lua scripts, each one round trip whatever the number of windows:
//! [`RedisConn::incr_usage`] is Kong's `usage` (increment, set the expiry on creation, return
//! the previous value), [`RedisConn::add`] is response-ratelimiting's increment. With a
//! `sync_rate`, rate-limiting counts locally and [`RedisConn::sync_add`] sends the deltas
//! every `sync_rate` seconds, as Kong does.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use foldhash::fast::FixedState;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Script};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::store::schema::Doc;

/// How long requests fail at once after a connection attempt failed.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Kong's `usage`: increments each key (setting its expiry when created) and returns the
/// values before the increment.
static USAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call("incr", key)
  if v == 1 then redis.call("expire", key, ARGV[i]) end
  out[i] = v - 1
end
return out
"#,
    )
});

/// Adds ARGV[1] to each key, setting the expiry ARGV[1 + i] (seconds) on keys it creates.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i, key in ipairs(KEYS) do
  local exists = redis.call("exists", key)
  redis.call("incrby", key, ARGV[1])
  if exists == 0 then redis.call("expire", key, ARGV[i + 1]) end
end
return 0
"#,
    )
});

/// Adds ARGV[2i - 1] to key i, expiring it at ARGV[2i] (Unix seconds) when it creates it.
static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i, key in ipairs(KEYS) do
  local exists = redis.call("exists", key)
  redis.call("incrby", key, ARGV[2 * i - 1])
  if exists == 0 then redis.call("expireat", key, ARGV[2 * i]) end
end
return 0
"#,
    )
});

/// Where and how to reach Redis: a plugin's `redis` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Bound on connecting and on each command.
    pub timeout: Duration,
    /// ACL user (sent only with a password).
    pub username: Option<String>,
    /// Password; none means no `AUTH`.
    pub password: Option<String>,
    /// Database number.
    pub database: i64,
    /// TLS.
    pub ssl: bool,
    /// Verify the server's certificate (against `lua_ssl_trusted_certificate`).
    pub ssl_verify: bool,
    /// SNI and verified name, instead of the host.
    pub server_name: Option<String>,
}

impl RedisConfig {
    /// From a validated `redis` record.
    pub fn from_doc(doc: &Doc) -> Result<RedisConfig, String> {
        let text = |f: &str| {
            doc.get(f)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let int = |f: &str, default: i64| doc.get(f).and_then(Value::as_i64).unwrap_or(default);
        let flag = |f: &str| doc.get(f).and_then(Value::as_bool).unwrap_or(false);
        Ok(RedisConfig {
            host: text("host").ok_or("redis.host is required")?,
            port: u16::try_from(int("port", 6379)).map_err(|_| "redis.port is not a port")?,
            timeout: Duration::from_millis(int("timeout", 2000).max(1) as u64),
            username: text("username"),
            password: doc
                .get("password")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            database: int("database", 0),
            ssl: flag("ssl"),
            ssl_verify: flag("ssl_verify"),
            server_name: text("server_name"),
        })
    }
}

/// Why a Redis call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// The connection could not be made.
    #[error("could not connect to Redis at {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A recent connection attempt failed; not retried yet.
    #[error("Redis at {0} is unavailable (a connection attempt just failed)")]
    Unavailable(String),
    /// The command failed (the connection may be gone).
    #[error("Redis command failed: {0}")]
    Command(String),
    /// No answer in time.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// The node's Redis connections, by configuration.
#[derive(Default)]
pub(super) struct RedisPool {
    conns: Mutex<HashMap<RedisConfig, Weak<RedisConn>>>,
}

impl RedisPool {
    /// The shared connection for `config` (made on first use).
    pub(super) fn get(
        &self,
        config: RedisConfig,
        trusted: &[String],
    ) -> Result<Arc<RedisConn>, String> {
        let mut conns = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conns.retain(|_, c| c.strong_count() > 0);
        if let Some(conn) = conns.get(&config).and_then(Weak::upgrade) {
            return Ok(conn);
        }
        let tls = match config.ssl {
            true => Some(crate::proxy::upstream::side_tls_config(
                trusted,
                config.ssl_verify,
                4,
            )?),
            false => None,
        };
        let conn = Arc::new(RedisConn {
            config: config.clone(),
            tls,
            conn: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            retry_at_ms: AtomicI64::new(0),
            sync: SyncCounters::default(),
        });
        conns.insert(config, Arc::downgrade(&conn));
        Ok(conn)
    }
}

/// One Redis configuration's connection (see the module docs).
pub struct RedisConn {
    config: RedisConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: ArcSwapOption<MultiplexedConnection>,
    connecting: tokio::sync::Mutex<()>,
    retry_at_ms: AtomicI64,
    sync: SyncCounters,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("database", &self.config.database)
            .finish()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl RedisConn {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    /// The live connection, connecting if there is none.
    async fn connection(&self) -> Result<Arc<MultiplexedConnection>, RedisError> {
        if let Some(c) = self.conn.load_full() {
            return Ok(c);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok(c);
        }
        if now_ms() < self.retry_at_ms.load(Ordering::Relaxed) {
            return Err(RedisError::Unavailable(self.addr()));
        }
        match tokio::time::timeout(self.config.timeout, self.connect()).await {
            Ok(Ok(c)) => {
                let c = Arc::new(c);
                self.conn.store(Some(c.clone()));
                Ok(c)
            }
            failed => {
                self.retry_at_ms
                    .store(now_ms() + RETRY_AFTER.as_millis() as i64, Ordering::Relaxed);
                Err(match failed {
                    Ok(Err(e)) => e,
                    _ => RedisError::Connect {
                        addr: self.addr(),
                        reason: format!("timed out after {:?}", self.config.timeout),
                    },
                })
            }
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        let failed = |reason: String| RedisError::Connect {
            addr: self.addr(),
            reason,
        };
        let tcp = TcpStream::connect((self.config.host.as_str(), self.config.port))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut info = RedisConnectionInfo::default()
            .set_db(self.config.database)
            .set_skip_set_lib_name();
        if let Some(password) = &self.config.password {
            info = info.set_password(password);
            if let Some(user) = &self.config.username {
                info = info.set_username(user);
            }
        }
        let options = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout));
        match &self.tls {
            None => {
                let (conn, driver) = MultiplexedConnection::new_with_config(&info, tcp, options)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                tokio::spawn(driver);
                Ok(conn)
            }
            Some(tls) => {
                let name = self
                    .config
                    .server_name
                    .clone()
                    .unwrap_or_else(|| self.config.host.clone());
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| failed(format!("invalid server name: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failed(format!("TLS handshake failed: {e}")))?;
                let (conn, driver) = MultiplexedConnection::new_with_config(&info, stream, options)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                tokio::spawn(driver);
                Ok(conn)
            }
        }
    }

    /// Runs `command` on the connection within the timeout; drops a connection that failed.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        let outcome = tokio::time::timeout(self.config.timeout, command((*conn).clone())).await;
        let drop_conn = || {
            self.conn.compare_and_swap(&Some(conn.clone()), None);
        };
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                    || e.is_timeout()
                {
                    drop_conn();
                }
                Err(RedisError::Command(e.to_string()))
            }
            Err(_) => {
                drop_conn();
                Err(RedisError::Timeout(self.config.timeout))
            }
        }
    }

    /// Kong's `usage` over several windows at once: increments each key (giving it
    /// `expirations[i]` seconds to live when it is new) and returns the previous values.
    pub async fn incr_usage(
        &self,
        keys: &[String],
        expirations: &[i64],
    ) -> Result<Vec<i64>, RedisError> {
        self.run(|mut c| async move {
            let mut call = USAGE.prepare_invoke();
            for k in keys {
                call.key(k);
            }
            for e in expirations {
                call.arg(e);
            }
            call.invoke_async(&mut c).await
        })
        .await
    }

    /// The values of `keys` (0 for missing ones).
    pub async fn values(&self, keys: &[String]) -> Result<Vec<i64>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<i64>> = self
            .run(|mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await })
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Adds `value` to each key, giving new keys `expirations[i]` seconds to live.
    pub async fn add(
        &self,
        keys: &[String],
        value: i64,
        expirations: &[i64],
    ) -> Result<(), RedisError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run(|mut c| async move {
            let mut call = ADD.prepare_invoke();
            for k in keys {
                call.key(k);
            }
            call.arg(value);
            for e in expirations {
                call.arg(e);
            }
            call.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(drop)
    }

    /// `sync_rate` mode, Kong's `usage`: the locally known value of each key (window `i`
    /// expiring at `expire_at[i]`), fetching (and counting, as Kong does) the unknown ones
    /// from Redis in one call.
    pub async fn sync_usage(
        &self,
        keys: &[String],
        expire_at: &[i64],
        expirations: &[i64],
        now: i64,
    ) -> Result<Vec<i64>, RedisError> {
        let mut values = vec![0; keys.len()];
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let known = self.sync.with(key, |map| match map.get_mut(key.as_str()) {
                Some(e) if e.expire_at > now => Some(e.usage + e.delta),
                Some(e) => {
                    *e = SyncEntry {
                        usage: 0,
                        delta: 0,
                        expire_at: expire_at[i],
                    };
                    Some(0)
                }
                None => None,
            });
            match known {
                Some(v) => values[i] = v,
                None => missing.push(i),
            }
        }
        if missing.is_empty() {
            return Ok(values);
        }
        let fetch_keys: Vec<String> = missing.iter().map(|&i| keys[i].clone()).collect();
        let fetch_exp: Vec<i64> = missing.iter().map(|&i| expirations[i]).collect();
        let fetched = self.incr_usage(&fetch_keys, &fetch_exp).await?;
        for (&i, value) in missing.iter().zip(fetched) {
            values[i] = value;
            self.sync.with(&keys[i], |map| {
                // The fetch counted this request in Redis already: Redis holds `value + 1`,
                // and the request's own `sync_add` must not send it again.
                map.insert(
                    keys[i].clone(),
                    SyncEntry {
                        usage: value + 1,
                        delta: -1,
                        expire_at: expire_at[i],
                    },
                )
            });
        }
        Ok(values)
    }

    /// `sync_rate` mode, Kong's `increment`: counts `value` locally for each key and makes
    /// sure the deltas reach Redis within `every`.
    pub fn sync_add(
        self: &Arc<Self>,
        keys: &[String],
        expire_at: &[i64],
        value: i64,
        every: Duration,
    ) {
        for (i, key) in keys.iter().enumerate() {
            self.sync.with(key, |map| {
                map.entry(key.clone())
                    .or_insert(SyncEntry {
                        usage: 0,
                        delta: 0,
                        expire_at: expire_at[i],
                    })
                    .delta += value;
            });
        }
        if self.sync.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.sync.pending.store(false, Ordering::Release);
            return;
        };
        let me = self.clone();
        rt.spawn(async move {
            tokio::time::sleep(every).await;
            me.sync.pending.store(false, Ordering::Release);
            let deltas = me.sync.take();
            let (keys, args): (Vec<String>, Vec<[i64; 2]>) = deltas
                .into_iter()
                .filter(|(_, e)| e.delta != 0)
                .map(|(k, e)| (k, [e.delta, e.expire_at]))
                .unzip();
            if keys.is_empty() {
                return;
            }
            let sent = me
                .run(|mut c| async move {
                    let mut call = SYNC.prepare_invoke();
                    for k in &keys {
                        call.key(k);
                    }
                    for [delta, at] in &args {
                        call.arg(delta).arg(at);
                    }
                    call.invoke_async::<i64>(&mut c).await
                })
                .await;
            if let Err(e) = sent {
                tracing::error!(error = %e, "[rate-limiting] failed to sync counters to Redis");
            }
        });
    }
}

/// `sync_rate` mode's local view of a counter.
#[derive(Debug, Clone, Copy)]
struct SyncEntry {
    /// Last value read from Redis.
    usage: i64,
    /// Counted here since, not sent yet.
    delta: i64,
    /// When the window ends (Unix seconds).
    expire_at: i64,
}

const SYNC_SHARDS: usize = 16;

/// Counters of the `sync_rate` mode, sharded like the local policy's.
struct SyncCounters {
    shards: Box<[Mutex<HashMap<String, SyncEntry>>]>,
    hasher: FixedState,
    pending: AtomicBool,
}

impl Default for SyncCounters {
    fn default() -> Self {
        SyncCounters {
            shards: (0..SYNC_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: FixedState::with_seed(std::hash::RandomState::new().hash_one(0u8)),
            pending: AtomicBool::new(false),
        }
    }
}

impl SyncCounters {
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, SyncEntry>) -> T) -> T {
        let i = self.hasher.hash_one(key) as usize & (SYNC_SHARDS - 1);
        let mut shard = self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut shard)
    }

    /// Empties every shard (Kong clears its local counters after each sync).
    fn take(&self) -> Vec<(String, SyncEntry)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.extend(shard.drain());
        }
        all
    }
}
