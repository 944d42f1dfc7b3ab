//! Node information endpoints: `GET /`, `GET /status`, `GET /status/ready`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};

use super::{message, AdminState};
use crate::version::KONG_VERSION;

/// `GET /`: version, node identity, plugins and the effective configuration (secrets masked).
pub async fn root(State(state): State<AdminState>) -> Response {
    let node = &state.node;
    let config = node.config.load();
    let mut configuration = config.to_json();
    if let Some(obj) = configuration.as_object_mut() {
        obj.insert("database".into(), json!(state.store.backend()));
    }
    let available: serde_json::Map<String, Value> = state
        .registry
        .kinds()
        .iter()
        .map(|k| {
            (
                k.name().to_owned(),
                json!({ "version": KONG_VERSION, "priority": k.priority() }),
            )
        })
        .collect();
    let enabled: Vec<&str> = node.snapshot.load().plugins.names().into_iter().collect();
    Json(json!({
        "tagline": "Welcome to kong",
        "version": KONG_VERSION,
        "edition": "community",
        "hostname": node.hostname,
        "node_id": node.id,
        "timers": { "running": 0, "pending": 0 },
        "plugins": {
            "available_on_server": available,
            "enabled_in_cluster": enabled,
        },
        "lua_version": Value::Null,
        "configuration": configuration,
        "pids": { "master": node.pid, "workers": [node.pid] },
    }))
    .into_response()
}

/// `GET /status?unit=m&scale=2`: connection counters, memory, and database reachability (or,
/// DB-less, the loaded configuration's hash).
pub async fn status(
    State(state): State<AdminState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let unit = query.get("unit").map(String::as_str).unwrap_or("m");
    let divisor: f64 = match unit {
        "b" | "B" => 1.0,
        "k" | "K" => 1024.0,
        "m" | "M" => 1024.0 * 1024.0,
        "g" | "G" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("invalid unit '{other}' (expected 'k/K', 'm/M', or 'g/G')"),
            )
        }
    };
    let scale = query
        .get("scale")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(2)
        .min(10);
    let suffix = if divisor == 1.0 {
        String::new()
    } else {
        format!(" {}iB", unit.to_ascii_uppercase())
    };
    let format = |bytes: u64| {
        if divisor == 1.0 {
            json!(bytes)
        } else {
            json!(format!("{:.*}{}", scale, bytes as f64 / divisor, suffix))
        }
    };
    let c = &state.node.counters;
    let active = c.active.load(Ordering::Relaxed).max(0);
    let writing = c.writing.load(Ordering::Relaxed).max(0);
    let mut body = json!({
        "memory": {
            "workers_lua_vms": [ { "http_allocated_gc": format(rss_bytes()), "pid": state.node.pid } ],
            "lua_shared_dicts": {},
        },
        "server": {
            "connections_active": active,
            "connections_reading": 0,
            "connections_writing": writing,
            "connections_waiting": (active - writing).max(0),
            "connections_accepted": c.accepted.load(Ordering::Relaxed),
            "connections_handled": c.handled.load(Ordering::Relaxed),
            "total_requests": c.total_requests.load(Ordering::Relaxed),
        },
    });
    if let Some(obj) = body.as_object_mut() {
        if cfg!(feature = "count-allocations") {
            obj.insert("allocations".into(), json!(crate::allocations::count()));
        }
        // As Kong: database reachability with a database, the configuration hash without.
        if state.store.backend() == "off" {
            obj.insert(
                "configuration_hash".into(),
                json!(state.node.configuration_hash.load().as_str()),
            );
        } else {
            obj.insert(
                "database".into(),
                json!({ "reachable": state.store.reachable().await }),
            );
        }
    }
    Json(body).into_response()
}

/// `GET /status/ready`: 200 when the node can serve, 503 with the reason otherwise.
pub async fn ready(State(state): State<AdminState>) -> Response {
    if state.store.reachable().await {
        message(StatusCode::OK, "ready")
    } else {
        message(
            StatusCode::SERVICE_UNAVAILABLE,
            "failed to connect to database",
        )
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
pub(super) fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * 4096
}
