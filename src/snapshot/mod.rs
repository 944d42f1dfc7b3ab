//! The node's configuration snapshot: everything the proxy runs from, rebuilt off the hot path
//! whenever the datastore reports a change, validated, then swapped in atomically.
//!
//! Writers never touch the snapshot: an Admin API write or an import commits to the store, the
//! store announces a [`Change`](crate::store::Change), and [`spawn_sync`]'s loop rebuilds. A
//! burst of changes costs one rebuild (pending announcements are drained first). A rebuild that
//! fails keeps the previous snapshot serving and is logged. Clustering will feed the same loop
//! from other nodes' changes.

use std::collections::HashMap;
pub mod certificates;
pub mod index;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;

use crate::balancer::peers::ServiceRoute;
use crate::balancer::spec::{TargetSpec, UpstreamSpec};
use crate::balancer::Balancers;
use crate::plugins::{Plugins, Registry};
use crate::proxy::upstream::{Keepalive, TlsSources, Upstreams};
use crate::router::{Router, RouterError, StreamRouter};
use crate::store::schema::Doc;
use crate::store::{DbError, Store};
use certificates::Certificates;
use index::{Index, IndexPlan};

/// What the proxy runs from: the compiled router, the upstream clients and the certificates
/// by SNI (plugin chains and balancers join as they arrive), plus an inventory of what it was
/// built from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Routes and services, compiled for matching.
    pub router: Arc<Router>,
    /// Stream (`tcp`, `tls`, `udp`, `tls_passthrough`) routes and their services.
    pub stream: Arc<StreamRouter>,
    /// The `certificates` served on the proxy's TLS listeners, by their `snis`.
    pub certificates: Arc<Certificates>,
    /// Upstream keep-alive settings and each service's TLS profile.
    pub upstreams: Upstreams,
    /// Plugin chains for every route, and the global one.
    pub plugins: Plugins,
    /// How each service (by router index) reaches its upstream: IP, DNS name or balancer.
    pub routes: Arc<Vec<ServiceRoute>>,
    /// Entities looked up while serving (routes, services, consumers, credentials).
    pub index: Index,
    /// Increases by one with every rebuild.
    pub version: u64,
    /// When it was built.
    pub built_at: SystemTime,
    /// Entities per type, in dependency order.
    pub counts: Vec<(&'static str, usize)>,
    /// SHA-256 over the entities it was built from (hex); equal configurations hash equally.
    pub hash: String,
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The store could not be read.
    #[error("could not read the configuration: {0}")]
    Store(#[from] DbError),
    /// The routes could not be compiled.
    #[error("could not build the router: {0}")]
    Router(#[from] RouterError),
}

/// Node settings a snapshot is built with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The enabled plugins.
    pub registry: Arc<Registry>,
    /// Upstream keep-alive (`upstream_keepalive_*`).
    pub keepalive: Keepalive,
    /// CAs trusted for upstreams whose service names none (`lua_ssl_trusted_certificate`).
    pub trusted_certificates: Vec<String>,
    /// The node's balancers (and DNS cache); `None`: a private set (tests).
    pub balancers: Option<Arc<Balancers>>,
}

impl Settings {
    /// The settings in `config`, with the enabled plugins of `registry`.
    pub fn of(config: &crate::config::Config, registry: Arc<Registry>) -> Settings {
        Settings {
            registry,
            keepalive: Keepalive {
                pool_size: config.upstream_keepalive_pool_size as usize,
                max_requests: config.upstream_keepalive_max_requests,
                idle_timeout: config.upstream_keepalive_idle_timeout,
            },
            trusted_certificates: config.lua_ssl_trusted_certificate.clone(),
            balancers: None,
        }
    }
}

impl Snapshot {
    /// The snapshot before any configuration was read.
    pub fn empty() -> Snapshot {
        Snapshot {
            router: Arc::new(Router::empty()),
            stream: Arc::new(StreamRouter::empty()),
            certificates: Arc::new(Certificates::empty()),
            upstreams: Upstreams::new(Keepalive {
                pool_size: 0,
                max_requests: 0,
                idle_timeout: 60,
            }),
            plugins: Plugins::default(),
            routes: Arc::new(Vec::new()),
            index: Index::default(),
            version: 0,
            built_at: SystemTime::now(),
            counts: Vec::new(),
            hash: String::new(),
        }
    }

    /// Builds snapshot number `version` from the store's current content (one consistent read),
    /// reusing what it can of `previous` (compiled regexes).
    pub async fn build(
        store: &Store,
        version: u64,
        settings: &Settings,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut hasher = Sha256::new();
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        let mut routes: Vec<Doc> = Vec::new();
        let mut services: Vec<Doc> = Vec::new();
        let mut client_certificates: HashMap<String, Doc> = HashMap::new();
        let mut ca_certificates: HashMap<String, Doc> = HashMap::new();
        let mut plugin_docs: Vec<Doc> = Vec::new();
        let mut upstream_docs: Vec<Doc> = Vec::new();
        let mut target_docs: Vec<Doc> = Vec::new();
        let plan = IndexPlan::with(settings.registry.lookups());
        let mut index = Index::default();
        let by_id = |docs: Vec<Doc>, into: &mut HashMap<String, Doc>| {
            for doc in docs {
                if let Some(id) = doc.get("id").and_then(|v| v.as_str()) {
                    into.insert(id.to_owned(), doc);
                }
            }
        };
        // Certificates are parsed page by page; only unchanged ones are taken from `previous`.
        let mut certificates = Certificates::builder(previous.map(|p| &*p.certificates));
        // Page by page: memory stays bounded whatever the configuration's size.
        store
            .scan(|name, docs| {
                if counts.last().is_none_or(|(last, _)| *last != name) {
                    hasher.update(name.as_bytes());
                    counts.push((name, 0));
                }
                for doc in &docs {
                    if let Ok(bytes) = serde_json::to_vec(doc) {
                        hasher.update(&bytes);
                    }
                }
                if let Some((_, n)) = counts.last_mut() {
                    *n += docs.len();
                }
                index.add(&plan, name, &docs);
                match name {
                    "plugins" => plugin_docs.extend(docs),
                    "upstreams" => upstream_docs.extend(docs),
                    "targets" => target_docs.extend(docs),
                    "routes" => routes.extend(docs),
                    "services" => services.extend(docs),
                    "certificates" => {
                        certificates.certificates(&docs);
                        by_id(docs, &mut client_certificates);
                    }
                    "ca_certificates" => by_id(docs, &mut ca_certificates),
                    "snis" => certificates.snis(&docs),
                    _ => {}
                }
            })
            .await?;
        // A rebuild reuses the previous router's compiled regexes.
        let router = match previous {
            Some(prev) => prev.router.rebuild(&routes, &services)?,
            None => Router::build(&routes, &services)?,
        };
        let stream = StreamRouter::build(&routes, &services)?;
        drop((routes, services));
        let certificates = Arc::new(certificates.finish());
        let services: Vec<_> = router.services().chain(stream.services()).collect();
        let sources = TlsSources {
            certificates: &client_certificates,
            ca_certificates: &ca_certificates,
            trusted: &settings.trusted_certificates,
        };
        // Kong: a service without a client certificate presents its upstream entity's.
        let upstream_certs: HashMap<String, String> = upstream_docs
            .iter()
            .filter_map(|u| {
                let name = u.get("name")?.as_str()?.to_ascii_lowercase();
                let cert = u.get("client_certificate")?.get("id")?.as_str()?;
                Some((name, cert.to_owned()))
            })
            .collect();
        let patched: Vec<crate::router::ServiceInfo> = services
            .iter()
            .filter(|s| s.client_certificate.is_none())
            .filter_map(|s| {
                let cert = upstream_certs.get(&s.host.to_ascii_lowercase())?;
                let mut s = (*s).clone();
                s.client_certificate = Some(cert.clone());
                Some(s)
            })
            .collect();
        let with_fallback: Vec<&crate::router::ServiceInfo> = services
            .iter()
            .map(|s| patched.iter().find(|p| p.id == s.id).unwrap_or(*s))
            .collect();
        let (upstreams, problems) = Upstreams::build(settings.keepalive, &with_fallback, &sources);
        for problem in problems {
            tracing::error!(error = %problem, "upstream TLS unusable; the service answers 502");
        }
        let balancers = match &settings.balancers {
            Some(b) => b.clone(),
            None => Balancers::new(
                crate::dns::Dns::new(&crate::config::DnsConfig::default()),
                &settings.trusted_certificates,
            ),
        };
        let routes =
            Arc::new(service_routes(&balancers, upstream_docs, target_docs, &services).await);
        let plugins = Plugins::build(
            &plugin_docs,
            &router,
            &settings.registry,
            previous.map(|p| &p.plugins),
        );
        for problem in &plugins.problems {
            tracing::error!(problem = %problem, "plugin left out of the configuration");
        }
        let hash = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Snapshot {
            router: Arc::new(router),
            stream: Arc::new(stream),
            certificates,
            upstreams,
            plugins,
            routes,
            index,
            version,
            built_at: SystemTime::now(),
            counts,
            hash,
        })
    }

    /// How many entities of `entity` it was built from.
    pub fn count(&self, entity: &str) -> usize {
        self.counts
            .iter()
            .find(|(n, _)| *n == entity)
            .map_or(0, |(_, c)| *c)
    }
}

