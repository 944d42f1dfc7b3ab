//! Kong's plugin queue (`kong.tools.queue`) for loggers that send batches: the `queue` config
//! record, batching with a coalescing delay, and retries with exponential backoff.
//!
//! Entries (encoded JSON) wait in a bounded queue of `max_entries` (and, if set, `max_bytes`);
//! one task takes up to `max_batch_size` of them — waiting at most `max_coalescing_delay`
//! after the first for more — and hands the batch to the [`Handler`]. A failing batch is
//! retried after `initial_retry_delay`, doubling up to `max_retry_delay`, until
//! `max_retry_time` has passed; then it is dropped. With `concurrency_limit = -1` every entry
//! is handed over on its own, at once, in its own task (no batching).
//!
//! Unlike Kong, a full queue refuses the newest entry rather than evicting the oldest: the
//! request side never touches entries already queued, which keeps it lock-free.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::log_sink::{Drops, Feed};
use crate::store::schema::{Doc, Field, Record};

/// Below this, coalescing stops waiting (Kong's `COALESCE_MIN_TIME`).
const COALESCE_MIN: Duration = Duration::from_millis(50);

/// The `queue` record.
pub fn queue_field() -> Field {
    Field::record(Record::new(vec![
        (
            "max_batch_size",
            Field::integer()
                .default(json!(1))
                .between(1.0, 1_000_000.0)
                .describe("Maximum number of entries that can be processed at a time."),
        ),
        (
            "max_coalescing_delay",
            Field::number()
                .default(json!(1))
                .between(0.0, 3600.0)
                .describe("Maximum number of (fractional) seconds to elapse after the first entry was queued before the queue starts calling the handler."),
        ),
        (
            "max_entries",
            Field::integer()
                .default(json!(10000))
                .between(1.0, 1_000_000.0)
                .describe("Maximum number of entries that can be waiting on the queue."),
        ),
        (
            "max_bytes",
            Field::integer().describe("Maximum number of bytes that can be waiting on a queue, requires string content."),
        ),
        (
            "max_retry_time",
            Field::number()
                .default(json!(60))
                .describe("Time in seconds before the queue gives up calling a failed handler for a batch."),
        ),
        (
            "initial_retry_delay",
            Field::number()
                .default(json!(0.01))
                .between(0.001, 1_000_000.0)
                .describe("Time in seconds before the initial retry is made for a failing batch."),
        ),
        (
            "max_retry_delay",
            Field::number()
                .default(json!(60))
                .between(0.001, 1_000_000.0)
                .describe("Maximum time in seconds between retries, caps exponential backoff."),
        ),
        (
            "concurrency_limit",
            Field::integer()
                .default(json!(1))
                .rule(crate::store::schema::Rule::OneOf(vec![json!(-1), json!(1)]))
                .describe("The number of of queue delivery timers. -1 indicates unlimited."),
        ),
    ]))
}

/// A validated `queue` record.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Entries per batch.
    pub max_batch_size: usize,
    /// How long to wait for a batch to fill.
    pub max_coalescing_delay: Duration,
    /// Entries that may wait.
    pub max_entries: usize,
    /// Bytes that may wait.
    pub max_bytes: Option<usize>,
    /// Seconds to keep retrying a batch (negative: never retry).
    pub max_retry_time: f64,
    /// First retry delay.
    pub initial_retry_delay: Duration,
    /// Longest retry delay.
    pub max_retry_delay: Duration,
    /// One delivery task (`false`), or one per entry (`concurrency_limit = -1`).
    pub unlimited: bool,
}

fn secs(v: Option<&Value>, default: f64) -> Duration {
    let s = v
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(s)
}

