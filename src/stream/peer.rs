//! Reaching a stream service's upstream: which address to try ([`pick_peer`], the seam where the
//! balancer slots in), then TCP (and TLS for `tls` services) or a connected UDP socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;

use super::error::StreamError;
use super::io::Either;
use crate::router::{Protocol, ServiceInfo};
use crate::snapshot::Snapshot;

/// An upstream connection: plain TCP or TLS.
pub(crate) type Upstream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Where one connection attempt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr<'a> {
    /// A host name or an IP address.
    pub host: &'a str,
    /// The port.
    pub port: u16,
}

/// The peer for attempt number `attempt` (0 for the first) of a connection to `service`.
///
/// Today this is the service's own `host:port` on every attempt. It is the one place the
/// balancer (upstream entities, targets, health) will choose from instead: it receives the
/// snapshot the connection runs from and the attempt number, so a retry can pick another
/// target.
pub fn pick_peer<'a>(
    _snapshot: &'a Snapshot,
    service: &'a ServiceInfo,
    _attempt: u32,
) -> PeerAddr<'a> {
    PeerAddr {
        host: &service.host,
        port: service.port,
    }
}

/// Whether connections to `service` are encrypted: its protocol is `tls` (or another TLS
/// protocol, see the module docs of [`crate::stream`]).
pub(crate) fn uses_tls(service: &ServiceInfo) -> bool {
    matches!(
        service.protocol,
        Protocol::Tls | Protocol::Https | Protocol::Grpcs | Protocol::Wss
    )
}

/// Connects to `service` over TCP (and TLS, sending `sni` as the server name), trying
/// `retries + 1` times while the failure is one another attempt may fix.
pub(crate) async fn connect(
    snapshot: &Snapshot,
    service: &ServiceInfo,
    sni: &str,
) -> Result<Upstream, StreamError> {
    let attempts = service.retries.saturating_add(1);
    let mut attempt = 0;
    loop {
        let peer = pick_peer(snapshot, service, attempt);
        match connect_once(snapshot, service, peer, sni).await {
            Ok(upstream) => return Ok(upstream),
            Err(e) if e.retryable() && attempt + 1 < attempts => {
                tracing::debug!(error = %e, attempt, "upstream connection attempt failed; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn connect_once(
    snapshot: &Snapshot,
    service: &ServiceInfo,
    peer: PeerAddr<'_>,
    sni: &str,
) -> Result<Upstream, StreamError> {
    let address = display(peer);
    let within = Duration::from_millis(service.connect_timeout);
    let attempt = async {
        let stream = tcp(peer, &address).await?;
        if !uses_tls(service) {
            return Ok(Either::Left(stream));
        }
        let config = snapshot.upstreams.tls(service).raw_config().clone();
        let name = server_name(sni)?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|source| StreamError::UpstreamTls {
                address: address.clone(),
                source,
            })?;
        Ok(Either::Right(Box::new(tls)))
    };
    tokio::time::timeout(within, attempt)
        .await
        .map_err(|_| StreamError::ConnectTimeout {
            address: address.clone(),
        })?
}

/// TCP to the first of `peer`'s addresses that accepts.
async fn tcp(peer: PeerAddr<'_>, address: &str) -> Result<TcpStream, StreamError> {
    let mut last = None;
    for addr in resolve(peer).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(StreamError::Connect {
        address: address.to_owned(),
        source: last.unwrap_or_else(|| std::io::Error::other("no address")),
    })
}

/// A UDP socket connected to `service`'s peer (UDP has no handshake: nothing is retried).
pub(crate) async fn udp(
    snapshot: &Snapshot,
    service: &ServiceInfo,
) -> Result<UdpSocket, StreamError> {
    let peer = pick_peer(snapshot, service, 0);
    let address = display(peer);
    let failed = |source| StreamError::Connect {
        address: address.clone(),
        source,
    };
    let addr = resolve(peer)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| failed(std::io::Error::other("no address")))?;
    let any: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).await.map_err(failed)?;
    socket.connect(addr).await.map_err(failed)?;
    Ok(socket)
}

/// `peer`'s addresses: the IP itself, or what its name resolves to.
async fn resolve(peer: PeerAddr<'_>) -> Result<Vec<SocketAddr>, StreamError> {
    let bare = peer.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, peer.port)]);
    }
    let failed = |source| StreamError::Resolve {
        host: peer.host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, peer.port))
        .await
        .map_err(failed)?
        .collect();
    if addrs.is_empty() {
        return Err(failed(std::io::Error::other("no address")));
    }
    Ok(addrs)
}

/// The server name sent upstream: an IP address sends none (rustls' rule, as nginx's).
fn server_name(sni: &str) -> Result<ServerName<'static>, StreamError> {
    let bare = sni.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(sni.to_owned()).map_err(|_| StreamError::ServerName(sni.to_owned()))
}

fn display(peer: PeerAddr<'_>) -> String {
    if peer.host.contains(':') && !peer.host.starts_with('[') {
        format!("[{}]:{}", peer.host, peer.port)
    } else {
        format!("{}:{}", peer.host, peer.port)
    }
}
