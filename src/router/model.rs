//! The route and service data a match hands to the proxy, read once from the stored entity JSON
//! at build time so the request path never touches JSON.

use uuid::Uuid;

/// A protocol as routes and services name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
    /// gRPC over cleartext HTTP/2.
    Grpc,
    /// gRPC over TLS.
    Grpcs,
    /// A TCP stream.
    Tcp,
    /// A TLS stream, terminated by the gateway.
    Tls,
    /// A TLS stream passed through by SNI.
    TlsPassthrough,
    /// A UDP stream.
    Udp,
    /// WebSocket over cleartext HTTP (a service protocol).
    Ws,
    /// WebSocket over TLS (a service protocol).
    Wss,
}

impl Protocol {
    /// Parses a stored protocol name.
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "grpc" => Protocol::Grpc,
            "grpcs" => Protocol::Grpcs,
            "tcp" => Protocol::Tcp,
            "tls" => Protocol::Tls,
            "tls_passthrough" => Protocol::TlsPassthrough,
            "udp" => Protocol::Udp,
            "ws" => Protocol::Ws,
            "wss" => Protocol::Wss,
            _ => return None,
        })
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Grpc => "grpc",
            Protocol::Grpcs => "grpcs",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::TlsPassthrough => "tls_passthrough",
            Protocol::Udp => "udp",
            Protocol::Ws => "ws",
            Protocol::Wss => "wss",
        }
    }

    /// Whether the HTTP side of the gateway serves it (as opposed to the stream side).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Https
                | Protocol::Grpc
                | Protocol::Grpcs
                | Protocol::Ws
                | Protocol::Wss
        )
    }
}

/// A set of [`Protocol`]s (a route's `protocols`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protocols(u16);

impl Protocols {
    fn bit(p: Protocol) -> u16 {
        1 << (p as u16)
    }

    /// Adds `p`.
    pub fn insert(&mut self, p: Protocol) {
        self.0 |= Self::bit(p);
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Protocol) -> bool {
        self.0 & Self::bit(p) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any member is served by the HTTP side.
    pub fn any_http(self) -> bool {
        [
            Protocol::Http,
            Protocol::Https,
            Protocol::Grpc,
            Protocol::Grpcs,
        ]
        .into_iter()
        .any(|p| self.contains(p))
    }

    /// Whether any member is served by the stream side (`tcp`, `tls`, `udp`,
    /// `tls_passthrough`).
    pub fn any_stream(self) -> bool {
        [
            Protocol::Tcp,
            Protocol::Tls,
            Protocol::Udp,
            Protocol::TlsPassthrough,
        ]
        .into_iter()
        .any(|p| self.contains(p))
    }
}

impl FromIterator<Protocol> for Protocols {
    fn from_iter<I: IntoIterator<Item = Protocol>>(iter: I) -> Protocols {
        let mut set = Protocols::default();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// A route's `path_handling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathHandling {
    /// The default, and the only behaviour the `traditional_compatible` router applies.
    #[default]
    V0,
    /// Deprecated; recorded, but upstream paths are still built the `v0` way (see
    /// [`upstream_path_v1`](super::upstream_path_v1) for what it would do).
    V1,
}

/// What the proxy needs of a matched route.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The route's id, as stored.
    pub id: String,
    /// The id parsed, used for the equal-priority tie-break.
    pub uuid: Uuid,
    /// The route's name, if any.
    pub name: Option<String>,
    /// The protocols the route accepts.
    pub protocols: Protocols,
    /// Whether the matched path is removed from the upstream path.
    pub strip_path: bool,
    /// Whether the client's `Host` header is sent upstream.
    pub preserve_host: bool,
    /// The stored `path_handling` (see [`PathHandling`]).
    pub path_handling: PathHandling,
    /// The status answered when an `https`-only route is hit over plain HTTP (426, 301, 302,
    /// 307 or 308).
    pub https_redirect_status_code: u16,
    /// Whether the request body is buffered before it is sent upstream.
    pub request_buffering: bool,
    /// Whether the response body is buffered before it is sent to the client.
    pub response_buffering: bool,
    /// The stored `regex_priority`.
    pub regex_priority: i64,
    /// The stored `created_at` (seconds), if any. Not used for ordering (see the module docs).
    pub created_at: Option<i64>,
    /// The id of the route's service, if it has one the router can use.
    pub service_id: Option<String>,
}

/// What the proxy needs of a matched route's service.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// The service's id, as stored.
    pub id: String,
    /// The service's name, if any.
    pub name: Option<String>,
    /// The upstream protocol.
    pub protocol: Protocol,
    /// The upstream host: a hostname, an IP, or an upstream entity's name.
    pub host: String,
    /// The upstream port.
    pub port: u16,
    /// The upstream base path, if set (`/` is used when it is not).
    pub path: Option<String>,
    /// Milliseconds allowed for connecting upstream.
    pub connect_timeout: u64,
    /// Milliseconds allowed between two successive writes upstream.
    pub write_timeout: u64,
    /// Milliseconds allowed between two successive reads from upstream.
    pub read_timeout: u64,
    /// How many times a failed connection is retried.
    pub retries: u32,
    /// Whether the upstream certificate is verified (unset: the node's default).
    pub tls_verify: Option<bool>,
    /// Maximum verification chain depth (unset: the node's default).
    pub tls_verify_depth: Option<u8>,
    /// CA certificate ids trusted for the upstream.
    pub ca_certificates: Vec<String>,
    /// The client certificate id presented upstream, if any.
    pub client_certificate: Option<String>,
}

impl ServiceInfo {
    /// The base path upstream paths are built on: the service's `path`, or `/`.
    pub fn base_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}
