//! An in-process HTTP echo server to stand behind the gateway in tests.
//!
//! [`EchoUpstream::start`] binds 127.0.0.1 on an OS-assigned port and serves
//! HTTP/1.1 and cleartext HTTP/2 with prior knowledge (h2c) on its own tokio
//! runtime in a background thread, so it works from plain `#[test]`s and from
//! `#[tokio::test]`s alike. Every request is answered `200` with a JSON
//! description of what arrived:
//!
//! ```json
//! {"method": "GET", "path": "/a", "query": "x=1", "uri": "/a?x=1",
//!  "headers": {"host": "127.0.0.1:1234", "x-multi": ["1", "2"]},
//!  "body": "", "http_version": "HTTP/1.1"}
//! ```
//!
//! `query` is the raw query string or `null`; a header repeated in the request
//! becomes an array. Two paths behave differently:
//!
//! * `/status/{code}` answers with status `code` (still with the echo body,
//!   except for 204 and 304, which have none);
//! * `/delay/{ms}` waits `ms` milliseconds, then echoes (for timeout and
//!   graceful-shutdown tests).
//!
//! The server counts requests as they arrive ([`EchoUpstream::requests`]) and
//! stops when the value is dropped: the listener closes and in-flight
//! connections (including pending delays) are cut.
#![allow(dead_code)] // Not every test uses every helper.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running echo server; stops when dropped.
pub struct EchoUpstream {
    /// Address the server listens on (127.0.0.1, OS-assigned port).
    pub addr: SocketAddr,
    /// Requests received so far.
    requests: Arc<AtomicU64>,
    /// Tells the accept loop to stop.
    shutdown: Option<oneshot::Sender<()>>,
    /// The thread running the server's runtime.
    thread: Option<JoinHandle<()>>,
}

impl EchoUpstream {
    /// Starts a server; panics (with the reason) if it cannot.
    pub fn start() -> EchoUpstream {
        EchoUpstream::try_start().expect("start the echo upstream on 127.0.0.1")
    }

    /// Starts a server: binds now (so [`EchoUpstream::addr`] is connectable as
    /// soon as this returns) and serves from a background thread.
    pub fn try_start() -> std::io::Result<EchoUpstream> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("echo-upstream-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)
                        .expect("register the echo upstream listener with tokio");
                    accept_loop(listener, stop, counter).await;
                });
                // Dropping `runtime` here cancels every connection task.
            })?;
        Ok(EchoUpstream {
            addr,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many requests have arrived so far (counted before any delay).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The loop may already be gone; nothing to stop then.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has already been reported by the runtime.
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stop` fires (or its sender is dropped).
async fn accept_loop(
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
    counter: Arc<AtomicU64>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&counter)));
                }
                // E.g. out of file descriptors: back off briefly rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Serves one connection, HTTP/1.1 or h2c (prior knowledge), until it closes.
async fn serve_connection(stream: TcpStream, counter: Arc<AtomicU64>) {
    // Latency only; the connection works without it.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| handle(request, Arc::clone(&counter)));
    // Client resets and aborted connections are the tests' business, not ours.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// What a request path asks of the server.
enum Route {
    /// Echo with 200.
    Echo,
    /// Echo with this status.
    Status(StatusCode),
    /// Echo with 200 after this long.
    Delay(Duration),
    /// A `/status/` or `/delay/` path with a bad argument.
    Invalid(String),
}

impl Route {
    fn of(path: &str) -> Route {
        if let Some(code) = path.strip_prefix("/status/") {
            return match code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                Some(status) if status.as_u16() >= 200 => Route::Status(status),
                _ => Route::Invalid(format!(
                    "/status/{{code}} needs a final status 200-999, got {code:?}"
                )),
            };
        }
        if let Some(ms) = path.strip_prefix("/delay/") {
            return match ms.parse::<u64>() {
                Ok(ms) => Route::Delay(Duration::from_millis(ms)),
                Err(_) => Route::Invalid(format!(
                    "/delay/{{ms}} needs whole milliseconds, got {ms:?}"
                )),
            };
        }
        Route::Echo
    }
}

/// Answers one request according to its [`Route`].
async fn handle(
    request: Request<Incoming>,
    counter: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    counter.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            ))
        }
    };
    let status = match Route::of(parts.uri.path()) {
        Route::Echo => StatusCode::OK,
        Route::Status(status) => status,
        Route::Delay(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
        Route::Invalid(why) => return Ok(plain(StatusCode::BAD_REQUEST, why)),
    };
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(response(status, None, Bytes::new()));
    }
    let echo = echo_json(&parts, &body).to_string();
    Ok(response(
        status,
        Some("application/json"),
        Bytes::from(echo),
    ))
}

/// The JSON description of a request.
fn echo_json(parts: &http::request::Parts, body: &[u8]) -> Value {
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let mut values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let value = if values.len() == 1 {
            values.remove(0)
        } else {
            Value::Array(values)
        };
        headers.insert(name.as_str().to_owned(), value);
    }
    json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
        "http_version": format!("{:?}", parts.version),
    })
}

/// A `text/plain` response.
fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    response(
        status,
        Some("text/plain; charset=utf-8"),
        Bytes::from(text + "\n"),
    )
}

/// A response with `status`, an optional content type, and `body`.
fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
    }
    response
}
