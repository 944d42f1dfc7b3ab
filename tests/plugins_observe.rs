//! The observability plugins through the real binary, with real sinks run by the test:
//! `file-log` (a temporary file), `http-log` (an HTTP server that records what it gets, can
//! fail for a while, or answer slowly), `tcp-log` (a TCP listener, plain and TLS), `udp-log` (a
//! UDP socket), `syslog` (a Unix datagram socket), and `prometheus` (scrapes of `/metrics` on
//! the Admin and the Status API).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::support::admin::{admin, service_with_route};
use crate::support::http::{get, send, Reply};
use crate::support::kong::{free_port, kong_env, text, wait_until, Kong};
use crate::support::upstream::EchoUpstream;

/// Waits until `GET path` on the proxy answers `status`.
fn until_status(kong: &Kong, path: &str, status: u16) -> Reply {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(5), || {
        let r = send("GET", &kong.proxy(path), &[], None);
        let done = r.status == status;
        last = Some(r);
        done
    });
    let last = last.expect("a reply");
    assert!(
        ok,
        "GET {path} never answered {status}: {} {}",
        last.status, last.body
    );
    last
}

/// A service `s` in front of `echo`, with `plugin` on the service, then route `r` at `/r`:
/// once the route answers, the plugin is live too.
fn service_with_plugin(kong: &Kong, echo: &EchoUpstream, plugin: Value) {
    admin(
        kong,
        "POST",
        "/services",
        json!({"name": "s", "url": echo.url()}),
    );
    admin(kong, "POST", "/services/s/plugins", plugin);
    admin(
        kong,
        "POST",
        "/services/s/routes",
        json!({"name": "r", "paths": ["/r"]}),
    );
    until_status(kong, "/r", 200);
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    wait_until(timeout, || {
        found = probe();
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// file-log and the serializer

#[test]
fn file_log_appends_kongs_serialized_request_per_line() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.json");
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "file-log", "config": {
            "path": path.to_str().expect("utf-8"),
            "custom_fields_by_lua": {"env": "return 'test'", "nested.flag": "return true"},
        }}),
    );
    let warmup = lines(&path).len();
    let r = send(
        "POST",
        &kong.proxy("/r/status/201?a=1&b&c=x+y&a=2"),
        &[
            ("authorization", "Bearer secret"),
            ("x-trace", "t1"),
            ("content-type", "text/plain"),
        ],
        Some("hello".into()),
    );
    assert_eq!(r.status, 201);
    let request_id = r
        .header("x-kong-request-id")
        .expect("request id")
        .to_owned();
    let entry = wait_for("the log line", Duration::from_secs(5), || {
        lines(&path)
            .into_iter()
            .skip(warmup)
            .find(|e| e["request"]["id"] == request_id.as_str())
    });

    let req = &entry["request"];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["uri"], "/r/status/201?a=1&b&c=x+y&a=2");
    assert_eq!(
        req["url"],
        format!(
            "http://127.0.0.1:{}/r/status/201?a=1&b&c=x+y&a=2",
            kong.proxy_port
        )
    );
    assert_eq!(
        req["querystring"],
        json!({"a": ["1", "2"], "b": true, "c": "x y"})
    );
    assert_eq!(req["headers"]["authorization"], "REDACTED");
    assert_eq!(req["headers"]["x-trace"], "t1");
    // Request line, headers and the 5-byte body.
    let size = req["size"].as_u64().expect("request size");
    assert!(size > 5 + 60, "request size {size}");
    assert!(req.get("tls").is_none(), "no TLS over http: {req}");

    assert_eq!(entry["upstream_uri"], "/status/201?a=1&b&c=x+y&a=2");
    assert_eq!(entry["upstream_status"], "201");
    assert_eq!(entry["response"]["status"], 201);
    assert_eq!(
        entry["response"]["headers"]["content-type"],
        r.header("content-type").expect("content-type")
    );
    let sent = entry["response"]["size"].as_u64().expect("response size");
    assert!(
        sent > r.body.len() as u64 + 50,
        "bytes sent {sent} include the head"
    );

    let lat = &entry["latencies"];
    let (kong_ms, proxy, total) = (
        lat["kong"].as_i64().expect("kong"),
        lat["proxy"].as_i64().expect("proxy"),
        lat["request"].as_i64().expect("request"),
    );
    assert!(
        kong_ms >= 0 && proxy >= 0 && total >= kong_ms + proxy,
        "{lat}"
    );
    assert!(lat["receive"].as_i64().is_some(), "{lat}");

    let tries = entry["tries"].as_array().expect("tries");
    assert_eq!(tries.len(), 1);
    assert_eq!(tries[0]["ip"], "127.0.0.1");
    assert_eq!(tries[0]["port"], echo.port());

    assert_eq!(entry["route"]["name"], "r");
    assert_eq!(entry["service"]["name"], "s");
    assert!(entry["route"]["id"].is_string() && entry["service"]["id"].is_string());
    assert!(entry.get("consumer").is_none() && entry.get("authenticated_entity").is_none());
    assert_eq!(entry["client_ip"], "127.0.0.1");
    assert_eq!(entry["source"], "upstream");
    assert_eq!(entry["workspace_name"], "default");
    assert!(entry["workspace"].is_string());
    let started = entry["started_at"].as_u64().expect("started_at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        started <= now && now - started < 60_000,
        "started_at {started}"
    );
    assert_eq!(entry["env"], "test");
    assert_eq!(entry["nested"], json!({"flag": true}));
}

