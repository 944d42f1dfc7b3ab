//! `kong start`'s server side: the tokio runtime, listeners, signals, reload and drain.
//!
//! Signals, as Kong's (nginx's) master process understands them:
//! - `SIGHUP`: reload — re-read `<prefix>/.kong_env`, validate, then apply: log level and files,
//!   headers, TLS certificates, and the listener set, `stream_listen` included (unchanged sockets
//!   stay open, new ones are bound, removed ones drain). An invalid configuration is logged and
//!   the old one kept.
//! - `SIGQUIT`: graceful stop — stop accepting, let in-flight requests finish, then exit.
//! - `SIGTERM`, `SIGINT`: fast stop.

pub mod body;
pub mod guard;
pub mod http1;
pub mod listener;
pub mod raw_headers;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::admin::{AdminState, Api, Kind as ApiKind};
use crate::config::{self, Config};
use crate::logging::ErrorLog;
use crate::node::{AccessLogs, Node};
use crate::prefix::Prefix;
use crate::proxy::Proxy;
use crate::store::Store;
use crate::stream::{self, StreamProxy};
use crate::tls;
use listener::Running;

/// Why the node could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Configuration problems.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Prefix problems.
    #[error(transparent)]
    Prefix(#[from] crate::prefix::PrefixError),
    /// A log file could not be opened.
    #[error("could not open log files: {0}")]
    Logs(std::io::Error),
    /// The first configuration snapshot could not be built.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// The datastore could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A DB-less node's declarative configuration is invalid.
    #[error(transparent)]
    Declarative(#[from] crate::declarative::ConfiguredError),
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] listener::BindError),
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The async runtime could not start.
    #[error("could not start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The `plugins` property names a plugin that is not installed.
    #[error(transparent)]
    Plugins(#[from] crate::plugins::RegistryError),
}

