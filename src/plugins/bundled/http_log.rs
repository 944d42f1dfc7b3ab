//! `http-log` (priority 12): sends request log entries to an HTTP(S) endpoint through Kong's
//! [queue](super::queue): with `queue.max_batch_size = 1` each entry is the body (one JSON
//! object), otherwise a batch is a JSON array. A response status of 300 or more, or a
//! connection error, fails the batch, which the queue retries with exponential backoff.
//!
//! Userinfo in `http_endpoint` becomes `Authorization: Basic …`; `headers` are added (never
//! overriding `Host`, `Content-Type`, `Content-Length` or `Authorization`); the connection is
//! kept for `keepalive` milliseconds; `timeout` bounds each attempt. HTTPS certificates are not
//! verified, as in Kong.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::TlsConnector;

use super::log_sink::{self, CustomFields, Drops};
use super::queue::{self, Handler, Queue, QueueConfig};
use super::udp_log::millis;
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct HttpLog;

struct Instance {
    queue: Queue,
    custom: CustomFields,
}

/// The parts of `http_endpoint` the plugin uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    userinfo: Option<String>,
    host: String,
    port: u16,
    /// Path and query (`/` at least).
    target: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = url.split_once("://").ok_or("missing scheme in url")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported scheme '{other}' in url")),
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.split('#').next().unwrap_or("/").to_owned(),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        let (host, port) = typedefs::split_port(hostport).map_err(|_| "could not parse url")?;
        if host.is_empty() {
            return Err("missing host in url".into());
        }
        Ok(Endpoint {
            https,
            userinfo,
            host: host.to_owned(),
            port: port.unwrap_or(if https { 443 } else { 80 }),
            target,
        })
    }

    /// The `Host` header: the host, with the port when it is not the scheme's default.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.https, self.port) {
            (false, 80) | (true, 443) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

fn url_rule(v: &Value) -> Result<(), String> {
    Endpoint::parse(v.as_str().unwrap_or_default()).map(|_| ())
}

fn header_name_rule(v: &Value) -> Result<(), String> {
    typedefs::header_name(v)?;
    match v.as_str().unwrap_or_default().to_ascii_lowercase().as_str() {
        "host" => Err("cannot contain 'Host' header".into()),
        "content-length" => Err("cannot contain 'Content-Length' header".into()),
        "content-type" => Err("cannot contain 'Content-Type' header".into()),
        _ => Ok(()),
    }
}

/// Credentials may come from the URL or a header, not both.
fn checks(doc: &Doc, _: &Context<'_>, path: &Path, errs: &mut SchemaErrors) {
    let userinfo = doc
        .get("http_endpoint")
        .and_then(Value::as_str)
        .and_then(|u| Endpoint::parse(u).ok())
        .is_some_and(|e| e.userinfo.is_some());
    let authorization = doc
        .get("headers")
        .and_then(Value::as_object)
        .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
    if userinfo && authorization {
        errs.field(
            path,
            "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed",
        );
    }
}

