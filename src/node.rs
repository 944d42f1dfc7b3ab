//! The running node's identity and live counters, shared by the proxy and the APIs.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::logging::AccessLog;
use crate::snapshot::Snapshot;

/// Connection and request counters for `/status`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections handled (ended) since start.
    pub handled: AtomicU64,
    /// Open connections.
    pub active: AtomicI64,
    /// Requests being answered right now.
    pub writing: AtomicI64,
    /// Requests received since start.
    pub total_requests: AtomicU64,
}

/// Marks one request in flight; dropping it ends the request.
pub struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Counts a new request and marks it in flight until the guard is dropped.
    pub fn request(&self) -> InFlight<'_> {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
        self.writing.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records a connection opening or closing.
    pub fn connection(&self, opened: bool) {
        if opened {
            self.accepted.fetch_add(1, Ordering::Relaxed);
            self.active.fetch_add(1, Ordering::Relaxed);
        } else {
            self.handled.fetch_add(1, Ordering::Relaxed);
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The access logs, swapped as a whole on reload.
pub struct AccessLogs {
    /// Proxy traffic.
    pub proxy: AccessLog,
    /// Admin API traffic.
    pub admin: AccessLog,
    /// Status API traffic.
    pub status: AccessLog,
}

impl AccessLogs {
    /// Opens the logs configured in `config`.
    pub fn open(config: &Config) -> std::io::Result<AccessLogs> {
        Ok(AccessLogs {
            proxy: AccessLog::open(&config.proxy_access_log, config.log_json)?,
            admin: AccessLog::open(&config.admin_access_log, config.log_json)?,
            status: AccessLog::open(&config.status_access_log, config.log_json)?,
        })
    }
}

/// Everything about the node that request handlers may read.
pub struct Node {
    /// Stable node id (configured, else persisted in the prefix).
    pub id: uuid::Uuid,
    /// Host name.
    pub hostname: String,
    /// Process id.
    pub pid: u32,
    /// Start time.
    pub started: SystemTime,
    /// Current configuration (swapped by reload).
    pub config: ArcSwap<Config>,
    /// Current access logs (swapped by reload).
    pub logs: ArcSwap<AccessLogs>,
    /// Live counters.
    pub counters: Counters,
    /// The configuration snapshot the proxy runs from (swapped by the sync loop).
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// DB-less: MD5 of the loaded declarative configuration, all zeros before any (`/status`).
    pub configuration_hash: ArcSwap<String>,
    /// Upstream balancers, their health and the DNS cache: node-wide, surviving snapshot
    /// rebuilds; the proxy picks through them, the Admin API reads and sets health here.
    pub balancers: Arc<crate::balancer::Balancers>,
}

impl Node {
    /// Creates the node state for `config`.
    pub fn new(config: Config, id: uuid::Uuid) -> std::io::Result<Arc<Node>> {
        let logs = AccessLogs::open(&config)?;
        let dns = crate::dns::Dns::new(&config.dns);
        let balancers = crate::balancer::Balancers::new(dns, &config.lua_ssl_trusted_certificate);
        Ok(Arc::new(Node {
            id,
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
            pid: std::process::id(),
            started: SystemTime::now(),
            config: ArcSwap::from_pointee(config),
            logs: ArcSwap::from_pointee(logs),
            counters: Counters::default(),
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::empty())),
            configuration_hash: ArcSwap::from_pointee(crate::declarative::EMPTY_HASH.to_owned()),
            balancers,
        }))
    }
}

/// The node id: `node_id` from the configuration, else the one stored in `<prefix>/node.id`
/// (created on first start), so a node keeps its identity across restarts.
pub fn resolve_id(config: &Config) -> uuid::Uuid {
    if let Some(id) = config.node_id {
        return id;
    }
    let path = config.prefix.join("node.id");
    if let Some(id) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
    {
        return id;
    }
    let id = uuid::Uuid::new_v4();
    if let Err(e) = std::fs::write(&path, format!("{id}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "could not persist node id");
    }
    id
}