#[test]
fn file_log_records_the_gateways_own_answers_and_can_reopen() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.log");
    // Global: also requests that match no route are logged.
    admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "file-log", "config": {"path": path.to_str().expect("utf-8"), "reopen": true}}),
    );
    service_with_route(
        &kong,
        json!({"name": "s", "url": echo.url()}),
        json!({"name": "r", "paths": ["/r"]}),
    );
    until_status(&kong, "/r", 200);

    let r = send("GET", &kong.proxy("/nowhere"), &[], None);
    assert_eq!(r.status, 404);
    let id = r.header("x-kong-request-id").expect("id").to_owned();
    let entry = wait_for("the 404 line", Duration::from_secs(5), || {
        lines(&path)
            .into_iter()
            .find(|e| e["request"]["id"] == id.as_str())
    });
    assert_eq!(entry["response"]["status"], 404);
    assert_eq!(entry["source"], "kong");
    assert_eq!(entry["upstream_status"], "");
    assert_eq!(entry["latencies"]["proxy"], -1);
    assert!(
        entry.get("route").is_none() && entry.get("tries").is_none(),
        "{entry}"
    );

    // With `reopen`, a rotated file is followed at once.
    let rotated = dir.path().join("k.log.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    let r = send("GET", &kong.proxy("/r"), &[], None);
    let id = r.header("x-kong-request-id").expect("id").to_owned();
    wait_for("a line in the new file", Duration::from_secs(5), || {
        lines(&path)
            .into_iter()
            .find(|e| e["request"]["id"] == id.as_str())
    });
    assert!(lines(&rotated)
        .iter()
        .all(|e| e["request"]["id"] != id.as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}

#[test]
fn logger_configs_are_validated_with_kongs_rules() {
    let kong = Kong::start("");
    let post = |body: Value| {
        send(
            "POST",
            &kong.admin("/plugins"),
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
    };
    let r = post(json!({"name": "file-log", "config": {"path": "/tmp/*.log"}}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["fields"]["config"]["path"], "not a valid filename");

    let r = post(json!({"name": "http-log", "config": {
        "http_endpoint": "http://u:p@logs.test/x", "headers": {"Authorization": "Basic x"}}}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"),
        "{}",
        r.body
    );
    let r = post(json!({"name": "http-log", "config": {
        "http_endpoint": "http://logs.test/x", "headers": {"Host": "other"}}}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("cannot contain 'Host' header"),
        "{}",
        r.body
    );
    let r = post(json!({"name": "http-log", "config": {"http_endpoint": "logs.test/x"}}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("missing scheme in url"), "{}", r.body);
    let r = post(json!({"name": "http-log", "config": {
        "http_endpoint": "http://logs.test/x", "queue": {"concurrency_limit": 2}}}));
    assert_eq!(r.status, 400, "{}", r.body);

    let r = post(json!({"name": "syslog", "config": {"log_level": "loud"}}));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post(json!({"name": "tcp-log", "config": {"host": "logs.test"}}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["fields"]["config"]["port"],
        "required field missing"
    );

    // Defaults are filled in, the queue record included.
    let created = admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "http-log", "config": {"http_endpoint": "http://logs.test/x"}}),
    );
    let c = &created["config"];
    assert_eq!(c["method"], "POST");
    assert_eq!(c["content_type"], "application/json");
    assert_eq!(c["timeout"], 10000);
    assert_eq!(c["keepalive"], 60000);
    assert_eq!(
        c["queue"],
        json!({"max_batch_size": 1, "max_coalescing_delay": 1, "max_entries": 10000,
               "max_bytes": null, "max_retry_time": 60, "initial_retry_delay": 0.01,
               "max_retry_delay": 60, "concurrency_limit": 1})
    );
    let created = admin(&kong, "POST", "/plugins", json!({"name": "syslog"}));
    assert_eq!(created["config"]["facility"], "user");
    assert_eq!(created["config"]["server_errors_severity"], "info");
}

// ---------------------------------------------------------------------------------------------
// http-log

/// What the HTTP sink received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    uri: String,
    headers: HashMap<String, String>,
    body: String,
    answered: u16,
}

/// An HTTP server recording every request: the first `fail_first` get a 500, each answer
/// comes after `delay`.
struct HttpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HttpSink {
    fn start(fail_first: usize, delay: Duration) -> HttpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let count = Arc::new(AtomicUsize::new(0));
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (log, count) = (log.clone(), count.clone());
                        tokio::spawn(async move {
                            let service =
                                service_fn(move |req: http::Request<hyper::body::Incoming>| {
                                    let (log, count) = (log.clone(), count.clone());
                                    async move {
                                        let n = count.fetch_add(1, Ordering::SeqCst);
                                        let (parts, body) = req.into_parts();
                                        let body = body
                                            .collect()
                                            .await
                                            .map(|b| b.to_bytes())
                                            .unwrap_or_default();
                                        tokio::time::sleep(delay).await;
                                        let status: u16 = if n < fail_first { 500 } else { 200 };
                                        let headers = parts
                                            .headers
                                            .iter()
                                            .map(|(k, v)| {
                                                (
                                                    k.as_str().to_owned(),
                                                    v.to_str().unwrap_or_default().to_owned(),
                                                )
                                            })
                                            .collect();
                                        log.lock().expect("lock").push(Received {
                                            method: parts.method.to_string(),
                                            uri: parts.uri.to_string(),
                                            headers,
                                            body: String::from_utf8_lossy(&body).into_owned(),
                                            answered: status,
                                        });
                                        let mut resp = http::Response::new(Full::new(Bytes::from(
                                            if status == 500 { "sink down" } else { "ok" },
                                        )));
                                        *resp.status_mut() =
                                            http::StatusCode::from_u16(status).expect("status");
                                        Ok::<_, std::convert::Infallible>(resp)
                                    }
                                });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        HttpSink {
            addr,
            received,
            stop: Some(stop),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Entries delivered successfully, in order.
    fn entries(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .flat_map(|r| match serde_json::from_str::<Value>(&r.body) {
                Ok(Value::Array(items)) => items,
                Ok(one) => vec![one],
                Err(e) => panic!("sink got non-JSON ({e}): {}", r.body),
            })
            .collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[test]
fn http_log_sends_each_entry_with_the_configured_request() {
    let echo = EchoUpstream::start();
    let sink = HttpSink::start(0, Duration::ZERO);
    let kong = Kong::start("");
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "http-log", "config": {
            "http_endpoint": format!("http://logger:s3cret@127.0.0.1:{}/ingest?src=kong", sink.addr.port()),
            "method": "PUT",
            "content_type": "application/json; charset=utf-8",
            "headers": {"X-Tenant": "t1"},
        }}),
    );
    let before = sink.entries().len();
    for _ in 0..3 {
        assert_eq!(send("GET", &kong.proxy("/r/hello"), &[], None).status, 200);
    }
    wait_for("3 entries", Duration::from_secs(5), || {
        (sink.entries().len() >= before + 3).then_some(())
    });
    let got = sink.received();
    let last = got.last().expect("a request");
    assert_eq!(last.method, "PUT");
    assert_eq!(last.uri, "/ingest?src=kong");
    assert_eq!(
        last.headers["content-type"],
        "application/json; charset=utf-8"
    );
    // base64("logger:s3cret")
    assert_eq!(last.headers["authorization"], "Basic bG9nZ2VyOnMzY3JldA==");
    assert_eq!(last.headers["x-tenant"], "t1");
    assert_eq!(
        last.headers["host"],
        format!("127.0.0.1:{}", sink.addr.port())
    );
    assert_eq!(last.headers["content-length"], last.body.len().to_string());
    // max_batch_size 1: each body is one object, not an array.
    let body: Value = serde_json::from_str(&last.body).expect("json");
    assert!(body.is_object(), "{body}");
    assert_eq!(body["request"]["uri"], "/r/hello");
    assert_eq!(body["upstream_uri"], "/hello");
}

#[test]
fn http_log_batches_and_retries_until_the_sink_recovers() {
    let echo = EchoUpstream::start();
    // Fails the first two deliveries, then accepts.
    let sink = HttpSink::start(2, Duration::ZERO);
    let kong = Kong::start("");
    // The request that shows the route live is the batch's first entry; two more fill it.
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "http-log", "config": {
            "http_endpoint": format!("http://127.0.0.1:{}/batch", sink.addr.port()),
            "queue": {"max_batch_size": 3, "max_coalescing_delay": 30,
                      "initial_retry_delay": 0.05, "max_retry_delay": 0.2},
        }}),
    );
    for _ in 0..2 {
        assert_eq!(send("GET", &kong.proxy("/r/more"), &[], None).status, 200);
    }
    let entries = wait_for("the batch", Duration::from_secs(10), || {
        let e = sink.entries();
        (!e.is_empty()).then_some(e)
    });
    let got = sink.received();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>()[..3],
        [500, 500, 200],
        "two failures, then the same batch accepted: {got:?}"
    );
    // The retried batch is the same array each time.
    assert_eq!(got[0].body, got[2].body);
    assert!(got[2].body.starts_with('['), "a batch is a JSON array");
    assert_eq!(entries.len(), 3, "one batch of max_batch_size entries");
    assert_eq!(entries[1]["request"]["uri"], "/r/more");
    assert!(entries.iter().all(|e| e["route"]["name"] == "r"));
}

#[test]
fn http_log_drops_what_does_not_fit_and_counts_it() {
    let echo = EchoUpstream::start();
    // Each delivery takes two seconds: the queue (one waiting entry) overflows.
    let sink = HttpSink::start(0, Duration::from_secs(2));
    let kong = Kong::start("");
    admin(&kong, "POST", "/plugins", json!({"name": "prometheus"}));
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "http-log", "config": {
            "http_endpoint": format!("http://127.0.0.1:{}/", sink.addr.port()),
            "queue": {"max_entries": 1},
        }}),
    );
    for _ in 0..6 {
        assert_eq!(send("GET", &kong.proxy("/r"), &[], None).status, 200);
    }
    let dropped = wait_for("drops in /metrics", Duration::from_secs(5), || {
        let m = get(&kong.admin("/metrics")).body;
        m.lines()
            .find_map(|l| l.strip_prefix("kong_log_entries_dropped_total{plugin=\"http-log\"} "))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
    });
    assert!(dropped >= 3, "dropped {dropped}");
    let log = kong.log("error.log");
    assert!(
        log.contains("dropping log entries until processing is successful again"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// tcp-log, udp-log

/// A TCP sink: every line received, with the number of the connection it came on, and the
/// server name each TLS client asked for.
struct TcpSink {
    port: u16,
    lines: Arc<Mutex<Vec<(usize, String)>>>,
    snis: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

impl TcpSink {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> TcpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let lines: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
        let snis: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, halt) = (lines.clone(), snis.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !halt.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                n += 1;
                let (l, s, tls, conn) = (l.clone(), s.clone(), tls.clone(), n);
                std::thread::spawn(move || {
                    stream.set_nonblocking(false).expect("blocking");
                    let reader: Box<dyn Read> = match tls {
                        None => Box::new(stream),
                        Some(config) => {
                            let mut server = rustls::ServerConnection::new(config).expect("tls");
                            let mut stream = stream;
                            while server.is_handshaking() {
                                if server.complete_io(&mut stream).is_err() {
                                    return;
                                }
                            }
                            s.lock()
                                .expect("lock")
                                .push(server.server_name().map(str::to_owned));
                            Box::new(rustls::StreamOwned::new(server, stream))
                        }
                    };
                    for line in BufReader::new(reader).lines() {
                        let Ok(line) = line else { break };
                        l.lock().expect("lock").push((conn, line));
                    }
                });
            }
        });
        TcpSink {
            port,
            lines,
            snis,
            stop,
        }
    }

    fn entries(&self) -> Vec<(usize, Value)> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .map(|(c, l)| {
                (
                    *c,
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")),
                )
            })
            .collect()
    }
}

