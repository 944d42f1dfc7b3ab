//! Upstream and target entities read into what the balancer runs with: the algorithm, how a
//! request is hashed, the health-check settings, and each target's name, port and weight.
//!
//! The store has already validated the entities; a field that is missing or of the wrong type
//! here falls back to Kong's default rather than failing the snapshot.

use std::time::Duration;

use http::HeaderName;
use serde_json::Value;

use crate::store::schema::Doc;

/// Kong's `slots` default.
const DEFAULT_SLOTS: u32 = 10_000;

/// How an upstream chooses among its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted round-robin over an interleaved wheel.
    RoundRobin,
    /// A ring of `slots` points hashed from a request value.
    ConsistentHashing,
    /// The fewest requests in flight per unit of weight.
    LeastConnections,
    /// The lowest peak-EWMA of response times per unit of weight.
    Latency,
}

/// What a consistent-hashing upstream hashes (`hash_on` / `hash_fallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// Nothing.
    None,
    /// The consumer's id, else the credential's.
    Consumer,
    /// The client address.
    Ip,
    /// A request header's value.
    Header(HeaderName),
    /// A cookie's value (set on the response when the request has none).
    Cookie(String),
    /// The normalized request path.
    Path,
    /// A query argument (several values: sorted, joined with `,`).
    QueryArg(String),
    /// A capture group of the matched route's regex path (name or number).
    UriCapture(String),
}

/// A set of HTTP statuses (100..=999).
#[derive(Clone, PartialEq, Eq)]
pub struct Statuses([u64; 16]);

impl std::fmt::Debug for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries((0..1000u16).filter(|s| self.contains(*s)))
            .finish()
    }
}

impl Statuses {
    /// The statuses listed.
    pub fn of(list: &[u16]) -> Statuses {
        let mut s = Statuses([0; 16]);
        for &code in list {
            if code < 1000 {
                s.0[usize::from(code / 64)] |= 1 << (code % 64);
            }
        }
        s
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        code < 1000 && self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }

    fn read(v: Option<&Value>, default: &[u16]) -> Statuses {
        match v.and_then(Value::as_array) {
            Some(list) => Statuses::of(
                &list
                    .iter()
                    .filter_map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok()))
                    .collect::<Vec<_>>(),
            ),
            None => Statuses::of(default),
        }
    }
}

/// Consecutive results that change a target's health; 0 disables the transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Successes that make an unhealthy target healthy.
    pub successes: u8,
    /// HTTP failures (an unhealthy status) that make a healthy target unhealthy.
    pub http_failures: u8,
    /// TCP failures (refused, reset, TLS) that make a healthy target unhealthy.
    pub tcp_failures: u8,
    /// Timeouts that make a healthy target unhealthy.
    pub timeouts: u8,
}

/// The protocol of active probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// A plain `GET http_path` over HTTP/1.1.
    Http,
    /// The same over TLS.
    Https,
    /// A TCP connection only.
    Tcp,
    /// gRPC health checks are not probed by this node (logged, treated as off).
    Grpc,
}

/// `healthchecks.active`.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// Probe protocol.
    pub kind: ProbeKind,
    /// Connect, send and receive timeout of a probe.
    pub timeout: Duration,
    /// Probes run at once.
    pub concurrency: usize,
    /// Path probed.
    pub http_path: String,
    /// Server name sent by https probes (else the Host).
    pub https_sni: Option<String>,
    /// Whether https probes verify the certificate.
    pub https_verify_certificate: bool,
    /// Extra probe headers.
    pub headers: Vec<(String, String)>,
    /// Seconds between probes of healthy targets (0: none).
    pub healthy_interval: f64,
    /// Seconds between probes of unhealthy targets (0: none).
    pub unhealthy_interval: f64,
    /// Statuses counted as successes.
    pub healthy_statuses: Statuses,
    /// Statuses counted as HTTP failures.
    pub unhealthy_statuses: Statuses,
    /// Transition thresholds.
    pub limits: Limits,
}

/// `healthchecks.passive`.
#[derive(Debug, Clone, PartialEq)]
pub struct Passive {
    /// Statuses counted as successes.
    pub healthy_statuses: Statuses,
    /// Statuses counted as HTTP failures.
    pub unhealthy_statuses: Statuses,
    /// Transition thresholds.
    pub limits: Limits,
}

/// `healthchecks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    /// Active probes.
    pub active: Active,
    /// Counting real traffic.
    pub passive: Passive,
    /// Percentage of the weight that must be available for the balancer to be healthy.
    pub threshold: f64,
}

impl Checks {
    /// Whether health checking is on (Kong: any active interval or passive unhealthy counter).
    pub fn enabled(&self) -> bool {
        self.active_enabled()
            || self.passive.limits.tcp_failures > 0
            || self.passive.limits.timeouts > 0
            || self.passive.limits.http_failures > 0
    }

