//! `response-ratelimiting` (priority 900): limits named by the upstream. Each configured
//! limit (`limits.<name>.<period>`) is consumed by what the upstream reports in its response
//! header `header_name` (`x-kong-limit: videos=2, images=1`), not by requests.
//!
//! - `access`: reads the usage of every limit's windows; tells the upstream how much is left
//!   (`X-RateLimit-Remaining-<name>`, the least over the windows); with
//!   `block_on_first_violation`, a limit already at 0 answers 429
//!   `API rate limit exceeded for '<name>'`.
//! - `header_filter`: parses the upstream's usage header (and removes it), sets
//!   `X-RateLimit-Limit-<name>-<period>` and `X-RateLimit-Remaining-<name>-<period>` (unless
//!   `hide_client_headers`); a limit that was already used up and is used again turns the
//!   response into a 429 with an empty body (the upstream's body is dropped by
//!   `body_filter`). Otherwise the reported usage is counted: at once for `local`, in a
//!   background task for `cluster` and `redis` (Kong counts in a timer after the log phase).
//!
//! The counters are the same as rate-limiting's (see [`super::limits`]), keyed by limit
//! name; the datastore table is `response_ratelimiting_metrics`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::StatusCode;
use serde_json::{json, Value};

use super::limits::{
    self, check_redis, limit_field, number, policy_field, redis_field, redis_shorthand, unix_now,
    Backend, IpText, LimitBy, Period, Scope, PERIODS,
};
use super::rate_limiting::check_periods;
use crate::plugins::{BuildEnv, Ctx, Exit, Kind, Plugin, PluginError, Step};
use crate::store::counters::{CounterOwner, CounterWindow, MetricsTable};
use crate::store::schema::{
    Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct ResponseRateLimiting;

/// Where `access` leaves the usage for `header_filter`.
const USAGE: &str = "response-ratelimiting";
/// Set when `header_filter` turned the response into a 429: `body_filter` drops the body.
const STOPPED: &str = "response-ratelimiting:stopped";

/// One window of a named limit.
struct LimitWindow {
    period: Period,
    limit: f64,
    /// `X-RateLimit-Limit-<name>-<period>` (none when the name cannot be a header name).
    limit_header: Option<HeaderName>,
    /// `X-RateLimit-Remaining-<name>-<period>`.
    remaining_header: Option<HeaderName>,
    /// The datastore's period column: `<name>_<period>`.
    column: String,
}

/// One named limit.
struct Limit {
    name: String,
    windows: Vec<LimitWindow>,
    /// `X-RateLimit-Remaining-<name>`, sent upstream.
    upstream_header: Option<HeaderName>,
    /// The local counters' scope: `<route>:<service>:<name>`.
    local_scope: String,
}

/// One configured instance.
struct Instance {
    header_name: HeaderName,
    limits: Vec<Limit>,
    limit_by: LimitBy,
    backend: Backend,
    counters: limits::Counters,
    fault_tolerant: bool,
    block_on_first_violation: bool,
    hide_client_headers: bool,
    scope: Scope,
}

/// What `access` found, for `header_filter`.
struct Usage {
    identifier: String,
    now: i64,
    /// Remaining per window, limits and windows in order.
    remaining: Vec<f64>,
}

fn check_limit(doc: &Doc, _: &Context<'_>, at: &Path, errs: &mut SchemaErrors) {
    check_periods(doc, at, errs, "the limit");
}

impl ResponseRateLimiting {
    fn schema_with(&self, dbless: bool) -> PluginSchema {
        PluginSchema {
            name: self.name().into(),
            config: ResponseRateLimiting::config(dbless),
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn config(dbless: bool) -> Record {
        let periods: Vec<(&str, Field)> =
            PERIODS.iter().map(|p| (p.name(), limit_field())).collect();
        let limit = Record::new(periods).checks(vec![
            EntityCheck::Custom(check_limit),
            EntityCheck::AtLeastOneOf(&["second", "minute", "hour", "day", "month", "year"]),
        ]);
        Record::new(vec![
            (
                "header_name",
                Field::string().default(json!("x-kong-limit")),
            ),
            (
                "limit_by",
                Field::string().default(json!("consumer")).one_of(&[
                    "consumer",
                    "credential",
                    "ip",
                ]),
            ),
            ("policy", policy_field(dbless)),
            (
                "fault_tolerant",
                Field::boolean().required().default(json!(true)),
            ),
            ("redis", redis_field()),
            (
                "block_on_first_violation",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "hide_client_headers",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "limits",
                Field::map(Field::string(), Field::record(limit).required())
                    .required()
                    .len_min(1),
            ),
        ])
        .checks(vec![EntityCheck::Custom(check_redis)])
        .shorthands(vec![redis_shorthand])
    }
}

impl Kind for ResponseRateLimiting {
    fn name(&self) -> &'static str {
        "response-ratelimiting"
    }

    fn priority(&self) -> i32 {
        900
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
        let scope = Scope::of(plugin);
        let header = |text: String| HeaderName::from_bytes(text.as_bytes()).ok();
        let mut limits: Vec<Limit> = config
            .get("limits")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, periods)| Limit {
                name: name.clone(),
                windows: PERIODS
                    .iter()
                    .filter_map(|&p| {
                        let limit = periods.get(p.name()).and_then(Value::as_f64)?;
                        Some(LimitWindow {
                            period: p,
                            limit,
                            limit_header: header(format!("x-ratelimit-limit-{name}-{}", p.name())),
                            remaining_header: header(format!(
                                "x-ratelimit-remaining-{name}-{}",
                                p.name()
                            )),
                            column: format!("{name}_{}", p.name()),
                        })
                    })
                    .collect(),
                upstream_header: header(format!("x-ratelimit-remaining-{name}")),
                local_scope: format!(
                    "response-ratelimit:{}:{}:{name}",
                    scope.route_id, scope.service_id
                ),
            })
            .collect();
        limits.sort_by(|a, b| a.name.cmp(&b.name));
        let header_name = config
            .get("header_name")
            .and_then(Value::as_str)
            .unwrap_or("x-kong-limit");
        let policy = config
            .get("policy")
            .and_then(Value::as_str)
            .unwrap_or("local");
        let flag =
            |f: &str, default: bool| config.get(f).and_then(Value::as_bool).unwrap_or(default);
        Ok(Arc::new(Instance {
            header_name: HeaderName::from_bytes(header_name.as_bytes())
                .map_err(|_| format!("invalid header_name '{header_name}'"))?,
            limits,
            limit_by: LimitBy::from_config(config)?,
            backend: env
                .counters
                .backend(policy, config.get("redis").and_then(Value::as_object))?,
            counters: env.counters.clone(),
            fault_tolerant: flag("fault_tolerant", true),
            block_on_first_violation: flag("block_on_first_violation", false),
            hide_client_headers: flag("hide_client_headers", false),
            scope,
        }))
    }
}

