//! The health views of the Admin API, shaped as Kong's: per target (`GET
//! /upstreams/{u}/health`) and for the whole balancer (`?balancer_health=1`).

use serde_json::{json, Value};

use super::layout::Layout;

/// A target's health word and its `data` (Kong's `getTargetStatus`), for the target `name`
/// and `port`; `None` when the balancer does not know the target.
pub fn target(layout: &Layout, name: &str, port: u16) -> Option<(&'static str, Value)> {
    let index = layout
        .targets
        .iter()
        .position(|t| t.spec.name == name && t.spec.port == port)?;
    let view = &layout.targets[index];
    let using = layout.spec.checks.enabled();
    let mut total = 0u64;
    let mut unavailable = 0u64;
    let mut addresses = Vec::new();
    let mut word = None;
    for a in layout.addresses.iter().filter(|a| a.target == index) {
        total += u64::from(a.weight);
        let available = a.state.available();
        if !available {
            unavailable += u64::from(a.weight);
        }
        let health = if using && view.spec.weight > 0 {
            if available {
                "HEALTHY"
            } else {
                "UNHEALTHY"
            }
        } else {
            "HEALTHCHECKS_OFF"
        };
        // Kong: healthy if any address is, else unhealthy if any is, else checks off.
        word = match (word, health) {
            (_, "HEALTHY") | (Some("HEALTHY"), _) => Some("HEALTHY"),
            (_, "UNHEALTHY") => Some("UNHEALTHY"),
            (w, h) => w.or(Some(h)),
        };
        addresses.push(json!({
            "ip": a.ip_text.as_ref(),
            "port": a.port,
            "weight": a.weight,
            "health": health,
        }));
    }
    let data = json!({
        "host": view.spec.name,
        "port": view.spec.port,
        "dns": view.dns,
        "nodeWeight": view.spec.weight,
        "weight": {"total": total, "available": total - unavailable, "unavailable": unavailable},
        "addresses": addresses,
    });
    Some((word.unwrap_or("DNS_ERROR"), data))
}

/// The balancer view (`?balancer_health=1`).
pub fn balancer(layout: &Layout) -> Value {
    let healthy = layout.healthy();
    let balancer_health = if healthy { "HEALTHY" } else { "UNHEALTHY" };
    let health = if layout.spec.checks.enabled() {
        balancer_health
    } else {
        "HEALTHCHECKS_OFF"
    };
    let total = layout.total_weight();
    let available = layout.available_weight();
    let hosts: Vec<Value> = layout
        .targets
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let mut t_total = 0u64;
            let mut t_unavailable = 0u64;
            let addresses: Vec<Value> = layout
                .addresses
                .iter()
                .filter(|a| a.target == index)
                .map(|a| {
                    t_total += u64::from(a.weight);
                    if !a.state.available() {
                        t_unavailable += u64::from(a.weight);
                    }
                    json!({"ip": a.ip_text.as_ref(), "port": a.port, "weight": a.weight,
                           "healthy": a.state.available()})
                })
                .collect();
            json!({
                "host": view.spec.name,
                "port": view.spec.port,
                "dns": view.dns,
                "nodeWeight": view.spec.weight,
                "weight": {"total": t_total, "available": t_total - t_unavailable,
                           "unavailable": t_unavailable},
                "addresses": addresses,
            })
        })
        .collect();
    json!({
        "health": health,
        "balancer_health": balancer_health,
        "id": layout.spec.id,
        "details": {
            "healthy": healthy,
            "weight": {"total": total, "available": available, "unavailable": total - available},
            "hosts": hosts,
        },
    })
}
