//! The stream proxy: Kong's `stream_listen` side, relaying TCP, TLS and UDP traffic to services
//! chosen by the [`StreamRouter`](crate::router::StreamRouter).
//!
//! It sits beside the HTTP proxy and, like it, runs from the node's current snapshot only: every
//! connection (or UDP session) loads one snapshot, routes, and keeps that snapshot's service and
//! TLS settings for its whole life.
//!
//! # A TCP connection's life
//!
//! ```text
//! accept ─┬─ plain listener ──────────────────────────────┐
//!         └─ ssl listener: read the ClientHello (SNI) ─────┤
//!                                                         route (source, destination, SNI)
//!            no route / no service ─────────────────────── close
//!            ssl listener, route `tls` ─────────────────── terminate TLS (certificate by SNI)
//!            ssl listener, route `tls_passthrough` ─────── keep the ClientHello bytes as read
//!            ssl listener, any other route ────────────── close
//!         connect upstream (TLS when the service is `tls`), retried `retries` times
//!         relay bytes both ways until both sides finish or nothing moves for the idle timeout
//! ```
//!
//! On an ssl listener the ClientHello is read before anything is decided, exactly as nginx's
//! `ssl_preread` does in Kong's preread server block: the bytes read are kept, so a
//! `tls_passthrough` route forwards them untouched (the client then completes its handshake with
//! the upstream), and a `tls` route hands them to the TLS acceptor as if they had never been
//! read. A plain listener does not look at the bytes at all: its connections route on addresses
//! only.
//!
//! # UDP
//!
//! A `udp` listener keeps one session per client address: the first datagram routes and opens
//! a socket connected to the service; later datagrams of that client go through it, and the
//! upstream's answers go back to the client from the listener's address. A session ends after
//! the idle timeout without a datagram either way, or when the upstream refuses (ICMP).
//!
//! # Counters
//!
//! TCP connections (plain, terminated or passed through) count in the node's connection
//! counters, beside HTTP connections (`/status`: accepted, handled, active), so the node's load
//! shows in one place; Kong's figures come from nginx's `stub_status`, which sees HTTP only. UDP
//! sessions are not counted: they are not connections.
//!
//! # Timeouts (as Kong sets nginx's stream proxy from the service)
//!
//! - `connect_timeout`: per connection attempt, TCP connect and upstream TLS handshake;
//! - `max(read_timeout, write_timeout)`: the idle timeout of a relayed connection or UDP session
//!   (nginx's `proxy_timeout`, which Kong's balancer sets to the larger of the two);
//! - 30 s to read a ClientHello (nginx's `preread_timeout`), 60 s for a client TLS handshake
//!   (`ssl_handshake_timeout`).
//!
//! # Where this differs from Kong
//!
//! - Upstream TLS is used when the service's protocol is `tls` (or another TLS protocol:
//!   `https`, `grpcs`, `wss`); Kong also encrypts to `http`, `grpc` and `ws` services behind
//!   stream routes (it only turns TLS off for `tcp`), which is a misconfiguration at best.
//! - Connections and sessions are not written to an access log (`proxy_stream_access_log`), and
//!   no stream plugins run.
//! - On drain (`kong quit`, or a listener removed by `kong reload`) a TCP listener stops
//!   accepting and waits for its connections to end; a UDP listener ends its sessions at once.
//! - `proxy_protocol` on stream listeners is accepted but not acted on, as on HTTP listeners.
//! - The destination of a UDP datagram is the listener's bound address (a wildcard listener
//!   sees `0.0.0.0` or `::`), not the address the client sent to.

mod error;
pub(crate) mod io;
mod listener;
mod peer;
mod preread;
mod relay;
mod session;
mod udp;

use std::sync::Arc;

use crate::node::Node;

pub use error::{Side, StreamError};
pub use listener::{bind, Running, Socket};
pub use peer::{pick_peer, PeerAddr};

/// What stream listeners share: the node (its snapshot and connection counters).
pub struct StreamProxy {
    node: Arc<Node>,
}

impl std::fmt::Debug for StreamProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamProxy")
            .field("node", &self.node.id)
            .finish()
    }
}

impl StreamProxy {
    /// A stream proxy serving from `node`'s current snapshot.
    pub fn new(node: Arc<Node>) -> Arc<StreamProxy> {
        Arc::new(StreamProxy { node })
    }
}

/// Counts a TCP connection as open in the node's counters until dropped.
struct Counted(Arc<Node>);

impl Counted {
    fn new(node: &Arc<Node>) -> Counted {
        node.counters.connection(true);
        Counted(node.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.counters.connection(false);
    }
}
