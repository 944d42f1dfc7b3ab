//! Bad input on the proxy, through the real binary: malformed and smuggling requests, oversized
//! heads, slow clients and broken upstreams. Every case checks the status line a raw client
//! gets, that the node is left with no connection more than before, and that it still proxies a
//! normal request.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::support::http::rt;
use crate::support::kong::{wait_until, Kong};
use crate::support::upstream::EchoUpstream;

const WITHIN: Duration = Duration::from_secs(5);

/// Sends `request` on a new connection and reads until the node closes it; panics if it does
/// not close it within `within`. A reset counts as a close.
fn exchange(port: u16, request: &[u8], within: Duration) -> String {
    rt().block_on(async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        // The node may refuse (and stop reading) before everything is written.
        let _ = s.write_all(request).await;
        read_to_close(&mut s, within).await
    })
}

async fn read_to_close(s: &mut TcpStream, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection was still open after {within:?}; received: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Sends a request with a JSON body to the Admin API on its own connection.
fn admin(kong: &Kong, method: &str, path: &str, payload: Value) -> Value {
    let payload = payload.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let response = exchange(kong.admin_port, request.as_bytes(), WITHIN);
    assert!(
        status_line(&response).starts_with("HTTP/1.1 20"),
        "{method} {path}: {response}"
    );
    serde_json::from_str(body(&response)).unwrap_or(Value::Null)
}

fn get(port: u16, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    exchange(port, request.as_bytes(), WITHIN)
}

/// Open connections on the node (all listeners), not counting the one asking.
fn open_connections(kong: &Kong) -> i64 {
    let response = get(kong.admin_port, "/status");
    let status: Value = serde_json::from_str(body(&response))
        .unwrap_or_else(|e| panic!("/status is not JSON ({e}): {response}"));
    status["server"]["connections_active"]
        .as_i64()
        .expect("connections_active")
        - 1
}

/// The node lets go of every connection a case opened, and still proxies normally.
fn recovers(kong: &Kong, baseline: i64, case: &str) {
    let mut open = 0;
    let settled = wait_until(WITHIN, || {
        open = open_connections(kong);
        open == baseline
    });
    assert!(
        settled,
        "{case}: {open} connections open, {baseline} before"
    );
    let response = get(kong.proxy_port, "/echo/healthy");
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 200 OK",
        "{case}: {response}"
    );
}

/// A node proxying `/echo` to an echo upstream; `extra` goes to `kong.conf`.
fn node(extra: &str) -> (Kong, EchoUpstream) {
    let echo = EchoUpstream::start();
    let kong = Kong::start(extra);
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "echo", "url": echo.url()}),
    );
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"paths": ["/echo"]}),
    );
    let live = wait_until(WITHIN, || {
        status_line(&get(kong.proxy_port, "/echo")) == "HTTP/1.1 200 OK"
    });
    assert!(live, "the /echo route never became live");
    (kong, echo)
}

#[test]
fn smuggling_and_malformed_requests_are_refused_with_kongs_400() {
    let (kong, echo) = node("");
    let baseline = open_connections(&kong);
    let cases: [(&str, &str); 7] = [
        (
            "Content-Length with Transfer-Encoding",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "Transfer-Encoding with Content-Length",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "two different Content-Lengths",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "a Transfer-Encoding other than chunked",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ),
        (
            "an invalid chunk size",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            "GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: first\r\n second\r\n\r\n",
        ),
        ("a malformed request line", "GET /echo  HTTP/1.1 extra\r\nHost: x\r\n\r\n"),
    ];
    for (case, request) in cases {
        let before = echo.requests();
        let response = exchange(kong.proxy_port, request.as_bytes(), WITHIN);
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 400 Bad Request",
            "{case}: {response}"
        );
        assert!(
            body(&response).starts_with("Bad request\nrequest_id: "),
            "{case}: Kong's error body: {response}"
        );
        assert_eq!(
            echo.requests(),
            before,
            "{case}: nothing reached the upstream"
        );
        recovers(&kong, baseline, case);
    }
}

#[test]
fn the_admin_api_refuses_the_same_heads_in_its_own_format() {
    let kong = Kong::start("");
    let response = exchange(
        kong.admin_port,
        b"POST /services HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        WITHIN,
    );
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 400 Bad Request",
        "{response}"
    );
    let error: Value = serde_json::from_str(body(&response)).expect("a JSON body");
    assert_eq!(error, json!({"message": "Bad request"}));
}

