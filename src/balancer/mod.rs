//! Load balancing over upstream entities, node-wide: which address of which target a request
//! goes to, and the health of every address.
//!
//! ```text
//!   store ──snapshot build──▶ Balancers::sync ──▶ Upstream (one per upstream id, node-wide)
//!                                                  ├─ Layout (ArcSwap): addresses arranged
//!                                                  │   for the algorithm, read by requests
//!                                                  ├─ AddrState per address: health,
//!                                                  │   in-flight count, latency EWMA
//!                                                  └─ task: DNS changes → new Layout;
//!                                                      active probes → AddrState
//!   proxy ──▶ Peers (per request): pick, retry with another address, report outcomes
//!   admin ──▶ Node::balancers: health views, manual healthy/unhealthy
//! ```
//!
//! Everything that must outlive a configuration rebuild (health, connection counts, EWMA, the
//! DNS cache) lives here rather than in the snapshot; a rebuild only swaps layouts. Requests
//! read a layout through one atomic load and pick with atomics only.

pub mod active;
pub mod hash;
pub mod health;
mod held;
pub mod layout;
pub mod peers;
pub mod spec;
pub mod status;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

pub use held::Held;

use crate::dns::{Dns, Kind, Name};
use health::AddrState;
use layout::{Address, Layout, TargetView};
use spec::{TargetSpec, UpstreamSpec};

/// How long a configuration rebuild waits for new target names to resolve.
const WARM_LIMIT: Duration = Duration::from_secs(3);

/// An address a target resolved to: IP, port, weight, and the name for `Host`.
type Resolved = (IpAddr, u16, u32, Arc<str>);

/// Identity of an address across rebuilds: its target (name, port) and where it points.
type AddrKey = (String, u16, IpAddr, u16);

/// The node-wide balancer of one upstream entity.
pub struct Upstream {
    /// The upstream's id.
    pub id: String,
    layout: ArcSwap<Layout>,
    source: Mutex<Source>,
    states: Mutex<HashMap<AddrKey, Arc<AddrState>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    dns: Arc<Dns>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("id", &self.id).finish()
    }
}

/// What the layout is built from.
struct Source {
    spec: Arc<UpstreamSpec>,
    targets: Vec<(TargetSpec, Option<Arc<Name>>)>,
}

impl Upstream {
    /// The current layout (one atomic load).
    pub fn layout(&self) -> Arc<Layout> {
        self.layout.load_full()
    }

    /// Builds a new layout from the source and the DNS cache's current answers.
    fn rebuild(&self) {
        let source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let spec = source.spec.clone();
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut keep: HashMap<AddrKey, Arc<AddrState>> = HashMap::new();
        let mut targets = Vec::new();
        let mut addresses = Vec::new();
        for (t, name) in &source.targets {
            let index = targets.len();
            let (dns, dns_error, records): (String, bool, Vec<Resolved>) = match name {
                None => {
                    let ip: Option<IpAddr> = t.name.parse().ok();
                    let kind = if ip.is_some_and(|ip| ip.is_ipv6()) {
                        Kind::Aaaa
                    } else {
                        Kind::A
                    };
                    let hostname: Arc<str> = Arc::from(t.name.as_str());
                    (
                        kind.name().to_owned(),
                        false,
                        ip.map(|ip| (ip, t.port, t.weight, hostname))
                            .into_iter()
                            .collect(),
                    )
                }
                Some(n) => match n.current() {
                    None => ("unresolved".to_owned(), true, Vec::new()),
                    Some(a) => match &a.failure {
                        Some(f) => (f.message().to_owned(), true, Vec::new()),
                        None => {
                            let target_name: Arc<str> = Arc::from(t.name.as_str());
                            let recs = a
                                .records
                                .iter()
                                .map(|r| {
                                    let srv = a.kind == Some(Kind::Srv);
                                    // SRV records carry their own weight; A/AAAA the target's.
                                    let weight = if srv && t.weight > 0 {
                                        r.weight
                                    } else {
                                        t.weight
                                    };
                                    let hostname = match (&r.srv_name, spec.use_srv_name) {
                                        (Some(srv_name), true) => srv_name.clone(),
                                        _ => target_name.clone(),
                                    };
                                    (r.ip, r.port.unwrap_or(t.port), weight, hostname)
                                })
                                .collect();
                            (a.kind.map_or("A", Kind::name).to_owned(), false, recs)
                        }
                    },
                },
            };
            for (ip, port, weight, hostname) in records {
                let key: AddrKey = (t.name.clone(), t.port, ip, port);
                let state = states
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(AddrState::new()));
                keep.insert(key, state.clone());
                addresses.push(Address {
                    ip,
                    ip_text: Arc::from(ip.to_string().as_str()),
                    port,
                    weight,
                    target: index,
                    hostname,
                    state,
                });
            }
            targets.push(TargetView {
                spec: t.clone(),
                dns,
                dns_error,
            });
        }
        // Addresses that left forget their health; those that stay keep it.
        *states = keep;
        self.layout
            .store(Arc::new(Layout::new(spec, targets, addresses)));
    }

    fn spec(&self) -> Arc<UpstreamSpec> {
        self.source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spec
            .clone()
    }

    fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }

    /// Sets the health of `target`'s addresses (all of them, or those at `ip:port`) by hand.
    /// Kong refuses when health checks are off for the upstream.
    pub fn set_health(
        &self,
        target: &TargetSpec,
        address: Option<(IpAddr, u16)>,
        healthy: bool,
    ) -> Result<(), String> {
        let layout = self.layout();
        if !layout.spec.checks.enabled() {
            return Err(format!("no healthchecker found for {}", layout.spec.name));
        }
        for a in &layout.addresses {
            let t = &layout.targets[a.target].spec;
            if t.name != target.name || t.port != target.port {
                continue;
            }
            if address.is_some_and(|(ip, port)| ip != a.ip || port != a.port) {
                continue;
            }
            if a.state.set(healthy) {
                tracing::warn!(
                    upstream = %layout.spec.name, target = %t.address(), address = %format!("{}:{}", a.ip_text, a.port),
                    "[healthchecks] {} forced", if healthy { "healthy" } else { "unhealthy" }
                );
            }
        }
        Ok(())
    }
}

