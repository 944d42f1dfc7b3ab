//! Stream listening sockets: binding (`stream_listen` entries, TCP or `udp`) and the accept or
//! receive task of each, stoppable and drainable on its own so `kong reload` can add and remove
//! stream listeners while the others keep serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use super::{session, udp, StreamProxy};
use crate::config::Listen;
use crate::runtime::listener::BindError;

/// The setting stream listeners come from, as errors and logs name it.
const KIND: &str = "stream_listen";

/// A bound stream socket.
#[derive(Debug)]
pub enum Socket {
    /// A TCP listener (plain or `ssl`).
    Tcp(TcpListener),
    /// A `udp` socket.
    Udp(UdpSocket),
}

/// Binds a `stream_listen` entry with its flags: a TCP listener, or a UDP socket for `udp`.
pub fn bind(listen: &Listen) -> Result<Socket, BindError> {
    if !listen.udp {
        return crate::runtime::listener::bind(listen, KIND).map(Socket::Tcp);
    }
    let err = |source| BindError {
        address: listen.address(),
        kind: KIND,
        source,
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(listen.host.as_str(), listen.port))
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("address did not resolve")))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if listen.reuseport {
        socket.set_reuse_port(true).map_err(err)?;
    }
    if addr.is_ipv6() {
        socket
            .set_only_v6(listen.ipv6only.unwrap_or(true))
            .map_err(err)?;
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(socket.into())
        .map(Socket::Udp)
        .map_err(err)
}

/// A running stream listener.
pub struct Running {
    /// Its configuration (used to match listeners across reloads).
    pub listen: Listen,
    /// The bound address (the real port when 0 was configured).
    pub local: SocketAddr,
    /// TLS configuration of an `ssl` listener, swappable on reload without rebinding; `None`
    /// for a plain one.
    pub tls: Arc<ArcSwapOption<rustls::ServerConfig>>,
    stop: watch::Sender<bool>,
    /// The accept or receive task; it ends with the sender of its connections' drain signal.
    task: tokio::task::JoinHandle<watch::Sender<bool>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("listen", &self.listen)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Starts accepting (TCP) or receiving (UDP) on `socket`.
    pub fn start(
        socket: Socket,
        listen: Listen,
        tls: Option<Arc<rustls::ServerConfig>>,
        proxy: Arc<StreamProxy>,
    ) -> std::io::Result<Running> {
        let (stop, stopped) = watch::channel(false);
        let tls = Arc::new(ArcSwapOption::new(tls));
        let (local, task) = match socket {
            Socket::Tcp(listener) => (
                listener.local_addr()?,
                tokio::spawn(accept_loop(listener, tls.clone(), proxy, stopped)),
            ),
            Socket::Udp(socket) => {
                let local = socket.local_addr()?;
                let task = tokio::spawn(async move {
                    let (drain, draining) = watch::channel(false);
                    udp::serve(Arc::new(socket), proxy, stopped, draining).await;
                    drain
                });
                (local, task)
            }
        };
        Ok(Running {
            listen,
            local,
            tls,
            stop,
            task,
        })
    }

    /// Stops accepting and closes the socket, then waits for this listener's TCP connections to
    /// end on their own (UDP sessions end at once).
    pub async fn drain(self) {
        let _ = self.stop.send(true);
        if let Ok(drain) = self.task.await {
            drain.send_replace(true);
            // Every connection and session holds a receiver until it ends.
            drain.closed().await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ArcSwapOption<rustls::ServerConfig>>,
    proxy: Arc<StreamProxy>,
    mut stopped: watch::Receiver<bool>,
) -> watch::Sender<bool> {
    let (drain, draining) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::error!(error = %e, "stream accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tls = tls.load_full();
        let proxy = proxy.clone();
        // Held until the connection ends, so a drain can wait for it.
        let held = draining.clone();
        tokio::spawn(async move {
            session::serve(proxy, stream, client, tls).await;
            drop(held);
        });
    }
    drop(listener);
    drain
}