/// How the node tells whoever started it that it is ready (or why it failed).
pub trait Readiness: Send {
    /// Called once all listeners are bound and the pid file is written.
    fn ready(&mut self, addresses: &[(&'static str, std::net::SocketAddr)]);
}

/// No notification (foreground runs).
pub struct NoNotify;

impl Readiness for NoNotify {
    fn ready(&mut self, _: &[(&'static str, std::net::SocketAddr)]) {}
}

/// Loads the configuration a node on `prefix` runs with: exactly what `.kong_env` says.
///
/// The environment is not consulted again: `kong start`/`kong reload` already merged it into
/// `.kong_env`, so a later reload is not overridden by the variables of the original start.
pub fn load_prefix_config(prefix: &Path) -> Result<Config, config::ConfigError> {
    let opts = config::LoadOptions {
        base: Some(prefix.join(config::KONG_ENV)),
        no_default_search: true,
        ..Default::default()
    };
    let empty: std::collections::BTreeMap<String, String> = Default::default();
    Ok(config::load(&opts, &empty)?.config)
}

/// Runs the node on `prefix` until it is told to stop.
pub fn run(prefix: &Path, readiness: &mut dyn Readiness) -> Result<(), RuntimeError> {
    let config = load_prefix_config(prefix)?;
    let error_log = ErrorLog::install(&config).map_err(RuntimeError::Logs)?;
    raise_open_files_limit();
    // One worker (`nginx_worker_processes = 1`) runs everything on this thread, as nginx's
    // single worker does: no work stealing, no cross-thread wake-ups.
    let mut builder = match config.worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().thread_name("kong-worker");
    if let Some(n) = config.worker_threads.filter(|n| *n > 1) {
        builder.worker_threads(n);
    }
    let rt = builder.build().map_err(RuntimeError::Runtime)?;
    let result = rt.block_on(serve(config, error_log, readiness));
    if let Err(e) = &result {
        tracing::error!(error = %e, "node stopped on error");
    }
    // Connection tasks still draining after a fast stop are abandoned here.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// Raises the soft limit on open files to the hard limit, as nginx's
/// `worker_rlimit_nofile` lets Kong do: client and upstream connections, kept-alive health-check
/// probes (one per target) and log files all count against it, and a 1,024 soft limit is a
/// common default.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "open files limit raised"),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open files limit")
            }
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open files limit"),
    }
}

type Key = (&'static str, String);

struct Listeners {
    running: HashMap<Key, Running>,
    /// `stream_listen` listeners, keyed by address (and ` udp` for UDP sockets).
    streams: HashMap<Key, stream::Running>,
}

/// What the running node holds on to.
struct Server {
    node: Arc<Node>,
    proxy: Arc<Proxy>,
    stream: Arc<StreamProxy>,
    admin: Arc<Api>,
    status: Arc<Api>,
    listeners: Listeners,
    /// The configuration sync loop, stopped before the node exits.
    sync: crate::snapshot::Sync,
    /// Listeners removed by reloads, still finishing their requests; `kong quit` waits for them.
    draining: tokio::task::JoinSet<()>,
    error_log: ErrorLog,
}

async fn serve(
    config: Config,
    error_log: ErrorLog,
    readiness: &mut dyn Readiness,
) -> Result<(), RuntimeError> {
    let prefix = Prefix::new(&config.prefix);
    // Installed before anything can report readiness: a `kong reload` or `kong stop` that
    // follows `kong start` at once must find the handlers, not the default actions.
    let signals = Signals::install()?;
    let node_id = crate::node::resolve_id(&config);
    let node = Node::new(config.clone(), node_id).map_err(RuntimeError::Logs)?;
    let opened = Store::open(&config).await?;
    // Created once here, so rate-limit counters outlive every configuration rebuild.
    let counters = crate::plugins::bundled::limits::Counters::new(
        (config.database != config::Database::Off).then(|| opened.clone()),
        config.lua_ssl_trusted_certificate.clone(),
    );
    let env = crate::plugins::BuildEnv {
        node_id: node_id.to_string(),
        hostname: node.hostname.clone(),
        metrics: crate::plugins::bundled::prometheus::Metrics::new(),
        dbless: false,
        counters,
    };
    // `GET /metrics` exists where Kong has it: when the prometheus plugin is enabled.
    let metrics = env.metrics.clone();
    let registry = Arc::new(crate::plugins::Registry::from_config(&config, env)?);
    let metrics = registry.kind("prometheus").is_some().then_some(metrics);
    let store = opened
        .with_node_id(&node_id.to_string())
        .with_plugins(registry.clone());
    if config.database == config::Database::Off {
        // Before any listener: an invalid file stops the start, nothing is left running.
        if let Some(applied) = crate::declarative::load_configured(&config, &store).await? {
            tracing::info!(entities = ?applied.summary, hash = %applied.hash, "declarative configuration loaded");
            node.configuration_hash.store(Arc::new(applied.hash));
        }
    }
    // The first snapshot is built before any listener opens: a node never serves without one.
    let settings_registry = registry.clone();
    let mut settings = crate::snapshot::Settings::of(&config, registry);
    settings.balancers = Some(node.balancers.clone());
    let sync = crate::snapshot::spawn_sync(store.clone(), node.snapshot.clone(), settings).await?;
    let state = AdminState {
        registry: settings_registry,
        metrics,
        node: node.clone(),
        store,
        config_lock: Arc::default(),
    };
    let mut server = Server {
        proxy: Proxy::new(node.clone()),
        stream: StreamProxy::new(node.clone()),
        admin: Api::new(state.clone(), ApiKind::Admin),
        status: Api::new(state, ApiKind::Status),
        node,
        listeners: Listeners {
            running: HashMap::new(),
            streams: HashMap::new(),
        },
        draining: tokio::task::JoinSet::new(),
        error_log,
        sync,
    };
    server.apply_listeners(&config, true)?;
    let pid = std::process::id();
    prefix.write_pid(pid)?;
    let listeners = &server.listeners;
    let addresses: Vec<_> = listeners
        .running
        .iter()
        .map(|((kind, _), r)| (*kind, r.local))
        .chain(
            listeners
                .streams
                .iter()
                .map(|((kind, _), r)| (*kind, r.local)),
        )
        .collect();
    tracing::info!(pid, prefix = %config.prefix.display(), "Kong started");
    readiness.ready(&addresses);

    let result = server.signal_loop(&prefix, signals).await;
    // No rebuild may start against a datastore that is closing.
    server.sync.task.abort();
    prefix.remove_pid(pid);
    result
}

/// The signal streams the node reacts to.
struct Signals {
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, RuntimeError> {
        use tokio::signal::unix::{signal, SignalKind};
        let on = |kind| signal(kind).map_err(RuntimeError::Runtime);
        Ok(Signals {
            hup: on(SignalKind::hangup())?,
            quit: on(SignalKind::quit())?,
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
        })
    }
}

impl Server {
    async fn signal_loop(&mut self, prefix: &Prefix, signals: Signals) -> Result<(), RuntimeError> {
        let Signals {
            mut hup,
            mut quit,
            mut term,
            mut int,
        } = signals;
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload(prefix).await,
                _ = quit.recv() => {
                    tracing::info!("graceful shutdown: draining connections");
                    let drain = self.drain_all();
                    tokio::pin!(drain);
                    // A fast stop still wins while draining.
                    tokio::select! {
                        _ = &mut drain => tracing::info!("all connections drained; exiting"),
                        _ = term.recv() => tracing::info!("SIGTERM while draining; exiting now"),
                        _ = int.recv() => tracing::info!("SIGINT while draining; exiting now"),
                    }
                    return Ok(());
                }
                _ = term.recv() => { tracing::info!("SIGTERM: exiting"); return Ok(()); }
                _ = int.recv() => { tracing::info!("SIGINT: exiting"); return Ok(()); }
            }
        }
    }

    fn drain_all(&mut self) -> impl std::future::Future<Output = ()> {
        let all: Vec<Running> = self.listeners.running.drain().map(|(_, r)| r).collect();
        let streams: Vec<stream::Running> =
            self.listeners.streams.drain().map(|(_, r)| r).collect();
        let mut tasks = std::mem::take(&mut self.draining);
        async move {
            for r in all {
                tasks.spawn(r.drain());
            }
            for r in streams {
                tasks.spawn(r.drain());
            }
            while tasks.join_next().await.is_some() {}
        }
    }

    async fn reload(&mut self, prefix: &Prefix) {
        let config = match load_prefix_config(prefix.root()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: invalid configuration; keeping the current one");
                return;
            }
        };
        // Listeners first: they are the part that can fail (a port in use), and a failure
        // must leave the node exactly as it was.
        if let Err(e) = self.apply_listeners(&config, false) {
            tracing::error!(error = %e, "reload refused; keeping the current configuration");
            return;
        }
        if let Err(e) = self.error_log.reload(&config) {
            tracing::error!(error = %e, "reload: could not reopen the error log");
        }
        match AccessLogs::open(&config) {
            Ok(logs) => self.node.logs.store(Arc::new(logs)),
            Err(e) => tracing::error!(error = %e, "reload: could not reopen access logs"),
        }
        self.node.config.store(Arc::new(config));
        tracing::info!("configuration reloaded");
    }

    /// Makes the running listeners match `config`, all or nothing: TLS material is loaded and
    /// new sockets are bound before anything changes; only then are kept listeners updated,
    /// new ones started and removed ones drained.
    fn apply_listeners(&mut self, config: &Config, starting: bool) -> Result<(), RuntimeError> {
        let ssl_dir = config.prefix.join("ssl");
        let mut keep = Vec::new();
        let mut updates = Vec::new();
        let mut fresh = Vec::new();
        for (kind, list) in [
            ("proxy_listen", &config.proxy_listen),
            ("admin_listen", &config.admin_listen),
            ("status_listen", &config.status_listen),
        ] {
            for listen in list {
                let key = (kind, listen.address());
                let tls = match listen.ssl {
                    true => Some(tls_for(
                        config,
                        kind,
                        &ssl_dir,
                        listen.http2,
                        &self.node.snapshot,
                    )?),
                    false => None,
                };
                match self.listeners.running.get(&key) {
                    Some(running) => {
                        if !starting
                            && (running.listen.http2 != listen.http2
                                || running.listen.reuseport != listen.reuseport
                                || running.listen.backlog != listen.backlog)
                        {
                            tracing::warn!(listener = %listen, "changed socket flags take effect at the next start");
                        }
                        updates.push((key.clone(), tls));
                    }
                    None => fresh.push((
                        key.clone(),
                        listen.clone(),
                        listener::bind(listen, kind)?,
                        tls,
                    )),
                }
                keep.push(key);
            }
        }
        // Stream sockets are bound here too, before anything changes.
        let streams = self.plan_streams(config, starting, &ssl_dir)?;

        for (key, tls) in updates {
            if let Some(running) = self.listeners.running.get(&key) {
                running.tls.store(tls);
            }
        }
        for (key, listen, socket, tls) in fresh {
            let started = match key.0 {
                "proxy_listen" => Running::start(socket, listen.clone(), tls, self.proxy.clone()),
                "admin_listen" => Running::start(socket, listen.clone(), tls, self.admin.clone()),
                _ => Running::start(socket, listen.clone(), tls, self.status.clone()),
            };
            match started {
                Ok(r) => {
                    tracing::info!(listener = %listen, kind = key.0, address = %r.local, "listening");
                    self.listeners.running.insert(key, r);
                }
                Err(e) => {
                    tracing::error!(listener = %listen, error = %e, "could not start listener")
                }
            }
        }
        let removed: Vec<Key> = self
            .listeners
            .running
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for key in removed {
            if let Some(r) = self.listeners.running.remove(&key) {
                tracing::info!(listener = %r.listen, "listener removed; draining its connections");
                self.draining.spawn(r.drain());
            }
        }
        self.apply_streams(streams);
        Ok(())
    }

    /// The `stream_listen` part of [`Server::apply_listeners`]: TLS material loaded and new
    /// sockets bound, nothing changed yet.
    fn plan_streams(
        &self,
        config: &Config,
        starting: bool,
        ssl_dir: &Path,
    ) -> Result<StreamPlan, RuntimeError> {
        let mut plan = StreamPlan::default();
        let tls = match config.stream_listen.iter().any(|l| l.ssl) {
            true => Some(stream_tls(config, ssl_dir, &self.node.snapshot)?),
            false => None,
        };
        for listen in &config.stream_listen {
            let key = ("stream_listen", stream_key(listen));
            let tls = tls.clone().filter(|_| listen.ssl);
            match self.listeners.streams.get(&key) {
                Some(running) => {
                    if !starting
                        && (running.listen.reuseport != listen.reuseport
                            || running.listen.backlog != listen.backlog)
                    {
                        tracing::warn!(listener = %listen, "changed socket flags take effect at the next start");
                    }
                    plan.updates.push((key.clone(), tls));
                }
                None => plan
                    .fresh
                    .push((key.clone(), listen.clone(), stream::bind(listen)?, tls)),
            }
            plan.keep.push(key);
        }
        Ok(plan)
    }

    /// Applies a [`StreamPlan`]: TLS swapped on kept listeners (an `ssl` flag added or removed
    /// included), new ones started, removed ones drained.
    fn apply_streams(&mut self, plan: StreamPlan) {
        for (key, tls) in plan.updates {
            if let Some(running) = self.listeners.streams.get(&key) {
                running.tls.store(tls);
            }
        }
        for (key, listen, socket, tls) in plan.fresh {
            match stream::Running::start(socket, listen.clone(), tls, self.stream.clone()) {
                Ok(r) => {
                    tracing::info!(listener = %listen, kind = key.0, address = %r.local, "listening");
                    self.listeners.streams.insert(key, r);
                }
                Err(e) => {
                    tracing::error!(listener = %listen, error = %e, "could not start listener")
                }
            }
        }
        let removed: Vec<Key> = self
            .listeners
            .streams
            .keys()
            .filter(|k| !plan.keep.contains(k))
            .cloned()
            .collect();
        for key in removed {
            if let Some(r) = self.listeners.streams.remove(&key) {
                tracing::info!(listener = %r.listen, "listener removed; draining its connections");
                self.draining.spawn(r.drain());
            }
        }
    }
}

/// What a reload changes among the stream listeners.
#[derive(Default)]
struct StreamPlan {
    keep: Vec<Key>,
    updates: Vec<(Key, Option<Arc<rustls::ServerConfig>>)>,
    fresh: Vec<(
        Key,
        config::Listen,
        stream::Socket,
        Option<Arc<rustls::ServerConfig>>,
    )>,
}

/// A stream listener's identity across reloads: its address, and whether it is UDP (a TCP and
/// a UDP socket may share an address).
fn stream_key(listen: &config::Listen) -> String {
    match listen.udp {
        true => format!("{} udp", listen.address()),
        false => listen.address(),
    }
}

/// The TLS configuration of `ssl` stream listeners: the proxy's (certificate by SNI from the
/// snapshot, else `ssl_cert` or the generated default), without ALPN: stream clients speak
/// whatever protocol they like over TLS.
fn stream_tls(
    config: &Config,
    ssl_dir: &Path,
    snapshot: &Arc<arc_swap::ArcSwap<crate::snapshot::Snapshot>>,
) -> Result<Arc<rustls::ServerConfig>, RuntimeError> {
    let proxy = tls_for(config, "proxy_listen", ssl_dir, false, snapshot)?;
    let mut plain = (*proxy).clone();
    plain.alpn_protocols.clear();
    Ok(Arc::new(plain))
}

/// The TLS configuration of a `kind` listener. Admin and Status listeners serve their one
/// certificate; proxy listeners choose by SNI from the current snapshot, falling back to
/// `ssl_cert` (all of its entries, e.g. RSA and ECDSA) or the generated certificate.
fn tls_for(
    config: &Config,
    kind: &'static str,
    ssl_dir: &Path,
    http2: bool,
    snapshot: &Arc<arc_swap::ArcSwap<crate::snapshot::Snapshot>>,
) -> Result<Arc<rustls::ServerConfig>, RuntimeError> {
    let (certs, keys, prefix, name) = match kind {
        "admin_listen" => (
            &config.admin_ssl_cert,
            &config.admin_ssl_cert_key,
            "admin-",
            "admin",
        ),
        "status_listen" => (
            &config.status_ssl_cert,
            &config.status_ssl_cert_key,
            "status-",
            "status",
        ),
        _ => (&config.ssl_cert, &config.ssl_cert_key, "", "proxy"),
    };
    let mut pairs = tls::load_configured(certs, keys)?;
    if pairs.is_empty() {
        pairs.push(tls::default_cert(ssl_dir, prefix)?);
    }
    if name != "proxy" {
        return Ok(tls::server_config(&pairs[0], http2, name)?);
    }
    let invalid = |reason: String| tls::TlsError::Invalid {
        listener: name,
        reason,
    };
    let default = tls::keys::CertKeys::from_pem(pairs.iter().map(|p| (&*p.cert, &*p.key)))
        .map_err(|e| invalid(e.to_string()))?
        .ok_or_else(|| invalid("no certificate".into()))?;
    let resolver = crate::proxy::tls::SniResolver::new(snapshot.clone(), default);
    Ok(tls::resolver_config(Arc::new(resolver), http2, name)?)
}