/// Syncs the node's balancers with the upstream and target entities, and decides how each
/// service reaches its upstream (by router index): a balancer when its `host` names an
/// upstream, else its IP, else its name through the DNS cache (warmed here, off the hot path).
async fn service_routes(
    balancers: &Arc<Balancers>,
    upstream_docs: Vec<Doc>,
    target_docs: Vec<Doc>,
    services: &[&crate::router::ServiceInfo],
) -> Vec<ServiceRoute> {
    let mut targets: HashMap<String, Vec<(String, String, TargetSpec)>> = HashMap::new();
    for doc in &target_docs {
        let upstream = doc
            .get("upstream")
            .and_then(|u| u.get("id"))
            .and_then(|v| v.as_str());
        if let (Some(upstream), Some(spec)) = (upstream, TargetSpec::read(doc)) {
            // Kong orders a balancer's targets by creation, then id.
            let created = doc
                .get("created_at")
                .map(|v| format!("{:020.3}", v.as_f64().unwrap_or(0.0)))
                .unwrap_or_default();
            targets
                .entry(upstream.to_owned())
                .or_default()
                .push((created, spec.id.clone(), spec));
        }
    }
    let specs = upstream_docs
        .iter()
        .map(|doc| {
            let spec = UpstreamSpec::read(doc);
            let mut list = targets.remove(&spec.id).unwrap_or_default();
            list.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            (spec, list.into_iter().map(|(_, _, t)| t).collect())
        })
        .collect();
    let by_name = balancers.sync(specs).await;
    let mut names = Vec::new();
    let routes: Vec<ServiceRoute> = services
        .iter()
        .map(|service| {
            let host = service.host.to_ascii_lowercase();
            if let Some(u) = by_name.get(&host) {
                return ServiceRoute::Upstream(u.clone());
            }
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_ok() {
                return ServiceRoute::Ip(Arc::from(bare));
            }
            let name = balancers.dns.name(&host);
            names.push(name.clone());
            ServiceRoute::Name(name)
        })
        .collect();
    balancers
        .dns
        .warm(&names, std::time::Duration::from_secs(3))
        .await;
    routes
}

