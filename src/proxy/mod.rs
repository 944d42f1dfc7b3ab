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
//! Today the phases without plugins are: route match (the snapshot's [`Router`]), the upstream
//! request ([`forward`]), the response headers, streaming the body back, and the access log.
//! Every failure is a [`ProxyError`], turned into a response in one place ([`error::respond`]).
//! One `Arc<Snapshot>` is loaded per request, so a configuration change never splits a request.

pub mod error;
pub mod forward;
pub mod headers;
pub mod upstream;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, LOCATION, SERVER, VIA};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::config::{ClientLimits, Config};
use crate::logging::AccessEntry;
use crate::node::Node;
use crate::router::{self, ProtocolMismatch, RequestInfo, Scheme};
use crate::runtime::guard::Refused;
use crate::runtime::listener::{ConnInfo, Handler};
use crate::snapshot::Snapshot;
use crate::version::SERVER_TOKEN;
use error::ProxyError;
use forward::{Outgoing, Target, Timeouts};
use headers::{Downstream, Trusted};

static X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
static X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");
static X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
static X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
static X_KONG_UPSTREAM_STATUS: HeaderName = HeaderName::from_static("x-kong-upstream-status");

/// Bodies the proxy answers with: an upstream's streamed body, or one the gateway made.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// `trusted_ips` parsed once per configuration (the pointer tells when it changed).
struct TrustedCache {
    config: Arc<Config>,
    trusted: Trusted,
}

/// The proxy's request handler.
pub struct Proxy {
    node: Arc<Node>,
    trusted: ArcSwap<TrustedCache>,
}

/// What a matched route leaves for the upstream request, owned so the request can change.
struct Routed {
    service: router::ServiceInfo,
    preserve_host: bool,
    request_buffering: bool,
    upstream_path: String,
    prefix: Option<String>,
}

/// What the access log says about the request.
struct Logged<'a> {
    method: &'a str,
    uri: &'a str,
    version: &'a str,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
}

/// A response the gateway produced, with what the log needs.
struct Answer {
    response: Response<ProxyBody>,
    bytes: u64,
}

impl Proxy {
    /// A proxy serving from `node`'s state.
    pub fn new(node: Arc<Node>) -> Arc<Proxy> {
        let config = node.config.load_full();
        let trusted = Trusted::parse(&config.trusted_ips);
        Arc::new(Proxy {
            node,
            trusted: ArcSwap::from_pointee(TrustedCache { config, trusted }),
        })
    }

