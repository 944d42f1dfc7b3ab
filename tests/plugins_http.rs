//! The HTTP plugins through the real proxy: ip-restriction, cors, bot-detection,
//! request-size-limiting, correlation-id, request-transformer and response-transformer. Each
//! test starts a node, configures routes with the plugin through the Admin API, and checks
//! what Kong documents: the status, headers and body the client gets, and (through the echo
//! upstream) what reached the upstream.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::admin::{admin, service_with_route};
use crate::support::http::{send, Reply};
use crate::support::kong::{wait_until, Kong};
use crate::support::upstream::EchoUpstream;

/// A service `name` in front of `echo`, with one route `name` on `paths`, carrying `plugin`
/// (`{"name": ..., "config": ...}`) when given.
fn route(kong: &Kong, echo: &EchoUpstream, name: &str, paths: Value, plugin: Option<Value>) {
    admin(
        kong,
        "POST",
        "/services",
        json!({"name": name, "url": echo.url()}),
    );
    admin(
        kong,
        "POST",
        &format!("/services/{name}/routes"),
        json!({"name": name, "paths": paths}),
    );
    if let Some(plugin) = plugin {
        admin(kong, "POST", &format!("/routes/{name}/plugins"), plugin);
    }
}

/// Sends until `done` holds for the reply (the configuration goes live asynchronously);
/// returns the last reply, failing the test when it never holds.
fn until(
    kong: &Kong,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(8), || {
        let r = send(method, &kong.proxy(path), headers, body.map(str::to_owned));
        let hit = done(&r);
        last = Some(r);
        hit
    });
    let last = last.expect("a reply");
    assert!(
        ok,
        "{method} {path} never matched: {} {:?} {}",
        last.status, last.headers, last.body
    );
    last
}

fn get(kong: &Kong, path: &str, headers: &[(&str, &str)]) -> Reply {
    send("GET", &kong.proxy(path), headers, None)
}

/// A plugin config refused by the Admin API: its error body.
fn refused(kong: &Kong, plugin: Value) -> Value {
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(plugin.to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    r.json()
}

/// A raw HTTP/1.1 exchange (for chunked bodies and `Expect`): writes `request`, reads until
/// the server closes, returns status, lower-cased head and body.
fn raw(kong: &Kong, request: &[u8]) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", kong.proxy_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    // A timeout or reset after the answer still leaves the answer in `out`.
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn upstream_header<'a>(reply: &'a Value, name: &str) -> &'a Value {
    &reply["headers"][name]
}

#[test]
fn every_http_plugin_publishes_its_schema() {
    let kong = Kong::start("");
    for (name, field) in [
        ("ip-restriction", "allow"),
        ("cors", "origins"),
        ("bot-detection", "deny"),
        ("request-size-limiting", "allowed_payload_size"),
        ("correlation-id", "generator"),
        ("request-transformer", "http_method"),
        ("response-transformer", "json_types"),
    ] {
        let r = send(
            "GET",
            &kong.admin(&format!("/schemas/plugins/{name}")),
            &[],
            None,
        );
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert!(r.body.contains(field), "{name}: {}", r.body);
    }
}

