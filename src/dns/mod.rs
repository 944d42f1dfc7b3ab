//! Name resolution for upstreams: a node-wide cache over `hickory-resolver`, refreshed in the
//! background, so a request never waits for DNS once its name is warm.
//!
//! What Kong's DNS client does, and this one too:
//! - names in the hosts file (`dns_hostsfile`, `/etc/hosts`) and IP literals never hit the
//!   network;
//! - record types are tried in `dns_order` (`LAST` = the type that last worked for that name);
//!   `CNAME` chains are followed by the `A`/`AAAA` lookups themselves;
//! - `SRV` answers give port and weight, only the lowest priority is used, and their targets are
//!   resolved to addresses (weight 0 counts as 1);
//! - TTLs are respected (`dns_valid_ttl` overrides them; a TTL of 0 is refreshed every second);
//!   a name error or empty answer is kept `dns_not_found_ttl` seconds, any other failure
//!   `dns_error_ttl`; an expired answer is served for up to `dns_stale_ttl` more seconds while it
//!   is refreshed, and kept when a refresh fails;
//! - concurrent first lookups of one name share one query unless `dns_no_sync` is on.
//!
//! Every change of an answer bumps a generation that balancers watch to rebuild their layouts.

pub mod hosts;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::config::DnsConfig;

/// TTL given to hosts-file entries and IP literals (Kong: ten years).
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Shortest time between two refreshes of one name (records with TTL 0).
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Names nobody referenced for this long are forgotten.
const IDLE_EVICTION: Duration = Duration::from_secs(300);

/// Record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Services: target, port, weight, priority.
    Srv,
}

impl Kind {
    /// The type's name as Kong shows it (`A`, `AAAA`, `SRV`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
            Kind::Srv => "SRV",
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::A => 1,
            Kind::Aaaa => 2,
            Kind::Srv => 3,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        match c {
            1 => Some(Kind::A),
            2 => Some(Kind::Aaaa),
            3 => Some(Kind::Srv),
            _ => None,
        }
    }
}

/// One address of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The address.
    pub ip: IpAddr,
    /// The address as text.
    pub ip_text: Arc<str>,
    /// The port an SRV record gives (`None`: the caller's).
    pub port: Option<u16>,
    /// Weight (SRV; 1 otherwise).
    pub weight: u32,
    /// The SRV record's target name.
    pub srv_name: Option<Arc<str>>,
}

/// Why a name has no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The name does not exist or has no records of the types tried (Kong answers 503
    /// `name resolution failed`).
    NotFound(String),
    /// The servers could not be asked or failed (Kong answers 500 with the message).
    Failed(String),
}

impl Failure {
    /// Kong's text for it.
    pub fn message(&self) -> &str {
        match self {
            Failure::NotFound(m) | Failure::Failed(m) => m,
        }
    }
}

/// What a name resolved to, and until when.
#[derive(Debug)]
pub struct Answer {
    /// The record type that answered.
    pub kind: Option<Kind>,
    /// Its addresses (empty on failure).
    pub records: Vec<Record>,
    /// The failure, when there are no records.
    pub failure: Option<Failure>,
    /// Refreshed from then on.
    pub expires: Instant,
    /// Not served any more after this.
    pub stale_until: Instant,
    /// Weighted round-robin order over `records`.
    wheel: Vec<u32>,
}

impl Answer {
    fn new(
        kind: Option<Kind>,
        records: Vec<Record>,
        failure: Option<Failure>,
        ttl: Duration,
        stale: Duration,
    ) -> Answer {
        let now = Instant::now();
        let points: Vec<u64> = records.iter().map(|r| u64::from(r.weight.max(1))).collect();
        let wheel = crate::balancer::layout::interleave(&reduce(&points));
        Answer {
            kind,
            records,
            failure,
            expires: now + ttl,
            stale_until: now + ttl + stale,
            wheel,
        }
    }

    /// The record for the `n`th use (weighted round-robin).
    pub fn pick(&self, n: usize) -> Option<&Record> {
        if self.wheel.is_empty() {
            return None;
        }
        self.records.get(self.wheel[n % self.wheel.len()] as usize)
    }

