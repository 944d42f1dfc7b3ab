//! Choosing where one request goes, try by try: a service's IP, its host name through the DNS
//! cache (per-request round-robin over the records), or its upstream's balancer (which may pick
//! another address for a retry). Outcomes feed the passive health checks and the latency EWMA.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

use super::hash::xxh32;
use super::health::{InFlight, Report};
use super::layout::{Layout, NoPeer, Tried};
use super::spec::{Algorithm, HashOn, UpstreamSpec};
use super::Upstream;
use crate::dns::{Answer, Dns, Failure, Name};

/// How a service reaches its upstream, decided when the snapshot is built.
#[derive(Debug, Clone)]
pub enum ServiceRoute {
    /// An IP address.
    Ip(Arc<str>),
    /// A host name, resolved through the DNS cache.
    Name(Arc<Name>),
    /// An upstream entity's balancer.
    Upstream(Arc<Upstream>),
}

impl ServiceRoute {
    /// The upstream's hashing settings, when the route balances and hashes.
    pub fn spec(&self) -> Option<Arc<UpstreamSpec>> {
        match self {
            ServiceRoute::Upstream(u) => Some(u.layout().spec.clone()),
            _ => None,
        }
    }
}

/// Why no peer could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The balancer has no healthy address (Kong: 503).
    #[error("failure to get a peer from the ring-balancer")]
    NoPeer,
    /// The host name does not exist or has no records (Kong: 503).
    #[error("name resolution failed")]
    NameResolution,
    /// The DNS servers failed (Kong: 500 with the message).
    #[error("{0}")]
    Dns(String),
}

/// What a request offers to hash on.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// The authenticated consumer's id, else the credential's.
    pub consumer: Option<&'a str>,
    /// The client address.
    pub ip: IpAddr,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The normalized path.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The values of the `hash_on_uri_capture` and `hash_fallback_uri_capture` groups.
    pub captures: [Option<&'a str>; 2],
}

/// The value a request hashes to (Kong's `get_value_to_hash`), and the cookie to set when the
/// hashing cookie was missing. Borrowed from the request whenever it can be.
pub fn hash_value<'a>(
    spec: &UpstreamSpec,
    input: &HashInput<'a>,
) -> (Option<Cow<'a, str>>, Option<String>) {
    let mut cookie = None;
    for (n, on) in [&spec.hash_on, &spec.hash_fallback].into_iter().enumerate() {
        let value: Option<Cow<'a, str>> = match on {
            HashOn::None => return (None, cookie),
            HashOn::Consumer => input.consumer.map(Cow::Borrowed),
            HashOn::Ip => Some(Cow::Owned(input.ip.to_string())),
            HashOn::Header(name) => {
                let mut values = input
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                match (values.next(), values.next()) {
                    (None, _) => None,
                    (Some(one), None) => Some(Cow::Borrowed(one)),
                    // nginx joins repeated headers with ", ".
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first}, {second}");
                        for v in values {
                            joined.push_str(", ");
                            joined.push_str(v);
                        }
                        Some(Cow::Owned(joined))
                    }
                }
            }
            HashOn::Cookie(name) => match cookie_value(input.headers, name) {
                Some(v) => Some(Cow::Borrowed(v)),
                None => {
                    let fresh = uuid::Uuid::new_v4().to_string();
                    cookie = Some(format!(
                        "{name}={fresh}; Path={}; Same-Site=Lax; HttpOnly",
                        spec.hash_on_cookie_path
                    ));
                    Some(Cow::Owned(fresh))
                }
            },
            HashOn::Path => Some(Cow::Borrowed(input.path)),
            HashOn::QueryArg(arg) => input.query.and_then(|q| query_arg(q, arg)).map(Cow::Owned),
            HashOn::UriCapture(_) => input.captures[n].map(Cow::Borrowed),
        };
        if value.is_some() {
            return (value, cookie);
        }
    }
    (None, cookie)
}

/// The value of cookie `name` in the `Cookie` headers.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A query argument as nginx gives it to Kong: values sorted and joined with `,`; a bare key
/// is `true`.
fn query_arg(query: &str, name: &str) -> Option<String> {
    let mut values: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        let k: String = form_urlencoded::parse(format!("{k}=").as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if k != name {
            continue;
        }
        values.push(match v {
            None => "true".to_owned(),
            Some(v) => form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        });
    }
    values.sort();
    (!values.is_empty()).then(|| values.join(","))
}