    /// Whether active probes run (gRPC probes are not supported: off).
    pub fn active_enabled(&self) -> bool {
        self.active.kind != ProbeKind::Grpc
            && (self.active.healthy_interval > 0.0 || self.active.unhealthy_interval > 0.0)
    }
}

/// An upstream entity as the balancer runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    /// Entity id.
    pub id: String,
    /// Name (the service `host` that selects it).
    pub name: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Primary hash input.
    pub hash_on: HashOn,
    /// Hash input when the primary one is absent.
    pub hash_fallback: HashOn,
    /// `Path` of the cookie set for cookie hashing.
    pub hash_on_cookie_path: String,
    /// Points of the consistent-hashing ring.
    pub slots: u32,
    /// `Host` sent upstream instead of the target's name.
    pub host_header: Option<String>,
    /// SRV targets: the record's target name goes in `Host` instead of the target's name.
    pub use_srv_name: bool,
    /// Health checks.
    pub checks: Checks,
}

/// A target entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Entity id.
    pub id: String,
    /// Host name or IP (IPv6 without brackets).
    pub name: String,
    /// Port.
    pub port: u16,
    /// Weight (0: out of the balancer).
    pub weight: u32,
}

impl TargetSpec {
    /// `host:port` as the entity stores it (IPv6 bracketed).
    pub fn address(&self) -> String {
        if self.name.contains(':') {
            format!("[{}]:{}", self.name, self.port)
        } else {
            format!("{}:{}", self.name, self.port)
        }
    }

    /// Reads a target entity; `None` when its `target` is unusable.
    pub fn read(doc: &Doc) -> Option<TargetSpec> {
        let target = doc.get("target")?.as_str()?;
        let (host, port) = target.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(TargetSpec {
            id: str_field(doc, "id").unwrap_or_default(),
            name: host.to_ascii_lowercase(),
            port,
            weight: u32_field(doc.get("weight")).unwrap_or(100),
        })
    }
}

fn str_field(doc: &Doc, name: &str) -> Option<String> {
    doc.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn u32_field(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

fn u8_field(v: Option<&Value>) -> u8 {
    v.and_then(Value::as_u64)
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(0)
}

fn f64_field(v: Option<&Value>, default: f64) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(default)
}

fn path<'a>(doc: &'a Doc, keys: &[&str]) -> Option<&'a Value> {
    let mut cur = doc.get(keys[0])?;
    for k in &keys[1..] {
        cur = cur.get(k)?;
    }
    Some(cur)
}

fn hash_on(doc: &Doc, primary: bool) -> HashOn {
    let (field, header, query, capture) = if primary {
        (
            "hash_on",
            "hash_on_header",
            "hash_on_query_arg",
            "hash_on_uri_capture",
        )
    } else {
        (
            "hash_fallback",
            "hash_fallback_header",
            "hash_fallback_query_arg",
            "hash_fallback_uri_capture",
        )
    };
    let text = |k: &str| str_field(doc, k).filter(|s| !s.is_empty());
    match doc.get(field).and_then(Value::as_str).unwrap_or("none") {
        "consumer" => HashOn::Consumer,
        "ip" => HashOn::Ip,
        "header" => text(header)
            .and_then(|h| HeaderName::try_from(h.to_ascii_lowercase()).ok())
            .map_or(HashOn::None, HashOn::Header),
        "cookie" => text("hash_on_cookie").map_or(HashOn::None, HashOn::Cookie),
        "path" => HashOn::Path,
        "query_arg" => text(query).map_or(HashOn::None, HashOn::QueryArg),
        "uri_capture" => text(capture).map_or(HashOn::None, HashOn::UriCapture),
        _ => HashOn::None,
    }
}

