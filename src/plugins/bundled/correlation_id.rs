//! `correlation-id` (priority 100001): gives every request an id in `header_name` (default
//! `Kong-Request-ID`) on its way upstream, unless the client sent one; the id is added to the
//! log serializer as `correlation_id`, and echoed in the response with `echo_downstream`.
//!
//! Generators: `uuid` (a random v4 UUID), `uuid#counter` (default: one UUID per node process
//! and a counter, `<uuid>#<n>`), `tracker`
//! (`<server addr>-<server port>-<pid>-<connection>-<connection requests>-<seconds.millis>`).
//! The listener does not number connections, so `tracker` uses a node-wide serial for the
//! connection and `1` for the requests on it: the ids stay unique, the two middle fields do
//! not tell which requests shared a connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::header::{HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// [`Ctx::shared`] key of the id to echo.
const ECHO: &str = "correlation-id";

/// The kind.
pub struct CorrelationId;

#[derive(Debug, Clone, Copy)]
enum Generator {
    Uuid,
    UuidCounter,
    Tracker,
}

/// One configured instance.
struct Instance {
    header: HeaderName,
    generator: Generator,
    echo: bool,
}

/// The node-wide state of `uuid#counter` and `tracker`: shared by every instance and every
/// configuration snapshot, so ids never repeat while the process lives (Kong keeps one per
/// worker).
struct Counter {
    uuid: String,
    next: AtomicU64,
}

fn counter() -> &'static Counter {
    static COUNTER: OnceLock<Counter> = OnceLock::new();
    COUNTER.get_or_init(|| Counter {
        uuid: uuid::Uuid::new_v4().to_string(),
        next: AtomicU64::new(0),
    })
}

impl Generator {
    fn generate(self, ctx: &Ctx) -> String {
        match self {
            Generator::Uuid => uuid::Uuid::new_v4().to_string(),
            Generator::UuidCounter => {
                let c = counter();
                let n = c.next.fetch_add(1, Ordering::Relaxed) + 1;
                format!("{}#{n}", c.uuid)
            }
            Generator::Tracker => {
                let (addr, port) = ctx
                    .server_addr()
                    .map_or((String::new(), 0), |a| (a.ip().to_string(), a.port()));
                let serial = counter().next.fetch_add(1, Ordering::Relaxed) + 1;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!(
                    "{addr}-{port}-{}-{serial}-1-{}.{:03}",
                    std::process::id(),
                    now.as_secs(),
                    now.subsec_millis()
                )
            }
        }
    }
}

impl Kind for CorrelationId {
    fn name(&self) -> &'static str {
        "correlation-id"
    }

    fn priority(&self) -> i32 {
        100001
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "header_name",
                Field::string().default(json!("Kong-Request-ID")),
            ),
            (
                "generator",
                Field::string()
                    .required()
                    .default(json!("uuid#counter"))
                    .one_of(&["uuid", "uuid#counter", "tracker"]),
            ),
            (
                "echo_downstream",
                Field::boolean().required().default(json!(false)),
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

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let name = config
            .get("header_name")
            .and_then(Value::as_str)
            .unwrap_or("Kong-Request-ID");
        let header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("header_name '{name}' is not a header name"))?;
        let generator = match config.get("generator").and_then(Value::as_str) {
            Some("uuid") => Generator::Uuid,
            Some("tracker") => Generator::Tracker,
            _ => Generator::UuidCounter,
        };
        Ok(Arc::new(Instance {
            header,
            generator,
            echo: config
                .get("echo_downstream")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    }
}

impl Instance {
    /// The id the client sent, when it is not empty.
    fn sent(&self, ctx: &Ctx) -> Option<String> {
        ctx.request
            .headers
            .get(&self.header)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let id = match self.sent(ctx) {
            Some(id) => id,
            None => {
                let id = self.generator.generate(ctx);
                if let Ok(v) = HeaderValue::from_str(&id) {
                    ctx.request.headers.insert(self.header.clone(), v);
                }
                id
            }
        };
        ctx.set_serialize_value("correlation_id", Some(Value::String(id.clone())));
        if self.echo {
            ctx.set_shared(ECHO, id);
        }
        Ok(Step::Done)
    }

    fn filters_headers(&self) -> bool {
        true
    }

    fn header_filter(
        &self,
        ctx: &mut Ctx,
        response: &mut http::response::Parts,
    ) -> Result<(), PluginError> {
        if !self.echo {
            return Ok(());
        }
        // `access` may not have run (an earlier plugin answered): the request's own id, or a
        // fresh one, as Kong does.
        let id = match ctx.shared::<String>(ECHO) {
            Some(id) => id.clone(),
            None => self
                .sent(ctx)
                .unwrap_or_else(|| self.generator.generate(ctx)),
        };
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers.insert(self.header.clone(), v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn ctx(headers: &[(&'static str, &'static str)]) -> Ctx {
        let mut request = http::Request::new(());
        for (k, v) in headers {
            request
                .headers_mut()
                .insert(*k, HeaderValue::from_static(v));
        }
        Ctx::new(
            Arc::new(Snapshot::empty()),
            request.into_parts().0,
            std::net::IpAddr::from([127, 0, 0, 1]),
            "http",
            "request-id",
            std::time::Instant::now(),
        )
    }

    fn instance(generator: Generator, echo: bool) -> Instance {
        Instance {
            header: HeaderName::from_static("kong-request-id"),
            generator,
            echo,
        }
    }

    #[test]
    fn the_id_reaches_the_log_serializer() {
        let mut c = ctx(&[]);
        assert!(instance(Generator::Uuid, false).access(&mut c).is_ok());
        let sent = c.header("kong-request-id").map(str::to_owned);
        assert!(sent.is_some());
        assert_eq!(
            c.serialize()["correlation_id"].as_str(),
            sent.as_deref(),
            "the serializer carries the id sent upstream"
        );
        let mut c = ctx(&[("kong-request-id", "given")]);
        assert!(instance(Generator::UuidCounter, false)
            .access(&mut c)
            .is_ok());
        assert_eq!(c.serialize()["correlation_id"], "given");
    }

    #[test]
    fn counters_grow_across_instances() {
        let c = ctx(&[]);
        let a = Generator::UuidCounter.generate(&c);
        let b = Generator::UuidCounter.generate(&c);
        let (ua, na) = a.split_once('#').expect("uuid#n");
        let (ub, nb) = b.split_once('#').expect("uuid#n");
        assert_eq!(ua, ub);
        assert!(nb.parse::<u64>().ok() > na.parse::<u64>().ok());
    }
}
