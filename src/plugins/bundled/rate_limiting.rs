//! `rate-limiting` (priority 910): limits how many requests an identifier (consumer,
//! credential, IP, service, header value or path) makes per second, minute, hour, day,
//! month and year, in fixed windows aligned to the UTC calendar, as Kong does.
//!
//! In `access`, the usage of every configured window is read; a window whose limit is used up
//! answers `error_code` (429) with `{"message": error_message}`. Otherwise the request is
//! counted in every window. Every answer carries `X-RateLimit-Limit-<Period>`,
//! `X-RateLimit-Remaining-<Period>`, `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` for the most restrictive window (`Retry-After` too when rejected), unless
//! `hide_client_headers`. When the counters cannot be reached, the request goes through
//! unlimited (`fault_tolerant`) or fails with a 500.
//!
//! Policies (see [`super::limits`]): `local` counts in memory without I/O; `cluster` reads
//! and then increments the datastore's `ratelimiting_metrics`; `redis` increments while
//! reading (Kong's behaviour: rejected requests count too), or, with `sync_rate`, counts
//! locally and sends the deltas every `sync_rate` seconds.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde_json::{json, Value};

use super::limits::{
    self, check_redis, limit_field, number, policy_field, redis_field, redis_shorthand, unix_now,
    Backend, IpText, LimitBy, Period, Scope, PERIODS,
};
use crate::plugins::{BuildEnv, Ctx, Exit, Kind, Plugin, PluginError, Step};
use crate::store::counters::{CounterOwner, CounterWindow, MetricsTable};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct RateLimiting;

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
static RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// `X-RateLimit-Limit-<Period>` and `X-RateLimit-Remaining-<Period>`.
fn period_headers(period: Period) -> (HeaderName, HeaderName) {
    let (limit, remaining) = match period {
        Period::Second => ("x-ratelimit-limit-second", "x-ratelimit-remaining-second"),
        Period::Minute => ("x-ratelimit-limit-minute", "x-ratelimit-remaining-minute"),
        Period::Hour => ("x-ratelimit-limit-hour", "x-ratelimit-remaining-hour"),
        Period::Day => ("x-ratelimit-limit-day", "x-ratelimit-remaining-day"),
        Period::Month => ("x-ratelimit-limit-month", "x-ratelimit-remaining-month"),
        Period::Year => ("x-ratelimit-limit-year", "x-ratelimit-remaining-year"),
    };
    (
        HeaderName::from_static(limit),
        HeaderName::from_static(remaining),
    )
}

/// One configured window.
struct Window {
    period: Period,
    limit: f64,
    /// `limit` as a header value, made once.
    limit_value: HeaderValue,
    limit_header: HeaderName,
    remaining_header: HeaderName,
}

/// One configured instance.
struct Instance {
    windows: Vec<Window>,
    limit_by: LimitBy,
    backend: Backend,
    counters: limits::Counters,
    fault_tolerant: bool,
    hide_client_headers: bool,
    exit: Exit,
    /// Redis only: count locally and send every this often.
    sync_rate: Option<Duration>,
    scope: Scope,
    /// `<route>:<service>`: the local counters' scope.
    local_scope: String,
}

/// Kong's custom validator: a larger window may not have a lower limit, and `sync_rate`
/// is for the redis policy only.
fn check_config(doc: &Doc, _: &Context<'_>, at: &Path, errs: &mut SchemaErrors) {
    check_periods(doc, at, errs, "The limit");
    let policy = doc.get("policy").and_then(Value::as_str);
    let sync_rate = doc.get("sync_rate").and_then(Value::as_f64).unwrap_or(-1.0);
    if policy != Some("redis") && sync_rate != -1.0 {
        errs.field(at, "sync_rate can only be used with the redis policy");
    } else if policy == Some("redis") && sync_rate != -1.0 && sync_rate < 0.02 {
        errs.field(at, "sync_rate must be greater than 0.02, or -1 to disable");
    }
}

/// The period order check both plugins make (`lead` is `The limit` or `the limit`).
pub(super) fn check_periods(doc: &Doc, at: &Path, errs: &mut SchemaErrors, lead: &str) {
    let value = |p: Period| doc.get(p.name()).and_then(Value::as_f64);
    for (i, lower) in PERIODS.iter().enumerate() {
        let Some(v1) = value(*lower) else { continue };
        for upper in &PERIODS[i + 1..] {
            if let Some(v2) = value(*upper) {
                if v2 < v1 {
                    errs.field(
                        at,
                        format!(
                            "{lead} for {}({v2:.1}) cannot be lower than the limit for {}({v1:.1})",
                            upper.name(),
                            lower.name()
                        ),
                    );
                    return;
                }
            }
        }
    }
}

