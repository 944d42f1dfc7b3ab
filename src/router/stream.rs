//! The stream router: which route, and so which service, a TCP, TLS or UDP connection goes to.
//! It implements the stream half of Kong's default `traditional_compatible` flavor.
//!
//! Like the HTTP router it is pure: [`StreamRouter::build`] compiles the stored routes whose
//! `protocols` are stream protocols (`tcp`, `tls`, `udp`, `tls_passthrough`) once per snapshot,
//! and [`StreamRouter::find`] answers a connection from it without IO or locks.
//!
//! # What matches
//!
//! A connection is described by its source (client) address, its destination (the local
//! address it reached) and, when the listener read one from the TLS ClientHello, the server name
//! it asked for ([`StreamRequest`]). A route matches when every attribute it sets matches; within
//! an attribute any one entry is enough.
//!
//! - **sources** / **destinations**: an entry `{ip, port}` matches when its `ip` equals the
//!   address (or, written as a CIDR range, contains it) and its `port` equals the port; an entry
//!   may set only one of the two. IPv4-mapped IPv6 addresses are compared as the IPv4 address.
//! - **snis**: exactly, or with a leading `*` (any name ending with the rest) or a trailing `*`
//!   (any name beginning with the rest); a trailing dot of a stored name is ignored. As in Kong,
//!   SNIs only count when the connection carries a server name: a plain TCP connection, a UDP
//!   datagram, or a TLS client that sent no SNI matches a route by its other attributes alone
//!   (Kong compiles `snis` to `net.protocol != "tls" || tls.sni == ...`, and the protocol is `tls`
//!   exactly when a server name was read).
//! - **protocols** take no part in matching (Kong's compiled expressions do not test them). The
//!   stream proxy looks at them after the match: on a TLS listener the route decides between
//!   terminating TLS (`tls`) and passing it through (`tls_passthrough`).
//!
//! Routes whose service has `enabled = false` are left out. Routes without a service match
//! normally (the proxy then closes the connection).
//!
//! # Priority
//!
//! Every route gets a 64-bit priority, and routes are tried from the highest (Kong's
//! `stream_get_priority`):
//!
//! 1. bit 61 is set when the route has `snis`, or has both `sources` and `destinations`: those
//!    are the most specific routes;
//! 2. bits 4–7 describe `sources` and bits 0–3 `destinations`, each the union over the entries
//!    of IP (8), port (4) and CIDR range (1), so an exact address outranks a port, which outranks
//!    a range, and sources outrank destinations.
//!
//! Equal priorities are ordered by id, the larger UUID first, as in the HTTP router.
//!
//! # Cost
//!
//! A lookup tests the routes in priority order until one matches: linear in the number of stream
//! routes, which configurations keep small; each test is a few integer comparisons.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use uuid::Uuid;

use super::entity::{entity_id, parse_service, Fields};
use super::error::RouterError;
use super::matcher::SniMatcher;
use super::model::{PathHandling, Protocol, Protocols, RouteInfo, ServiceInfo};
use super::Doc;

/// What the stream router knows of a connection.
#[derive(Debug, Clone, Copy)]
pub struct StreamRequest<'a> {
    /// The client's address.
    pub source: SocketAddr,
    /// The local address the client reached.
    pub destination: SocketAddr,
    /// The server name of the client's TLS ClientHello, lower-case, when one was read.
    pub sni: Option<&'a str>,
}

/// The route a connection matched, and its service.
#[derive(Debug, Clone, Copy)]
pub struct StreamMatch<'a> {
    /// The route.
    pub route: &'a RouteInfo,
    /// Its service; `None` when the route has none.
    pub service: Option<&'a ServiceInfo>,
}

/// The compiled stream routing table. Immutable; share it (in the snapshot) behind an `Arc`.
#[derive(Debug, Default)]
pub struct StreamRouter {
    /// Highest priority first.
    routes: Vec<StreamRoute>,
    services: Vec<ServiceInfo>,
}

#[derive(Debug)]
struct StreamRoute {
    info: RouteInfo,
    priority: u64,
    snis: Box<[SniMatcher]>,
    sources: Box<[Endpoint]>,
    destinations: Box<[Endpoint]>,
    /// Index into [`StreamRouter::services`].
    service: Option<usize>,
}

/// One `sources` or `destinations` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    ip: Option<IpMatch>,
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpMatch {
    /// One address.
    Exact(IpAddr),
    /// A range: its network address (host bits cleared) and prefix length.
    Cidr(IpAddr, u8),
}

impl IpMatch {
    /// Parses `addr` or `addr/bits`; `None` when it is neither.
    fn parse(s: &str) -> Option<IpMatch> {
        match s.split_once('/') {
            None => Some(IpMatch::Exact(s.parse::<IpAddr>().ok()?.to_canonical())),
            Some((addr, bits)) => {
                let addr: IpAddr = addr.parse().ok()?;
                let bits: u8 = bits.parse().ok()?;
                let network = match addr {
                    IpAddr::V4(a) => IpAddr::V4(mask_v4(u32::from(a), bits)?.into()),
                    IpAddr::V6(a) => IpAddr::V6(mask_v6(u128::from(a), bits)?.into()),
                };
                Some(IpMatch::Cidr(network, bits))
            }
        }
    }