#[test]
fn ip_restriction_denies_first_then_allows() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let ip = |config: Value| Some(json!({"name": "ip-restriction", "config": config}));
    route(
        &kong,
        &echo,
        "deny",
        json!(["/deny"]),
        ip(json!({"deny": ["127.0.0.1"]})),
    );
    route(
        &kong,
        &echo,
        "other",
        json!(["/other"]),
        ip(json!({"allow": ["10.0.0.0/8"]})),
    );
    route(
        &kong,
        &echo,
        "mine",
        json!(["/mine"]),
        ip(json!({"allow": ["127.0.0.0/24", "::1"]})),
    );
    route(
        &kong,
        &echo,
        "both",
        json!(["/both"]),
        ip(json!({"allow": ["127.0.0.1"], "deny": ["127.0.0.0/8"]})),
    );
    route(
        &kong,
        &echo,
        "custom",
        json!(["/custom"]),
        ip(json!({"deny": ["127.0.0.1/32"], "status": 401, "message": "go away"})),
    );
    route(
        &kong,
        &echo,
        "v6",
        json!(["/v6"]),
        ip(json!({"deny": ["::/0"]})),
    );

    let r = until(&kong, "GET", "/deny", &[], None, |r| r.status == 403);
    let body = r.json();
    assert_eq!(body["message"], "IP address not allowed: 127.0.0.1");
    assert!(body["request_id"].is_string(), "{body}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    // kong.response.error follows Accept.
    let r = get(&kong, "/deny", &[("accept", "text/plain")]);
    assert_eq!(r.status, 403);
    assert!(
        r.body.starts_with("IP address not allowed: 127.0.0.1\n"),
        "{}",
        r.body
    );

    assert_eq!(
        until(&kong, "GET", "/other", &[], None, |r| r.status != 404).status,
        403
    );
    let r = until(&kong, "GET", "/mine", &[], None, |r| r.status != 404);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/");
    // Deny is checked first: an address in both lists is refused.
    assert_eq!(
        until(&kong, "GET", "/both", &[], None, |r| r.status != 404).status,
        403
    );
    let r = until(&kong, "GET", "/custom", &[], None, |r| r.status != 404);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (401, json!("go away"))
    );
    // An IPv6 range does not catch an IPv4 client.
    assert_eq!(
        until(&kong, "GET", "/v6", &[], None, |r| r.status != 404).status,
        200
    );

    let body = refused(&kong, json!({"name": "ip-restriction", "config": {}}));
    assert_eq!(
        body["fields"]["@entity"][0],
        "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"
    );
    let body = refused(
        &kong,
        json!({"name": "ip-restriction", "config": {"allow": ["1.2.3.4/33"]}}),
    );
    assert_eq!(
        body["fields"]["config"]["allow"][0], "invalid ip or cidr range: '1.2.3.4/33'",
        "{body}"
    );
}

#[test]
fn cors_preflights_and_response_headers() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let cors = |config: Value| Some(json!({"name": "cors", "config": config}));
    route(&kong, &echo, "c1", json!(["/c1"]), cors(json!({})));
    route(
        &kong,
        &echo,
        "c2",
        json!(["/c2"]),
        cors(json!({
            "origins": ["http://example.com"],
            "methods": ["GET", "POST"],
            "headers": ["x-h1", "x-h2"],
            "exposed_headers": ["x-e1", "x-e2"],
            "max_age": 23,
            "credentials": true,
            "private_network": true,
        })),
    );
    route(
        &kong,
        &echo,
        "c3",
        json!(["/c3"]),
        cors(json!({"origins": [
            "http://example.com:80",
            "(.*)\\.example\\.org",
            "https://secure\\.test:8443",
        ]})),
    );
    route(
        &kong,
        &echo,
        "c4",
        json!(["/c4"]),
        cors(json!({"origins": ["*"], "credentials": true})),
    );
    route(
        &kong,
        &echo,
        "c5",
        json!(["/c5"]),
        cors(json!({"allow_origin_absent": false})),
    );
    route(
        &kong,
        &echo,
        "c6",
        json!(["/c6"]),
        cors(json!({"preflight_continue": true})),
    );
    route(
        &kong,
        &echo,
        "c7",
        json!(["/c7"]),
        cors(json!({"origins": ["http://a.test", "*"]})),
    );

    // Defaults: every origin, no credentials.
    let origin = ("origin", "http://a.test");
    let r = until(&kong, "GET", "/c1", &[origin], None, |r| {
        r.header("access-control-allow-origin").is_some()
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(r.json()["method"], "GET", "the request went upstream");
    // Preflight: answered by the gateway with the request's headers echoed.
    let preflight = [
        origin,
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "x-a,x-b"),
    ];
    let r = send("OPTIONS", &kong.proxy("/c1"), &preflight, None);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
    );
    assert_eq!(r.header("access-control-allow-headers"), Some("x-a,x-b"));
    assert_eq!(r.header("access-control-max-age"), None);
    // OPTIONS without Access-Control-Request-Method is no preflight: it goes upstream.
    let r = send("OPTIONS", &kong.proxy("/c1"), &[origin], None);
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // One literal origin: sent whatever the request's origin, with credentials.
    let other = ("origin", "http://other.test");
    let r = until(
        &kong,
        "OPTIONS",
        "/c2",
        &[
            other,
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-ignored"),
            ("access-control-request-private-network", "true"),
        ],
        None,
        |r| r.header("access-control-allow-origin").is_some(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-h1,x-h2"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(r.header("access-control-max-age"), Some("23"));
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    let r = get(&kong, "/c2", &[other]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("x-e1,x-e2"));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        None,
        "preflight only"
    );

    // Several origins: literal (normalized) and anchored regexes, by host or whole origin.
    let allowed = |o: &str| {
        let r = until(&kong, "GET", "/c3", &[("origin", o)], None, |r| {
            r.status == 200
        });
        assert_eq!(r.header("vary"), Some("Origin"), "{o}");
        r.header("access-control-allow-origin").map(str::to_owned)
    };
    assert_eq!(
        allowed("http://example.com").as_deref(),
        Some("http://example.com")
    );
    assert_eq!(
        allowed("http://example.com:80").as_deref(),
        Some("http://example.com")
    );
    assert_eq!(
        allowed("http://sub.example.org:8080").as_deref(),
        Some("http://sub.example.org:8080")
    );
    assert_eq!(allowed("http://example.org.evil.test"), None);
    assert_eq!(allowed("http://sub.example.org.evil.test"), None);
    assert_eq!(
        allowed("https://secure.test:8443").as_deref(),
        Some("https://secure.test:8443")
    );
    assert_eq!(allowed("https://secure.test"), None);
    assert_eq!(allowed("http://example.com:8080"), None);

    // `*` with credentials echoes the origin.
    let r = until(&kong, "GET", "/c4", &[origin], None, |r| r.status == 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));

    // allow_origin_absent = false: nothing without an Origin.
    let r = until(&kong, "GET", "/c5", &[origin], None, |r| r.status == 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = get(&kong, "/c5", &[]);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // ... while the default adds them anyway.
    assert_eq!(
        get(&kong, "/c1", &[]).header("access-control-allow-origin"),
        Some("*")
    );

    // preflight_continue: the upstream answers the preflight, no CORS header added.
    let r = until(&kong, "OPTIONS", "/c6", &preflight, None, |r| {
        r.status == 200
    });
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), None);

    // A `*` among several origins allows all.
    let r = until(&kong, "GET", "/c7", &[other], None, |r| r.status == 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // A plugin that answers before cors's access (bot-detection runs first) still gets the
    // CORS headers on its answer.
    route(
        &kong,
        &echo,
        "c8",
        json!(["/c8"]),
        cors(json!({"origins": ["http://a.test", "http://b.test"]})),
    );
    admin(
        &kong,
        "POST",
        "/routes/c8/plugins",
        json!({"name": "bot-detection"}),
    );
    let bot = ("user-agent", "Googlebot/2.1");
    let r = until(&kong, "GET", "/c8", &[origin, bot], None, |r| {
        r.status == 403
    });
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("vary"), Some("Origin"));

    let body = refused(
        &kong,
        json!({"name": "cors", "config": {"origins": ["(bad"]}}),
    );
    assert_eq!(
        body["fields"]["config"]["origins"][0],
        "'(bad' is not a valid regex"
    );
}

