//! One upstream's addresses, arranged for its algorithm: built off the hot path (on every
//! configuration or DNS change), then read by any number of requests at once.
//!
//! - round-robin: an interleaved wheel; weights divided by their GCD, each address's turns
//!   spread evenly over the wheel (`a b a c a b a` rather than `a a a a b b c`); a shared atomic
//!   cursor walks it.
//! - consistent-hashing: Kong's continuum: `slots` points (at least 1000), each address placed
//!   on `weight / total × targets × 160` of them by xxHash32 of `"<ip>::<port> <n>"`, so adding
//!   or removing a target moves only the keys of the points it takes or frees. A request value
//!   hashes to a point and takes the nearest address at or below it (a precomputed jump).
//! - least-connections: the lowest `(in flight + 1) / weight`, ties broken by a rotating start.
//! - latency: the lowest response-time EWMA per unit of weight.
//!
//! Unavailable addresses (health) are skipped by walking on; weight 0 is never picked.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::hash::xxh32;
use super::health::AddrState;
use super::spec::{Algorithm, TargetSpec, UpstreamSpec};

/// Largest round-robin wheel; larger weight sums are scaled down proportionally.
const MAX_WHEEL: u64 = 1 << 20;
/// Points per target when every target has the same weight (Kong's `SERVER_POINTS`).
const SERVER_POINTS: f64 = 160.0;
/// Smallest and default continuum (Kong's `MIN_CONTINUUM_SIZE`).
const MIN_CONTINUUM: u32 = 1000;
const EMPTY: u32 = u32::MAX;

/// One address a target resolved to.
#[derive(Debug, Clone)]
pub struct Address {
    /// IP connected to.
    pub ip: IpAddr,
    /// The IP as text (the connection pool's key).
    pub ip_text: Arc<str>,
    /// Port.
    pub port: u16,
    /// Weight (0: never picked).
    pub weight: u32,
    /// Index of its target in [`Layout::targets`].
    pub target: usize,
    /// The name the upstream request's `Host` is built from.
    pub hostname: Arc<str>,
    /// Node-wide health, connections and latency.
    pub state: Arc<AddrState>,
}

/// A target and what its name resolved to.
#[derive(Debug, Clone)]
pub struct TargetView {
    /// The entity.
    pub spec: TargetSpec,
    /// How it resolved: `A`, `AAAA`, `SRV`, or the DNS error.
    pub dns: String,
    /// Whether resolution failed (no addresses because of DNS).
    pub dns_error: bool,
}

#[derive(Debug)]
enum Algo {
    Wheel {
        wheel: Vec<u32>,
        cursor: AtomicUsize,
    },
    Ring {
        points: Vec<u32>,
        below: Vec<u32>,
    },
    LeastConnections {
        cursor: AtomicUsize,
    },
    Latency {
        cursor: AtomicUsize,
        /// `ln(weight)` of each address.
        log_weights: Vec<f64>,
    },
}

/// Why no address could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPeer {
    /// Less weight available than the health threshold asks (or none at all).
    Unhealthy,
    /// Every available address was tried.
    Exhausted,
}

