//! `file-log` (priority 9): appends each request's log entry as one JSON line to `path`
//! (created with mode 0644 when absent). With `reopen`, the file is closed and opened again
//! for every write, so an external rotation is followed at once; without it, the file stays
//! open for the life of the instance.
//!
//! The request only queues its entry; a background task writes whatever has accumulated in
//! one `write` (lines are never split: appends of whole lines).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::log_sink::{self, CustomFields, Drops, Feed};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct FileLog;

struct Instance {
    feed: Feed<Value>,
    custom: CustomFields,
}

/// Kong's rule for `path` (Lua pattern `^[^%s*&%%\`][^*&%%\`]*[^%s*&%%\`]$`): at least two
/// characters, none of `*&%` and backtick, not starting or ending with whitespace.
fn valid_path(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let bad = |c: char| matches!(c, '*' | '&' | '%' | '`');
    let chars: Vec<char> = s.chars().collect();
    let ok = chars.len() >= 2
        && !chars.iter().any(|c| bad(*c))
        && chars.first().is_some_and(|c| !c.is_whitespace())
        && chars.last().is_some_and(|c| !c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err("not a valid filename".into())
    }
}

impl Kind for FileLog {
    fn name(&self) -> &'static str {
        "file-log"
    }

    fn priority(&self) -> i32 {
        9
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "path",
                Field::string()
                    .required()
                    .custom("filename", valid_path)
                    .describe("The file path of the output log file. The plugin creates the log file if it doesn't exist yet."),
            ),
            (
                "reopen",
                Field::boolean()
                    .required()
                    .default(json!(false))
                    .describe("Determines whether the log file is closed and reopened on every request."),
            ),
            ("custom_fields_by_lua", log_sink::custom_fields_field()),
        ]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let path = config
            .get("path")
            .and_then(Value::as_str)
            .ok_or("path is required")?;
        let writer = Writer {
            path: PathBuf::from(path),
            reopen: config
                .get("reopen")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            file: None,
        };
        let drops = Drops::new(self.name(), env.metrics.clone());
        let feed = Feed::start(log_sink::DEFAULT_CAPACITY, drops.clone(), move |rx| {
            write_loop(rx, writer, drops)
        });
        Ok(Arc::new(Instance {
            feed,
            custom: CustomFields::of(self.name(), config),
        }))
    }
}

/// The open file, or how to open it.
struct Writer {
    path: PathBuf,
    reopen: bool,
    file: Option<std::fs::File>,
}

impl Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.reopen {
            self.file = None;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o644)
                    .open(&self.path)?,
            ),
        };
        let written = file.write_all(bytes);
        if written.is_err() {
            // Opened again next time: the file may have been removed or its disk replaced.
            self.file = None;
        }
        written
    }
}

async fn write_loop(mut rx: mpsc::Receiver<Value>, mut writer: Writer, drops: Arc<Drops>) {
    while let Some(batch) = log_sink::next_batch(&mut rx, 512).await {
        let n = batch.len() as u64;
        let mut buf = Vec::with_capacity(batch.len() * 1024);
        for entry in batch {
            if serde_json::to_writer(&mut buf, &entry).is_ok() {
                buf.push(b'\n');
            }
        }
        // File I/O blocks: it runs on the blocking pool, one batch at a time.
        let done = tokio::task::spawn_blocking(move || {
            let result = writer.write(&buf);
            (writer, result)
        })
        .await;
        match done {
            Ok((w, Ok(()))) => {
                writer = w;
                drops.resumed();
            }
            Ok((w, Err(e))) => {
                tracing::error!(plugin = "file-log", path = %w.path.display(), error = %e, "failed to write the log file");
                writer = w;
                drops.dropped(n, "log file not writable");
            }
            Err(_) => return,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_kong_accepts_them() {
        for ok in ["/tmp/a.log", "relative.log", "/var/log/my file.log"] {
            assert!(valid_path(&json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/tmp/*.log",
            " /tmp/a",
            "/tmp/a ",
            "a",
            "/tmp/a&b",
            "/tmp/%s",
            "/tmp/`x`",
        ] {
            assert_eq!(
                valid_path(&json!(bad)),
                Err("not a valid filename".into()),
                "{bad}"
            );
        }
    }
}