impl QueueConfig {
    /// The `queue` record of `config`, with the deprecated `queue_size` and `flush_timeout`
    /// applied when they differ from their old defaults (1 and 2), as Kong does.
    pub fn of(plugin: &str, config: &Doc) -> QueueConfig {
        let q = config.get("queue").and_then(Value::as_object);
        let get = |f: &str| q.and_then(|q| q.get(f)).filter(|v| !v.is_null());
        let int = |f: &str, d: u64| get(f).and_then(Value::as_u64).unwrap_or(d) as usize;
        let mut out = QueueConfig {
            max_batch_size: int("max_batch_size", 1).max(1),
            max_coalescing_delay: secs(get("max_coalescing_delay"), 1.0),
            max_entries: int("max_entries", 10_000).max(1),
            max_bytes: get("max_bytes").and_then(Value::as_u64).map(|b| b as usize),
            max_retry_time: get("max_retry_time")
                .and_then(Value::as_f64)
                .unwrap_or(60.0),
            initial_retry_delay: secs(get("initial_retry_delay"), 0.01),
            max_retry_delay: secs(get("max_retry_delay"), 60.0),
            unlimited: get("concurrency_limit").and_then(Value::as_i64) == Some(-1),
        };
        let legacy = |f: &str| config.get(f).filter(|v| !v.is_null());
        if let Some(n) = legacy("queue_size")
            .and_then(Value::as_u64)
            .filter(|n| *n != 1)
        {
            out.max_batch_size = (n as usize).max(1);
            tracing::warn!(plugin, "the queue_size parameter is deprecated, please update your configuration to use queue.max_batch_size instead");
        }
        if let Some(t) = legacy("flush_timeout")
            .and_then(Value::as_f64)
            .filter(|t| *t != 2.0)
        {
            out.max_coalescing_delay = secs(Some(&json!(t)), 2.0);
            tracing::warn!(plugin, "the flush_timeout parameter is deprecated, please update your configuration to use queue.max_coalescing_delay instead");
        }
        if legacy("retry_count")
            .and_then(Value::as_u64)
            .is_some_and(|n| n != 10)
        {
            tracing::warn!(plugin, "the retry_count parameter no longer works, please update your configuration to use initial_retry_delay and max_retry_time instead");
        }
        out
    }
}

/// What a queue delivers batches to. Cloned for each task when delivery is unlimited.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Delivers `batch`; an error is retried (and logged) by the queue.
    fn deliver(&mut self, batch: &[Bytes]) -> impl Future<Output = Result<(), String>> + Send;
}

/// Starts delivering one entry in its own task (unlimited concurrency); the permit is held
/// until it is delivered or given up.
type Spawner = Box<dyn Fn(Bytes, tokio::sync::OwnedSemaphorePermit) + Send + Sync>;

/// The request side of a queue.
pub struct Queue {
    feed: Option<Feed<Bytes>>,
    /// `concurrency_limit = -1`: one task per entry, at most `max_entries` at a time.
    unlimited: Option<(Arc<Semaphore>, Spawner)>,
    bytes_queued: Arc<AtomicUsize>,
    max_bytes: Option<usize>,
    max_entries: usize,
    warned: AtomicBool,
    drops: Arc<Drops>,
}

