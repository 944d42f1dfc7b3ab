//! The list of Admin API endpoints (`GET /endpoints`) and the OpenAPI 3 document
//! (`GET /openapi.json`), both derived from the catalogue and the entity schemas.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::catalogue::{self, COLLECTIONS, NESTED};
use crate::store::entities;
use crate::store::schema::{Field, Kind, Record, Rule};

/// Endpoints served by their own routes (not generated from the catalogue): path and methods.
pub const STATIC: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/status", &["GET"]),
    ("/metrics", &["GET"]),
    ("/endpoints", &["GET"]),
    ("/config", &["GET", "POST"]),
    ("/cache", &["DELETE"]),
    ("/cache/{key}", &["GET", "DELETE"]),
    ("/openapi.json", &["GET"]),
    ("/schemas/{db_entity_name}", &["GET"]),
    ("/schemas/{db_entity_name}/validate", &["POST"]),
    ("/schemas/plugins/{name}", &["GET"]),
    ("/schemas/plugins/validate", &["POST"]),
    ("/plugins/schema/{name}", &["GET"]),
    ("/plugins/enabled", &["GET"]),
    ("/tags", &["GET"]),
    ("/tags/{tags}", &["GET"]),
    ("/status/dns", &["GET"]),
    ("/timers", &["GET"]),
    ("/debug/node/log-level", &["GET"]),
    ("/debug/node/log-level/{log_level}", &["PUT"]),
    ("/clustering/data-planes", &["GET"]),
    ("/clustering/status", &["GET"]),
];

/// Every endpoint with its methods, sorted by path.
pub fn all() -> BTreeMap<String, Vec<&'static str>> {
    let mut out: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for (path, methods) in STATIC {
        out.insert((*path).to_owned(), methods.to_vec());
    }
    let entity_methods = vec!["GET", "PUT", "PATCH", "DELETE"];
    for c in COLLECTIONS {
        out.insert(format!("/{}", c.path), vec!["GET", "POST"]);
        let item = format!("/{0}/{{{0}}}", c.path);
        out.insert(item.clone(), entity_methods.clone());
        if let Some(schema) = catalogue::schema(c) {
            for (field, _) in schema.foreign_fields() {
                if catalogue::foreign(c, field).is_some() {
                    out.insert(format!("{item}/{field}"), entity_methods.clone());
                }
            }
        }
    }
    for n in NESTED {
        let list = format!("/{0}/{{{0}}}/{1}", n.parent, n.name);
        out.insert(list.clone(), vec!["GET", "POST"]);
        out.insert(format!("{list}/{{{}}}", n.name), entity_methods.clone());
    }
    out.insert("/upstreams/{upstreams}/targets/all".into(), vec!["GET"]);
    out.insert("/upstreams/{upstreams}/health".into(), vec!["GET"]);
    for op in ["healthy", "unhealthy"] {
        out.insert(
            format!("/upstreams/{{upstreams}}/targets/{{targets}}/{op}"),
            vec!["PUT"],
        );
        out.insert(
            format!("/upstreams/{{upstreams}}/targets/{{targets}}/{{address}}/{op}"),
            vec!["PUT"],
        );
    }
    out
}

/// `GET /endpoints`: `{"data": [paths]}`.
pub async fn list() -> Response {
    Json(json!({ "data": all().into_keys().collect::<Vec<_>>() })).into_response()
}

/// JSON Schema for one field.
fn json_schema(f: &Field) -> Value {
    let mut s = Map::new();
    match &f.kind {
        Kind::String => {
            s.insert("type".into(), json!("string"));
        }
        Kind::Integer => {
            s.insert("type".into(), json!("integer"));
        }
        Kind::Number => {
            s.insert("type".into(), json!("number"));
        }
        Kind::Boolean => {
            s.insert("type".into(), json!("boolean"));
        }
        Kind::Array(el) | Kind::Set(el) => {
            s.insert("type".into(), json!("array"));
            s.insert("items".into(), json_schema(el));
            if matches!(f.kind, Kind::Set(_)) {
                s.insert("uniqueItems".into(), json!(true));
            }
        }
        Kind::Map(_, v) => {
            s.insert("type".into(), json!("object"));
            s.insert("additionalProperties".into(), json_schema(v));
        }
        Kind::Record(r) => return record_schema(r),
        Kind::Any => {
            s.insert("type".into(), json!("object"));
        }
        Kind::Foreign(fk) => {
            s.insert("type".into(), json!("object"));
            s.insert(
                "properties".into(),
                json!({"id": {"type": "string", "format": "uuid"}}),
            );
            s.insert(
                "description".into(),
                json!(format!("Reference to a {} entity.", fk.reference)),
            );
        }
    }
    for rule in &f.rules {
        match rule {
            Rule::OneOf(v) => {
                s.insert("enum".into(), Value::Array(v.clone()));
            }
            Rule::Between(min, max) => {
                s.insert("minimum".into(), json!(min));
                s.insert("maximum".into(), json!(max));
            }
            Rule::Uuid => {
                s.insert("format".into(), json!("uuid"));
            }
            Rule::LenMin(n) if matches!(f.kind, Kind::String) => {
                s.insert("minLength".into(), json!(n));
            }
            Rule::LenMin(n) => {
                s.insert("minItems".into(), json!(n));
            }
            _ => {}
        }
    }
    if let Some(d) = &f.default {
        s.insert("default".into(), d.clone());
    }
    if let Some(d) = f.description {
        s.insert("description".into(), json!(d));
    }
    Value::Object(s)
}