#[test]
fn a_request_pipelined_before_a_smuggling_attempt_is_answered_first() {
    let (kong, echo) = node("");
    let baseline = open_connections(&kong);
    let before = echo.requests();
    let response = exchange(
        kong.proxy_port,
        b"GET /echo/first HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
          GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        WITHIN,
    );
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let second = response
        .match_indices("HTTP/1.1 ")
        .nth(1)
        .map(|(i, _)| &response[i..])
        .unwrap_or_else(|| panic!("a second answer: {response}"));
    assert!(second.starts_with("HTTP/1.1 400 Bad Request"), "{second}");
    assert!(
        second.contains("\"message\":\"Bad request\""),
        "the refusal follows the refused request's Accept: {second}"
    );
    assert_eq!(response.matches("HTTP/1.1 ").count(), 2, "{response}");
    assert_eq!(
        echo.requests(),
        before + 1,
        "only the first request went up"
    );
    assert!(!response.contains("smuggled"), "{response}");
    recovers(&kong, baseline, "pipelined");
}

#[test]
fn large_pipelined_bodies_pass_the_guard_intact() {
    let (kong, echo) = node("");
    let before = echo.requests();
    let sized = "a".repeat(300_000);
    let chunk = "b".repeat(100_000);
    let request = format!(
        "POST /echo/sized HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{sized}\
         POST /echo/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n\
         GET /echo/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        sized.len(),
        len = chunk.len(),
    );
    let response = exchange(kong.proxy_port, request.as_bytes(), WITHIN);
    assert_eq!(response.matches("HTTP/1.1 200 OK").count(), 3);
    assert!(response.contains(&sized) && response.contains(&chunk.repeat(2)));
    assert!(response.contains("\"path\":\"/last\""));
    assert_eq!(echo.requests(), before + 3);
}

#[test]
fn plain_and_streamed_requests_take_turns_on_one_connection() {
    // Plain requests are served by the node's own loop; the chunked one makes the connection
    // go on through hyper. Every answer comes back, in order, with its body.
    let (kong, echo) = node("");
    let baseline = open_connections(&kong);
    let before = echo.requests();
    let response = exchange(
        kong.proxy_port,
        b"GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz\
          HEAD /echo/c HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo/d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nuvw\r\n0\r\n\r\n\
          GET /echo/e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WITHIN,
    );
    assert_eq!(response.matches("HTTP/1.1 200 OK").count(), 5, "{response}");
    let answers: Vec<&str> = response.split("HTTP/1.1 200 OK").skip(1).collect();
    let expected = [
        &["\"path\":\"/a\""][..],
        &["\"path\":\"/b\"", "xyz"],
        &[],
        &["\"path\":\"/d\"", "uvw"],
        &["\"path\":\"/e\""],
    ];
    for (answer, needles) in answers.iter().zip(expected) {
        for needle in needles {
            assert!(answer.contains(needle), "{needle} in {answer}");
        }
    }
    assert!(!response.contains("\"path\":\"/c\""), "no body after HEAD");
    assert_eq!(echo.requests(), before + 5);
    recovers(&kong, baseline, "mixed");
}

/// An upstream that reads a request and never answers; the flag is set once the proxy closes
/// the connection.
fn holding_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = closed.clone();
    let port = rt().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a holding upstream");
        let port = listener.local_addr().expect("its address").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        port
    });
    (port, closed)
}

#[test]
fn a_client_that_leaves_cancels_its_request_upstream() {
    let (kong, _echo) = node("");
    let (port, closed) = holding_upstream();
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "hold", "url": format!("http://127.0.0.1:{port}"), "read_timeout": 60000}),
    );
    admin(
        &kong,
        "POST",
        "/services/hold/routes",
        json!({"paths": ["/hold"]}),
    );
    // A route added after it, to a service that answers: once it is live, so is /hold.
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"paths": ["/probe"]}),
    );
    let live = wait_until(WITHIN, || {
        status_line(&get(kong.proxy_port, "/probe")) == "HTTP/1.1 200 OK"
    });
    assert!(live, "the /hold route never became live");
    let baseline = open_connections(&kong);
    rt().block_on(async {
        let mut s = TcpStream::connect(("127.0.0.1", kong.proxy_port))
            .await
            .expect("connect");
        s.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !closed.load(std::sync::atomic::Ordering::SeqCst),
            "the request is still waiting upstream"
        );
        drop(s);
    });
    let cancelled = wait_until(WITHIN, || closed.load(std::sync::atomic::Ordering::SeqCst));
    assert!(cancelled, "the upstream request outlived its client");
    recovers(&kong, baseline, "client left");
}