impl Queue {
    /// A queue delivering to `handler` as `config` says.
    pub fn start<H: Handler>(config: QueueConfig, handler: H, drops: Arc<Drops>) -> Queue {
        let bytes_queued = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(config);
        if config.unlimited {
            let d = drops.clone();
            let c = config.clone();
            let spawn = move |entry: Bytes, permit: tokio::sync::OwnedSemaphorePermit| {
                let (mut handler, drops, config) = (handler.clone(), d.clone(), c.clone());
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        deliver(&mut handler, vec![entry], &config, &drops).await;
                        drop(permit);
                    });
                } else {
                    drops.dropped(1, "no runtime to run the log task");
                }
            };
            return Queue {
                feed: None,
                unlimited: Some((
                    Arc::new(Semaphore::new(config.max_entries)),
                    Box::new(spawn),
                )),
                bytes_queued,
                max_bytes: None,
                max_entries: config.max_entries,
                warned: AtomicBool::new(false),
                drops,
            };
        }
        let bytes = bytes_queued.clone();
        let d = drops.clone();
        let c = config.clone();
        let feed = Feed::start(config.max_entries, drops.clone(), move |rx| {
            process(rx, handler, c, bytes, d)
        });
        Queue {
            feed: Some(feed),
            unlimited: None,
            bytes_queued,
            max_bytes: config.max_bytes,
            max_entries: config.max_entries,
            warned: AtomicBool::new(false),
            drops,
        }
    }

    /// Queues `entry` without waiting; drops it (counted and logged) when there is no room.
    pub fn push(&self, entry: Bytes) {
        if let Some((permits, spawn)) = &self.unlimited {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => spawn(entry, permit),
                Err(_) => self.drops.dropped(1, "queue full"),
            }
            return;
        }
        let Some(feed) = &self.feed else { return };
        let len = entry.len();
        if let Some(max) = self.max_bytes {
            if len > max {
                tracing::error!(
                    plugin = self.drops.plugin(),
                    "string to be queued is longer ({len} bytes) than the queue's max_bytes ({max} bytes)"
                );
                self.drops.dropped(1, "entry larger than max_bytes");
                return;
            }
            if self.bytes_queued.fetch_add(len, Ordering::Relaxed) + len > max {
                self.bytes_queued.fetch_sub(len, Ordering::Relaxed);
                self.drops.dropped(1, "byte capacity exceeded");
                return;
            }
        }
        let room = feed.room();
        if room * 5 <= self.max_entries {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(plugin = self.drops.plugin(), "log queue at 80% capacity");
            }
        } else if self.warned.load(Ordering::Relaxed) {
            self.warned.store(false, Ordering::Relaxed);
        }
        if !feed.push(entry) && self.max_bytes.is_some() {
            self.bytes_queued.fetch_sub(len, Ordering::Relaxed);
        }
    }
}

/// The delivery task: batches, then delivers each with retries, until the queue closes.
async fn process<H: Handler>(
    mut rx: mpsc::Receiver<Bytes>,
    mut handler: H,
    config: Arc<QueueConfig>,
    bytes_queued: Arc<AtomicUsize>,
    drops: Arc<Drops>,
) {
    while let Some(first) = rx.recv().await {
        let started = Instant::now();
        let mut batch = vec![first];
        while batch.len() < config.max_batch_size {
            let left = config
                .max_coalescing_delay
                .saturating_sub(started.elapsed());
            if left < COALESCE_MIN {
                break;
            }
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(entry)) => batch.push(entry),
                // Closed (the instance is gone) or waited long enough: deliver what there is.
                Ok(None) | Err(_) => break,
            }
        }
        if config.max_bytes.is_some() {
            let n: usize = batch.iter().map(Bytes::len).sum();
            bytes_queued.fetch_sub(n, Ordering::Relaxed);
        }
        drops.resumed();
        deliver(&mut handler, batch, &config, &drops).await;
    }
}

