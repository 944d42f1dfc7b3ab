//! `udp-log` (priority 8): sends each request's log entry as one JSON datagram to
//! `host:port`. A background task sends them; a send that fails or takes longer than `timeout`
//! milliseconds is logged and the entry dropped (UDP has no retry).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::log_sink::{self, CustomFields, Drops, Feed};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{typedefs, Doc, Field, PluginSchema, Record};

/// The kind.
pub struct UdpLog;

struct Instance {
    feed: Feed<Value>,
    custom: CustomFields,
}

/// Where a network logger sends: host, port and its I/O timeout.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Timeout of each network operation.
    pub timeout: Duration,
}

impl Peer {
    /// `host`, `port` and `timeout` (milliseconds, default 10 s) of `config`.
    pub fn of(config: &Doc) -> Result<Peer, String> {
        let host = config
            .get("host")
            .and_then(Value::as_str)
            .ok_or("host is required")?
            .to_owned();
        let port = config
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("port is required")?;
        Ok(Peer {
            host,
            port,
            timeout: millis(config, "timeout", 10_000),
        })
    }

    /// The peer's addresses (resolved now; an IP needs no lookup).
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        Ok(tokio::net::lookup_host((host, self.port)).await?.collect())
    }
}

/// A duration in milliseconds from a number field (Kong's timeouts are `number`s).
pub fn millis(config: &Doc, field: &str, default: u64) -> Duration {
    let ms = config
        .get(field)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(default as f64);
    Duration::from_secs_f64(ms / 1000.0)
}

/// `host` and `port` as Kong's typedefs define them.
pub fn host_port_fields() -> Vec<(&'static str, Field)> {
    vec![
        (
            "host",
            Field::string()
                .required()
                .custom("host", typedefs::host)
                .describe("The IP address or host name to send data to."),
        ),
        (
            "port",
            Field::integer()
                .required()
                .between(0.0, 65535.0)
                .describe("The port to send data to on the upstream server."),
        ),
    ]
}

impl Kind for UdpLog {
    fn name(&self) -> &'static str {
        "udp-log"
    }

    fn priority(&self) -> i32 {
        8
    }

    fn schema(&self) -> PluginSchema {
        let mut fields = host_port_fields();
        fields.push((
            "timeout",
            Field::number().default(json!(10000)).describe(
                "An optional timeout in milliseconds when sending data to the upstream server.",
            ),
        ));
        fields.push(("custom_fields_by_lua", log_sink::custom_fields_field()));
        PluginSchema {
            name: self.name().into(),
            config: Record::new(fields),
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let peer = Peer::of(config)?;
        let drops = Drops::new(self.name(), env.metrics.clone());
        let feed = Feed::start(log_sink::DEFAULT_CAPACITY, drops.clone(), move |rx| {
            send_loop(rx, peer, drops)
        });
        Ok(Arc::new(Instance {
            feed,
            custom: CustomFields::of(self.name(), config),
        }))
    }
}

async fn send_one(
    socket: &mut Option<UdpSocket>,
    peer: &Peer,
    bytes: &[u8],
) -> std::io::Result<()> {
    let sock = match socket {
        Some(s) => s,
        None => {
            let addr = peer
                .resolve()
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| std::io::Error::other("host did not resolve"))?;
            let local: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let s = UdpSocket::bind(local).await?;
            s.connect(addr).await?;
            socket.insert(s)
        }
    };
    sock.send(bytes).await.map(|_| ())
}

async fn send_loop(mut rx: mpsc::Receiver<Value>, peer: Peer, drops: Arc<Drops>) {
    let mut socket: Option<UdpSocket> = None;
    let mut resolved_at = tokio::time::Instant::now();
    while let Some(entry) = rx.recv().await {
        // Names are resolved again now and then, as Kong's DNS cache expires.
        if resolved_at.elapsed() > Duration::from_secs(30) {
            socket = None;
            resolved_at = tokio::time::Instant::now();
        }
        let bytes = entry.to_string();
        let sent =
            tokio::time::timeout(peer.timeout, send_one(&mut socket, &peer, bytes.as_bytes()))
                .await;
        match sent {
            Ok(Ok(())) => drops.resumed(),
            Ok(Err(e)) => {
                tracing::error!(plugin = "udp-log", host = %peer.host, port = peer.port, error = %e, "could not send data");
                socket = None;
                drops.dropped(1, "could not send data");
            }
            Err(_) => {
                tracing::error!(plugin = "udp-log", host = %peer.host, port = peer.port, "timeout sending data");
                drops.dropped(1, "timeout sending data");
            }
        }
    }
}

impl Plugin for Instance {
    fn log(&self, ctx: &Ctx) {
        let mut entry = ctx.serialize();
        self.custom.apply(&mut entry);
        self.feed.push(entry);
    }

    fn logs(&self) -> bool {
        true
    }
}