impl Drop for TcpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn tcp_log_sends_json_lines_over_one_kept_connection() {
    let echo = EchoUpstream::start();
    let sink = TcpSink::start(None);
    let kong = Kong::start("");
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "tcp-log", "config": {"host": "127.0.0.1", "port": sink.port}}),
    );
    for path in ["/r/a", "/r/b", "/r/c"] {
        assert_eq!(send("GET", &kong.proxy(path), &[], None).status, 200);
        // One at a time: each goes out on its own, on the same connection.
        wait_until(Duration::from_secs(5), || {
            sink.entries()
                .iter()
                .any(|(_, e)| e["request"]["uri"] == path)
        });
    }
    // The request that found the route live is logged too (first, or racing the others).
    let entries = sink.entries();
    let uris: Vec<&str> = entries
        .iter()
        .filter_map(|(_, e)| e["request"]["uri"].as_str())
        .filter(|u| *u != "/r")
        .collect();
    assert_eq!(uris, ["/r/a", "/r/b", "/r/c"]);
    let conns: std::collections::HashSet<usize> = entries.iter().map(|(c, _)| *c).collect();
    assert_eq!(conns.len(), 1, "kept alive: {entries:?}");
}

#[test]
fn tcp_log_over_tls_sends_the_configured_server_name() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["logs.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
    )
    .expect("server config");
    let sink = TcpSink::start(Some(Arc::new(config)));
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "tcp-log", "config": {
            "host": "127.0.0.1", "port": sink.port, "tls": true, "tls_sni": "logs.test"}}),
    );
    assert_eq!(send("GET", &kong.proxy("/r/secure"), &[], None).status, 200);
    wait_for("an entry over TLS", Duration::from_secs(5), || {
        sink.entries()
            .into_iter()
            .find(|(_, e)| e["request"]["uri"] == "/r/secure")
    });
    let snis = sink.snis.lock().expect("lock").clone();
    assert!(
        !snis.is_empty() && snis.iter().all(|s| s.as_deref() == Some("logs.test")),
        "{snis:?}"
    );
}

