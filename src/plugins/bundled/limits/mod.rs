//! What the rate limiting plugins (`rate-limiting`, `response-ratelimiting`) share: Kong's
//! calendar-aligned windows, the identifier a request is counted under, the config pieces
//! both schemas have (`redis`, the deprecated flat `redis_*` fields, `limit_by`), and the
//! node-wide [`Counters`] behind the three policies:
//!
//! - `local`: [`LocalCounters`], in this node's memory, sharded, shared across snapshots;
//! - `cluster`: rows in the node's datastore ([`crate::store::counters`]);
//! - `redis`: a Redis server, one multiplexed connection per distinct configuration
//!   ([`RedisConn`]).
//!
//! Counters are keyed as Kong keys them: by the plugin's route and service (so a global
//! instance and a consumer-scoped override count together), the identifier, the period and
//! the window start.

mod local;
mod redis;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use crate::plugins::Ctx;
use crate::store::schema::{typedefs, Context, Doc, Field, Path, Record, SchemaErrors};
use crate::store::Store;

pub use self::local::{LocalCounters, LocalKey};
pub use self::redis::{RedisConfig, RedisConn, RedisError};

/// The nil UUID Kong counts a plugin without route or service under.
pub const EMPTY_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// A rate limiting window size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// One second.
    Second,
    /// A minute.
    Minute,
    /// An hour.
    Hour,
    /// A day (UTC).
    Day,
    /// A calendar month (UTC).
    Month,
    /// A calendar year (UTC).
    Year,
}

/// Every period, smallest first.
pub const PERIODS: [Period; 6] = [
    Period::Second,
    Period::Minute,
    Period::Hour,
    Period::Day,
    Period::Month,
    Period::Year,
];

impl Period {
    /// The config field and counter name: `second` … `year`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    /// Kong's window length in seconds (a month is 30 days, a year 365): what Redis keys
    /// expire after and what `RateLimit-Reset` counts from.
    pub fn expiration(self) -> i64 {
        match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3600,
            Period::Day => 86400,
            Period::Month => 2_592_000,
            Period::Year => 31_536_000,
        }
    }

    /// The start of the window holding `now` (Unix seconds), aligned to the UTC calendar.
    pub fn start(self, now: i64) -> i64 {
        let fixed = |len: i64| now - now.rem_euclid(len);
        match self {
            Period::Second => now,
            Period::Minute => fixed(60),
            Period::Hour => fixed(3600),
            Period::Day => fixed(86400),
            Period::Month | Period::Year => {
                let Ok(at) = time::OffsetDateTime::from_unix_timestamp(now) else {
                    return fixed(86400);
                };
                let month = match self {
                    Period::Month => at.month(),
                    _ => time::Month::January,
                };
                time::Date::from_calendar_date(at.year(), month, 1)
                    .map_or(fixed(86400), |d| d.midnight().assume_utc().unix_timestamp())
            }
        }
    }

    /// When the window starting at `start` ends: after it, its counter is never read again.
    pub fn end(self, start: i64) -> i64 {
        match self {
            Period::Month | Period::Year => {
                // The next window starts within 32 (month) or 366 (year) days.
                let probe = start
                    + match self {
                        Period::Month => 32 * 86400,
                        _ => 366 * 86400,
                    };
                self.start(probe)
            }
            _ => start + self.expiration(),
        }
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A limit or remaining count as Kong prints numbers: whole numbers without a fraction.
pub fn number(v: f64) -> HeaderValue {
    if v.fract() == 0.0 && (0.0..9.0e15).contains(&v) {
        crate::proxy::headers::number(v as u64)
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        HeaderValue::from(v as i64)
    } else {
        let mut s = String::new();
        let _ = write!(s, "{v}");
        HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("0"))
    }
}

/// What requests are counted under (`limit_by`); when the identifier is missing, the client's
/// IP address.
#[derive(Debug, Clone)]
pub enum LimitBy {
    /// The consumer, else the credential.
    Consumer,
    /// The credential.
    Credential,
    /// The client IP.
    Ip,
    /// The matched service.
    Service,
    /// A request header's value.
    Header(HeaderName),
    /// The request path, when it equals this one.
    Path(String),
}