    fn same_records(&self, other: &Answer) -> bool {
        self.kind == other.kind
            && self.records == other.records
            && self.failure.is_some() == other.failure.is_some()
    }
}

/// Weights divided by their GCD (small wheels for SRV weights).
fn reduce(points: &[u64]) -> Vec<u64> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let d = points.iter().fold(0, |d, &p| gcd(d, p)).max(1);
    points.iter().map(|p| p / d).collect()
}

/// One cached name.
#[derive(Debug)]
pub struct Name {
    /// The name, lower case.
    pub name: String,
    answer: ArcSwapOption<Answer>,
    resolving: AtomicBool,
    ready: tokio::sync::Notify,
    last_kind: AtomicU8,
    used: AtomicU64,
    cursor: AtomicUsize,
}

impl Name {
    /// The current answer, if any (possibly stale).
    pub fn current(&self) -> Option<Arc<Answer>> {
        self.answer.load_full()
    }

    /// A counter for per-request round-robin over the records.
    pub fn next(&self) -> usize {
        self.cursor.fetch_add(1, Ordering::Relaxed)
    }
}

/// The node's resolver and cache.
pub struct Dns {
    config: DnsConfig,
    resolver: Option<TokioResolver>,
    hosts: HashMap<String, Vec<IpAddr>>,
    names: Mutex<HashMap<String, Arc<Name>>>,
    changes: tokio::sync::watch::Sender<u64>,
    refresher: OnceLock<()>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").field("config", &self.config).finish()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, FOREVER.as_secs_f64()))
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_secs() -> u64 {
    epoch().elapsed().as_secs()
}

impl Dns {
    /// A resolver for `config`: its name servers, else those of `/etc/resolv.conf`.
    pub fn new(config: &DnsConfig) -> Arc<Dns> {
        let mut opts = ResolverOpts::default();
        let resolver_config = if config.resolvers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok((c, o)) => {
                    opts = o;
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read /etc/resolv.conf; only the hosts file resolves names");
                    None
                }
            }
        } else {
            let mut group = NameServerConfigGroup::new();
            for addr in &config.resolvers {
                group.merge(NameServerConfigGroup::from_ips_clear(
                    &[addr.ip()],
                    addr.port(),
                    true,
                ));
            }
            Some(ResolverConfig::from_parts(None, vec![], group))
        };
        // The cache is ours: hickory's would hide TTLs and stale answers from it.
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        let resolver = resolver_config.map(|c| {
            let mut builder =
                TokioResolver::builder_with_config(c, TokioConnectionProvider::default());
            *builder.options_mut() = opts;
            builder.build()
        });
        let hosts = hosts::read(&config.hostsfile);
        let (changes, _) = tokio::sync::watch::channel(0);
        Arc::new(Dns {
            config: config.clone(),
            resolver,
            hosts,
            names: Mutex::new(HashMap::new()),
            changes,
            refresher: OnceLock::new(),
        })
    }

    /// Watches answer changes (the value is a generation counter).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The cache entry of `name` (created empty when new).
    pub fn name(&self, name: &str) -> Arc<Name> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = names.get(&key) {
            return n.clone();
        }
        if names.len() >= self.config.cache_size.max(1) {
            // Forget the least recently used name nobody else holds.
            if let Some(old) = names
                .iter()
                .filter(|(_, n)| Arc::strong_count(n) == 1)
                .min_by_key(|(_, n)| n.used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            {
                names.remove(&old);
            }
        }
        let n = Arc::new(Name {
            name: key.clone(),
            answer: ArcSwapOption::empty(),
            resolving: AtomicBool::new(false),
            ready: tokio::sync::Notify::new(),
            last_kind: AtomicU8::new(0),
            used: AtomicU64::new(now_secs()),
            cursor: AtomicUsize::new(0),
        });
        names.insert(key, n.clone());
        n
    }

    /// The answer for `name`: the cached one while it may be served (a background task keeps
    /// it fresh), else a lookup now.
    pub async fn answer(self: &Arc<Self>, name: &Arc<Name>) -> Arc<Answer> {
        self.ensure_refresher();
        let now = Instant::now();
        let used = now_secs();
        if name.used.load(Ordering::Relaxed) != used {
            name.used.store(used, Ordering::Relaxed);
        }
        if let Some(a) = name.answer.load_full() {
            if now < a.stale_until {
                return a;
            }
        }
        self.resolve_now(name).await
    }

    /// Resolves `name` now, sharing a query already running for it.
    async fn resolve_now(self: &Arc<Self>, name: &Arc<Name>) -> Arc<Answer> {
        loop {
            let notified = name.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let leader = self.config.no_sync
                || name
                    .resolving
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if leader {
                let answer = self.refresh(name).await;
                if !self.config.no_sync {
                    name.resolving.store(false, Ordering::Release);
                }
                name.ready.notify_waiters();
                return answer;
            }
            notified.await;
            if let Some(a) = name.answer.load_full() {
                if Instant::now() < a.stale_until {
                    return a;
                }
            }
        }
    }

    /// Resolves each name not yet resolved, waiting at most `limit` for all of them (names
    /// still pending keep resolving in the background).
    pub async fn warm(self: &Arc<Self>, names: &[Arc<Name>], limit: Duration) {
        self.ensure_refresher();
        let mut set = tokio::task::JoinSet::new();
        for n in names {
            if n.answer.load().is_none() {
                let dns = self.clone();
                let n = n.clone();
                set.spawn(async move {
                    dns.resolve_now(&n).await;
                });
            }
        }
        if set.is_empty() {
            return;
        }
        let all = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            set.detach_all();
        }
    }

    /// Looks `name` up and stores the result (keeping stale records over a failure).
    async fn refresh(&self, name: &Name) -> Arc<Answer> {
        let fresh = self.lookup(name).await;
        let previous = name.answer.load_full();
        let stored = match (&fresh.failure, &previous) {
            (Some(f), Some(prev))
                if !prev.records.is_empty() && Instant::now() < prev.stale_until =>
            {
                tracing::debug!(name = %name.name, error = f.message(), "DNS refresh failed; serving the stale answer");
                let ttl = match f {
                    Failure::NotFound(_) => secs(self.config.not_found_ttl),
                    Failure::Failed(_) => secs(self.config.error_ttl),
                }
                .max(MIN_REFRESH);
                let mut kept =
                    Answer::new(prev.kind, prev.records.clone(), None, ttl, Duration::ZERO);
                kept.stale_until = prev.stale_until;
                Arc::new(kept)
            }
            _ => Arc::new(fresh),
        };
        let changed = previous.as_ref().is_none_or(|p| !p.same_records(&stored));
        name.answer.store(Some(stored.clone()));
        if changed {
            self.changes.send_modify(|g| *g += 1);
        }
        stored
    }

    /// One lookup of `name` through the hosts file, then the types of `dns_order`.
    async fn lookup(&self, name: &Name) -> Answer {
        let stale = secs(self.config.stale_ttl);
        let host = name.name.as_str();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let kind = if ip.is_ipv4() { Kind::A } else { Kind::Aaaa };
            return Answer::new(
                Some(kind),
                vec![record(ip, None, 1, None)],
                None,
                FOREVER,
                stale,
            );
        }
        if let Some(ips) = self.hosts.get(host) {
            let kind = if ips.iter().all(IpAddr::is_ipv6) {
                Kind::Aaaa
            } else {
                Kind::A
            };
            let records = ips.iter().map(|ip| record(*ip, None, 1, None)).collect();
            return Answer::new(Some(kind), records, None, FOREVER, stale);
        }
        let Some(resolver) = &self.resolver else {
            return Answer::new(
                None,
                Vec::new(),
                Some(Failure::Failed(
                    "dns client error: no name servers configured".into(),
                )),
                secs(self.config.error_ttl),
                Duration::ZERO,
            );
        };
        let mut order: Vec<Kind> = Vec::new();
        for entry in &self.config.order {
            let kind = match entry.as_str() {
                "LAST" => Kind::from_code(name.last_kind.load(Ordering::Relaxed)),
                "SRV" => Some(Kind::Srv),
                "AAAA" => Some(Kind::Aaaa),
                // CNAME chains are followed by the address lookups.
                _ => Some(Kind::A),
            };
            if let Some(k) = kind.filter(|k| !order.contains(k)) {
                order.push(k);
            }
        }
        let mut failure: Option<Failure> = None;
        for kind in order {
            match self.query(resolver, host, kind).await {
                Ok((records, ttl)) if !records.is_empty() => {
                    name.last_kind.store(kind.code(), Ordering::Relaxed);
                    let ttl = match self.config.valid_ttl {
                        Some(v) => secs(v),
                        None => ttl,
                    };
                    return Answer::new(Some(kind), records, None, ttl.max(MIN_REFRESH), stale);
                }
                Ok(_) => {
                    if failure.is_none() {
                        failure = Some(Failure::NotFound(
                            "dns client error: 101 empty record received".into(),
                        ));
                    }
                }
                Err(e) if e.is_nx_domain() => {
                    if !matches!(failure, Some(Failure::Failed(_))) {
                        failure = Some(Failure::NotFound("dns server error: 3 name error".into()));
                    }
                }
                Err(e) if e.is_no_records_found() => {
                    if failure.is_none() {
                        failure = Some(Failure::NotFound(
                            "dns client error: 101 empty record received".into(),
                        ));
                    }
                }
                Err(e) => failure = Some(Failure::Failed(format!("dns client error: {e}"))),
            }
        }
        let failure = failure.unwrap_or_else(|| {
            Failure::NotFound("dns client error: 101 empty record received".into())
        });
        let ttl = match failure {
            Failure::NotFound(_) => secs(self.config.not_found_ttl),
            Failure::Failed(_) => secs(self.config.error_ttl),
        };
        tracing::warn!(
            name = host,
            error = failure.message(),
            "name resolution failed"
        );
        Answer::new(
            None,
            Vec::new(),
            Some(failure),
            ttl.max(MIN_REFRESH),
            Duration::ZERO,
        )
    }

    async fn query(
        &self,
        resolver: &TokioResolver,
        host: &str,
        kind: Kind,
    ) -> Result<(Vec<Record>, Duration), ResolveError> {
        let fqdn = host.to_owned();
        match kind {
            Kind::A => {
                let l = resolver.ipv4_lookup(fqdn).await?;
                let ttl = min_ttl(l.as_lookup());
                Ok((
                    l.iter()
                        .map(|a| record(IpAddr::V4(a.0), None, 1, None))
                        .collect(),
                    ttl,
                ))
            }
            Kind::Aaaa => {
                let l = resolver.ipv6_lookup(fqdn).await?;
                let ttl = min_ttl(l.as_lookup());
                Ok((
                    l.iter()
                        .map(|a| record(IpAddr::V6(a.0), None, 1, None))
                        .collect(),
                    ttl,
                ))
            }
            Kind::Srv => {
                let l = resolver.srv_lookup(fqdn).await?;
                let mut ttl = min_ttl(l.as_lookup());
                let top = l.iter().map(|s| s.priority()).min();
                let mut records = Vec::new();
                for srv in l.iter().filter(|s| Some(s.priority()) == top) {
                    let target = srv.target().to_utf8();
                    let target = target.trim_end_matches('.').to_ascii_lowercase();
                    let port = (srv.port() != 0).then_some(srv.port());
                    // Kong: an SRV weight of 0 is hit minimally, as 1.
                    let weight = u32::from(srv.weight()).max(1);
                    let srv_name: Arc<str> = Arc::from(target.as_str());
                    let ips: Vec<IpAddr> = if let Ok(ip) = target.parse::<IpAddr>() {
                        vec![ip]
                    } else if let Some(ips) = self.hosts.get(&target) {
                        ips.clone()
                    } else {
                        match resolver.ipv4_lookup(target.clone()).await {
                            Ok(a) => {
                                ttl = ttl.min(min_ttl(a.as_lookup()));
                                a.iter().map(|a| IpAddr::V4(a.0)).collect()
                            }
                            Err(e) => {
                                tracing::debug!(target = %target, error = %e, "SRV target did not resolve");
                                Vec::new()
                            }
                        }
                    };
                    for ip in ips {
                        records.push(record(ip, port, weight, Some(srv_name.clone())));
                    }
                }
                records.sort_by_key(|a| (a.ip, a.port));
                Ok((records, ttl))
            }
        }
    }

    /// Starts the background refresh once (inside the runtime).
    fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher.get().is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.refresher.set(()).is_ok() {
            tokio::spawn(refresh_loop(Arc::downgrade(self)));
        }
    }

    fn due(&self) -> Vec<Arc<Name>> {
        let now = Instant::now();
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let idle = now_secs().saturating_sub(IDLE_EVICTION.as_secs());
        names.retain(|_, n| Arc::strong_count(n) > 1 || n.used.load(Ordering::Relaxed) >= idle);
        names
            .values()
            .filter(|n| {
                n.answer.load().as_ref().is_some_and(|a| now >= a.expires)
                    && !n.resolving.load(Ordering::Acquire)
            })
            .cloned()
            .collect()
    }
}

