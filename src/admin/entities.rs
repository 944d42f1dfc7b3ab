//! The generated entity endpoints: collections, entities, nested collections and
//! foreign-entity endpoints, for every entity in the [catalogue](super::catalogue).
//!
//! Paths are split here rather than in the axum router so that one table drives them and a
//! trailing `/` or a percent-encoded name works everywhere. Semantics follow Kong: `POST` 201,
//! `PUT` upserts (200), `PATCH` merges (200), `DELETE` 204 even when absent; in DB-less mode
//! reads work and writes answer 405.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::body;
use super::catalogue::{self, Collection, Nested};
use super::error::ApiError;
use super::AdminState;
use crate::store::schema::{Doc, Schema};
use crate::store::{EntityKey, Page, PageRequest, Store, TagFilter, WriteOptions};

/// Largest request body the entity endpoints read.
const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Characters escaped in `next` links: everything but RFC 3986 unreserved characters.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One parsed request.
pub(super) struct Req {
    method: Method,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    /// The first value of query argument `name`.
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

/// Entry point for every path without a route of its own.
pub async fn dispatch(
    State(state): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(segments) = segments(uri.path()) else {
        return ApiError::NotFound.into_response();
    };
    // A declared length over the limit is refused before reading, as nginx does.
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return ApiError::message(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large")
            .into_response();
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::message(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large")
                .into_response()
        }
    };
    let query = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let req = Req {
        method,
        query,
        headers,
        body,
    };
    match route(&state, &req, &segments).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// Splits and percent-decodes a path; a trailing `/` is tolerated.
fn segments(path: &str) -> Option<Vec<String>> {
    let trimmed = path.strip_prefix('/')?;
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

/// What a path addresses.
enum Target<'a> {
    Collection(&'static Collection),
    Entity(&'static Collection, &'a str),
    NestedCollection(&'static Nested, &'a str),
    NestedEntity(&'static Nested, &'a str, &'a str),
    Foreign(&'static Collection, &'a str, &'a str),
    AllTargets(&'a str),
    /// `/upstreams/{u}/health`.
    Health(&'a str),
    /// `/upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy`.
    SetHealth(&'a str, &'a str, Option<&'a str>, bool),
}

impl Target<'_> {
    fn allowed(&self) -> &'static [&'static str] {
        match self {
            Target::Collection(_) | Target::NestedCollection(..) => {
                &["GET", "HEAD", "OPTIONS", "POST"]
            }
            Target::AllTargets(_) | Target::Health(_) => &["GET", "HEAD", "OPTIONS"],
            Target::SetHealth(..) => &["OPTIONS", "PUT"],
            Target::Foreign(..) => &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"],
            Target::Entity(..) | Target::NestedEntity(..) => {
                &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"]
            }
        }
    }
}

fn target(segments: &[String]) -> Option<Target<'_>> {
    match segments {
        [c] => Some(Target::Collection(catalogue::collection(c)?)),
        [c, x, h] if c == "upstreams" && h == "health" => Some(Target::Health(x)),
        [c, x, sub, t, op] if c == "upstreams" && sub == "targets" && health_op(op).is_some() => {
            Some(Target::SetHealth(x, t, None, health_op(op)?))
        }
        [c, x, sub, t, a, op] if c == "upstreams" && sub == "targets" => {
            Some(Target::SetHealth(x, t, Some(a), health_op(op)?))
        }
        [c, x] => Some(Target::Entity(catalogue::collection(c)?, x)),
        [c, x, sub] => {
            if let Some(n) = catalogue::nested(c, sub) {
                return Some(Target::NestedCollection(n, x));
            }
            let col = catalogue::collection(c)?;
            catalogue::foreign(col, sub)?;
            Some(Target::Foreign(col, x, sub))
        }
        [c, x, sub, y] if c == "upstreams" && sub == "targets" && y == "all" => {
            Some(Target::AllTargets(x))
        }
        [c, x, sub, y] => Some(Target::NestedEntity(catalogue::nested(c, sub)?, x, y)),
        _ => None,
    }
}

fn health_op(op: &str) -> Option<bool> {
    match op {
        "healthy" => Some(true),
        "unhealthy" => Some(false),
        _ => None,
    }
}

/// The upstream `{u}` (id or name).
pub(super) async fn find_upstream(store: &Store, u: &str) -> Result<Option<Doc>, ApiError> {
    let c = catalogue::collection("upstreams").ok_or(ApiError::NotFound)?;
    find(store, schema_of(c)?, u).await
}

/// Target `{t}` (id or address) of upstream `upstream_id`.
pub(super) async fn find_target(
    store: &Store,
    upstream_id: &str,
    t: &str,
) -> Result<Option<Doc>, ApiError> {
    let n = catalogue::nested("upstreams", "targets").ok_or(ApiError::NotFound)?;
    find_child(store, n, child_schema(n)?, upstream_id, t).await
}

async fn route(state: &AdminState, req: &Req, segments: &[String]) -> Result<Response, ApiError> {
    let Some(t) = target(segments) else {
        return Err(ApiError::NotFound);
    };
    let allowed = t.allowed();
    if req.method == Method::OPTIONS {
        return Ok(options(allowed, &req.headers));
    }
    if !allowed.contains(&req.method.as_str()) {
        return Err(ApiError::MethodNotAllowed);
    }
    let store = &state.store;
    match t {
        Target::Collection(c) => collection(store, req, c).await,
        Target::Entity(c, x) => entity(store, req, c, x).await,
        Target::NestedCollection(n, p) => nested_collection(store, req, n, p).await,
        Target::NestedEntity(n, p, x) => nested_entity(store, req, n, p, x).await,
        Target::Foreign(c, x, field) => foreign(store, req, c, x, field).await,
        Target::AllTargets(u) => {
            let n = catalogue::nested("upstreams", "targets").ok_or(ApiError::NotFound)?;
            nested_collection(store, req, n, u).await
        }
        Target::Health(u) => super::health::get(state, req, u).await,
        Target::SetHealth(u, t, address, healthy) => {
            super::health::set(state, u, t, address, healthy).await
        }
    }
}

/// `OPTIONS`: 204 with the allowed methods.
fn options(allowed: &[&str], headers: &HeaderMap) -> Response {
    let methods = allowed.join(", ");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert(http::header::ALLOW, v.clone());
        h.insert("access-control-allow-methods", v);
    }
    let requested = headers
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or(HeaderValue::from_static("Content-Type"));
    h.insert("access-control-allow-headers", requested);
    resp
}

fn schema_of(c: &Collection) -> Result<&'static Schema, ApiError> {
    catalogue::schema(c).ok_or(ApiError::NotFound)
}

fn child_schema(n: &Nested) -> Result<&'static Schema, ApiError> {
    crate::store::entities::entity(n.entity).ok_or(ApiError::NotFound)
}

/// The request body as an entity document for `schema`: JSON as sent, forms typed by the schema
/// (a plugin's `config` by its plugin's schema, the name taken from the body or `existing`).
fn body_doc(
    req: &Req,
    store: &Store,
    schema: &Schema,
    existing: Option<&Doc>,
) -> Result<Doc, ApiError> {
    let decoded = body::decode(&req.headers, &req.body)?;
    let name = decoded.text("name").map(str::to_owned).or_else(|| {
        existing
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let plugins = store.plugins();
    let any = match (schema.name, name) {
        ("plugins", Some(n)) => plugins.plugin(&n).map(|p| &p.config),
        _ => None,
    };
    Ok(decoded.into_doc(&schema.record, any)?)
}

fn dbless(store: &Store) -> bool {
    store.backend() == "off"
}

/// Kong's DB-less refusal: `cannot <op> '<entity>' entities when not using a database`.
fn unsupported(op: &str, entity: &str, by: Option<&str>) -> ApiError {
    let by = by.map(|f| format!(" by '{f}'")).unwrap_or_default();
    ApiError::Db(crate::store::DbError::Unsupported(format!(
        "cannot {op} '{entity}' entities{by} when not using a database"
    )))
}

pub(super) fn page_request(req: &Req) -> Result<PageRequest, ApiError> {
    let size = match req.query("size") {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::Db(crate::store::DbError::InvalidSize("size must be a number"))
        })?),
    };
    let tags = req.query("tags").map(TagFilter::parse).transpose()?;
    Ok(PageRequest {
        size,
        offset: req.query("offset").map(str::to_owned),
        tags,
        parent: None,
    })
}

/// Percent-escapes a query or path value (everything but unreserved characters).
pub(super) fn escape(s: &str) -> String {
    utf8_percent_encode(s, ESCAPE).to_string()
}

/// `{"data": [...], "offset"?, "next"}`; `next` is `base?offset=<token>` plus `extra`.
pub(super) fn page_body(page: Page, base: &str, extra: &str) -> Response {
    let mut body = Map::new();
    body.insert(
        "data".into(),
        Value::Array(page.data.into_iter().map(Value::Object).collect()),
    );
    match page.offset {
        Some(token) => {
            body.insert(
                "next".into(),
                json!(format!("{base}?offset={}{extra}", escape(&token))),
            );
            body.insert("offset".into(), json!(token));
        }
        None => {
            body.insert("next".into(), Value::Null);
        }
    }
    Json(Value::Object(body)).into_response()
}

fn ok(status: StatusCode, doc: Doc) -> Response {
    (status, Json(Value::Object(doc))).into_response()
}

async fn collection(
    store: &Store,
    req: &Req,
    c: &'static Collection,
) -> Result<Response, ApiError> {
    let schema = schema_of(c)?;
    if req.is_read() {
        if c.entity == "consumers" {
            if let Some(custom_id) = req.query("custom_id") {
                return consumer_by_custom_id(store, custom_id).await;
            }
        }
        let page_req = page_request(req)?;
        let mut extra = String::new();
        if let Some(t) = req.query("tags") {
            extra.push_str(&format!("&tags={}", escape(t)));
        }
        if let Some(s) = req.query("size") {
            extra.push_str(&format!("&size={}", escape(s)));
        }
        let page = store.page(schema.name, &page_req).await?;
        return Ok(page_body(page, &format!("/{}", c.path), &extra));
    }
    if dbless(store) {
        return Err(unsupported("create", schema.name, None));
    }
    let doc = body_doc(req, store, schema, None)?;
    let created = store
        .insert(schema.name, doc, WriteOptions::default())
        .await?;
    Ok(ok(StatusCode::CREATED, created))
}

async fn consumer_by_custom_id(store: &Store, custom_id: &str) -> Result<Response, ApiError> {
    if custom_id.is_empty() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "custom_id must be an unempty string",
        ));
    }
    // custom_id is unique: at most one match.
    let mut req = PageRequest::default();
    let mut found = Vec::new();
    loop {
        let page = store.page("consumers", &req).await?;
        found.extend(
            page.data
                .into_iter()
                .filter(|d| d.get("custom_id").and_then(Value::as_str) == Some(custom_id)),
        );
        match page.offset {
            Some(o) if found.is_empty() => req.offset = Some(o),
            _ => break,
        }
    }
    Ok(Json(json!({ "data": found, "next": null })).into_response())
}

