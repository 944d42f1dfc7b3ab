//! `tcp-log` (priority 7): sends each request's log entry as a JSON line (`\n`-terminated) over
//! TCP to `host:port`, optionally over TLS (`tls`, with `tls_sni` as the server name; the
//! certificate is not verified, as in Kong).
//!
//! A background task owns the connection and keeps it open between entries for `keepalive`
//! milliseconds; each connect, handshake and write is bounded by `timeout`. A failed send is
//! tried once more on a fresh connection (a kept connection may have been closed by the
//! peer), then logged and dropped.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::log_sink::{self, CustomFields, Drops, Feed};
use super::udp_log::{host_port_fields, millis, Peer};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct TcpLog;

struct Instance {
    feed: Feed<Value>,
    custom: CustomFields,
}

impl Kind for TcpLog {
    fn name(&self) -> &'static str {
        "tcp-log"
    }

    fn priority(&self) -> i32 {
        7
    }

    fn schema(&self) -> PluginSchema {
        let mut fields = host_port_fields();
        fields.extend([
            (
                "timeout",
                Field::number()
                    .default(json!(10000))
                    .describe("An optional timeout in milliseconds when sending data to the upstream server."),
            ),
            (
                "keepalive",
                Field::number()
                    .default(json!(60000))
                    .describe("An optional value in milliseconds that defines how long an idle connection lives before being closed."),
            ),
            (
                "tls",
                Field::boolean()
                    .required()
                    .default(json!(false))
                    .describe("Indicates whether to perform a TLS handshake against the remote server."),
            ),
            (
                "tls_sni",
                Field::string().describe("An optional string that defines the SNI (Server Name Indication) hostname to send in the TLS handshake."),
            ),
            ("custom_fields_by_lua", log_sink::custom_fields_field()),
        ]);
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
        let tls = config
            .get("tls")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then(|| tls_target(&peer, config.get("tls_sni").and_then(Value::as_str)))
            .transpose()?;
        let sender = Sender {
            keepalive: millis(config, "keepalive", 60_000),
            peer,
            tls,
            conn: None,
        };
        let drops = Drops::new(self.name(), env.metrics.clone());
        let feed = Feed::start(log_sink::DEFAULT_CAPACITY, drops.clone(), move |rx| {
            send_loop(rx, sender, drops)
        });
        Ok(Arc::new(Instance {
            feed,
            custom: CustomFields::of(self.name(), config),
        }))
    }
}

/// How to shake hands: the connector and the server name.
type TlsTarget = (TlsConnector, rustls::pki_types::ServerName<'static>);

/// With `sni`, that name is sent; without, none is (Kong passes no server name then).
fn tls_target(peer: &Peer, sni: Option<&str>) -> Result<TlsTarget, String> {
    let mut config = crate::proxy::upstream::unverified_client_config();
    let name = match sni {
        Some(sni) => sni.to_owned(),
        None => {
            config.enable_sni = false;
            peer.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        }
    };
    let name = rustls::pki_types::ServerName::try_from(name)
        .map_err(|e| format!("invalid TLS server name: {e}"))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Whether the peer is still there: a log sink never speaks, so anything readable (data,
    /// a TLS close, the end of the stream) means the connection is done.
    fn alive(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.tcp().try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

struct Sender {
    peer: Peer,
    keepalive: Duration,
    tls: Option<TlsTarget>,
    conn: Option<(Stream, Instant)>,
}

impl Sender {
    async fn connect(&self) -> std::io::Result<Stream> {
        let t = self.peer.timeout;
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout");
        let addrs = self.peer.resolve().await?;
        let tcp = timeout(t, TcpStream::connect(&addrs[..]))
            .await
            .map_err(|_| timed_out())??;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => {
                let tls = timeout(t, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timed_out())??;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let kept = self
            .conn
            .take()
            .filter(|(s, used)| used.elapsed() < self.keepalive && s.alive());
        let reused = kept.is_some();
        let mut stream = match kept {
            Some((s, _)) => s,
            None => self.connect().await?,
        };
        let t = self.peer.timeout;
        let mut result = timeout(t, stream.write_all(bytes)).await;
        if reused && !matches!(result, Ok(Ok(()))) {
            stream = self.connect().await?;
            result = timeout(t, stream.write_all(bytes)).await;
        }
        match result {
            Ok(Ok(())) => {
                if !self.keepalive.is_zero() {
                    self.conn = Some((stream, Instant::now()));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")),
        }
    }
}

async fn send_loop(mut rx: mpsc::Receiver<Value>, mut sender: Sender, drops: Arc<Drops>) {
    while let Some(batch) = log_sink::next_batch(&mut rx, 256).await {
        let n = batch.len() as u64;
        let mut buf = Vec::with_capacity(batch.len() * 1024);
        for entry in batch {
            if serde_json::to_writer(&mut buf, &entry).is_ok() {
                buf.push(b'\n');
            }
        }
        match sender.send(&buf).await {
            Ok(()) => drops.resumed(),
            Err(e) => {
                tracing::error!(plugin = "tcp-log", host = %sender.peer.host, port = sender.peer.port, error = %e, "failed to send data");
                drops.dropped(n, "failed to send data");
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
