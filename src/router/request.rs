//! What the router is told about a request, and the view of it its matchers use.

use http::{HeaderMap, Version};

use super::matcher::{split_host_port, RequestView};

/// The scheme of the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Plain HTTP (also cleartext gRPC).
    #[default]
    Http,
    /// TLS (also gRPC over TLS).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What the router needs to know about a request. Everything is borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The request method.
    pub method: &'a str,
    /// The `Host` header (or HTTP/2 `:authority`) as received, port included; `None` when
    /// absent.
    pub host: Option<&'a str>,
    /// The request path, without query string, after [`normalize_path`](super::normalize_path).
    pub path: &'a str,
    /// The client connection's scheme; decides whether SNIs are checked.
    pub scheme: Scheme,
    /// `X-Forwarded-Proto` when the peer is trusted to set it; the protocol checks use it
    /// instead of `scheme` (as Kong does behind a TLS-terminating load balancer).
    pub forwarded_proto: Option<&'a str>,
    /// The port the request arrived on, after `port_maps`; compared with `hosts` entries that
    /// carry a port when the `Host` header has none.
    pub port: u16,
    /// The TLS SNI, if the connection is TLS and the client sent one.
    pub sni: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The HTTP version (gRPC routes require HTTP/2).
    pub version: Version,
}

impl<'a> RequestInfo<'a> {
    /// A plain-HTTP/1.1 request on port 80 without `Host` or SNI; set the other fields as
    /// needed.
    pub fn new(method: &'a str, path: &'a str, headers: &'a HeaderMap) -> RequestInfo<'a> {
        RequestInfo {
            method,
            host: None,
            path,
            scheme: Scheme::Http,
            forwarded_proto: None,
            port: 80,
            sni: None,
            headers,
            version: Version::HTTP_11,
        }
    }
}

impl<'a> RequestView<'a> {
    /// Derives the matchers' view: the `Host` header split from its port, and so on.
    pub(crate) fn of(req: &RequestInfo<'a>) -> RequestView<'a> {
        let (host, host_port) = match req.host {
            Some(h) => {
                let (h, p) = split_host_port(h);
                (Some(h), p)
            }
            None => (None, None),
        };
        RequestView {
            method: req.method,
            host,
            port: host_port.unwrap_or(u64::from(req.port)),
            path: req.path,
            https: req.scheme == Scheme::Https,
            sni: req.sni,
            headers: req.headers,
        }
    }
}