impl LimitBy {
    /// Parses `limit_by` with `header_name` and `path` from a validated config.
    pub fn from_config(config: &Doc) -> Result<LimitBy, String> {
        let text = |f: &str| config.get(f).and_then(Value::as_str);
        Ok(match text("limit_by").unwrap_or("consumer") {
            "consumer" => LimitBy::Consumer,
            "credential" => LimitBy::Credential,
            "ip" => LimitBy::Ip,
            "service" => LimitBy::Service,
            "header" => {
                let name = text("header_name").ok_or("limit_by header needs header_name")?;
                LimitBy::Header(
                    HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("invalid header_name '{name}'"))?,
                )
            }
            "path" => LimitBy::Path(text("path").ok_or("limit_by path needs path")?.to_owned()),
            other => return Err(format!("unknown limit_by '{other}'")),
        })
    }

    /// The identifier of `ctx`'s request; the client IP is written into `ip` when needed.
    pub fn identify<'a>(&self, ctx: &'a Ctx, ip: &'a mut IpText) -> &'a str {
        let found = match self {
            LimitBy::Consumer => ctx
                .consumer_id()
                .or_else(|| ctx.credential().map(|c| &*c.id)),
            LimitBy::Credential => ctx.credential().map(|c| &*c.id),
            LimitBy::Ip => None,
            LimitBy::Service => ctx.service().map(|s| s.id.as_str()),
            LimitBy::Header(name) => ctx.request.headers.get(name).and_then(|v| v.to_str().ok()),
            LimitBy::Path(path) => {
                let requested = ctx.request.uri.path();
                (requested == path).then_some(requested)
            }
        };
        match found {
            Some(id) => id,
            None => {
                *ip = IpText::new(ctx.client_ip());
                ip.as_str()
            }
        }
    }
}

/// An IP address as text, formatted on the stack.
#[derive(Clone, Copy)]
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        IpText {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl IpText {
    /// `ip` in its usual notation.
    pub fn new(ip: IpAddr) -> IpText {
        let mut out = IpText::default();
        let mut cursor = std::io::Cursor::new(&mut out.buf[..]);
        if std::io::Write::write_fmt(&mut cursor, format_args!("{ip}")).is_ok() {
            out.len = cursor.position() as usize;
        }
        out
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The plugin entity's scope its counters are keyed by: Kong's `route_id` and `service_id`
/// (the nil UUID when absent).
#[derive(Debug, Clone)]
pub struct Scope {
    /// The plugin's route id, or [`EMPTY_UUID`].
    pub route_id: String,
    /// The plugin's service id, or [`EMPTY_UUID`].
    pub service_id: String,
}

impl Scope {
    /// The scope of the stored plugin entity `plugin`.
    pub fn of(plugin: &Doc) -> Scope {
        let id = |f: &str| {
            plugin
                .get(f)
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .unwrap_or(EMPTY_UUID)
                .to_owned()
        };
        Scope {
            route_id: id("route"),
            service_id: id("service"),
        }
    }
}

/// The store a policy counts in.
#[derive(Debug, Clone)]
pub enum Backend {
    /// This node's memory.
    Local(Arc<LocalCounters>),
    /// The node's datastore; `None` on a DB-less node (every access fails, and the plugin
    /// fails open or closed per `fault_tolerant`).
    Cluster(Option<Store>),
    /// A Redis server.
    Redis(Arc<RedisConn>),
}

/// The counters of a node: created once when the node starts and handed to every plugin
/// instance through [`crate::plugins::BuildEnv`], so counts survive configuration changes.
#[derive(Clone)]
pub struct Counters {
    inner: Arc<Inner>,
}

struct Inner {
    local: Arc<LocalCounters>,
    store: Option<Store>,
    redis: redis::RedisPool,
    trusted: Vec<String>,
    /// When expired datastore counters are next deleted (Unix seconds).
    next_expiry: AtomicI64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("local", &self.inner.local.len())
            .field("store", &self.inner.store.is_some())
            .finish()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new(None, Vec::new())
    }
}

/// How often expired rows are deleted from the datastore's counter tables.
const STORE_EXPIRY_INTERVAL: i64 = 60;

impl Counters {
    /// Counters for a node with `store` as its database (none when DB-less), trusting
    /// `trusted` (`lua_ssl_trusted_certificate`) for Redis over TLS with `ssl_verify`.
    pub fn new(store: Option<Store>, trusted: Vec<String>) -> Counters {
        Counters {
            inner: Arc::new(Inner {
                local: Arc::new(LocalCounters::new()),
                store,
                redis: redis::RedisPool::default(),
                trusted,
                next_expiry: AtomicI64::new(0),
            }),
        }
    }

    /// The in-memory counters.
    pub fn local(&self) -> &Arc<LocalCounters> {
        &self.inner.local
    }

    /// The backend of `policy` (`local`, `cluster` or `redis`, with `redis` its config).
    pub fn backend(&self, policy: &str, redis: Option<&Doc>) -> Result<Backend, String> {
        Ok(match policy {
            "local" => Backend::Local(self.inner.local.clone()),
            "cluster" => Backend::Cluster(self.inner.store.clone()),
            "redis" => {
                let config = RedisConfig::from_doc(redis.ok_or("policy redis needs redis")?)?;
                Backend::Redis(self.inner.redis.get(config, &self.inner.trusted)?)
            }
            other => return Err(format!("unknown policy '{other}'")),
        })
    }

    /// Deletes expired datastore counters, at most once a minute, in the background.
    pub fn expire_store(&self, now: i64) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let next = self.inner.next_expiry.load(Ordering::Relaxed);
        if now < next
            || self
                .inner
                .next_expiry
                .compare_exchange(
                    next,
                    now + STORE_EXPIRY_INTERVAL,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let store = store.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.expire_counters(now).await {
                    tracing::warn!(error = %e, "could not delete expired rate-limiting counters");
                }
            });
        }
    }
}

