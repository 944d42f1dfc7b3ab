//! The Prometheus text exposition (format 0.0.4) of the node's metrics, laid out as Kong's
//! exporter lays it out, so dashboards and alerts written for Kong read it unchanged: metric
//! names prefixed `kong_`, one `# HELP` and `# TYPE` per metric before its first line, every
//! line sorted by its key (histogram buckets by bound, `+Inf` last, then `_count` and `_sum`),
//! bucket bounds printed in their shortest form.
//!
//! Node metrics (connections, requests, timers, datastore, node info, memory) are always
//! present; per-request metrics only while a `prometheus` instance is configured.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::registry::{Histogram, Metrics, Series, LOGGERS};

/// The Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the node reports about itself at scrape time.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    /// The node id.
    pub node_id: String,
    /// The process id.
    pub pid: u32,
    /// Kong version reported by `kong_node_info`.
    pub version: &'static str,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections handled since start.
    pub handled: u64,
    /// Requests since start.
    pub total_requests: u64,
    /// Open connections.
    pub active: u64,
    /// Connections reading a request head.
    pub reading: u64,
    /// Connections writing a response.
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
    /// Whether the datastore answers.
    pub datastore_reachable: bool,
    /// Resident memory of the process, in bytes.
    pub memory_bytes: u64,
    /// Background tasks alive (`kong_nginx_timers{state="running"}`).
    pub timers_running: u64,
    /// Tasks waiting to be scheduled (`kong_nginx_timers{state="pending"}`).
    pub timers_pending: u64,
}

