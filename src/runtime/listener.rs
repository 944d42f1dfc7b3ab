//! Listening sockets and the connection loop shared by the proxy, Admin and Status APIs.
//!
//! Each listener owns its accept task and a drain signal for its connections, so a listener
//! removed by `kong reload` can drain on its own while the others keep serving, and `kong quit`
//! can drain them all.
//!
//! A connection's life: TLS handshake (if any; 10 s at most) → protocol choice (ALPN, or the
//! first bytes of a cleartext listener that also speaks HTTP/2) → for HTTP/1, the own loop
//! ([`http1`]) when the handler asks for it, serving plain requests until one it leaves to the
//! [`guard`] between the socket and hyper, checking every request head → hyper, with the
//! handler's [`ClientLimits`] read at accept time (so a reload applies to new connections).
//!
//! [`guard`]: super::guard
//! [`http1`]: super::http1

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::body::RequestBody;
use super::guard::{Guarded, HeadLimits, Refused, Verdict};
use super::raw_headers;
use crate::config::{ClientLimits, Listen};

/// What a connection knows about itself, handed to every request on it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Client address.
    pub peer: SocketAddr,
    /// Local address the client connected to.
    pub local: SocketAddr,
    /// Whether TLS was terminated.
    pub tls: bool,
    /// The server name the client asked for in its TLS handshake.
    pub sni: Option<Arc<str>>,
    /// The TLS version and cipher suite negotiated, for the log serializer.
    pub tls_params: Option<crate::plugins::ctx::TlsParams>,
    /// The client's address as a header value, made once for all the connection's requests.
    pub peer_value: http::HeaderValue,
    /// The local port as a header value.
    pub port_value: http::HeaderValue,
}

/// The TLS parameters of an accepted connection, named as OpenSSL (and so Kong's logs) name
/// them.
fn tls_params(conn: &rustls::ServerConnection) -> Option<crate::plugins::ctx::TlsParams> {
    let version = match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "unknown",
    };
    let suite = conn.negotiated_cipher_suite()?.suite();
    // TLS 1.3 suites: OpenSSL drops rustls's `13` (`TLS_AES_128_GCM_SHA256`); TLS 1.2 suites
    // keep the IANA name.
    let cipher = match suite.as_str()? {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        other => other,
    };
    Some(crate::plugins::ctx::TlsParams { version, cipher })
}

/// Serves requests for one kind of listener (proxy, admin, status).
pub trait Handler: Send + Sync + 'static {
    /// Response body type.
    type Body: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;

    /// Whether HTTP/1.1 connections start on the own loop ([`super::http1`]) rather than hyper.
    const OWN_HTTP1: bool = false;

    /// Answers one request. Must not fail: errors are turned into responses by the handler.
    fn handle(
        self: Arc<Self>,
        req: Request<RequestBody>,
        conn: Arc<ConnInfo>,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static;

    /// Called when a connection is accepted and when it ends (for `/status` counters).
    fn connection(&self, opened: bool);

    /// The limits a connection accepted now gets (timeouts, head sizes).
    fn limits(&self) -> ClientLimits;

    /// Answers the request whose head the guard refused, in this listener's error format; the
    /// connection closes after it.
    fn refuse(&self, refused: &Refused, conn: &ConnInfo) -> Response<Self::Body>;
}

/// Listener setup problems.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {address} ({kind}): {source}")]
pub struct BindError {
    /// `host:port`.
    pub address: String,
    /// Which listener setting (`proxy_listen`, ...).
    pub kind: &'static str,
    /// The OS error.
    pub source: std::io::Error,
}

/// Binds a listener's socket with its flags.
pub fn bind(listen: &Listen, kind: &'static str) -> Result<TcpListener, BindError> {
    let err = |source| BindError {
        address: listen.address(),
        kind,
        source,
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(listen.host.as_str(), listen.port))
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("address did not resolve")))?;
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if listen.reuseport {
        socket.set_reuse_port(true).map_err(err)?;
    }
    if addr.is_ipv6() {
        // As nginx: IPv6 sockets are IPv6-only unless `ipv6only=off`, so `0.0.0.0:P` and
        // `[::]:P` can both be listed.
        socket
            .set_only_v6(listen.ipv6only.unwrap_or(true))
            .map_err(err)?;
    }
    if let Some(keepalive) = listen.so_keepalive {
        socket.set_keepalive(keepalive).map_err(err)?;
    }
    socket.set_nodelay(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    let backlog = listen.backlog.unwrap_or(511).min(i32::MAX as u32) as i32;
    socket.listen(backlog).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}

