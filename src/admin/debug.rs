//! Node diagnostics: `/debug/node/log-level` (read, and change for a while), `/timers`, and the
//! endpoints of features a node does not run (`/status/dns` without the new DNS client,
//! `/clustering/*` outside a control plane), answered as Kong answers them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use http::{Response, StatusCode};
use serde_json::json;

use super::{message, AdminState};
use crate::config::LogLevel;

/// Bumped by every change, so an expiring change does not undo a later one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `GET /debug/node/log-level`.
pub async fn log_level() -> Response<Body> {
    message(
        StatusCode::OK,
        &format!("log level: {}", crate::logging::current_level().name()),
    )
}

/// `PUT /debug/node/log-level/{level}?timeout=N`: the node logs at `level` for `timeout`
/// seconds (default 60), then returns to its configured level. Refused in DB-less mode, as Kong
/// does (the change could not reach the other nodes).
pub async fn set_log_level(
    State(state): State<AdminState>,
    Path(level): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response<Body> {
    if state.store.backend() == "off" {
        return message(
            StatusCode::METHOD_NOT_ALLOWED,
            "cannot change log level when not using a database",
        );
    }
    let Some(wanted) = LogLevel::parse(&level) else {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("unknown log level: {level}"),
        );
    };
    let timeout = match query.get("timeout").map(|t| t.parse::<i64>()) {
        None => 60,
        Some(Ok(t)) if t >= 0 => t as u64,
        Some(_) => {
            return message(
                StatusCode::BAD_REQUEST,
                "timeout must be greater than or equal to 0",
            )
        }
    };
    if crate::logging::current_level() == wanted {
        return message(
            StatusCode::OK,
            &format!("log level is already {}", wanted.name()),
        );
    }
    crate::logging::set_level(wanted);
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    let node = state.node.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(timeout)).await;
        if GENERATION.load(Ordering::SeqCst) == generation {
            crate::logging::set_level(node.config.load().log_level);
        }
    });
    tracing::warn!(
        level = wanted.name(),
        timeout,
        "log level changed through the Admin API"
    );
    message(StatusCode::OK, "log level changed")
}

/// `GET /timers`: the node's scheduled work. A node has one worker (the async runtime); its
/// live tasks stand for Kong's running timers.
pub async fn timers() -> Response<Body> {
    let metrics = tokio::runtime::Handle::current().metrics();
    let alive = metrics.num_alive_tasks();
    Json(json!({
        "worker": { "id": 0, "count": 1 },
        "stats": {
            "sys": {
                "total": alive,
                "runs": 0,
                "running": alive,
                "pending": 0,
                "waiting": 0,
            },
            "timers": {},
            "flamegraph": { "running": "", "pending": "", "elapsed_time": "" },
        },
    }))
    .into_response()
}

/// `GET /status/dns`: the node resolves with the system resolver, which keeps no statistics.
pub async fn dns() -> Response<Body> {
    message(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented with the legacy DNS client",
    )
}

/// `GET /clustering/data-planes` and `/clustering/status`: control planes only.
pub async fn clustering() -> Response<Body> {
    message(
        StatusCode::BAD_REQUEST,
        "this endpoint is only available when Kong is configured to run as Control Plane for the cluster",
    )
}
