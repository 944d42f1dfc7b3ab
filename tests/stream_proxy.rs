//! The stream proxy through the real binary: `stream_listen` listeners (plain, `ssl`, `udp`),
//! stream routes written through the Admin API, and line-echo upstreams that say which service
//! a connection reached (see `support/stream.rs`).
//!
//! Every test starts its own node: stream routes match on addresses, so one test's routes must
//! not catch another's connections.

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::admin::admin;
use crate::support::kong::{free_port, wait_until, Kong};
use crate::support::stream::{
    cert, exchange, tcp_line, tcp_line_from, tls_connect, udp_exchange, TcpEcho, TlsEcho, UdpEcho,
};

/// Creates service `name` reaching `host:port` with `protocol`, plus `extra` fields.
fn service(kong: &Kong, name: &str, protocol: &str, port: u16, extra: Value) {
    let mut body = json!({"name": name, "protocol": protocol, "host": "127.0.0.1", "port": port});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    admin(kong, "POST", "/services", body);
}

/// Adds a route to service `name`.
fn route(kong: &Kong, name: &str, body: Value) {
    admin(kong, "POST", &format!("/services/{name}/routes"), body);
}

/// Waits until `probe` gives `Ok(expected)` (the configuration is live), within 5 s.
fn wait_answer(expected: &str, mut probe: impl FnMut() -> Result<String, String>) {
    let mut last = Err(String::new());
    let live = wait_until(Duration::from_secs(5), || {
        last = probe();
        last.as_deref() == Ok(expected)
    });
    assert!(live, "never answered {expected:?}; last: {last:?}");
}

#[test]
fn tcp_route_added_through_the_admin_api_takes_effect_without_restart() {
    let (port, other) = (free_port(), free_port());
    let kong = Kong::start(&format!(
        "stream_listen = 127.0.0.1:{port}, 127.0.0.1:{other}"
    ));
    let echo = TcpEcho::start("echo");
    assert_eq!(
        tcp_line(port, "before"),
        Err("closed".into()),
        "no route: closed"
    );

    service(&kong, "echo", "tcp", echo.addr.port(), json!({}));
    route(
        &kong,
        "echo",
        json!({"protocols": ["tcp"], "destinations": [{"port": port}]}),
    );
    wait_answer("echo hello", || tcp_line(port, "hello"));

    // The route is by destination port: the other listener still has none.
    assert_eq!(tcp_line(other, "hello"), Err("closed".into()));
    // One connection, several exchanges, both ways.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(exchange(&mut stream, "one"), Ok("echo one".into()));
    assert_eq!(exchange(&mut stream, "two"), Ok("echo two".into()));
    // Stream connections count in the node's connections (this request is one more).
    let status = crate::support::http::get(&kong.admin("/status")).json();
    let active = status["server"]["connections_active"].as_i64();
    assert!(active.is_some_and(|n| n >= 2), "{status}");
}

#[test]
fn source_cidr_chooses_between_two_services() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port}"));
    let (a, b) = (TcpEcho::start("a"), TcpEcho::start("b"));
    service(&kong, "a", "tcp", a.addr.port(), json!({}));
    service(&kong, "b", "tcp", b.addr.port(), json!({}));
    route(
        &kong,
        "a",
        json!({"protocols": ["tcp"], "sources": [{"ip": "127.0.0.2/31"}]}),
    );
    route(
        &kong,
        "b",
        json!({"protocols": ["tcp"], "sources": [{"ip": "127.0.0.4/30"}]}),
    );
    wait_answer("b x", || tcp_line_from("127.0.0.5", port, "x"));

    assert_eq!(tcp_line_from("127.0.0.2", port, "x"), Ok("a x".into()));
    assert_eq!(tcp_line_from("127.0.0.3", port, "x"), Ok("a x".into()));
    assert_eq!(tcp_line_from("127.0.0.4", port, "x"), Ok("b x".into()));
    assert_eq!(tcp_line_from("127.0.0.7", port, "x"), Ok("b x".into()));
    assert_eq!(
        tcp_line_from("127.0.0.1", port, "x"),
        Err("closed".into()),
        "no route for 127.0.0.1"
    );
}