/// Parses the upstream's usage header(s): `name=N` items separated by commas; items that
/// name no configured limit, or are malformed, are ignored. One value per limit, in order.
fn increments(limits: &[Limit], values: http::header::GetAll<'_, HeaderValue>) -> Vec<Option<f64>> {
    let mut found = vec![None; limits.len()];
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.splitn(3, '=');
            let (Some(name), Some(count), None) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let Some(i) = limits.iter().position(|l| l.name == name.trim()) {
                found[i] = count.trim().parse::<f64>().ok().filter(|n| n.is_finite());
            }
        }
    }
    found
}

impl Instance {
    /// Kong's Redis key of a limit's window.
    fn redis_key(&self, identifier: &str, limit: &Limit, period: Period, start: i64) -> String {
        format!(
            "response-ratelimit:{}:{}:{identifier}:{}:{}:{}",
            self.scope.route_id,
            self.scope.service_id,
            start * 1000,
            limit.name,
            period.name()
        )
    }

    fn windows(&self) -> impl Iterator<Item = (&Limit, &LimitWindow)> {
        self.limits
            .iter()
            .flat_map(|l| l.windows.iter().map(move |w| (l, w)))
    }

    /// With the usage of every window (in order): blocks or tells the upstream what is left,
    /// and keeps the usage for `header_filter`.
    fn apply(&self, ctx: &mut Ctx, identifier: String, now: i64, usage: &[i64]) {
        let remaining: Vec<f64> = self
            .windows()
            .zip(usage)
            .map(|((_, w), used)| w.limit - *used as f64)
            .collect();
        let mut at = 0;
        for limit in &self.limits {
            let mut least: Option<f64> = None;
            for w in &limit.windows {
                let left = remaining.get(at).copied().unwrap_or(w.limit);
                at += 1;
                if self.block_on_first_violation && left == 0.0 {
                    ctx.exit(Exit::message(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!("API rate limit exceeded for '{}'", limit.name),
                    ));
                    return;
                }
                least = Some(least.map_or(left, |l: f64| l.min(left)));
            }
            if let (Some(header), Some(least)) = (&limit.upstream_header, least) {
                ctx.request.headers.insert(header.clone(), number(least));
            }
        }
        ctx.set_shared(
            USAGE,
            Usage {
                identifier,
                now,
                remaining,
            },
        );
    }

