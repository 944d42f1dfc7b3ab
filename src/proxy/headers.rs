//! Headers between client and upstream: hop-by-hop removal, `X-Forwarded-*` and `X-Real-IP`
//! (trusting the client's values only from `trusted_ips`), the upstream `Host`, and `Via`.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::HeaderMap;

use crate::runtime::raw_headers::Kind;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PATH: HeaderName = HeaderName::from_static("x-forwarded-path");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Addresses whose `X-Forwarded-*` and real-IP headers are believed (`trusted_ips`).
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    nets: Vec<(IpAddr, u8)>,
}

impl Trusted {
    /// Parses `trusted_ips` entries (addresses or CIDRs; `unix:` is accepted and ignored).
    pub fn parse(entries: &[String]) -> Trusted {
        let nets = entries
            .iter()
            .filter_map(|e| {
                let (ip, bits) = match e.split_once('/') {
                    Some((ip, bits)) => (ip, bits.parse::<u8>().ok()?),
                    None => (e.as_str(), if e.contains(':') { 128 } else { 32 }),
                };
                Some((ip.parse::<IpAddr>().ok()?, bits))
            })
            .collect();
        Trusted { nets }
    }

    /// Whether `ip` is trusted.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V4(a)) => {
                prefix_eq(&n.octets(), &a.to_ipv6_mapped().octets(), *bits)
            }
            _ => false,
        })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits).min(a.len() * 8);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

impl Trusted {
    /// Whether no address is trusted (the common case: no realip work at all).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// The client's address after nginx's realip processing, as Kong configures it: when the peer
/// is in `trusted_ips`, the address `real_ip_header` carries (for a list such as
/// `X-Forwarded-For`, the last one; with `real_ip_recursive`, the last one not itself trusted).
/// Anything unusable leaves the peer's address.
pub fn real_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &Trusted,
    header: &str,
    recursive: bool,
) -> IpAddr {
    if trusted.is_empty()
        || !trusted.contains(peer)
        || header.eq_ignore_ascii_case("proxy_protocol")
    {
        return peer;
    }
    let parse = |s: &str| -> Option<IpAddr> {
        let s = s.trim();
        s.parse()
            .ok()
            .or_else(|| s.trim_start_matches('[').split(']').next()?.parse().ok())
    };
    let values = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let addresses: Vec<&str> = values.flat_map(|v| v.split(',')).collect();
    let found = if recursive {
        addresses
            .iter()
            .rev()
            .filter_map(|a| parse(a))
            .find(|ip| !trusted.contains(*ip))
            .or_else(|| addresses.first().and_then(|a| parse(a)))
    } else {
        addresses.last().and_then(|a| parse(a))
    };
    found.unwrap_or(peer)
}

/// What the proxy knows about the client side of a request.
#[derive(Debug, Clone, Copy)]
pub struct Downstream<'a> {
    /// The peer address.
    pub peer: IpAddr,
    /// The client's address after realip processing ([`real_ip`]).
    pub client: IpAddr,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The listener's port.
    pub port: &'a HeaderValue,
    /// `peer` as a header value.
    pub peer_value: &'a HeaderValue,
    /// The client's `Host` header, when it is `host` exactly (no port to strip).
    pub host_value: Option<&'a HeaderValue>,
    /// The `Host` the client sent (without port).
    pub host: &'a str,
    /// The request path as the client sent it (no query).
    pub path: &'a str,
    /// The part of the path the route matched and stripped, if any.
    pub prefix: Option<&'a str>,
}