/// Kong's entity checks: at least one period; `header_name` and `path` for those `limit_by`.
fn check_entity(doc: &Doc, ctx: &Context<'_>, at: &Path, errs: &mut SchemaErrors) {
    let set = |f: &str| doc.get(f).is_some_and(|v| !v.is_null());
    if !PERIODS.iter().any(|p| set(p.name())) {
        errs.entity(
            "at least one of these fields must be non-empty: 'config.second', \
             'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'",
        );
    }
    check_redis(doc, ctx, at, errs);
    for (by, field) in [("header", "header_name"), ("path", "path")] {
        if doc.get("limit_by").and_then(Value::as_str) == Some(by) && !set(field) {
            errs.field(&at.key(field), "required field missing");
            errs.entity("failed conditional validation given value of field 'config.limit_by'");
        }
    }
}

impl RateLimiting {
    fn schema_with(&self, dbless: bool) -> PluginSchema {
        PluginSchema {
            name: self.name().into(),
            config: RateLimiting::config(dbless),
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn config(dbless: bool) -> Record {
        let mut fields: Vec<(&str, Field)> =
            PERIODS.iter().map(|p| (p.name(), limit_field())).collect();
        fields.extend([
            (
                "limit_by",
                Field::string().default(json!("consumer")).one_of(&[
                    "consumer",
                    "credential",
                    "ip",
                    "service",
                    "header",
                    "path",
                ]),
            ),
            (
                "header_name",
                Field::string().custom("header_name", typedefs::header_name),
            ),
            ("path", Field::string().custom("path", typedefs::path)),
            ("policy", policy_field(dbless)),
            (
                "fault_tolerant",
                Field::boolean().required().default(json!(true)),
            ),
            ("redis", redis_field()),
            (
                "hide_client_headers",
                Field::boolean().required().default(json!(false)),
            ),
            ("error_code", limit_field().default(json!(429))),
            (
                "error_message",
                Field::string().default(json!("API rate limit exceeded")),
            ),
            ("sync_rate", Field::number().required().default(json!(-1))),
        ]);
        Record::new(fields)
            .checks(vec![
                EntityCheck::Custom(check_config),
                EntityCheck::Custom(check_entity),
            ])
            .shorthands(vec![redis_shorthand])
    }
}

impl Kind for RateLimiting {
    fn name(&self) -> &'static str {
        "rate-limiting"
    }

    fn priority(&self) -> i32 {
        910
    }

    /// The schema on a node with a database (`cluster` allowed).
    fn schema(&self) -> PluginSchema {
        self.schema_with(false)
    }

    fn schema_for(&self, env: &BuildEnv) -> PluginSchema {
        self.schema_with(env.dbless)
    }

    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        self.build_entity(&Doc::new(), config, env)
    }

    fn build_entity(
        &self,
        plugin: &Doc,
        config: &Doc,
        env: &BuildEnv,
    ) -> Result<Arc<dyn Plugin>, String> {
        let windows: Vec<Window> = PERIODS
            .iter()
            .filter_map(|&p| {
                let limit = config.get(p.name()).and_then(Value::as_f64)?;
                let (limit_header, remaining_header) = period_headers(p);
                Some(Window {
                    period: p,
                    limit,
                    limit_value: number(limit),
                    limit_header,
                    remaining_header,
                })
            })
            .collect();
        if windows.is_empty() {
            return Err("no limit is configured".into());
        }
        let policy = config
            .get("policy")
            .and_then(Value::as_str)
            .unwrap_or("local");
        let backend = env
            .counters
            .backend(policy, config.get("redis").and_then(Value::as_object))?;
        let code = config
            .get("error_code")
            .and_then(Value::as_f64)
            .unwrap_or(429.0);
        let status = u16::try_from(code as i64)
            .ok()
            .filter(|c| f64::from(*c) == code)
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| format!("error_code {code} is not an HTTP status"))?;
        let message = config
            .get("error_message")
            .and_then(Value::as_str)
            .unwrap_or("API rate limit exceeded");
        let sync_rate = config
            .get("sync_rate")
            .and_then(Value::as_f64)
            .unwrap_or(-1.0);
        let scope = Scope::of(plugin);
        Ok(Arc::new(Instance {
            windows,
            limit_by: LimitBy::from_config(config)?,
            backend,
            counters: env.counters.clone(),
            fault_tolerant: config
                .get("fault_tolerant")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            hide_client_headers: config
                .get("hide_client_headers")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            exit: Exit::message(status, message),
            sync_rate: (policy == "redis" && sync_rate > 0.0)
                .then(|| Duration::from_secs_f64(sync_rate)),
            local_scope: format!("ratelimit:{}:{}", scope.route_id, scope.service_id),
            scope,
        }))
    }
}