impl UpstreamSpec {
    /// Reads an upstream entity.
    pub fn read(doc: &Doc) -> UpstreamSpec {
        let algorithm = match doc.get("algorithm").and_then(Value::as_str) {
            Some("consistent-hashing") => Algorithm::ConsistentHashing,
            Some("least-connections") => Algorithm::LeastConnections,
            Some("latency") => Algorithm::Latency,
            _ => Algorithm::RoundRobin,
        };
        let hc = |keys: &[&str]| {
            let mut full = vec!["healthchecks"];
            full.extend_from_slice(keys);
            path(doc, &full)
        };
        let kind = match hc(&["active", "type"]).and_then(Value::as_str) {
            Some("https") => ProbeKind::Https,
            Some("tcp") => ProbeKind::Tcp,
            Some("grpc") | Some("grpcs") => ProbeKind::Grpc,
            _ => ProbeKind::Http,
        };
        let headers = hc(&["active", "headers"])
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .flat_map(|(k, v)| {
                        let values: Vec<String> = match v {
                            Value::Array(a) => a
                                .iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect(),
                            Value::String(s) => vec![s.clone()],
                            _ => Vec::new(),
                        };
                        values.into_iter().map(move |v| (k.clone(), v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let active = Active {
            kind,
            timeout: Duration::from_secs_f64(
                f64_field(hc(&["active", "timeout"]), 1.0).clamp(0.001, 65535.0),
            ),
            concurrency: hc(&["active", "concurrency"])
                .and_then(Value::as_u64)
                .map_or(10, |n| n.clamp(1, 1024) as usize),
            http_path: hc(&["active", "http_path"])
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_owned(),
            https_sni: hc(&["active", "https_sni"])
                .and_then(Value::as_str)
                .map(str::to_owned),
            https_verify_certificate: hc(&["active", "https_verify_certificate"])
                .and_then(Value::as_bool)
                .unwrap_or(true),
            headers,
            healthy_interval: f64_field(hc(&["active", "healthy", "interval"]), 0.0),
            unhealthy_interval: f64_field(hc(&["active", "unhealthy", "interval"]), 0.0),
            healthy_statuses: Statuses::read(
                hc(&["active", "healthy", "http_statuses"]),
                &[200, 302],
            ),
            unhealthy_statuses: Statuses::read(
                hc(&["active", "unhealthy", "http_statuses"]),
                &[429, 404, 500, 501, 502, 503, 504, 505],
            ),
            limits: Limits {
                successes: u8_field(hc(&["active", "healthy", "successes"])),
                http_failures: u8_field(hc(&["active", "unhealthy", "http_failures"])),
                tcp_failures: u8_field(hc(&["active", "unhealthy", "tcp_failures"])),
                timeouts: u8_field(hc(&["active", "unhealthy", "timeouts"])),
            },
        };
        let passive = Passive {
            healthy_statuses: Statuses::read(
                hc(&["passive", "healthy", "http_statuses"]),
                &[
                    200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305,
                    306, 307, 308,
                ],
            ),
            unhealthy_statuses: Statuses::read(
                hc(&["passive", "unhealthy", "http_statuses"]),
                &[429, 500, 503],
            ),
            limits: Limits {
                successes: u8_field(hc(&["passive", "healthy", "successes"])),
                http_failures: u8_field(hc(&["passive", "unhealthy", "http_failures"])),
                tcp_failures: u8_field(hc(&["passive", "unhealthy", "tcp_failures"])),
                timeouts: u8_field(hc(&["passive", "unhealthy", "timeouts"])),
            },
        };
        UpstreamSpec {
            id: str_field(doc, "id").unwrap_or_default(),
            name: str_field(doc, "name")
                .unwrap_or_default()
                .to_ascii_lowercase(),
            algorithm,
            hash_on: hash_on(doc, true),
            hash_fallback: hash_on(doc, false),
            hash_on_cookie_path: str_field(doc, "hash_on_cookie_path")
                .unwrap_or_else(|| "/".to_owned()),
            slots: u32_field(doc.get("slots")).unwrap_or(DEFAULT_SLOTS),
            host_header: str_field(doc, "host_header").filter(|h| !h.is_empty()),
            use_srv_name: doc
                .get("use_srv_name")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            checks: Checks {
                active,
                passive,
                threshold: f64_field(hc(&["threshold"]), 0.0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => Doc::new(),
        }
    }

    #[test]
    fn defaults_leave_health_checks_off() {
        let spec = UpstreamSpec::read(&doc(json!({"id": "u", "name": "Svc"})));
        assert_eq!(spec.name, "svc");
        assert_eq!(spec.algorithm, Algorithm::RoundRobin);
        assert_eq!(spec.slots, 10_000);
        assert!(!spec.checks.enabled());
        assert!(spec.checks.passive.unhealthy_statuses.contains(503));
        assert!(!spec.checks.passive.unhealthy_statuses.contains(502));
        assert!(spec.checks.active.healthy_statuses.contains(302));
    }

    #[test]
    fn hashing_and_checks_are_read() {
        let spec = UpstreamSpec::read(&doc(json!({
            "algorithm": "consistent-hashing",
            "hash_on": "header", "hash_on_header": "X-User",
            "hash_fallback": "cookie", "hash_on_cookie": "c",
            "healthchecks": {"passive": {"unhealthy": {"tcp_failures": 2}},
                             "active": {"type": "tcp", "healthy": {"interval": 0.5, "successes": 1}}}
        })));
        assert_eq!(
            spec.hash_on,
            HashOn::Header(HeaderName::from_static("x-user"))
        );
        assert_eq!(spec.hash_fallback, HashOn::Cookie("c".into()));
        assert!(spec.checks.enabled());
        assert!(spec.checks.active_enabled());
        assert_eq!(spec.checks.passive.limits.tcp_failures, 2);
        assert_eq!(spec.checks.active.kind, ProbeKind::Tcp);
    }

    #[test]
    fn targets_split_host_and_port() {
        let t =
            TargetSpec::read(&doc(json!({"target": "[::1]:8080", "weight": 0}))).expect("target");
        assert_eq!((t.name.as_str(), t.port, t.weight), ("::1", 8080, 0));
        assert_eq!(t.address(), "[::1]:8080");
    }
}