impl Kind for HttpLog {
    fn name(&self) -> &'static str {
        "http-log"
    }

    fn priority(&self) -> i32 {
        12
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "http_endpoint",
                Field::string()
                    .required()
                    .custom("url", url_rule)
                    .describe("A string representing a URL, such as https://example.com/path/to/resource?q=search."),
            ),
            (
                "method",
                Field::string()
                    .default(json!("POST"))
                    .one_of(&["POST", "PUT", "PATCH"])
                    .describe("An optional method used to send data to the HTTP server. Supported values are `POST` (default), `PUT`, and `PATCH`."),
            ),
            (
                "content_type",
                Field::string()
                    .default(json!("application/json"))
                    .one_of(&["application/json", "application/json; charset=utf-8"])
                    .describe("Indicates the type of data sent. The only available option is `application/json`."),
            ),
            (
                "timeout",
                Field::number()
                    .default(json!(10000))
                    .describe("An optional timeout in milliseconds when sending data to the upstream server."),
            ),
            (
                "keepalive",
                Field::number()
                    .default(json!(60000))
                    .describe("An optional value in milliseconds that defines how long an idle connection will live before being closed."),
            ),
            (
                "retry_count",
                Field::integer().describe("Number of times to retry when sending data to the upstream server."),
            ),
            (
                "queue_size",
                Field::integer().describe("Maximum number of log entries to be sent on each message to the upstream server."),
            ),
            (
                "flush_timeout",
                Field::number().describe("Optional time in seconds. If `queue_size` > 1, this is the max idle time before sending a log with less than `queue_size` records."),
            ),
            (
                "headers",
                Field::map(
                    Field::string().custom("header_name", header_name_rule),
                    Field::string(),
                )
                .describe("An optional table of headers included in the HTTP message to the upstream server. Values are indexed by header name, and each header name accepts a single string."),
            ),
            ("queue", queue::queue_field()),
            ("custom_fields_by_lua", log_sink::custom_fields_field()),
        ])
        .checks(vec![EntityCheck::Custom(checks)]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let url = config
            .get("http_endpoint")
            .and_then(Value::as_str)
            .ok_or("http_endpoint is required")?;
        let endpoint = Arc::new(Endpoint::parse(url)?);
        let text = |f: &str, d: &str| {
            config
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or(d)
                .to_owned()
        };
        let method = Method::from_bytes(text("method", "POST").as_bytes())
            .map_err(|e| format!("method: {e}"))?;
        let mut headers = HeaderMap::new();
        let content_type = text("content_type", "application/json");
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(&content_type).map_err(|e| format!("content_type: {e}"))?,
        );
        headers.insert(
            HOST,
            HeaderValue::from_str(&endpoint.authority()).map_err(|e| format!("host: {e}"))?,
        );
        if let Some(userinfo) = &endpoint.userinfo {
            let basic = base64::engine::general_purpose::STANDARD.encode(userinfo);
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Basic {basic}"))
                    .map_err(|e| format!("http_endpoint: {e}"))?,
            );
        }
        if let Some(extra) = config.get("headers").and_then(Value::as_object) {
            for (name, value) in extra {
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("headers: {e}"))?;
                let Some(value) = value.as_str() else {
                    continue;
                };
                let value =
                    HeaderValue::from_str(value).map_err(|e| format!("headers.{name}: {e}"))?;
                // The plugin's own headers win, as in Kong.
                headers.entry(name).or_insert(value);
            }
        }
        let queue_config = QueueConfig::of(self.name(), config);
        let tls = endpoint.https.then(|| {
            TlsConnector::from(Arc::new(crate::proxy::upstream::unverified_client_config()))
        });
        let sender = Sender {
            endpoint,
            method,
            headers: Arc::new(headers),
            single: queue_config.max_batch_size == 1,
            timeout: millis(config, "timeout", 10_000),
            keepalive: millis(config, "keepalive", 60_000),
            tls,
            conn: None,
        };
        let drops = Drops::new(self.name(), env.metrics.clone());
        Ok(Arc::new(Instance {
            queue: Queue::start(queue_config, sender, drops),
            custom: CustomFields::of(self.name(), config),
        }))
    }
}

/// Delivers batches over one kept-alive HTTP/1.1 connection.
struct Sender {
    endpoint: Arc<Endpoint>,
    method: Method,
    headers: Arc<HeaderMap>,
    /// Whether a batch is one entry sent as is (`max_batch_size = 1`) rather than an array.
    single: bool,
    timeout: Duration,
    keepalive: Duration,
    tls: Option<TlsConnector>,
    conn: Option<(SendRequest<Full<Bytes>>, Instant)>,
}

impl Clone for Sender {
    /// The same settings, without the connection (a clone delivers on its own).
    fn clone(&self) -> Sender {
        Sender {
            endpoint: self.endpoint.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            single: self.single,
            timeout: self.timeout,
            keepalive: self.keepalive,
            tls: self.tls.clone(),
            conn: None,
        }
    }
}