#[test]
fn bot_detection_refuses_bots_and_denied_agents() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(
        &kong,
        &echo,
        "b1",
        json!(["/b1"]),
        Some(json!({"name": "bot-detection"})),
    );
    route(
        &kong,
        &echo,
        "b2",
        json!(["/b2"]),
        Some(json!({"name": "bot-detection",
                    "config": {"allow": ["facebookexternalhit"], "deny": ["helloworld"]}})),
    );
    let google = (
        "user-agent",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
    );
    let r = until(&kong, "GET", "/b1", &[google], None, |r| r.status == 403);
    assert_eq!(r.json()["message"], "Forbidden");
    let chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/50.0.2661.102 Safari/537.36";
    assert_eq!(get(&kong, "/b1", &[("user-agent", chrome)]).status, 200);
    assert_eq!(
        get(&kong, "/b1", &[("user-agent", "curl/7.43.0")]).status,
        200
    );
    assert_eq!(get(&kong, "/b1", &[]).status, 200, "no User-Agent passes");
    let facebook = ("user-agent", "facebookexternalhit/1.1");
    assert_eq!(get(&kong, "/b1", &[facebook]).status, 403);
    let r = get(
        &kong,
        "/b1",
        &[("user-agent", chrome), ("user-agent", "other")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Only one User-Agent header allowed");

    let r = until(&kong, "GET", "/b2", &[facebook], None, |r| r.status != 404);
    assert_eq!(r.status, 200, "allow beats the built-in list");
    assert_eq!(
        get(&kong, "/b2", &[("user-agent", "helloworld")]).status,
        403
    );
    assert_eq!(get(&kong, "/b2", &[google]).status, 403);

    let body = refused(
        &kong,
        json!({"name": "bot-detection", "config": {"deny": ["(x"]}}),
    );
    assert!(body["fields"]["config"]["deny"][0].is_string(), "{body}");
}

#[test]
fn request_size_limiting_by_length_or_body() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let limit = |config: Value| Some(json!({"name": "request-size-limiting", "config": config}));
    route(
        &kong,
        &echo,
        "s1",
        json!(["/s1"]),
        limit(json!({"allowed_payload_size": 10, "size_unit": "bytes"})),
    );
    route(
        &kong,
        &echo,
        "s2",
        json!(["/s2"]),
        limit(json!({"allowed_payload_size": 1, "size_unit": "kilobytes",
                     "require_content_length": true})),
    );
    let r = until(&kong, "POST", "/s1", &[], Some("12345678901"), |r| {
        r.status == 413
    });
    let body = r.json();
    assert_eq!(body["message"], "Request size limit exceeded");
    assert!(body["request_id"].is_string());
    let r = send("POST", &kong.proxy("/s1"), &[], Some("1234567890".into()));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "1234567890");

    // Without Content-Length the (chunked) body is measured.
    let chunked = |path: &str, data: &str| {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{data}\r\n0\r\n\r\n",
            data.len()
        );
        raw(&kong, req.as_bytes())
    };
    let (status, _, body) = chunked("/s1", "12345678901");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("Request size limit exceeded"), "{body}");
    let (status, _, body) = chunked("/s1", "12345");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"body\":\"12345\""), "{body}");

    // Expect: 100-continue over the limit: 417, without waiting for the body.
    let (status, _, body) = raw(
        &kong,
        b"POST /s1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 417, "{body}");
    assert!(body.contains("Request size limit exceeded"), "{body}");

    // Kilobytes, and a Content-Length required unless chunked.
    let r = until(&kong, "POST", "/s2", &[], Some(&"x".repeat(1025)), |r| {
        r.status == 413
    });
    assert_eq!(r.json()["message"], "Request size limit exceeded");
    let r = send("POST", &kong.proxy("/s2"), &[], Some("x".repeat(1024)));
    assert_eq!(r.status, 200);
    let (status, _, body) = raw(
        &kong,
        b"POST /s2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 411, "{body}");
    assert!(
        body.contains("A valid Content-Length header is required"),
        "{body}"
    );
    let (status, _, body) = chunked("/s2", "small");
    assert_eq!(status, 200, "{body}");

    let body = refused(
        &kong,
        json!({"name": "request-size-limiting", "config": {"size_unit": "gigabytes"}}),
    );
    assert_eq!(
        body["fields"]["config"]["size_unit"],
        "expected one of: megabytes, kilobytes, bytes"
    );
}

#[test]
fn correlation_id_generates_keeps_and_echoes() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let id = |config: Value| Some(json!({"name": "correlation-id", "config": config}));
    route(&kong, &echo, "i1", json!(["/i1"]), id(json!({})));
    route(
        &kong,
        &echo,
        "i2",
        json!(["/i2"]),
        id(json!({"header_name": "X-Trace", "generator": "uuid", "echo_downstream": true})),
    );
    route(
        &kong,
        &echo,
        "i3",
        json!(["/i3"]),
        id(json!({"generator": "tracker"})),
    );

    // uuid#counter: one UUID, a growing counter.
    let r = until(&kong, "GET", "/i1", &[], None, |r| {
        r.status == 200 && r.json()["headers"]["kong-request-id"].is_string()
    });
    let first = r.json()["headers"]["kong-request-id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (uuid, n) = first.split_once('#').expect("uuid#counter");
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{first}");
    let second = get(&kong, "/i1", &[]).json()["headers"]["kong-request-id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (uuid2, n2) = second.split_once('#').expect("uuid#counter");
    assert_eq!(uuid, uuid2);
    assert!(n2.parse::<u64>().expect("n") > n.parse::<u64>().expect("n"));
    assert!(
        r.header("kong-request-id").is_none(),
        "not echoed by default"
    );
    // The client's own id is kept.
    let r = get(&kong, "/i1", &[("kong-request-id", "mine")]);
    assert_eq!(upstream_header(&r.json(), "kong-request-id"), "mine");

    // uuid, echoed downstream under its own name.
    let r = until(&kong, "GET", "/i2", &[], None, |r| {
        r.header("x-trace").is_some()
    });
    let sent = r.json()["headers"]["x-trace"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&sent).map(|u| u.get_version_num()),
        Ok(4)
    );
    assert_eq!(r.header("x-trace"), Some(sent.as_str()));
    let r = get(&kong, "/i2", &[("x-trace", "given")]);
    assert_eq!(r.header("x-trace"), Some("given"));

    // tracker: server address, port, pid, connection, requests, time.
    let r = until(&kong, "GET", "/i3", &[], None, |r| {
        r.status == 200 && r.json()["headers"]["kong-request-id"].is_string()
    });
    let tracker = r.json()["headers"]["kong-request-id"]
        .as_str()
        .expect("id")
        .to_owned();
    let fields: Vec<&str> = tracker.split('-').collect();
    assert_eq!(fields.len(), 6, "{tracker}");
    assert_eq!(fields[0], "127.0.0.1");
    assert_eq!(fields[1], kong.proxy_port.to_string());
    assert!(fields[2].parse::<u32>().is_ok() && fields[3].parse::<u64>().is_ok());
    let (secs, millis) = fields[5].split_once('.').expect("seconds.millis");
    assert!(
        secs.parse::<u64>().is_ok() && millis.len() == 3,
        "{tracker}"
    );

    // A global echoing instance also answers requests that matched no route.
    admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "correlation-id", "config": {"header_name": "x-global", "echo_downstream": true}}),
    );
    let r = until(&kong, "GET", "/nowhere", &[], None, |r| {
        r.header("x-global").is_some()
    });
    assert_eq!(r.status, 404);

    let body = refused(
        &kong,
        json!({"name": "correlation-id", "config": {"generator": "random"}}),
    );
    assert_eq!(
        body["fields"]["config"]["generator"],
        "expected one of: uuid, uuid#counter, tracker"
    );
}

