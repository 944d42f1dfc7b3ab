//! `request-transformer` (priority 801): changes the request on its way upstream.
//!
//! In Kong's order: `replace.uri` (the whole upstream path), `http_method` (for `GET`, `HEAD`
//! and `TRACE` a form body's fields also join the query), headers, body, query string. Within
//! headers, body and query: remove → rename → replace (only what is present; `Host` always)
//! → add (only what is absent; never `Host`) → append. Bodies are JSON, form-urlencoded or
//! multipart (no append for multipart, as in Kong); remove, rename and replace apply only to a
//! non-empty body. A changed body gets a new `Content-Length`; a changed query string is
//! re-encoded with its names sorted.
//!
//! Values may hold `$(headers.x)`, `$(query_params.x)` and `$(uri_captures.x)` expressions
//! ([`template`]); they read the request as the client sent it.

mod args;
mod multipart;
mod template;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method};
use serde_json::{json, Map, Value};

use super::transform::{self, split};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};
use args::Args;
use multipart::Multipart;
use template::{Env, Source, Template};

/// The kind.
pub struct RequestTransformer;

/// A `name:value` entry; `value` is `None` when the entry has none (it then does nothing).
struct Entry<N> {
    name: N,
    value: Option<Template>,
}

/// One target's operations (headers, query string or body).
struct Ops<N> {
    remove: Vec<N>,
    rename: Vec<(N, Template)>,
    replace: Vec<Entry<N>>,
    add: Vec<Entry<N>>,
    append: Vec<Entry<N>>,
}

impl<N> Ops<N> {
    fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }

    fn templates(&self) -> impl Iterator<Item = &Template> {
        self.rename.iter().map(|(_, t)| t).chain(
            self.replace
                .iter()
                .chain(&self.add)
                .chain(&self.append)
                .filter_map(|e| e.value.as_ref()),
        )
    }
}

/// Body encodings the plugin transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Multipart,
    Form,
}

/// Kong's `get_content_type`: a case-insensitive substring test, JSON first.
fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let ct = headers
        .get(CONTENT_TYPE)?
        .to_str()
        .ok()?
        .to_ascii_lowercase();
    if ct.contains("application/json") {
        Some(BodyKind::Json)
    } else if ct.contains("multipart/form-data") {
        Some(BodyKind::Multipart)
    } else if ct.contains("application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else {
        None
    }
}

/// One configured instance.
struct Instance {
    uri: Option<Template>,
    method: Option<Method>,
    headers: Ops<HeaderName>,
    query: Ops<String>,
    body: Ops<String>,
    uses_headers: bool,
    uses_query: bool,
    uses_captures: bool,
}

// ---------------------------------------------------------------------------------------------
// Schema

/// Kong's `check_for_value`: `name:value` with a value that is a supported template.
fn check_for_value(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    match split(s) {
        Some((_, Some(value))) => check_template(value),
        Some((name, None)) => Err(format!("key '{name}' has no value")),
        None => Err(format!("key '{s}' has no value")),
    }
}

fn check_template(value: &str) -> Result<(), String> {
    Template::parse(value)
        .map(|_| ())
        .map_err(|e| format!("value '{value}' is not in supported format, error:{e}"))
}

fn header_value_entry(v: &Value) -> Result<(), String> {
    transform::colon_header_entry(v)?;
    match split(v.as_str().unwrap_or_default()) {
        Some((_, Some(value))) => check_template(value),
        _ => Ok(()),
    }
}

fn uri_template(v: &Value) -> Result<(), String> {
    check_template(v.as_str().unwrap_or_default())
}

