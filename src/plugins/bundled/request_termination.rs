//! `request-termination` (priority 2): answers every request itself with a fixed status and
//! message or body, optionally only when a trigger header or query argument is present, or
//! echoes the request back as JSON (for debugging).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::plugins::{BuildEnv, Ctx, Exit, Kind, Plugin, PluginError, Step};
use crate::store::schema::{
    Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct RequestTermination;

/// One configured instance.
struct Instance {
    status: StatusCode,
    message: Option<String>,
    body: Option<(Bytes, Option<HeaderValue>)>,
    echo: bool,
    trigger: Option<String>,
    node_id: String,
    hostname: String,
}

fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        _ => return None,
    })
}

fn checks(doc: &Doc, _: &Context<'_>, path: &Path, errs: &mut SchemaErrors) {
    let set = |f: &str| doc.get(f).is_some_and(|v| !v.is_null());
    if set("message") && (set("body") || set("content_type")) {
        errs.field(path, "message cannot be used with content_type or body");
    }
    if set("content_type") && !set("body") {
        errs.field(path, "content_type requires a body");
    }
}

impl Kind for RequestTermination {
    fn name(&self) -> &'static str {
        "request-termination"
    }

    fn priority(&self) -> i32 {
        2
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "status_code",
                Field::integer().between(100.0, 599.0).default(json!(503)),
            ),
            ("message", Field::string()),
            ("content_type", Field::string()),
            ("body", Field::string()),
            ("echo", Field::boolean().required().default(json!(false))),
            ("trigger", Field::string()),
        ])
        .checks(vec![EntityCheck::Custom(checks)]);
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
        let text = |f: &str| config.get(f).and_then(Value::as_str).map(str::to_owned);
        let code = config
            .get("status_code")
            .and_then(Value::as_u64)
            .unwrap_or(503);
        let status = u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| format!("status_code {code} is not a status"))?;
        let body = text("body").map(|b| {
            let ct = text("content_type").and_then(|c| HeaderValue::from_str(&c).ok());
            (Bytes::from(b), ct)
        });
        Ok(Arc::new(Instance {
            status,
            message: text("message"),
            body,
            echo: config.get("echo").and_then(Value::as_bool).unwrap_or(false),
            trigger: text("trigger").filter(|t| !t.is_empty()),
            node_id: env.node_id.clone(),
            hostname: env.hostname.clone(),
        }))
    }
}

impl Instance {
    fn triggered(&self, ctx: &Ctx) -> bool {
        let Some(trigger) = &self.trigger else {
            return true;
        };
        if ctx.request.headers.contains_key(trigger.as_str()) {
            return true;
        }
        let query = ctx.request.uri.query().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == trigger.as_str())
    }

    fn echo(&self, ctx: &Ctx) -> Value {
        let mut headers = Map::new();
        for (name, value) in &ctx.request.headers {
            headers.insert(
                name.as_str().to_owned(),
                Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
        }
        let mut query = Map::new();
        for (k, v) in form_urlencoded::parse(ctx.request.uri.query().unwrap_or_default().as_bytes())
        {
            query.insert(k.into_owned(), Value::from(v.into_owned()));
        }
        let host = ctx.header("host").unwrap_or_default();
        let raw_body = ctx
            .request_body()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let matched = |entity: &str, id: Option<&str>| {
            id.and_then(|id| ctx.snapshot().index.get(entity, id))
                .map_or(Value::Null, |d| Value::Object((**d).clone()))
        };
        json!({
            "message": self.message.clone().or_else(|| default_message(self.status.as_u16()).map(str::to_owned)),
            "kong": {
                "node_id": self.node_id,
                "worker_pid": std::process::id(),
                "hostname": self.hostname,
            },
            "request": {
                "scheme": ctx.scheme(),
                "host": host.rsplit_once(':').map_or(host, |(h, _)| h),
                "port": ctx.request.uri.port_u16(),
                "headers": headers,
                "query": query,
                "body": serde_json::from_str::<Value>(&raw_body).unwrap_or(Value::Null),
                "raw_body": raw_body,
                "method": ctx.request.method.as_str(),
                "path": ctx.log.uri.path(),
            },
            "matched_route": matched("routes", ctx.route().map(|r| r.id.as_str())),
            "matched_service": matched("services", ctx.service().map(|s| s.id.as_str())),
        })
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        if !self.triggered(ctx) {
            return Ok(Step::Done);
        }
        let exit = if self.echo {
            Exit::json(self.status, &self.echo(ctx))
        } else if let Some((body, content_type)) = &self.body {
            let mut exit = Exit::message(self.status, "");
            exit.body = body.clone();
            match content_type {
                Some(ct) => exit.headers.insert(CONTENT_TYPE, ct.clone()),
                None => exit.headers.remove(CONTENT_TYPE),
            };
            exit
        } else {
            match self
                .message
                .as_deref()
                .or_else(|| default_message(self.status.as_u16()))
            {
                Some(m) => Exit::message(self.status, m),
                None => Exit {
                    status: self.status,
                    headers: http::HeaderMap::new(),
                    body: Bytes::new(),
                },
            }
        };
        ctx.exit(exit);
        Ok(Step::Done)
    }

    fn reads_request_body(&self) -> bool {
        self.echo
    }
}
