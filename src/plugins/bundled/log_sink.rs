//! What the logging plugins (`file-log`, `http-log`, `tcp-log`, `udp-log`, `syslog`) share:
//! the hand-off from the request to a background task, drop accounting, and
//! `custom_fields_by_lua`.
//!
//! A logger's `log` phase serializes the request ([`Ctx::serialize`]) and pushes the entry
//! into a bounded [`Feed`] without waiting; one task per plugin instance drains it and does
//! the I/O. When the feed is full the entry is dropped, counted (in the error log and in
//! `kong_log_entries_dropped_total`), and the request is not slowed down. The task ends
//! when the instance is dropped (its configuration changed or was removed) and the entries
//! already queued have been handled.
//!
//! [`Ctx::serialize`]: crate::plugins::Ctx::serialize

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::prometheus::Metrics;
use crate::plugins::ctx::{serialize_key_path, set_serialized};
use crate::store::schema::{Doc, Field};

/// How many entries a logger keeps waiting by default (Kong's `queue.max_entries` default).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Counts what a logger drops and says so in the error log, once per episode.
#[derive(Debug)]
pub struct Drops {
    plugin: &'static str,
    metrics: Arc<Metrics>,
    total: AtomicU64,
    dropping: AtomicBool,
}

impl Drops {
    /// Drop accounting for `plugin`, also reported in `metrics`.
    pub fn new(plugin: &'static str, metrics: Arc<Metrics>) -> Arc<Drops> {
        Arc::new(Drops {
            plugin,
            metrics,
            total: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
        })
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// Counts `n` entries lost because of `why`.
    pub fn dropped(&self, n: u64, why: &str) {
        let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
        self.metrics.log_dropped(self.plugin, n);
        // Logged when an episode starts, not per entry: a stuck sink must not flood the log.
        if !self.dropping.swap(true, Ordering::Relaxed) {
            tracing::error!(
                plugin = self.plugin,
                dropped_total = total,
                "{why}: dropping log entries until processing is successful again"
            );
        }
    }

    /// Marks the sink as working again after drops.
    pub fn resumed(&self) {
        if self.dropping.load(Ordering::Relaxed) && self.dropping.swap(false, Ordering::Relaxed) {
            tracing::info!(
                plugin = self.plugin,
                dropped_total = self.total.load(Ordering::Relaxed),
                "log queue resumed processing"
            );
        }
    }

    /// Entries dropped so far.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// A bounded queue of entries, drained by one background task.
#[derive(Debug)]
pub struct Feed<T> {
    tx: Option<mpsc::Sender<T>>,
    drops: Arc<Drops>,
}

impl<T: Send + 'static> Feed<T> {
    /// A feed of `capacity` entries drained by `drain`, which runs as a task until every sender
    /// is gone. Without a runtime (a configuration checked by the CLI) nothing runs and entries
    /// are dropped.
    pub fn start<F, Fut>(capacity: usize, drops: Arc<Drops>, drain: F) -> Feed<T>
    where
        F: FnOnce(mpsc::Receiver<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tx = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            rt.spawn(drain(rx));
            tx
        });
        Feed { tx, drops }
    }

    /// Queues `entry`, or drops it (counted) when the queue is full. Never waits. Whether the
    /// entry was queued.
    pub fn push(&self, entry: T) -> bool {
        let result = match &self.tx {
            Some(tx) => tx.try_send(entry).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "log task stopped",
            }),
            None => Err("no runtime to run the log task"),
        };
        match result {
            Ok(()) => true,
            Err(why) => {
                self.drops.dropped(1, why);
                false
            }
        }
    }

    /// Free places in the queue.
    pub fn room(&self) -> usize {
        self.tx.as_ref().map_or(0, mpsc::Sender::capacity)
    }
}

/// Receives the next entry and every entry already waiting, up to `max`.
pub async fn next_batch<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(entry) => batch.push(entry),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// The `custom_fields_by_lua` field: log field → Lua expression.
pub fn custom_fields_field() -> Field {
    Field::map(Field::string().len_min(1), Field::string().len_min(1)).describe(
        "A list of key-value pairs, where the key is the name of a log field and the value is a chunk of Lua code, whose return value sets or replaces the log field value.",
    )
}

