//! The proxy's upstream side: keep-alive pooling and its limits, the read timeout between body
//! reads, upstream TLS (verification against CA entities, depth, client certificates),
//! WebSocket upgrades, a gRPC unary call over HTTP/2, and every way an HTTP/1.x response body
//! can be delimited.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::admin::{admin, service_with_route};
use crate::support::http::{rt, send};
use crate::support::kong::{wait_until, Kong};

/// Creates a service and a route on `path`, and waits until the proxy routes it.
fn expose(kong: &Kong, service: Value, path: &str) {
    let s = admin(kong, "POST", "/services", service);
    let id = s["id"].as_str().expect("service id").to_owned();
    admin(
        kong,
        "POST",
        &format!("/services/{id}/routes"),
        json!({"paths": [path]}),
    );
    let live = wait_until(Duration::from_secs(5), || {
        let r = send("GET", &kong.proxy(path), &[], None);
        !(r.status == 404 && r.body.contains("no Route matched"))
    });
    assert!(live, "route {path} never became live");
}

/// Answers for paths: the bytes each path gets (others a 404).
type Answers = &'static [(&'static str, &'static [u8])];

/// Serves requests on `io` in order, each with the bytes `answers` lists for its path, keeping
/// the connection open between answers except after a path in `closing`.
async fn answer_by_path(mut io: Box<dyn Io>, answers: Answers, closing: &'static [&'static str]) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        got.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or_default();
        let bytes = answers.iter().find(|(p, _)| *p == path).map_or(
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"[..],
            |(_, a)| *a,
        );
        if io.write_all(bytes).await.is_err() {
            return;
        }
        if closing.contains(&path) {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// A plain upstream serving [`answer_by_path`] on every connection.
fn by_path(answers: Answers, closing: &'static [&'static str]) -> Server {
    server(None, move |io, _| answer_by_path(io, answers, closing))
}

/// A server task on the shared runtime, stopped when dropped.
struct Server {
    port: u16,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections on a free loopback port, optionally over TLS, handing each to `serve`
/// with its ordinal (1, 2, ...).
fn server<F, Fut>(tls: Option<Arc<rustls::ServerConfig>>, serve: F) -> Server
where
    F: Fn(Box<dyn Io>, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = rt()
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    let serve = Arc::new(serve);
    let task = rt().spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let serve = serve.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(s) = acceptor.accept(stream).await {
                            serve(Box::new(s), n).await;
                        }
                    }
                    None => serve(Box::new(stream), n).await,
                }
            });
        }
    });
    Server {
        port,
        connections,
        task,
    }
}

/// A byte stream a test server speaks over.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// An HTTP/1.1 server answering 200 with `x-conn: <connection ordinal>`.
fn numbered(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    server(tls, |io, n| async move {
        let service = service_fn(move |_req: Request<Incoming>| async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("x-conn", n)
                    .body(Full::new(Bytes::from_static(b"ok")))
                    .expect("response"),
            )
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    })
}

fn conns(kong: &Kong, path: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = send("GET", &kong.proxy(path), &[], None);
            assert_eq!(r.status, 200, "{}", r.body);
            r.header("x-conn").expect("x-conn").to_owned()
        })
        .collect()
}

/// Asserts that six requests to `path` all go over one pooled connection to `up`.
#[track_caller]
fn served_by_one_connection(kong: &Kong, up: &Server, path: &str) {
    let before = up.connections.load(Ordering::SeqCst);
    let seen = conns(kong, path, 6);
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "one pooled connection serves them all: {seen:?}"
    );
    assert!(up.connections.load(Ordering::SeqCst) - before <= 1);
}

