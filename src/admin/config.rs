//! `/config`: the whole configuration of a DB-less node, read as YAML and replaced at once.
//!
//! `POST /config` goes through the same code as the node's start with `declarative_config`
//! ([`declarative::apply`]): parse, validate every entity, then swap everything in one step, or
//! nothing. Loads are serialised; a second one arriving meanwhile is told to retry (429).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{json, Map, Value};

use super::{message, AdminState};
use crate::declarative::{self, DeclarativeError, Problem};
use crate::store::error::lua;

const DB_ONLY: &str =
    "this endpoint is only available when Kong is configured to not use a database";

/// `GET /config`: `{"config": "<YAML>"}`.
pub async fn get(State(state): State<AdminState>) -> Response {
    if state.store.backend() != "off" {
        return message(StatusCode::BAD_REQUEST, DB_ONLY);
    }
    match declarative::export::export(&state.store).await {
        Ok(yaml) => Json(json!({ "config": yaml })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "GET /config failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            )
        }
    }
}

/// Where the document came from: text (hashed as sent) or a JSON object.
enum Input {
    Text(String),
    Object(Value),
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1" | "on" | "yes"))
}

/// The document found in a request, if any, and the other parameters sent beside it.
type Found = (Option<Input>, Map<String, Value>);

/// Finds the document in the request: a JSON body holding `_format_version`, else a `config`
/// parameter (JSON or form), else the raw body.
fn input(headers: &HeaderMap, body: &Bytes) -> Result<Found, Box<Response>> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return Err(Box::new(message(
                    StatusCode::BAD_REQUEST,
                    "Cannot parse JSON body",
                )))
            }
        };
        let Value::Object(mut obj) = parsed else {
            return Err(Box::new(message(
                StatusCode::BAD_REQUEST,
                "Cannot parse JSON body",
            )));
        };
        if obj.contains_key("_format_version") {
            return Ok((Some(Input::Object(Value::Object(obj))), Map::new()));
        }
        let config = match obj.remove("config") {
            Some(Value::String(s)) => Some(Input::Text(s)),
            Some(v @ Value::Object(_)) => Some(Input::Object(v)),
            _ => None,
        };
        return Ok((config, obj));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut params = Map::new();
        let mut config = None;
        for (k, v) in form_urlencoded::parse(body) {
            if k == "config" {
                config = Some(Input::Text(v.into_owned()));
            } else {
                params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        return Ok((config, params));
    }
    if body.is_empty() {
        return Ok((None, Map::new()));
    }
    match std::str::from_utf8(body) {
        Ok(text) => Ok((Some(Input::Text(text.to_owned())), Map::new())),
        Err(_) => Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "expected a declarative configuration",
        ))),
    }
}

/// `POST /config`.
pub async fn post(
    State(state): State<AdminState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if state.store.backend() != "off" {
        return message(StatusCode::BAD_REQUEST, DB_ONLY);
    }
    let body = match axum::body::to_bytes(body, declarative::MAX_SIZE as usize).await {
        Ok(b) => b,
        Err(_) => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large: the limit for /config is 64 MiB",
            )
        }
    };
    let (found, params) = match input(&headers, &body) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let query: Map<String, Value> = uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect()
        })
        .unwrap_or_default();
    let flag = |name: &str| {
        query.get(name).or(params.get(name)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let check_hash = flag("check_hash").as_deref() == Some("1");
    let flatten = truthy(flag("flatten_errors").as_deref());
    let Some(found) = found else {
        return message(
            StatusCode::BAD_REQUEST,
            "expected a declarative configuration",
        );
    };
    let Ok(_loading) = state.config_lock.try_lock() else {
        let mut resp = message(
            StatusCode::TOO_MANY_REQUESTS,
            "Currently loading previous configuration",
        );
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("60"));
        return resp;
    };
    let (text, object) = match found {
        Input::Text(t) => (t, None),
        Input::Object(v) => (v.to_string(), Some(v)),
    };
    let hash = declarative::configuration_hash(&text);
    if check_hash && *state.node.configuration_hash.load().as_str() == hash {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    match declarative::apply(&state.store, &text, None).await {
        Ok(applied) => {
            state
                .node
                .configuration_hash
                .store(std::sync::Arc::new(applied.hash));
            drop(text);
            loaded(&state).await
        }
        Err(e) => {
            // The entities as sent are only needed to explain errors entity by entity.
            let sent = match (flatten, object) {
                (false, _) => None,
                (true, Some(v)) => Some(v),
                (true, None) => serde_norway::from_str::<Value>(&text).ok(),
            };
            invalid(e, sent.as_ref(), flatten)
        }
    }
}

/// 201 with every loaded entity: `{"<entity>": {"<id>": {...}}}`, written page by page so a
/// large configuration is never held twice as parsed documents.
async fn loaded(state: &AdminState) -> Response {
    let mut out = String::from("{");
    let mut current: Option<&'static str> = None;
    let mut first_in_group = true;
    let scanned = state
        .store
        .scan(|name, docs| {
            if current != Some(name) {
                if current.is_some() {
                    out.push_str("},");
                }
                out.push_str(&Value::from(name).to_string());
                out.push_str(":{");
                current = Some(name);
                first_in_group = true;
            }
            for doc in docs {
                let id = doc
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if !first_in_group {
                    out.push(',');
                }
                first_in_group = false;
                out.push_str(&Value::from(id).to_string());
                out.push(':');
                out.push_str(&Value::Object(doc).to_string());
            }
        })
        .await;
    if current.is_some() {
        out.push('}');
    }
    out.push('}');
    match scanned {
        Ok(()) => (
            StatusCode::CREATED,
            [(http::header::CONTENT_TYPE, "application/json")],
            out,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "POST /config: reading back the loaded configuration failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            )
        }
    }
}

/// One step of a problem's path.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name.to_owned()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => out.push(Step::Key(idx.to_owned())),
            }
        }
    }
    out
}

