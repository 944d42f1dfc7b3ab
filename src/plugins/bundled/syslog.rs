//! `syslog` (priority 4): sends each request's log entry as JSON to the local syslog daemon
//! (the `/dev/log` datagram socket), in the format of the C library's `syslog(3)` (RFC 3164
//! without the host name, as local messages are): `<PRI>Mmm dd hh:mm:ss kong[pid]: {...}`.
//!
//! The severity depends on the response status — `successful_severity` below 400,
//! `client_errors_severity` for 4xx, `server_errors_severity` from 500 — and the entry is sent
//! only when that severity is at least as severe as `log_level`. PRI = facility × 8 + severity.
//!
//! Kong has no setting for the socket; the environment variable `KONG_SYSLOG_SOCKET`, read
//! once, replaces `/dev/log` (for tests, and hosts whose daemon listens elsewhere).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

use super::log_sink::{self, CustomFields, Drops, Feed};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct Syslog;

const SEVERITIES: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The ident messages carry.
const IDENT: &str = "kong";

/// The syslog socket: `KONG_SYSLOG_SOCKET` if set (read once), else `/dev/log`.
fn socket_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os("KONG_SYSLOG_SOCKET")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
    })
}

struct Instance {
    feed: Feed<(u8, Value)>,
    custom: CustomFields,
    /// Numeric severity threshold (`log_level`): entries more verbose are not sent.
    level: u8,
    successful: u8,
    client_errors: u8,
    server_errors: u8,
    facility: u8,
}

fn severity_field(doc: &'static str) -> Field {
    Field::string()
        .required()
        .default(json!("info"))
        .one_of(SEVERITIES)
        .describe(doc)
}

fn severity(config: &Doc, field: &str) -> Result<u8, String> {
    let name = config.get(field).and_then(Value::as_str).unwrap_or("info");
    SEVERITIES
        .iter()
        .position(|s| *s == name)
        .map(|p| p as u8)
        .ok_or_else(|| format!("{field}: unknown severity '{name}'"))
}

impl Kind for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn priority(&self) -> i32 {
        4
    }

    fn schema(&self) -> PluginSchema {
        let facilities: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
        let config = Record::new(vec![
            ("log_level", severity_field("The minimum severity a message must have to be logged.")),
            ("successful_severity", severity_field("The severity of requests answered with a status below 400.")),
            ("client_errors_severity", severity_field("The severity of requests answered with a 4xx status.")),
            ("server_errors_severity", severity_field("The severity of requests answered with a status of 500 or more.")),
            ("custom_fields_by_lua", log_sink::custom_fields_field()),
            (
                "facility",
                Field::string()
                    .required()
                    .default(json!("user"))
                    .one_of(&facilities)
                    .describe("The facility is used by the operating system to decide how to handle each log message."),
            ),
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
        let facility_name = config
            .get("facility")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let facility = FACILITIES
            .iter()
            .find(|(n, _)| *n == facility_name)
            .map(|(_, code)| *code)
            .ok_or_else(|| format!("facility: unknown facility '{facility_name}'"))?;
        let drops = Drops::new(self.name(), env.metrics.clone());
        let feed = Feed::start(log_sink::DEFAULT_CAPACITY, drops.clone(), move |rx| {
            send_loop(rx, socket_path().clone(), drops)
        });
        Ok(Arc::new(Instance {
            feed,
            custom: CustomFields::of(self.name(), config),
            level: severity(config, "log_level")?,
            successful: severity(config, "successful_severity")?,
            client_errors: severity(config, "client_errors_severity")?,
            server_errors: severity(config, "server_errors_severity")?,
            facility,
        }))
    }
}

/// One message as `syslog(3)` writes it to the local socket.
fn format_message(pri: u8, at: time::OffsetDateTime, pid: u32, message: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::from(u8::from(at.month())) - 1];
    format!(
        "<{pri}>{month} {:>2} {:02}:{:02}:{:02} {IDENT}[{pid}]: {message}",
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

async fn send_loop(mut rx: mpsc::Receiver<(u8, Value)>, path: PathBuf, drops: Arc<Drops>) {
    let mut socket: Option<UnixDatagram> = None;
    let pid = std::process::id();
    while let Some((pri, entry)) = rx.recv().await {
        let message = format_message(
            pri,
            time::OffsetDateTime::now_utc(),
            pid,
            &entry.to_string(),
        );
        let sock = match &socket {
            Some(s) => s,
            None => match UnixDatagram::unbound().and_then(|s| s.connect(&path).map(|()| s)) {
                Ok(s) => socket.insert(s),
                Err(e) => {
                    tracing::error!(plugin = "syslog", socket = %path.display(), error = %e, "could not connect to syslog");
                    drops.dropped(1, "syslog unreachable");
                    continue;
                }
            },
        };
        match sock.send(message.as_bytes()).await {
            Ok(_) => drops.resumed(),
            Err(e) => {
                tracing::error!(plugin = "syslog", socket = %path.display(), error = %e, "could not send to syslog");
                // The daemon may have restarted: connect again next time.
                socket = None;
                drops.dropped(1, "could not send to syslog");
            }
        }
    }
}

impl Plugin for Instance {
    fn log(&self, ctx: &Ctx) {
        let severity = match ctx.log.status {
            500.. => self.server_errors,
            400..=499 => self.client_errors,
            _ => self.successful,
        };
        // Lower numbers are more severe.
        if severity > self.level {
            return;
        }
        let mut entry = ctx.serialize();
        self.custom.apply(&mut entry);
        self.feed.push((self.facility * 8 + severity, entry));
    }

    fn logs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_look_like_syslog3() {
        let at = time::macros::datetime!(2024-03-05 07:08:09 UTC);
        assert_eq!(
            format_message(14, at, 42, "{}"),
            "<14>Mar  5 07:08:09 kong[42]: {}"
        );
    }
}
