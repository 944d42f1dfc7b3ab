//! Forwarding through the proxy: routes created over the Admin API take effect on the proxy,
//! requests and responses pass through with Kong's headers, and upstream failures become
//! Kong's 502/503/504.

use std::time::Duration;

use serde_json::json;

use crate::support::admin::{admin, service_with_route};
use crate::support::http::{send, Reply};
use crate::support::kong::{wait_until, Kong};
use crate::support::upstream::EchoUpstream;

/// Waits until `path` on the proxy stops answering "no route" (the new configuration is live).
fn routed(kong: &Kong, path: &str) -> Reply {
    let mut last = None;
    let live = wait_until(Duration::from_secs(5), || {
        let r = send("GET", &kong.proxy(path), &[], None);
        let done = r.status != 404 || !r.body.contains("no Route matched");
        last = Some(r);
        done
    });
    assert!(live, "route for {path} never became live");
    last.expect("a reply")
}

#[test]
fn requests_reach_the_service_with_kongs_headers() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    service_with_route(
        &kong,
        json!({"name": "echo", "url": format!("{}/base", echo.url())}),
        json!({"name": "r", "paths": ["/echo"]}),
    );
    routed(&kong, "/echo");

    let r = send(
        "GET",
        &kong.proxy("/echo/hello?x=1&y=2"),
        &[
            ("x-forwarded-for", "10.9.8.7"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    assert_eq!(
        seen["path"], "/base/hello",
        "the matched prefix is stripped and the service path added"
    );
    assert_eq!(seen["query"], "x=1&y=2");
    let h = &seen["headers"];
    assert_eq!(h["host"], format!("127.0.0.1:{}", echo.port()));
    assert_eq!(h["x-forwarded-for"], "10.9.8.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "127.0.0.1");
    assert_eq!(h["x-forwarded-port"], kong.proxy_port.to_string());
    assert_eq!(h["x-forwarded-prefix"], "/echo");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert!(
        h.get("x-hop").is_none(),
        "hop-by-hop headers named in Connection are dropped"
    );
    assert_eq!(r.header("via"), Some("1.1 kong/3.10.0"));
    assert!(r.header("x-kong-upstream-latency").is_some());
    assert!(r.header("x-kong-proxy-latency").is_some());
    assert_eq!(r.header("x-kong-request-id").map(str::len), Some(32));

    let posted = send(
        "POST",
        &kong.proxy("/echo/form"),
        &[("content-type", "text/plain")],
        Some("hello body".into()),
    );
    assert_eq!(posted.json()["body"], "hello body");
    assert_eq!(posted.json()["method"], "POST");
}

#[test]
fn route_flags_shape_the_upstream_request() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    service_with_route(
        &kong,
        json!({"name": "echo", "url": echo.url()}),
        json!({"paths": ["/secure"], "protocols": ["https"]}),
    );
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"paths": ["/moved"], "protocols": ["https"], "https_redirect_status_code": 301}),
    );
    // Created last: once it routes, the snapshot holds the routes before it too.
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"paths": ["/keep"], "strip_path": false, "preserve_host": true}),
    );
    routed(&kong, "/keep");
    let r = send(
        "GET",
        &kong.proxy("/keep/x"),
        &[("host", "api.example.test")],
        None,
    );
    let seen = r.json();
    assert_eq!(seen["path"], "/keep/x");
    assert_eq!(seen["headers"]["host"], "api.example.test");

    let r = send("GET", &kong.proxy("/secure"), &[], None);
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    // A raw request, so that no client follows the redirect.
    let raw = raw_get(kong.proxy_port, "/moved/a?b=1", "shop.test");
    assert!(raw.starts_with("HTTP/1.1 301"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("location: https://shop.test/moved/a?b=1"),
        "{raw}"
    );
}

/// Sends a bare HTTP/1.1 GET and returns the whole response text.
fn raw_get(port: u16, path: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn upstream_failures_answer_502_503_504() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let closed = crate::support::kong::free_port();
    service_with_route(
        &kong,
        json!({"name": "down", "url": format!("http://127.0.0.1:{closed}"), "retries": 2}),
        json!({"paths": ["/down"]}),
    );
    service_with_route(
        &kong,
        json!({"name": "slow", "url": echo.url(), "read_timeout": 200}),
        json!({"paths": ["/slow"]}),
    );
    service_with_route(
        &kong,
        json!({"name": "nowhere", "url": "http://no-such-host.invalid"}),
        json!({"paths": ["/nowhere"]}),
    );
    admin(&kong, "POST", "/routes", json!({"paths": ["/orphan"]}));
    routed(&kong, "/orphan");

    let r = send(
        "GET",
        &kong.proxy("/down"),
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["message"],
        "An invalid response was received from the upstream server"
    );
    let r = send(
        "GET",
        &kong.proxy("/slow/delay/2000"),
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["message"], "The upstream server is timing out");
    let r = send("GET", &kong.proxy("/nowhere"), &[], None);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["message"], "name resolution failed");
    let r = send("GET", &kong.proxy("/orphan"), &[], None);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "no Service found with those values");
}