struct Meta {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

// Kong's help texts, word for word.
const CONNECTIONS: Meta = Meta {
    name: "kong_nginx_connections_total",
    kind: "gauge",
    help: "Number of connections by subsystem",
};
const NGINX_REQUESTS: Meta = Meta {
    name: "kong_nginx_requests_total",
    kind: "gauge",
    help: "Number of requests total",
};
const TIMERS: Meta = Meta {
    name: "kong_nginx_timers",
    kind: "gauge",
    help: "Number of nginx timers",
};
const DATASTORE: Meta = Meta {
    name: "kong_datastore_reachable",
    kind: "gauge",
    help: "Datastore reachable from Kong, 0 is unreachable",
};
const NODE_INFO: Meta = Meta {
    name: "kong_node_info",
    kind: "gauge",
    help: "Kong Node metadata information",
};
const WORKER_VMS: Meta = Meta {
    name: "kong_memory_workers_lua_vms_bytes",
    kind: "gauge",
    help: "Allocated bytes in worker Lua VM",
};
const HTTP_REQUESTS: Meta = Meta {
    name: "kong_http_requests_total",
    kind: "counter",
    help: "HTTP status codes per consumer/service/route in Kong",
};
const KONG_LATENCY: Meta = Meta {
    name: "kong_kong_latency_ms",
    kind: "histogram",
    help: "Latency added by Kong and enabled plugins for each service/route in Kong",
};
const UPSTREAM_LATENCY: Meta = Meta {
    name: "kong_upstream_latency_ms",
    kind: "histogram",
    help: "Latency added by upstream response for each service/route in Kong",
};
const REQUEST_LATENCY: Meta = Meta {
    name: "kong_request_latency_ms",
    kind: "histogram",
    help: "Total latency incurred during requests for each service/route in Kong",
};
const BANDWIDTH: Meta = Meta {
    name: "kong_bandwidth_bytes",
    kind: "counter",
    help: "Total bandwidth (ingress/egress) throughput in bytes",
};
const METRIC_ERRORS: Meta = Meta {
    name: "kong_nginx_metric_errors_total",
    kind: "counter",
    help: "Number of nginx-lua-prometheus errors",
};
// Not in Kong: what logging plugins could not deliver.
const LOG_DROPS: Meta = Meta {
    name: "kong_log_entries_dropped_total",
    kind: "counter",
    help: "Log entries dropped by logging plugins (queue full, or undeliverable)",
};

/// One sample: the key it sorts by (bucket bounds zero-padded, as Kong's shared dictionary
/// keys are), the key printed, and the value.
struct Sample {
    sort: String,
    shown: Option<String>,
    value: u64,
    meta: &'static Meta,
}

/// `name{a="x",b="y"}` with label values escaped.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(name.len() + 16 * labels.len());
    out.push_str(name);
    if labels.is_empty() {
        return out;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

struct Samples(Vec<Sample>);

impl Samples {
    fn push(&mut self, meta: &'static Meta, labels: &[(&str, &str)], value: u64) {
        self.0.push(Sample {
            sort: key(meta.name, labels),
            shown: None,
            value,
            meta,
        });
    }

    fn histogram(&mut self, meta: &'static Meta, labels: &[(&str, &str)], h: &Histogram) {
        let count = h.count.load(Ordering::Relaxed);
        if count == 0 {
            return;
        }
        // Kong formats bounds with as many digits as the largest one has, so that keys sort
        // by bound; they are printed in their shortest form.
        let digits = h.bounds.last().map_or(1, |b| b.to_string().len());
        let bucket_name = format!("{}_bucket", meta.name);
        let mut cumulative = 0;
        for (i, bucket) in h.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let (sort_le, shown_le) = match h.bounds.get(i) {
                Some(b) => (format!("{b:0digits$}.0"), b.to_string()),
                None => ("Inf".to_owned(), "+Inf".to_owned()),
            };
            let with_le = |le: &str| {
                let mut all = labels.to_vec();
                all.push(("le", le));
                key(&bucket_name, &all)
            };
            let (sort, shown) = (with_le(&sort_le), with_le(&shown_le));
            self.0.push(Sample {
                sort,
                shown: Some(shown),
                value: cumulative,
                meta,
            });
        }
        for (suffix, value) in [("_count", count), ("_sum", h.sum.load(Ordering::Relaxed))] {
            self.0.push(Sample {
                sort: key(&format!("{}{suffix}", meta.name), labels),
                shown: None,
                value,
                meta,
            });
        }
    }
}

fn labels3<S>(s: &Series<S>) -> [(&'static str, &str); 3] {
    let l = |i: usize| s.labels.get(i).map_or("", |v| &**v);
    [("service", l(0)), ("route", l(1)), ("workspace", l(2))]
}

/// The exposition text.
pub fn render(metrics: &Metrics, node: &NodeStats) -> String {
    let mut samples = Samples(Vec::new());
    let id = node.node_id.as_str();
    for (state, value) in [
        ("accepted", node.accepted),
        ("handled", node.handled),
        ("total", node.total_requests),
        ("active", node.active),
        ("reading", node.reading),
        ("writing", node.writing),
        ("waiting", node.waiting),
    ] {
        samples.push(
            &CONNECTIONS,
            &[("node_id", id), ("subsystem", "http"), ("state", state)],
            value,
        );
    }
    samples.push(
        &NGINX_REQUESTS,
        &[("node_id", id), ("subsystem", "http")],
        node.total_requests,
    );
    samples.push(&TIMERS, &[("state", "running")], node.timers_running);
    samples.push(&TIMERS, &[("state", "pending")], node.timers_pending);
    samples.push(&DATASTORE, &[], u64::from(node.datastore_reachable));
    samples.push(&NODE_INFO, &[("node_id", id), ("version", node.version)], 1);
    let pid = node.pid.to_string();
    samples.push(
        &WORKER_VMS,
        &[("node_id", id), ("pid", &pid), ("kong_subsystem", "http")],
        node.memory_bytes,
    );

    if metrics.enabled() {
        samples.push(&METRIC_ERRORS, &[], metrics.errors.load(Ordering::Relaxed));
        for plugin in LOGGERS {
            samples.push(&LOG_DROPS, &[("plugin", plugin)], metrics.log_drops(plugin));
        }
        for s in metrics.requests.all() {
            let l = |i: usize| s.labels.get(i).map_or("", |v| &**v);
            let labels = [
                ("service", l(0)),
                ("route", l(1)),
                ("code", l(2)),
                ("source", l(3)),
                ("workspace", l(4)),
                ("consumer", l(5)),
            ];
            samples.push(&HTTP_REQUESTS, &labels, s.data.load(Ordering::Relaxed));
        }
        for s in metrics.latency.all() {
            let labels = labels3(&s);
            samples.histogram(&KONG_LATENCY, &labels, &s.data.kong);
            samples.histogram(&UPSTREAM_LATENCY, &labels, &s.data.upstream);
            samples.histogram(&REQUEST_LATENCY, &labels, &s.data.request);
        }
        for s in metrics.bandwidth.all() {
            let l = |i: usize| s.labels.get(i).map_or("", |v| &**v);
            for (direction, counter) in [("ingress", &s.data.ingress), ("egress", &s.data.egress)] {
                let value = counter.load(Ordering::Relaxed);
                if value == 0 {
                    continue;
                }
                let labels = [
                    ("service", l(0)),
                    ("route", l(1)),
                    ("direction", direction),
                    ("workspace", l(2)),
                    ("consumer", l(3)),
                ];
                samples.push(&BANDWIDTH, &labels, value);
            }
        }
    }

    let mut samples = samples.0;
    samples.sort_unstable_by(|a, b| a.sort.cmp(&b.sort));
    let mut out = String::with_capacity(samples.len() * 96);
    let mut seen: Vec<&'static str> = Vec::new();
    for s in &samples {
        if !seen.contains(&s.meta.name) {
            seen.push(s.meta.name);
            let _ = writeln!(out, "# HELP {} {}", s.meta.name, s.meta.help);
            let _ = writeln!(out, "# TYPE {} {}", s.meta.name, s.meta.kind);
        }
        let _ = writeln!(out, "{} {}", s.shown.as_ref().unwrap_or(&s.sort), s.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn stats() -> NodeStats {
        NodeStats {
            node_id: "n1".into(),
            pid: 7,
            version: "3.10.0",
            accepted: 3,
            handled: 1,
            total_requests: 5,
            active: 2,
            writing: 1,
            waiting: 1,
            datastore_reachable: true,
            memory_bytes: 1024,
            ..NodeStats::default()
        }
    }

    #[test]
    fn node_metrics_only_until_an_instance_is_configured() {
        let m = Metrics::default();
        m.requests.with(
            &["s", "r", "200", "service", "default", ""],
            AtomicU64::default,
            |c| c.fetch_add(1, Ordering::Relaxed),
        );
        let text = render(&m, &stats());
        assert!(text.contains("kong_nginx_connections_total{node_id=\"n1\",subsystem=\"http\",state=\"accepted\"} 3\n"));
        assert!(text.contains("kong_nginx_requests_total{node_id=\"n1\",subsystem=\"http\"} 5\n"));
        assert!(text.contains("kong_datastore_reachable 1\n"));
        assert!(text.contains("kong_node_info{node_id=\"n1\",version=\"3.10.0\"} 1\n"));
        assert!(!text.contains("kong_http_requests_total"));
        assert!(!text.contains("kong_nginx_metric_errors_total"));
        m.instance_built();
        let text = render(&m, &stats());
        assert!(text.contains(
            "# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong\n# TYPE kong_http_requests_total counter\nkong_http_requests_total{service=\"s\",route=\"r\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"} 1\n"
        ));
        assert!(text.contains("kong_nginx_metric_errors_total 0\n"));
    }

    #[test]
    fn histograms_are_cumulative_sorted_by_bound_then_count_and_sum() {
        let m = Metrics::default();
        m.instance_built();
        for v in [3, 60, 7000] {
            m.latency
                .with(&["svc", "rt", "default"], Default::default, |l| {
                    l.kong.observe(v)
                });
        }
        let text = render(&m, &stats());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kong_kong_latency_ms"))
            .collect();
        let labels = "service=\"svc\",route=\"rt\",workspace=\"default\"";
        assert_eq!(lines.len(), 17 + 1 + 2, "{text}");
        assert_eq!(
            lines[0],
            format!("kong_kong_latency_ms_bucket{{{labels},le=\"1\"}} 0")
        );
        assert_eq!(
            lines[2],
            format!("kong_kong_latency_ms_bucket{{{labels},le=\"5\"}} 1")
        );
        assert_eq!(
            lines[9],
            format!("kong_kong_latency_ms_bucket{{{labels},le=\"75\"}} 2")
        );
        assert_eq!(
            lines[16],
            format!("kong_kong_latency_ms_bucket{{{labels},le=\"6000\"}} 2")
        );
        assert_eq!(
            lines[17],
            format!("kong_kong_latency_ms_bucket{{{labels},le=\"+Inf\"}} 3")
        );
        assert_eq!(
            lines[18],
            format!("kong_kong_latency_ms_count{{{labels}}} 3")
        );
        assert_eq!(
            lines[19],
            format!("kong_kong_latency_ms_sum{{{labels}}} 7063")
        );
        // Never observed: not shown.
        assert!(!text.contains("kong_upstream_latency_ms"));
        assert!(text.contains("# TYPE kong_kong_latency_ms histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(key("m", &[("a", "x\"y\\z\nw")]), "m{a=\"x\\\"y\\\\z\\nw\"}");
    }
}