#[test]
fn upstream_connections_are_kept_alive_within_the_configured_limits() {
    let up = numbered(None);
    let url = format!("http://127.0.0.1:{}", up.port);

    let kong = Kong::start("");
    expose(&kong, json!({"name": "ka", "url": url}), "/ka");
    served_by_one_connection(&kong, &up, "/ka");
    drop(kong);

    let kong = Kong::start("upstream_keepalive_max_requests = 2");
    expose(&kong, json!({"name": "ka", "url": url}), "/ka");
    let seen = conns(&kong, "/ka", 6);
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    for conn in &distinct {
        let uses = seen.iter().filter(|c| c == conn).count();
        assert!(
            uses <= 2,
            "a connection carries at most 2 requests: {seen:?}"
        );
    }
    assert!(distinct.len() <= 4, "but it is reused: {seen:?}");
    drop(kong);

    let kong = Kong::start("upstream_keepalive_pool_size = 0");
    expose(&kong, json!({"name": "ka", "url": url}), "/ka");
    let seen = conns(&kong, "/ka", 4);
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), 4, "no keep-alive: {seen:?}");
}

#[test]
fn an_upstream_going_silent_mid_body_is_cut_after_the_read_timeout() {
    // Sends the head and part of the body, then nothing.
    let up = server(None, |mut io, _| async move {
        let mut buf = [0u8; 4096];
        let _ = io.read(&mut buf).await;
        let _ = io
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let kong = Kong::start("");
    service_with_route(
        &kong,
        json!({"name": "silent", "url": format!("http://127.0.0.1:{}", up.port), "read_timeout": 300}),
        json!({"paths": ["/silent"]}),
    );
    let port = kong.proxy_port;
    let (text, elapsed) = rt().block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            s.write_all(b"GET /silent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .expect("write");
            let started = Instant::now();
            let mut got = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
            let text = String::from_utf8_lossy(&got).into_owned();
            if text.contains("no Route matched") && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert!(read.is_ok(), "the gateway never cut the stalled response");
            return (text, started.elapsed());
        }
    });
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first part"), "{text}");
    assert!(
        elapsed < Duration::from_secs(5),
        "cut by the 300 ms read timeout, not the client: {elapsed:?}"
    );
}

/// A CA able to sign leaves and intermediates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca { cert, key }
    }

    fn intermediate(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        Ca { cert, key }
    }

    /// A leaf for `localhost`, and its key.
    fn leaf(&self) -> (rcgen::Certificate, KeyPair) {
        let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert, key)
    }
}

fn tls_server_config(
    chain: Vec<&rcgen::Certificate>,
    key: &KeyPair,
    client_ca: Option<&Ca>,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = chain.iter().map(|c| c.der().clone()).collect();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert.der().clone()).expect("client CA");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(builder.with_single_cert(certs, key).expect("server config"))
}

#[test]
fn upstream_tls_is_verified_against_the_services_ca_certificates() {
    let root = Ca::new("test root");
    let inter = root.intermediate("test intermediate");
    let (leaf, leaf_key) = root.leaf();
    let (inter_leaf, inter_leaf_key) = inter.leaf();
    let direct = numbered(Some(tls_server_config(vec![&leaf], &leaf_key, None)));
    let chained = numbered(Some(tls_server_config(
        vec![&inter_leaf, &inter.cert],
        &inter_leaf_key,
        None,
    )));
    let other = Ca::new("someone else");

    let kong = Kong::start("");
    let trusted = admin(
        &kong,
        "POST",
        "/ca_certificates",
        json!({"cert": root.cert.pem()}),
    )["id"]
        .clone();
    let untrusted = admin(
        &kong,
        "POST",
        "/ca_certificates",
        json!({"cert": other.cert.pem()}),
    )["id"]
        .clone();
    let https = |port: u16| format!("https://localhost:{port}");
    let cases = [
        ("/unverified", json!({"url": https(direct.port)}), 200),
        (
            "/verified",
            json!({"url": https(direct.port), "tls_verify": true, "ca_certificates": [trusted]}),
            200,
        ),
        (
            "/wrong-ca",
            json!({"url": https(direct.port), "tls_verify": true, "ca_certificates": [untrusted]}),
            502,
        ),
        (
            "/depth-1",
            json!({"url": https(chained.port), "tls_verify": true, "ca_certificates": [trusted]}),
            200,
        ),
        (
            "/depth-0",
            json!({"url": https(chained.port), "tls_verify": true, "tls_verify_depth": 0,
                   "ca_certificates": [trusted]}),
            502,
        ),
    ];
    for (path, service, _) in &cases {
        expose(&kong, service.clone(), path);
    }
    for (path, _, status) in &cases {
        let r = send("GET", &kong.proxy(path), &[], None);
        assert_eq!(r.status, *status, "{path}: {}", r.body);
        if *status == 502 {
            assert!(r
                .body
                .contains("An invalid response was received from the upstream server"));
        }
    }
}

