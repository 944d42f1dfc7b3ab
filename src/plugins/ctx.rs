//! [`Ctx`]: one request as plugins see it — the request on its way upstream, the matched route
//! and service, the consumer once identified, an early answer, and what the log needs.

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::PluginError;
use crate::router::{RouteInfo, ServiceInfo};
use crate::snapshot::Snapshot;
use crate::store::schema::Doc;

static X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
static X_CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
static X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
static X_CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
static X_ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");

/// The id logged for the one workspace a node has (`default`).
pub const DEFAULT_WORKSPACE_ID: &str = "00000000-0000-4000-8000-000000000001";

/// An answer a plugin gives instead of the upstream's.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Status.
    pub status: StatusCode,
    /// Headers (besides the gateway's own).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Exit {
    /// Kong's usual plugin answer: `{"message": "<message>"}` as JSON.
    pub fn message(status: StatusCode, message: &str) -> Exit {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        Exit {
            status,
            headers,
            body: Bytes::from(json!({ "message": message }).to_string()),
        }
    }

    /// A JSON answer with `body`.
    pub fn json(status: StatusCode, body: &Value) -> Exit {
        let mut exit = Exit::message(status, "");
        exit.body = Bytes::from(body.to_string());
        exit
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Exit {
        self.headers.insert(name, value);
        self
    }
}

/// The credential an auth plugin authenticated with.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Its entity id.
    pub id: Arc<str>,
    /// Its consumer's id.
    pub consumer_id: Option<Arc<str>>,
    /// What `X-Credential-Identifier` carries (key-auth: the id; basic-auth and hmac-auth: the
    /// username; jwt: the key).
    pub identifier: Arc<str>,
    /// `identifier` as a header value; `None` when it cannot be one.
    pub identifier_value: Option<HeaderValue>,
}

impl Credential {
    /// The record of the credential `doc`, identified upstream by `identifier`.
    pub fn new(doc: &Doc, identifier: &str) -> Credential {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(Arc::<str>::from);
        Credential {
            id: text(doc.get("id")).unwrap_or_else(|| Arc::from("")),
            consumer_id: text(doc.get("consumer").and_then(|c| c.get("id"))),
            identifier: Arc::from(identifier),
            identifier_value: HeaderValue::from_str(identifier).ok(),
        }
    }
}

/// The capture groups of the regex path a route matched: Kong's `uri_captures`, by number
/// (0 is the whole match) and by name.
#[derive(Debug, Clone, Default)]
pub struct UriCaptures {
    /// Groups by number; `None` for a group that did not take part.
    pub numbered: Vec<Option<String>>,
    /// Named groups that took part.
    pub named: Vec<(String, String)>,
}

impl UriCaptures {
    /// Group `i` (0 is the whole match).
    pub fn get(&self, i: usize) -> Option<&str> {
        self.numbered.get(i)?.as_deref()
    }