/// A `second` … `year` limit field: a number greater than 0.
pub fn limit_field() -> Field {
    Field::number().custom("gt", |v| match v.as_f64() {
        Some(n) if n > 0.0 => Ok(()),
        _ => Err("value must be greater than 0".into()),
    })
}

/// The `redis` record both plugins share (Kong's `kong.tools.redis.schema`).
pub fn redis_field() -> Field {
    Field::record(Record::new(vec![
        ("host", Field::string().custom("host", typedefs::host)),
        (
            "port",
            Field::integer().between(0.0, 65535.0).default(json!(6379)),
        ),
        (
            "timeout",
            Field::integer()
                .between(0.0, 2_147_483_646.0)
                .default(json!(2000)),
        ),
        ("username", Field::string()),
        ("password", Field::string()),
        ("database", Field::integer().default(json!(0))),
        ("ssl", Field::boolean().default(json!(false))),
        ("ssl_verify", Field::boolean().default(json!(false))),
        ("server_name", Field::string().custom("sni", typedefs::host)),
    ]))
    .describe("Redis configuration")
}

/// The deprecated flat `redis_*` config fields and where Kong maps them.
const FLAT_REDIS: [(&str, &str); 9] = [
    ("redis_host", "host"),
    ("redis_port", "port"),
    ("redis_password", "password"),
    ("redis_username", "username"),
    ("redis_ssl", "ssl"),
    ("redis_ssl_verify", "ssl_verify"),
    ("redis_server_name", "server_name"),
    ("redis_timeout", "timeout"),
    ("redis_database", "database"),
];

/// Moves the deprecated flat `redis_*` fields of a config into its `redis` record (they win
/// over the record's own values, as in Kong).
pub fn redis_shorthand(input: &mut Doc) {
    for (flat, field) in FLAT_REDIS {
        let Some(value) = input.remove(flat) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let redis = input
            .entry("redis")
            .or_insert_with(|| Value::Object(Map::new()));
        if !redis.is_object() {
            *redis = Value::Object(Map::new());
        }
        if let Value::Object(record) = redis {
            record.insert(field.to_owned(), value);
        }
    }
}

/// Kong's entity checks for `policy = redis`: `redis.host`, `redis.port` and `redis.timeout`
/// are required.
pub fn check_redis(doc: &Doc, _: &Context<'_>, at: &Path, errs: &mut SchemaErrors) {
    if doc.get("policy").and_then(Value::as_str) != Some("redis") {
        return;
    }
    let redis = doc.get("redis").and_then(Value::as_object);
    for field in ["host", "port", "timeout"] {
        if redis.and_then(|r| r.get(field)).is_none_or(Value::is_null) {
            errs.field(&at.key("redis").key(field), "required field missing");
            errs.entity("failed conditional validation given value of field 'config.policy'");
        }
    }
}