/// The `Connection` tokens that name no header.
fn is_connection_option(token: &[u8]) -> bool {
    [&b"keep-alive"[..], b"close", b"upgrade"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether a `Connection` value names headers to remove (more than `keep-alive`, `close` or
/// `upgrade`).
pub fn names_more(value: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .any(|t| !t.is_empty() && !is_connection_option(t))
}

/// Removes hop-by-hop headers: those named in `Connection`, plus the fixed set
/// ([`Kind::is_hop_by_hop`]). One pass over the names finds which are there (usually none, or
/// `Connection: keep-alive`); only those are looked up again.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Each fixed name is a key once at most: seven at most are found.
    let mut found: [Option<HeaderName>; 7] = Default::default();
    let mut connection = false;
    for (slot, name) in found.iter_mut().zip(
        h.keys()
            .filter(|n| Kind::of(n.as_str().as_bytes()).is_hop_by_hop()),
    ) {
        connection |= *name == CONNECTION;
        *slot = Some(name.clone());
    }
    if found[0].is_none() {
        return;
    }
    // `Connection` may name more headers to remove; usually it only says `keep-alive` or
    // `close`, which needs no list.
    let lists_more = || {
        h.get_all(CONNECTION)
            .iter()
            .any(|v| names_more(v.as_bytes()))
    };
    if connection && lists_more() {
        let named: Vec<HeaderName> = h
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty() && !is_connection_option(n.as_bytes()))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named {
            h.remove(name);
        }
    }
    for name in found.into_iter().flatten() {
        h.remove(name);
    }
}

/// A number as a header value; those under 1,000 (latencies in milliseconds, statuses) come
/// from a table made once, so setting them allocates nothing.
pub fn number(n: u64) -> HeaderValue {
    static SMALL: std::sync::OnceLock<Box<[HeaderValue]>> = std::sync::OnceLock::new();
    let small = SMALL.get_or_init(|| {
        (0..1000u64)
            .map(|i| {
                let text: &'static str = Box::leak(i.to_string().into_boxed_str());
                HeaderValue::from_static(text)
            })
            .collect()
    });
    match usize::try_from(n).ok().and_then(|i| small.get(i)) {
        Some(v) => v.clone(),
        None => HeaderValue::from(n),
    }
}

/// An IP address as a header value, formatted without a heap string.
fn ip_value(ip: IpAddr) -> HeaderValue {
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut at = &mut buf[..];
    // 48 bytes hold any IPv6 text (45 at most), so the write cannot fail.
    let _ = write!(at, "{ip}");
    let len = 48 - at.len();
    HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("0.0.0.0"))
}

/// The headers the proxy sets on the upstream request in place of the client's of the same
/// names: `Host` and the `X-Forwarded-*` set with `X-Real-IP`. The proxy's own client writes
/// them while it encodes the request ([`Overlay::replaces`] tells which client headers to
/// leave out); hyper's clients get them set in the map ([`Overlay::apply`]).
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The upstream `Host`; none for HTTP/2, whose authority is in the URI.
    pub host: Option<HeaderValue>,
    /// By `FORWARDED` position: the value to send, if any.
    values: [Option<HeaderValue>; 7],
    /// By `FORWARDED` position (bit `1 << i`): the client's header is not sent.
    replaced: u8,
}

/// The `X-Forwarded-*` names and `X-Real-IP`, in the order they are written.
static FORWARDED: [&HeaderName; 7] = [
    &X_FORWARDED_FOR,
    &X_FORWARDED_PROTO,
    &X_FORWARDED_HOST,
    &X_FORWARDED_PORT,
    &X_FORWARDED_PATH,
    &X_FORWARDED_PREFIX,
    &X_REAL_IP,
];

impl Overlay {
    /// An overlay of a `Host` alone.
    pub fn host(host: HeaderValue) -> Overlay {
        Overlay {
            host: Some(host),
            values: Default::default(),
            replaced: 0,
        }
    }