#[test]
fn https_and_http2_clients_are_proxied_to_http1_upstreams() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    service_with_route(
        &kong,
        json!({"name": "echo", "url": echo.url()}),
        json!({"paths": ["/tls"]}),
    );
    routed(&kong, "/tls");
    let url = format!("https://127.0.0.1:{}/tls/x", kong.proxy_ssl_port);
    let r = send(
        "POST",
        &url,
        &[("content-type", "text/plain")],
        Some("over h2".into()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.version,
        reqwest::Version::HTTP_2,
        "ALPN chose HTTP/2 on the ssl listener"
    );
    let seen = r.json();
    assert_eq!(seen["path"], "/x");
    assert_eq!(seen["body"], "over h2");
    assert_eq!(seen["http_version"], "HTTP/1.1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(
        seen["headers"]["x-forwarded-port"],
        kong.proxy_ssl_port.to_string()
    );
}

#[test]
fn trusted_peers_name_the_client_through_real_ip_header() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("trusted_ips = 127.0.0.1\nreal_ip_header = X-Forwarded-For");
    service_with_route(
        &kong,
        json!({"name": "echo", "url": echo.url()}),
        json!({"name": "r", "paths": ["/ip"]}),
    );
    admin(
        &kong,
        "POST",
        "/routes/r/plugins",
        json!({"name": "ip-restriction", "config": {"deny": ["9.9.9.9"]}}),
    );
    routed(&kong, "/ip");
    // The route may go live one configuration before its plugin does.
    let denied = wait_until(Duration::from_secs(5), || {
        send(
            "GET",
            &kong.proxy("/ip"),
            &[("x-forwarded-for", "9.9.9.9")],
            None,
        )
        .status
            == 403
    });
    assert!(denied, "the ip-restriction plugin never took effect");
    let r = send(
        "GET",
        &kong.proxy("/ip"),
        &[("x-forwarded-for", "8.8.8.8")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.json()["headers"];
    assert_eq!(
        h["x-real-ip"], "8.8.8.8",
        "the client, not the trusted peer"
    );
    assert_eq!(h["x-forwarded-for"], "8.8.8.8, 8.8.8.8");
    // A trusted peer's own forwarding headers stay as it sent them.
    let r = send(
        "GET",
        &kong.proxy("/ip"),
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "outer.test"),
            ("x-forwarded-prefix", "/outer"),
        ],
        None,
    );
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "outer.test");
    assert_eq!(h["x-forwarded-prefix"], "/outer");
    let r = send(
        "GET",
        &kong.proxy("/ip"),
        &[("x-forwarded-for", "9.9.9.9")],
        None,
    );
    assert_eq!(r.status, 403, "plugins see the real client: {}", r.body);
    assert!(
        r.body.contains("IP address not allowed: 9.9.9.9"),
        "{}",
        r.body
    );
}

/// `nginx_worker_processes = 1` runs the node on one thread (a current-thread runtime): the
/// proxy, the Admin API, configuration changes, a logger writing from a blocking task and a
/// clean stop all work there too.
#[test]
fn a_one_worker_node_serves_proxies_logs_and_stops() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("nginx_worker_processes = 1");
    service_with_route(
        &kong,
        json!({"name": "echo", "url": echo.url()}),
        json!({"name": "r", "paths": ["/one"]}),
    );
    let log = kong.prefix().join("one-worker.log");
    admin(
        &kong,
        "POST",
        "/routes/r/plugins",
        json!({"name": "file-log", "config": {"path": log}}),
    );
    routed(&kong, "/one");
    let logged = wait_until(Duration::from_secs(5), || {
        let r = send("GET", &kong.proxy("/one/x"), &[], None);
        assert_eq!(r.status, 200, "{}", r.body);
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"/one/x\""))
    });
    assert!(logged, "file-log never wrote the request");
    let out = kong.run(&["stop"]);
    assert!(out.status.success());
}