/// `custom_fields_by_lua`, evaluated at build time.
///
/// There is no Lua runtime: chunks that return a constant (`return "x"`, `return 42`,
/// `return true`, `return nil`) are supported, and set (or, for `nil`, remove) the field as
/// `kong.log.set_serialize_value` does — a dotted key (`a.b`) addresses a nested field, `\.`
/// is a literal dot. Other chunks are left out, with a warning when the instance is built.
#[derive(Debug, Clone, Default)]
pub struct CustomFields(Vec<(Vec<String>, Option<Value>)>);

impl CustomFields {
    /// The fields of `config`'s `custom_fields_by_lua`.
    pub fn of(plugin: &str, config: &Doc) -> CustomFields {
        let Some(map) = config
            .get("custom_fields_by_lua")
            .and_then(Value::as_object)
        else {
            return CustomFields::default();
        };
        let mut fields = Vec::new();
        for (key, chunk) in map {
            let Some(chunk) = chunk.as_str() else {
                continue;
            };
            match constant(chunk) {
                Some(value) => fields.push((serialize_key_path(key), value)),
                None => tracing::warn!(
                    plugin,
                    field = %key,
                    "custom_fields_by_lua: only chunks returning a constant are supported; field left out"
                ),
            }
        }
        CustomFields(fields)
    }

    /// Sets the fields in `entry`.
    pub fn apply(&self, entry: &mut Value) {
        for (path, value) in &self.0 {
            set_serialized(entry, path, value.as_ref());
        }
    }
}

/// The constant a Lua chunk returns: `Some(None)` for `nil`, `None` when it is not a constant.
fn constant(chunk: &str) -> Option<Option<Value>> {
    let expr = chunk.trim().strip_prefix("return")?;
    if !expr.starts_with(char::is_whitespace) && !expr.starts_with(['"', '\'']) {
        return None;
    }
    let expr = expr.trim().trim_end_matches(';').trim_end();
    match expr {
        "nil" => return Some(None),
        "true" => return Some(Some(Value::Bool(true))),
        "false" => return Some(Some(Value::Bool(false))),
        _ => {}
    }
    if let Ok(i) = expr.parse::<i64>() {
        return Some(Some(Value::from(i)));
    }
    if let Ok(f) = expr.parse::<f64>() {
        return serde_json::Number::from_f64(f).map(|n| Some(Value::Number(n)));
    }
    if let Some(inner) = expr.strip_prefix("[[").and_then(|e| e.strip_suffix("]]")) {
        return Some(Some(Value::from(inner.strip_prefix('\n').unwrap_or(inner))));
    }
    let quote = expr.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let body = expr.get(1..)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            }),
            c if c == quote => return None,
            c => out.push(c),
        }
    }
    Some(Some(Value::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constants_are_understood() {
        assert_eq!(constant("return 'a b'"), Some(Some(json!("a b"))));
        assert_eq!(constant("return \"x\\\"y\""), Some(Some(json!("x\"y"))));
        assert_eq!(constant("  return 42 "), Some(Some(json!(42))));
        assert_eq!(constant("return 1.5"), Some(Some(json!(1.5))));
        assert_eq!(constant("return true"), Some(Some(json!(true))));
        assert_eq!(constant("return nil"), Some(None));
        assert_eq!(constant("return [[long]]"), Some(Some(json!("long"))));
        assert_eq!(constant("return kong.request.get_header('x')"), None);
        assert_eq!(constant("return 'a' .. 'b'"), None);
        assert_eq!(constant("returnx"), None);
    }

    #[test]
    fn fields_are_set_nested_and_removed() {
        let config = json!({"custom_fields_by_lua": {
            "env": "return 'prod'",
            "a.b": "return 1",
            "x\\.y": "return true",
            "client_ip": "return nil",
            "dynamic": "return ngx.var.host",
        }});
        let fields = CustomFields::of("file-log", config.as_object().expect("object"));
        let mut entry = json!({"client_ip": "1.2.3.4", "a": {"c": 2}});
        fields.apply(&mut entry);
        assert_eq!(
            entry,
            json!({"env": "prod", "a": {"b": 1, "c": 2}, "x.y": true})
        );
    }

    #[tokio::test]
    async fn a_full_feed_drops_and_counts() {
        let metrics = Metrics::new();
        let drops = Drops::new("udp-log", metrics.clone());
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let feed: Feed<u32> = Feed::start(2, drops.clone(), |mut rx| async move {
            let _ = wait.await;
            while rx.recv().await.is_some() {}
        });
        for i in 0..5 {
            feed.push(i);
        }
        assert_eq!(drops.total(), 3);
        assert_eq!(metrics.log_drops("udp-log"), 3);
        let _ = release.send(());
    }
}
