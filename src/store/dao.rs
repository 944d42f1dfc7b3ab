//! Entity operations: the one implementation of Kong's write and read semantics.
//!
//! Every backend runs this same code over its `Tx` primitives: validation, generated fields,
//! references (resolved by unique field, checked for existence), unique keys, cascading and
//! restricted deletes, pagination and tag filters. A write and its change event commit in one
//! transaction; a failed write leaves nothing behind.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::backend::{Change, PageQuery, Ref, Row, TagFilter, Tx};
use super::error::DbError;
use super::schema::{typedefs, Context, Doc, Kind, Path, Schema, SchemaErrors, Timestamps};
use super::{entities, Store};

/// How a path segment addresses an entity: by id, or by its endpoint key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityKey {
    /// The primary key.
    Id(String),
    /// The value of the schema's endpoint key (a name, a username ...).
    Endpoint(String),
}

impl EntityKey {
    /// Reads a path segment: a UUID is always an id; anything else is an endpoint key value.
    pub fn parse(schema: &'static Schema, text: &str) -> Result<EntityKey, DbError> {
        if uuid::Uuid::parse_str(text).is_ok() {
            return Ok(EntityKey::Id(text.to_ascii_lowercase()));
        }
        match schema.endpoint_key {
            Some(_) => Ok(EntityKey::Endpoint(text.to_owned())),
            None => Err(DbError::InvalidPrimaryKey(
                json!({"id": "expected a valid UUID"}),
            )),
        }
    }

    fn describe(&self, schema: &'static Schema) -> DbError {
        match self {
            EntityKey::Id(id) => DbError::NotFound {
                key: json!({ "id": id }),
                by_id: true,
            },
            EntityKey::Endpoint(v) => DbError::NotFound {
                key: json!({ schema.endpoint_key.unwrap_or("id"): v }),
                by_id: false,
            },
        }
    }
}

/// A page request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Page size (default 100, 1 … 1000).
    pub size: Option<usize>,
    /// Token from the previous page.
    pub offset: Option<String>,
    /// Tag filter.
    pub tags: Option<TagFilter>,
    /// Only children of this entity: (foreign field, parent id).
    pub parent: Option<(String, String)>,
}

/// One page of entities.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The entities.
    pub data: Vec<Doc>,
    /// Token for the next page; `None` on the last one.
    pub offset: Option<String>,
}

/// Knobs for writes.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Apply write transformations (hashing basic-auth passwords). Declarative files with
    /// `_transform: false` carry already-transformed values.
    pub transform: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { transform: true }
    }
}

impl TagFilter {
    /// Parses `?tags=`: `a,b` means all, `a/b` any; at most five tags.
    pub fn parse(text: &str) -> Result<TagFilter, DbError> {
        let bad = |message: &str| DbError::InvalidOptions {
            option: "tags",
            message: message.to_owned(),
        };
        if text.is_empty() {
            return Err(bad("cannot be null"));
        }
        let (all, sep) = match (text.contains(','), text.contains('/')) {
            (true, true) => return Err(bad("invalid filter syntax")),
            (false, true) => (false, '/'),
            _ => (true, ','),
        };
        let tags: Vec<String> = text.split(sep).map(str::to_owned).collect();
        if tags.len() > 5 {
            return Err(bad("cannot query more than 5 tags"));
        }
        if tags
            .iter()
            .any(|t| t.is_empty() || typedefs::tag(&Value::from(t.as_str())).is_err())
        {
            return Err(bad("invalid filter syntax"));
        }
        Ok(TagFilter { tags, all })
    }
}

fn schema_of(entity: &str) -> Result<&'static Schema, DbError> {
    entities::entity(entity).ok_or_else(|| DbError::UnknownEntity(entity.to_owned()))
}

fn now(style: Timestamps) -> Value {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    match style {
        Timestamps::Millis => json!((t.as_millis() as f64) / 1000.0),
        _ => json!(t.as_secs()),
    }
}

fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("id").and_then(Value::as_str).map(str::to_owned),
        other => Some(other.to_string()),
    }
}

