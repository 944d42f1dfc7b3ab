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
//! Today the phases without plugins are: route match (the snapshot's [`Router`](crate::router::Router)), the balancer
//! ([`crate::balancer::peers::Peers`]: the service's IP, its name through the DNS cache, or its
//! upstream's balancer; retries ask it again), the upstream request ([`forward`]), the response
//! headers, streaming the body back, and the access log.
//! Every failure is a [`ProxyError`], turned into a response in one place ([`error::respond`]).
//! One `Arc<Snapshot>` is loaded per request, so a configuration change never splits a request.
//! Before any of this, a TLS listener's handshake takes its certificate from the snapshot by the
//! client's SNI ([`tls`]).

pub mod error;
pub mod forward;
pub mod h1;
pub mod headers;
pub mod phases;
pub mod pool;
pub mod tls;
pub mod upstream;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, LOCATION, SERVER, VIA};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

use crate::balancer::peers::{HashInput, Peers};
use crate::balancer::Held;
use crate::config::{ClientLimits, Config};
use crate::logging::AccessEntry;
use crate::node::Node;
use crate::plugins::ctx::UriCaptures;
use crate::plugins::{Ctx, Entry, Exit};
use crate::router::{self, ProtocolMismatch, RequestInfo, Scheme};
use crate::runtime::body::RequestBody;
use crate::runtime::guard::Refused;
use crate::runtime::listener::{ConnInfo, Handler};
use crate::runtime::raw_headers::{self, Adding, Kind, RawHeaders};
use crate::snapshot::Snapshot;
use crate::version::SERVER_TOKEN;
use error::ProxyError;
use forward::{HostRule, Outgoing, Target, Timeouts};
use headers::{Downstream, Trusted};
use phases::PhaseBody;
use pool::Pool;

/// Header slots a response map gets past the upstream's own, for what the proxy and plugins
/// add (`Via`, the `X-Kong-*` latencies and request id, rate-limit headers), so it does not grow.
const RESPONSE_ROOM: usize = 16;

static X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
static X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");
static X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
static X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
static X_KONG_UPSTREAM_STATUS: HeaderName = HeaderName::from_static("x-kong-upstream-status");

/// Errors of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bodies the proxy answers with: an upstream's streamed body, or one the gateway made.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// `trusted_ips` parsed once per configuration (the pointer tells when it changed).
struct TrustedCache {
    config: Arc<Config>,
    trusted: Trusted,
}

/// The proxy's request handler.
pub struct Proxy {
    node: Arc<Node>,
    trusted: ArcSwap<TrustedCache>,
    pool: Arc<Pool>,
}

/// What a matched route leaves for the upstream request, owned so the request can change.
struct Routed {
    route: usize,
    service: Option<usize>,
    preserve_host: bool,
    request_buffering: bool,
    upstream_path: String,
    prefix: Option<String>,
    captures: Option<UriCaptures>,
    /// Values of the URI captures a hashing upstream asks for (`hash_on_uri_capture`,
    /// `hash_fallback_uri_capture`).
    hash_captures: [Option<String>; 2],
}