fn record_schema(r: &Record) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, f) in &r.fields {
        props.insert(name.clone(), json_schema(f));
        if f.required && f.default.is_none() && !f.auto {
            required.push(json!(name));
        }
    }
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

fn op(summary: String, entity: &str, ok: &str, body: bool) -> Value {
    let schema_ref = json!({ "$ref": format!("#/components/schemas/{entity}") });
    let content = |s: Value| json!({ "application/json": { "schema": s } });
    let mut o = json!({
        "summary": summary,
        "responses": {
            ok: { "description": "Success", "content": content(if ok == "200 list" { json!({}) } else { schema_ref.clone() }) },
            "400": { "description": "Invalid request", "content": content(json!({"$ref": "#/components/schemas/Error"})) },
            "404": { "description": "Not found" },
        }
    });
    if body {
        o["requestBody"] = json!({ "content": content(schema_ref) });
    }
    o
}

/// The OpenAPI 3.0 document of the Admin API.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for s in entities::all() {
        schemas.insert(s.name.into(), record_schema(&s.record));
    }
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {
            "code": {"type": "integer"}, "name": {"type": "string"},
            "message": {"type": "string"}, "fields": {"type": "object"}
        }}),
    );
    // What a path lists or addresses: (entity, whether GET returns a list).
    let entity_for = |path: &str| -> Option<(&'static str, bool)> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [c] => catalogue::collection(c).map(|c| (c.entity, true)),
            [c, _] => catalogue::collection(c).map(|c| (c.entity, false)),
            [c, _, sub] => match catalogue::nested(c, sub) {
                Some(n) => Some((n.entity, true)),
                None => catalogue::collection(c)
                    .and_then(|c| catalogue::foreign(c, sub))
                    .map(|s| (s.name, false)),
            },
            [c, _, sub, last] => catalogue::nested(c, sub).map(|n| (n.entity, *last == "all")),
            _ => None,
        }
    };
    for (path, methods) in all() {
        let mut item = Map::new();
        let params: Vec<Value> = path
            .split('/')
            .filter(|s| s.starts_with('{'))
            .map(|s| json!({"name": s.trim_matches(|c| c == '{' || c == '}'), "in": "path", "required": true, "schema": {"type": "string"}, "description": "id, or the entity's endpoint key"}))
            .collect();
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        let entity = entity_for(&path);
        for m in methods {
            let lower = m.to_ascii_lowercase();
            let value = match entity {
                Some((e, list)) => match m {
                    "GET" if list => op(format!("List {e}"), e, "200 list", false),
                    "GET" => op(format!("Read one of {e}"), e, "200", false),
                    "POST" => op(format!("Create one of {e}"), e, "201", true),
                    "PUT" => op(format!("Create or replace one of {e}"), e, "200", true),
                    "PATCH" => op(format!("Update one of {e}"), e, "200", true),
                    _ => {
                        json!({"summary": format!("Delete one of {e}"), "responses": {"204": {"description": "Deleted (or absent)"}}})
                    }
                },
                None => {
                    json!({"summary": path.clone(), "responses": {"200": {"description": "Success"}}})
                }
            };
            item.insert(lower, value);
        }
        paths.insert(path, Value::Object(item));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "kong Admin API",
            "version": crate::version::KONG_VERSION,
            "description": "Kong-compatible Admin API. Exposing it is equivalent to root access on the gateway.",
        },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Response {
    Json(openapi()).into_response()
}