/// The addresses of one upstream, arranged for picking.
#[derive(Debug)]
pub struct Layout {
    /// The upstream it was built for.
    pub spec: Arc<UpstreamSpec>,
    /// Its targets, in the order they were given.
    pub targets: Vec<TargetView>,
    /// Every address of every target.
    pub addresses: Vec<Address>,
    total_weight: u64,
    algo: Algo,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Each index `i` repeated `points[i]` times, the repeats of each spread evenly.
pub fn interleave(points: &[u64]) -> Vec<u32> {
    let mut slots: Vec<(f64, u32)> = Vec::with_capacity(points.iter().sum::<u64>() as usize);
    for (i, &p) in points.iter().enumerate() {
        for k in 0..p {
            slots.push(((k as f64 + 0.5) / p as f64, i as u32));
        }
    }
    slots.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    slots.into_iter().map(|(_, i)| i).collect()
}

/// The wheel for `weights` (0 = absent), reduced by the GCD and capped at [`MAX_WHEEL`].
fn wheel(weights: &[u64]) -> Vec<u32> {
    let divisor = weights.iter().fold(0, |d, &w| gcd(d, w));
    if divisor == 0 {
        return Vec::new();
    }
    let mut points: Vec<u64> = weights.iter().map(|w| w / divisor).collect();
    let total: u64 = points.iter().sum();
    if total > MAX_WHEEL {
        for (p, w) in points.iter_mut().zip(weights) {
            *p = if *w == 0 {
                0
            } else {
                ((*w as f64 * MAX_WHEEL as f64 / total as f64 / divisor as f64).round() as u64)
                    .max(1)
            };
        }
    }
    interleave(&points)
}

/// Kong's continuum over `addresses` (sorted by target name and port, then `ip:port`).
fn ring(addresses: &[Address], targets: &[TargetView], slots: u32) -> (Vec<u32>, Vec<u32>) {
    let size = if slots >= MIN_CONTINUUM {
        slots
    } else {
        MIN_CONTINUUM
    };
    let mut points = vec![EMPTY; size as usize];
    let total: u64 = addresses.iter().map(|a| u64::from(a.weight)).sum();
    if total == 0 {
        return (points, vec![EMPTY; size as usize]);
    }
    let mut order: Vec<usize> = (0..addresses.len()).collect();
    let key = |i: &usize| {
        let a = &addresses[*i];
        let t = &targets[a.target].spec;
        (t.name.clone(), t.port, format!("{}:{}", a.ip_text, a.port))
    };
    order.sort_by_cached_key(key);
    let count = targets.len() as f64;
    'addresses: for i in order {
        let a = &addresses[i];
        let share = f64::from(a.weight) / total as f64;
        let mut entries = (share * count * SERVER_POINTS).floor() as u64;
        if a.weight > 0 && entries == 0 {
            entries = 1;
        }
        let mut n = 1u64;
        while n <= entries {
            let name = format!("{}::{} {}", a.ip_text, a.port, n);
            let at = (xxh32(name.as_bytes()) % size) as usize;
            if points[at] == EMPTY {
                points[at] = i as u32;
            } else {
                // Kong moves the problem forward: one more entry for this address.
                entries += 1;
            }
            n += 1;
            if n > u64::from(size) {
                tracing::error!(
                    "consistent hashing balancer requires more entries to add the number of hosts requested, please increase the wheel size"
                );
                break 'addresses;
            }
        }
    }
    // For every point, the nearest filled point at or below it (wrapping).
    let mut below = vec![EMPTY; points.len()];
    let last_filled = points.iter().rposition(|p| *p != EMPTY);
    if let Some(mut filled) = last_filled {
        for (i, p) in points.iter().enumerate() {
            if *p != EMPTY {
                filled = i;
            }
            below[i] = filled as u32;
        }
    }
    (points, below)
}

/// What one pick may not use again (addresses already tried by this request).
#[derive(Debug, Default, Clone)]
pub struct Tried(Vec<u32>);

impl Tried {
    /// Whether `i` was tried.
    pub fn contains(&self, i: usize) -> bool {
        self.0.contains(&(i as u32))
    }

