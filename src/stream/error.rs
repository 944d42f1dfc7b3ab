//! Why a stream connection or UDP session ended without being relayed.
//!
//! Nothing is answered to a stream client: every error closes the connection (Kong's
//! `exit(500)` in the preread phase does the same, the status only reaches the log). The error
//! says which side failed and whether another connection attempt may help, which is what the
//! upstream connect loop and the log need.

use std::io;

/// Which side of the proxy an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client, or what it asked for (no route).
    Downstream,
    /// The service's upstream.
    Upstream,
    /// The node's own configuration.
    Internal,
}

/// A stream connection that could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No stream route matches the connection.
    #[error("no Route found with those values")]
    NoRoute,
    /// The matched route has no service to send the connection to.
    #[error("route {route} has no service")]
    NoService {
        /// The route's id.
        route: String,
    },
    /// A connection on a TLS listener matched a route that neither terminates nor passes TLS
    /// through (Kong: "unexpected protocols in matched Route").
    #[error("route {route} matched a TLS connection but its protocols are neither tls nor tls_passthrough")]
    UnexpectedProtocols {
        /// The route's id.
        route: String,
    },
    /// The client sent no complete ClientHello in time.
    #[error("timed out reading the client's TLS ClientHello")]
    PrereadTimeout,
    /// Reading from the client failed before anything was routed.
    #[error("reading from the client failed: {0}")]
    ClientRead(#[source] io::Error),
    /// The TLS handshake with the client failed or timed out.
    #[error("TLS handshake with the client failed: {0}")]
    ClientTls(#[source] io::Error),
    /// The upstream host name did not resolve.
    #[error("could not resolve upstream {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// Connecting to the upstream failed.
    #[error("could not connect to upstream {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Connecting to the upstream (TCP and TLS) took longer than the service's
    /// `connect_timeout`.
    #[error("timed out connecting to upstream {address}")]
    ConnectTimeout {
        /// `host:port`.
        address: String,
    },
    /// The TLS handshake with the upstream failed.
    #[error("TLS handshake with upstream {address} failed: {source}")]
    UpstreamTls {
        /// `host:port`.
        address: String,
        /// rustls' complaint.
        #[source]
        source: io::Error,
    },
    /// The name to send upstream as SNI is not a valid server name.
    #[error("invalid upstream server name '{0}'")]
    ServerName(String),
}

impl StreamError {
    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            StreamError::NoRoute
            | StreamError::PrereadTimeout
            | StreamError::ClientRead(_)
            | StreamError::ClientTls(_) => Side::Downstream,
            StreamError::NoService { .. } | StreamError::UnexpectedProtocols { .. } => {
                Side::Internal
            }
            StreamError::Resolve { .. }
            | StreamError::Connect { .. }
            | StreamError::ConnectTimeout { .. }
            | StreamError::UpstreamTls { .. }
            | StreamError::ServerName(_) => Side::Upstream,
        }
    }

    /// Whether another upstream connection attempt may succeed (nginx's
    /// `proxy_next_upstream error timeout`): failed connects, timeouts and TLS handshakes.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            StreamError::Connect { .. }
                | StreamError::ConnectTimeout { .. }
                | StreamError::UpstreamTls { .. }
        )
    }
}
