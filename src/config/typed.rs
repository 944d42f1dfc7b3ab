//! The validated, typed configuration the node runs with, built from merged raw values.
//!
//! Every problem is collected (not just the first) and names the key, the value, the reason and
//! where the value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::listen::{parse_listeners, Listen};
use super::parse::Source;
use super::properties::{self, Kind};

/// A raw value with its origin.
#[derive(Debug, Clone)]
pub struct RawValue {
    /// The value; `None` or empty means unset.
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// Merged raw values, keyed by canonical property name.
pub type RawMap = BTreeMap<String, RawValue>;

/// Verbosity of the error log, in Kong's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Informational messages.
    Info,
    /// Normal but significant events (Kong's default).
    Notice,
    /// Warnings.
    Warn,
    /// Errors.
    Error,
    /// Critical conditions.
    Crit,
    /// Action must be taken immediately.
    Alert,
    /// The node is unusable.
    Emerg,
}

impl LogLevel {
    /// Parses Kong's level names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "notice" => Self::Notice,
            "warn" => Self::Warn,
            "error" => Self::Error,
            "crit" => Self::Crit,
            "alert" => Self::Alert,
            "emerg" => Self::Emerg,
            _ => return None,
        })
    }

    /// Kong's name for the level.
    pub fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Crit => "crit",
            Self::Alert => "alert",
            Self::Emerg => "emerg",
        }
    }

    /// Every level, most verbose first.
    pub const ALL: [LogLevel; 8] = [
        Self::Debug,
        Self::Info,
        Self::Notice,
        Self::Warn,
        Self::Error,
        Self::Crit,
        Self::Alert,
        Self::Emerg,
    ];
}

/// Which datastore backs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// The embedded SQLite file inside the prefix (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// DB-less: entities come from a declarative file or `POST /config`.
    Off,
}

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Disabled.
    Off,
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A file (absolute; relative paths are resolved against the prefix).
    File(PathBuf),
}

/// PostgreSQL connection settings (`pg_*`, or `pg_ro_*` with inheritance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connect/read/write timeout in milliseconds.
    pub timeout_ms: u64,
    /// User name.
    pub user: String,
    /// Password, if any.
    pub password: Option<String>,
    /// Database name.
    pub database: String,
    /// Schema, if not `public`.
    pub schema: Option<String>,
    /// Use TLS.
    pub ssl: bool,
    /// Verify the server certificate.
    pub ssl_verify: bool,
    /// Maximum concurrent queries (0 = unlimited).
    pub max_concurrent_queries: u32,
    /// Maximum pool size, when set.
    pub pool_size: Option<u32>,
}

/// Which response headers the node adds (`headers` property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers {
    /// `Server`.
    pub server: bool,
    /// `Via`.
    pub via: bool,
    /// `X-Kong-Proxy-Latency`.
    pub proxy_latency: bool,
    /// `X-Kong-Response-Latency`.
    pub response_latency: bool,
    /// `X-Kong-Upstream-Latency`.
    pub upstream_latency: bool,
    /// `X-Kong-Admin-Latency`.
    pub admin_latency: bool,
    /// `X-Kong-Upstream-Status`.
    pub upstream_status: bool,
    /// `X-Kong-Request-Id`.
    pub request_id: bool,
}

/// What a client may take to send one request on one kind of listener: nginx's
/// `client_header_timeout`, `client_body_timeout` and `large_client_header_buffers`, plus the
/// header count (`lua_max_req_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest wait for a whole request head, idle keep-alive time included. When it passes the
    /// connection is closed without an answer, as nginx does.
    pub header_timeout: Duration,
    /// Longest pause between two reads of a buffered request body; then 408.
    pub body_timeout: Duration,
    /// Longest request line (else 414) or header line (else 400), in bytes: one buffer.
    pub header_line: usize,
    /// Largest request head in bytes: all buffers together (else 400).
    pub header_total: usize,
    /// Most headers one request may carry (else 400).
    pub max_headers: usize,
}

