//! The Admin API (`admin_listen`) and the Status API (`status_listen`).
//!
//! [`router`] returns an axum `Router`, so tests can drive the API without a socket; the
//! runtime serves it through [`Api`], which adds Kong's response headers and the access log.
//! Node endpoints (`GET /`, `/status`) live in `info`, `GET /metrics` in `metrics`; the generated entity endpoints in
//! `entities` (driven by `catalogue`); schemas, tags, `/config`, `/cache`, `/endpoints` and
//! `/openapi.json` in their own modules; request bodies are decoded in [`body`]; every failure
//! becomes a response in `error`.

pub mod body;
mod cache;
mod catalogue;
mod config;
mod debug;
mod endpoints;
mod entities;
mod error;
mod health;
mod info;
mod metrics;
mod schemas;
mod tags;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use http::header::{HeaderValue, SERVER};
use http::{Request, Response, StatusCode};
use tower::ServiceExt;

use crate::logging::AccessEntry;
use crate::node::Node;
use crate::runtime::body::RequestBody;
use crate::runtime::guard::Refused;
use crate::runtime::listener::{ConnInfo, Handler};
use crate::store::Store;
use crate::version::SERVER_TOKEN;

/// State shared by the API handlers.
#[derive(Clone)]
pub struct AdminState {
    /// The node.
    pub node: Arc<Node>,
    /// The datastore.
    pub store: Store,
    /// The plugins the node has enabled (`GET /` lists them).
    pub registry: Arc<crate::plugins::Registry>,
    /// Held while `POST /config` loads a configuration: one load at a time.
    pub config_lock: Arc<tokio::sync::Mutex<()>>,
    /// The metrics registry `GET /metrics` exposes; `None` when the prometheus plugin is not
    /// enabled (then, as in Kong, there is no `/metrics`).
    pub metrics: Option<Arc<crate::plugins::bundled::prometheus::Metrics>>,
}

/// Kong's JSON message body: `{"message": "..."}`.
pub fn message(status: StatusCode, text: &str) -> Response<Body> {
    (status, Json(serde_json::json!({ "message": text }))).into_response()
}

/// The Admin API.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/", get(info::root))
        .route("/status", get(info::status))
        .route("/metrics", get(metrics::scrape))
        .route("/schemas/{entity}", get(schemas::entity))
        .route("/schemas/{entity}/validate", post(schemas::validate))
        .route("/schemas/plugins/validate", post(schemas::validate_plugin))
        .route("/schemas/plugins/{name}", get(schemas::plugin))
        .route("/plugins/schema/{name}", get(schemas::plugin_config))
        .route("/plugins/enabled", get(schemas::enabled))
        .route("/cache", delete(cache::purge))
        .route("/cache/{key}", get(cache::get_key).delete(cache::purge))
        .route("/config", get(config::get).post(config::post))
        .route("/endpoints", get(endpoints::list))
        .route("/openapi.json", get(endpoints::document))
        .route("/tags", get(tags::all))
        .route("/tags/{tag}", get(tags::one))
        .route("/status/dns", get(debug::dns))
        .route("/timers", get(debug::timers))
        .route("/debug/node/log-level", get(debug::log_level))
        .route("/debug/node/log-level/{level}", put(debug::set_log_level))
        .route("/clustering/data-planes", get(debug::clustering))
        .route("/clustering/status", get(debug::clustering))
        .fallback(entities::dispatch)
        .method_not_allowed_fallback(|| async {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        .with_state(state)
}

/// The Status API.
pub fn status_router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(info::status))
        .route("/status/ready", get(info::ready))
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async { message(StatusCode::NOT_FOUND, "Not found") })
        .method_not_allowed_fallback(|| async {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        .with_state(state)
}

/// Which API a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `admin_listen`.
    Admin,
    /// `status_listen`.
    Status,
}

/// Serves an API router on a listener.
pub struct Api {
    router: Router,
    node: Arc<Node>,
    kind: Kind,
}

impl Api {
    /// An API of `kind` over `state`.
    pub fn new(state: AdminState, kind: Kind) -> Arc<Api> {
        let node = state.node.clone();
        let router = match kind {
            Kind::Admin => router(state),
            Kind::Status => status_router(state),
        };
        Arc::new(Api { router, node, kind })
    }
}

impl Handler for Api {
    type Body = Body;

    async fn handle(
        self: Arc<Self>,
        req: Request<RequestBody>,
        conn: Arc<ConnInfo>,
    ) -> Response<Body> {
        {
            let started = Instant::now();
            let _in_flight = self.node.counters.request();
            let method = req.method().clone();
            let uri = req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string());
            let version = req.version();
            let header = |name| {
                req.headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let referer = header(http::header::REFERER);
            let user_agent = header(http::header::USER_AGENT);
            let origin = req.headers().get(http::header::ORIGIN).cloned();
            let mut resp = match self.router.clone().oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let config = self.node.config.load();
            let h = resp.headers_mut();
            if config.headers.server {
                h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
            }
            let latency = started.elapsed().as_millis() as u64;
            if config.headers.admin_latency && self.kind == Kind::Admin {
                h.insert("x-kong-admin-latency", HeaderValue::from(latency));
            }
            h.insert(
                "access-control-allow-origin",
                origin.unwrap_or(HeaderValue::from_static("*")),
            );
            h.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
            let logs = self.node.logs.load();
            let log = match self.kind {
                Kind::Admin => &logs.admin,
                Kind::Status => &logs.status,
            };
            if !log.is_off() {
                let bytes_sent = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
                log.log(&AccessEntry {
                    remote_addr: conn.peer.ip(),
                    method: method.as_str(),
                    uri: &uri,
                    version: crate::proxy::version_str(version),
                    status: resp.status().as_u16(),
                    bytes_sent,
                    referer: referer.as_deref(),
                    user_agent: user_agent.as_deref(),
                    request_id: "-",
                    latency_ms: latency,
                });
            }
            resp
        }
    }

    fn connection(&self, opened: bool) {
        self.node.counters.connection(opened);
    }

    fn limits(&self) -> crate::config::ClientLimits {
        let config = self.node.config.load();
        match self.kind {
            Kind::Admin => config.admin_client,
            Kind::Status => config.status_client,
        }
    }

    fn refuse(&self, refused: &Refused, _conn: &ConnInfo) -> Response<Body> {
        let _in_flight = self.node.counters.request();
        let reason = refused.reason;
        let mut resp = error::ApiError::message(reason.status(), reason.message()).into_response();
        if self.node.config.load().headers.server {
            resp.headers_mut()
                .insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
        }
        resp
    }
}