/// The `policy` field: `cluster` only on nodes with a database.
pub fn policy_field(dbless: bool) -> Field {
    let policies: &[&str] = if dbless {
        &["local", "redis"]
    } else {
        &["local", "cluster", "redis"]
    };
    Field::string().default(json!("local")).one_of(policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u8, d: u8, h: u8, min: u8, s: u8) -> i64 {
        let month = time::Month::try_from(m).expect("month");
        time::Date::from_calendar_date(y, month, d)
            .expect("date")
            .with_hms(h, min, s)
            .expect("time")
            .assume_utc()
            .unix_timestamp()
    }

    #[test]
    fn windows_align_to_the_utc_calendar() {
        let now = utc(2024, 2, 29, 13, 45, 17);
        assert_eq!(Period::Second.start(now), now);
        assert_eq!(Period::Minute.start(now), utc(2024, 2, 29, 13, 45, 0));
        assert_eq!(Period::Hour.start(now), utc(2024, 2, 29, 13, 0, 0));
        assert_eq!(Period::Day.start(now), utc(2024, 2, 29, 0, 0, 0));
        assert_eq!(Period::Month.start(now), utc(2024, 2, 1, 0, 0, 0));
        assert_eq!(Period::Year.start(now), utc(2024, 1, 1, 0, 0, 0));
        let month = Period::Month.start(now);
        assert_eq!(Period::Month.end(month), utc(2024, 3, 1, 0, 0, 0));
        let dec = Period::Month.start(utc(2023, 12, 31, 23, 59, 59));
        assert_eq!(Period::Month.end(dec), utc(2024, 1, 1, 0, 0, 0));
        let year = Period::Year.start(now);
        assert_eq!(Period::Year.end(year), utc(2025, 1, 1, 0, 0, 0));
        assert_eq!(
            Period::Minute.end(Period::Minute.start(now)),
            utc(2024, 2, 29, 13, 46, 0)
        );
    }

    fn ctx(uri: &str, headers: &[(&str, &str)]) -> Ctx {
        let mut builder = http::Request::get(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (head, ()) = builder.body(()).expect("request").into_parts();
        Ctx::new(
            Arc::new(crate::snapshot::Snapshot::empty()),
            head,
            "192.0.2.7".parse().expect("ip"),
            "http",
            "id",
            std::time::Instant::now(),
        )
    }

    fn by(config: Value) -> LimitBy {
        let Value::Object(config) = config else {
            panic!("object")
        };
        LimitBy::from_config(&config).expect("limit_by")
    }

    #[test]
    fn identifiers_fall_back_to_the_client_ip() {
        let mut ip = IpText::default();
        let mut c = ctx("/a/b?x=1", &[("x-client", "h1")]);
        let consumer = by(json!({"limit_by": "consumer"}));
        let credential = by(json!({"limit_by": "credential"}));
        assert_eq!(consumer.identify(&c, &mut ip), "192.0.2.7");
        assert_eq!(credential.identify(&c, &mut ip), "192.0.2.7");
        assert_eq!(
            by(json!({"limit_by": "service"})).identify(&c, &mut ip),
            "192.0.2.7"
        );
        let header = by(json!({"limit_by": "header", "header_name": "X-Client"}));
        assert_eq!(header.identify(&c, &mut ip), "h1");
        let other = by(json!({"limit_by": "header", "header_name": "x-other"}));
        assert_eq!(other.identify(&c, &mut ip), "192.0.2.7");
        assert_eq!(
            by(json!({"limit_by": "path", "path": "/a/b"})).identify(&c, &mut ip),
            "/a/b"
        );
        assert_eq!(
            by(json!({"limit_by": "path", "path": "/a"})).identify(&c, &mut ip),
            "192.0.2.7"
        );

        // A credential without a consumer, then a consumer.
        let doc = |v: Value| match v {
            Value::Object(m) => Arc::new(m),
            _ => panic!("object"),
        };
        c.authenticate(
            doc(json!({})),
            Some(crate::plugins::Credential::new(
                &serde_json::from_value(json!({"id": "cred-1"})).expect("credential"),
                "k",
            )),
        );
        assert_eq!(consumer.identify(&c, &mut ip), "cred-1");
        assert_eq!(credential.identify(&c, &mut ip), "cred-1");
        c.authenticate(doc(json!({"id": "consumer-1"})), None);
        assert_eq!(consumer.identify(&c, &mut ip), "consumer-1");
        assert_eq!(credential.identify(&c, &mut ip), "192.0.2.7");
    }

    #[test]
    fn numbers_print_as_kong_prints_them() {
        assert_eq!(number(5.0), "5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(2.5), "2.5");
    }

    #[test]
    fn ip_text_formats_both_families() {
        assert_eq!(
            IpText::new("10.1.2.3".parse().expect("ip")).as_str(),
            "10.1.2.3"
        );
        let v6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(IpText::new(v6.parse().expect("ip")).as_str(), v6);
    }

    #[test]
    fn flat_redis_fields_move_into_the_record() {
        let mut doc: Doc = serde_json::from_value(json!({
            "redis_host": "h", "redis_port": 7000, "redis_password": null,
            "redis": {"host": "old", "database": 2}, "minute": 1
        }))
        .expect("doc");
        redis_shorthand(&mut doc);
        assert_eq!(
            Value::Object(doc),
            json!({"redis": {"host": "h", "port": 7000, "database": 2}, "minute": 1})
        );
    }
}