#[test]
fn request_transformer_headers_query_and_method() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let rt = |config: Value| Some(json!({"name": "request-transformer", "config": config}));
    route(
        &kong,
        &echo,
        "h",
        json!(["/h"]),
        rt(json!({
            "remove": {"headers": ["x-remove"]},
            "rename": {"headers": ["x-old:x-new"]},
            "replace": {"headers": ["x-rep:replaced", "x-absent:no", "host:changed.test"]},
            "add": {"headers": ["x-add:added", "x-exists:no"]},
            "append": {"headers": ["x-app:one", "x-app:two"]},
        })),
    );
    route(
        &kong,
        &echo,
        "q",
        json!(["/q"]),
        rt(json!({
            "remove": {"querystring": ["r"]},
            "rename": {"querystring": ["old:new"]},
            "replace": {"querystring": ["rep:R", "absent:X"]},
            "add": {"querystring": ["add:A b", "keep:no"]},
            "append": {"querystring": ["app:1"]},
        })),
    );
    route(
        &kong,
        &echo,
        "m",
        json!(["/m"]),
        rt(json!({"http_method": "GET"})),
    );

    let r = until(
        &kong,
        "GET",
        "/h",
        &[
            ("x-remove", "1"),
            ("x-old", "o"),
            ("x-rep", "r"),
            ("x-exists", "yes"),
        ],
        None,
        |r| r.status == 200 && r.json()["headers"]["x-add"].is_string(),
    );
    let up = r.json();
    let h = &up["headers"];
    assert!(h["x-remove"].is_null(), "{h}");
    assert!(h["x-old"].is_null());
    assert_eq!(h["x-new"], "o");
    assert_eq!(h["x-rep"], "replaced");
    assert!(
        h["x-absent"].is_null(),
        "replace only touches present headers"
    );
    assert_eq!(h["host"], "changed.test", "Host may always be replaced");
    assert_eq!(h["x-add"], "added");
    assert_eq!(h["x-exists"], "yes", "add only sets absent headers");
    assert_eq!(h["x-app"], json!(["one", "two"]));

    let r = until(
        &kong,
        "GET",
        "/q?r=1&old=o&rep=x&keep=k&app=0&z=hello%20world",
        &[],
        None,
        |r| {
            r.status == 200
                && r.json()["query"]
                    .as_str()
                    .is_some_and(|q| q.contains("add="))
        },
    );
    assert_eq!(
        r.json()["query"],
        "add=A%20b&app=0&app=1&keep=k&new=o&rep=R&z=hello%20world"
    );

    // GET from a form POST: the form's fields join the query.
    let r = until(
        &kong,
        "POST",
        "/m?q=0",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some("b=2&a=1"),
        |r| r.status == 200 && r.json()["method"] == "GET",
    );
    assert_eq!(r.json()["query"], "a=1&b=2&q=0");

    for (config, field, message) in [
        (
            json!({"add": {"body": ["novalue"]}}),
            "add",
            "key 'novalue' has no value",
        ),
        (
            json!({"add": {"headers": ["x a:1"]}}),
            "add",
            "'x a' is not a valid header",
        ),
        (
            json!({"add": {"querystring": ["k:$(ERROR())"]}}),
            "add",
            "value '$(ERROR())' is not in supported format",
        ),
    ] {
        let body = refused(
            &kong,
            json!({"name": "request-transformer", "config": config}),
        );
        let text = body["fields"]["config"][field].to_string();
        assert!(text.contains(message), "{text}");
    }
    let body = refused(
        &kong,
        json!({"name": "request-transformer", "config": {"http_method": "get"}}),
    );
    assert_eq!(
        body["fields"]["config"]["http_method"],
        "invalid value: get"
    );
}

