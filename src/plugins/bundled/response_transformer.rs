//! `response-transformer` (priority 800): changes the response on its way to the client.
//!
//! Headers, in `header_filter`, in Kong's order: remove → rename → replace (only headers the
//! response had) → add (only headers it lacked) → append. As in Kong, "had" and "lacked" refer
//! to the response as it reached the plugin, before its own removals.
//!
//! JSON body, in `body_filter`, only when the response's `Content-Type` is JSON
//! (`application/json` or `application/*+json`): the body is held back until its end, then
//! fields are removed, renamed, replaced (only present ones), added (only absent ones) and
//! appended to; `json_types` gives each value's type (`string` by default, `number`,
//! `boolean`). `Content-Length` is dropped when such a transform is configured. A body that
//! does not parse is sent unchanged.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use serde_json::{json, Value};

use super::transform::{self, split};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// [`Ctx::shared`] key of the body held back.
const BODY: &str = "response-transformer";

/// The kind.
pub struct ResponseTransformer;

/// Header operations, parsed.
#[derive(Default)]
struct HeaderOps {
    remove: Vec<HeaderName>,
    rename: Vec<(HeaderName, HeaderName)>,
    replace: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    append: Vec<(HeaderName, HeaderValue)>,
}

/// JSON body operations, their values already typed.
#[derive(Default)]
struct JsonOps {
    remove: Vec<String>,
    rename: Vec<(String, String)>,
    replace: Vec<(String, Value)>,
    add: Vec<(String, Value)>,
    append: Vec<(String, Value)>,
}

impl JsonOps {
    fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }

    /// Applies the operations to a JSON object (anything else is left as it is).
    fn apply(&self, body: &mut Value) {
        let Value::Object(obj) = body else { return };
        for name in &self.remove {
            obj.remove(name);
        }
        for (old, new) in &self.rename {
            if let Some(v) = obj.remove(old) {
                obj.insert(new.clone(), v);
            }
        }
        for (name, value) in &self.replace {
            if transform::truthy(obj.get(name)) {
                obj.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.add {
            if !transform::truthy(obj.get(name)) {
                obj.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.append {
            let current = obj.remove(name);
            obj.insert(name.clone(), transform::append(current, value.clone()));
        }
    }
}

/// One configured instance.
struct Instance {
    headers: HeaderOps,
    json: JsonOps,
}

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

/// `(name, value)` header pairs of `op`; entries without a value do nothing in Kong.
fn header_pairs(config: &Doc, op: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for entry in list(config, op, "headers") {
        if let Some((name, Some(value))) = split(entry) {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("'{value}' is not a valid header value"))?;
            out.push((header(name)?, value));
        }
    }
    Ok(out)
}

/// Kong's cast of a configured value to its `json_types` entry: `number` as Lua's `tonumber`
/// (`None` when it is not a number: the entry is skipped), `boolean` true only for `true`.
fn typed(value: &str, kind: Option<&str>) -> Option<Value> {
    match kind {
        Some("number") => {
            let t = value.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Some(Value::from(i));
            }
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return i64::from_str_radix(hex, 16).ok().map(Value::from);
            }
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        }
        Some("boolean") => Some(Value::Bool(value == "true")),
        _ => Some(Value::String(value.to_owned())),
    }
}

fn json_pairs(config: &Doc, op: &str) -> Vec<(String, Value)> {
    let types: Vec<&str> = list(config, op, "json_types").collect();
    list(config, op, "json")
        .enumerate()
        .filter_map(|(i, entry)| {
            let (name, value) = split(entry)?;
            let value = typed(value?, types.get(i).copied())?;
            Some((name.to_owned(), value))
        })
        .collect()
}

fn build_headers(config: &Doc) -> Result<HeaderOps, String> {
    let mut ops = HeaderOps::default();
    for entry in list(config, "remove", "headers") {
        if let Some((name, _)) = split(entry) {
            ops.remove.push(header(name)?);
        }
    }
    for entry in list(config, "rename", "headers") {
        if let Some((old, Some(new))) = split(entry) {
            ops.rename.push((header(old)?, header(new)?));
        }
    }
    ops.replace = header_pairs(config, "replace")?;
    ops.add = header_pairs(config, "add")?;
    ops.append = header_pairs(config, "append")?;
    Ok(ops)
}