/// Every upstream balancer of the node, and the DNS cache they resolve through.
pub struct Balancers {
    /// The node's DNS cache.
    pub dns: Arc<Dns>,
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
    probe_tls: active::ProbeTls,
}

impl std::fmt::Debug for Balancers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancers").finish_non_exhaustive()
    }
}

impl Balancers {
    /// Balancers resolving through `dns`; https probes trust `trusted` (as
    /// `lua_ssl_trusted_certificate`).
    pub fn new(dns: Arc<Dns>, trusted: &[String]) -> Arc<Balancers> {
        Arc::new(Balancers {
            dns,
            upstreams: Mutex::new(HashMap::new()),
            probe_tls: active::ProbeTls::new(trusted),
        })
    }

    /// The balancer of upstream `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Arc<Upstream>> {
        self.upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Makes the balancers match `upstreams` (each with its targets): new ones are created,
    /// changed ones rebuilt (keeping the health of addresses that stay), removed ones stopped.
    /// Waits a bounded time for new target names to resolve. Returns the balancers by name.
    pub async fn sync(
        self: &Arc<Self>,
        upstreams: Vec<(UpstreamSpec, Vec<TargetSpec>)>,
    ) -> HashMap<String, Arc<Upstream>> {
        let mut by_name = HashMap::new();
        let mut fresh: Vec<(Arc<Upstream>, bool)> = Vec::new();
        let mut unchanged: Vec<Arc<Upstream>> = Vec::new();
        let mut names = Vec::new();
        {
            let mut all = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
            let mut next: HashMap<String, Arc<Upstream>> = HashMap::new();
            for (spec, targets) in upstreams {
                let targets: Vec<(TargetSpec, Option<Arc<Name>>)> = targets
                    .into_iter()
                    .map(|t| {
                        let name = t
                            .name
                            .parse::<IpAddr>()
                            .is_err()
                            .then(|| self.dns.name(&t.name));
                        (t, name)
                    })
                    .collect();
                names.extend(targets.iter().filter_map(|(_, n)| n.clone()));
                let spec = Arc::new(spec);
                let upstream = match all.remove(&spec.id) {
                    Some(existing) => {
                        let (changed, restart) = {
                            let mut source =
                                existing.source.lock().unwrap_or_else(|p| p.into_inner());
                            let restart = source.spec.checks != spec.checks;
                            let same_targets = source.targets.len() == targets.len()
                                && source
                                    .targets
                                    .iter()
                                    .zip(&targets)
                                    .all(|((a, _), (b, _))| a == b);
                            let changed = restart || *source.spec != *spec || !same_targets;
                            *source = Source {
                                spec: spec.clone(),
                                targets,
                            };
                            (changed, restart)
                        };
                        if changed {
                            fresh.push((existing.clone(), restart));
                        } else {
                            // Unchanged: the layout stays (and with it the round-robin cursor).
                            unchanged.push(existing.clone());
                        }
                        existing
                    }
                    None => {
                        let upstream = Arc::new(Upstream {
                            id: spec.id.clone(),
                            layout: ArcSwap::from_pointee(Layout::new(
                                spec.clone(),
                                Vec::new(),
                                Vec::new(),
                            )),
                            source: Mutex::new(Source {
                                spec: spec.clone(),
                                targets,
                            }),
                            states: Mutex::new(HashMap::new()),
                            task: Mutex::new(None),
                            dns: self.dns.clone(),
                        });
                        fresh.push((upstream.clone(), true));
                        upstream
                    }
                };
                by_name.insert(spec.name.clone(), upstream.clone());
                next.insert(spec.id.clone(), upstream);
            }
            // Upstreams that are gone: their checks stop.
            for (_, gone) in all.drain() {
                gone.stop();
            }
            *all = next;
        }
        self.dns.warm(&names, WARM_LIMIT).await;
        let all = fresh
            .into_iter()
            .inspect(|(upstream, _)| upstream.rebuild())
            .chain(unchanged.into_iter().map(|u| (u, false)));
        for (upstream, restart) in all {
            let running = upstream
                .task
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|t| !t.is_finished());
            if restart || !running {
                upstream.stop();
                let task = tokio::spawn(active::run(
                    Arc::downgrade(&upstream),
                    self.probe_tls.clone(),
                ));
                *upstream.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            }
        }
        by_name
    }
}