enum Via {
    Fixed {
        host: Arc<str>,
        port: u16,
    },
    Name {
        answer: Arc<Answer>,
        name: Arc<Name>,
        host: Arc<str>,
        port: u16,
        n: usize,
    },
    Balanced {
        layout: Arc<Layout>,
        current: Option<usize>,
    },
}

/// The peers of one request.
pub struct Peers {
    via: Via,
    hash: u32,
    tried: Tried,
    in_flight: Option<InFlight>,
    /// When the current try started (latency algorithm only: reading the clock is not free).
    started: Option<Instant>,
    cookie: Option<String>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").finish_non_exhaustive()
    }
}

/// The peer of the current try.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'a> {
    /// The address connected to (an IP, or the host name when it is one).
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// The name the upstream `Host` and TLS server name are built from.
    pub hostname: &'a str,
}

impl Peers {
    /// Peers for a request to `route` (service `host` and `port`), hashing `input` when the
    /// upstream hashes; resolves a cold name now.
    pub async fn start(
        route: &ServiceRoute,
        host: &str,
        port: u16,
        dns: &Arc<Dns>,
        input: &HashInput<'_>,
    ) -> Result<Peers, PeerError> {
        let mut cookie = None;
        let mut hash = 0;
        let via = match route {
            ServiceRoute::Ip(ip) => Via::Fixed {
                host: ip.clone(),
                port,
            },
            ServiceRoute::Name(name) => {
                let answer = dns.answer(name).await;
                match &answer.failure {
                    Some(Failure::NotFound(_)) => return Err(PeerError::NameResolution),
                    Some(Failure::Failed(m)) => return Err(PeerError::Dns(m.clone())),
                    None if answer.records.is_empty() => return Err(PeerError::NameResolution),
                    None => {}
                }
                Via::Name {
                    answer,
                    name: name.clone(),
                    host: Arc::from(host),
                    port,
                    n: 0,
                }
            }
            ServiceRoute::Upstream(u) => {
                let layout = u.layout();
                if layout.spec.algorithm == Algorithm::ConsistentHashing {
                    let (value, set) = hash_value(&layout.spec, input);
                    hash = xxh32(value.as_deref().unwrap_or_default().as_bytes());
                    cookie = set;
                }
                Via::Balanced {
                    layout,
                    current: None,
                }
            }
        };
        Ok(Peers {
            via,
            hash,
            tried: Tried::default(),
            in_flight: None,
            started: None,
            cookie,
        })
    }

    /// Picks the peer of the next try (another address of the balancer when it has one).
    pub fn pick(&mut self) -> Result<(), PeerError> {
        match &mut self.via {
            Via::Fixed { .. } => Ok(()),
            Via::Name { name, n, .. } => {
                *n = name.next();
                Ok(())
            }
            Via::Balanced { layout, current } => {
                if let Some(prev) = current.take() {
                    self.tried.add(prev);
                }
                self.in_flight = None;
                let now = if layout.spec.algorithm == Algorithm::Latency {
                    let at = Instant::now();
                    self.started = Some(at);
                    super::health::micros_at(at)
                } else {
                    0
                };
                let i = layout
                    .pick_at(self.hash, &self.tried, now)
                    .map_err(|e| match e {
                        NoPeer::Unhealthy | NoPeer::Exhausted => PeerError::NoPeer,
                    })?;
                *current = Some(i);
                if layout.spec.algorithm == Algorithm::LeastConnections {
                    self.in_flight = Some(layout.addresses[i].state.enter());
                }
                Ok(())
            }
        }
    }

