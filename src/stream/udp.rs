//! A `udp` stream listener: one session per client address, each relaying datagrams between
//! the client and a socket connected to the matched service (see the module docs of
//! [`crate::stream`]).
//!
//! The listener task owns the session table and never waits on a session: it hands each
//! datagram to its session's queue, or drops it when the queue is full, as a congested network
//! would. A session routes, connects and relays on its own task, and ends on its idle timeout, on
//! an upstream error, or when the listener drains.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::error::StreamError;
use super::peer;
use super::StreamProxy;
use crate::router::StreamRequest;

/// Datagrams queued for a session before more are dropped.
const QUEUE: usize = 64;
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// How often ended sessions are forgotten.
const SWEEP: Duration = Duration::from_secs(5);

/// Receives on `socket` until `stopped`; sessions end when `draining` turns true.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    proxy: Arc<StreamProxy>,
    mut stopped: watch::Receiver<bool>,
    draining: watch::Receiver<bool>,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "UDP listener has no local address");
            return;
        }
    };
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        let (n, client) = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = sweep.tick() => {
                sessions.retain(|_, queue| !queue.is_closed());
                continue;
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        let datagram = Bytes::copy_from_slice(&buf[..n]);
        let datagram = match sessions.get(&client) {
            Some(queue) => match queue.try_send(datagram) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                // The session ended: this datagram starts a new one.
                Err(mpsc::error::TrySendError::Closed(d)) => d,
            },
            None => datagram,
        };
        let (queue, datagrams) = mpsc::channel(QUEUE);
        let _ = queue.try_send(datagram);
        sessions.insert(client, queue);
        let session = Session {
            proxy: proxy.clone(),
            listener: socket.clone(),
            client,
            local,
        };
        tokio::spawn(session.run(datagrams, draining.clone()));
    }
}

/// One client's session.
struct Session {
    proxy: Arc<StreamProxy>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    local: SocketAddr,
}

impl Session {
    async fn run(self, datagrams: mpsc::Receiver<Bytes>, draining: watch::Receiver<bool>) {
        let (client, local) = (self.client, self.local);
        if let Err(e) = self.relay(datagrams, draining).await {
            tracing::error!(%client, %local, error = %e, "UDP session closed");
        }
    }

    async fn relay(
        &self,
        mut datagrams: mpsc::Receiver<Bytes>,
        mut draining: watch::Receiver<bool>,
    ) -> Result<(), StreamError> {
        let snapshot = self.proxy.node.snapshot.load_full();
        let found = snapshot
            .stream
            .find(&StreamRequest {
                source: self.client,
                destination: self.local,
                sni: None,
            })
            .ok_or(StreamError::NoRoute)?;
        let service = found.service.ok_or_else(|| StreamError::NoService {
            route: found.route.id.clone(),
        })?;
        let upstream = peer::udp(&snapshot, service).await?;
        let idle = Duration::from_millis(service.read_timeout.max(service.write_timeout));
        let mut deadline = Instant::now() + idle;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        if *draining.borrow_and_update() {
            return Ok(());
        }
        loop {
            tokio::select! {
                // The only change ever sent is the drain (or the listener going away).
                _ = draining.changed() => return Ok(()),
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(client = %self.client, "UDP session idle; closed");
                    return Ok(());
                }
                datagram = datagrams.recv() => {
                    let Some(datagram) = datagram else { return Ok(()) };
                    if let Err(e) = upstream.send(&datagram).await {
                        tracing::debug!(client = %self.client, error = %e, "UDP send upstream failed");
                        return Ok(());
                    }
                    deadline = Instant::now() + idle;
                }
                received = upstream.recv(&mut buf) => {
                    // An error here is the upstream's ICMP refusal: the session is over.
                    let n = match received {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::debug!(client = %self.client, error = %e, "UDP upstream refused");
                            return Ok(());
                        }
                    };
                    if let Err(e) = self.listener.send_to(&buf[..n], self.client).await {
                        tracing::debug!(client = %self.client, error = %e, "UDP send to client failed");
                    }
                    deadline = Instant::now() + idle;
                }
            }
        }
    }
}