/// The value at `path` under `at`, creating objects and arrays on the way.
fn slot<'a>(at: &'a mut Value, path: &[Step]) -> &'a mut Value {
    let Some((first, rest)) = path.split_first() else {
        return at;
    };
    match (first, at) {
        (Step::Key(k), Value::Object(m)) => slot(m.entry(k.clone()).or_insert(Value::Null), rest),
        (Step::Index(i), Value::Array(a)) => {
            if a.len() <= *i {
                a.resize(*i + 1, Value::Null);
            }
            slot(&mut a[*i], rest)
        }
        (Step::Key(_), other) => {
            *other = Value::Object(Map::new());
            slot(other, path)
        }
        (Step::Index(_), other) => {
            *other = Value::Array(Vec::new());
            slot(other, path)
        }
    }
}

/// Kong's `fields` for a list of problems: a tree mirroring the document; entity-level
/// messages under `@entity`.
fn fields(problems: &[Problem]) -> Value {
    let mut root = Value::Object(Map::new());
    for p in problems {
        let path = steps(&p.path);
        let entity_level = p.path.ends_with(']');
        if path.is_empty() {
            let s = slot(&mut root, &[Step::Key("@entity".into())]);
            push(s, &p.message);
        } else if entity_level {
            let mut full = path;
            full.push(Step::Key("@entity".into()));
            push(slot(&mut root, &full), &p.message);
        } else {
            let s = slot(&mut root, &path);
            if s.is_null() {
                *s = Value::String(p.message.clone());
            }
        }
    }
    root
}

fn push(slot: &mut Value, msg: &str) {
    match slot {
        Value::Array(a) => a.push(json!(msg)),
        other => *other = json!([msg]),
    }
}

/// `flattened_errors`: one entry per entity with problems.
fn flattened(problems: &[Problem], sent: Option<&Value>) -> Value {
    let mut by_entity: Vec<(String, Vec<Value>)> = Vec::new();
    for p in problems {
        let cut = p.path.rfind(']').map_or(0, |i| i + 1);
        let (entity_path, field) = p.path.split_at(cut);
        let field = field.trim_start_matches('.');
        let error = if field.is_empty() {
            json!({"type": "entity", "message": p.message})
        } else {
            json!({"type": "field", "field": field, "message": p.message})
        };
        match by_entity.iter_mut().find(|(e, _)| e == entity_path) {
            Some((_, errs)) => errs.push(error),
            None => by_entity.push((entity_path.to_owned(), vec![error])),
        }
    }
    Value::Array(
        by_entity
            .into_iter()
            .map(|(path, errors)| {
                let steps = steps(&path);
                let entity = sent.and_then(|doc| {
                    steps.iter().try_fold(doc, |v, s| match s {
                        Step::Key(k) => v.get(k),
                        Step::Index(i) => v.get(i),
                    })
                });
                let kind = steps
                    .iter()
                    .rev()
                    .find_map(|s| match s {
                        Step::Key(k) => Some(k.trim_end_matches('s').to_owned()),
                        Step::Index(_) => None,
                    })
                    .unwrap_or_default();
                let mut item = Map::new();
                item.insert("entity_type".into(), json!(kind));
                if let Some(e) = entity {
                    for (key, out) in [
                        ("name", "entity_name"),
                        ("id", "entity_id"),
                        ("tags", "entity_tags"),
                    ] {
                        if let Some(v) = e.get(key) {
                            item.insert(out.into(), v.clone());
                        }
                    }
                    item.insert("entity".into(), e.clone());
                }
                item.insert("errors".into(), Value::Array(errors));
                Value::Object(item)
            })
            .collect(),
    )
}

/// 400 code 14, Kong's invalid declarative configuration.
fn invalid(e: DeclarativeError, sent: Option<&Value>, flatten: bool) -> Response {
    let (fields, problems) = match &e {
        DeclarativeError::Invalid(problems) => (fields(problems), Some(problems)),
        DeclarativeError::Db(db) => {
            tracing::error!(error = %db, "POST /config failed");
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            );
        }
        other => (json!({ "error": other.to_string() }), None),
    };
    let mut body = json!({
        "code": 14,
        "name": "invalid declarative configuration",
        "message": format!("declarative config is invalid: {}", lua(&fields)),
        "fields": fields,
    });
    if flatten {
        body["flattened_errors"] = problems.map_or(json!([]), |p| flattened(p, sent));
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}