    /// Whether the client's header `name` gives way to the overlay (is not sent).
    pub fn replaces(&self, name: &HeaderName) -> bool {
        if *name == HOST {
            return true;
        }
        // Every name of the set starts with `x-` and is 9 or 15 to 18 bytes long; most
        // headers are told apart by that.
        let text = name.as_str();
        if !matches!(text.len(), 9 | 15..=18) || !text.starts_with("x-") {
            return false;
        }
        FORWARDED
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.replaced & (1 << i) != 0)
    }

    /// The headers to send, `Host` first.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let host = self.host.as_ref().map(|v| (&HOST, v));
        let rest = FORWARDED
            .iter()
            .zip(&self.values)
            .filter_map(|(n, v)| Some((*n, v.as_ref()?)));
        host.into_iter().chain(rest)
    }

    /// Sets the overlay in `h`, for a client that sends a header map.
    pub fn apply(&self, h: &mut HeaderMap) {
        match &self.host {
            Some(host) => {
                h.insert(HOST, host.clone());
            }
            None => {
                h.remove(HOST);
            }
        }
        for (i, (name, value)) in FORWARDED.iter().zip(&self.values).enumerate() {
            if self.replaced & (1 << i) == 0 {
                continue;
            }
            match value {
                Some(v) => {
                    h.insert(*name, v.clone());
                }
                None => {
                    h.remove(*name);
                }
            }
        }
    }
}