impl Sender {
    fn body(&self, batch: &[Bytes]) -> Bytes {
        if self.single {
            if let [one] = batch {
                return one.clone();
            }
        }
        let len = batch.iter().map(|e| e.len() + 1).sum::<usize>() + 1;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, entry) in batch.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(entry);
        }
        out.push(b']');
        Bytes::from(out)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let e = &self.endpoint;
        let failed =
            |err: &dyn std::fmt::Display| format!("failed request to {}:{}: {err}", e.host, e.port);
        let tcp = TcpStream::connect((e.host.as_str(), e.port))
            .await
            .map_err(|err| failed(&err))?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|err| failed(&err))?;
                tokio::spawn(conn);
                sender
            }
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(e.host.clone())
                    .map_err(|err| failed(&err))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|err| failed(&err))?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|err| failed(&err))?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(sender)
    }

    async fn exchange(&mut self, body: Bytes) -> Result<(), String> {
        let e = self.endpoint.clone();
        let kept = self
            .conn
            .take()
            .filter(|(s, used)| used.elapsed() < self.keepalive && !s.is_closed());
        let reused = kept.is_some();
        let mut sender = match kept {
            Some((s, _)) => s,
            None => self.connect().await?,
        };
        let request = || {
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = self.method.clone();
            *req.uri_mut() = e
                .target
                .parse()
                .unwrap_or_else(|_| http::Uri::from_static("/"));
            *req.headers_mut() = (*self.headers).clone();
            req.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            req
        };
        let mut sent = match sender.ready().await {
            Ok(()) => sender.send_request(request()).await,
            Err(err) => Err(err),
        };
        if reused && sent.is_err() {
            // The kept connection was closed by the server meanwhile: once more, on a new one.
            sender = self.connect().await?;
            sent = sender.send_request(request()).await;
        }
        let response =
            sent.map_err(|err| format!("failed request to {}:{}: {err}", e.host, e.port))?;
        let status = response.status();
        // The body is always read: the connection can only be reused after it.
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !self.keepalive.is_zero() {
            self.conn = Some((sender, Instant::now()));
        }
        if status.as_u16() < 300 {
            Ok(())
        } else {
            Err(format!(
                "request to {}:{} returned status code {} and body {}",
                e.host,
                e.port,
                status.as_u16(),
                String::from_utf8_lossy(&body)
            ))
        }
    }
}

impl Handler for Sender {
    async fn deliver(&mut self, batch: &[Bytes]) -> Result<(), String> {
        let body = self.body(batch);
        let limit = self.timeout;
        match timeout(limit, self.exchange(body)).await {
            Ok(result) => result,
            Err(_) => {
                self.conn = None;
                Err(format!(
                    "failed request to {}:{}: timeout",
                    self.endpoint.host, self.endpoint.port
                ))
            }
        }
    }
}

impl Plugin for Instance {
    fn log(&self, ctx: &Ctx) {
        let mut entry = ctx.serialize();
        self.custom.apply(&mut entry);
        // Encoded now: the queue bounds what waits in bytes.
        self.queue.push(Bytes::from(entry.to_string()));
    }

    fn logs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed() {
        let e = Endpoint::parse("https://user:pa%20ss@logs.example.com:8443/in?k=v").expect("ok");
        assert_eq!(
            e,
            Endpoint {
                https: true,
                userinfo: Some("user:pa%20ss".into()),
                host: "logs.example.com".into(),
                port: 8443,
                target: "/in?k=v".into(),
            }
        );
        assert_eq!(e.authority(), "logs.example.com:8443");
        let e = Endpoint::parse("http://127.0.0.1").expect("ok");
        assert_eq!(
            (e.port, e.target.as_str(), e.authority()),
            (80, "/", "127.0.0.1".into())
        );
        assert_eq!(
            Endpoint::parse("example.com/x"),
            Err("missing scheme in url".into())
        );
        assert_eq!(
            Endpoint::parse("http:///x"),
            Err("missing host in url".into())
        );
        assert!(Endpoint::parse("ftp://example.com").is_err());
    }

    #[test]
    fn batches_are_arrays_unless_single() {
        let mut s = Sender {
            endpoint: Arc::new(Endpoint::parse("http://x").expect("ok")),
            method: Method::POST,
            headers: Arc::default(),
            single: true,
            timeout: Duration::from_secs(1),
            keepalive: Duration::from_secs(1),
            tls: None,
            conn: None,
        };
        let a = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(s.body(std::slice::from_ref(&a)), a);
        s.single = false;
        assert_eq!(
            s.body(std::slice::from_ref(&a)),
            Bytes::from_static(b"[{\"a\":1}]")
        );
        assert_eq!(
            s.body(&[a.clone(), a]),
            Bytes::from_static(b"[{\"a\":1},{\"a\":1}]")
        );
    }
}
