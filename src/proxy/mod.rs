//! The proxy: answers client traffic on `proxy_listen` from the node's current configuration
//! snapshot only (never the datastore).
//!
//! The request flow is built around the plugin phases, in this order:
//!
//! ```text
//! accept → rewrite → route match → access → balancer → upstream → header filter
//!        → body filter (per chunk) → log (always, also after errors)
//! ```
//!
//! Routing, upstreams and plugins arrive with their own work; until then every request ends in
//! the "no route" error, produced by the same error path that later errors use.

pub mod error;
pub mod forward;
pub mod headers;
pub mod upstream;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, SERVER};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::logging::AccessEntry;
use crate::node::Node;
use crate::runtime::listener::{ConnInfo, Handler};
use crate::version::SERVER_TOKEN;
use error::ProxyError;

static X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
static X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");

/// The proxy's request handler.
pub struct Proxy {
    node: Arc<Node>,
}

impl Proxy {
    /// A proxy serving from `node`'s state.
    pub fn new(node: Arc<Node>) -> Arc<Proxy> {
        Arc::new(Proxy { node })
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let config = self.node.config.load();
        let id = crate::request_id::generate();
        let id = std::str::from_utf8(&id).unwrap_or_default();
        let (head, body) = req.into_parts();
        let err = match read_body(&head.headers, body, config.client_max_body_size).await {
            Ok(()) => ProxyError::NoRoute,
            Err(e) => e,
        };
        let resp = error::respond(&err, &head.headers, id, &config.error_default_type);
        let (mut parts, body) = resp.into_parts();
        let h = &mut parts.headers;
        if config.headers.server {
            h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
        }
        if config.headers.request_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                h.insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let latency = started.elapsed().as_millis() as u64;
        if config.headers.response_latency {
            h.insert(X_KONG_RESPONSE_LATENCY.clone(), HeaderValue::from(latency));
        }
        let logs = self.node.logs.load();
        if !logs.proxy.is_off() {
            let header = |name| {
                head.headers
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
            };
            logs.proxy.log(&AccessEntry {
                remote_addr: conn.peer.ip(),
                method: head.method.as_str(),
                uri: head.uri.path_and_query().map_or("/", |p| p.as_str()),
                version: version_str(head.version),
                status: parts.status.as_u16(),
                bytes_sent: body.len() as u64,
                referer: header(http::header::REFERER),
                user_agent: header(http::header::USER_AGENT),
                request_id: id,
                latency_ms: latency,
            });
        }
        Response::from_parts(parts, Full::new(body))
    }
}

/// Reads the whole request body (request buffering), enforcing `limit` bytes (0 = unlimited):
/// a declared length over the limit is refused before reading, a streamed one once it passes.
async fn read_body(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: u64,
) -> Result<(), ProxyError> {
    use http_body_util::BodyExt;
    if limit > 0 {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ProxyError::PayloadTooLarge);
        }
    }
    let mut seen = 0u64;
    // As nginx's client_body_timeout: a client may pause at most this long between reads.
    let idle = std::time::Duration::from_secs(60);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ProxyError::RequestTimeout),
            Ok(None) => break,
            Ok(Some(frame)) => frame,
        };
        let frame = frame.map_err(|_| ProxyError::BadRequest)?;
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
            if limit > 0 && seen > limit {
                return Err(ProxyError::PayloadTooLarge);
            }
        }
    }
    Ok(())
}

/// `HTTP/1.1`-style protocol name for logs.
pub fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

impl Handler for Proxy {
    type Body = Full<Bytes>;

    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
    ) -> impl std::future::Future<Output = Response<Self::Body>> + Send + 'static {
        let started = Instant::now();
        async move {
            let _in_flight = self.node.counters.request();
            self.answer(req, conn, started).await
        }
    }

    fn connection(&self, opened: bool) {
        self.node.counters.connection(opened);
    }
}