#[test]
fn udp_log_sends_one_datagram_per_request() {
    let echo = EchoUpstream::start();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let kong = Kong::start("");
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "udp-log", "config": {"host": "127.0.0.1", "port": port}}),
    );
    assert_eq!(
        send("GET", &kong.proxy("/r/udp?q=1"), &[], None).status,
        200
    );
    let entry = wait_for("the datagram", Duration::from_secs(5), || {
        let mut buf = vec![0u8; 65536];
        let n = socket.recv(&mut buf).ok()?;
        let v: Value = serde_json::from_slice(&buf[..n]).expect("one JSON document per datagram");
        (v["request"]["uri"] == "/r/udp?q=1").then_some(v)
    });
    assert_eq!(entry["response"]["status"], 200);
    assert_eq!(entry["request"]["querystring"], json!({"q": "1"}));
}

// ---------------------------------------------------------------------------------------------
// syslog

#[test]
fn syslog_sends_by_status_severity_to_the_local_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let echo = EchoUpstream::start();
    let mut kong = Kong::configure("");
    let conf = kong.conf();
    let prefix = kong.prefix();
    let out = kong_env(
        &[
            "start",
            "-c",
            conf.to_str().expect("utf-8"),
            "-p",
            prefix.to_str().expect("utf-8"),
        ],
        &[("KONG_SYSLOG_SOCKET", socket_path.to_str().expect("utf-8"))],
    );
    assert!(out.status.success(), "kong start: {}", text(&out));
    kong.set_running();
    kong.wait_ready();
    // 2xx are `notice`, 4xx `err`, 5xx `crit`; only `err` and more severe are sent.
    service_with_plugin(
        &kong,
        &echo,
        json!({"name": "syslog", "config": {
            "log_level": "err", "successful_severity": "notice",
            "client_errors_severity": "err", "server_errors_severity": "crit",
            "facility": "local0"}}),
    );
    let recv = || -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    };
    recv();
    assert_eq!(send("GET", &kong.proxy("/r/ok"), &[], None).status, 200);
    assert_eq!(
        send("GET", &kong.proxy("/r/status/404"), &[], None).status,
        404
    );
    assert_eq!(
        send("GET", &kong.proxy("/r/status/503"), &[], None).status,
        503
    );
    let mut messages = Vec::new();
    wait_until(Duration::from_secs(5), || {
        messages.extend(recv());
        messages.len() >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    messages.extend(recv());
    assert_eq!(
        messages.len(),
        2,
        "the 200 (notice) is below log_level: {messages:?}"
    );
    let pid = kong.pid().expect("pid");
    let parse = |m: &str| -> (u32, Value) {
        let (head, json) = m.split_once(": ").expect("ident separator");
        let pri = head
            .strip_prefix('<')
            .and_then(|h| h.split_once('>'))
            .and_then(|(p, _)| p.parse().ok())
            .expect("PRI");
        assert!(
            head.ends_with(&format!(" kong[{pid}]")),
            "RFC 3164 header: {head}"
        );
        (pri, serde_json::from_str(json).expect("JSON message"))
    };
    let (pri, entry) = parse(&messages[0]);
    // local0 (16) × 8 + err (3)
    assert_eq!(pri, 131);
    assert_eq!(entry["response"]["status"], 404);
    let (pri, entry) = parse(&messages[1]);
    // local0 × 8 + crit (2)
    assert_eq!(pri, 130);
    assert_eq!(entry["response"]["status"], 503);
}

// ---------------------------------------------------------------------------------------------
// prometheus

fn metric(text: &str, line_prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn prometheus_exposes_kongs_metrics_on_admin_and_status_apis() {
    let status_port = free_port();
    let echo = EchoUpstream::start();
    let kong = Kong::start(&format!("status_listen = 127.0.0.1:{status_port}"));
    let status_url = format!("http://127.0.0.1:{status_port}/metrics");

    // Before any instance: node metrics only.
    let before = get(&status_url);
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        before
            .body
            .contains("# TYPE kong_nginx_connections_total gauge\n"),
        "{}",
        before.body
    );
    assert!(
        !before.body.contains("kong_http_requests_total"),
        "{}",
        before.body
    );

    admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "prometheus", "config": {
            "status_code_metrics": true, "latency_metrics": true, "bandwidth_metrics": true}}),
    );
    service_with_route(
        &kong,
        json!({"name": "s1", "url": echo.url()}),
        json!({"name": "r1", "paths": ["/r1"]}),
    );
    let s2 = admin(&kong, "POST", "/services", json!({"url": echo.url()}));
    let s2_id = s2["id"].as_str().expect("id");
    // The service answers 418 itself from the moment its route exists: no request on r2
    // ever reaches the upstream.
    admin(
        &kong,
        "POST",
        &format!("/services/{s2_id}/plugins"),
        json!({"name": "request-termination", "config": {"status_code": 418}}),
    );
    let r2 = admin(
        &kong,
        "POST",
        &format!("/services/{s2_id}/routes"),
        json!({"paths": ["/r2"]}),
    );
    until_status(&kong, "/r2", 418);
    until_status(&kong, "/r1", 200);
    let scrape = || get(&kong.admin("/metrics")).body;
    let start = scrape();
    let ok = "kong_http_requests_total{service=\"s1\",route=\"r1\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"} ";
    let ok_before = metric(&start, ok).unwrap_or(0);
    let term = format!(
        "kong_http_requests_total{{service=\"127.0.0.1\",route=\"{}\",code=\"418\",source=\"kong\",workspace=\"default\",consumer=\"\"}} ",
        r2["id"].as_str().expect("id")
    );
    let term_before = metric(&start, &term).unwrap_or(0);

    for _ in 0..3 {
        assert_eq!(send("GET", &kong.proxy("/r1"), &[], None).status, 200);
    }
    assert_eq!(
        send("GET", &kong.proxy("/r1/status/404"), &[], None).status,
        404
    );
    assert_eq!(send("GET", &kong.proxy("/r2"), &[], None).status, 418);
    // No route: not recorded.
    assert_eq!(send("GET", &kong.proxy("/nowhere"), &[], None).status, 404);

    let body = scrape();
    assert_eq!(metric(&body, ok), Some(ok_before + 3), "{body}");
    assert_eq!(
        metric(&body, "kong_http_requests_total{service=\"s1\",route=\"r1\",code=\"404\",source=\"service\",workspace=\"default\",consumer=\"\"} "),
        Some(1),
        "{body}"
    );
    // A service without a name is labelled by its host, a route without one by its id.
    assert_eq!(metric(&body, &term), Some(term_before + 1), "{body}");
    assert!(
        !body.contains("code=\"404\",source=\"kong\""),
        "unrouted requests are not recorded"
    );
    assert!(body.contains("# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong\n# TYPE kong_http_requests_total counter\n"));

    // Latency histograms: every bucket, cumulative, +Inf = count.
    let labels = "service=\"s1\",route=\"r1\",workspace=\"default\"";
    let count = metric(
        &body,
        &format!("kong_request_latency_ms_count{{{labels}}} "),
    )
    .expect("count");
    assert_eq!(count, ok_before + 4);
    for (name, bounds) in [
        (
            "kong_kong_latency_ms",
            &[
                1u64, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
            ][..],
        ),
        (
            "kong_upstream_latency_ms",
            &[
                25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
            ][..],
        ),
        (
            "kong_request_latency_ms",
            &[
                25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
            ][..],
        ),
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} histogram\n")),
            "{body}"
        );
        let buckets: Vec<(String, u64)> = body
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{{labels},le=\"")))
            .map(|rest| {
                let (le, value) = rest.split_once("\"} ").expect("bucket line");
                (le.to_owned(), value.parse().expect("value"))
            })
            .collect();
        let mut expected: Vec<String> = bounds.iter().map(u64::to_string).collect();
        expected.push("+Inf".into());
        assert_eq!(
            buckets.iter().map(|(le, _)| le.clone()).collect::<Vec<_>>(),
            expected,
            "{name}"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last().map(|b| b.1), Some(count), "{name}");
        assert_eq!(
            metric(&body, &format!("{name}_count{{{labels}}} ")),
            Some(count),
            "{name}"
        );
        assert!(
            metric(&body, &format!("{name}_sum{{{labels}}} ")).is_some(),
            "{name}"
        );
    }
    // The gateway's own answer has no upstream latency.
    let r2_labels = format!(
        "service=\"127.0.0.1\",route=\"{}\",workspace=\"default\"",
        r2["id"].as_str().expect("id")
    );
    assert!(body.contains(&format!("kong_kong_latency_ms_count{{{r2_labels}}} ")));
    assert!(!body.contains(&format!("kong_upstream_latency_ms_count{{{r2_labels}}}")));

    let ingress = metric(&body, "kong_bandwidth_bytes{service=\"s1\",route=\"r1\",direction=\"ingress\",workspace=\"default\",consumer=\"\"} ").expect("ingress");
    let egress = metric(&body, "kong_bandwidth_bytes{service=\"s1\",route=\"r1\",direction=\"egress\",workspace=\"default\",consumer=\"\"} ").expect("egress");
    assert!(
        ingress > 0 && egress > ingress,
        "ingress {ingress}, egress {egress}"
    );
    assert!(body.contains("# TYPE kong_bandwidth_bytes counter\n"));

    // Node metrics.
    let node_id = get(&kong.admin("/")).json()["node_id"]
        .as_str()
        .expect("node id")
        .to_owned();
    let conn = |state: &str| {
        metric(&body, &format!("kong_nginx_connections_total{{node_id=\"{node_id}\",subsystem=\"http\",state=\"{state}\"}} "))
    };
    for state in [
        "accepted", "handled", "total", "active", "reading", "writing", "waiting",
    ] {
        assert!(conn(state).is_some(), "state {state}: {body}");
    }
    assert!(conn("accepted") >= Some(1) && conn("total") >= Some(6));
    assert!(
        metric(
            &body,
            &format!("kong_nginx_requests_total{{node_id=\"{node_id}\",subsystem=\"http\"}} ")
        ) >= Some(6)
    );
    assert_eq!(metric(&body, "kong_datastore_reachable "), Some(1));
    assert_eq!(
        metric(
            &body,
            &format!("kong_node_info{{node_id=\"{node_id}\",version=\"3.10.0\"}} ")
        ),
        Some(1)
    );
    assert!(body.contains(&format!(
        "kong_memory_workers_lua_vms_bytes{{node_id=\"{node_id}\",pid=\""
    )));
    assert_eq!(metric(&body, "kong_nginx_metric_errors_total "), Some(0));
    assert!(body.contains("kong_nginx_timers{state=\"running\"} "));

    // Sorted like Kong's output, one HELP/TYPE per metric.
    let samples: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    let names: Vec<&str> = samples
        .iter()
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "lines sorted by metric name");
    assert_eq!(
        body.matches("# TYPE kong_kong_latency_ms histogram")
            .count(),
        1
    );

    // The Status API serves the same registry.
    let status = get(&status_url);
    assert_eq!(
        status.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        metric(&status.body, ok) >= Some(ok_before + 3),
        "{}",
        status.body
    );
}

#[test]
fn no_metrics_endpoint_without_the_prometheus_plugin() {
    let kong = Kong::start("plugins = request-termination");
    let r = get(&kong.admin("/metrics"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "Not found"}));
}