impl Default for ClientLimits {
    /// nginx's and Kong's defaults: 60 s, 60 s, `4 8k`, 100 headers.
    fn default() -> Self {
        ClientLimits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            header_line: 8 << 10,
            header_total: 4 * (8 << 10),
            max_headers: 100,
        }
    }
}

/// The node's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Working directory for pid, logs, certificates and the SQLite file.
    pub prefix: PathBuf,
    /// Error-log verbosity.
    pub log_level: LogLevel,
    /// Write logs as JSON lines instead of text.
    pub log_json: bool,
    /// Proxy access log.
    pub proxy_access_log: LogTarget,
    /// Error log (proxy and node).
    pub proxy_error_log: LogTarget,
    /// Admin API access log.
    pub admin_access_log: LogTarget,
    /// Status API access log.
    pub status_access_log: LogTarget,
    /// Proxy listeners.
    pub proxy_listen: Vec<Listen>,
    /// Stream (TCP/TLS/UDP) listeners.
    pub stream_listen: Vec<Listen>,
    /// Admin API listeners.
    pub admin_listen: Vec<Listen>,
    /// Status API listeners.
    pub status_listen: Vec<Listen>,
    /// Datastore kind.
    pub database: Database,
    /// SQLite file (absolute).
    pub sqlite_path: PathBuf,
    /// Declarative configuration file for `database = off`.
    pub declarative_config: Option<PathBuf>,
    /// Inline declarative configuration for `database = off`.
    pub declarative_config_string: Option<String>,
    /// Primary PostgreSQL connection.
    pub pg: PgConfig,
    /// Read-only replica, when `pg_ro_host` is set.
    pub pg_ro: Option<PgConfig>,
    /// Enabled plugin names as configured (`bundled` not yet expanded).
    pub plugins: Vec<String>,
    /// Response headers to add.
    pub headers: Headers,
    /// Send `X-Kong-Request-Id` upstream.
    pub headers_upstream_request_id: bool,
    /// Trusted client addresses (CIDRs) for `X-Forwarded-*` and real-IP headers.
    pub trusted_ips: Vec<String>,
    /// Header carrying the real client address.
    pub real_ip_header: String,
    /// Recursive real-IP search.
    pub real_ip_recursive: bool,
    /// Default certificates (paths or PEM) for proxy ssl listeners.
    pub ssl_cert: Vec<String>,
    /// Keys for `ssl_cert`.
    pub ssl_cert_key: Vec<String>,
    /// Certificates for admin ssl listeners.
    pub admin_ssl_cert: Vec<String>,
    /// Keys for `admin_ssl_cert`.
    pub admin_ssl_cert_key: Vec<String>,
    /// Certificates for status ssl listeners.
    pub status_ssl_cert: Vec<String>,
    /// Keys for `status_ssl_cert`.
    pub status_ssl_cert_key: Vec<String>,
    /// Detach from the terminal on `kong start` (`nginx_daemon`).
    pub daemon: bool,
    /// Worker threads; `None` = one per CPU (`auto`).
    pub worker_threads: Option<usize>,
    /// Maximum proxied request body, bytes (0 = unlimited).
    pub client_max_body_size: u64,
    /// Maximum Admin API request body, bytes (0 = unlimited).
    pub admin_client_max_body_size: u64,
    /// Client timeouts and head sizes on proxy listeners.
    pub proxy_client: ClientLimits,
    /// Client timeouts and head sizes on Admin API listeners.
    pub admin_client: ClientLimits,
    /// Client timeouts and head sizes on Status API listeners.
    pub status_client: ClientLimits,
    /// Media type of node-generated errors when the client sent neither Accept nor Content-Type.
    pub error_default_type: String,
    /// Idle upstream connections kept per pool (0 disables keep-alive).
    pub upstream_keepalive_pool_size: u32,
    /// Requests per upstream connection before it is closed.
    pub upstream_keepalive_max_requests: u32,
    /// Seconds an idle upstream connection is kept.
    pub upstream_keepalive_idle_timeout: u64,
    /// CA bundles trusted for upstream TLS verification (`system` = the OS bundle).
    pub lua_ssl_trusted_certificate: Vec<String>,
    /// Name resolution (`dns_*`).
    pub dns: DnsConfig,
    /// Fixed node id, when configured.
    pub node_id: Option<uuid::Uuid>,
    /// Router flavor.
    pub router_flavor: String,
    /// Node role.
    pub role: String,
    /// Every property's final raw value (unset ones as `None`), for `.kong_env` and `GET /`.
    pub raw: BTreeMap<String, Option<String>>,
}