/// A running listener.
pub struct Running {
    /// Its configuration (used to match listeners across reloads).
    pub listen: Listen,
    /// The bound address (the real port when 0 was configured).
    pub local: SocketAddr,
    stop: watch::Sender<bool>,
    /// The accept task; it ends with the sender of its connections' drain signal.
    task: tokio::task::JoinHandle<watch::Sender<bool>>,
    /// TLS configuration, swappable on reload without rebinding.
    pub tls: Arc<ArcSwapOption<rustls::ServerConfig>>,
}

impl Running {
    /// Starts accepting on `listener`.
    pub fn start<H: Handler>(
        listener: TcpListener,
        listen: Listen,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Arc<H>,
    ) -> std::io::Result<Running> {
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let tls = Arc::new(ArcSwapOption::new(tls));
        let task = tokio::spawn(accept_loop(
            listener,
            listen.http2,
            tls.clone(),
            handler,
            stopped,
        ));
        Ok(Running {
            listen,
            local,
            stop,
            task,
            tls,
        })
    }

    /// Stops accepting, closes the socket, and drains this listener's connections: in-flight
    /// requests finish, idle keep-alive connections close, HTTP/2 clients get GOAWAY.
    pub async fn drain(self) {
        let _ = self.stop.send(true);
        if let Ok(drain) = self.task.await {
            drain.send_replace(true);
            // Every connection holds a receiver until it ends.
            drain.closed().await;
        }
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    http2: bool,
    tls: Arc<ArcSwapOption<rustls::ServerConfig>>,
    handler: Arc<H>,
    mut stopped: watch::Receiver<bool>,
) -> watch::Sender<bool> {
    let (drain, draining) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let local = stream.local_addr().unwrap_or(peer);
        let tls = tls.load_full();
        let handler = handler.clone();
        let draining = draining.clone();
        tokio::spawn(async move {
            let _open = OpenConnection::new(handler.clone());
            let conn = ConnInfo {
                peer,
                local,
                tls: tls.is_some(),
                sni: None,
                tls_params: None,
                peer_value: http::HeaderValue::from_str(&peer.ip().to_string())
                    .unwrap_or(http::HeaderValue::from_static("0.0.0.0")),
                port_value: http::HeaderValue::from(local.port()),
            };
            serve(stream, conn, http2, tls, handler, draining).await;
        });
    }
    drop(listener);
    drain
}

/// Counts a connection as open until dropped, even if its task panics.
struct OpenConnection<H: Handler>(Arc<H>);

impl<H: Handler> OpenConnection<H> {
    fn new(handler: Arc<H>) -> Self {
        handler.connection(true);
        OpenConnection(handler)
    }
}

impl<H: Handler> Drop for OpenConnection<H> {
    fn drop(&mut self) {
        self.0.connection(false);
    }
}

async fn serve<H: Handler>(
    mut stream: TcpStream,
    mut conn: ConnInfo,
    http2: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<H>,
    draining: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = handler.limits();
    let head = HeadLimits {
        line: limits.header_line,
        total: limits.header_total,
        headers: limits.max_headers,
    };
    let verdict = Verdict::default();
    // The connection's service: the request the guard refused, if any, gets the handler's
    // refusal; every other request goes to the handler.
    let service = |conn: Arc<ConnInfo>| {
        let handler = handler.clone();
        let verdict = verdict.clone();
        let served = AtomicU64::new(0);
        hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            let conn = conn.clone();
            // HTTP/1 requests reach the service in the order their heads arrived, so the
            // count tells which one is the guard's stand-in.
            let number = served.fetch_add(1, Ordering::Relaxed) + 1;
            let refused = verdict.get().filter(|r| r.request == number).cloned();
            async move {
                let response = match refused {
                    Some(refused) => handler.refuse(&refused, &conn),
                    None => handler.handle(req.map(RequestBody::from), conn).await,
                };
                // Hyper writes header maps only: kept header lines become entries.
                let (mut parts, body) = response.into_parts();
                raw_headers::merge(&mut parts.extensions, &mut parts.headers);
                let response = Response::from_parts(parts, body);
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    match tls {
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %conn.peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            conn.sni = stream.get_ref().1.server_name().map(Arc::from);
            conn.tls_params = tls_params(stream.get_ref().1);
            // Shared by the connection's requests from here on.
            let conn = Arc::new(conn);
            let result = match stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                true => serve_http2(stream, service(conn.clone()), &limits, draining).await,
                false => {
                    let (stream, first) =
                        match own_loop(stream, Vec::new(), &conn, &handler, &limits, &draining)
                            .await
                        {
                            Some(handoff) => handoff,
                            None => return,
                        };
                    let io = Guarded::http1(stream, &first, head, verdict.clone());
                    serve_http1(io, service(conn.clone()), &limits, draining).await
                }
            };
            log_conn_error(result, &conn);
        }
        None => {
            let (h2, first) = match http2 {
                true => match sniff_h2(&mut stream, limits.header_timeout).await {
                    Some(sniffed) => sniffed,
                    None => return,
                },
                false => (false, Vec::new()),
            };
            let conn = Arc::new(conn);
            let result = match h2 {
                true => {
                    let io = Guarded::open(stream, &first);
                    serve_http2(io, service(conn.clone()), &limits, draining).await
                }
                false => {
                    let (stream, first) =
                        match own_loop(stream, first, &conn, &handler, &limits, &draining).await {
                            Some(handoff) => handoff,
                            None => return,
                        };
                    let io = Guarded::http1(stream, &first, head, verdict.clone());
                    serve_http1(io, service(conn.clone()), &limits, draining).await
                }
            };
            log_conn_error(result, &conn);
        }
    }
}