/// Resolves `{x}` of a collection: an id, an endpoint-key value, or for certificates an SNI name.
async fn find(store: &Store, schema: &'static Schema, x: &str) -> Result<Option<Doc>, ApiError> {
    if schema.name == "certificates" && uuid::Uuid::parse_str(x).is_err() {
        let Some(sni) = store
            .select("snis", &EntityKey::Endpoint(x.to_owned()))
            .await?
        else {
            return Ok(None);
        };
        let Some(cert) = sni
            .get("certificate")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        return Ok(store
            .select("certificates", &EntityKey::Id(cert.to_owned()))
            .await?);
    }
    let key = EntityKey::parse(schema, x)?;
    Ok(store.select(schema.name, &key).await?)
}

fn id_of(doc: &Doc) -> String {
    doc.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn entity(
    store: &Store,
    req: &Req,
    c: &'static Collection,
    x: &str,
) -> Result<Response, ApiError> {
    let schema = schema_of(c)?;
    let existing = find(store, schema, x).await?;
    match req.method {
        Method::GET | Method::HEAD => match existing {
            Some(doc) => Ok(ok(StatusCode::OK, doc)),
            None => Err(ApiError::NotFound),
        },
        Method::PUT => {
            let key = match (&existing, schema.name) {
                (Some(doc), _) => EntityKey::Id(id_of(doc)),
                // A certificate PUT by an unknown SNI name creates a certificate for that name.
                (None, "certificates") if uuid::Uuid::parse_str(x).is_err() => {
                    EntityKey::Id(uuid::Uuid::new_v4().to_string())
                }
                _ => EntityKey::parse(schema, x)?,
            };
            if dbless(store) {
                return Err(unsupported(
                    "create or update",
                    schema.name,
                    by_key(schema, &key),
                ));
            }
            let mut doc = body_doc(req, store, schema, existing.as_ref())?;
            if schema.name == "certificates"
                && uuid::Uuid::parse_str(x).is_err()
                && existing.is_none()
            {
                let mut snis: Vec<Value> = match doc.remove("snis") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                if !snis.iter().any(|s| s.as_str() == Some(x)) {
                    snis.push(json!(x));
                }
                doc.insert("snis".into(), Value::Array(snis));
            }
            let stored = store
                .upsert(schema.name, &key, doc, WriteOptions::default())
                .await?;
            Ok(ok(StatusCode::OK, stored))
        }
        Method::PATCH => match existing {
            Some(old) => update_existing(store, req, schema, &old, None).await,
            None => Err(not_found(schema, &EntityKey::parse(schema, x)?)),
        },
        Method::DELETE => {
            if existing.is_none() {
                // A malformed key is still an error; an absent entity is not.
                EntityKey::parse(schema, x)?;
            }
            remove_existing(store, schema, existing).await
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// `PATCH` of an entity known to exist; `parent` keeps a nested child's link unless the body
/// moves it.
async fn update_existing(
    store: &Store,
    req: &Req,
    schema: &'static Schema,
    old: &Doc,
    parent: Option<(&str, &str)>,
) -> Result<Response, ApiError> {
    if dbless(store) {
        return Err(unsupported("update", schema.name, None));
    }
    let mut doc = body_doc(req, store, schema, Some(old))?;
    if let Some((fk, parent_id)) = parent {
        if !doc.contains_key(fk) {
            doc.insert(fk.to_owned(), json!({ "id": parent_id }));
        }
    }
    let stored = store
        .update(
            schema.name,
            &EntityKey::Id(id_of(old)),
            doc,
            WriteOptions::default(),
        )
        .await?;
    Ok(ok(StatusCode::OK, stored))
}

/// `DELETE`: 204 whether or not the entity existed.
async fn remove_existing(
    store: &Store,
    schema: &'static Schema,
    old: Option<Doc>,
) -> Result<Response, ApiError> {
    if let Some(old) = old {
        if dbless(store) {
            return Err(unsupported("remove", schema.name, None));
        }
        store
            .delete(schema.name, &EntityKey::Id(id_of(&old)))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn by_key(schema: &Schema, key: &EntityKey) -> Option<&'static str> {
    match key {
        EntityKey::Endpoint(_) => schema.endpoint_key,
        EntityKey::Id(_) => None,
    }
}

fn not_found(schema: &Schema, key: &EntityKey) -> ApiError {
    let (key, by_id) = match key {
        EntityKey::Id(id) => (json!({ "id": id }), true),
        EntityKey::Endpoint(v) => (json!({ schema.endpoint_key.unwrap_or("id"): v }), false),
    };
    ApiError::Db(crate::store::DbError::NotFound { key, by_id })
}

/// Resolves the parent `{p}` of a nested path; 404 when absent.
async fn parent(store: &Store, n: &Nested, p: &str) -> Result<Doc, ApiError> {
    let c = catalogue::collection(n.parent).ok_or(ApiError::NotFound)?;
    find(store, schema_of(c)?, p)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn nested_collection(
    store: &Store,
    req: &Req,
    n: &'static Nested,
    p: &str,
) -> Result<Response, ApiError> {
    let schema = child_schema(n)?;
    let parent_doc = parent(store, n, p).await?;
    let parent_id = id_of(&parent_doc);
    if req.is_read() {
        let mut page_req = page_request(req)?;
        page_req.parent = Some((n.fk.to_owned(), parent_id));
        let page = store.page(schema.name, &page_req).await?;
        return Ok(page_body(
            page,
            &format!("/{}/{}/{}", n.parent, escape(p), n.name),
            "",
        ));
    }
    if dbless(store) {
        return Err(unsupported("create", schema.name, None));
    }
    let mut doc = body_doc(req, store, schema, None)?;
    doc.insert(n.fk.to_owned(), json!({ "id": parent_id }));
    let created = store
        .insert(schema.name, doc, WriteOptions::default())
        .await?;
    Ok(ok(StatusCode::CREATED, created))
}

/// Finds child `{x}` of a nested path; it must belong to the parent.
async fn find_child(
    store: &Store,
    n: &Nested,
    schema: &'static Schema,
    parent_id: &str,
    x: &str,
) -> Result<Option<Doc>, ApiError> {
    let belongs = |d: &Doc| {
        d.get(n.fk)
            .and_then(|f| f.get("id"))
            .and_then(Value::as_str)
            == Some(parent_id)
    };
    if uuid::Uuid::parse_str(x).is_ok() {
        let found = store
            .select(schema.name, &EntityKey::Id(x.to_ascii_lowercase()))
            .await?;
        return Ok(found.filter(belongs));
    }
    // Children without an endpoint key are addressed by their natural key within the parent:
    // an ACL by its group, a target by its address.
    let wanted = match schema.name {
        "acls" => Some(("group", x.to_owned())),
        "targets" => Some((
            "target",
            crate::store::entities::target_address(x).unwrap_or_else(|| x.to_owned()),
        )),
        _ => None,
    };
    if let Some((field, value)) = wanted {
        let mut req = PageRequest {
            parent: Some((n.fk.to_owned(), parent_id.to_owned())),
            size: Some(1000),
            ..PageRequest::default()
        };
        loop {
            let page = store.page(schema.name, &req).await?;
            if let Some(d) = page
                .data
                .iter()
                .find(|d| d.get(field).and_then(Value::as_str) == Some(value.as_str()))
            {
                return Ok(Some(d.clone()));
            }
            match page.offset {
                Some(o) => req.offset = Some(o),
                None => return Ok(None),
            }
        }
    }
    let key = EntityKey::parse(schema, x)?;
    Ok(store.select(schema.name, &key).await?.filter(belongs))
}

async fn nested_entity(
    store: &Store,
    req: &Req,
    n: &'static Nested,
    p: &str,
    x: &str,
) -> Result<Response, ApiError> {
    let schema = child_schema(n)?;
    let parent_doc = parent(store, n, p).await?;
    let parent_id = id_of(&parent_doc);
    let existing = find_child(store, n, schema, &parent_id, x).await?;
    match req.method {
        Method::GET | Method::HEAD => existing
            .map(|d| ok(StatusCode::OK, d))
            .ok_or(ApiError::NotFound),
        Method::DELETE => remove_existing(store, schema, existing).await,
        // Targets are only ever updated in place; PUT and PATCH both need an existing one.
        Method::PATCH | Method::PUT if schema.name == "targets" || req.method == Method::PATCH => {
            let old = existing.ok_or(ApiError::NotFound)?;
            update_existing(store, req, schema, &old, Some((n.fk, &parent_id))).await
        }
        Method::PUT => {
            if dbless(store) {
                return Err(unsupported("create or update", schema.name, None));
            }
            let mut doc = body_doc(req, store, schema, existing.as_ref())?;
            doc.insert(n.fk.to_owned(), json!({ "id": parent_id }));
            let key = match &existing {
                Some(d) => EntityKey::Id(id_of(d)),
                None if schema.name == "acls" && uuid::Uuid::parse_str(x).is_err() => {
                    doc.insert("group".into(), json!(x));
                    EntityKey::Id(uuid::Uuid::new_v4().to_string())
                }
                None => EntityKey::parse(schema, x)?,
            };
            let stored = store
                .upsert(schema.name, &key, doc, WriteOptions::default())
                .await?;
            Ok(ok(StatusCode::OK, stored))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn foreign(
    store: &Store,
    req: &Req,
    c: &'static Collection,
    x: &str,
    field: &str,
) -> Result<Response, ApiError> {
    let schema = schema_of(c)?;
    let target = catalogue::foreign(c, field).ok_or(ApiError::NotFound)?;
    let doc = find(store, schema, x).await?.ok_or(ApiError::NotFound)?;
    let linked = doc
        .get(field)
        .and_then(|f| f.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (req.method.clone(), linked) {
        (Method::GET | Method::HEAD, Some(id)) => store
            .select(target.name, &EntityKey::Id(id))
            .await?
            .map(|d| ok(StatusCode::OK, d))
            .ok_or(ApiError::NotFound),
        (Method::DELETE, Some(_)) => Err(ApiError::MethodNotAllowed),
        (Method::PATCH, Some(id)) => {
            if dbless(store) {
                return Err(unsupported("update", target.name, None));
            }
            let current = store
                .select(target.name, &EntityKey::Id(id.clone()))
                .await?;
            let body = body_doc(req, store, target, current.as_ref())?;
            let stored = store
                .update(
                    target.name,
                    &EntityKey::Id(id),
                    body,
                    WriteOptions::default(),
                )
                .await?;
            Ok(ok(StatusCode::OK, stored))
        }
        (Method::PUT, linked) => {
            if dbless(store) {
                return Err(unsupported("create or update", target.name, None));
            }
            let body = body_doc(req, store, target, None)?;
            // Without a link, PUT creates the referenced entity and links it.
            let id = linked.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let stored = store
                .upsert(
                    target.name,
                    &EntityKey::Id(id.clone()),
                    body,
                    WriteOptions::default(),
                )
                .await?;
            let mut link = Map::new();
            link.insert(field.to_owned(), json!({ "id": id }));
            store
                .update(
                    schema.name,
                    &EntityKey::Id(id_of(&doc)),
                    link,
                    WriteOptions::default(),
                )
                .await?;
            Ok(ok(StatusCode::OK, stored))
        }
        _ => Err(ApiError::NotFound),
    }
}