    /// The group called `name`.
    pub fn name(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// [`Ctx::shared`] keys the context itself uses.
const URI_CAPTURES: &str = "kong.uri_captures";
const UPSTREAM_PATH_SET: &str = "kong.upstream_path_set";

/// Facts the proxy records for the log phase.
#[derive(Debug, Clone, Default)]
pub struct LogFacts {
    /// The method the client sent.
    pub method: http::Method,
    /// Request URI as received (its path and query; see [`LogFacts::uri_text`]).
    pub uri: http::Uri,
    /// The request's headers, kept when a log plugin runs.
    pub request_headers: Option<Box<HeaderMap>>,
    /// The request body size, when known.
    pub request_size: u64,
    /// The URI sent upstream.
    pub upstream_uri: Option<String>,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<u16>,
    /// The status sent to the client.
    pub status: u16,
    /// The response headers, kept when a log plugin runs.
    pub response_headers: Option<Box<HeaderMap>>,
    /// Body bytes sent to the client.
    pub response_size: u64,
    /// Milliseconds from receiving the request to sending it upstream.
    pub proxy_latency: Option<u64>,
    /// Milliseconds the upstream took to answer the head.
    pub upstream_latency: Option<u64>,
    /// Total milliseconds (set when the response is complete).
    pub request_latency: u64,
    /// Whether the answer came from the gateway (a plugin or an error) rather than upstream.
    pub from_kong: bool,
    /// The upstream address tried, `ip:port`.
    pub upstream_addr: Option<(String, u16)>,
    /// The port of the listener the request came in on (`request.url` carries it).
    pub server_port: u16,
    /// TLS parameters of the client connection, for HTTPS requests.
    pub tls: Option<TlsParams>,
    /// Bytes of the request line and headers as received (nginx's `$request_length` less the
    /// body); computed when the context is created.
    pub request_head_size: u64,
    /// Bytes of the response status line and headers sent to the client.
    pub response_head_size: u64,
    /// Milliseconds from receiving the request to having the response head ready.
    pub head_latency: u64,
}

impl LogFacts {
    /// The request URI as received: path and query.
    pub fn uri_text(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

/// The TLS parameters a client connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsParams {
    /// Protocol version as OpenSSL names it (`TLSv1.3`).
    pub version: &'static str,
    /// Cipher suite name.
    pub cipher: &'static str,
}

/// Kong's `latencies` of a request, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latencies {
    /// Time the gateway spent: until the request went upstream, or until it answered itself.
    pub kong: u64,
    /// Time the upstream took to answer the head (`None`: no upstream answered; logged as -1).
    pub proxy: Option<u64>,
    /// Total time, from the first byte received to the last byte sent.
    pub request: u64,
    /// Time spent streaming the upstream's body to the client.
    pub receive: u64,
}

/// Bytes a request line and headers take on the wire (HTTP/1.1 framing).
pub fn request_head_size(parts: &http::request::Parts) -> u64 {
    let target = parts.uri.path_and_query().map_or(1, |p| p.as_str().len());
    // `METHOD target HTTP/1.1\r\n`, each `name: value\r\n`, then the empty line.
    let line = parts.method.as_str().len() + 1 + target + 1 + 8 + 2;
    (line + headers_size(&parts.headers) + 2) as u64
}

/// Bytes a response status line and headers take on the wire (HTTP/1.1 framing), `kept`
/// of them in header lines written before the map's.
pub fn response_head_size(parts: &http::response::Parts, kept: usize) -> u64 {
    let reason = parts.status.canonical_reason().map_or(0, str::len);
    // `HTTP/1.1 200 OK\r\n`, the headers, then the empty line.
    (8 + 1 + 3 + 1 + reason + 2 + kept + headers_size(&parts.headers) + 2) as u64
}

fn headers_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
        .sum()
}

/// One request as plugins see it.
pub struct Ctx {
    snapshot: Arc<Snapshot>,
    /// The request head as it will be sent upstream: plugins change headers, path and query
    /// here.
    pub request: http::request::Parts,
    client_ip: IpAddr,
    server_addr: Option<std::net::SocketAddr>,
    scheme: &'static str,
    id: Box<str>,
    route: Option<usize>,
    service: Option<usize>,
    consumer: Option<Arc<Doc>>,
    /// The consumer's `id` (read from its document once).
    consumer_id: Option<Arc<str>>,
    credential: Option<Credential>,
    authenticated_groups: Option<Vec<String>>,
    body: Option<Bytes>,
    /// Boxed: rare, and the context stays small to move.
    pub(crate) exit: Option<Box<Exit>>,
    /// Headers plugins add to the response, each name once (a short list: set in place when
    /// the response is built, no map of its own).
    response_headers: Vec<(HeaderName, HeaderValue)>,
    shared: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    serialize_values: Vec<(Vec<String>, Option<Value>)>,
    started: Instant,
    /// What the log phase reports.
    pub log: LogFacts,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("id", &self.id)
            .field("route", &self.route)
            .field("consumer", &self.consumer_id())
            .finish()
    }
}