#[test]
fn oversized_heads_are_refused_like_nginx() {
    // Kong's default `large_client_header_buffers 4 8k` and `lua_max_req_headers 100`.
    let (kong, _echo) = node("");
    let baseline = open_connections(&kong);
    let uri = |n| {
        format!(
            "GET /echo/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "u".repeat(n)
        )
    };
    let headers = |count: usize, size: usize| {
        let mut h = String::new();
        for i in 0..count {
            h.push_str(&format!("X-H{i}: {}\r\n", "h".repeat(size)));
        }
        format!("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{h}\r\n")
    };
    let too_large = "HTTP/1.1 400 Bad Request";
    let cases = [
        (
            "a request line over 8k",
            uri(9000),
            "HTTP/1.1 414 URI Too Long",
            "URI too long",
        ),
        (
            "a 1 MB request line",
            uri(1 << 20),
            "HTTP/1.1 414 URI Too Long",
            "URI too long",
        ),
        (
            "a header over 8k",
            headers(1, 9000),
            too_large,
            "Request header or cookie too large",
        ),
        (
            "a head over 32k",
            headers(5, 7000),
            too_large,
            "Request header or cookie too large",
        ),
        (
            "101 headers",
            headers(99, 1),
            too_large,
            "Request header or cookie too large",
        ),
    ];
    for (case, request, status, message) in cases {
        let response = exchange(kong.proxy_port, request.as_bytes(), WITHIN);
        assert_eq!(status_line(&response), status, "{case}: {response}");
        assert!(
            body(&response).starts_with(&format!("{message}\nrequest_id: ")),
            "{case}: {response}"
        );
        recovers(&kong, baseline, case);
    }
    // Just under the limits passes. (The echo upstream itself takes at most 100 headers, and
    // the node adds its forwarding headers.)
    for (case, request) in [
        ("90 headers", headers(88, 1)),
        ("a 8000-byte header", headers(1, 8000)),
        ("a 8000-byte request line", uri(8000)),
    ] {
        let response = exchange(kong.proxy_port, request.as_bytes(), WITHIN);
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 200 OK",
            "{case}: {response}"
        );
    }
}

#[test]
fn slow_clients_are_cut_off_by_the_client_timeouts() {
    let (kong, echo) = node(
        "nginx_http_client_header_timeout = 1s\nnginx_http_client_body_timeout = 30s\nnginx_proxy_client_body_timeout = 500ms",
    );
    let baseline = open_connections(&kong);

    // Headers trickling in slower than client_header_timeout: closed without an answer, as
    // nginx does.
    let (response, took) = rt().block_on(async {
        let started = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", kong.proxy_port))
            .await
            .expect("connect");
        let _ = s.write_all(b"GET /echo HTTP/1.1\r\n").await;
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                read = s.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_millis(300)) => {
                    assert!(started.elapsed() < WITHIN, "still open after {WITHIN:?}");
                    let _ = s.write_all(b"X-Slow: 1\r\n").await;
                }
            }
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )
    });
    assert_eq!(response, "", "no answer to an unfinished head");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    recovers(&kong, baseline, "slow headers");

    // A connection that never sends anything is closed as well.
    let started = std::time::Instant::now();
    assert_eq!(exchange(kong.proxy_port, b"", WITHIN), "");
    assert!(started.elapsed() < Duration::from_secs(4));
    recovers(&kong, baseline, "silent client");

    // A buffered body paused longer than client_body_timeout: 408 in Kong's shape.
    let before = echo.requests();
    let started = std::time::Instant::now();
    let response = exchange(
        kong.proxy_port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        WITHIN,
    );
    let took = started.elapsed();
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 408 Request Timeout",
        "{response}"
    );
    assert!(
        body(&response).starts_with("Request timeout\nrequest_id: "),
        "{response}"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    assert_eq!(echo.requests(), before, "nothing reached the upstream");
    recovers(&kong, baseline, "slow body");
}

