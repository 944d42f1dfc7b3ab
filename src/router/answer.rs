//! What a match hands to the proxy: the route, its service, the matched path and captures,
//! the upstream path, and whether the route refuses the request's protocol.

use std::fmt;

use http::header::CONTENT_TYPE;
use http::Version;
use regex::{CaptureLocations, Regex};

use super::model::{Protocol, RouteInfo, ServiceInfo};
use super::path::UpstreamPath;
use super::RequestInfo;

/// Why a matched route cannot serve the request as it came; the proxy answers instead of
/// proxying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolMismatch {
    /// The route accepts `https` but not `http`, and the request is not HTTPS. With `status`
    /// 426: `426 Please use HTTPS protocol` with `Connection: Upgrade` and
    /// `Upgrade: TLS/1.2, HTTP/1.1`; otherwise (301, 302, 307, 308): that status, empty, with
    /// `Location: https://<host><request URI>`.
    HttpsRequired {
        /// The route's `https_redirect_status_code`.
        status: u16,
    },
    /// A gRPC route hit by a request without a `application/grpc…` content type:
    /// `415 Non-gRPC request matched gRPC route`.
    NotGrpc,
    /// A gRPC request over HTTP/1: `426 Please use HTTP2 protocol` with `Connection: Upgrade`
    /// and `Upgrade: HTTP/2`.
    Http2Required,
    /// A cleartext gRPC request on a `grpcs`-only route: `200` with
    /// `Content-Type: application/grpc`, `grpc-status: 1` and
    /// `grpc-message: gRPC request matched gRPCs route`.
    GrpcsRequired,
}

/// The named and numbered capture groups of the regex path that matched.
pub struct UriCaptures<'a> {
    regex: &'a Regex,
    locs: CaptureLocations,
    haystack: &'a str,
}

impl<'a> UriCaptures<'a> {
    pub(crate) fn new(regex: &'a Regex, haystack: &'a str) -> Option<UriCaptures<'a>> {
        let mut locs = regex.capture_locations();
        regex.captures_read(&mut locs, haystack)?;
        Some(UriCaptures {
            regex,
            locs,
            haystack,
        })
    }

    /// Group `i`; 0 is the whole match. `None` for a group that did not take part.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let (start, end) = self.locs.get(i)?;
        self.haystack.get(start..end)
    }

    /// The group named `name`, if it took part.
    pub fn name(&self, name: &str) -> Option<&'a str> {
        let i = self.regex.capture_names().position(|n| n == Some(name))?;
        self.get(i)
    }

    /// The number of groups, the whole match included.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Always false: there is at least the whole match.
    pub fn is_empty(&self) -> bool {
        self.locs.len() == 0
    }

    /// The groups that took part, by number (0 first).
    pub fn numbered(&self) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        (0..self.len()).filter_map(|i| self.get(i).map(|s| (i, s)))
    }

    /// The named groups that took part.
    pub fn named(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        let regex: &'a Regex = self.regex;
        regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| Some((n?, self.get(i)?)))
    }
}

impl fmt::Debug for UriCaptures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.numbered()).finish()
    }
}

/// The route a request matched and what the proxy needs to serve it.
#[derive(Debug)]
pub struct Match<'a> {
    /// The matched route.
    pub route: &'a RouteInfo,
    /// Its position, for [`Router::route_at`](super::Router::route_at).
    pub route_index: usize,
    /// Its service's position, for [`Router::service_at`](super::Router::service_at).
    pub service_index: Option<usize>,
    /// Its service; `None` for a route without one.
    pub service: Option<&'a ServiceInfo>,
    /// The part of the request path the route's path matched (for a regex, its whole match);
    /// `None` when the route matched without paths.
    pub matched_path: Option<&'a str>,
    /// The prefix removed from the upstream path: the matched path when the route strips it.
    /// Also the `X-Forwarded-Prefix` value (not sent when it is `/`).
    pub stripped_prefix: Option<&'a str>,
    /// The capture groups, when the route matched by a regex path that has groups.
    pub captures: Option<UriCaptures<'a>>,
    /// The path to send upstream (see [`upstream_path_v0`](super::upstream_path_v0)).
    pub upstream_path: UpstreamPath<'a>,
    /// Set when the route does not accept the request's protocol.
    pub protocol_mismatch: Option<ProtocolMismatch>,
}

/// The protocol checks the proxy makes after a match, in Kong's order.
pub(crate) fn protocol_mismatch(
    route: &RouteInfo,
    req: &RequestInfo<'_>,
) -> Option<ProtocolMismatch> {
    let proto = req.forwarded_proto.unwrap_or(req.scheme.as_str());
    let p = route.protocols;
    if p.contains(Protocol::Https) && !p.contains(Protocol::Http) && proto != "https" {
        return Some(ProtocolMismatch::HttpsRequired {
            status: route.https_redirect_status_code,
        });
    }
    if p.contains(Protocol::Grpc) || p.contains(Protocol::Grpcs) {
        let grpc = req
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if !grpc {
            return Some(ProtocolMismatch::NotGrpc);
        }
        if req.version != Version::HTTP_2 {
            return Some(ProtocolMismatch::Http2Required);
        }
        if !p.contains(Protocol::Grpc) && proto != "https" {
            return Some(ProtocolMismatch::GrpcsRequired);
        }
    }
    None
}