/// Name resolution settings (`dns_*` properties).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Name servers (`dns_resolver`); empty: those of `/etc/resolv.conf`.
    pub resolvers: Vec<std::net::SocketAddr>,
    /// The hosts file (`dns_hostsfile`).
    pub hostsfile: PathBuf,
    /// Record types tried, in order (`dns_order`): `LAST`, `SRV`, `A`, `AAAA`, `CNAME`.
    pub order: Vec<String>,
    /// Seconds overriding every answer's TTL (`dns_valid_ttl`).
    pub valid_ttl: Option<f64>,
    /// Seconds a stale answer is still served while it is refreshed (`dns_stale_ttl`).
    pub stale_ttl: f64,
    /// Names kept in the cache (`dns_cache_size`).
    pub cache_size: usize,
    /// Seconds a name error or empty answer is kept (`dns_not_found_ttl`).
    pub not_found_ttl: f64,
    /// Seconds any other failure is kept (`dns_error_ttl`).
    pub error_ttl: f64,
    /// Concurrent lookups of one name are not merged (`dns_no_sync`).
    pub no_sync: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolvers: Vec::new(),
            hostsfile: PathBuf::from("/etc/hosts"),
            order: ["LAST", "SRV", "A", "CNAME"].map(String::from).to_vec(),
            valid_ttl: None,
            stale_ttl: 3600.0,
            cache_size: 10000,
            not_found_ttl: 30.0,
            error_ttl: 1.0,
            no_sync: false,
        }
    }
}