#[test]
fn tls_is_terminated_with_the_certificate_of_the_sni() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port} ssl"));
    let plain = TcpEcho::start("plain");
    let secure = TlsEcho::start("backend.test", "secure");
    let shop = cert("shop.test");
    admin(
        &kong,
        "POST",
        "/certificates",
        json!({"cert": shop.cert, "key": shop.key, "snis": ["shop.test"]}),
    );
    service(&kong, "plain", "tcp", plain.addr.port(), json!({}));
    route(
        &kong,
        "plain",
        json!({"protocols": ["tls"], "snis": ["shop.test"]}),
    );
    // A `tls` service: the node terminates the client's TLS and encrypts again upstream.
    service(&kong, "secure", "tls", secure.addr.port(), json!({}));
    route(
        &kong,
        "secure",
        json!({"protocols": ["tls"], "snis": ["secure.test"]}),
    );

    let via = |sni: &str| {
        let (mut stream, der) = tls_connect(port, sni)?;
        exchange(&mut stream, "hello").map(|answer| (answer, der))
    };
    wait_answer("secure hello", || via("secure.test").map(|(a, _)| a));
    let (answer, der) = via("shop.test").expect("shop.test");
    assert_eq!(answer, "plain hello");
    assert!(der == shop.der, "the shop.test certificate was served");
    let (_, der) = via("secure.test").expect("secure.test");
    assert!(
        der != shop.der && der != secure.cert.der,
        "no certificate for secure.test: the node's default"
    );

    let refused = tls_connect(port, "unknown.test").map(|_| ());
    assert!(
        refused.is_err(),
        "no route for the SNI: closed before the handshake"
    );
}

#[test]
fn tls_passthrough_lets_the_client_handshake_with_the_upstream() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port} ssl"));
    let backend = TlsEcho::start("backend.test", "backend");
    service(&kong, "backend", "tcp", backend.addr.port(), json!({}));
    route(
        &kong,
        "backend",
        json!({"protocols": ["tls_passthrough"], "snis": ["backend.test"]}),
    );
    let via = || {
        let (mut stream, der) = tls_connect(port, "backend.test")?;
        exchange(&mut stream, "hello").map(|answer| (answer, der))
    };
    wait_answer("backend hello", || via().map(|(a, _)| a));
    let (_, der) = via().expect("passthrough");
    assert!(
        der == backend.cert.der,
        "the client saw the upstream's own certificate"
    );
}

#[test]
fn udp_datagrams_reach_the_service_in_per_client_sessions_that_expire_when_idle() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port} udp"));
    let echo = UdpEcho::start("udp");
    // The session's idle timeout is the larger of the two.
    service(
        &kong,
        "udp",
        "udp",
        echo.addr.port(),
        json!({"read_timeout": 300, "write_timeout": 200}),
    );
    route(
        &kong,
        "udp",
        json!({"protocols": ["udp"], "destinations": [{"port": port}]}),
    );
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut first = String::new();
    let live = wait_until(Duration::from_secs(5), || {
        udp_exchange(&client, port, "one").is_ok_and(|a| {
            first = a;
            true
        })
    });
    assert!(live, "no answer over UDP");
    let parts: Vec<&str> = first.split(' ').collect();
    assert_eq!((parts[0], parts[2]), ("udp", "one"), "{first}");
    let session_port = parts[1].to_owned();

    let again = udp_exchange(&client, port, "two").expect("second datagram");
    assert_eq!(again, format!("udp {session_port} two"), "same session");

    let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let theirs = udp_exchange(&other, port, "x").expect("another client");
    assert!(
        !theirs.starts_with(&format!("udp {session_port} ")),
        "another client, another session: {theirs}"
    );

    std::thread::sleep(Duration::from_millis(800));
    let later = udp_exchange(&client, port, "three").expect("after idle");
    assert!(
        later.starts_with("udp ") && later.ends_with(" three"),
        "{later}"
    );
    assert!(
        !later.starts_with(&format!("udp {session_port} ")),
        "the idle session expired and a new one began: {later}"
    );
}

