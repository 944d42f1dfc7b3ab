//! Schemas as the Admin API shows them: `/schemas/{entity}`, `/schemas/plugins/{name}`,
//! `/plugins/schema/{name}`, `/plugins/enabled` and the validate endpoints.
//!
//! The JSON is rendered from the same [`Field`]s that validate writes, in Kong's form
//! (`{"fields": [{"name": {attributes}}], "entity_checks": [...]}`), so tools that fill
//! defaults from it (decK) see exactly what the datastore applies.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::AdminState;
use crate::store::entities;
use crate::store::schema::{
    Context, EntityCheck, Field, Kind, Match, OnDelete, Record, Rule, Schema,
};

/// Kong's rendering of one field.
pub fn field_json(name: &str, f: &Field) -> Value {
    let mut a = Map::new();
    let kind = match &f.kind {
        Kind::String => "string",
        Kind::Integer => "integer",
        Kind::Number => "number",
        Kind::Boolean => "boolean",
        Kind::Array(_) => "array",
        Kind::Set(_) => "set",
        Kind::Map(..) => "map",
        Kind::Record(_) | Kind::Any => "record",
        Kind::Foreign(_) => "foreign",
    };
    a.insert("type".into(), json!(kind));
    if f.required {
        a.insert("required".into(), json!(true));
    }
    if let Some(d) = &f.default {
        a.insert("default".into(), d.clone());
    }
    if f.unique {
        a.insert("unique".into(), json!(true));
    }
    if f.auto {
        a.insert("auto".into(), json!(true));
    }
    if f.immutable {
        a.insert("immutable".into(), json!(true));
    }
    if name == "created_at" || name == "updated_at" {
        a.insert("timestamp".into(), json!(true));
    }
    for rule in &f.rules {
        match rule {
            Rule::OneOf(v) => {
                a.insert("one_of".into(), Value::Array(v.clone()));
            }
            Rule::Between(min, max) => {
                a.insert("between".into(), json!([number(*min), number(*max)]));
            }
            Rule::LenMin(n) => {
                a.insert("len_min".into(), json!(n));
            }
            Rule::LenMax(n) => {
                a.insert("len_max".into(), json!(n));
            }
            Rule::StartsWith(p) => {
                a.insert("starts_with".into(), json!(p));
            }
            Rule::Uuid => {
                a.insert("uuid".into(), json!(true));
            }
            Rule::Custom(..) => {}
        }
    }
    match &f.kind {
        Kind::Array(el) | Kind::Set(el) => {
            a.insert("elements".into(), attributes(el));
        }
        Kind::Map(k, v) => {
            a.insert("keys".into(), attributes(k));
            a.insert("values".into(), attributes(v));
        }
        Kind::Record(r) => {
            a.insert("fields".into(), fields_json(r));
            if !r.checks.is_empty() {
                a.insert("entity_checks".into(), checks_json(&r.checks));
            }
        }
        Kind::Foreign(fk) => {
            a.insert("reference".into(), json!(fk.reference));
            let on_delete = match fk.on_delete {
                OnDelete::Cascade => "cascade",
                OnDelete::Restrict => "restrict",
            };
            a.insert("on_delete".into(), json!(on_delete));
        }
        _ => {}
    }
    if let Some(d) = f.description {
        a.insert("description".into(), json!(d));
    }
    Value::Object(a)
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn attributes(f: &Field) -> Value {
    field_json("", f)
}

/// `[{"name": {attributes}}, ...]` in declaration order.
pub fn fields_json(r: &Record) -> Value {
    Value::Array(
        r.fields
            .iter()
            .map(|(n, f)| json!({ n.as_str(): field_json(n, f) }))
            .collect(),
    )
}

fn match_json(m: &Match) -> Value {
    match m {
        Match::Null => json!({"eq": null}),
        Match::NotNull => json!({"ne": null}),
        Match::OneOf(v) => json!({ "one_of": v }),
        Match::NotOneOf(v) => json!({ "not_one_of": v }),
        Match::Bool(b) => json!({ "eq": b }),
    }
}

/// Multi-field checks in Kong's form; checks written in code are not listed.
pub fn checks_json(checks: &[EntityCheck]) -> Value {
    Value::Array(
        checks
            .iter()
            .filter_map(|c| match c {
                EntityCheck::AtLeastOneOf(f) => Some(json!({ "at_least_one_of": f })),
                EntityCheck::OnlyOneOf(f) => Some(json!({ "only_one_of": f })),
                EntityCheck::MutuallyExclusive(f) => Some(json!({ "mutually_exclusive": f })),
                EntityCheck::AllOrNone(f) => Some(json!({ "mutually_required": f })),
                EntityCheck::Distinct(f) => Some(json!({ "distinct": f })),
                EntityCheck::Conditional {
                    if_field,
                    if_match,
                    then_field,
                    then_match,
                } => Some(json!({ "conditional": {
                    "if_field": if_field, "if_match": match_json(if_match),
                    "then_field": then_field, "then_match": match_json(then_match),
                } })),
                EntityCheck::Custom(_) => None,
            })
            .collect(),
    )
}

/// An entity schema as `/schemas/{entity}` shows it.
pub fn schema_json(s: &Schema) -> Value {
    let mut fields = fields_json(&s.record);
    if s.name == "certificates" {
        if let Value::Array(list) = &mut fields {
            list.push(json!({"snis": {"type": "array", "elements": {"type": "string"}, "description": "Server names this certificate is served for."}}));
        }
    }
    json!({ "fields": fields, "entity_checks": checks_json(&s.record.checks) })
}

/// `GET /schemas/{entity}`.
pub async fn entity(Path(name): Path<String>) -> Response {
    match entities::entity(&name) {
        Some(s) => Json(schema_json(s)).into_response(),
        None => super::message(StatusCode::NOT_FOUND, &format!("No entity named '{name}'")),
    }
}

/// `POST /schemas/plugins/validate`: a whole plugin entity, its config by the plugin's schema.
pub async fn validate_plugin(
    state: State<AdminState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    validate(state, Path("plugins".to_owned()), body).await
}

/// `POST /schemas/{entity}/validate`: insert-mode validation without touching the datastore.
pub async fn validate(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let Some(schema) = entities::entity(&name) else {
        return Ok(super::message(
            StatusCode::NOT_FOUND,
            &format!("No entity named '{name}'"),
        ));
    };
    let doc = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ if body.is_empty() => Map::new(),
        _ => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "Cannot parse JSON body",
            ))
        }
    };
    let ctx = Context {
        plugins: state.store.plugins(),
    };
    schema
        .validate(doc, &ctx)
        .map_err(|e| ApiError::Db(e.into()))?;
    Ok(Json(json!({"message": "schema validation successful"})).into_response())
}