fn http_method(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

fn array(element: Field) -> Field {
    Field::array(element).required().default(json!([]))
}

fn schema_config() -> Record {
    let strings = || array(Field::string());
    let values = || array(Field::string().custom("check_for_value", check_for_value));
    let record = |headers: Field, uri: bool| {
        let mut fields = vec![
            ("body", values()),
            ("headers", headers),
            ("querystring", values()),
        ];
        if uri {
            fields.push(("uri", Field::string().custom("template", uri_template)));
        }
        Field::record(Record::new(fields))
    };
    let header_values = || array(Field::string().custom("header", header_value_entry));
    Record::new(vec![
        (
            "http_method",
            Field::string().custom("http_method", http_method),
        ),
        (
            "remove",
            Field::record(Record::new(vec![
                ("body", strings()),
                (
                    "headers",
                    array(Field::string().custom("header", transform::header_entry)),
                ),
                ("querystring", strings()),
            ])),
        ),
        (
            "rename",
            record(
                array(Field::string().custom("header", transform::colon_header_rename)),
                false,
            ),
        ),
        ("replace", record(header_values(), true)),
        ("add", record(header_values(), false)),
        ("append", record(header_values(), false)),
    ])
}

// ---------------------------------------------------------------------------------------------
// Build

fn list<'a>(config: &'a Doc, op: &str, field: &str) -> impl Iterator<Item = &'a str> {
    config
        .get(op)
        .and_then(|o| o.get(field))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn header(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| format!("'{name}' is not a valid header"))
}

fn ops<N>(
    config: &Doc,
    field: &str,
    name: impl Fn(&str) -> Result<N, String>,
) -> Result<Ops<N>, String> {
    let entries = |op: &str| -> Result<Vec<Entry<N>>, String> {
        list(config, op, field)
            .filter_map(split)
            .map(|(n, v)| {
                Ok(Entry {
                    name: name(n)?,
                    value: v.map(Template::parse).transpose()?,
                })
            })
            .collect()
    };
    Ok(Ops {
        remove: list(config, "remove", field)
            .filter_map(split)
            .map(|(n, _)| name(n))
            .collect::<Result<_, _>>()?,
        rename: list(config, "rename", field)
            .filter_map(split)
            .filter_map(|(old, new)| Some((old, new?)))
            .map(|(old, new)| Ok((name(old)?, Template::parse(new)?)))
            .collect::<Result<_, String>>()?,
        replace: entries("replace")?,
        add: entries("add")?,
        append: entries("append")?,
    })
}

impl Kind for RequestTransformer {
    fn name(&self) -> &'static str {
        "request-transformer"
    }

    fn priority(&self) -> i32 {
        801
    }

    fn schema(&self) -> PluginSchema {
        PluginSchema {
            name: self.name().into(),
            config: schema_config(),
            protocols: Some(crate::store::schema::typedefs::PROTOCOLS.to_vec()),
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let owned = |n: &str| Ok(n.to_owned());
        let uri = config
            .get("replace")
            .and_then(|r| r.get("uri"))
            .and_then(Value::as_str)
            .map(Template::parse)
            .transpose()?;
        let method = config
            .get("http_method")
            .and_then(Value::as_str)
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string()))
            .transpose()?;
        let mut instance = Instance {
            uri,
            method,
            headers: ops(config, "headers", header)?,
            query: ops(config, "querystring", owned)?,
            body: ops(config, "body", owned)?,
            uses_headers: false,
            uses_query: false,
            uses_captures: false,
        };
        let uses = |source: Source| {
            instance
                .uri
                .iter()
                .chain(instance.headers.templates())
                .chain(instance.query.templates())
                .chain(instance.body.templates())
                .any(|t| t.uses(source))
        };
        let (h, q, c) = (
            uses(Source::Headers),
            uses(Source::Query),
            uses(Source::Captures),
        );
        instance.uses_headers = h;
        instance.uses_query = q;
        instance.uses_captures = c;
        Ok(Arc::new(instance))
    }
}

// ---------------------------------------------------------------------------------------------
// Access

fn header_value(value: &str) -> Result<HeaderValue, PluginError> {
    HeaderValue::from_str(value)
        .map_err(|_| PluginError::new(format!("invalid header value: {value:?}")))
}

impl Instance {
    /// Whether `http_method` moves a form body into the query string.
    fn method_takes_form(&self) -> bool {
        self.method
            .as_ref()
            .is_some_and(|m| [Method::GET, Method::HEAD, Method::TRACE].contains(m))
    }

    fn transform_method(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let Some(method) = &self.method else {
            return Ok(());
        };
        ctx.request.method = method.clone();
        if !self.method_takes_form() || body_kind(&ctx.request.headers) != Some(BodyKind::Form) {
            return Ok(());
        }
        let body = ctx.request_body().cloned().unwrap_or_default();
        let form = Args::parse(&String::from_utf8_lossy(&body));
        if form.is_empty() {
            return Ok(());
        }
        let mut query = Args::parse(ctx.request.uri.query().unwrap_or_default());
        for (name, values) in form.iter() {
            for v in values {
                query.append(name, v.clone());
            }
        }
        ctx.set_upstream_query(&query.encode_sorted())
    }