    /// The peer of the current try ([`Peers::pick`] picks it).
    pub fn chosen(&self) -> Chosen<'_> {
        match &self.via {
            Via::Fixed { host, port } => Chosen {
                host,
                port: *port,
                hostname: host,
            },
            Via::Name {
                answer,
                host,
                port,
                n,
                ..
            } => match answer.pick(*n) {
                Some(r) => Chosen {
                    host: &r.ip_text,
                    port: r.port.unwrap_or(*port),
                    hostname: host,
                },
                None => Chosen {
                    host,
                    port: *port,
                    hostname: host,
                },
            },
            Via::Balanced { layout, current } => {
                let a = &layout.addresses[current
                    .unwrap_or(0)
                    .min(layout.addresses.len().saturating_sub(1))];
                Chosen {
                    host: &a.ip_text,
                    port: a.port,
                    hostname: layout.spec.host_header.as_deref().unwrap_or(&a.hostname),
                }
            }
        }
    }

    /// Whether the peer comes from a balancer (its `Host` may change between tries).
    pub fn balanced(&self) -> bool {
        matches!(self.via, Via::Balanced { .. })
    }

    fn report(&self, report: Report) {
        if let Via::Balanced {
            layout,
            current: Some(i),
        } = &self.via
        {
            let a = &layout.addresses[*i];
            if let Some(state) = a.state.report(report, &layout.spec.checks.passive.limits) {
                tracing::warn!(
                    upstream = %layout.spec.name, address = %format!("{}:{}", a.ip_text, a.port),
                    "[healthchecks] passive check ({report:?}): target is now {state:?}"
                );
            }
        }
    }

    /// The try failed: a timeout, or a TCP-level failure (refused, reset, TLS).
    pub fn failed(&mut self, timeout: bool) {
        self.report(if timeout {
            Report::Timeout
        } else {
            Report::TcpFailure
        });
    }

    /// The try got a response head with `status`.
    pub fn answered(&mut self, status: u16) {
        if let Via::Balanced {
            layout,
            current: Some(i),
        } = &self.via
        {
            let passive = &layout.spec.checks.passive;
            if let Some(r) = Report::of_status(
                status,
                &passive.healthy_statuses,
                &passive.unhealthy_statuses,
            ) {
                self.report(r);
            }
            if let Some(started) = self.started {
                layout.addresses[*i]
                    .state
                    .record(started.elapsed().as_secs_f64());
            }
        }
    }

    /// The in-flight mark of the chosen address (least-connections), to hold until the
    /// response is over.
    pub fn take_in_flight(&mut self) -> Option<InFlight> {
        self.in_flight.take()
    }

    /// The `Set-Cookie` value to add to the response (cookie hashing, cookie absent).
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> UpstreamSpec {
        match v {
            serde_json::Value::Object(m) => UpstreamSpec::read(&m),
            _ => UpstreamSpec::read(&Default::default()),
        }
    }

    fn input<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> HashInput<'a> {
        HashInput {
            consumer: None,
            ip: "10.1.1.1".parse().expect("ip"),
            headers,
            path: "/p",
            query,
            captures: [None, Some("cap")],
        }
    }

    #[test]
    fn header_then_fallback() {
        let s = spec(json!({"hash_on": "header", "hash_on_header": "x-a", "hash_fallback": "ip"}));
        let mut h = HeaderMap::new();
        assert_eq!(
            hash_value(&s, &input(&h, None)).0.as_deref(),
            Some("10.1.1.1")
        );
        h.append("x-a", "1".parse().expect("v"));
        h.append("x-a", "2".parse().expect("v"));
        assert_eq!(hash_value(&s, &input(&h, None)).0.as_deref(), Some("1, 2"));
    }

    #[test]
    fn cookie_is_read_or_made() {
        let s = spec(
            json!({"hash_on": "cookie", "hash_on_cookie": "sticky", "hash_on_cookie_path": "/x"}),
        );
        let mut h = HeaderMap::new();
        let (v, set) = hash_value(&s, &input(&h, None));
        let set = set.expect("cookie set");
        assert!(set.starts_with(&format!(
            "sticky={}; Path=/x; Same-Site=Lax; HttpOnly",
            v.expect("value")
        )));
        h.insert(http::header::COOKIE, "a=1; sticky=abc".parse().expect("v"));
        let (v, set) = hash_value(&s, &input(&h, None));
        assert_eq!((v.as_deref(), set), (Some("abc"), None));
    }

    #[test]
    fn query_args_and_captures() {
        let s = spec(json!({"hash_on": "query_arg", "hash_on_query_arg": "k",
            "hash_fallback": "uri_capture", "hash_fallback_uri_capture": "g"}));
        let h = HeaderMap::new();
        assert_eq!(
            hash_value(&s, &input(&h, Some("k=b&k=a&x"))).0.as_deref(),
            Some("a,b")
        );
        assert_eq!(
            hash_value(&s, &input(&h, Some("k"))).0.as_deref(),
            Some("true")
        );
        assert_eq!(
            hash_value(&s, &input(&h, Some("z=1"))).0.as_deref(),
            Some("cap")
        );
    }
}