#[test]
fn upstream_down_closes_the_connection() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port}"));
    let down = free_port();
    service(&kong, "down", "tcp", down, json!({"retries": 1}));
    route(
        &kong,
        "down",
        json!({"protocols": ["tcp"], "destinations": [{"port": port}]}),
    );
    // Until the route is live the connection closes for lack of a route, after that for lack
    // of an upstream: either way closed, so wait for the log to show the route was used.
    let refused = wait_until(Duration::from_secs(5), || {
        tcp_line(port, "x") == Err("closed".into())
            && kong
                .log("error.log")
                .contains("could not connect to upstream")
    });
    assert!(refused, "{}", kong.log("error.log"));
}

#[test]
fn stream_listeners_follow_reload() {
    let (first, second) = (free_port(), free_port());
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{first}"));
    let echo = TcpEcho::start("echo");
    service(&kong, "echo", "tcp", echo.addr.port(), json!({}));
    route(
        &kong,
        "echo",
        json!({"protocols": ["tcp"], "sources": [{"ip": "127.0.0.1"}]}),
    );
    wait_answer("echo a", || tcp_line(first, "a"));

    kong.append_conf(&format!("stream_listen = 127.0.0.1:{second}"));
    let out = kong.run(&["reload"]);
    assert!(out.status.success(), "{}", crate::support::kong::text(&out));
    wait_answer("echo b", || tcp_line(second, "b"));
    let closed = wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", first)).is_err()
    });
    assert!(closed, "the listener removed by reload stopped accepting");
}

#[test]
fn tcp_route_to_a_tls_service_encrypts_upstream() {
    let port = free_port();
    let kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port}"));
    let secure = TlsEcho::start("backend.test", "secure");
    service(&kong, "secure", "tls", secure.addr.port(), json!({}));
    route(
        &kong,
        "secure",
        json!({"protocols": ["tcp"], "destinations": [{"port": port}]}),
    );
    // The client speaks in clear; only a TLS client could have talked to the echo.
    wait_answer("secure hello", || tcp_line(port, "hello"));

    // The service's TLS settings apply: verified against no trusted CA, the upstream's
    // self-signed certificate is refused and the connection closed.
    admin(
        &kong,
        "PATCH",
        "/services/secure",
        json!({"tls_verify": true}),
    );
    let refused = wait_until(Duration::from_secs(5), || {
        tcp_line(port, "hello") == Err("closed".into())
    });
    assert!(refused, "an unverifiable upstream still answered");
}

#[test]
fn quit_stops_accepting_and_waits_for_relayed_connections() {
    let port = free_port();
    let mut kong = Kong::start(&format!("stream_listen = 127.0.0.1:{port}"));
    let pid = kong.pid().expect("pid");
    let echo = TcpEcho::start("echo");
    service(&kong, "echo", "tcp", echo.addr.port(), json!({}));
    route(
        &kong,
        "echo",
        json!({"protocols": ["tcp"], "destinations": [{"port": port}]}),
    );
    wait_answer("echo ready", || tcp_line(port, "ready"));
    let mut open = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(exchange(&mut open, "one"), Ok("echo one".into()));

    let prefix = kong.prefix();
    let quitter = std::thread::spawn(move || {
        crate::support::kong::kong(&["quit", "-t", "20", "-p", prefix.to_str().expect("utf-8")])
    });
    let refused = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(refused, "after quit the stream listener stops accepting");
    assert!(
        crate::support::kong::alive(pid),
        "the node waits for the open connection"
    );
    assert_eq!(
        exchange(&mut open, "two"),
        Ok("echo two".into()),
        "still relayed while draining"
    );
    drop(open);
    let out = quitter.join().expect("quit thread");
    let said = crate::support::kong::text(&out);
    assert!(
        out.status.success() && said.contains("Kong stopped (gracefully)"),
        "{said}"
    );
    kong.set_stopped();
}