impl Instance {
    /// Kong's Redis key of a window.
    fn redis_key(&self, identifier: &str, period: Period, start: i64) -> String {
        format!(
            "ratelimit:{}:{}:{identifier}:{}:{}",
            self.scope.route_id,
            self.scope.service_id,
            start * 1000,
            period.name()
        )
    }

    /// Decides with `usage` (one value per window, `None` when the counters failed and the
    /// plugin is fault tolerant): sets the headers, answers when a limit is used up. Returns
    /// whether the request goes on (and is to be counted).
    fn decide(&self, ctx: &mut Ctx, now: i64, usage: Option<&[i64]>) -> bool {
        let Some(usage) = usage else {
            return true;
        };
        let mut remaining = [0.0; PERIODS.len()];
        for (i, (w, used)) in self.windows.iter().zip(usage).enumerate() {
            remaining[i] = w.limit - *used as f64;
        }
        let remaining = &remaining[..self.windows.len().min(usage.len())];
        // The largest exhausted window, as Kong would report one of them.
        let stop = remaining.iter().rposition(|r| *r <= 0.0);
        let mut reset = 1;
        if !self.hide_client_headers {
            // The most restrictive window: least remaining, then the longest.
            let mut best: Option<(&HeaderValue, HeaderValue, f64, i64)> = None;
            for (i, (w, &left)) in self.windows.iter().zip(remaining).enumerate() {
                let mut left = left;
                if stop.is_none() || stop == Some(i) {
                    left -= 1.0;
                }
                let left = left.max(0.0);
                let window = w.period.expiration();
                let better = match &best {
                    None => true,
                    Some((_, _, best_left, best_window)) => {
                        left < *best_left || (left == *best_left && window > *best_window)
                    }
                };
                let remaining = number(left);
                if better {
                    best = Some((&w.limit_value, remaining.clone(), left, window));
                    reset = (window - (now - w.period.start(now))).max(1);
                }
                ctx.add_response_header(w.limit_header.clone(), w.limit_value.clone());
                ctx.add_response_header(w.remaining_header.clone(), remaining);
            }
            if let Some((limit, remaining, _, _)) = best {
                ctx.add_response_header(RATELIMIT_LIMIT.clone(), limit.clone());
                ctx.add_response_header(RATELIMIT_REMAINING.clone(), remaining);
                ctx.add_response_header(RATELIMIT_RESET.clone(), number(reset as f64));
            }
        }
        if stop.is_none() {
            return true;
        }
        if !self.hide_client_headers {
            ctx.add_response_header(RETRY_AFTER.clone(), number(reset as f64));
        }
        ctx.exit(self.exit.clone());
        false
    }

    /// A failure of the counters: logged and ignored when fault tolerant, else the request
    /// fails (500).
    fn failed(&self, error: &dyn std::fmt::Display) -> Result<(), PluginError> {
        if self.fault_tolerant {
            tracing::error!(plugin = "rate-limiting", error = %error, "failed to get usage");
            Ok(())
        } else {
            Err(PluginError::new(format!("rate-limiting: {error}")))
        }
    }

    async fn cluster(
        &self,
        ctx: &mut Ctx,
        store: Option<&crate::store::Store>,
        identifier: String,
        now: i64,
    ) -> Result<(), PluginError> {
        let Some(store) = store else {
            return self.failed(&crate::store::counters::CounterError::NoDatabase);
        };
        let windows: Vec<CounterWindow<'_>> = self
            .windows
            .iter()
            .map(|w| {
                let start = w.period.start(now);
                CounterWindow {
                    period: w.period.name(),
                    start,
                    expires: now + w.period.expiration(),
                }
            })
            .collect();
        let owner = CounterOwner {
            identifier: &identifier,
            service_id: &self.scope.service_id,
            route_id: &self.scope.route_id,
        };
        let usage = match store
            .counter_values(MetricsTable::RateLimiting, owner, &windows)
            .await
        {
            Ok(usage) => usage,
            Err(e) => return self.failed(&e),
        };
        if self.decide(ctx, now, Some(&usage)) {
            if let Err(e) = store
                .counter_add(MetricsTable::RateLimiting, owner, &windows, 1)
                .await
            {
                tracing::error!(plugin = "rate-limiting", error = %e, "cluster policy: could not increment counter");
            }
        }
        self.counters.expire_store(now);
        Ok(())
    }