    fn trusted(&self, config: &Arc<Config>) -> Arc<TrustedCache> {
        let cached = self.trusted.load_full();
        if Arc::ptr_eq(&cached.config, config) {
            return cached;
        }
        let fresh = Arc::new(TrustedCache {
            config: config.clone(),
            trusted: Trusted::parse(&config.trusted_ips),
        });
        self.trusted.store(fresh.clone());
        fresh
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<ProxyBody> {
        let config = self.node.config.load_full();
        let snapshot = self.node.snapshot.load_full();
        let id = crate::request_id::generate();
        let id = std::str::from_utf8(&id).unwrap_or_default();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let version = req.version();
        // Only what the log and an error answer may need; header values are reference-counted,
        // so keeping them costs no copy.
        let kept = |name| req.headers().get(name).cloned();
        let (referer, user_agent) = (kept(http::header::REFERER), kept(http::header::USER_AGENT));
        let (accept, content_type) = (kept(http::header::ACCEPT), kept(http::header::CONTENT_TYPE));
        let trusted = self.trusted(&config);
        let result = self
            .proxy(
                req,
                &conn,
                &config,
                &snapshot,
                &trusted.trusted,
                id,
                started,
            )
            .await;
        let answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                let mut negotiation = http::HeaderMap::new();
                if let Some(v) = accept {
                    negotiation.insert(http::header::ACCEPT, v);
                }
                if let Some(v) = content_type {
                    negotiation.insert(http::header::CONTENT_TYPE, v);
                }
                error_answer(&e, &negotiation, id, &config, started)
            }
        };
        let request = Logged {
            method: method.as_str(),
            uri: uri.path_and_query().map_or("/", |p| p.as_str()),
            version: version_str(version),
            referer: referer.as_ref().and_then(|v| v.to_str().ok()),
            user_agent: user_agent.as_ref().and_then(|v| v.to_str().ok()),
        };
        self.finish(answer, &request, &conn, &config, id, started)
    }

    /// Adds the request id header and writes the access log line.
    fn finish(
        &self,
        mut answer: Answer,
        request: &Logged<'_>,
        conn: &ConnInfo,
        config: &Config,
        id: &str,
        started: Instant,
    ) -> Response<ProxyBody> {
        let h = answer.response.headers_mut();
        if config.headers.request_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                h.insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let latency = started.elapsed().as_millis() as u64;
        let logs = self.node.logs.load();
        if !logs.proxy.is_off() {
            logs.proxy.log(&AccessEntry {
                remote_addr: conn.peer.ip(),
                method: request.method,
                uri: request.uri,
                version: request.version,
                status: answer.response.status().as_u16(),
                bytes_sent: answer.bytes,
                referer: request.referer,
                user_agent: request.user_agent,
                request_id: id,
                latency_ms: latency,
            });
        }
        answer.response
    }

    /// Routes and forwards one request; every failure comes back as a [`ProxyError`].
    #[allow(clippy::too_many_arguments)]
    async fn proxy(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        config: &Config,
        snapshot: &Snapshot,
        trusted: &Trusted,
        _id: &str,
        started: Instant,
    ) -> Result<Answer, ProxyError> {
        let (mut head, body) = req.into_parts();
        // As nginx does, a declared body over the limit is refused before anything else.
        let limit = config.client_max_body_size;
        let declared = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if limit > 0 && declared.is_some_and(|n| n > limit) {
            return Err(ProxyError::PayloadTooLarge);
        }
        let raw_path = head.uri.path().to_owned();
        // A path that does not decode to UTF-8 matches no route.
        let path = router::normalize_path(&raw_path).ok_or(ProxyError::NoRoute)?;
        let host_header = head
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| head.uri.authority().map(|a| a.as_str().to_owned()));
        let believed = trusted.contains(conn.peer.ip());
        let forwarded_proto = believed
            .then(|| header(&head.headers, HeaderName::from_static("x-forwarded-proto")))
            .flatten();
        let scheme = if conn.tls {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let routed = {
            let info = RequestInfo {
                method: head.method.as_str(),
                host: host_header.as_deref(),
                path: &path,
                scheme,
                forwarded_proto: forwarded_proto.as_deref(),
                port: conn.local.port(),
                sni: conn.sni.as_deref(),
                headers: &head.headers,
                version: head.version,
            };
            let m = snapshot.router.find(&info).ok_or(ProxyError::NoRoute)?;
            if let Some(mismatch) = m.protocol_mismatch {
                return match mismatch {
                    ProtocolMismatch::HttpsRequired { status: 426 } => {
                        Err(ProxyError::UpgradeRequired)
                    }
                    ProtocolMismatch::HttpsRequired { status } => {
                        let host = host_header.as_deref().unwrap_or_default();
                        let pq = head.uri.path_and_query().map_or("/", |p| p.as_str());
                        Ok(redirect(status, &format!("https://{host}{pq}"), config))
                    }
                    ProtocolMismatch::NotGrpc => Err(ProxyError::Rejected(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "Non-gRPC request matched gRPC route",
                    )),
                    ProtocolMismatch::Http2Required => Err(ProxyError::Rejected(
                        StatusCode::UPGRADE_REQUIRED,
                        "Please use HTTP2 protocol",
                    )),
                    ProtocolMismatch::GrpcsRequired => Err(ProxyError::Rejected(
                        StatusCode::BAD_REQUEST,
                        "gRPC request matched gRPCs route",
                    )),
                };
            }
            let service = m.service.ok_or(ProxyError::NoService)?;
            Routed {
                service: service.clone(),
                preserve_host: m.route.preserve_host,
                request_buffering: m.route.request_buffering,
                upstream_path: router::escape_path(&m.upstream_path.to_string()).into_owned(),
                prefix: m.stripped_prefix.filter(|p| *p != "/").map(str::to_owned),
            }
        };
        let service = &routed.service;
        let upstream_scheme = match service.protocol {
            router::Protocol::Https | router::Protocol::Grpcs => "https",
            _ => "http",
        };
        let default_port = if upstream_scheme == "https" { 443 } else { 80 };
        let upstream_host = if service.port == default_port {
            service.host.clone()
        } else {
            format!("{}:{}", service.host, service.port)
        };
        let mut path_and_query = routed.upstream_path.clone();
        if let Some(q) = head.uri.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let uri: Uri = format!(
            "{upstream_scheme}://{}:{}{path_and_query}",
            bracket(&service.host),
            service.port
        )
        .parse()
        .map_err(|_| ProxyError::BadRequest)?;
        let host_for_upstream = match (routed.preserve_host, host_header.as_deref()) {
            (true, Some(h)) => h.to_owned(),
            _ => upstream_host,
        };
        let down_host = host_header
            .as_deref()
            .map(|h| {
                h.rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(h, |(h, _)| h)
            })
            .unwrap_or_default()
            .to_owned();
        let down = Downstream {
            peer: conn.peer.ip(),
            scheme: scheme.as_str(),
            port: conn.local.port(),
            host: &down_host,
            path: &raw_path,
            prefix: routed.prefix.as_deref(),
        };
        headers::upstream_request(&mut head.headers, &down, trusted, &host_for_upstream);
        // Upstreams are spoken to in HTTP/1.1, whatever the client used.
        head.version = http::Version::HTTP_11;
        if config.headers_upstream_request_id {
            if let Ok(v) = HeaderValue::from_str(_id) {
                head.headers.insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let target = Target {
            uri,
            timeouts: Timeouts {
                connect: std::time::Duration::from_millis(service.connect_timeout),
                write: std::time::Duration::from_millis(service.write_timeout),
                read: std::time::Duration::from_millis(service.read_timeout),
            },
            retries: service.retries,
        };
        let outgoing = if routed.request_buffering {
            let limit = config.client_max_body_size;
            let idle = config.proxy_client.body_timeout;
            Outgoing::Buffered(read_body(&head.headers, body, limit, idle).await?)
        } else {
            Outgoing::Streamed(body)
        };
        let client = snapshot.upstreams.client(service.connect_timeout);
        let sent = Instant::now();
        let proxy_latency = sent.duration_since(started).as_millis() as u64;
        let resp = forward::send(&client, head, outgoing, &target).await?;
        let upstream_latency = sent.elapsed().as_millis() as u64;
        let (mut parts, body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        let h = &mut parts.headers;
        if config.headers.via {
            let via = match h.get(VIA).and_then(|v| v.to_str().ok()) {
                Some(prior) => format!("{prior}, 1.1 {SERVER_TOKEN}"),
                None => format!("1.1 {SERVER_TOKEN}"),
            };
            if let Ok(v) = HeaderValue::from_str(&via) {
                h.insert(VIA, v);
            }
        }
        if config.headers.server && !h.contains_key(SERVER) {
            h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
        }
        if config.headers.upstream_latency {
            h.insert(
                X_KONG_UPSTREAM_LATENCY.clone(),
                HeaderValue::from(upstream_latency),
            );
        }
        if config.headers.proxy_latency {
            h.insert(
                X_KONG_PROXY_LATENCY.clone(),
                HeaderValue::from(proxy_latency),
            );
        }
        if config.headers.upstream_status {
            h.insert(
                X_KONG_UPSTREAM_STATUS.clone(),
                HeaderValue::from(parts.status.as_u16()),
            );
        }
        let bytes = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Answer {
            response: Response::from_parts(parts, body.boxed()),
            bytes,
        })
    }
}

/// Kong's answer to a failed request: the error in the negotiated format, with the response
/// headers the configuration asks for.
fn error_answer(
    e: &ProxyError,
    negotiation: &http::HeaderMap,
    id: &str,
    config: &Config,
    started: Instant,
) -> Answer {
    let resp = error::respond(e, negotiation, id, &config.error_default_type);
    let bytes = resp.body().len() as u64;
    let (mut parts, body) = resp.into_parts();
    if config.headers.server {
        parts
            .headers
            .insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    if config.headers.response_latency {
        let ms = started.elapsed().as_millis() as u64;
        parts
            .headers
            .insert(X_KONG_RESPONSE_LATENCY.clone(), HeaderValue::from(ms));
    }
    if let ProxyError::UpgradeRequired = e {
        parts.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        parts.headers.insert(
            http::header::UPGRADE,
            HeaderValue::from_static("TLS/1.2, HTTP/1.1"),
        );
    }
    Answer {
        response: Response::from_parts(parts, full(body)),
        bytes,
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn header(h: &http::HeaderMap, name: HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// An `https_redirect_status_code` redirect to the same URL over HTTPS.
fn redirect(status: u16, location: &str, config: &Config) -> Answer {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    if config.headers.server {
        resp.headers_mut()
            .insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    Answer {
        response: resp,
        bytes: 0,
    }
}

/// Reads the whole request body (request buffering), enforcing `limit` bytes (0 = unlimited):
/// a declared length over the limit is refused before reading, a streamed one once it passes.
/// As nginx's `client_body_timeout`, the client may pause at most `idle` between two reads
/// (then 408); a body hyper cannot decode (a bad chunk size, a cut connection) is a 400.
async fn read_body(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: u64,
    idle: std::time::Duration,
) -> Result<Bytes, ProxyError> {
    if limit > 0 {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ProxyError::PayloadTooLarge);
        }
    }
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ProxyError::RequestTimeout),
            Ok(None) => break,
            Ok(Some(frame)) => frame,
        };
        let frame = frame.map_err(|_| ProxyError::BadRequest)?;
        if let Some(data) = frame.data_ref() {
            if limit > 0 && (buf.len() + data.len()) as u64 > limit {
                return Err(ProxyError::PayloadTooLarge);
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(buf.freeze())
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
    type Body = ProxyBody;

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

    fn limits(&self) -> ClientLimits {
        self.node.config.load().proxy_client
    }

    fn refuse(&self, refused: &Refused, conn: &ConnInfo) -> Response<Self::Body> {
        let started = Instant::now();
        let _in_flight = self.node.counters.request();
        let config = self.node.config.load_full();
        let id = crate::request_id::generate();
        let id = std::str::from_utf8(&id).unwrap_or_default();
        let e = ProxyError::from(refused.reason);
        let answer = error_answer(&e, &refused.negotiation, id, &config, started);
        // The head was not read, so nginx's "-" stands for the request line.
        let request = Logged {
            method: "-",
            uri: "-",
            version: "-",
            referer: None,
            user_agent: None,
        };
        self.finish(answer, &request, conn, &config, id, started)
    }
}
