//! Listening sockets and the connection loop shared by the proxy, Admin and Status APIs.
//!
//! Each listener owns its accept task and a [`GracefulShutdown`] for its connections, so a
//! listener removed by `kong reload` can drain on its own while the others keep serving, and
//! `kong quit` can drain them all.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Listen;

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

    /// Answers one request. Must not fail: errors are turned into responses by the handler.
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static;

    /// Called when a connection is accepted and when it ends (for `/status` counters).
    fn connection(&self, opened: bool);
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
    task: tokio::task::JoinHandle<GracefulShutdown>,
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
        if let Ok(graceful) = self.task.await {
            graceful.shutdown().await;
        }
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    http2: bool,
    tls: Arc<ArcSwapOption<rustls::ServerConfig>>,
    handler: Arc<H>,
    mut stopped: watch::Receiver<bool>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
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
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _open = OpenConnection::new(handler.clone());
            let conn = ConnInfo {
                peer,
                local,
                tls: tls.is_some(),
                sni: None,
                tls_params: None,
            };
            serve(stream, conn, http2, tls, handler, watcher).await;
        });
    }
    drop(listener);
    graceful
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
    stream: TcpStream,
    mut conn: ConnInfo,
    http2: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<H>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    let service = |conn: ConnInfo| {
        hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            let conn = conn.clone();
            async move { Ok::<_, std::convert::Infallible>(handler.handle(req, conn).await) }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
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
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            conn.sni = stream.get_ref().1.server_name().map(Arc::from);
            conn.tls_params = tls_params(stream.get_ref().1);
            let io = TokioIo::new(stream);
            let builder = if h2 {
                builder.http2_only()
            } else {
                builder.http1_only()
            };
            let conn_fut = builder.serve_connection_with_upgrades(io, service(conn.clone()));
            let result = watcher.watch(conn_fut.into_owned()).await;
            log_conn_error(result, &conn);
        }
        None => {
            let io = TokioIo::new(stream);
            if !http2 {
                builder = builder.http1_only();
            }
            let conn_fut = builder.serve_connection_with_upgrades(io, service(conn.clone()));
            log_conn_error(watcher.watch(conn_fut.into_owned()).await, &conn);
        }
    }
}

fn log_conn_error(result: Result<(), Box<dyn std::error::Error + Send + Sync>>, conn: &ConnInfo) {
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
    }
}
