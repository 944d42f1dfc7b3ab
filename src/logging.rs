//! Logs: the error log (through `tracing`) and the access logs (written directly, off the
//! request path through a non-blocking writer).
//!
//! Targets are `off`, `/dev/stdout`, `/dev/stderr` or a file under the prefix. `kong reload`
//! reopens files (so log rotation works) and applies a new `log_level` without a restart.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tracing::Level;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::config::{Config, LogLevel, LogTarget};

/// Where log lines go.
#[derive(Clone)]
pub enum Sink {
    /// Discard.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, through a background writer thread.
    File(NonBlocking),
}

impl Sink {
    /// Opens `target`; the returned guard flushes the writer when dropped.
    pub fn open(target: &LogTarget) -> std::io::Result<(Sink, Option<WorkerGuard>)> {
        Ok(match target {
            LogTarget::Off => (Sink::Off, None),
            LogTarget::Stdout => (Sink::Stdout, None),
            LogTarget::Stderr => (Sink::Stderr, None),
            LogTarget::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let (nb, guard) = NonBlockingBuilder::default()
                    .lossy(true)
                    .buffered_lines_limit(64 * 1024)
                    .finish(file);
                (Sink::File(nb), Some(guard))
            }
        })
    }

    /// Writes one complete line (the caller includes the newline).
    pub fn write_line(&self, line: &[u8]) {
        let _ = match self {
            Sink::Off => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(line),
            Sink::Stderr => std::io::stderr().lock().write_all(line),
            Sink::File(nb) => nb.clone().write_all(line),
        };
    }
}

/// The error log's current level, readable without locking.
static LEVEL: AtomicU8 = AtomicU8::new(2);
/// The Kong level in force (an index into [`LogLevel::ALL`]).
static KONG_LEVEL: AtomicU8 = AtomicU8::new(2);

/// Changes the error log's level at once (the Admin API's `/debug/node/log-level`).
pub fn set_level(level: LogLevel) {
    LEVEL.store(level_index(to_tracing(level)), Ordering::Relaxed);
    let index = LogLevel::ALL.iter().position(|l| *l == level).unwrap_or(2);
    KONG_LEVEL.store(index as u8, Ordering::Relaxed);
}

/// The level in force.
pub fn current_level() -> LogLevel {
    LogLevel::ALL
        .get(usize::from(KONG_LEVEL.load(Ordering::Relaxed)))
        .copied()
        .unwrap_or(LogLevel::Notice)
}

fn to_tracing(level: LogLevel) -> Level {
    match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info | LogLevel::Notice => Level::INFO,
        LogLevel::Warn => Level::WARN,
        _ => Level::ERROR,
    }
}

fn level_index(level: Level) -> u8 {
    match level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// A `MakeWriter` whose destination can be swapped while the subscriber stays installed.
#[derive(Clone)]
struct SwapWriter(Arc<ArcSwap<Sink>>);

/// A writer for one event.
pub struct SinkWriter(Arc<Sink>);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SwapWriter {
    type Writer = SinkWriter;
    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter(self.0.load_full())
    }
}

/// The installed error log; keep it alive for the life of the process.
pub struct ErrorLog {
    sink: Arc<ArcSwap<Sink>>,
    guard: Mutex<Option<WorkerGuard>>,
}

impl ErrorLog {
    /// Installs the global subscriber writing to `config.proxy_error_log`.
    pub fn install(config: &Config) -> std::io::Result<ErrorLog> {
        let (sink, guard) = Sink::open(&config.proxy_error_log)?;
        let sink = Arc::new(ArcSwap::from_pointee(sink));
        set_level(config.log_level);
        let writer = SwapWriter(sink.clone());
        let filter = tracing_subscriber::filter::filter_fn(|meta| {
            level_index(*meta.level()) >= LEVEL.load(Ordering::Relaxed)
        });
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_target(false);
        let layer = if config.log_json {
            fmt.json().flatten_event(true).with_filter(filter).boxed()
        } else {
            fmt.with_filter(filter).boxed()
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        // A second install (tests running the node in-process) keeps the first subscriber.
        let _ = tracing::subscriber::set_global_default(subscriber);
        Ok(ErrorLog {
            sink,
            guard: Mutex::new(guard),
        })
    }

    /// Applies a reloaded configuration: new level, reopened file.
    pub fn reload(&self, config: &Config) -> std::io::Result<()> {
        let (sink, guard) = Sink::open(&config.proxy_error_log)?;
        self.sink.store(Arc::new(sink));
        if let Ok(mut g) = self.guard.lock() {
            *g = guard;
        }
        set_level(config.log_level);
        Ok(())
    }
}

/// An access log: one line per request in nginx's `combined` format, or JSON.
pub struct AccessLog {
    sink: Sink,
    json: bool,
    _guard: Option<WorkerGuard>,
}

/// What one access-log line records.
pub struct AccessEntry<'a> {
    /// Client address.
    pub remote_addr: std::net::IpAddr,
    /// Request method.
    pub method: &'a str,
    /// Request target as received.
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub version: &'a str,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// `Referer` header.
    pub referer: Option<&'a str>,
    /// `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// Request id.
    pub request_id: &'a str,
    /// Total time in milliseconds.
    pub latency_ms: u64,
}

impl AccessLog {
    /// Opens the log at `target`.
    pub fn open(target: &LogTarget, json: bool) -> std::io::Result<AccessLog> {
        let (sink, guard) = Sink::open(target)?;
        Ok(AccessLog {
            sink,
            json,
            _guard: guard,
        })
    }

    /// Whether lines are discarded (callers can skip collecting fields).
    pub fn is_off(&self) -> bool {
        matches!(self.sink, Sink::Off)
    }

    /// Writes one line for `e`.
    pub fn log(&self, e: &AccessEntry<'_>) {
        if self.is_off() {
            return;
        }
        let now = time::OffsetDateTime::now_utc();
        let line = if self.json {
            let mut s = serde_json::json!({
                "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "remote_addr": e.remote_addr.to_string(),
                "method": e.method,
                "uri": e.uri,
                "protocol": e.version,
                "status": e.status,
                "bytes_sent": e.bytes_sent,
                "referer": e.referer,
                "user_agent": e.user_agent,
                "request_id": e.request_id,
                "latency_ms": e.latency_ms,
            })
            .to_string();
            s.push('\n');
            s
        } else {
            let stamp = now
                .format(time::macros::format_description!(
                    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
                ))
                .unwrap_or_default();
            format!(
                "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
                e.remote_addr,
                stamp,
                e.method,
                e.uri,
                e.version,
                e.status,
                e.bytes_sent,
                escape(e.referer.unwrap_or("-")),
                escape(e.user_agent.unwrap_or("-")),
            )
        };
        self.sink.write_line(line.as_bytes());
    }
}

/// Escapes quotes and control bytes the way nginx does in access logs.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes()
        .all(|b| b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b))
    {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_like_nginx() {
        assert_eq!(super::escape("curl/8"), "curl/8");
        assert_eq!(super::escape("a\"b\n"), "a\\x22b\\x0A");
    }
}