#[test]
fn a_client_certificate_is_presented_for_mutual_tls() {
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let (leaf, leaf_key) = server_ca.leaf();
    let up = numbered(Some(tls_server_config(
        vec![&leaf],
        &leaf_key,
        Some(&client_ca),
    )));
    let (client, client_key) = client_ca.leaf();

    let kong = Kong::start("");
    let cert = admin(
        &kong,
        "POST",
        "/certificates",
        json!({"cert": client.pem(), "key": client_key.serialize_pem()}),
    )["id"]
        .clone();
    let url = format!("https://localhost:{}", up.port);
    expose(&kong, json!({"url": url}), "/anonymous");
    expose(
        &kong,
        json!({"url": url, "client_certificate": {"id": cert}}),
        "/mtls",
    );
    assert_eq!(
        send("GET", &kong.proxy("/anonymous"), &[], None).status,
        502
    );
    let r = send("GET", &kong.proxy("/mtls"), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    // A service on an upstream entity presents the upstream's certificate when it has none.
    admin(
        &kong,
        "POST",
        "/upstreams",
        json!({"name": "mtls.test", "client_certificate": {"id": cert}}),
    );
    admin(
        &kong,
        "POST",
        "/upstreams/mtls.test/targets",
        json!({"target": format!("localhost:{}", up.port)}),
    );
    expose(
        &kong,
        json!({"host": "mtls.test", "protocol": "https"}),
        "/upstream-mtls",
    );
    let r = send("GET", &kong.proxy("/upstream-mtls"), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The `Sec-WebSocket-Accept` answer to `key`.
fn websocket_accept(key: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// An upstream that accepts WebSocket upgrades and then echoes every byte.
fn websocket_echo(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    server(tls, |io, _| async move {
        let service = service_fn(|mut req: Request<Incoming>| async move {
            let key = req
                .headers()
                .get("sec-websocket-key")
                .and_then(|v| v.to_str().ok())
                .map(websocket_accept);
            let Some(accept) = key else {
                return Ok::<_, Infallible>(
                    Response::builder()
                        .status(400)
                        .body(Full::new(Bytes::from_static(b"not a websocket request")))
                        .expect("response"),
                );
            };
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .header("sec-websocket-accept", accept)
                .body(Full::new(Bytes::new()))
                .expect("response"))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
    })
}

#[test]
fn websocket_upgrades_are_tunnelled_both_ways() {
    let ca = Ca::new("ws ca");
    let (leaf, key) = ca.leaf();
    let plain = websocket_echo(None);
    let secure = websocket_echo(Some(tls_server_config(vec![&leaf], &key, None)));
    let kong = Kong::start("");
    // `ws` and `wss` services: WebSocket to a cleartext and to a TLS upstream.
    expose(
        &kong,
        json!({"name": "chat", "url": format!("ws://127.0.0.1:{}", plain.port)}),
        "/ws",
    );
    expose(
        &kong,
        json!({"name": "secure-chat", "url": format!("wss://localhost:{}", secure.port)}),
        "/wss",
    );
    let stored = send("GET", &kong.admin("/services/chat"), &[], None).json();
    assert_eq!(
        (stored["protocol"].as_str(), stored["port"].as_u64()),
        (Some("ws"), Some(plain.port.into()))
    );
    assert_eq!(
        send("GET", &kong.admin("/services/secure-chat"), &[], None).json()["protocol"],
        "wss"
    );
    for path in ["/ws", "/wss"] {
        let (head, echoed) = websocket_exchange(kong.proxy_port, path);
        assert!(head.starts_with("http/1.1 101"), "{path}: {head}");
        assert!(head.contains("upgrade: websocket"), "{head}");
        let accept = format!("sec-websocket-accept: {}", websocket_accept(WS_KEY));
        assert!(head.contains(&accept.to_lowercase()), "{head}");
        assert_eq!(echoed, WS_FRAME, "{path}");
    }
}

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// A masked text frame "hi", as a client sends it; the upstreams echo raw bytes.
const WS_FRAME: [u8; 8] = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];

/// Upgrades `path` on the proxy to a WebSocket, sends one frame, and returns the response head
/// (lowercase) and what came back.
fn websocket_exchange(port: u16, path: &str) -> (String, Vec<u8>) {
    let path = path.to_owned();
    rt().block_on(async move {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let req = format!(
            "GET {path}/chat HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
                .await
                .expect("head in time")
                .expect("read");
            assert!(n > 0, "closed before the response head: {head:?}");
            head.push(byte[0]);
        }
        s.write_all(&WS_FRAME).await.expect("frame");
        let mut back = vec![0u8; WS_FRAME.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("echo in time")
            .expect("echo");
        (String::from_utf8_lossy(&head).to_lowercase(), back)
    })
}

/// A gRPC-style upstream over h2c: echoes the request message, ends with `grpc-status` trailers,
/// and fails the call (status 3) unless the request came over HTTP/2 with `te: trailers`.
fn grpc_echo() -> Server {
    server(None, |io, _| async move {
        let service = service_fn(|req: Request<Incoming>| async move {
            let proper = req.version() == http::Version::HTTP_2
                && req.headers().get("te").is_some_and(|v| v == "trailers")
                && req
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/grpc");
            let path = req.uri().path().to_owned();
            let message = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let mut trailers = http::HeaderMap::new();
            trailers.insert(
                "grpc-status",
                if proper { "0" } else { "3" }.parse().expect("value"),
            );
            trailers.insert("grpc-message", path.parse().expect("value"));
            let frames = [Frame::data(message), Frame::trailers(trailers)];
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Frames(frames.into()))
                    .expect("response"),
            )
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service)
            .await;
    })
}

/// A body made of the given frames (data and trailers).
struct Frames(std::collections::VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

#[test]
fn a_grpc_unary_call_goes_through_over_http2_with_trailers() {
    let up = grpc_echo();
    let kong = Kong::configure("");
    kong.append_conf(&format!(
        "proxy_listen = 127.0.0.1:{} http2",
        kong.proxy_port
    ));
    let mut kong = kong;
    let out = kong.run(&["start"]);
    assert!(out.status.success(), "{}", crate::support::kong::text(&out));
    kong.set_running();
    kong.wait_ready();
    let s = admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "grpc", "url": format!("grpc://127.0.0.1:{}", up.port)}),
    );
    assert_eq!(s["protocol"], "grpc");
    admin(
        &kong,
        "POST",
        "/services/grpc/routes",
        json!({"protocols": ["grpc"], "paths": ["/hello.Greeter/"]}),
    );
    let port = kong.proxy_port;
    // The 5-byte gRPC prefix (uncompressed, length 5) and the message.
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x05hello");
    let call = move || {
        let message = message.clone();
        rt().block_on(async move {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("h2c handshake");
            tokio::spawn(conn);
            let req = Request::post(format!("http://grpc.test:{port}/hello.Greeter/SayHello"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(message))
                .expect("request");
            let resp = sender.send_request(req).await.expect("response");
            let status = resp.status();
            let collected = resp.into_body().collect().await.expect("body");
            let trailers = collected.trailers().cloned();
            (status, trailers, collected.to_bytes())
        })
    };
    let mut last = None;
    let live = wait_until(Duration::from_secs(5), || {
        let r = call();
        let done = r.0 != StatusCode::NOT_FOUND;
        last = Some(r);
        done
    });
    assert!(live, "gRPC route never became live");
    let (status, trailers, body) = last.expect("a call");
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"\x00\x00\x00\x00\x05hello");
    let trailers = trailers.expect("trailers reach the client");
    assert_eq!(trailers["grpc-status"], "0", "{trailers:?}");
    assert_eq!(trailers["grpc-message"], "/hello.Greeter/SayHello");
}

#[test]
fn idempotent_requests_survive_an_upstream_closing_kept_alive_connections() {
    // Answers one request per connection, then closes without saying so (no
    // `Connection: close`), as an upstream with a short keep-alive timeout does.
    let up = server(None, |mut io, n| async move {
        let mut buf = vec![0u8; 8192];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
        let body = format!("conn {n}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = io.write_all(resp.as_bytes()).await;
        let _ = io.shutdown().await;
    });
    let kong = Kong::start("");
    expose(
        &kong,
        json!({"url": format!("http://127.0.0.1:{}", up.port), "retries": 0}),
        "/flaky",
    );
    for i in 0..60 {
        let r = send("GET", &kong.proxy("/flaky"), &[], None);
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert!(r.body.starts_with("conn "), "{}", r.body);
    }
}

#[test]
fn a_client_stalling_a_streamed_body_gets_408() {
    // The echo upstream reads the whole body before answering.
    let up = crate::support::upstream::EchoUpstream::start();
    let kong = Kong::start("nginx_http_client_body_timeout = 300ms");
    let s = admin(&kong, "POST", "/services", json!({"url": up.url()}));
    let id = s["id"].as_str().expect("id").to_owned();
    admin(
        &kong,
        "POST",
        &format!("/services/{id}/routes"),
        json!({"paths": ["/stream"], "request_buffering": false}),
    );
    let live = wait_until(Duration::from_secs(5), || {
        send("GET", &kong.proxy("/stream"), &[], None).status == 200
    });
    assert!(live);
    let port = kong.proxy_port;
    let text = rt().block_on(async move {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        s.write_all(
            b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly part",
        )
        .await
        .expect("write");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        String::from_utf8_lossy(&got).into_owned()
    });
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[test]
fn every_upstream_response_framing_reaches_the_client_intact() {
    // A hand-written upstream answering by path, keeping its connection open between answers
    // except where the answer is delimited by closing.
    let up = by_path(
        &[
            ("/chunked", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"),
            ("/continue", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
            ("/empty", b"HTTP/1.1 204 No Content\r\nx-empty: yes\r\n\r\n"),
            ("/head", b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"),
            ("/close", b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
        ],
        &["/close"],
    );
    let kong = Kong::start("");
    expose(
        &kong,
        json!({"name": "framings", "url": format!("http://127.0.0.1:{}", up.port)}),
        "/f",
    );
    for round in 0..2 {
        let r = send("GET", &kong.proxy("/f/chunked"), &[], None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "hello world"),
            "round {round}"
        );
        let r = send("GET", &kong.proxy("/f/continue"), &[], None);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "round {round}");
        let r = send("GET", &kong.proxy("/f/empty"), &[], None);
        assert_eq!((r.status, r.body.as_str()), (204, ""), "round {round}");
        assert_eq!(r.header("x-empty"), Some("yes"));
        let r = send("HEAD", &kong.proxy("/f/head"), &[], None);
        assert_eq!((r.status, r.body.as_str()), (200, ""), "round {round}");
        assert_eq!(r.header("content-length"), Some("10"));
        let r = send("GET", &kong.proxy("/f/close"), &[], None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "until the end"),
            "round {round}"
        );
        // An HTTP/1.0 upstream; the client still gets an HTTP/1.1 answer, as from nginx.
        assert_eq!(r.version, reqwest::Version::HTTP_11);
    }
    // Everything but the close-delimited answers went over kept-alive connections: two
    // connections for those, and at most one more that carried the rest.
    assert!(
        up.connections.load(Ordering::SeqCst) <= 3,
        "{} upstream connections",
        up.connections.load(Ordering::SeqCst)
    );
}

#[test]
fn tls_upstream_connections_are_kept_alive_too() {
    // TLS 1.3 servers send session tickets after the handshake: records that are no answer and
    // must not make an idle connection look closed.
    let root = Ca::new("keep-alive root");
    let (leaf, key) = root.leaf();
    let up = numbered(Some(tls_server_config(vec![&leaf], &key, None)));
    let kong = Kong::start("");
    expose(
        &kong,
        json!({"name": "tls-ka", "url": format!("https://127.0.0.1:{}", up.port)}),
        "/tls-ka",
    );
    served_by_one_connection(&kong, &up, "/tls-ka");
}

#[test]
fn upstream_header_lines_reach_http1_and_http2_clients_alike() {
    // Answers by path with header lines in the upstream's own case and order, hop-by-hop ones
    // among them.
    let up = by_path(
        &[
            ("/plain", b"HTTP/1.1 200 OK\r\nServer: up/1\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Mixed-Case: Yes\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Kong-Upstream-Latency: 999999\r\nProxy-Connection: x\r\n\r\nok"),
            ("/via", b"HTTP/1.1 200 OK\r\nVia: 1.1 edge\r\nContent-Length: 2\r\n\r\nok"),
            ("/named", b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok"),
            ("/both", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        ],
        &[],
    );
    let port = crate::support::kong::free_port();
    let kong = Kong::start(&format!("proxy_listen = 127.0.0.1:{port} http2"));
    service_with_route(
        &kong,
        json!({"name": "lines", "url": format!("http://127.0.0.1:{}", up.port)}),
        json!({"paths": ["/h"]}),
    );
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an h2c client");
    let h2 = |path: &str| {
        rt().block_on(async {
            let r = h2c
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .expect("an h2c answer");
            let headers = r.headers().clone();
            let body = r.text().await.expect("a body");
            (headers, body)
        })
    };
    let h1 = |path: &str| {
        let r = send("GET", &format!("http://127.0.0.1:{port}{path}"), &[], None);
        assert_eq!(r.status, 200, "{path}");
        (r.headers.clone(), r.body.clone())
    };
    let live = wait_until(Duration::from_secs(5), || {
        crate::support::http::try_send(
            "GET",
            &format!("http://127.0.0.1:{port}/h/plain"),
            &[],
            None,
        )
        .is_ok_and(|r| r.status == 200)
    });
    assert!(live, "route never became live");

    for (client, (headers, body)) in [("h1", h1("/h/plain")), ("h2", h2("/h/plain"))] {
        assert_eq!(body, "ok", "{client}");
        assert_eq!(
            headers["server"], "up/1",
            "{client}: the upstream's Server stays"
        );
        assert_eq!(headers["x-mixed-case"], "Yes", "{client}");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{client}: repeated lines all pass");
        let latency: Vec<_> = headers.get_all("x-kong-upstream-latency").iter().collect();
        assert_eq!(
            latency.len(),
            1,
            "{client}: the gateway's value replaces the upstream's"
        );
        assert_ne!(latency[0], "999999", "{client}");
        assert!(
            headers["via"].to_str().is_ok_and(|v| v.contains("kong/")),
            "{client}"
        );
        for hop in ["keep-alive", "proxy-connection"] {
            assert!(headers.get(hop).is_none(), "{client}: {hop} is hop-by-hop");
        }
        let lengths: Vec<_> = headers.get_all("content-length").iter().collect();
        assert!(
            lengths.len() <= 1 && lengths.iter().all(|v| *v == "2"),
            "{client}"
        );
    }
    for (client, (headers, _)) in [("h1", h1("/h/via")), ("h2", h2("/h/via"))] {
        let via = headers["via"].to_str().expect("text");
        assert!(
            via.starts_with("1.1 edge, ") && via.contains("kong/"),
            "{client}: {via}"
        );
    }
    for (client, (headers, _)) in [("h1", h1("/h/named")), ("h2", h2("/h/named"))] {
        assert!(
            headers.get("x-secret").is_none(),
            "{client}: named by Connection"
        );
        assert_eq!(headers["x-kept"], "1", "{client}");
    }
    for (client, (headers, body)) in [("h1", h1("/h/both")), ("h2", h2("/h/both"))] {
        assert_eq!(body, "ok", "{client}: the coding wins over the length");
        assert!(
            headers.get("content-length").is_none_or(|v| v == "2"),
            "{client}: {headers:?}"
        );
    }
}