/// What a fake upstream does with each connection it accepts.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Sends half a response head, then resets the connection.
    ResetMidHead,
    /// Answers with bytes that are not HTTP.
    Garbage,
    /// Closes the connection as soon as it is accepted.
    CloseAtOnce,
}

/// Starts a fake upstream on the test runtime; returns its port.
fn fake_upstream(behaviour: Misbehaviour) -> u16 {
    rt().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a fake upstream");
        let port = listener.local_addr().expect("its address").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Misbehaviour::CloseAtOnce = behaviour {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match behaviour {
                        Misbehaviour::ResetMidHead => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
                            let _ = s.set_zero_linger();
                        }
                        _ => {
                            let _ = s.write_all(b"\x00\x01 this is not HTTP \r\n\r\n").await;
                        }
                    }
                });
            }
        });
        port
    })
}

#[test]
fn broken_upstreams_answer_502_with_kongs_body() {
    let (kong, _echo) = node("");
    let cases = [
        ("reset", Misbehaviour::ResetMidHead),
        ("garbage", Misbehaviour::Garbage),
        ("closed", Misbehaviour::CloseAtOnce),
    ];
    for (name, behaviour) in cases {
        let port = fake_upstream(behaviour);
        admin(
            &kong,
            "POST",
            "/services",
            json!({"name": name, "url": format!("http://127.0.0.1:{port}")}),
        );
        admin(
            &kong,
            "POST",
            &format!("/services/{name}/routes"),
            json!({"paths": [format!("/{name}")]}),
        );
    }
    let last = "/closed";
    let live = wait_until(WITHIN, || {
        status_line(&get(kong.proxy_port, last)) != "HTTP/1.1 404 Not Found"
    });
    assert!(live, "the routes never became live");
    let baseline = open_connections(&kong);
    for (name, _) in cases {
        let request = format!(
            "GET /{name} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        let response = exchange(kong.proxy_port, request.as_bytes(), WITHIN);
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 502 Bad Gateway",
            "{name}: {response}"
        );
        let error: Value = serde_json::from_str(body(&response))
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {response}"));
        assert_eq!(
            error["message"], "An invalid response was received from the upstream server",
            "{name}"
        );
        assert_eq!(error["request_id"].as_str().map(str::len), Some(32));
        recovers(&kong, baseline, name);
    }
}

#[test]
fn a_cleartext_http2_listener_serves_h2c_and_http1_and_times_out_silent_clients() {
    let port = crate::support::kong::free_port();
    let echo = EchoUpstream::start();
    let kong = Kong::start(&format!(
        "proxy_listen = 127.0.0.1:{port} http2\nnginx_http_client_header_timeout = 1s"
    ));
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "echo", "url": echo.url()}),
    );
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"paths": ["/echo"]}),
    );
    let live = wait_until(WITHIN, || {
        status_line(&get(port, "/echo")) == "HTTP/1.1 200 OK"
    });
    assert!(live, "HTTP/1.1 on the listener");
    let baseline = open_connections(&kong);

    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an h2c client");
    let (status, version) = rt().block_on(async {
        let r = h2c
            .get(format!("http://127.0.0.1:{port}/echo/h2c"))
            .send()
            .await
            .expect("an h2c answer");
        (r.status().as_u16(), r.version())
    });
    assert_eq!((status, version), (200, reqwest::Version::HTTP_2));
    drop(h2c);

    let refused = exchange(
        port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        WITHIN,
    );
    assert_eq!(status_line(&refused), "HTTP/1.1 400 Bad Request");

    // Before the protocol is known, the header timeout bounds the wait as well.
    for (case, first_bytes) in [("silent", b"".as_slice()), ("half a preface", b"PRI * HT")] {
        let started = std::time::Instant::now();
        assert_eq!(exchange(port, first_bytes, WITHIN), "", "{case}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{case}: closed after {took:?}"
        );
    }
    let mut open = 0;
    let settled = wait_until(WITHIN, || {
        open = open_connections(&kong);
        open == baseline
    });
    assert!(settled, "{open} connections open, {baseline} before");
}