/// How the sync loop is doing, for `/status` and the log.
#[derive(Debug, Default)]
pub struct SyncStatus {
    /// Rebuilds that failed since start (the previous snapshot kept serving each time).
    pub failed_rebuilds: AtomicU64,
    /// The last failure, cleared by the next successful rebuild.
    pub last_error: Mutex<Option<String>>,
}

/// The running sync loop.
#[derive(Debug)]
pub struct Sync {
    /// The loop's task.
    pub task: tokio::task::JoinHandle<()>,
    /// Its health.
    pub status: Arc<SyncStatus>,
}

/// Builds the first snapshot, then keeps `target` current from the store's changes for the life
/// of the runtime. Fails when the first build fails (a node must not start without one).
pub async fn spawn_sync(
    store: Store,
    target: Arc<ArcSwap<Snapshot>>,
    settings: Settings,
) -> Result<Sync, SnapshotError> {
    // Subscribe before the first build, so a change committed meanwhile is not missed.
    let mut changes = store.subscribe();
    let first = Snapshot::build(&store, target.load().version + 1, &settings, None).await?;
    target.store(Arc::new(first));
    let status = Arc::new(SyncStatus::default());
    let health = status.clone();
    let task = tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
            // Coalesce a burst into one rebuild.
            while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                changes.try_recv()
            {}
            let previous = target.load_full();
            let version = previous.version + 1;
            match Snapshot::build(&store, version, &settings, Some(&previous)).await {
                Ok(next) => {
                    tracing::debug!(version, "configuration snapshot rebuilt");
                    target.store(Arc::new(next));
                    if let Ok(mut last) = health.last_error.lock() {
                        *last = None;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "configuration rebuild failed; the previous configuration keeps serving");
                    if let Ok(mut last) = health.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    health.failed_rebuilds.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    Ok(Sync { task, status })
}