/// What the access log says about the request.
struct Logged<'a> {
    /// The client's address (after realip processing).
    client: std::net::IpAddr,
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
        let pool = Pool::new();
        spawn_sweeper(Arc::downgrade(&pool), node.clone());
        Arc::new(Proxy {
            node,
            trusted: ArcSwap::from_pointee(TrustedCache { config, trusted }),
            pool,
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
        self: Arc<Self>,
        mut req: Request<RequestBody>,
        conn: Arc<ConnInfo>,
        started: Instant,
    ) -> Response<ProxyBody> {
        let _in_flight = self.node.counters.request();
        let config = self.node.config.load_full();
        let snapshot = self.node.snapshot.load_full();
        let id = crate::request_id::generate();
        let id = std::str::from_utf8(&id).unwrap_or_default();
        let version = req.version();
        // Only what the log and an error answer may need; header values are reference-counted,
        // so keeping them costs no copy.
        let kept = |name| req.headers().get(name).cloned();
        let (referer, user_agent) = match self.node.logs.load().proxy.is_off() {
            true => (None, None),
            false => (kept(http::header::REFERER), kept(http::header::USER_AGENT)),
        };
        let (accept, content_type) = (kept(http::header::ACCEPT), kept(http::header::CONTENT_TYPE));
        let trusted = self.trusted(&config);
        // A WebSocket (or other) upgrade asked by an HTTP/1.1 client: the client side of the
        // tunnel is taken before the request is taken apart.
        let upgrade =
            upgrade_request(&req).map(|protocol| (hyper::upgrade::on(&mut req), protocol));
        let (head, body) = req.into_parts();
        let scheme = if conn.tls {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let client_ip = headers::real_ip(
            conn.peer.ip(),
            &head.headers,
            &trusted.trusted,
            &config.real_ip_header,
            config.real_ip_recursive,
        );
        let mut ctx = Ctx::new(
            snapshot.clone(),
            head,
            client_ip,
            scheme.as_str(),
            id,
            started,
        );
        ctx.log.server_port = conn.local.port();
        ctx.log.tls = conn.tls_params;
        ctx.set_server_addr(conn.local);
        ctx.log.method = ctx.request.method.clone();
        ctx.log.uri = ctx.request.uri.clone();
        let mut protocol = if conn.tls {
            router::Protocol::Https
        } else {
            router::Protocol::Http
        };
        let mut collected: Vec<Arc<Entry>> = Vec::new();
        let mut reached_access = false;
        let mut flow = Flow {
            ctx: &mut ctx,
            collected: &mut collected,
            reached_access: &mut reached_access,
            protocol: &mut protocol,
        };
        // Awaited in place, not boxed: the own HTTP/1.1 loop pins the request's future where
        // it is made, so its size costs no copy there (a box would copy it once per request).
        let result = self
            .proxy(
                &mut flow,
                body,
                upgrade,
                &conn,
                &config,
                &snapshot,
                &trusted.trusted,
                started,
            )
            .await;
        if !reached_access {
            // Routing failed or the request stopped before access: global plugins only.
            phases::global_entries(snapshot.plugins.global(), protocol, &mut collected);
        }
        let mut answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                ctx.log.from_kong = true;
                self.error_answer(
                    &e,
                    accept.as_ref(),
                    content_type.as_ref(),
                    id,
                    &config,
                    started,
                )
            }
        };
        let (mut parts, body) = answer.response.into_parts();
        // The client is answered in its own protocol version, whatever the upstream spoke (an
        // HTTP/1.0 upstream must not turn the client's keep-alive connection into a 1.0 one).
        parts.version = version;
        // Plugins' headers not set yet (on answers the gateway made itself); each name replaces
        // what the answer held under it.
        Adding::to(&mut parts).insert_all(ctx.take_response_headers());
        let mut body = body;
        if collected
            .iter()
            .any(|e| e.plugin.filters_headers() || e.plugin.logs())
        {
            // Plugins see a map (kept upstream lines become entries).
            raw_headers::merge(&mut parts.extensions, &mut parts.headers);
        }
        if !collected.is_empty() {
            if let Err(e) = phases::header_filter(&collected, &mut ctx, &mut parts) {
                ctx.log.from_kong = true;
                let failed = self.error_answer(
                    &e,
                    accept.as_ref(),
                    content_type.as_ref(),
                    id,
                    &config,
                    started,
                );
                let (p, b) = failed.response.into_parts();
                parts = p;
                body = b;
                answer.bytes = failed.bytes;
            }
        }
        if config.headers.request_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                Adding::to(&mut parts).insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let status = parts.status.as_u16();
        let request = Logged {
            client: ctx.client_ip(),
            method: ctx.log.method.as_str(),
            uri: ctx.log.uri_text(),
            version: version_str(version),
            referer: referer.as_ref().and_then(|v| v.to_str().ok()),
            user_agent: user_agent.as_ref().and_then(|v| v.to_str().ok()),
        };
        self.access_log(&request, status, answer.bytes, id, started);
        if collected.is_empty() {
            return Response::from_parts(parts, body);
        }
        ctx.log.status = status;
        ctx.log.head_latency = started.elapsed().as_millis() as u64;
        let kept = parts
            .extensions
            .get::<RawHeaders>()
            .map_or(0, |raw| raw.written_size(&parts.headers));
        ctx.log.response_head_size = crate::plugins::ctx::response_head_size(&parts, kept);
        if collected.iter().any(|e| e.plugin.logs()) {
            ctx.log.response_headers = Some(Box::new(parts.headers.clone()));
        }
        let body = PhaseBody::new(body, ctx, collected);
        Response::from_parts(parts, body.boxed())
    }

    /// The response for an error, in the format the client accepts.
    fn error_answer(
        &self,
        e: &ProxyError,
        accept: Option<&HeaderValue>,
        content_type: Option<&HeaderValue>,
        id: &str,
        config: &Config,
        started: Instant,
    ) -> Answer {
        let mut negotiation = http::HeaderMap::new();
        if let Some(v) = accept {
            negotiation.insert(http::header::ACCEPT, v.clone());
        }
        if let Some(v) = content_type {
            negotiation.insert(http::header::CONTENT_TYPE, v.clone());
        }
        error_answer(e, &negotiation, id, config, started)
    }

    /// Writes the access log line of a request.
    fn access_log(
        &self,
        request: &Logged<'_>,
        status: u16,
        bytes: u64,
        id: &str,
        started: Instant,
    ) {
        let logs = self.node.logs.load();
        if !logs.proxy.is_off() {
            logs.proxy.log(&AccessEntry {
                remote_addr: request.client,
                method: request.method,
                uri: request.uri,
                version: request.version,
                status,
                bytes_sent: bytes,
                referer: request.referer,
                user_agent: request.user_agent,
                request_id: id,
                latency_ms: started.elapsed().as_millis() as u64,
            });
        }
    }

    /// Routes the request, runs the plugins' rewrite and access phases, and forwards it;
    /// every failure comes back as a [`ProxyError`].
    #[allow(clippy::too_many_arguments)]
    async fn proxy(
        &self,
        flow: &mut Flow<'_>,
        body: RequestBody,
        upgrade: Option<(hyper::upgrade::OnUpgrade, HeaderValue)>,
        conn: &ConnInfo,
        config: &Config,
        snapshot: &Snapshot,
        trusted: &Trusted,
        started: Instant,
    ) -> Result<Answer, ProxyError> {
        let ctx = &mut *flow.ctx;
        let wants_trailers = ctx
            .request
            .headers
            .get_all(http::header::TE)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("trailers"))
            });
        // As nginx does, a declared body over the limit is refused before anything else.
        let limit = config.client_max_body_size;
        let declared = ctx
            .request
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if limit > 0 && declared.is_some_and(|n| n > limit) {
            return Err(ProxyError::PayloadTooLarge);
        }
        ctx.log.request_size = declared.unwrap_or(0);
        let global = snapshot.plugins.global();
        if !global.is_empty() {
            phases::rewrite(global, ctx, *flow.protocol).await?;
            if let Some(exit) = ctx.exit.take().map(|e| *e) {
                return Ok(exit_answer(exit, config, started));
            }
        }
        // The request as the client sent it, kept aside while plugins may change it; both are
        // reference-counted views of the bytes read, so keeping them copies nothing.
        let raw_uri = ctx.request.uri.clone();
        let raw_path = raw_uri.path();
        // A path that does not decode to UTF-8 matches no route.
        let path = router::normalize_path(raw_path).ok_or(ProxyError::NoRoute)?;
        let host_value = ctx.request.headers.get(HOST).cloned();
        let host_header = host_value
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .or_else(|| raw_uri.authority().map(|a| a.as_str()));
        let believed = trusted.contains(conn.peer.ip());
        let forwarded_proto = believed
            .then(|| {
                header(
                    &ctx.request.headers,
                    HeaderName::from_static("x-forwarded-proto"),
                )
            })
            .flatten();
        let scheme = if conn.tls {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let routed = {
            let info = RequestInfo {
                method: ctx.request.method.as_str(),
                host: host_header,
                path: &path,
                scheme,
                forwarded_proto: forwarded_proto.as_deref(),
                port: conn.local.port(),
                sni: conn.sni.as_deref(),
                headers: &ctx.request.headers,
                version: ctx.request.version,
            };
            let m = snapshot.router.find(&info).ok_or(ProxyError::NoRoute)?;
            if let Some(mismatch) = m.protocol_mismatch {
                return match mismatch {
                    ProtocolMismatch::HttpsRequired { status: 426 } => {
                        Err(ProxyError::UpgradeRequired)
                    }
                    ProtocolMismatch::HttpsRequired { status } => {
                        let host = host_header.unwrap_or_default();
                        let pq = ctx.request.uri.path_and_query().map_or("/", |p| p.as_str());
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
            m.service.ok_or(ProxyError::NoService)?;
            if m.route.protocols.contains(router::Protocol::Grpc)
                || m.route.protocols.contains(router::Protocol::Grpcs)
            {
                *flow.protocol = if conn.tls {
                    router::Protocol::Grpcs
                } else {
                    router::Protocol::Grpc
                };
            }
            let hash_captures = uri_captures(snapshot, m.service_index, m.captures.as_ref());
            Routed {
                route: m.route_index,
                service: m.service_index,
                hash_captures,
                preserve_host: m.route.preserve_host,
                request_buffering: m.route.request_buffering,
                upstream_path: {
                    // Room for the query the request may add.
                    let query = ctx.request.uri.query().map_or(0, |q| q.len() + 1);
                    let mut path = String::with_capacity(64 + query);
                    let _ = write!(path, "{}", m.upstream_path);
                    match router::escape_path(&path) {
                        std::borrow::Cow::Borrowed(_) => path,
                        std::borrow::Cow::Owned(escaped) => escaped,
                    }
                },
                prefix: m.stripped_prefix.filter(|p| *p != "/").map(str::to_owned),
                // Owned only when the route's regex has groups (plugins' `uri_captures`).
                captures: m.captures.as_ref().map(|c| UriCaptures {
                    numbered: (0..c.len()).map(|i| c.get(i).map(str::to_owned)).collect(),
                    named: c
                        .named()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                }),
            }
        };
        ctx.set_route(routed.route, routed.service);
        if let Some(captures) = routed.captures {
            ctx.set_uri_captures(captures);
        }
        ctx.service().ok_or(ProxyError::NoService)?;

        // Access: the route's plugins, collected for the later phases.
        let chain = snapshot.plugins.for_route(routed.route);
        *flow.reached_access = true;
        let mut body = Some(body);
        if !chain.is_empty() {
            if upgrade.is_none() && chain.needs_body(&ctx.request) {
                if let Some(b) = body.take() {
                    let bytes = read_body(
                        &ctx.request.headers,
                        b,
                        config.client_max_body_size,
                        config.proxy_client.body_timeout,
                    )
                    .await?;
                    ctx.log.request_size = bytes.len() as u64;
                    ctx.set_request_body(bytes);
                }
            }
            phases::access(chain, ctx, *flow.protocol, flow.collected).await?;
            if let Some(exit) = ctx.exit.take().map(|e| *e) {
                return Ok(exit_answer(exit, config, started));
            }
        }
        let service = snapshot
            .router
            .service_at(routed.service.unwrap_or(usize::MAX))
            .ok_or(ProxyError::NoService)?;
        // A plugin may have set the Host the upstream gets.
        let plugin_host = ctx
            .request
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| Some(*h) != host_header)
            .map(str::to_owned);
        if flow.collected.iter().any(|e| e.plugin.logs()) {
            ctx.log.request_headers = Some(Box::new(ctx.request.headers.clone()));
        }
        // Balancer: the first peer, whose name the upstream Host is built from.
        let route = snapshot
            .routes
            .get(routed.service.unwrap_or(usize::MAX))
            .ok_or(ProxyError::NoService)?;
        let consumer = ctx
            .consumer_id()
            .or_else(|| ctx.credential().map(|c| &*c.id));
        let input = HashInput {
            consumer,
            ip: ctx.client_ip(),
            headers: &ctx.request.headers,
            path: &path,
            query: ctx.request.uri.query(),
            captures: [
                routed.hash_captures[0].as_deref(),
                routed.hash_captures[1].as_deref(),
            ],
        };
        let mut peers = Peers::start(
            route,
            &service.host,
            service.port,
            &self.node.balancers.dns,
            &input,
        )
        .await?;
        peers.pick()?;
        let mut head = std::mem::replace(&mut ctx.request, Request::new(()).into_parts().0);
        let (tls, h2) = match service.protocol {
            router::Protocol::Https | router::Protocol::Wss => (true, false),
            router::Protocol::Grpcs => (true, true),
            router::Protocol::Grpc => (false, true),
            _ => (false, false),
        };
        let default_port = if tls { 443 } else { 80 };
        let fixed_host = match (plugin_host, routed.preserve_host, host_header) {
            (Some(h), _, _) => Some(h),
            (None, true, Some(h)) => Some(h.to_owned()),
            _ => None,
        };
        let host_rule = HostRule {
            fixed: fixed_host.as_deref(),
            default_port,
        };
        let chosen = peers.chosen();
        let host_for_upstream = host_rule.host(chosen.hostname, chosen.port);
        ctx.log.upstream_addr = Some((chosen.host.to_owned(), chosen.port));
        // A plugin that changed the request's path (request-transformer's `replace.uri`, as
        // Kong's `kong.service.request.set_path`) chose the whole upstream path itself.
        let mut path_and_query = if ctx.upstream_path_set() || head.uri.path() != raw_path {
            router::escape_path(head.uri.path()).into_owned()
        } else {
            routed.upstream_path
        };
        if let Some(q) = head.uri.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        ctx.log.upstream_uri = Some(path_and_query.clone());
        // HTTP/1.1 carries the path alone; HTTP/2 also needs the scheme and authority.
        head.uri = if h2 {
            let scheme = if tls { "https" } else { "http" };
            format!("{scheme}://{host_for_upstream}{path_and_query}").parse()
        } else {
            Uri::try_from(path_and_query)
        }
        .map_err(|_| ProxyError::BadRequest)?;
        let down_host = host_header
            .map(|h| {
                h.rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(h, |(h, _)| h)
            })
            .unwrap_or_default();
        let down = Downstream {
            peer: conn.peer.ip(),
            client: ctx.client_ip(),
            scheme: scheme.as_str(),
            port: &conn.port_value,
            peer_value: &conn.peer_value,
            host_value: host_value
                .as_ref()
                .filter(|v| !down_host.is_empty() && v.to_str().ok() == Some(down_host)),
            host: down_host,
            path: raw_path,
            prefix: routed.prefix.as_deref(),
        };
        let upgrade = upgrade.filter(|_| !h2);
        let mut overlay =
            headers::upstream_request(&mut head.headers, &down, trusted, &host_for_upstream);
        if h2 {
            // The authority travels in the URI; gRPC needs `te: trailers` kept.
            overlay.host = None;
            if wants_trailers {
                head.headers
                    .insert(http::header::TE, HeaderValue::from_static("trailers"));
            }
            head.version = http::Version::HTTP_2;
        } else {
            head.version = http::Version::HTTP_11;
        }
        if let Some((_, protocol)) = &upgrade {
            head.headers.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("keep-alive, Upgrade"),
            );
            head.headers.insert(http::header::UPGRADE, protocol.clone());
        }
        if config.headers_upstream_request_id {
            if let Ok(v) = HeaderValue::from_str(ctx.request_id()) {
                head.headers.insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let profile = snapshot.upstreams.tls(service);
        let target = Target {
            tls: tls.then_some(&**profile),
            h2,
            upgrade: upgrade.is_some(),
            // The server name sent is the Host going upstream, without its port.
            host: host_rule,
            timeouts: Timeouts {
                connect: std::time::Duration::from_millis(service.connect_timeout),
                write: std::time::Duration::from_millis(service.write_timeout),
                read: std::time::Duration::from_millis(service.read_timeout),
            },
            retries: service.retries,
            client_body_timeout: config.proxy_client.body_timeout,
        };
        let outgoing = match (ctx.take_request_body(), body) {
            (Some(bytes), _) => Outgoing::Buffered(bytes),
            (None, Some(body)) if routed.request_buffering && upgrade.is_none() => {
                let bytes = read_body(
                    &head.headers,
                    body,
                    config.client_max_body_size,
                    config.proxy_client.body_timeout,
                )
                .await?;
                ctx.log.request_size = bytes.len() as u64;
                Outgoing::Buffered(bytes)
            }
            // A body that arrived whole with its head needs no streaming.
            (None, Some(body)) => match body.ready() {
                Some(bytes) if upgrade.is_none() => Outgoing::Buffered(bytes),
                _ => Outgoing::Streamed(body),
            },
            (None, None) => Outgoing::Buffered(Bytes::new()),
        };
        let sent = Instant::now();
        let proxy_latency = sent.duration_since(started).as_millis() as u64;
        let keepalive = snapshot.upstreams.keepalive;
        ctx.log.proxy_latency = Some(proxy_latency);
        let mut resp = forward::send(
            &self.pool,
            keepalive,
            head,
            &mut overlay,
            outgoing,
            &target,
            &mut peers,
        )
        .await?;
        let upstream_latency = sent.elapsed().as_millis() as u64;
        ctx.log.upstream_latency = Some(upstream_latency);
        ctx.log.upstream_status = Some(resp.status().as_u16());
        let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let tunnel = match upgrade {
            Some((client, _)) if switched => Some((client, hyper::upgrade::on(&mut resp))),
            // An upstream may only switch protocols when asked to.
            None if switched => return Err(ProxyError::BadGateway),
            _ => None,
        };
        let (mut parts, body) = resp.into_parts();
        // The own client's answers keep their header lines as they came, for the client's
        // writer to copy out; what the map on top cannot express (a `Via` to extend, headers
        // `Connection` names, a cookie to add beside the upstream's) turns them into a map.
        let (mut upstream_server, mut upstream_length) = (false, None);
        if let Some(raw) = parts.extensions.get::<RawHeaders>() {
            let mut plain = tunnel.is_none() && peers.cookie().is_none();
            for (_, value, kind) in raw.iter() {
                match kind {
                    Kind::TransferEncoding | Kind::Via => plain = false,
                    Kind::Connection => plain &= !headers::names_more(value),
                    Kind::Server => upstream_server = true,
                    Kind::ContentLength => {
                        upstream_length =
                            std::str::from_utf8(value).ok().and_then(|v| v.parse().ok())
                    }
                    _ => {}
                }
            }
            if !plain {
                parts.headers = raw.to_map(RESPONSE_ROOM);
                parts.extensions.remove::<RawHeaders>();
            }
        }
        let upgrade_headers = tunnel.as_ref().map(|_| {
            (
                parts.headers.get(http::header::UPGRADE).cloned(),
                parts.headers.get(http::header::CONNECTION).cloned(),
            )
        });
        if parts.headers.contains_key(http::header::TRANSFER_ENCODING) {
            // The body was read by its coding; a length beside it says nothing.
            parts.headers.remove(http::header::CONTENT_LENGTH);
            upstream_length = None;
        }
        headers::strip_hop_by_hop(&mut parts.headers);
        if let Some(cookie) = peers.cookie().and_then(|c| HeaderValue::from_str(c).ok()) {
            // Cookie hashing: the client gets the cookie it lacked, next to the upstream's.
            parts.headers.append(http::header::SET_COOKIE, cookie);
        }
        if let Some((upgrade_to, connection)) = upgrade_headers {
            if let Some(v) = upgrade_to {
                parts.headers.insert(http::header::UPGRADE, v);
            }
            if let Some(v) = connection {
                parts.headers.insert(http::header::CONNECTION, v);
            }
        }
        if let Some((client, upstream)) = tunnel {
            tokio::spawn(tunnel_upgraded(client, upstream));
        }
        // A kept head has neither `Via` nor `Server` in its (empty) map: what it had, the
        // look at its lines above found.
        let via = config.headers.via.then(|| {
            let ours = if h2 {
                crate::version::VIA_HTTP2
            } else {
                crate::version::VIA_HTTP1
            };
            match parts.headers.get(VIA).and_then(|v| v.to_str().ok()) {
                Some(prior) => HeaderValue::from_str(&format!("{prior}, {ours}")).ok(),
                None => Some(HeaderValue::from_static(ours)),
            }
        });
        let server =
            config.headers.server && !upstream_server && !parts.headers.contains_key(SERVER);
        let status = u64::from(parts.status.as_u16());
        let mut h = Adding::to(&mut parts);
        // Plugins' headers first (moved, not cloned), then the gateway's, which replace a
        // plugin's value of the same name as Kong's do.
        h.insert_all(ctx.take_response_headers());
        if let Some(v) = via.flatten() {
            h.insert(VIA, v);
        }
        if server {
            h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
        }
        if config.headers.upstream_latency {
            h.insert(
                X_KONG_UPSTREAM_LATENCY.clone(),
                headers::number(upstream_latency),
            );
        }
        if config.headers.proxy_latency {
            h.insert(X_KONG_PROXY_LATENCY.clone(), headers::number(proxy_latency));
        }
        if config.headers.upstream_status {
            h.insert(X_KONG_UPSTREAM_STATUS.clone(), headers::number(status));
        }
        let bytes = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or(upstream_length)
            .unwrap_or(0);
        // Least-connections counts the request in flight until its body is over.
        let body = Held::new(body.map_err(BoxError::from), peers.take_in_flight());
        Ok(Answer {
            response: Response::from_parts(parts, body.boxed()),
            bytes,
        })
    }
}

/// The per-request state `proxy` fills for `answer`.
struct Flow<'a> {
    ctx: &'a mut Ctx,
    collected: &'a mut Vec<Arc<Entry>>,
    reached_access: &'a mut bool,
    protocol: &'a mut router::Protocol,
}

/// `Server` and `X-Kong-Response-Latency` on an answer the gateway made itself.
fn kong_generated(h: &mut http::HeaderMap, config: &Config, started: Instant) {
    if config.headers.server {
        h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    if config.headers.response_latency {
        let ms = started.elapsed().as_millis() as u64;
        h.insert(X_KONG_RESPONSE_LATENCY.clone(), headers::number(ms));
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
    kong_generated(&mut parts.headers, config, started);
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

/// The answer of a plugin that exited early.
fn exit_answer(exit: Exit, config: &Config, started: Instant) -> Answer {
    let bytes = exit.body.len() as u64;
    let mut resp = Response::new(full(exit.body));
    *resp.status_mut() = exit.status;
    *resp.headers_mut() = exit.headers;
    kong_generated(resp.headers_mut(), config, started);
    Answer {
        response: resp,
        bytes,
    }
}

/// Joins a client and an upstream that switched protocols (WebSocket) and copies both ways
/// until either side closes.
async fn tunnel_upgraded(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "protocol upgrade failed");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` + `Upgrade`).
fn upgrade_request(req: &Request<RequestBody>) -> Option<HeaderValue> {
    if req.version() != http::Version::HTTP_11 {
        return None;
    }
    let h = req.headers();
    let asked = h.get_all(http::header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    asked
        .then(|| h.get(http::header::UPGRADE).cloned())
        .flatten()
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
    mut body: RequestBody,
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
    if let Some(bytes) = body.ready() {
        if limit > 0 && bytes.len() as u64 > limit {
            return Err(ProxyError::PayloadTooLarge);
        }
        return Ok(bytes);
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

/// Closes expired idle upstream connections every few seconds, for as long as the pool lives.
fn spawn_sweeper(pool: std::sync::Weak<Pool>, node: Arc<Node>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = pool.upgrade() else { return };
            let idle = node.snapshot.load().upstreams.keepalive.idle_timeout;
            pool.sweep(std::time::Duration::from_secs(idle));
        }
    });
}

/// The values of the URI captures the service's hashing upstream asks for, if any.
fn uri_captures(
    snapshot: &Snapshot,
    service: Option<usize>,
    captures: Option<&router::UriCaptures<'_>>,
) -> [Option<String>; 2] {
    use crate::balancer::spec::HashOn;
    let (Some(spec), Some(captures)) = (
        service
            .and_then(|i| snapshot.routes.get(i))
            .and_then(|r| r.spec()),
        captures,
    ) else {
        return [None, None];
    };
    let get = |on: &HashOn| match on {
        HashOn::UriCapture(group) => match group.parse::<usize>() {
            Ok(n) => captures.get(n),
            Err(_) => captures.name(group),
        }
        .map(str::to_owned),
        _ => None,
    };
    [get(&spec.hash_on), get(&spec.hash_fallback)]
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
    const OWN_HTTP1: bool = true;

    fn handle(
        self: Arc<Self>,
        req: Request<RequestBody>,
        conn: Arc<ConnInfo>,
    ) -> impl std::future::Future<Output = Response<Self::Body>> + Send + 'static {
        // The request's future is `answer`'s own: no wrapper to move the request into first.
        self.answer(req, conn, Instant::now())
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
            client: conn.peer.ip(),
            method: "-",
            uri: "-",
            version: "-",
            referer: None,
            user_agent: None,
        };
        let mut response = answer.response;
        if config.headers.request_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                response.headers_mut().insert(X_KONG_REQUEST_ID.clone(), v);
            }
        }
        let status = response.status().as_u16();
        self.access_log(&request, status, answer.bytes, id, started);
        response
    }
}