/// Collects typing errors while reading raw values.
pub(super) struct Reader<'a> {
    raw: &'a RawMap,
    pub errors: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(raw: &'a RawMap) -> Self {
        Reader {
            raw,
            errors: Vec::new(),
        }
    }

    /// The raw value of `key`, `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.raw
            .get(key)
            .and_then(|v| v.value.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn fail(&mut self, key: &str, reason: String) {
        let origin = match self.raw.get(key).map(|v| &v.source) {
            Some(Source::Default) | None => String::new(),
            Some(src) => format!(" (from {src})"),
        };
        self.errors.push(format!("{reason}{origin}"));
    }

    /// Checks every known property's value against its kind, and the per-listener spellings of
    /// [`properties::SERVER_DIRECTIVES`] that are set.
    pub fn check_kinds(&mut self) {
        for prop in properties::PROPERTIES {
            self.check_kind(prop.name, prop.kind, prop.secret);
        }
        for server in ["proxy", "admin", "status"] {
            for (directive, kind) in properties::SERVER_DIRECTIVES {
                self.check_kind(&format!("nginx_{server}_{directive}"), *kind, false);
            }
        }
    }

    fn check_kind(&mut self, name: &str, kind: Kind, secret: bool) {
        let Some(v) = self.get(name) else {
            return;
        };
        let shown = if secret { "******" } else { v };
        let problem = match kind {
            Kind::Str | Kind::List => None,
            Kind::Bool => parse_bool(v)
                .is_none()
                .then(|| format!("{name} is not a boolean: '{shown}'")),
            Kind::NgxBool => (!matches!(v, "on" | "off"))
                .then(|| format!("{name} has an invalid value: '{shown}' (on, off)")),
            Kind::Int(min, max) => match v.parse::<i64>() {
                Err(_) => Some(format!("{name} is not a number: '{shown}'")),
                Ok(n) if n < min || n > max => Some(if max == i64::MAX {
                    format!("{name} must be at least {min}: '{shown}'")
                } else {
                    format!("{name} must be between {min} and {max}: '{shown}'")
                }),
                Ok(_) => None,
            },
            Kind::Num => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => None,
                _ => Some(format!("{name} is not a number: '{shown}'")),
            },
            Kind::OneOf(allowed) => (!allowed.contains(&v)).then(|| {
                format!(
                    "{name} has an invalid value: '{shown}' ({})",
                    allowed.join(", ")
                )
            }),
            Kind::Listen => parse_listeners(v, name == "stream_listen")
                .err()
                .map(|e| format!("{name} has an invalid value: '{v}': {e}")),
            Kind::Size => parse_size(v).is_none().then(|| {
                format!("{name} is not a size: '{shown}' (examples: 512, 8k, 10m, 1g)")
            }),
            Kind::Time => parse_time(v).is_none().then(|| {
                format!("{name} is not a positive time: '{shown}' (examples: 500ms, 60s, 1m)")
            }),
            Kind::Buffers => parse_buffers(v).is_none().then(|| {
                format!(
                    "{name} has an invalid value: '{shown}' (a buffer count and a size, as in '4 8k')"
                )
            }),
        };
        if let Some(reason) = problem {
            self.fail(name, reason);
        }
    }

    /// Reads a checked value; `check_kinds` already reported problems, so fall back silently.
    pub fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }

    pub fn opt_string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).and_then(parse_bool).unwrap_or(false)
    }

    pub fn int<T: TryFrom<i64> + Default>(&self, key: &str) -> T {
        self.get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|n| T::try_from(n).ok())
            .unwrap_or_default()
    }

    pub fn opt_int<T: TryFrom<i64>>(&self, key: &str) -> Option<T> {
        self.get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|n| T::try_from(n).ok())
    }

    pub fn size(&self, key: &str) -> u64 {
        self.get(key).and_then(parse_size).unwrap_or(0)
    }

    /// The client limits of one kind of listener (`proxy`, `admin`, `status`): its
    /// `nginx_<server>_*` directives, else the `nginx_http_*` ones, else nginx's defaults.
    pub fn client_limits(&self, server: &str) -> ClientLimits {
        let value = |directive: &str| {
            self.get(&format!("nginx_{server}_{directive}"))
                .or_else(|| self.get(&format!("nginx_http_{directive}")))
        };
        let defaults = ClientLimits::default();
        let (count, size) = value("large_client_header_buffers")
            .and_then(parse_buffers)
            .unwrap_or((4, defaults.header_line));
        ClientLimits {
            header_timeout: value("client_header_timeout")
                .and_then(parse_time)
                .unwrap_or(defaults.header_timeout),
            body_timeout: value("client_body_timeout")
                .and_then(parse_time)
                .unwrap_or(defaults.body_timeout),
            header_line: size,
            header_total: count.saturating_mul(size),
            max_headers: self
                .opt_int("lua_max_req_headers")
                .unwrap_or(defaults.max_headers),
        }
    }

    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    pub fn listeners(&self, key: &str) -> Vec<Listen> {
        self.get(key)
            .and_then(|v| parse_listeners(v, key == "stream_listen").ok())
            .unwrap_or_default()
    }

    /// A log target: `off`, `/dev/stdout`, `/dev/stderr` or a path relative to `prefix`.
    /// Kong allows a trailing nginx format name (`logs/access.log basic`); it is ignored.
    pub fn log_target(&self, key: &str, prefix: &Path) -> LogTarget {
        let Some(v) = self.get(key) else {
            return LogTarget::Off;
        };
        let path = v.split_whitespace().next().unwrap_or(v);
        match path {
            "off" => LogTarget::Off,
            "/dev/stdout" => LogTarget::Stdout,
            "/dev/stderr" => LogTarget::Stderr,
            p => LogTarget::File(prefix.join(p)),
        }
    }

    /// Reports an error about `key` with an explicit reason.
    /// A number of seconds (fractions allowed); `None` when unset or not a number.
    pub fn seconds(&self, key: &str) -> Option<f64> {
        self.get(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    }

    pub fn invalid(&mut self, key: &str, reason: String) {
        self.fail(key, reason);
    }
}

