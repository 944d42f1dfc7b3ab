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

    /// Kong's `kong.response.error`: `message` rendered in the format the request's `Accept`
    /// asks for (JSON by default, or HTML, XML, plain text), with the request id, as the
    /// gateway's own errors are.
    pub fn error(ctx: &Ctx, status: StatusCode, message: &str) -> Exit {
        use crate::proxy::error::{body, negotiate};
        let format = negotiate(&ctx.request.headers, true, "application/json");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        Exit {
            status,
            headers,
            body: Bytes::from(body(format, message, ctx.request_id())),
        }
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
    pub id: String,
    /// Its consumer's id.
    pub consumer_id: Option<String>,
    /// What `X-Credential-Identifier` carries (key-auth: the id; basic-auth and hmac-auth: the
    /// username; jwt: the key).
    pub identifier: String,
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
const SERIALIZE_VALUES: &str = "kong.serialize_values";
const UPSTREAM_PATH_SET: &str = "kong.upstream_path_set";

/// Facts the proxy records for the log phase.
#[derive(Debug, Clone, Default)]
pub struct LogFacts {
    /// The method, path and query the client sent.
    pub method: String,
    /// Request URI as received (path and query).
    pub uri: String,
    /// The request's headers, kept when a log plugin runs.
    pub request_headers: Option<HeaderMap>,
    /// The request body size, when known.
    pub request_size: u64,
    /// The URI sent upstream.
    pub upstream_uri: Option<String>,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<u16>,
    /// The status sent to the client.
    pub status: u16,
    /// The response headers, kept when a log plugin runs.
    pub response_headers: Option<HeaderMap>,
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
    credential: Option<Credential>,
    authenticated_groups: Option<Vec<String>>,
    body: Option<Bytes>,
    pub(crate) exit: Option<Exit>,
    response_headers: Option<Box<HeaderMap>>,
    shared: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    started: Instant,
    started_at_ms: u64,
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
        let started_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(started.elapsed().as_millis() as u64);
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
            credential: None,
            authenticated_groups: None,
            body: None,
            exit: None,
            response_headers: None,
            shared: HashMap::new(),
            started,
            started_at_ms,
            log: LogFacts::default(),
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

    /// When the request arrived, in milliseconds since the Unix epoch.
    pub fn started_at_ms(&self) -> u64 {
        self.started_at_ms
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

    /// Replaces the request body sent upstream.
    pub fn set_request_body(&mut self, body: Bytes) {
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
        self.consumer
            .as_ref()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
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
        let field = |name: &str| {
            consumer
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let h = &mut self.request.headers;
        for (name, value) in [
            (&X_CONSUMER_ID, field("id")),
            (&X_CONSUMER_CUSTOM_ID, field("custom_id")),
            (&X_CONSUMER_USERNAME, field("username")),
            (
                &X_CREDENTIAL_IDENTIFIER,
                credential.as_ref().map(|c| c.identifier.clone()),
            ),
        ] {
            match value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                Some(v) => {
                    h.insert(name.clone(), v);
                }
                None => {
                    h.remove(name);
                }
            }
        }
        h.remove(&X_ANONYMOUS_CONSUMER);
        self.consumer = Some(consumer);
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
        self.exit = Some(exit);
    }

    /// Whether a plugin answered early.
    pub fn exited(&self) -> bool {
        self.exit.is_some()
    }

    /// Adds a header to the response the client gets, whatever produces it (rate limit
    /// headers decided in `access`, for instance).
    pub fn add_response_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.response_headers
            .get_or_insert_with(Default::default)
            .insert(name, value);
    }

    pub(crate) fn take_response_headers(&mut self) -> Option<Box<HeaderMap>> {
        self.response_headers.take()
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

    /// Kong's `kong.log.set_serialize_value`: `key` (dotted for nested fields, e.g.
    /// `request.tag`) is set to `value` in what [`Ctx::serialize`] returns.
    pub fn set_serialize_value(&mut self, key: &str, value: Value) {
        match self.shared_mut::<Vec<(String, Value)>>(SERIALIZE_VALUES) {
            Some(values) => values.push((key.to_owned(), value)),
            None => self.set_shared(SERIALIZE_VALUES, vec![(key.to_owned(), value)]),
        }
    }

    /// Kong's log serializer: the JSON object loggers send.
    pub fn serialize(&self) -> Value {
        let log = &self.log;
        let headers_json = |h: Option<&HeaderMap>| {
            let mut out = Map::new();
            if let Some(h) = h {
                for name in h.keys() {
                    let values: Vec<Value> = h
                        .get_all(name)
                        .iter()
                        .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
                        .collect();
                    let value = if values.len() == 1 {
                        values.into_iter().next().unwrap_or(Value::Null)
                    } else {
                        Value::Array(values)
                    };
                    out.insert(name.as_str().to_owned(), value);
                }
            }
            Value::Object(out)
        };
        let (path, query) = log.uri.split_once('?').unwrap_or((&log.uri, ""));
        let mut querystring = Map::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v = if v.is_empty() && !query.contains(&format!("{k}=")) {
                Value::Bool(true)
            } else {
                Value::from(v.into_owned())
            };
            match querystring.get_mut(k.as_ref()) {
                Some(Value::Array(list)) => list.push(v),
                Some(prev) => *prev = Value::Array(vec![prev.clone(), v]),
                None => {
                    querystring.insert(k.into_owned(), v);
                }
            }
        }
        let host = self
            .log
            .request_headers
            .as_ref()
            .and_then(|h| h.get(http::header::HOST))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let url = format!("{}://{host}{path}", self.scheme);
        let url = if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        };
        let route = self
            .route()
            .and_then(|r| self.snapshot.index.get("routes", &r.id));
        let service = self
            .service()
            .and_then(|s| self.snapshot.index.get("services", &s.id));
        let mut entry = json!({
            "request": {
                "id": &*self.id,
                "uri": log.uri,
                "url": url,
                "querystring": querystring,
                "method": log.method,
                "headers": headers_json(log.request_headers.as_ref()),
                "size": log.request_size,
            },
            "upstream_uri": log.upstream_uri.clone().unwrap_or_default(),
            "response": {
                "status": log.status,
                "headers": headers_json(log.response_headers.as_ref()),
                "size": log.response_size,
            },
            "latencies": {
                "kong": log.request_latency.saturating_sub(log.upstream_latency.unwrap_or(0)),
                "proxy": log.upstream_latency.map_or(-1, |l| l as i64),
                "request": log.request_latency,
                "receive": 0,
            },
            "tries": log.upstream_addr.as_ref().map_or_else(Vec::new, |(ip, port)| {
                vec![json!({"ip": ip, "port": port, "balancer_latency": 0})]
            }),
            "client_ip": self.client_ip.to_string(),
            "started_at": self.started_at_ms,
            "source": if log.from_kong { "kong" } else { "upstream" },
            "workspace": DEFAULT_WORKSPACE_ID,
            "workspace_name": "default",
        });
        if let Some(status) = log.upstream_status {
            entry["upstream_status"] = Value::from(status.to_string());
        }
        if let Some(route) = route {
            entry["route"] = Value::Object((**route).clone());
        }
        if let Some(service) = service {
            entry["service"] = Value::Object((**service).clone());
        }
        if let Some(consumer) = &self.consumer {
            entry["consumer"] = Value::Object((**consumer).clone());
        }
        if let Some(c) = &self.credential {
            entry["authenticated_entity"] = json!({
                "id": c.id,
                "consumer_id": c.consumer_id,
            });
        }
        for (key, value) in self
            .shared::<Vec<(String, Value)>>(SERIALIZE_VALUES)
            .into_iter()
            .flatten()
        {
            set_path(&mut entry, key, value.clone());
        }
        entry
    }
}

/// Sets the dotted `key` of `entry` to `value`, making objects on the way.
fn set_path(entry: &mut Value, key: &str, value: Value) {
    let mut at = entry;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        at = map.entry(part.to_owned()).or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialize_values_may_be_nested() {
        let mut entry = json!({"request": {"id": "x"}});
        set_path(&mut entry, "request.tag", json!("t"));
        set_path(&mut entry, "top", json!(1));
        set_path(&mut entry, "a.b.c", json!(true));
        assert_eq!(
            entry,
            json!({"request": {"id": "x", "tag": "t"}, "top": 1, "a": {"b": {"c": true}}})
        );
    }
}