    fn matches(self, ip: IpAddr) -> bool {
        match self {
            IpMatch::Exact(a) => a == ip,
            IpMatch::Cidr(IpAddr::V4(net), bits) => match ip {
                IpAddr::V4(a) => mask_v4(u32::from(a), bits) == Some(u32::from(net)),
                IpAddr::V6(_) => false,
            },
            IpMatch::Cidr(IpAddr::V6(net), bits) => match ip {
                IpAddr::V6(a) => mask_v6(u128::from(a), bits) == Some(u128::from(net)),
                IpAddr::V4(_) => false,
            },
        }
    }
}

/// `addr` with all but its first `bits` bits cleared; `None` when `bits` is over 32.
fn mask_v4(addr: u32, bits: u8) -> Option<u32> {
    match bits {
        0 => Some(0),
        1..=32 => Some(addr & (u32::MAX << (32 - u32::from(bits)))),
        _ => None,
    }
}

/// `addr` with all but its first `bits` bits cleared; `None` when `bits` is over 128.
fn mask_v6(addr: u128, bits: u8) -> Option<u128> {
    match bits {
        0 => Some(0),
        1..=128 => Some(addr & (u128::MAX << (128 - u32::from(bits)))),
        _ => None,
    }
}

impl Endpoint {
    fn matches(&self, addr: SocketAddr) -> bool {
        self.ip.is_none_or(|ip| ip.matches(addr.ip())) && self.port.is_none_or(|p| p == addr.port())
    }
}

/// Priority bit of routes with `snis`, or with both `sources` and `destinations`.
const SPECIFIC_BIT: u64 = 1 << 61;
/// Weight of an entry with an exact address.
const IP_WEIGHT: u64 = 8;
/// Weight of an entry with a port.
const PORT_WEIGHT: u64 = 4;
/// Weight of an entry with a CIDR range.
const CIDR_WEIGHT: u64 = 1;

/// The union of the weights of `entries` (IP 8, port 4, CIDR 1).
fn endpoint_weight(entries: &[Endpoint]) -> u64 {
    entries.iter().fold(0, |weight, e| {
        let ip = match e.ip {
            None => 0,
            Some(IpMatch::Exact(_)) => IP_WEIGHT,
            Some(IpMatch::Cidr(..)) => CIDR_WEIGHT,
        };
        let port = if e.port.is_some() { PORT_WEIGHT } else { 0 };
        weight | ip | port
    })
}

/// A stream route's priority (see the module docs).
pub(crate) fn stream_priority(
    has_snis: bool,
    sources: &[Endpoint],
    destinations: &[Endpoint],
) -> u64 {
    let specific = has_snis || (!sources.is_empty() && !destinations.is_empty());
    let weight = if specific { SPECIFIC_BIT } else { 0 };
    weight | (endpoint_weight(sources) << 4) | endpoint_weight(destinations)
}

impl StreamRoute {
    fn matches(&self, source: SocketAddr, destination: SocketAddr, sni: Option<&str>) -> bool {
        let sni_ok = match sni {
            Some(name) if !self.snis.is_empty() => self.snis.iter().any(|s| s.matches(name)),
            _ => true,
        };
        sni_ok
            && (self.sources.is_empty() || self.sources.iter().any(|e| e.matches(source)))
            && (self.destinations.is_empty()
                || self.destinations.iter().any(|e| e.matches(destination)))
    }
}

