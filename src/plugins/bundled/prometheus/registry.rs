//! The node-wide metrics registry the `prometheus` plugin records into and `GET /metrics`
//! reads: one per node, created at start and shared by every configuration snapshot, so counts
//! survive configuration changes.
//!
//! Recording is lock-free: a series (one label set of a metric) is found through a sharded,
//! read-mostly map — a lock-free load of the shard's current map, a hash lookup, a comparison
//! of the label values — and updated with atomics. Only the first request with a new label
//! set takes the shard's insert lock, to publish a copy of the map with the series added.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// `kong_kong_latency_ms` bucket bounds (milliseconds).
pub const KONG_LATENCY_BUCKETS: &[u64] = &[
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
];

/// `kong_upstream_latency_ms` and `kong_request_latency_ms` bucket bounds (milliseconds).
pub const UPSTREAM_LATENCY_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// The logging plugins whose dropped entries are counted.
pub const LOGGERS: &[&str] = &["file-log", "http-log", "syslog", "tcp-log", "udp-log"];

const SHARDS: usize = 16;

/// One label set of a metric: its label values (in the metric's label order) and its data.
#[derive(Debug)]
pub struct Series<S> {
    /// Label values.
    pub labels: Box<[Box<str>]>,
    /// The atomics.
    pub data: S,
}

type SeriesMap<S> = HashMap<u64, Vec<Arc<Series<S>>>, foldhash::fast::FixedState>;

struct Shard<S> {
    map: ArcSwap<SeriesMap<S>>,
    insert: Mutex<()>,
}

/// Every series of one metric, keyed by label values.
pub struct Family<S> {
    shards: Box<[Shard<S>]>,
    hasher: foldhash::fast::FixedState,
}

impl<S> std::fmt::Debug for Family<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("series", &self.len())
            .finish()
    }
}

impl<S> Default for Family<S> {
    fn default() -> Self {
        Family {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: ArcSwap::from_pointee(SeriesMap::default()),
                    insert: Mutex::new(()),
                })
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x6b6f_6e67),
        }
    }
}

fn find<'m, S>(map: &'m SeriesMap<S>, hash: u64, labels: &[&str]) -> Option<&'m Arc<Series<S>>> {
    map.get(&hash)?.iter().find(|s| {
        s.labels.len() == labels.len() && s.labels.iter().zip(labels).all(|(a, b)| &**a == *b)
    })
}