fn build_json(config: &Doc) -> JsonOps {
    JsonOps {
        remove: list(config, "remove", "json")
            .filter_map(split)
            .map(|(n, _)| n.to_owned())
            .collect(),
        rename: list(config, "rename", "json")
            .filter_map(split)
            .filter_map(|(old, new)| Some((old.to_owned(), new?.to_owned())))
            .collect(),
        replace: json_pairs(config, "replace"),
        add: json_pairs(config, "add"),
        append: json_pairs(config, "append"),
    }
}

/// Whether a `Content-Type` names JSON: one of its comma-separated media types is
/// `application/json` or `application/<x>+json` (case-insensitive).
fn is_json(content_type: &str) -> bool {
    content_type.split(',').any(|media| {
        let essence = media.split(';').next().unwrap_or_default().trim();
        let Some((ty, sub)) = essence.split_once('/') else {
            return false;
        };
        let sub = sub.trim().to_ascii_lowercase();
        ty.trim().eq_ignore_ascii_case("application") && (sub == "json" || sub.ends_with("+json"))
    })
}

impl Kind for ResponseTransformer {
    fn name(&self) -> &'static str {
        "response-transformer"
    }

    fn priority(&self) -> i32 {
        800
    }

    fn schema(&self) -> PluginSchema {
        let strings = || Field::array(Field::string()).required().default(json!([]));
        let pairs = || {
            Field::array(Field::string().custom("match", transform::colon_pair))
                .required()
                .default(json!([]))
        };
        let renames = || {
            Field::array(Field::string().custom("header", transform::colon_header_rename))
                .required()
                .default(json!([]))
        };
        let types = || {
            Field::array(Field::string().one_of(&["boolean", "number", "string"]))
                .required()
                .default(json!([]))
        };
        let valued = || {
            Field::record(Record::new(vec![
                ("json", pairs()),
                ("json_types", types()),
                ("headers", pairs()),
            ]))
        };
        let config = Record::new(vec![
            (
                "remove",
                Field::record(Record::new(vec![
                    ("json", strings()),
                    ("headers", strings()),
                ])),
            ),
            (
                "rename",
                Field::record(Record::new(vec![("json", pairs()), ("headers", renames())])),
            ),
            ("replace", valued()),
            ("add", valued()),
            ("append", valued()),
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
        Ok(Arc::new(Instance {
            headers: build_headers(config)?,
            json: build_json(config),
        }))
    }
}

impl Instance {
    fn transform_headers(&self, h: &mut HeaderMap) {
        let ops = &self.headers;
        // What the response had before any change: rename, replace and add look there.
        let renamed: Vec<Vec<HeaderValue>> = ops
            .rename
            .iter()
            .map(|(old, _)| h.get_all(old).iter().cloned().collect())
            .collect();
        let replace: Vec<bool> = ops.replace.iter().map(|(n, _)| h.contains_key(n)).collect();
        let add: Vec<bool> = ops.add.iter().map(|(n, _)| !h.contains_key(n)).collect();
        for name in &ops.remove {
            h.remove(name);
        }
        for ((old, new), values) in ops.rename.iter().zip(renamed) {
            if values.is_empty() {
                continue;
            }
            h.remove(new);
            for v in values {
                h.append(new.clone(), v);
            }
            h.remove(old);
        }
        for ((name, value), present) in ops.replace.iter().zip(replace) {
            if present {
                h.insert(name.clone(), value.clone());
            }
        }
        for ((name, value), absent) in ops.add.iter().zip(add) {
            if absent {
                h.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &ops.append {
            h.append(name.clone(), value.clone());
        }
    }
}

impl Plugin for Instance {
    fn filters_headers(&self) -> bool {
        true
    }

    fn header_filter(
        &self,
        ctx: &mut Ctx,
        response: &mut http::response::Parts,
    ) -> Result<(), PluginError> {
        let json = !self.json.is_empty()
            && response
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json);
        self.transform_headers(&mut response.headers);
        if json {
            // The body is going to change length.
            response.headers.remove(CONTENT_LENGTH);
            ctx.set_shared(BODY, BytesMut::new());
        }
        Ok(())
    }

    fn body_filter(&self, ctx: &mut Ctx, chunk: &mut Bytes, eof: bool) -> Result<(), PluginError> {
        let Some(buffer) = ctx.shared_mut::<BytesMut>(BODY) else {
            return Ok(());
        };
        buffer.extend_from_slice(chunk);
        if !eof {
            *chunk = Bytes::new();
            return Ok(());
        }
        let whole = std::mem::take(buffer).freeze();
        *chunk = match serde_json::from_slice::<Value>(&whole) {
            Ok(mut body) => {
                self.json.apply(&mut body);
                Bytes::from(body.to_string())
            }
            Err(e) => {
                tracing::warn!(error = %e, "response-transformer: body transform failed: failed parsing json body");
                whole
            }
        };
        Ok(())
    }

    fn filters_body(&self) -> bool {
        !self.json.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(config: Value) -> Instance {
        let Value::Object(config) = config else {
            panic!("config is an object")
        };
        Instance {
            headers: build_headers(&config).expect("headers"),
            json: build_json(&config),
        }
    }

    #[test]
    fn json_operations_in_kongs_order_with_types() {
        let i = ops(json!({
            "remove": {"json": ["secret"]},
            "rename": {"json": ["old:new"]},
            "replace": {"json": ["p:1", "f:x"], "json_types": ["number"]},
            "add": {"json": ["n:2.5", "b:true", "p:no", "f:added"], "json_types": ["number", "boolean"]},
            "append": {"json": ["s:t", "list:z", "fresh:y"]},
        }));
        let mut body =
            json!({"secret": 1, "old": "o", "p": "x", "f": false, "s": "a", "list": ["q"]});
        i.json.apply(&mut body);
        assert_eq!(
            body,
            json!({"new": "o", "p": 1, "f": "added", "n": 2.5, "b": true,
                   "s": ["a", "t"], "list": ["q", "z"], "fresh": ["y"]})
        );
        let mut list = json!([1, 2]);
        i.json.apply(&mut list);
        assert_eq!(list, json!([1, 2]));
    }

    #[test]
    fn header_operations_look_at_the_original_headers() {
        let i = ops(json!({
            "remove": {"headers": ["x-gone"]},
            "rename": {"headers": ["x-old:x-new"]},
            "replace": {"headers": ["x-gone:back", "x-keep:replaced", "x-missing:no"]},
            "add": {"headers": ["x-keep:no", "x-added:yes"]},
            "append": {"headers": ["x-keep:more"]},
        }));
        let mut h = HeaderMap::new();
        h.insert("x-gone", HeaderValue::from_static("1"));
        h.insert("x-old", HeaderValue::from_static("o"));
        h.insert("x-keep", HeaderValue::from_static("k"));
        i.transform_headers(&mut h);
        assert!(!h.contains_key("x-old"));
        assert_eq!(h.get("x-new").map(|v| v.as_bytes()), Some(&b"o"[..]));
        // Replace looks at the headers before removal, as Kong does.
        assert_eq!(h.get("x-gone").map(|v| v.as_bytes()), Some(&b"back"[..]));
        assert!(!h.contains_key("x-missing"));
        let keep: Vec<_> = h.get_all("x-keep").iter().collect();
        assert_eq!(keep, vec!["replaced", "more"]);
        assert_eq!(h.get("x-added").map(|v| v.as_bytes()), Some(&b"yes"[..]));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(is_json("text/plain, application/JSON"));
        assert!(!is_json("text/json"));
        assert!(!is_json("application/jsonp"));
    }
}