    fn transform_headers(&self, ctx: &mut Ctx, env: &Env<'_>) -> Result<(), PluginError> {
        let ops = &self.headers;
        if ops.is_empty() {
            return Ok(());
        }
        let h = &mut ctx.request.headers;
        // `Host` is not among the headers Kong transforms, except by `replace`.
        for name in ops.remove.iter().filter(|n| **n != HOST) {
            h.remove(name);
        }
        for (old, new) in ops.rename.iter().filter(|(o, _)| *o != HOST) {
            let new = header(&new.render(env)).map_err(PluginError::new)?;
            if *old == new {
                continue;
            }
            let values: Vec<HeaderValue> = h.get_all(old).iter().cloned().collect();
            if values.is_empty() {
                continue;
            }
            h.remove(old);
            h.remove(&new);
            for v in values {
                h.append(new.clone(), v);
            }
        }
        for e in &ops.replace {
            if let Some(t) = &e.value {
                if h.contains_key(&e.name) || e.name == HOST {
                    h.insert(e.name.clone(), header_value(&t.render(env))?);
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = &e.value {
                if e.name != HOST && !h.contains_key(&e.name) {
                    h.insert(e.name.clone(), header_value(&t.render(env))?);
                }
            }
        }
        for e in &ops.append {
            if let Some(t) = &e.value {
                if e.name != HOST {
                    h.append(e.name.clone(), header_value(&t.render(env))?);
                }
            }
        }
        Ok(())
    }

    fn transform_query(&self, ctx: &mut Ctx, env: &Env<'_>) -> Result<(), PluginError> {
        let ops = &self.query;
        if ops.is_empty() {
            return Ok(());
        }
        let mut q = Args::parse(ctx.request.uri.query().unwrap_or_default());
        for name in &ops.remove {
            q.remove(name);
        }
        for (old, new) in &ops.rename {
            q.rename(old, &new.render(env));
        }
        for e in &ops.replace {
            if let Some(t) = &e.value {
                if q.contains(&e.name) {
                    q.set(&e.name, vec![Some(t.render(env).into_owned())]);
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = &e.value {
                if !q.contains(&e.name) {
                    q.set(&e.name, vec![Some(t.render(env).into_owned())]);
                }
            }
        }
        for e in &ops.append {
            if let Some(t) = &e.value {
                q.append(&e.name, Some(t.render(env).into_owned()));
            }
        }
        ctx.set_upstream_query(&q.encode_sorted())
    }

    fn transform_body(&self, ctx: &mut Ctx, env: &Env<'_>) -> Result<(), PluginError> {
        if self.body.is_empty() {
            return Ok(());
        }
        let Some(kind) = body_kind(&ctx.request.headers) else {
            return Ok(());
        };
        let body = ctx.request_body().cloned().unwrap_or_default();
        let changed = match kind {
            BodyKind::Json => self.json_body(&body, env),
            BodyKind::Form => self.form_body(&body, env),
            BodyKind::Multipart => {
                let boundary = ctx
                    .header("content-type")
                    .and_then(multipart::boundary)
                    .unwrap_or_default();
                self.multipart_body(&body, &boundary, env)
            }
        };
        if let Some(body) = changed {
            ctx.request
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            ctx.set_request_body(body);
        }
        Ok(())
    }

    /// Kong's JSON body rules; `None` when nothing is to change (or the body is not an
    /// object: only objects have fields).
    fn json_body(&self, body: &[u8], env: &Env<'_>) -> Option<Bytes> {
        let ops = &self.body;
        let filled = !body.is_empty();
        let mut obj = if filled {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => obj,
                _ => return None,
            }
        } else {
            Map::new()
        };
        let mut changed = false;
        if filled {
            for name in &ops.remove {
                obj.remove(name);
                changed = true;
            }
            for (old, new) in &ops.rename {
                let new = new.render(env);
                if *old != new {
                    if let Some(v) = obj.remove(old) {
                        obj.insert(new.into_owned(), v);
                        changed = true;
                    }
                }
            }
            for e in &ops.replace {
                if let Some(t) = &e.value {
                    if transform::truthy(obj.get(&e.name)) {
                        obj.insert(e.name.clone(), Value::String(t.render(env).into_owned()));
                        changed = true;
                    }
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = &e.value {
                if !transform::truthy(obj.get(&e.name)) {
                    obj.insert(e.name.clone(), Value::String(t.render(env).into_owned()));
                    changed = true;
                }
            }
        }
        for e in &ops.append {
            if let Some(t) = &e.value {
                let current = obj.remove(&e.name);
                let value = Value::String(t.render(env).into_owned());
                obj.insert(e.name.clone(), transform::append(current, value));
                changed = true;
            }
        }
        changed.then(|| Bytes::from(Value::Object(obj).to_string()))
    }

    fn form_body(&self, body: &[u8], env: &Env<'_>) -> Option<Bytes> {
        let ops = &self.body;
        let filled = !body.is_empty();
        let mut form = Args::parse(&String::from_utf8_lossy(body));
        let mut changed = false;
        if filled {
            for name in &ops.remove {
                form.remove(name);
                changed = true;
            }
            for (old, new) in &ops.rename {
                changed |= form.rename(old, &new.render(env));
            }
            for e in &ops.replace {
                if let Some(t) = &e.value {
                    if form.contains(&e.name) {
                        form.set(&e.name, vec![Some(t.render(env).into_owned())]);
                        changed = true;
                    }
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = &e.value {
                if !form.contains(&e.name) {
                    form.set(&e.name, vec![Some(t.render(env).into_owned())]);
                    changed = true;
                }
            }
        }
        for e in &ops.append {
            if let Some(t) = &e.value {
                form.append(&e.name, Some(t.render(env).into_owned()));
                changed = true;
            }
        }
        changed.then(|| Bytes::from(form.encode()))
    }

    /// Multipart, in Kong's order for it: rename, remove, replace, add (no append).
    fn multipart_body(&self, body: &[u8], boundary: &str, env: &Env<'_>) -> Option<Bytes> {
        let ops = &self.body;
        let filled = !body.is_empty();
        let mut parts = Multipart::parse(body, boundary)?;
        let mut changed = false;
        if filled {
            for (old, new) in &ops.rename {
                let new = new.render(env);
                if *old != new {
                    if let Some(value) = parts.value(old).map(<[u8]>::to_vec) {
                        parts.set_simple(&new, &value);
                        parts.delete(old);
                        changed = true;
                    }
                }
            }
            for name in &ops.remove {
                parts.delete(name);
                changed = true;
            }
            for e in &ops.replace {
                if let Some(t) = &e.value {
                    if parts.contains(&e.name) {
                        parts.delete(&e.name);
                        parts.set_simple(&e.name, t.render(env).as_bytes());
                        changed = true;
                    }
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = &e.value {
                if !parts.contains(&e.name) {
                    parts.set_simple(&e.name, t.render(env).as_bytes());
                    changed = true;
                }
            }
        }
        changed.then(|| parts.encode())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        // Templates read the request as it arrived, whatever the transforms do to it.
        let headers = self.uses_headers.then(|| ctx.request.headers.clone());
        let query = self
            .uses_query
            .then(|| Args::parse(ctx.request.uri.query().unwrap_or_default()));
        let captures = if self.uses_captures {
            ctx.uri_captures().cloned()
        } else {
            None
        };
        let env = Env {
            headers: headers.as_ref(),
            query: query.as_ref(),
            captures: captures.as_ref(),
        };
        if let Some(uri) = &self.uri {
            ctx.set_upstream_path(&uri.render(&env))?;
        }
        self.transform_method(ctx)?;
        self.transform_headers(ctx, &env)?;
        self.transform_body(ctx, &env)?;
        self.transform_query(ctx, &env)?;
        Ok(Step::Done)
    }

    fn reads_request_body(&self) -> bool {
        !self.body.is_empty() || self.method_takes_form()
    }

    /// Only bodies the plugin would transform are read.
    fn needs_request_body(&self, request: &http::request::Parts) -> bool {
        match body_kind(&request.headers) {
            None => false,
            Some(BodyKind::Form) => !self.body.is_empty() || self.method_takes_form(),
            Some(_) => !self.body.is_empty(),
        }
    }
}