impl Ctx {
    /// A context for a request received from `client_ip` over `scheme`.
    pub fn new(
        snapshot: Arc<Snapshot>,
        request: http::request::Parts,
        client_ip: IpAddr,
        scheme: &'static str,
        id: &str,
        started: Instant,
    ) -> Ctx {
        let log = LogFacts {
            request_head_size: request_head_size(&request),
            ..LogFacts::default()
        };
        Ctx {
            snapshot,
            request,
            client_ip,
            server_addr: None,
            scheme,
            id: id.into(),
            route: None,
            service: None,
            consumer: None,
            consumer_id: None,
            credential: None,
            authenticated_groups: None,
            body: None,
            exit: None,
            response_headers: Vec::new(),
            shared: HashMap::new(),
            serialize_values: Vec::new(),
            started,
            log,
        }
    }

    /// The configuration snapshot the request runs on.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The client's address (after `trusted_ips` / `real_ip_header` processing).
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    /// The local address the client connected to (Kong's `server_addr` and `server_port`).
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.server_addr
    }

    pub(crate) fn set_server_addr(&mut self, addr: std::net::SocketAddr) {
        self.server_addr = Some(addr);
    }

    /// `http` or `https`: how the client reached the gateway.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The request id (`X-Kong-Request-Id`).
    pub fn request_id(&self) -> &str {
        &self.id
    }

    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the request arrived, in milliseconds since the Unix epoch (told from the wall
    /// clock now, when asked: most requests are never logged with it).
    pub fn started_at_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(self.started.elapsed().as_millis() as u64)
    }

    pub(crate) fn set_route(&mut self, route: usize, service: Option<usize>) {
        self.route = Some(route);
        self.service = service;
    }

    /// The matched route.
    pub fn route(&self) -> Option<&RouteInfo> {
        self.route.and_then(|i| self.snapshot.router.route_at(i))
    }

    /// The matched route's service.
    pub fn service(&self) -> Option<&ServiceInfo> {
        self.service
            .and_then(|i| self.snapshot.router.service_at(i))
    }

    /// A request header as text (the first value).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Sets (replaces) a header of the upstream request.
    pub fn set_header(&mut self, name: HeaderName, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.request.headers.insert(name, v);
        }
    }

    /// Kong's `kong.service.request.set_path`: `path` becomes the whole upstream path (the
    /// route's stripping and the service's path no longer apply); characters a request line
    /// cannot carry are percent-escaped. Fails unless `path` starts with `/`.
    pub fn set_upstream_path(&mut self, path: &str) -> Result<(), PluginError> {
        if !path.starts_with('/') {
            return Err(PluginError::new(format!("path must start with /: {path}")));
        }
        let path = crate::router::escape_path(path);
        let query = self.request.uri.query().map(str::to_owned);
        self.set_path_and_query(&path, query.as_deref())?;
        self.set_shared(UPSTREAM_PATH_SET, ());
        Ok(())
    }

    /// Whether a plugin chose the upstream path with [`Ctx::set_upstream_path`].
    pub(crate) fn upstream_path_set(&self) -> bool {
        self.shared::<()>(UPSTREAM_PATH_SET).is_some()
    }

    /// Kong's `kong.service.request.set_raw_query`: the query string sent upstream (empty
    /// for none), used as given.
    pub fn set_upstream_query(&mut self, query: &str) -> Result<(), PluginError> {
        let path = self.request.uri.path().to_owned();
        self.set_path_and_query(&path, Some(query).filter(|q| !q.is_empty()))
    }

    fn set_path_and_query(&mut self, path: &str, query: Option<&str>) -> Result<(), PluginError> {
        let pq = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let mut parts = std::mem::take(&mut self.request.uri).into_parts();
        let result = http::uri::PathAndQuery::try_from(pq.as_str())
            .map_err(|e| PluginError::new(format!("invalid upstream URI {pq}: {e}")));
        if let Ok(pq) = &result {
            parts.path_and_query = Some(pq.clone());
        }
        // On failure the URI goes back as it was.
        self.request.uri = http::Uri::from_parts(parts).unwrap_or_default();
        result.map(|_| ())
    }

    /// The request body, when a plugin asked for it ([`super::Plugin::reads_request_body`]).
    pub fn request_body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Replaces the request body sent upstream (its `Content-Length` follows).
    pub fn set_request_body(&mut self, body: Bytes) {
        if self
            .request
            .headers
            .contains_key(http::header::CONTENT_LENGTH)
        {
            self.request
                .headers
                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        self.body = Some(body);
    }

    pub(crate) fn take_request_body(&mut self) -> Option<Bytes> {
        self.body.take()
    }

    /// The identified consumer.
    pub fn consumer(&self) -> Option<&Arc<Doc>> {
        self.consumer.as_ref()
    }

    /// The identified consumer's id.
    pub fn consumer_id(&self) -> Option<&str> {
        self.consumer_id.as_deref()
    }

    /// The credential the consumer authenticated with.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// Groups an external authenticator established (used by acl when there is no consumer).
    pub fn authenticated_groups(&self) -> Option<&[String]> {
        self.authenticated_groups.as_deref()
    }

    /// Records groups established by an authenticator.
    pub fn set_authenticated_groups(&mut self, groups: Vec<String>) {
        self.authenticated_groups = Some(groups);
    }

    /// Authenticates `consumer` (with `credential`) and sets the upstream headers every auth
    /// plugin sets: `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username` (removed when
    /// the consumer has none), `X-Credential-Identifier`, and clears `X-Anonymous-Consumer`.
    pub fn authenticate(&mut self, consumer: Arc<Doc>, credential: Option<Credential>) {
        let values = super::identity::consumer_headers(&consumer);
        let identifier = credential.as_ref().and_then(|c| c.identifier_value.clone());
        let h = &mut self.request.headers;
        // Removing a header the request lacks still costs a lookup: one look at the names
        // (usually a handful) tells whether any of these can be there at all.
        let present = h.keys().any(|k| {
            let k = k.as_str();
            k.starts_with("x-consumer-")
                || k.starts_with("x-credential-")
                || k == X_ANONYMOUS_CONSUMER.as_str()
        });
        for (name, value) in [
            (&X_CONSUMER_ID, values.id.clone()),
            (&X_CONSUMER_CUSTOM_ID, values.custom_id.clone()),
            (&X_CONSUMER_USERNAME, values.username.clone()),
            (&X_CREDENTIAL_IDENTIFIER, identifier),
        ] {
            match value {
                Some(v) => {
                    h.insert(name.clone(), v);
                }
                None if present => {
                    h.remove(name);
                }
                None => {}
            }
        }
        if present {
            h.remove(&X_ANONYMOUS_CONSUMER);
        }
        self.consumer = Some(consumer);
        self.consumer_id = values.id_text.clone();
        self.credential = credential;
    }

    /// Maps the request to the `anonymous` consumer (id or username), as auth plugins do when
    /// authentication fails and `anonymous` is configured; `X-Anonymous-Consumer: true` is
    /// set. Fails (500) when that consumer does not exist.
    pub fn authenticate_anonymous(&mut self, anonymous: &str) -> Result<(), PluginError> {
        let consumer = self.snapshot.index.consumer(anonymous).ok_or_else(|| {
            PluginError::new(format!(
                "anonymous consumer {anonymous} is configured but doesn't exist"
            ))
        })?;
        self.authenticate(consumer.clone(), None);
        self.request.headers.insert(
            X_ANONYMOUS_CONSUMER.clone(),
            HeaderValue::from_static("true"),
        );
        Ok(())
    }

    /// Answers the request with `exit` instead of proxying it. The rest of the access phase is
    /// skipped; header filters and loggers still run.
    pub fn exit(&mut self, exit: Exit) {
        self.exit = Some(Box::new(exit));
    }

    /// Kong's `kong.response.error`: `status` with `message` in the format the client's
    /// `Accept` asks for (JSON when it asks for nothing), carrying the request id. Plugins
    /// refusing a request (401, 403, 429...) answer this way.
    pub fn error(&self, status: StatusCode, message: &str) -> Exit {
        use crate::proxy::error::{body, negotiate};
        let format = negotiate(&self.request.headers, true, "");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        Exit {
            status,
            headers,
            body: Bytes::from(body(format, message, &self.id)),
        }
    }

    /// Whether a plugin answered early.
    pub fn exited(&self) -> bool {
        self.exit.is_some()
    }

    /// Adds a header to the response the client gets, whatever produces it (rate limit
    /// headers decided in `access`, for instance).
    /// A later value under the same name replaces the earlier one.
    pub fn add_response_header(&mut self, name: HeaderName, value: HeaderValue) {
        match self.response_headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => {
                if self.response_headers.capacity() == 0 {
                    // Room for a rate limiting plugin's headers and, when they are set on
                    // kept upstream lines, the gateway's own, without growing.
                    self.response_headers.reserve(12);
                }
                self.response_headers.push((name, value));
            }
        }
    }

    /// The headers plugins added to the response, each name once.
    pub(crate) fn take_response_headers(&mut self) -> Vec<(HeaderName, HeaderValue)> {
        std::mem::take(&mut self.response_headers)
    }

    /// Data shared between phases and plugins of this request, by key.
    pub fn shared<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.shared.get(key)?.downcast_ref()
    }

    /// Shared data under `key`, to change in place.
    pub fn shared_mut<T: Any + Send + Sync>(&mut self, key: &'static str) -> Option<&mut T> {
        self.shared.get_mut(key)?.downcast_mut()
    }

    /// Stores shared data under `key`.
    pub fn set_shared<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.shared.insert(key, Box::new(value));
    }

    /// The capture groups of the route's regex path, when it has groups.
    pub fn uri_captures(&self) -> Option<&UriCaptures> {
        self.shared(URI_CAPTURES)
    }

    pub(crate) fn set_uri_captures(&mut self, captures: UriCaptures) {
        self.set_shared(URI_CAPTURES, captures);
    }

    /// Kong's `kong.log.set_serialize_value(key, value)`: sets (or, with `None`, removes) a
    /// field of what [`Ctx::serialize`] returns, for every logger of the request (a
    /// correlation id, a trace id). A dotted key (`a.b`) addresses a nested field, creating
    /// objects on the way; `\.` is a literal dot.
    pub fn set_serialize_value(&mut self, key: &str, value: Option<Value>) {
        self.serialize_values.push((serialize_key_path(key), value));
    }

    /// Whether the response came from the upstream (Kong's response source `service`), rather
    /// than from the gateway itself (an error, a plugin's exit, a redirect).
    pub fn proxied(&self) -> bool {
        !self.log.from_kong && self.log.upstream_status.is_some()
    }

    /// Kong's `latencies`.
    pub fn latencies(&self) -> Latencies {
        let log = &self.log;
        let proxied = self.proxied();
        Latencies {
            kong: match log.proxy_latency {
                Some(l) if proxied => l,
                _ => log.head_latency,
            },
            proxy: log.upstream_latency.filter(|_| proxied),
            request: log.request_latency,
            receive: if proxied {
                log.request_latency.saturating_sub(log.head_latency)
            } else {
                0
            },
        }
    }

    /// Bytes received from the client: request line, headers and body (`$request_length`).
    pub fn request_length(&self) -> u64 {
        self.log.request_head_size + self.log.request_size
    }

    /// Bytes sent to the client: status line, headers and body (`$bytes_sent`).
    pub fn bytes_sent(&self) -> u64 {
        self.log.response_head_size + self.log.response_size
    }

    /// Kong's log serializer (`kong.log.serialize()`): the JSON object loggers send.
    ///
    /// Request headers are the ones sent upstream (plugins may have changed them), with
    /// `authorization` and `proxy-authorization` redacted; `route`, `service` and `consumer`
    /// are the entities as stored; `tries`, `authenticated_entity`, `consumer`, `route`,
    /// `service` and `request.tls` are left out when there is nothing to say.
    pub fn serialize(&self) -> Value {
        let log = &self.log;
        let started_at = self.started_at_ms();
        let query = log.uri.query().unwrap_or_default();
        let host = log
            .request_headers
            .as_ref()
            .and_then(|h| h.get(http::header::HOST))
            .or_else(|| self.request.headers.get(http::header::HOST))
            .and_then(|v| v.to_str().ok())
            .map(|h| {
                // nginx's `$host`: without the port, lower-cased.
                let bare = match h.strip_prefix('[') {
                    Some(v6) => v6.split_once(']').map_or(h, |(a, _)| a),
                    None => h.rsplit_once(':').map_or(h, |(a, _)| a),
                };
                bare.to_ascii_lowercase()
            })
            .or_else(|| self.request.uri.host().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let url = format!(
            "{}://{host}:{}{}",
            self.scheme,
            log.server_port,
            log.uri_text()
        );
        let latencies = self.latencies();
        let mut request = json!({
            "id": &*self.id,
            "uri": log.uri_text(),
            "url": url,
            "querystring": querystring(query),
            "method": log.method.as_str(),
            "headers": headers_json(log.request_headers.as_deref(), true),
            "size": self.request_length(),
        });
        if let Some(tls) = &log.tls {
            request["tls"] = json!({
                "version": tls.version,
                "cipher": tls.cipher,
                "client_verify": "NONE",
            });
        }
        let mut entry = json!({
            "request": request,
            "upstream_uri": log.upstream_uri.as_deref().unwrap_or_default(),
            "upstream_status": log.upstream_status.map_or_else(String::new, |s| s.to_string()),
            "response": {
                "status": log.status,
                "headers": headers_json(log.response_headers.as_deref(), false),
                "size": self.bytes_sent(),
            },
            "latencies": {
                "kong": latencies.kong,
                "proxy": latencies.proxy.map_or(-1, |l| l as i64),
                "request": latencies.request,
                "receive": latencies.receive,
            },
            "client_ip": self.client_ip.to_string(),
            "started_at": started_at,
            "source": if self.proxied() { "upstream" } else { "kong" },
            "workspace": DEFAULT_WORKSPACE_ID,
            "workspace_name": "default",
        });
        if let Some((ip, port)) = &log.upstream_addr {
            let balancer_start = started_at + log.proxy_latency.unwrap_or(0);
            let mut attempt = json!({
                "ip": ip,
                "port": port,
                "balancer_start": balancer_start,
                "balancer_latency": 0,
            });
            if log.upstream_status.is_none() {
                // The only attempt failed (connection refused, timeout, TLS).
                attempt["state"] = json!("failed");
            }
            entry["tries"] = json!([attempt]);
        }
        let route = self
            .route()
            .and_then(|r| self.snapshot.index.get("routes", &r.id));
        if let Some(route) = route {
            entry["route"] = Value::Object((**route).clone());
        }
        let service = self
            .service()
            .and_then(|s| self.snapshot.index.get("services", &s.id));
        if let Some(service) = service {
            entry["service"] = Value::Object((**service).clone());
        }
        if let Some(consumer) = &self.consumer {
            entry["consumer"] = Value::Object((**consumer).clone());
        }
        if let Some(c) = &self.credential {
            let consumer_id = c
                .consumer_id
                .as_deref()
                .or_else(|| self.consumer_id())
                .map_or(Value::Null, Value::from);
            entry["authenticated_entity"] = json!({ "id": c.id, "consumer_id": consumer_id });
        }
        for (path, value) in &self.serialize_values {
            set_serialized(&mut entry, path, value.as_ref());
        }
        entry
    }
}