/// Kong's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        _ => None,
    }
}

/// nginx sizes: a number of bytes with an optional `k`, `m` or `g` suffix (either case).
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, factor) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

/// A positive nginx time: numbers with units (`ms`, `s`, `m`, `h`, `d`, `w`, `M` = 30 days,
/// `y` = 365 days), largest first and optionally spaced (`1m 30s`); a bare number is seconds.
pub fn parse_time(v: &str) -> Option<Duration> {
    const SECOND: u64 = 1000;
    let mut rest = v.trim();
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, unit_len) = match rest.as_bytes() {
            [] => (SECOND, 0),
            [b'm', b's', ..] => (1, 2),
            [b's', ..] => (SECOND, 1),
            [b'm', ..] => (60 * SECOND, 1),
            [b'h', ..] => (3600 * SECOND, 1),
            [b'd', ..] => (86_400 * SECOND, 1),
            [b'w', ..] => (7 * 86_400 * SECOND, 1),
            [b'M', ..] => (30 * 86_400 * SECOND, 1),
            [b'y', ..] => (365 * 86_400 * SECOND, 1),
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
        rest = rest[unit_len..].trim_start();
    }
    (total_ms > 0).then(|| Duration::from_millis(total_ms))
}

/// nginx's `large_client_header_buffers`: `<count> <size>`, both positive (`4 8k`).
pub fn parse_buffers(v: &str) -> Option<(usize, usize)> {
    let mut words = v.split_whitespace();
    let (count, size, None) = (words.next()?, words.next()?, words.next()) else {
        return None;
    };
    let count: usize = count.parse().ok().filter(|n| *n > 0)?;
    let size = usize::try_from(parse_size(size)?).ok().filter(|n| *n > 0)?;
    count.checked_mul(size)?;
    Some((count, size))
}

/// Splits a comma list, trimming blanks and dropping empty elements.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("ten"), None);
    }

    #[test]
    fn times() {
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(parse_time("60s"), ms(60_000));
        assert_eq!(parse_time("60"), ms(60_000));
        assert_eq!(parse_time("500ms"), ms(500));
        assert_eq!(parse_time("1m"), ms(60_000));
        assert_eq!(parse_time("1h 30m"), ms(5_400_000));
        assert_eq!(parse_time("1m30s"), ms(90_000));
        assert_eq!(parse_time("2d"), ms(172_800_000));
        assert_eq!(parse_time("0"), None, "a zero timeout is refused");
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("5 s"), None);
        assert_eq!(parse_time("1x"), None);
        assert_eq!(parse_time("s"), None);
        assert_eq!(parse_time("99999999999999999999y"), None);
    }

    #[test]
    fn header_buffers() {
        assert_eq!(parse_buffers("4 8k"), Some((4, 8192)));
        assert_eq!(parse_buffers("  2   1k "), Some((2, 1024)));
        assert_eq!(parse_buffers("4"), None);
        assert_eq!(parse_buffers("0 8k"), None);
        assert_eq!(parse_buffers("4 0"), None);
        assert_eq!(parse_buffers("4 8k 1"), None);
        assert_eq!(parse_buffers("four 8k"), None);
    }
}