    fn failed(&self, error: &dyn std::fmt::Display) -> Result<(), PluginError> {
        if self.fault_tolerant {
            tracing::error!(plugin = "response-ratelimiting", error = %error, "failed to get usage");
            Ok(())
        } else {
            Err(PluginError::new(format!("response-ratelimiting: {error}")))
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
            .windows()
            .map(|(_, w)| CounterWindow {
                period: &w.column,
                start: w.period.start(now),
                expires: now + w.period.expiration(),
            })
            .collect();
        let owner = CounterOwner {
            identifier: &identifier,
            service_id: &self.scope.service_id,
            route_id: &self.scope.route_id,
        };
        match store
            .counter_values(MetricsTable::ResponseRateLimiting, owner, &windows)
            .await
        {
            Ok(usage) => {
                drop(windows);
                self.apply(ctx, identifier, now, &usage);
                self.counters.expire_store(now);
                Ok(())
            }
            Err(e) => self.failed(&e),
        }
    }

    async fn redis(
        &self,
        ctx: &mut Ctx,
        conn: &limits::RedisConn,
        identifier: String,
        now: i64,
    ) -> Result<(), PluginError> {
        let keys: Vec<String> = self
            .windows()
            .map(|(l, w)| self.redis_key(&identifier, l, w.period, w.period.start(now)))
            .collect();
        match conn.values(&keys).await {
            Ok(usage) => {
                self.apply(ctx, identifier, now, &usage);
                Ok(())
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Counts `increments` (one per limit) for `identifier`.
    fn count(&self, identifier: &str, now: i64, increments: &[Option<f64>]) {
        let counted = || {
            self.limits
                .iter()
                .zip(increments)
                .filter_map(|(l, inc)| Some((l, inc.filter(|n| *n != 0.0)?.round() as i64)))
        };
        match &self.backend {
            Backend::Local(local) => {
                for (limit, by) in counted() {
                    for w in &limit.windows {
                        let start = w.period.start(now);
                        let key = local.key(&limit.local_scope, identifier, w.period, start);
                        local.add(key, by, w.period.end(start), now);
                    }
                }
            }
            Backend::Cluster(store) => {
                let Some(store) = store.clone() else { return };
                let owner = (
                    identifier.to_owned(),
                    self.scope.service_id.clone(),
                    self.scope.route_id.clone(),
                );
                let work: Vec<(i64, Vec<OwnedWindow>)> = counted()
                    .map(|(limit, by)| {
                        let windows = limit
                            .windows
                            .iter()
                            .map(|w| {
                                (
                                    w.column.clone(),
                                    w.period.start(now),
                                    now + w.period.expiration(),
                                )
                            })
                            .collect();
                        (by, windows)
                    })
                    .collect();
                spawn(async move {
                    let owner = CounterOwner {
                        identifier: &owner.0,
                        service_id: &owner.1,
                        route_id: &owner.2,
                    };
                    for (by, windows) in work {
                        let windows: Vec<CounterWindow<'_>> = windows
                            .iter()
                            .map(|(period, start, expires)| CounterWindow {
                                period,
                                start: *start,
                                expires: *expires,
                            })
                            .collect();
                        if let Err(e) = store
                            .counter_add(MetricsTable::ResponseRateLimiting, owner, &windows, by)
                            .await
                        {
                            tracing::error!(plugin = "response-ratelimiting", error = %e, "cluster policy: could not increment counter");
                        }
                    }
                });
            }
            Backend::Redis(conn) => {
                let work: Vec<(i64, Vec<String>, Vec<i64>)> = counted()
                    .map(|(limit, by)| {
                        let keys = limit
                            .windows
                            .iter()
                            .map(|w| {
                                self.redis_key(identifier, limit, w.period, w.period.start(now))
                            })
                            .collect();
                        let exp = limit
                            .windows
                            .iter()
                            .map(|w| w.period.expiration())
                            .collect();
                        (by, keys, exp)
                    })
                    .collect();
                let conn = conn.clone();
                spawn(async move {
                    for (by, keys, exp) in work {
                        if let Err(e) = conn.add(&keys, by, &exp).await {
                            tracing::error!(plugin = "response-ratelimiting", error = %e, "redis policy: could not increment counter");
                        }
                    }
                });
            }
        }
    }
}

/// A datastore window owned by a background task: period column, start, expiry.
type OwnedWindow = (String, i64, i64);

/// Runs `task` in the background (when there is a runtime: always, in the proxy).
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(task);
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        if self.limits.is_empty() {
            return Ok(Step::Done);
        }
        let now = unix_now();
        let mut ip = IpText::default();
        let identifier = self.limit_by.identify(ctx, &mut ip).to_owned();
        match &self.backend {
            Backend::Local(local) => {
                let usage: Vec<i64> = self
                    .windows()
                    .map(|(l, w)| {
                        local.get(&local.key(
                            &l.local_scope,
                            &identifier,
                            w.period,
                            w.period.start(now),
                        ))
                    })
                    .collect();
                self.apply(ctx, identifier, now, &usage);
                Ok(Step::Done)
            }
            Backend::Cluster(store) => Ok(Step::Wait(Box::pin(self.cluster(
                ctx,
                store.as_ref(),
                identifier,
                now,
            )))),
            Backend::Redis(conn) => {
                Ok(Step::Wait(Box::pin(self.redis(ctx, conn, identifier, now))))
            }
        }
    }

    fn filters_headers(&self) -> bool {
        true
    }

    fn header_filter(
        &self,
        ctx: &mut Ctx,
        response: &mut http::response::Parts,
    ) -> Result<(), PluginError> {
        if self.limits.is_empty() {
            return Ok(());
        }
        let increments = increments(&self.limits, response.headers.get_all(&self.header_name));
        let Some(usage) = ctx.shared::<Usage>(USAGE) else {
            return Ok(());
        };
        let mut stop = false;
        let mut at = 0;
        for (limit, inc) in self.limits.iter().zip(&increments) {
            for w in &limit.windows {
                let left = usage.remaining.get(at).copied().unwrap_or(w.limit);
                at += 1;
                if !self.hide_client_headers {
                    if let (Some(lh), Some(rh)) = (&w.limit_header, &w.remaining_header) {
                        response.headers.insert(lh.clone(), number(w.limit));
                        response
                            .headers
                            .insert(rh.clone(), number((left - inc.unwrap_or(0.0)).max(0.0)));
                    }
                }
                if inc.is_some_and(|n| n > 0.0) && left <= 0.0 {
                    stop = true;
                }
            }
        }
        response.headers.remove(&self.header_name);
        if stop {
            // Kong's `kong.response.exit(429)` from header_filter: no body.
            response.status = StatusCode::TOO_MANY_REQUESTS;
            response.headers.remove(TRANSFER_ENCODING);
            response
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            ctx.set_shared(STOPPED, true);
            return Ok(());
        }
        let (identifier, now) = (usage.identifier.clone(), usage.now);
        self.count(&identifier, now, &increments);
        Ok(())
    }

    fn body_filter(&self, ctx: &mut Ctx, chunk: &mut Bytes, _eof: bool) -> Result<(), PluginError> {
        if ctx.shared::<bool>(STOPPED) == Some(&true) {
            *chunk = Bytes::new();
        }
        Ok(())
    }

    fn filters_body(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_headers_parse_as_kong_parses_them() {
        let limit = |name: &str| Limit {
            name: name.into(),
            windows: Vec::new(),
            upstream_header: None,
            local_scope: String::new(),
        };
        let limits = [limit("images"), limit("videos")];
        let mut headers = http::HeaderMap::new();
        headers.append(
            "x-kong-limit",
            HeaderValue::from_static(" videos = 2, bad, x=1, images=a"),
        );
        headers.append("x-kong-limit", HeaderValue::from_static("images=3=4"));
        assert_eq!(
            increments(&limits, headers.get_all("x-kong-limit")),
            [None, Some(2.0)]
        );
        headers.append("x-kong-limit", HeaderValue::from_static("images=1.5"));
        assert_eq!(
            increments(&limits, headers.get_all("x-kong-limit")),
            [Some(1.5), Some(2.0)]
        );
    }
}