/// An address with an IPv4-mapped IPv6 address read as the IPv4 address.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl StreamRouter {
    /// Compiles the stream routes among `routes` (stored route documents) against `services`
    /// (stored service documents). Fails on the first document the router cannot use.
    pub fn build(routes: &[Doc], services: &[Doc]) -> Result<StreamRouter, RouterError> {
        let mut by_id: HashMap<&str, &Doc> = HashMap::with_capacity(services.len());
        for doc in services {
            by_id.insert(entity_id(doc, "service")?, doc);
        }
        // Each service parsed once: its index in `list`, or `None` when it is disabled.
        let mut parsed: HashMap<&str, Option<usize>> = HashMap::new();
        let mut list: Vec<ServiceInfo> = Vec::new();
        let mut compiled: Vec<StreamRoute> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for doc in routes {
            let id = entity_id(doc, "route")?;
            let f = Fields {
                doc,
                entity: "route",
                id,
            };
            let protocols = protocols(&f)?;
            if !protocols.any_stream() {
                continue;
            }
            if !seen.insert(id) {
                return Err(RouterError::DuplicateRoute(id.to_owned()));
            }
            let service = match f.foreign_id("service")? {
                None => None,
                Some(sid) => {
                    let slot = match parsed.get(sid) {
                        Some(slot) => *slot,
                        None => {
                            let sdoc = by_id.get(sid).copied().ok_or_else(|| {
                                RouterError::ServiceNotFound {
                                    route: id.to_owned(),
                                    service: sid.to_owned(),
                                }
                            })?;
                            let enabled = Fields {
                                doc: sdoc,
                                entity: "service",
                                id: sid,
                            }
                            .bool_or("enabled", true)?;
                            let slot = enabled.then_some(list.len());
                            if enabled {
                                list.push(parse_service(sdoc)?);
                            }
                            parsed.insert(sid, slot);
                            slot
                        }
                    };
                    match slot {
                        // Routes of a disabled service are not routable at all.
                        None => continue,
                        Some(i) => Some(i),
                    }
                }
            };
            compiled.push(compile(&f, protocols, service, &list)?);
        }
        // Highest priority first; equal priorities: the larger id first.
        compiled.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| b.info.uuid.cmp(&a.info.uuid))
        });
        Ok(StreamRouter {
            routes: compiled,
            services: list,
        })
    }

    /// A router without routes (every connection is unmatched).
    pub fn empty() -> StreamRouter {
        StreamRouter::default()
    }

    /// The best route for `req`, per the priority rules in the module docs.
    pub fn find<'a>(&'a self, req: &StreamRequest<'_>) -> Option<StreamMatch<'a>> {
        let (source, destination) = (canonical(req.source), canonical(req.destination));
        let route = self
            .routes
            .iter()
            .find(|r| r.matches(source, destination, req.sni))?;
        Some(StreamMatch {
            route: &route.info,
            service: route.service.and_then(|i| self.services.get(i)),
        })
    }

    /// The services the routes lead to.
    pub fn services(&self) -> impl Iterator<Item = &ServiceInfo> {
        self.services.iter()
    }

    /// The routes served, highest priority first.
    pub fn routes(&self) -> impl Iterator<Item = &RouteInfo> {
        self.routes.iter().map(|r| &r.info)
    }

    /// The number of routes served (disabled services' and HTTP routes left out).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is served.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn protocols(f: &Fields<'_>) -> Result<Protocols, RouterError> {
    match f.strings("protocols")? {
        None => Ok([Protocol::Http, Protocol::Https].into_iter().collect()),
        Some(list) => list
            .iter()
            .map(|p| {
                Protocol::parse(p)
                    .ok_or_else(|| f.err("protocols", format!("unknown protocol '{p}'")))
            })
            .collect(),
    }
}

/// Compiles one stream route whose service (if any) is `services[service]`.
fn compile(
    f: &Fields<'_>,
    protocols: Protocols,
    service: Option<usize>,
    services: &[ServiceInfo],
) -> Result<StreamRoute, RouterError> {
    let uuid = Uuid::parse_str(f.id).map_err(|_| f.err("id", "expected a UUID"))?;
    if f.get("expression").is_some() {
        return Err(f.err(
            "expression",
            "expression routes need the 'expressions' router flavor",
        ));
    }
    for field in ["methods", "hosts", "paths", "headers"] {
        if f.is_set(field) {
            return Err(f.err(field, "not supported on stream routes"));
        }
    }
    let snis: Box<[SniMatcher]> = f
        .strings("snis")?
        .unwrap_or_default()
        .into_iter()
        .map(SniMatcher::parse)
        .collect();
    let sources = endpoints(f, "sources")?;
    let destinations = endpoints(f, "destinations")?;
    if snis.is_empty() && sources.is_empty() && destinations.is_empty() {
        return Err(RouterError::NoStreamMatchers(f.id.to_owned()));
    }
    let info = RouteInfo {
        id: f.id.to_owned(),
        uuid,
        name: f.str_opt("name")?.map(str::to_owned),
        protocols,
        strip_path: false,
        preserve_host: f.bool_or("preserve_host", false)?,
        path_handling: PathHandling::V0,
        https_redirect_status_code: 426,
        request_buffering: true,
        response_buffering: true,
        regex_priority: 0,
        created_at: f.int_opt("created_at")?,
        service_id: service.and_then(|i| services.get(i)).map(|s| s.id.clone()),
    };
    Ok(StreamRoute {
        priority: stream_priority(!snis.is_empty(), &sources, &destinations),
        info,
        snis,
        sources: sources.into(),
        destinations: destinations.into(),
        service,
    })
}

/// The `sources` or `destinations` of a route.
fn endpoints(f: &Fields<'_>, field: &'static str) -> Result<Vec<Endpoint>, RouterError> {
    let items = match f.get(field) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(f.err(field, "expected an array of {ip, port} records")),
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(o) = item else {
                return Err(f.err(field, "expected {ip, port} records"));
            };
            let ip = match o.get("ip") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(
                    IpMatch::parse(s)
                        .ok_or_else(|| f.err(field, format!("invalid ip or cidr range '{s}'")))?,
                ),
                Some(_) => return Err(f.err(field, "ip: expected a string")),
            };
            let port = match o.get("port") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| f.err(field, "port: expected an integer 0-65535"))?,
                ),
            };
            if ip.is_none() && port.is_none() {
                return Err(f.err(field, "each entry needs an ip or a port"));
            }
            Ok(Endpoint { ip, port })
        })
        .collect()
}