fn id_of(doc: &Doc) -> String {
    doc.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Merges a PATCH body over a stored entity: records merge field by field; arrays, sets, maps,
/// scalars and null replace. `any` is the record describing `Kind::Any` fields (a plugin's
/// config schema), when known.
fn merge(
    fields: &super::schema::Record,
    any: Option<&super::schema::Record>,
    base: &mut Doc,
    patch: Doc,
) {
    for (k, v) in patch {
        let nested = match fields.field(&k).map(|f| &f.kind) {
            Some(Kind::Record(r)) => Some(r),
            Some(Kind::Any) => any,
            _ => None,
        };
        match (nested, base.get_mut(&k), v) {
            (Some(rec), Some(Value::Object(old)), Value::Object(new)) => merge(rec, None, old, new),
            (_, _, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Store {
    fn ctx(&self) -> Context<'_> {
        Context {
            plugins: self.plugins(),
        }
    }

    /// Reads one entity by id or endpoint key.
    pub async fn select(&self, entity: &str, key: &EntityKey) -> Result<Option<Doc>, DbError> {
        let schema = schema_of(entity)?;
        let mut tx = self.read().await?;
        let found = find(&mut tx, schema, key).await?;
        match found {
            Some(doc) => Ok(Some(present(&mut tx, schema, doc).await?)),
            None => Ok(None),
        }
    }

    /// Lists one page of entities, ordered by id.
    pub async fn page(&self, entity: &str, req: &PageRequest) -> Result<Page, DbError> {
        let schema = schema_of(entity)?;
        let size = req.size.unwrap_or(100);
        if !(1..=1000).contains(&size) {
            return Err(DbError::InvalidSize(
                "size must be an integer between 1 and 1000",
            ));
        }
        let after = match &req.offset {
            Some(token) => Some(decode_offset(token)?),
            None => None,
        };
        let parent = match &req.parent {
            Some((field, id)) => {
                let target = schema
                    .field(field)
                    .and_then(|f| f.foreign_ref())
                    .map(|f| f.reference)
                    .ok_or_else(|| DbError::UnknownEntity(format!("{entity}.{field}")))?;
                Some((field.as_str(), target, id.as_str()))
            }
            None => None,
        };
        let mut tx = self.read().await?;
        let q = PageQuery {
            entity: schema.name,
            after: after.as_deref(),
            limit: size + 1,
            parent,
            tags: req.tags.as_ref(),
        };
        let mut data = tx.page(&q).await?;
        let offset = if data.len() > size {
            data.truncate(size);
            data.last().map(|d| encode_offset(&id_of(d)))
        } else {
            None
        };
        let mut out = Vec::with_capacity(data.len());
        for doc in data {
            out.push(present(&mut tx, schema, doc).await?);
        }
        Ok(Page { data: out, offset })
    }

    /// One page of the tag index (`/tags`, `/tags/{tag}`): entries
    /// `{"entity_name", "entity_id", "tag"}` ordered by tag, entity and id.
    pub async fn tags(
        &self,
        tag: Option<&str>,
        size: Option<usize>,
        offset: Option<&str>,
    ) -> Result<Page, DbError> {
        let size = size.unwrap_or(100);
        if !(1..=1000).contains(&size) {
            return Err(DbError::InvalidSize(
                "size must be an integer between 1 and 1000",
            ));
        }
        let after = match offset {
            Some(token) => {
                let parts = decode_token(token)?;
                match <[String; 3]>::try_from(parts) {
                    Ok([t, e, i]) => Some((t, e, i)),
                    Err(_) => {
                        return Err(DbError::InvalidOffset(
                            token.to_owned(),
                            "bad json encoding",
                        ))
                    }
                }
            }
            None => None,
        };
        let mut tx = self.read().await?;
        let mut rows = tx.tags(tag, after.as_ref(), size + 1).await?;
        let offset = if rows.len() > size {
            rows.truncate(size);
            rows.last()
                .map(|(t, e, i)| STANDARD_NO_PAD.encode(json!([t, e, i]).to_string()))
        } else {
            None
        };
        let data = rows
            .into_iter()
            .map(|(tag, entity, id)| {
                let mut d = Map::new();
                d.insert("entity_name".into(), json!(entity));
                d.insert("entity_id".into(), json!(id));
                d.insert("tag".into(), json!(tag));
                d
            })
            .collect();
        Ok(Page { data, offset })
    }

    /// Creates an entity (`POST`).
    pub async fn insert(
        &self,
        entity: &str,
        input: Doc,
        opts: WriteOptions,
    ) -> Result<Doc, DbError> {
        let schema = schema_of(entity)?;
        let mut tx = self.write().await?;
        let doc = insert_in(&mut tx, schema, input, opts, &self.ctx()).await?;
        self.finish(tx, schema, &doc, "create").await?;
        Ok(doc)
    }

    /// Creates or replaces the entity addressed by `key` (`PUT`).
    pub async fn upsert(
        &self,
        entity: &str,
        key: &EntityKey,
        input: Doc,
        opts: WriteOptions,
    ) -> Result<Doc, DbError> {
        let schema = schema_of(entity)?;
        let mut tx = self.write().await?;
        let (doc, op) = upsert_in(&mut tx, schema, key, input, opts, &self.ctx()).await?;
        self.finish(tx, schema, &doc, op).await?;
        Ok(doc)
    }

    /// Changes the given fields of an existing entity (`PATCH`).
    pub async fn update(
        &self,
        entity: &str,
        key: &EntityKey,
        patch: Doc,
        opts: WriteOptions,
    ) -> Result<Doc, DbError> {
        let schema = schema_of(entity)?;
        let mut tx = self.write().await?;
        let Some(old) = find(&mut tx, schema, key).await? else {
            return Err(key.describe(schema));
        };
        if let Some(id) = patch.get("id") {
            if id.as_str() != old.get("id").and_then(Value::as_str) {
                return Err(SchemaErrors::at(
                    &Path::root().key("id"),
                    "immutable field cannot be updated",
                )
                .into());
            }
        }
        let mut merged = old.clone();
        let input = patch.clone();
        let ctx = self.ctx();
        let plugin = match (schema.name, patch.get("name").or(old.get("name"))) {
            ("plugins", Some(Value::String(name))) => ctx.plugins.plugin(name).map(|p| &p.config),
            _ => None,
        };
        merge(&schema.record, plugin, &mut merged, patch);
        if let Some(ts) = updated_stamp(schema) {
            merged.insert("updated_at".into(), ts);
        }
        let doc = write_in(&mut tx, schema, input, merged, Some(&old), opts, &ctx).await?;
        let doc = present(&mut tx, schema, doc).await?;
        self.finish(tx, schema, &doc, "update").await?;
        Ok(doc)
    }

    /// Deletes an entity and, in the same transaction, what cascades from it. Deleting
    /// something absent succeeds.
    pub async fn delete(&self, entity: &str, key: &EntityKey) -> Result<(), DbError> {
        let schema = schema_of(entity)?;
        let mut tx = self.write().await?;
        let Some(doc) = find(&mut tx, schema, key).await? else {
            return Ok(());
        };
        let id = id_of(&doc);
        delete_in(&mut tx, schema, &id).await?;
        tx.record(
            self.node_id(),
            &Change {
                op: "delete".into(),
                entity: Some(schema.name.into()),
                id: Some(id.clone()),
            },
        )
        .await?;
        tx.commit().await?;
        self.notify(Change {
            op: "delete".into(),
            entity: Some(schema.name.into()),
            id: Some(id),
        });
        Ok(())
    }

    async fn finish(
        &self,
        mut tx: Tx,
        schema: &'static Schema,
        doc: &Doc,
        op: &str,
    ) -> Result<(), DbError> {
        let change = Change {
            op: op.into(),
            entity: Some(schema.name.into()),
            id: Some(id_of(doc)),
        };
        tx.record(self.node_id(), &change).await?;
        tx.commit().await?;
        self.notify(change);
        Ok(())
    }
}

fn updated_stamp(schema: &'static Schema) -> Option<Value> {
    match schema.timestamps {
        Timestamps::CreatedOnly => None,
        style => Some(now(style)),
    }
}

/// Finds an entity by id or endpoint key.
pub(crate) async fn find(
    tx: &mut Tx,
    schema: &'static Schema,
    key: &EntityKey,
) -> Result<Option<Doc>, DbError> {
    match key {
        EntityKey::Id(id) => tx.get(schema.name, id).await,
        EntityKey::Endpoint(v) => {
            let Some(field) = schema.endpoint_key else {
                return Ok(None);
            };
            match tx.find_key(schema.name, field, v).await? {
                Some(id) => tx.get(schema.name, &id).await,
                None => Ok(None),
            }
        }
    }
}

/// Adds what reads show but rows do not store (a certificate's SNI names).
async fn present(tx: &mut Tx, schema: &'static Schema, mut doc: Doc) -> Result<Doc, DbError> {
    if schema.name == "certificates" {
        let names = sni_names(tx, &id_of(&doc)).await?;
        doc.insert(
            "snis".into(),
            Value::Array(names.into_iter().map(Value::from).collect()),
        );
    }
    Ok(doc)
}

async fn sni_names(tx: &mut Tx, certificate: &str) -> Result<Vec<String>, DbError> {
    let mut names = Vec::new();
    for (entity, id, _) in tx.referrers("certificates", certificate).await? {
        if entity == "snis" {
            if let Some(sni) = tx.get("snis", &id).await? {
                if let Some(n) = sni.get("name").and_then(Value::as_str) {
                    names.push(n.to_owned());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Fills generated fields of a new entity.
fn generate(schema: &'static Schema, doc: &mut Doc) {
    if doc.get("id").is_none_or(Value::is_null) {
        doc.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    let stamp = now(schema.timestamps);
    for field in ["created_at", "updated_at"] {
        if schema.field(field).is_some() && doc.get(field).is_none_or(Value::is_null) {
            doc.insert(field.into(), stamp.clone());
        }
    }
    for (name, field) in &schema.record.fields {
        if field.auto
            && matches!(field.kind, Kind::String)
            && name != "id"
            && doc.get(name).is_none_or(Value::is_null)
        {
            doc.insert(
                name.clone(),
                json!(uuid::Uuid::new_v4().simple().to_string()),
            );
        }
    }
}

/// Turns foreign references given by a unique field (`{"name": "svc"}`) into ids.
async fn resolve_foreign(
    tx: &mut Tx,
    schema: &'static Schema,
    doc: &mut Doc,
) -> Result<(), DbError> {
    for (field, foreign) in schema.foreign_fields() {
        let Some(Value::Object(given)) = doc.get(field) else {
            continue;
        };
        if given.contains_key("id") || given.len() != 1 {
            continue;
        }
        let Some((key, value)) = given.iter().next().map(|(k, v)| (k.clone(), v.clone())) else {
            continue;
        };
        let target = schema_of(foreign.reference)?;
        let unique = target.field(&key).is_some_and(|f| f.unique);
        if !unique {
            continue;
        }
        let text = key_text(&value).unwrap_or_default();
        match tx.find_key(target.name, &key, &text).await? {
            Some(id) => {
                doc.insert(field.to_owned(), json!({ "id": id }));
            }
            None => {
                return Err(DbError::Unresolved {
                    field: field.to_owned(),
                    key,
                    value,
                    entity: target.name,
                })
            }
        }
    }
    Ok(())
}

pub(crate) async fn insert_in(
    tx: &mut Tx,
    schema: &'static Schema,
    mut input: Doc,
    opts: WriteOptions,
    ctx: &Context<'_>,
) -> Result<Doc, DbError> {
    // The raw input is only needed by write transformations (basic-auth hashing).
    let raw = if schema.transform.is_some() {
        input.clone()
    } else {
        Map::new()
    };
    resolve_foreign(tx, schema, &mut input).await?;
    generate(schema, &mut input);
    if let Some(Value::String(id)) = input.get("id") {
        if uuid::Uuid::parse_str(id).is_ok()
            && tx
                .get(schema.name, &id.to_ascii_lowercase())
                .await?
                .is_some()
        {
            return Err(DbError::PrimaryKey(id.clone()));
        }
    }
    let doc = write_in(tx, schema, raw, input, None, opts, ctx).await?;
    present(tx, schema, doc).await
}

pub(crate) async fn upsert_in(
    tx: &mut Tx,
    schema: &'static Schema,
    key: &EntityKey,
    mut input: Doc,
    opts: WriteOptions,
    ctx: &Context<'_>,
) -> Result<(Doc, &'static str), DbError> {
    let old = find(tx, schema, key).await?;
    match key {
        EntityKey::Id(id) => {
            input.insert("id".into(), json!(id));
        }
        EntityKey::Endpoint(v) => {
            if let Some(field) = schema.endpoint_key {
                input.insert(field.into(), json!(v));
            }
            match &old {
                Some(o) => {
                    input.insert("id".into(), json!(id_of(o)));
                }
                None => {
                    input.remove("id");
                }
            }
        }
    }
    // A replacement keeps the entity's creation time.
    if let Some(created) = old.as_ref().and_then(|o| o.get("created_at")) {
        if input.get("created_at").is_none_or(Value::is_null) {
            input.insert("created_at".into(), created.clone());
        }
    }
    if let Some(ts) = updated_stamp(schema) {
        input.insert("updated_at".into(), ts);
    }
    // The raw input is only needed by write transformations (basic-auth hashing).
    let raw = if schema.transform.is_some() {
        input.clone()
    } else {
        Map::new()
    };
    resolve_foreign(tx, schema, &mut input).await?;
    generate(schema, &mut input);
    let doc = write_in(tx, schema, raw, input, old.as_ref(), opts, ctx).await?;
    let doc = present(tx, schema, doc).await?;
    Ok((doc, if old.is_some() { "update" } else { "create" }))
}

/// Validates, checks references and unique keys, and stores one entity.
async fn write_in(
    tx: &mut Tx,
    schema: &'static Schema,
    raw: Doc,
    input: Doc,
    old: Option<&Doc>,
    opts: WriteOptions,
    ctx: &Context<'_>,
) -> Result<Doc, DbError> {
    let snis = match input.get("snis") {
        Some(v) if schema.name == "certificates" => Some(v.clone()),
        _ => None,
    };
    let mut doc = schema.validate(input, ctx)?;
    if let Some(old) = old {
        immutable(schema, old, &doc)?;
    }
    if opts.transform {
        if let Some(transform) = schema.transform {
            transform(&raw, &mut doc);
        }
    }
    let id = id_of(&doc);
    let mut refs = Vec::new();
    for (field, foreign) in schema.foreign_fields() {
        let Some(target) = doc.get(field).and_then(key_text) else {
            continue;
        };
        if tx.get(foreign.reference, &target).await?.is_none() {
            return Err(DbError::ForeignKey {
                field: field.to_owned(),
                entity: foreign.reference,
                id: target,
            });
        }
        refs.push(Ref {
            field: static_field(schema, field),
            entity: foreign.reference,
            id: target,
        });
    }
    if let Some(Value::Array(cas)) = doc.get("ca_certificates") {
        for ca in cas.iter().filter_map(Value::as_str) {
            refs.push(Ref {
                field: "ca_certificates",
                entity: "ca_certificates",
                id: ca.to_owned(),
            });
        }
    }
    let mut keys = Vec::new();
    for field in schema.unique_fields() {
        let Some(value) = doc.get(field).and_then(key_text) else {
            continue;
        };
        if let Some(owner) = tx.find_key(schema.name, field, &value).await? {
            if owner != id {
                return Err(DbError::Unique(json!({ field: doc.get(field) })));
            }
        }
        keys.push((field.to_owned(), value));
    }
    if schema.cache_key.len() > 1 {
        let parts: Vec<String> = schema
            .cache_key
            .iter()
            .map(|f| doc.get(*f).and_then(key_text).unwrap_or_default())
            .collect();
        let value = parts.join(":");
        if let Some(owner) = tx.find_key(schema.name, "cache_key", &value).await? {
            if owner != id {
                let fields: Map<String, Value> = schema
                    .cache_key
                    .iter()
                    .map(|f| ((*f).to_owned(), doc.get(*f).cloned().unwrap_or(Value::Null)))
                    .collect();
                return Err(DbError::Unique(Value::Object(fields)));
            }
        }
        keys.push(("cache_key".into(), value));
    }
    let tags = match doc.get("tags") {
        Some(Value::Array(t)) => t
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    tx.put(Row {
        entity: schema.name,
        id: id.clone(),
        data: doc.clone(),
        keys,
        refs,
        tags,
    })
    .await?;
    if let Some(snis) = snis {
        set_snis(tx, &id, snis, ctx).await?;
    }
    Ok(doc)
}

fn static_field(schema: &'static Schema, field: &str) -> &'static str {
    schema
        .record
        .fields
        .iter()
        .find(|(n, _)| n == field)
        .map(|(n, _)| n.as_str())
        .unwrap_or("")
}

fn immutable(schema: &'static Schema, old: &Doc, new: &Doc) -> Result<(), DbError> {
    let mut errs = SchemaErrors::new();
    for (name, field) in &schema.record.fields {
        if field.immutable
            && old.get(name) != new.get(name)
            && !old.get(name).is_none_or(Value::is_null)
        {
            errs.field(&Path::root().key(name), "immutable field cannot be updated");
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.into())
    }
}

/// Replaces a certificate's SNIs with `names`.
async fn set_snis(
    tx: &mut Tx,
    certificate: &str,
    names: Value,
    ctx: &Context<'_>,
) -> Result<(), DbError> {
    let at = Path::root().key("snis");
    let names: Vec<String> = match names {
        Value::Null => Vec::new(),
        Value::Array(a) => {
            let mut out = Vec::new();
            for (i, n) in a.into_iter().enumerate() {
                match n {
                    Value::String(s) => {
                        if let Err(e) = typedefs::wildcard_host(&Value::from(s.as_str())) {
                            return Err(SchemaErrors::at(&at.index(i), e).into());
                        }
                        if out.contains(&s) {
                            return Err(SchemaErrors::at(&at, format!("{s} is duplicated")).into());
                        }
                        out.push(s);
                    }
                    _ => return Err(SchemaErrors::at(&at.index(i), "expected a string").into()),
                }
            }
            out
        }
        _ => return Err(SchemaErrors::at(&at, "expected an array").into()),
    };
    let snis = schema_of("snis")?;
    for name in &names {
        if let Some(owner) = tx.find_key("snis", "name", name).await? {
            if let Some(sni) = tx.get("snis", &owner).await? {
                let cert = sni
                    .get("certificate")
                    .and_then(key_text)
                    .unwrap_or_default();
                if cert != certificate {
                    return Err(SchemaErrors::at(
                        &at,
                        format!("{name} already associated with existing certificate '{cert}'"),
                    )
                    .into());
                }
            }
        }
    }
    for (entity, id, _) in tx.referrers("certificates", certificate).await? {
        if entity != "snis" {
            continue;
        }
        let keep = tx
            .get("snis", &id)
            .await?
            .and_then(|d| d.get("name").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|n| names.contains(&n));
        if !keep {
            tx.remove("snis", &id).await?;
        }
    }
    for name in names {
        if tx.find_key("snis", "name", &name).await?.is_some() {
            continue;
        }
        let mut doc = Map::new();
        doc.insert("name".into(), json!(name));
        doc.insert("certificate".into(), json!({ "id": certificate }));
        Box::pin(insert_in(tx, snis, doc, WriteOptions::default(), ctx)).await?;
    }
    Ok(())
}

/// Deletes `id` after its cascades; refuses while restricted references exist.
pub(crate) async fn delete_in(
    tx: &mut Tx,
    schema: &'static Schema,
    id: &str,
) -> Result<(), DbError> {
    for (entity, child, field) in tx.referrers(schema.name, id).await? {
        let child_schema = schema_of(&entity)?;
        if field == "ca_certificates" {
            return Err(DbError::ReferencedByOthers {
                id: id.to_owned(),
                entity: child_schema.name,
                by: child,
            });
        }
        let rule = child_schema
            .field(&field)
            .and_then(|f| f.foreign_ref())
            .map(|f| f.on_delete);
        match rule {
            Some(super::schema::OnDelete::Cascade) => {
                Box::pin(delete_in(tx, child_schema, &child)).await?;
            }
            _ => {
                return Err(DbError::Restricted {
                    entity: schema.name,
                    referenced_by: child_schema.name,
                })
            }
        }
    }
    tx.remove(schema.name, id).await
}

/// Kong's offset token: unpadded base64 of a JSON array holding the last id.
fn encode_offset(id: &str) -> String {
    STANDARD_NO_PAD.encode(json!([id]).to_string())
}

fn decode_offset(token: &str) -> Result<String, DbError> {
    let mut parts = decode_token(token)?;
    match parts.len() {
        1 => Ok(parts.remove(0)),
        _ => Err(DbError::InvalidOffset(
            token.to_owned(),
            "bad json encoding",
        )),
    }
}

/// Decodes a token into the strings of its JSON array.
fn decode_token(token: &str) -> Result<Vec<String>, DbError> {
    let bytes = STANDARD_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| DbError::InvalidOffset(token.to_owned(), "bad base64 encoding"))?;
    let bad_json = || DbError::InvalidOffset(token.to_owned(), "bad json encoding");
    match serde_json::from_slice(&bytes) {
        Ok(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad_json()),
            })
            .collect(),
        _ => Err(bad_json()),
    }
}