/// `GET /schemas/plugins/{name}`: the plugins entity with this plugin's `config`.
pub async fn plugin(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let (Some(p), Some(base)) = (
        state.store.plugins().plugin(&name),
        entities::entity("plugins"),
    ) else {
        return super::message(StatusCode::NOT_FOUND, &format!("No plugin named '{name}'"));
    };
    let mut rendered = schema_json(base);
    if let Some(Value::Array(fields)) = rendered.get_mut("fields") {
        for f in fields.iter_mut() {
            if let Some(config) = f.get_mut("config") {
                *config =
                    json!({"type": "record", "required": true, "fields": fields_json(&p.config)});
            }
        }
    }
    Json(rendered).into_response()
}

/// `GET /plugins/schema/{name}` (deprecated in Kong): only the `config` record.
pub async fn plugin_config(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    match state.store.plugins().plugin(&name) {
        Some(p) => Json(json!({
            "fields": fields_json(&p.config),
            "entity_checks": checks_json(&p.config.checks),
        }))
        .into_response(),
        None => super::message(StatusCode::NOT_FOUND, &format!("No plugin named '{name}'")),
    }
}

/// `GET /plugins/enabled`.
pub async fn enabled(State(state): State<AdminState>) -> Response {
    Json(json!({ "enabled_plugins": state.store.plugins().names() })).into_response()
}