/// Rewrites the client's headers into the upstream request's: hop-by-hop headers leave the
/// map; the headers set in place of the client's come back as an [`Overlay`] with `host`.
pub fn upstream_request(
    h: &mut HeaderMap,
    down: &Downstream<'_>,
    trusted: &Trusted,
    host: &str,
) -> Overlay {
    strip_hop_by_hop(h);
    let believed = trusted.contains(down.peer);
    // As nginx's `$proxy_add_x_forwarded_for` and `X-Real-IP: $remote_addr`, after realip.
    let client = match down.client == down.peer {
        true => down.peer_value.clone(),
        false => ip_value(down.client),
    };
    let forwarded_for = match h.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
        Some(prior) if !prior.is_empty() => {
            let mut joined = Vec::with_capacity(prior.len() + 2 + client.len());
            joined.extend_from_slice(prior);
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client.as_bytes());
            HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)).ok()
        }
        _ => Some(client.clone()),
    };
    let proto = match down.scheme {
        "https" => HeaderValue::from_static("https"),
        _ => HeaderValue::from_static("http"),
    };
    let forwarded_host = match down.host_value {
        Some(v) => Some(v.clone()),
        None => HeaderValue::from_str(down.host).ok(),
    };
    let prefix = down.prefix.and_then(|p| HeaderValue::from_str(p).ok());
    let mut overlay = Overlay {
        host: HeaderValue::from_str(host).ok(),
        values: [
            forwarded_for,
            Some(proto),
            forwarded_host,
            Some(down.port.clone()),
            HeaderValue::from_str(down.path).ok(),
            prefix,
            Some(client),
        ],
        // `X-Forwarded-For` and `X-Real-IP` are always the gateway's; the others are the
        // client's when it is trusted and sent them. An untrusted client's prefix is dropped
        // even when the route stripped none.
        replaced: 0b111_1111,
    };
    if believed {
        let values = overlay.values.iter_mut().enumerate();
        for ((i, value), name) in values.zip(FORWARDED).take(6).skip(1) {
            if h.contains_key(name) {
                overlay.replaced &= !(1 << i);
                *value = None;
            } else if value.is_none() {
                overlay.replaced &= !(1 << i);
            }
        }
    }
    overlay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_small_and_large() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1000");
        assert_eq!(number(u64::MAX), u64::MAX.to_string().as_str());
    }

    #[test]
    fn real_ip_comes_from_trusted_peers_only() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 10.0.0.5, 2.2.2.2"),
        );
        h.insert("x-real-ip", HeaderValue::from_static("3.3.3.3"));
        let none = Trusted::default();
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h, &none, "X-Real-IP", false),
            ip("10.0.0.1")
        );
        let lan = Trusted::parse(&["10.0.0.0/8".into()]);
        assert_eq!(
            real_ip(ip("8.8.8.8"), &h, &lan, "X-Real-IP", false),
            ip("8.8.8.8")
        );
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h, &lan, "X-Real-IP", false),
            ip("3.3.3.3")
        );
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h, &lan, "X-Forwarded-For", false),
            ip("2.2.2.2")
        );
        let mut h2 = HeaderMap::new();
        h2.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2, 10.0.0.5"),
        );
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h2, &lan, "X-Forwarded-For", true),
            ip("2.2.2.2"),
            "recursive: the last untrusted address"
        );
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h2, &lan, "X-Forwarded-For", false),
            ip("10.0.0.5")
        );
        h2.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(
            real_ip(ip("10.0.0.1"), &h2, &lan, "X-Forwarded-For", false),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_networks_match_by_prefix() {
        let t = Trusted::parse(&["10.0.0.0/8".into(), "::1".into(), "bad".into()]);
        assert!(t.contains("10.1.2.3".parse().expect("ip")));
        assert!(!t.contains("11.1.2.3".parse().expect("ip")));
        assert!(t.contains("::1".parse().expect("ip")));
        let all = Trusted::parse(&["0.0.0.0/0".into()]);
        assert!(all.contains("192.168.1.1".parse().expect("ip")));
    }

    /// A plain-HTTP request to `api.test:8000/a/b` from `peer` (also the client).
    fn downstream(peer: &'static str, prefix: Option<&'static str>) -> Downstream<'static> {
        static PORT: HeaderValue = HeaderValue::from_static("8000");
        Downstream {
            peer: peer.parse().expect("ip"),
            client: peer.parse().expect("ip"),
            scheme: "http",
            port: &PORT,
            peer_value: Box::leak(Box::new(HeaderValue::from_static(peer))),
            host_value: None,
            host: "api.test",
            path: "/a/b",
            prefix,
        }
    }

    #[test]
    fn untrusted_clients_cannot_spoof_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        let down = downstream("127.0.0.1", Some("/a"));
        let overlay = upstream_request(&mut h, &down, &Trusted::default(), "backend:8080");
        assert!(overlay.replaces(&HOST) && overlay.replaces(&X_FORWARDED_PROTO));
        // An untrusted client's own values of every name of the set give way.
        assert!(FORWARDED.iter().all(|n| overlay.replaces(n)));
        for other in [
            "x-other",
            "x-consumer-id",
            "x-forwarded-fo",
            "x-forwarded-forx",
        ] {
            assert!(
                !overlay.replaces(&HeaderName::from_static(other)),
                "{other}"
            );
        }
        let sent: Vec<_> = overlay.headers().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            sent,
            [
                "host",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "x-forwarded-port",
                "x-forwarded-path",
                "x-forwarded-prefix",
                "x-real-ip"
            ]
        );
        overlay.apply(&mut h);
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1");
        assert_eq!(h["x-forwarded-host"], "api.test");
        assert_eq!(h["x-forwarded-port"], "8000");
        assert_eq!(h["x-forwarded-path"], "/a/b");
        assert_eq!(h["x-forwarded-prefix"], "/a");
        assert_eq!(h["x-real-ip"], "127.0.0.1");
        assert_eq!(h["host"], "backend:8080");
        assert!(!h.contains_key("x-secret") && !h.contains_key("connection"));
    }

    #[test]
    fn trusted_clients_keep_their_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/outer"));
        let down = downstream("10.0.0.1", None);
        let lan = Trusted::parse(&["10.0.0.0/8".into()]);
        let overlay = upstream_request(&mut h, &down, &lan, "backend");
        assert!(!overlay.replaces(&X_FORWARDED_PROTO) && !overlay.replaces(&X_FORWARDED_PREFIX));
        assert!(overlay.replaces(&X_FORWARDED_FOR) && overlay.replaces(&X_FORWARDED_HOST));
        let sent: Vec<_> = overlay.headers().map(|(n, _)| n.as_str()).collect();
        assert!(!sent.contains(&"x-forwarded-proto") && !sent.contains(&"x-forwarded-prefix"));
        overlay.apply(&mut h);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-prefix"], "/outer");
        assert_eq!(h["x-forwarded-host"], "api.test");
        assert_eq!(h["host"], "backend");
    }
}
