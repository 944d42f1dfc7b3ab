//! `prometheus` (priority 13): records per-request metrics in the `log` phase into the node's
//! [`Metrics`] registry, which `GET /metrics` on the Admin and Status APIs exposes in Kong's
//! layout ([`exposition`]).
//!
//! As in Kong, a request is recorded only when it matched a route; `service` is the service's
//! name (else its host), `route` the route's name (else its id), `workspace` the workspace
//! name, `consumer` the consumer's username when `per_consumer` is on (else empty). Which
//! metrics are recorded follows the instance's flags: `status_code_metrics` →
//! `kong_http_requests_total`, `latency_metrics` → the three latency histograms,
//! `bandwidth_metrics` → `kong_bandwidth_bytes`.

pub mod exposition;
pub mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{Doc, Field, PluginSchema, Record};
pub use exposition::{render, NodeStats, CONTENT_TYPE};
pub use registry::Metrics;

/// The kind.
pub struct Prometheus;

/// One configured instance.
struct Instance {
    metrics: Arc<Metrics>,
    per_consumer: bool,
    status_code_metrics: bool,
    latency_metrics: bool,
    bandwidth_metrics: bool,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.metrics.instance_dropped();
    }
}

const FLAGS: &[(&str, &str)] = &[
    ("per_consumer", "A boolean value that determines if per-consumer metrics should be collected. If enabled, the `kong_http_requests_total` and `kong_bandwidth_bytes` metrics fill in the consumer label when available."),
    ("status_code_metrics", "A boolean value that determines if status code metrics should be collected. If enabled, `http_requests_total`, `stream_sessions_total` metrics will be exported."),
    ("ai_metrics", "A boolean value that determines if ai metrics should be collected. If enabled, the `ai_llm_requests_total`, `ai_llm_cost_total` and `ai_llm_tokens_total` metrics will be exported."),
    ("latency_metrics", "A boolean value that determines if latency metrics should be collected. If enabled, `kong_latency_ms`, `upstream_latency_ms` and `request_latency_ms` metrics will be exported."),
    ("bandwidth_metrics", "A boolean value that determines if bandwidth metrics should be collected. If enabled, `bandwidth_bytes` and `stream_sessions_total` metrics will be exported."),
    ("upstream_health_metrics", "A boolean value that determines if upstream metrics should be collected. If enabled, `upstream_target_health` metric will be exported."),
    ("wasm_metrics", "A boolean value that determines if Wasm metrics should be collected."),
];

impl Kind for Prometheus {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn priority(&self) -> i32 {
        13
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(
            FLAGS
                .iter()
                .map(|(name, doc)| (*name, Field::boolean().default(json!(false)).describe(doc)))
                .collect(),
        );
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let flag = |f: &str| config.get(f).and_then(Value::as_bool).unwrap_or(false);
        env.metrics.instance_built();
        Ok(Arc::new(Instance {
            metrics: env.metrics.clone(),
            per_consumer: flag("per_consumer"),
            status_code_metrics: flag("status_code_metrics"),
            latency_metrics: flag("latency_metrics"),
            bandwidth_metrics: flag("bandwidth_metrics"),
        }))
    }
}

/// A status code as text without allocating (statuses are three digits).
fn status_text(status: u16, buf: &mut [u8; 3]) -> &str {
    let s = status.clamp(100, 999);
    *buf = [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ];
    std::str::from_utf8(buf).unwrap_or("000")
}

// `logs()` stays false: the metrics need no request or response headers kept for them.
impl Plugin for Instance {
    fn log(&self, ctx: &Ctx) {
        // As Kong: only requests that matched a route are recorded.
        let Some(route) = ctx.route() else {
            return;
        };
        let route_label = route.name.as_deref().unwrap_or(&route.id);
        let service_label = ctx
            .service()
            .map_or("", |s| s.name.as_deref().unwrap_or(&s.host));
        let workspace = "default";
        let consumer = if self.per_consumer {
            ctx.consumer()
                .and_then(|c| c.get("username"))
                .and_then(Value::as_str)
                .unwrap_or_default()
        } else {
            ""
        };
        let m = &self.metrics;
        if self.status_code_metrics {
            let mut buf = [0; 3];
            let code = status_text(ctx.log.status, &mut buf);
            let source = if ctx.proxied() { "service" } else { "kong" };
            let labels = [
                service_label,
                route_label,
                code,
                source,
                workspace,
                consumer,
            ];
            m.requests.with(&labels, AtomicU64::default, |c| {
                c.fetch_add(1, Ordering::Relaxed)
            });
        }
        if self.latency_metrics {
            let l = ctx.latencies();
            m.latency.with(
                &[service_label, route_label, workspace],
                registry::Latency::new,
                |h| {
                    h.request.observe(l.request);
                    if let Some(upstream) = l.proxy {
                        h.upstream.observe(upstream);
                    }
                    h.kong.observe(l.kong);
                },
            );
        }
        if self.bandwidth_metrics {
            let (ingress, egress) = (ctx.request_length(), ctx.bytes_sent());
            if ingress > 0 || egress > 0 {
                m.bandwidth.with(
                    &[service_label, route_label, workspace, consumer],
                    Default::default,
                    |b| {
                        b.ingress.fetch_add(ingress, Ordering::Relaxed);
                        b.egress.fetch_add(egress, Ordering::Relaxed);
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_as_text() {
        let mut buf = [0; 3];
        assert_eq!(status_text(200, &mut buf), "200");
        assert_eq!(status_text(404, &mut buf), "404");
        assert_eq!(status_text(599, &mut buf), "599");
    }
}