/// Runs the own HTTP/1.1 loop when the handler asks for it: `None` when it served the
/// connection to its end, else the connection and the bytes read from it for hyper to go on
/// with (`first` untouched when the loop is not used).
async fn own_loop<IO, H>(
    io: IO,
    first: Vec<u8>,
    conn: &Arc<ConnInfo>,
    handler: &Arc<H>,
    limits: &ClientLimits,
    draining: &watch::Receiver<bool>,
) -> Option<(IO, Vec<u8>)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    if !H::OWN_HTTP1 {
        return Some((io, first));
    }
    match super::http1::serve(io, &first, conn, handler, limits, draining.clone()).await {
        Ok(()) => None,
        Err(handoff) => Some((handoff.io, handoff.read.to_vec())),
    }
}

/// Serves HTTP/1.1 (with upgrades) on a guarded connection until it ends.
async fn serve_http1<IO, S, B>(
    io: Guarded<IO>,
    service: S,
    limits: &ClientLimits,
    draining: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // nginx's client_header_timeout. Hyper runs it whenever it waits for a head, so it also
        // bounds idle keep-alive time; when it passes, the connection closes with no answer, as
        // with nginx.
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        // The guard hands hyper whole heads of up to `header_total` bytes and refuses larger
        // ones itself, so hyper's own limits (431 answers) must never trip first.
        .max_buf_size(limits.header_total.saturating_add(8 << 10))
        .max_headers(limits.max_headers);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    until_drained(connection, draining).await
}

/// Serves HTTP/2 until the connection ends.
async fn serve_http2<IO, S, B>(
    io: IO,
    service: S,
    limits: &ClientLimits,
    draining: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.header_total).unwrap_or(u32::MAX));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    until_drained(connection, draining).await
}

/// A hyper connection that can be asked to finish up.
trait Drainable: Future<Output = Result<(), hyper::Error>> {
    /// Stops taking new requests: in-flight ones finish, idle HTTP/1 connections close,
    /// HTTP/2 clients get GOAWAY.
    fn finish_up(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> Drainable for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn finish_up(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Drainable for http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn finish_up(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `connection` to its end, asking it to finish up once the listener drains.
async fn until_drained<C: Drainable>(
    connection: C,
    mut draining: watch::Receiver<bool>,
) -> Result<(), hyper::Error> {
    let mut connection = std::pin::pin!(connection);
    let drain = async {
        // A listener dropped without draining (a fast stop) never asks.
        if draining.wait_for(|d| *d).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = connection.as_mut() => result,
        _ = drain => {
            connection.as_mut().finish_up();
            connection.await
        }
    }
}

/// On a cleartext listener that also speaks HTTP/2: reads the client's first bytes, up to the
/// length of HTTP/2's connection preface, to tell prior-knowledge HTTP/2 from HTTP/1. Bounded
/// by the header timeout, which hyper only starts later; `None` when nothing usable came.
async fn sniff_h2(stream: &mut TcpStream, within: Duration) -> Option<(bool, Vec<u8>)> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let read = async {
        let mut seen = Vec::with_capacity(PREFACE.len());
        let mut chunk = [0u8; PREFACE.len()];
        loop {
            let n = stream
                .read(&mut chunk[..PREFACE.len() - seen.len()])
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            seen.extend_from_slice(&chunk[..n]);
            if !PREFACE.starts_with(&seen) {
                return Some((false, seen));
            }
            if seen.len() == PREFACE.len() {
                return Some((true, seen));
            }
        }
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

fn log_conn_error(result: Result<(), hyper::Error>, conn: &ConnInfo) {
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
    }
}