/// Refreshes expiring answers before requests need them, for as long as the cache lives.
async fn refresh_loop(dns: std::sync::Weak<Dns>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(dns) = dns.upgrade() else { return };
        for name in dns.due() {
            if name
                .resolving
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let d = dns.clone();
            tokio::spawn(async move {
                d.refresh(&name).await;
                name.resolving.store(false, Ordering::Release);
                name.ready.notify_waiters();
            });
        }
    }
}

fn min_ttl(l: &hickory_resolver::lookup::Lookup) -> Duration {
    l.record_iter()
        .map(|r| Duration::from_secs(u64::from(r.ttl())))
        .min()
        .unwrap_or(Duration::ZERO)
}

fn record(ip: IpAddr, port: Option<u16>, weight: u32, srv_name: Option<Arc<str>>) -> Record {
    Record {
        ip,
        ip_text: Arc::from(ip.to_string().as_str()),
        port,
        weight,
        srv_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: &std::path::Path) -> DnsConfig {
        DnsConfig {
            resolvers: vec!["127.0.0.1:9".parse().expect("addr")],
            hostsfile: hosts.to_path_buf(),
            ..DnsConfig::default()
        }
    }

    #[tokio::test]
    async fn literals_and_hosts_file_resolve_without_servers() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("hosts");
        std::fs::write(
            &file,
            "127.0.0.7 balancer-test.local alias\n::1 six.local\n",
        )
        .expect("write");
        let dns = Dns::new(&config(&file));
        let a = dns.answer(&dns.name("balancer-test.local")).await;
        assert_eq!(a.kind, Some(Kind::A));
        assert_eq!(a.records[0].ip.to_string(), "127.0.0.7");
        let a = dns.answer(&dns.name("ALIAS")).await;
        assert_eq!(a.records[0].ip.to_string(), "127.0.0.7");
        let a = dns.answer(&dns.name("six.local")).await;
        assert_eq!(a.kind, Some(Kind::Aaaa));
        let a = dns.answer(&dns.name("10.1.2.3")).await;
        assert_eq!(a.records[0].ip.to_string(), "10.1.2.3");
    }

    #[test]
    fn weighted_records_rotate() {
        let records = vec![
            record("10.0.0.1".parse().expect("ip"), Some(1), 10, None),
            record("10.0.0.2".parse().expect("ip"), Some(2), 30, None),
        ];
        let a = Answer::new(
            Some(Kind::Srv),
            records,
            None,
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let picks: Vec<u16> = (0..4)
            .filter_map(|n| a.pick(n))
            .filter_map(|r| r.port)
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 2).count(), 3);
    }
}
