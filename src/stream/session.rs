//! One TCP connection on a stream listener, from accept to close (see the module docs of
//! [`crate::stream`] for the steps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::error::{Side, StreamError};
use super::io::{Either, Prefixed};
use super::peer;
use super::preread;
use super::relay::{relay, Ended};
use super::{Counted, StreamProxy};
use crate::router::{Protocol, StreamRequest};

/// How long a client may take to complete its TLS handshake (nginx's `ssl_handshake_timeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one accepted connection; `tls` is the listener's configuration when it has `ssl`.
pub(crate) async fn serve(
    proxy: Arc<StreamProxy>,
    stream: TcpStream,
    client: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let _open = Counted::new(&proxy.node);
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(client);
    match run(&proxy, stream, client, local, tls).await {
        Ok(Ended::Done(up, down)) => {
            tracing::debug!(%client, %local, sent = up, received = down, "stream connection relayed")
        }
        Ok(Ended::Idle) => tracing::debug!(%client, %local, "stream connection idle; closed"),
        Ok(Ended::Failed(e)) => {
            tracing::debug!(%client, %local, error = %e, "stream connection ended with an error")
        }
        // Kong logs these at the error level, with the connection.
        Err(e) if e.side() != Side::Downstream || matches!(e, StreamError::NoRoute) => {
            tracing::error!(%client, %local, error = %e, "stream connection closed")
        }
        Err(e) => tracing::debug!(%client, %local, error = %e, "stream connection closed"),
    }
}

async fn run(
    proxy: &StreamProxy,
    mut stream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Ended, StreamError> {
    let hello = match tls {
        Some(_) => preread::client_hello(&mut stream).await?,
        None => preread::Hello::default(),
    };
    // One snapshot for the connection's whole life.
    let snapshot = proxy.node.snapshot.load_full();
    let found = snapshot
        .stream
        .find(&StreamRequest {
            source: client,
            destination: local,
            sni: hello.sni.as_deref(),
        })
        .ok_or(StreamError::NoRoute)?;
    let route = found.route;
    let service = found.service.ok_or_else(|| StreamError::NoService {
        route: route.id.clone(),
    })?;
    let preread::Hello { sni, bytes } = hello;
    let downstream = Prefixed::new(bytes, stream);
    let mut downstream = match tls {
        None => Either::Left(downstream),
        Some(config) if route.protocols.contains(Protocol::Tls) => {
            let accepted = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsAcceptor::from(config).accept(downstream),
            )
            .await
            .map_err(|_| {
                StreamError::ClientTls(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "handshake timed out",
                ))
            })?
            .map_err(StreamError::ClientTls)?;
            Either::Right(Box::new(accepted))
        }
        Some(_) if route.protocols.contains(Protocol::TlsPassthrough) => Either::Left(downstream),
        Some(_) => {
            return Err(StreamError::UnexpectedProtocols {
                route: route.id.clone(),
            })
        }
    };
    // The name sent upstream: the client's own with `preserve_host`, else the service host.
    let upstream_name = match (&sni, route.preserve_host) {
        (Some(sni), true) => sni.as_str(),
        _ => service.host.as_str(),
    };
    let mut upstream = peer::connect(&snapshot, service, upstream_name).await?;
    let idle = Duration::from_millis(service.read_timeout.max(service.write_timeout));
    Ok(relay(&mut downstream, &mut upstream, idle).await)
}