impl<S> Family<S> {
    fn hash(&self, labels: &[&str]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for l in labels {
            h.write(l.as_bytes());
            // A separator no label byte can be (UTF-8 never has 0xff): `a,bc` ≠ `ab,c`.
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Runs `f` on the series with `labels`, creating it with `make` the first time.
    pub fn with<R>(&self, labels: &[&str], make: impl FnOnce() -> S, f: impl FnOnce(&S) -> R) -> R {
        let hash = self.hash(labels);
        let shard = &self.shards[(hash as usize) % SHARDS];
        {
            let map = shard.map.load();
            if let Some(series) = find(&map, hash, labels) {
                return f(&series.data);
            }
        }
        let series = {
            // Rare: the first request with this label set publishes a copy with it added.
            let _guard = shard.insert.lock().unwrap_or_else(|p| p.into_inner());
            let current = shard.map.load_full();
            match find(&current, hash, labels) {
                Some(series) => series.clone(),
                None => {
                    let series = Arc::new(Series {
                        labels: labels.iter().map(|l| Box::from(*l)).collect(),
                        data: make(),
                    });
                    let mut next = (*current).clone();
                    next.entry(hash).or_default().push(series.clone());
                    shard.map.store(Arc::new(next));
                    series
                }
            }
        };
        f(&series.data)
    }

    /// Every series, in no particular order.
    pub fn all(&self) -> Vec<Arc<Series<S>>> {
        self.shards
            .iter()
            .flat_map(|s| {
                let map = s.map.load_full();
                map.values().flatten().cloned().collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many series there are.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.map.load().values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Whether there is no series yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A histogram: a count per bucket (not cumulative; the exposition adds them up), the number
/// of observations and their sum.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, ascending.
    pub bounds: &'static [u64],
    /// Observations per bucket; the last one is above every bound (`+Inf` only).
    pub buckets: Box<[AtomicU64]>,
    /// Observations.
    pub count: AtomicU64,
    /// Sum of the observed values.
    pub sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// Records `value`.
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }
}

/// The three latency histograms of one service/route/workspace.
#[derive(Debug)]
pub struct Latency {
    /// `kong_kong_latency_ms`.
    pub kong: Histogram,
    /// `kong_upstream_latency_ms`.
    pub upstream: Histogram,
    /// `kong_request_latency_ms`.
    pub request: Histogram,
}

impl Latency {
    /// Empty histograms.
    pub fn new() -> Latency {
        Latency {
            kong: Histogram::new(KONG_LATENCY_BUCKETS),
            upstream: Histogram::new(UPSTREAM_LATENCY_BUCKETS),
            request: Histogram::new(UPSTREAM_LATENCY_BUCKETS),
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// `kong_bandwidth_bytes` of one service/route/workspace/consumer, both directions.
#[derive(Debug, Default)]
pub struct Bandwidth {
    /// Bytes received from clients.
    pub ingress: AtomicU64,
    /// Bytes sent to clients.
    pub egress: AtomicU64,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// `kong_http_requests_total`: service, route, code, source, workspace, consumer.
    pub requests: Family<AtomicU64>,
    /// Latency histograms: service, route, workspace.
    pub latency: Family<Latency>,
    /// `kong_bandwidth_bytes`: service, route, workspace, consumer (direction is per field).
    pub bandwidth: Family<Bandwidth>,
    /// `kong_nginx_metric_errors_total`.
    pub errors: AtomicU64,
    /// Live `prometheus` plugin instances: per-request metrics are exposed only while some
    /// instance is configured, as in Kong.
    instances: AtomicUsize,
    /// Entries each logging plugin dropped (queue full, or given up on), by [`LOGGERS`] index.
    log_drops: [AtomicU64; LOGGERS.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::default(),
            bandwidth: Family::default(),
            errors: AtomicU64::new(0),
            instances: AtomicUsize::new(0),
            log_drops: Default::default(),
        }
    }
}

impl Metrics {
    /// A fresh registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Whether some `prometheus` instance is configured.
    pub fn enabled(&self) -> bool {
        self.instances.load(Ordering::Relaxed) > 0
    }

    pub(super) fn instance_built(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn instance_dropped(&self) {
        self.instances.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts `n` entries `plugin` dropped.
    pub fn log_dropped(&self, plugin: &str, n: u64) {
        if let Some(i) = LOGGERS.iter().position(|p| *p == plugin) {
            self.log_drops[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Entries `plugin` dropped so far.
    pub fn log_drops(&self, plugin: &str) -> u64 {
        LOGGERS
            .iter()
            .position(|p| *p == plugin)
            .map_or(0, |i| self.log_drops[i].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_set_is_one_series() {
        let family: Family<AtomicU64> = Family::default();
        for _ in 0..3 {
            family.with(&["s", "r", "200"], AtomicU64::default, |c| {
                c.fetch_add(1, Ordering::Relaxed)
            });
        }
        family.with(&["s", "r", "404"], AtomicU64::default, |c| {
            c.fetch_add(1, Ordering::Relaxed)
        });
        // Same bytes, other split: another series.
        family.with(&["sr", "", "200"], AtomicU64::default, |c| {
            c.fetch_add(1, Ordering::Relaxed)
        });
        assert_eq!(family.len(), 3);
        let all = family.all();
        let ok = all
            .iter()
            .find(|s| &*s.labels[2] == "200" && &*s.labels[0] == "s")
            .expect("series");
        assert_eq!(ok.data.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn histogram_buckets_hold_values_up_to_their_bound() {
        let h = Histogram::new(&[1, 5, 10]);
        for v in [0, 1, 2, 5, 6, 10, 11, 500] {
            h.observe(v);
        }
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, vec![2, 2, 2, 2]);
        assert_eq!(h.count.load(Ordering::Relaxed), 8);
        assert_eq!(h.sum.load(Ordering::Relaxed), 535);
    }
}