/// Sets (or, with `None`, removes) the field at `path`, creating objects on the way; a path
/// through something other than an object is left alone.
pub fn set_serialized(node: &mut Value, path: &[String], value: Option<&Value>) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    match path {
        [] => {}
        [last] => match value {
            Some(v) => {
                obj.insert(last.clone(), v.clone());
            }
            None => {
                obj.remove(last);
            }
        },
        [first, rest @ ..] => {
            let child = obj
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            set_serialized(child, rest, value);
        }
    }
}

/// A `kong.log.set_serialize_value` key as a path: `a.b\.c` → `["a", "b.c"]`.
pub fn serialize_key_path(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' if !current.is_empty() => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out
}

/// Headers as Kong's `get_headers()` returns them: lower-case names, a repeated header as an
/// array of its values; request credentials redacted.
fn headers_json(headers: Option<&HeaderMap>, redact: bool) -> Value {
    let mut out = Map::new();
    let Some(h) = headers else {
        return Value::Object(out);
    };
    for name in h.keys() {
        let name = name.as_str();
        if redact && (name == "authorization" || name == "proxy-authorization") {
            out.insert(name.to_owned(), Value::from("REDACTED"));
            continue;
        }
        let mut values = h
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()));
        let value = match (values.next(), values.next()) {
            (Some(one), None) => one,
            (Some(first), Some(second)) => {
                let mut all = vec![first, second];
                all.extend(values);
                Value::Array(all)
            }
            (None, _) => continue,
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

/// The query string as Kong's `get_query()` returns it: `a` alone is `true`, `a=` is `""`, a
/// repeated argument is an array of its values.
fn querystring(query: &str) -> Value {
    let mut out = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        let decode = |s: &str| -> String {
            let spaced = s.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned()
        };
        let key = decode(raw_key);
        if key.is_empty() {
            continue;
        }
        let value = raw_value.map_or(Value::Bool(true), |v| Value::from(decode(v)));
        match out.get_mut(&key) {
            Some(Value::Array(list)) => list.push(value),
            Some(prev) => *prev = Value::Array(vec![prev.take(), value]),
            None => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(uri: &str) -> Ctx {
        let request = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("host", "Example.COM:8000")
            .header("authorization", "Basic c2VjcmV0")
            .header("proxy-authorization", "Basic c2VjcmV0")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        let mut ctx = Ctx::new(
            Arc::new(Snapshot::empty()),
            request,
            "10.0.0.1".parse().expect("ip"),
            "https",
            "req-1",
            Instant::now(),
        );
        ctx.log.uri = uri.parse().expect("uri");
        ctx.log.method = http::Method::GET;
        ctx.log.server_port = 8443;
        ctx.log.request_headers = Some(Box::new(ctx.request.headers.clone()));
        ctx
    }

    #[test]
    fn authenticating_replaces_spoofed_identity_headers() {
        let consumer: Arc<Doc> = Arc::new(
            serde_json::from_value(json!({"id": "c1", "username": "ann"})).expect("consumer"),
        );
        let mut c = ctx("/p");
        for (name, value) in [
            ("x-consumer-custom-id", "spoof"),
            ("x-anonymous-consumer", "true"),
            ("x-credential-identifier", "spoof"),
        ] {
            c.request
                .headers
                .insert(name, HeaderValue::from_static(value));
        }
        c.authenticate(consumer.clone(), None);
        let h = &c.request.headers;
        assert_eq!(h["x-consumer-id"], "c1");
        assert_eq!(h["x-consumer-username"], "ann");
        for gone in [
            "x-consumer-custom-id",
            "x-anonymous-consumer",
            "x-credential-identifier",
        ] {
            assert!(h.get(gone).is_none(), "{gone} is removed");
        }
        // Without any of them, the same values are set.
        let mut c = ctx("/p");
        c.authenticate(consumer, None);
        assert_eq!(c.request.headers["x-consumer-id"], "c1");
        assert!(c.request.headers.get("x-consumer-custom-id").is_none());
    }

    #[test]
    fn a_proxied_request_is_serialized_as_kong_does() {
        let mut c = ctx("/p?a=1&a=2&flag&e=&sp=x%20y+z");
        c.log.tls = Some(TlsParams {
            version: "TLSv1.3",
            cipher: "TLS_AES_128_GCM_SHA256",
        });
        c.log.request_size = 10;
        c.log.upstream_uri = Some("/up?a=1".into());
        c.log.upstream_addr = Some(("127.0.0.1".into(), 9000));
        c.log.proxy_latency = Some(3);
        c.log.upstream_latency = Some(20);
        c.log.upstream_status = Some(201);
        c.log.status = 201;
        c.log.head_latency = 24;
        c.log.request_latency = 30;
        c.log.response_head_size = 100;
        c.log.response_size = 50;
        let consumer: Doc =
            serde_json::from_value(json!({"id": "c1", "username": "ann"})).expect("consumer");
        c.authenticate(
            Arc::new(consumer),
            Some(Credential::new(
                &serde_json::from_value(json!({"id": "cred-1"})).expect("credential"),
                "key",
            )),
        );
        let e = c.serialize();
        let r = &e["request"];
        assert_eq!(
            r["url"],
            "https://example.com:8443/p?a=1&a=2&flag&e=&sp=x%20y+z"
        );
        assert_eq!(
            r["querystring"],
            json!({"a": ["1", "2"], "flag": true, "e": "", "sp": "x y z"})
        );
        assert_eq!(r["headers"]["authorization"], "REDACTED");
        assert_eq!(r["headers"]["proxy-authorization"], "REDACTED");
        assert_eq!(r["headers"]["x-multi"], json!(["1", "2"]));
        assert_eq!(
            r["tls"],
            json!({"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "client_verify": "NONE"})
        );
        assert_eq!(r["size"], c.log.request_head_size + 10);
        assert!(c.log.request_head_size > 40);
        assert_eq!(e["upstream_uri"], "/up?a=1");
        assert_eq!(e["upstream_status"], "201");
        assert_eq!(e["response"]["size"], 150);
        assert_eq!(
            e["latencies"],
            json!({"kong": 3, "proxy": 20, "request": 30, "receive": 6})
        );
        assert_eq!(e["tries"][0]["ip"], "127.0.0.1");
        assert_eq!(e["tries"][0]["port"], 9000);
        assert!(e["tries"][0].get("state").is_none());
        assert_eq!(e["source"], "upstream");
        assert_eq!(e["consumer"]["username"], "ann");
        assert_eq!(
            e["authenticated_entity"],
            json!({"id": "cred-1", "consumer_id": "c1"})
        );
        assert_eq!(e["client_ip"], "10.0.0.1");
        assert_eq!(e["workspace"], DEFAULT_WORKSPACE_ID);
        assert_eq!(e["workspace_name"], "default");

        c.set_serialize_value("correlation_id", Some(json!("abc")));
        c.set_serialize_value("request.extra.deep", Some(json!(1)));
        c.set_serialize_value("a\\.b", Some(json!(true)));
        c.set_serialize_value("client_ip", None);
        let e = c.serialize();
        assert_eq!(e["correlation_id"], "abc");
        assert_eq!(e["request"]["extra"], json!({"deep": 1}));
        assert_eq!(e["request"]["method"], "GET");
        assert_eq!(e["a.b"], true);
        assert!(e.get("client_ip").is_none());
    }

    #[test]
    fn the_gateways_own_answer_is_serialized_as_kong_does() {
        let mut c = ctx("/nowhere");
        c.log.status = 404;
        c.log.from_kong = true;
        c.log.head_latency = 2;
        c.log.request_latency = 2;
        let e = c.serialize();
        assert_eq!(e["source"], "kong");
        assert_eq!(e["upstream_status"], "");
        assert_eq!(e["upstream_uri"], "");
        assert_eq!(
            e["latencies"],
            json!({"kong": 2, "proxy": -1, "request": 2, "receive": 0})
        );
        for absent in [
            "tries",
            "route",
            "service",
            "consumer",
            "authenticated_entity",
        ] {
            assert!(e.get(absent).is_none(), "{absent}: {e}");
        }
        assert!(e["request"].get("tls").is_none());
    }

    #[test]
    fn head_sizes_count_the_wire_bytes() {
        let req = http::Request::builder()
            .uri("/a?b")
            .header("host", "x")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        // "GET /a?b HTTP/1.1\r\n" (19) + "host: x\r\n" (9) + "\r\n" (2)
        assert_eq!(request_head_size(&req), 30);
        let resp = http::Response::builder()
            .status(200)
            .header("a", "b")
            .body(())
            .expect("response")
            .into_parts()
            .0;
        // "HTTP/1.1 200 OK\r\n" (17) + "a: b\r\n" (6) + "\r\n" (2)
        assert_eq!(response_head_size(&resp, 0), 25);
        assert_eq!(response_head_size(&resp, 10), 35);
    }
}
