//! `GET /metrics` on the Admin and the Status API: the node's metrics in the Prometheus text
//! format, as Kong's prometheus plugin serves them.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::StatusCode;

use super::{message, AdminState};
use crate::plugins::bundled::prometheus::{render, NodeStats, CONTENT_TYPE as EXPOSITION};
use crate::version::KONG_VERSION;

/// `GET /metrics`: 404 unless the prometheus plugin is enabled (as in Kong, whose plugin
/// brings the endpoint).
pub async fn scrape(State(state): State<AdminState>) -> Response {
    let Some(metrics) = &state.metrics else {
        return message(StatusCode::NOT_FOUND, "Not found");
    };
    let node = &state.node;
    let c = &node.counters;
    let active = c.active.load(Ordering::Relaxed).max(0) as u64;
    let writing = c.writing.load(Ordering::Relaxed).max(0) as u64;
    let runtime = tokio::runtime::Handle::current().metrics();
    let stats = NodeStats {
        node_id: node.id.to_string(),
        pid: node.pid,
        version: KONG_VERSION,
        accepted: c.accepted.load(Ordering::Relaxed),
        handled: c.handled.load(Ordering::Relaxed),
        total_requests: c.total_requests.load(Ordering::Relaxed),
        active,
        // As `/status`: a request head is read before it is counted, so none is "reading".
        reading: 0,
        writing,
        waiting: active.saturating_sub(writing),
        datastore_reachable: state.store.reachable().await,
        memory_bytes: super::info::rss_bytes(),
        timers_running: runtime.num_alive_tasks() as u64,
        timers_pending: runtime.global_queue_depth() as u64,
    };
    ([(CONTENT_TYPE, EXPOSITION)], render(metrics, &stats)).into_response()
}