#[test]
fn request_transformer_bodies_and_templates() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let body_ops = json!({
        "remove": {"body": ["secret"]},
        "rename": {"body": ["old:new"]},
        "replace": {"body": ["rep:R", "absent:X"]},
        "add": {"body": ["add:A", "rep:no"]},
        "append": {"body": ["list:x"]},
    });
    route(
        &kong,
        &echo,
        "b",
        json!(["/b"]),
        Some(json!({"name": "request-transformer", "config": body_ops})),
    );
    service_with_route(
        &kong,
        json!({"name": "t", "url": format!("{}/base", echo.url())}),
        json!({"name": "t", "paths": ["~/users/(?<id>\\d+)/posts/(\\d+)$"]}),
    );
    admin(
        &kong,
        "POST",
        "/routes/t/plugins",
        json!({"name": "request-transformer", "config": {
            "replace": {"uri": "/v2/user/$(uri_captures.id)/$(uri_captures[2])"},
            "add": {
                "headers": ["x-from-header:$(headers.x_src)", "x-from-query:$(query_params.q or 'none')"],
                "querystring": ["cap:$(uri_captures['id'])", "lit:$(headers.absent or \"dflt\")"],
            },
        }}),
    );

    // JSON
    let json_ct = [("content-type", "application/json")];
    let r = until(
        &kong,
        "POST",
        "/b",
        &json_ct,
        Some(r#"{"secret":1,"old":"o","rep":"r","list":["a"],"keep":true}"#),
        |r| r.status == 200 && r.json()["body"].as_str().is_some_and(|b| b.contains("add")),
    );
    let up = r.json();
    let sent: Value = serde_json::from_str(up["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(
        sent,
        json!({"new": "o", "rep": "R", "add": "A", "list": ["a", "x"], "keep": true})
    );
    assert_eq!(
        up["headers"]["content-length"],
        up["body"]
            .as_str()
            .map(|b| b.len().to_string())
            .expect("len")
    );
    // An empty JSON body only gets additions (both `add` entries are absent there).
    let r = send("POST", &kong.proxy("/b"), &json_ct, None);
    let sent: Value = serde_json::from_str(r.json()["body"].as_str().expect("body")).expect("json");
    assert_eq!(sent, json!({"add": "A", "rep": "no", "list": ["x"]}));
    // A body that is not JSON is sent as it came.
    let r = send("POST", &kong.proxy("/b"), &json_ct, Some("not json".into()));
    assert_eq!(r.json()["body"], "not json");

    // Form
    let r = send(
        "POST",
        &kong.proxy("/b"),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some("secret=s&old=o&rep=r&list=a&z=a+b".into()),
    );
    assert_eq!(r.json()["body"], "rep=R&list=a&list=x&z=a%20b&new=o&add=A");

    // Multipart
    let multipart = "--XX\r\nContent-Disposition: form-data; name=\"secret\"\r\n\r\ns\r\n--XX\r\nContent-Disposition: form-data; name=\"rep\"\r\n\r\nr\r\n--XX\r\nContent-Disposition: form-data; name=\"old\"\r\n\r\no\r\n--XX--\r\n";
    let r = send(
        "POST",
        &kong.proxy("/b"),
        &[("content-type", "multipart/form-data; boundary=XX")],
        Some(multipart.into()),
    );
    let sent = r.json()["body"].as_str().expect("body").to_owned();
    assert!(!sent.contains("name=\"secret\""), "{sent}");
    assert!(!sent.contains("name=\"old\""), "{sent}");
    assert!(sent.contains("name=\"new\"\r\n\r\no\r\n"), "{sent}");
    assert!(sent.contains("name=\"rep\"\r\n\r\nR\r\n"), "{sent}");
    assert!(sent.contains("name=\"add\"\r\n\r\nA\r\n"), "{sent}");
    assert!(sent.ends_with("--XX--\r\n"), "{sent}");

    // Other content types are left alone (and not read before access).
    let r = send(
        "POST",
        &kong.proxy("/b"),
        &[("content-type", "text/plain")],
        Some("secret".into()),
    );
    assert_eq!(r.json()["body"], "secret");

    // Templates, and a replaced URI that overrides the service path.
    let r = until(
        &kong,
        "GET",
        "/users/7/posts/9?q=1",
        &[("x-src", "from-client")],
        None,
        |r| r.status == 200 && r.json()["path"] == "/v2/user/7/9",
    );
    let up = r.json();
    assert_eq!(up["headers"]["x-from-header"], "from-client");
    assert_eq!(up["headers"]["x-from-query"], "1");
    assert_eq!(up["query"], "cap=7&lit=dflt&q=1");
    let r = get(&kong, "/users/8/posts/1", &[]);
    assert_eq!(r.json()["path"], "/v2/user/8/1");
    assert_eq!(r.json()["headers"]["x-from-query"], "none");
    assert_eq!(r.json()["headers"]["x-from-header"], "");
}

#[test]
fn response_transformer_headers_and_json() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    let rt = |config: Value| Some(json!({"name": "response-transformer", "config": config}));
    route(
        &kong,
        &echo,
        "h",
        json!(["/h"]),
        rt(json!({
            "remove": {"headers": ["via"]},
            "rename": {"headers": ["x-kong-upstream-latency:x-upstream-ms"]},
            "replace": {"headers": ["content-type:application/json; charset=utf-8", "x-absent:no"]},
            "add": {"headers": ["x-added:yes", "content-type:text/plain"]},
            "append": {"headers": ["x-app:1", "x-app:2"]},
        })),
    );
    route(
        &kong,
        &echo,
        "j",
        json!(["/j"]),
        rt(json!({
            "remove": {"json": ["headers"]},
            "rename": {"json": ["method:verb"]},
            "replace": {"json": ["path:/replaced", "absent:x"]},
            "add": {"json": ["n:42", "b:true", "s:str", "path:no"], "json_types": ["number", "boolean"]},
            "append": {"json": ["http_version:extra"]},
        })),
    );

    let r = until(&kong, "GET", "/h", &[], None, |r| {
        r.header("x-added").is_some()
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.header("via"), None);
    assert!(r.header("x-upstream-ms").is_some(), "{:?}", r.headers);
    assert_eq!(r.header("x-kong-upstream-latency"), None);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("x-absent"), None);
    let app: Vec<&str> = r
        .headers
        .get_all("x-app")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(app, ["1", "2"]);
    // Header-only transforms leave the body and its length alone.
    assert_eq!(
        r.header("content-length").map(str::to_owned),
        Some(r.body.len().to_string())
    );

    let r = until(&kong, "GET", "/j?x=1", &[], None, |r| {
        r.status == 200 && r.body.contains("verb")
    });
    assert_eq!(r.header("content-length"), None, "the body changed length");
    assert_eq!(
        r.json(),
        json!({
            "verb": "GET",
            "path": "/replaced",
            "query": "x=1",
            "uri": "/?x=1",
            "body": "",
            "http_version": ["HTTP/1.1", "extra"],
            "n": 42,
            "b": true,
            "s": "str",
        })
    );
    // Not JSON: untouched.
    let r = get(&kong, "/j/status/abc", &[]);
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("/status/{code} needs"), "{}", r.body);
    assert!(r.header("content-length").is_some());

    let body = refused(
        &kong,
        json!({"name": "response-transformer", "config": {"add": {"json_types": ["date"]}}}),
    );
    assert_eq!(
        body["fields"]["config"]["add"]["json_types"][0],
        "expected one of: boolean, number, string"
    );
}