    async fn redis(
        &self,
        ctx: &mut Ctx,
        conn: &Arc<limits::RedisConn>,
        identifier: String,
        now: i64,
    ) -> Result<(), PluginError> {
        let keys: Vec<String> = self
            .windows
            .iter()
            .map(|w| self.redis_key(&identifier, w.period, w.period.start(now)))
            .collect();
        let expirations: Vec<i64> = self.windows.iter().map(|w| w.period.expiration()).collect();
        let Some(every) = self.sync_rate else {
            // Counted while read: nothing to add afterwards.
            return match conn.incr_usage(&keys, &expirations).await {
                Ok(usage) => {
                    self.decide(ctx, now, Some(&usage));
                    Ok(())
                }
                Err(e) => self.failed(&e),
            };
        };
        let expire_at: Vec<i64> = self
            .windows
            .iter()
            .map(|w| w.period.start(now) + w.period.expiration())
            .collect();
        match conn.sync_usage(&keys, &expire_at, &expirations, now).await {
            Ok(usage) => {
                if self.decide(ctx, now, Some(&usage)) {
                    conn.sync_add(&keys, &expire_at, 1, every);
                }
                Ok(())
            }
            Err(e) => self.failed(&e),
        }
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let now = unix_now();
        let mut ip = IpText::default();
        match &self.backend {
            Backend::Local(local) => {
                let identifier = self.limit_by.identify(ctx, &mut ip);
                let mut keys = [None; 6];
                let mut usage = [0; 6];
                for (i, w) in self.windows.iter().enumerate() {
                    let key =
                        local.key(&self.local_scope, identifier, w.period, w.period.start(now));
                    usage[i] = local.get(&key);
                    keys[i] = Some((key, w.period));
                }
                if self.decide(ctx, now, Some(&usage[..self.windows.len()])) {
                    for (key, period) in keys.iter().flatten() {
                        local.add(*key, 1, period.end(period.start(now)), now);
                    }
                }
                Ok(Step::Done)
            }
            Backend::Cluster(store) => {
                let identifier = self.limit_by.identify(ctx, &mut ip).to_owned();
                Ok(Step::Wait(Box::pin(self.cluster(
                    ctx,
                    store.as_ref(),
                    identifier,
                    now,
                ))))
            }
            Backend::Redis(conn) => {
                let identifier = self.limit_by.identify(ctx, &mut ip).to_owned();
                Ok(Step::Wait(Box::pin(self.redis(ctx, conn, identifier, now))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http::HeaderMap;

    use super::*;
    use crate::snapshot::Snapshot;

    fn instance(config: Value) -> Arc<dyn Plugin> {
        let Value::Object(config) = config else {
            panic!("config is an object")
        };
        RateLimiting
            .build(&config, &BuildEnv::default())
            .expect("instance")
    }

    fn request(plugin: &Arc<dyn Plugin>) -> (Option<Exit>, HeaderMap) {
        let (head, ()) = http::Request::get("/x")
            .body(())
            .expect("request")
            .into_parts();
        let ip = "10.0.0.1".parse().expect("ip");
        let mut ctx = Ctx::new(
            Arc::new(Snapshot::empty()),
            head,
            ip,
            "http",
            "id",
            Instant::now(),
        );
        match plugin.access(&mut ctx) {
            Ok(Step::Done) => {}
            _ => panic!("the local policy answers at once"),
        }
        let headers = ctx.take_response_headers().into_iter().collect();
        (ctx.exit.take().map(|e| *e), headers)
    }

    fn text<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<none>")
    }

    #[test]
    fn the_most_restrictive_window_is_reported_and_only_it_counts_a_rejection() {
        let plugin = instance(json!({"minute": 100, "hour": 2, "limit_by": "ip"}));
        let (exit, h) = request(&plugin);
        assert!(exit.is_none());
        assert_eq!(text(&h, "x-ratelimit-remaining-hour"), "1");
        assert_eq!(text(&h, "ratelimit-limit"), "2");
        assert_eq!(text(&h, "ratelimit-remaining"), "1");
        let (exit, h) = request(&plugin);
        assert!(exit.is_none());
        assert_eq!(text(&h, "ratelimit-remaining"), "0");
        let (exit, h) = request(&plugin);
        let exit = exit.expect("limited");
        assert_eq!(exit.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(&exit.body[..], br#"{"message":"API rate limit exceeded"}"#);
        assert_eq!(text(&h, "x-ratelimit-remaining-hour"), "0");
        // Two counted; the rejected request is not taken off the minute.
        let minute: u32 = text(&h, "x-ratelimit-remaining-minute")
            .parse()
            .expect("number");
        assert!(minute >= 98, "{minute}");
        assert_eq!(text(&h, "retry-after"), text(&h, "ratelimit-reset"));
        let reset: i64 = text(&h, "ratelimit-reset").parse().expect("seconds");
        assert!((1..=3600).contains(&reset));
    }

    #[test]
    fn equal_remaining_reports_the_longer_window() {
        let plugin = instance(json!({"hour": 5, "day": 5, "limit_by": "ip"}));
        let (_, h) = request(&plugin);
        assert_eq!(text(&h, "ratelimit-remaining"), "4");
        let reset: i64 = text(&h, "ratelimit-reset").parse().expect("seconds");
        let now = unix_now();
        assert_eq!(reset, 86400 - (now - Period::Day.start(now)));
    }
}