    /// Marks `i` tried.
    pub fn add(&mut self, i: usize) {
        if !self.contains(i) {
            self.0.push(i as u32);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Layout {
    /// Arranges `addresses` of `targets` for `spec`'s algorithm.
    pub fn new(
        spec: Arc<UpstreamSpec>,
        targets: Vec<TargetView>,
        addresses: Vec<Address>,
    ) -> Layout {
        let total_weight = addresses.iter().map(|a| u64::from(a.weight)).sum();
        let algo = match spec.algorithm {
            Algorithm::RoundRobin => {
                let weights: Vec<u64> = addresses.iter().map(|a| u64::from(a.weight)).collect();
                Algo::Wheel {
                    wheel: wheel(&weights),
                    cursor: AtomicUsize::new(0),
                }
            }
            Algorithm::ConsistentHashing => {
                let (points, below) = ring(&addresses, &targets, spec.slots);
                Algo::Ring { points, below }
            }
            Algorithm::LeastConnections => Algo::LeastConnections {
                cursor: AtomicUsize::new(0),
            },
            Algorithm::Latency => {
                // Slow start: a new address begins at the average of the others.
                let known: Vec<f64> = addresses
                    .iter()
                    .filter(|a| a.state.has_ewma())
                    .map(|a| a.state.ewma())
                    .collect();
                if !known.is_empty() {
                    let avg = known.iter().sum::<f64>() / known.len() as f64;
                    for a in &addresses {
                        a.state.seed_ewma(avg);
                    }
                }
                Algo::Latency {
                    cursor: AtomicUsize::new(0),
                    log_weights: addresses.iter().map(|a| f64::from(a.weight).ln()).collect(),
                }
            }
        };
        Layout {
            spec,
            targets,
            addresses,
            total_weight,
            algo,
        }
    }

    /// Sum of all addresses' weights.
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// Sum of the weights of addresses not marked unhealthy.
    pub fn available_weight(&self) -> u64 {
        self.addresses
            .iter()
            .filter(|a| a.state.available())
            .map(|a| u64::from(a.weight))
            .sum()
    }

    /// Kong's balancer health: more than `threshold` percent of the weight available.
    pub fn healthy(&self) -> bool {
        if self.total_weight == 0 {
            return false;
        }
        let available = self.available_weight() as f64;
        available / self.total_weight as f64 * 100.0 > self.spec.checks.threshold
    }

    fn usable(&self, i: usize, tried: &Tried) -> bool {
        let a = &self.addresses[i];
        a.weight > 0 && a.state.available() && !tried.contains(i)
    }

    /// Picks an address for a request hashing to `hash` (consistent hashing), avoiding those
    /// in `tried` unless nothing else is left.
    pub fn pick(&self, hash: u32, tried: &Tried) -> Result<usize, NoPeer> {
        let now = match self.algo {
            Algo::Latency { .. } => super::health::now_micros(),
            _ => 0,
        };
        self.pick_at(hash, tried, now)
    }

    /// [`Layout::pick`] at `now` ([`super::health::now_micros`]), for a caller that has read
    /// the clock already (only the latency algorithm uses it).
    pub fn pick_at(&self, hash: u32, tried: &Tried, now: u64) -> Result<usize, NoPeer> {
        if self.total_weight == 0 {
            return Err(NoPeer::Unhealthy);
        }
        if self.spec.checks.threshold > 0.0 && !self.healthy() {
            return Err(NoPeer::Unhealthy);
        }
        match self.pick_avoiding(hash, tried, now) {
            Some(i) => Ok(i),
            None if !tried.is_empty() => self
                .pick_avoiding(hash, &Tried::default(), now)
                .ok_or(NoPeer::Exhausted),
            None => Err(NoPeer::Unhealthy),
        }
    }

    fn any_usable(&self, tried: &Tried) -> bool {
        (0..self.addresses.len()).any(|i| self.usable(i, tried))
    }

    fn pick_avoiding(&self, hash: u32, tried: &Tried, now: u64) -> Option<usize> {
        match &self.algo {
            Algo::Wheel { wheel, cursor } => {
                if wheel.is_empty() {
                    return None;
                }
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                let first = wheel[start % wheel.len()] as usize;
                if self.usable(first, tried) {
                    return Some(first);
                }
                if !self.any_usable(tried) {
                    return None;
                }
                (1..wheel.len())
                    .map(|k| wheel[(start + k) % wheel.len()] as usize)
                    .find(|&i| self.usable(i, tried))
            }
            Algo::Ring { points, below } => {
                let len = points.len();
                let at = below[(hash as usize) % len];
                if at == EMPTY {
                    return None;
                }
                let first = points[at as usize] as usize;
                if self.usable(first, tried) {
                    return Some(first);
                }
                if !self.any_usable(tried) {
                    return None;
                }
                // Walk down the continuum from there, as Kong does.
                (1..len)
                    .map(|k| points[(at as usize + len - k) % len])
                    .filter(|p| *p != EMPTY)
                    .map(|p| p as usize)
                    .find(|&i| self.usable(i, tried))
            }
            Algo::LeastConnections { cursor } => {
                let n = self.addresses.len();
                if n == 0 {
                    return None;
                }
                let start = cursor.fetch_add(1, Ordering::Relaxed) % n;
                let mut best: Option<(usize, u64, u64)> = None;
                for i in (start..n).chain(0..start) {
                    if !self.usable(i, tried) {
                        continue;
                    }
                    let a = &self.addresses[i];
                    let load = u64::from(a.state.in_flight()) + 1;
                    let weight = u64::from(a.weight);
                    // load / weight < best_load / best_weight, without dividing.
                    if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                        best = Some((i, load, weight));
                    }
                }
                best.map(|(i, _, _)| i)
            }
            Algo::Latency {
                cursor,
                log_weights,
            } => {
                let n = self.addresses.len();
                if n == 0 {
                    return None;
                }
                let start = cursor.fetch_add(1, Ordering::Relaxed) % n;
                let mut best: Option<(usize, f64)> = None;
                for i in (start..n).chain(0..start) {
                    if !self.usable(i, tried) {
                        continue;
                    }
                    // ln(ewma / weight): the same order as Kong's ewma / weight.
                    let score = self.addresses[i].state.log_ewma_at(now) - log_weights[i];
                    if best.is_none_or(|(_, s)| score < s) {
                        best = Some((i, score));
                    }
                }
                best.map(|(i, _)| i)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::spec::UpstreamSpec;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Arc<UpstreamSpec> {
        let doc = match v {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        };
        Arc::new(UpstreamSpec::read(&doc))
    }

    /// One target per weight, each with one address 10.0.0.<n>:80.
    fn layout(spec: Arc<UpstreamSpec>, weights: &[u32]) -> Layout {
        let mut targets = Vec::new();
        let mut addresses = Vec::new();
        for (n, &w) in weights.iter().enumerate() {
            let ip: IpAddr = format!("10.0.0.{}", n + 1).parse().expect("ip");
            targets.push(TargetView {
                spec: TargetSpec {
                    id: n.to_string(),
                    name: ip.to_string(),
                    port: 80,
                    weight: w,
                },
                dns: "A".into(),
                dns_error: false,
            });
            addresses.push(Address {
                ip,
                ip_text: ip.to_string().into(),
                port: 80,
                weight: w,
                target: n,
                hostname: ip.to_string().into(),
                state: Arc::new(AddrState::new()),
            });
        }
        Layout::new(spec, targets, addresses)
    }

    fn counts(l: &Layout, picks: usize, hash: impl Fn(usize) -> u32) -> Vec<usize> {
        let mut c = vec![0; l.addresses.len()];
        for n in 0..picks {
            if let Ok(i) = l.pick(hash(n), &Tried::default()) {
                c[i] += 1;
            }
        }
        c
    }

    #[test]
    fn round_robin_follows_weights_and_interleaves() {
        let l = layout(spec(json!({})), &[100, 300, 0]);
        assert_eq!(counts(&l, 400, |_| 0), vec![100, 300, 0]);
        // Interleaved: never more than 3 picks of the heavy one in a row.
        let seq: Vec<usize> = (0..8)
            .map(|_| l.pick(0, &Tried::default()).expect("pick"))
            .collect();
        assert!(seq.windows(4).all(|w| w.contains(&0)), "{seq:?}");
    }

    #[test]
    fn unavailable_addresses_are_skipped() {
        let l = layout(spec(json!({})), &[10, 10]);
        l.addresses[0].state.set(false);
        assert_eq!(counts(&l, 10, |_| 0), vec![0, 10]);
        l.addresses[1].state.set(false);
        assert_eq!(l.pick(0, &Tried::default()), Err(NoPeer::Unhealthy));
    }

    #[test]
    fn retries_avoid_tried_addresses() {
        let l = layout(spec(json!({})), &[10, 10, 10]);
        let mut tried = Tried::default();
        for _ in 0..3 {
            let i = l.pick(0, &tried).expect("pick");
            assert!(!tried.contains(i));
            tried.add(i);
        }
        // All tried: picks again among all.
        assert!(l.pick(0, &tried).is_ok());
    }

    #[test]
    fn hashing_is_sticky_and_mostly_stable_when_a_target_joins() {
        let s = spec(json!({"algorithm": "consistent-hashing", "hash_on": "ip"}));
        let three = layout(s.clone(), &[100, 100, 100]);
        let four = layout(s, &[100, 100, 100, 100]);
        let keys: Vec<u32> = (0..2000)
            .map(|k| xxh32(format!("k{k}").as_bytes()))
            .collect();
        let mut moved = 0;
        for &k in &keys {
            let a = three.pick(k, &Tried::default()).expect("pick");
            assert_eq!(a, three.pick(k, &Tried::default()).expect("pick"));
            let b = four.pick(k, &Tried::default()).expect("pick");
            if b != a {
                // Only towards the new target.
                assert_eq!(b, 3);
                moved += 1;
            }
        }
        // About a quarter of the keys move to the new target; none move elsewhere.
        assert!((300..=700).contains(&moved), "{moved} moved");
        // Spread roughly evenly.
        let c = counts(&three, 2000, |n| keys[n]);
        assert!(c.iter().all(|&n| n > 400), "{c:?}");
    }

    #[test]
    fn hashing_falls_to_the_next_point_when_unhealthy() {
        let s = spec(json!({"algorithm": "consistent-hashing", "hash_on": "ip"}));
        let l = layout(s, &[100, 100]);
        let k = xxh32(b"client");
        let first = l.pick(k, &Tried::default()).expect("pick");
        l.addresses[first].state.set(false);
        let second = l.pick(k, &Tried::default()).expect("pick");
        assert_ne!(first, second);
        l.addresses[first].state.set(true);
        assert_eq!(l.pick(k, &Tried::default()), Ok(first));
    }

    #[test]
    fn least_connections_prefers_the_idle_and_heavier() {
        let l = layout(spec(json!({"algorithm": "least-connections"})), &[10, 10]);
        let _busy = l.addresses[0].state.enter();
        assert_eq!(counts(&l, 5, |_| 0), vec![0, 5]);
        let l = layout(spec(json!({"algorithm": "least-connections"})), &[10, 30]);
        assert_eq!(counts(&l, 5, |_| 0), vec![0, 5]);
    }

    #[test]
    fn latency_prefers_the_faster() {
        let l = layout(spec(json!({"algorithm": "latency"})), &[10, 10]);
        l.addresses[0].state.record(0.5);
        l.addresses[1].state.record(0.01);
        assert_eq!(counts(&l, 5, |_| 0), vec![0, 5]);
    }

    #[test]
    fn threshold_makes_the_balancer_unhealthy() {
        let s = spec(json!({"healthchecks": {"threshold": 60}}));
        let l = layout(s, &[10, 10]);
        assert!(l.pick(0, &Tried::default()).is_ok());
        l.addresses[0].state.set(false);
        assert_eq!(l.pick(0, &Tried::default()), Err(NoPeer::Unhealthy));
    }

    #[test]
    fn big_weights_are_capped() {
        let w = wheel(&[
            65535, 65534, 65533, 65531, 65521, 65519, 65497, 65479, 65449, 65447, 65437, 65423,
            65419, 65413, 65407, 65393, 65381,
        ]);
        assert!(w.len() as u64 <= MAX_WHEEL + 17);
    }
}