/// Delivers one batch, retrying with exponential backoff until `max_retry_time`.
async fn deliver<H: Handler>(
    handler: &mut H,
    batch: Vec<Bytes>,
    config: &QueueConfig,
    drops: &Drops,
) {
    let started = Instant::now();
    let mut retry: i32 = 0;
    loop {
        let error = match handler.deliver(&batch).await {
            Ok(()) => return,
            Err(e) => e,
        };
        tracing::warn!(plugin = drops.plugin(), error = %error, "handler could not process entries");
        if started.elapsed().as_secs_f64() > config.max_retry_time {
            tracing::error!(
                plugin = drops.plugin(),
                "could not send entries due to max_retry_time exceeded. {} queue entries were lost",
                batch.len()
            );
            drops.dropped(batch.len() as u64, "max_retry_time exceeded");
            return;
        }
        let delay = config
            .initial_retry_delay
            .mul_f64(2f64.powi(retry))
            .min(config.max_retry_delay);
        tokio::time::sleep(delay).await;
        retry = retry.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bundled::prometheus::Metrics;
    use std::sync::Mutex;

    #[derive(Clone)]
    struct Recorder {
        batches: Arc<Mutex<Vec<Vec<Bytes>>>>,
        failures_left: Arc<AtomicUsize>,
    }

    impl Handler for Recorder {
        async fn deliver(&mut self, batch: &[Bytes]) -> Result<(), String> {
            if self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("down".into());
            }
            if let Ok(mut b) = self.batches.lock() {
                b.push(batch.to_vec());
            }
            Ok(())
        }
    }

    fn config(v: Value) -> QueueConfig {
        QueueConfig::of("http-log", v.as_object().expect("object"))
    }

    #[test]
    fn defaults_and_legacy_parameters() {
        let c = config(json!({}));
        assert_eq!(c.max_batch_size, 1);
        assert_eq!(c.max_coalescing_delay, Duration::from_secs(1));
        assert_eq!(c.max_entries, 10_000);
        assert_eq!(c.max_bytes, None);
        assert_eq!(c.initial_retry_delay, Duration::from_millis(10));
        assert!(!c.unlimited);
        let c =
            config(json!({"queue": {"max_batch_size": 5}, "queue_size": 1, "flush_timeout": 2}));
        assert_eq!(c.max_batch_size, 5);
        let c =
            config(json!({"queue": {"max_batch_size": 5}, "queue_size": 7, "flush_timeout": 0.5}));
        assert_eq!(c.max_batch_size, 7);
        assert_eq!(c.max_coalescing_delay, Duration::from_millis(500));
    }

    #[tokio::test]
    async fn batches_coalesce_and_failures_are_retried() {
        let recorder = Recorder {
            batches: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(2)),
        };
        let drops = Drops::new("http-log", Metrics::new());
        let queue = Queue::start(
            config(json!({"queue": {"max_batch_size": 3, "max_coalescing_delay": 0.2}})),
            recorder.clone(),
            drops.clone(),
        );
        for i in 0..4 {
            queue.push(Bytes::from(i.to_string()));
        }
        // Two failures (10 ms, then 20 ms of backoff), then the second batch's delay.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let batches = recorder.batches.lock().expect("lock").clone();
        assert_eq!(
            batches,
            vec![
                vec![Bytes::from("0"), Bytes::from("1"), Bytes::from("2")],
                vec![Bytes::from("3")],
            ]
        );
        assert_eq!(drops.total(), 0);
    }

    #[tokio::test]
    async fn gives_up_after_max_retry_time_and_counts_the_loss() {
        let recorder = Recorder {
            batches: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(usize::MAX)),
        };
        let drops = Drops::new("http-log", Metrics::new());
        let queue = Queue::start(
            config(
                json!({"queue": {"max_retry_time": 1, "max_batch_size": 2, "max_coalescing_delay": 1}}),
            ),
            recorder.clone(),
            drops.clone(),
        );
        queue.push(Bytes::from("a"));
        queue.push(Bytes::from("b"));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(drops.total(), 2);
    }

    #[tokio::test]
    async fn max_bytes_bounds_what_waits() {
        let recorder = Recorder {
            batches: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(0)),
        };
        let drops = Drops::new("http-log", Metrics::new());
        let queue = Queue::start(
            config(
                json!({"queue": {"max_bytes": 10, "max_batch_size": 10, "max_coalescing_delay": 1}}),
            ),
            recorder.clone(),
            drops.clone(),
        );
        queue.push(Bytes::from("12345678901")); // larger than max_bytes
        queue.push(Bytes::from("123456"));
        queue.push(Bytes::from("123456")); // would exceed
        queue.push(Bytes::from("1234"));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(drops.total(), 2);
        let batches = recorder.batches.lock().expect("lock").clone();
        assert_eq!(
            batches,
            vec![vec![Bytes::from("123456"), Bytes::from("1234")]]
        );
    }

    #[tokio::test]
    async fn unlimited_concurrency_delivers_each_entry_on_its_own() {
        let recorder = Recorder {
            batches: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(0)),
        };
        let drops = Drops::new("http-log", Metrics::new());
        let queue = Queue::start(
            config(json!({"queue": {"concurrency_limit": -1, "max_batch_size": 10}})),
            recorder.clone(),
            drops.clone(),
        );
        for i in 0..3 {
            queue.push(Bytes::from(i.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut batches = recorder.batches.lock().expect("lock").clone();
        batches.sort();
        assert_eq!(
            batches,
            vec![
                vec![Bytes::from("0")],
                vec![Bytes::from("1")],
                vec![Bytes::from("2")]
            ]
        );
    }
}
