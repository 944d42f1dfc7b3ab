//! Nested entities hoisted into a flat list of import items.
//!
//! Any entity may hold, under another entity's name, a list of the entities that refer to it
//! (`routes` inside a service, `targets` inside an upstream, `services` inside a certificate
//! ...), recursively; the nested children get the reference to their parent filled in. Each
//! item keeps its path in the document (`services[2].routes[0]`) for error messages.
//!
//! Every item gets its id here (the document's, a stable one from [`ids`], or a random one), so
//! that nested children can point at their parent. References written as a name or id of an
//! entity declared in the same document become `{"id": ...}`; other references are left for the
//! store to resolve against what it holds (`db_import` into a database that has them). Two
//! items with the same id or the same unique value are refused here, since the store would
//! otherwise let the second replace the first.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::ids::{self, Parent};
use super::Problem;
use crate::store::schema::{Doc, Schema};
use crate::store::{entities, ImportItem};

/// What a document declares: every id handed out and every endpoint-key value.
#[derive(Debug, Default)]
pub(super) struct Declared {
    ids: HashSet<(&'static str, String)>,
    keys: HashMap<(&'static str, String), String>,
}

impl Declared {
    /// The id of the `entity` a reference written as `text` (an endpoint-key value or an id)
    /// points at, when the document declares it.
    pub(super) fn resolve(&self, entity: &str, text: &str) -> Option<String> {
        let entity = entities::entity(entity)?.name;
        if let Some(id) = self.keys.get(&(entity, text.to_owned())) {
            return Some(id.clone());
        }
        let id = text.to_ascii_lowercase();
        self.ids.contains(&(entity, id.clone())).then_some(id)
    }
}

/// The result of flattening.
#[derive(Debug, Default)]
pub(super) struct Flat {
    pub(super) items: Vec<ImportItem>,
    pub(super) problems: Vec<Problem>,
    pub(super) declared: Declared,
}

struct Pending {
    schema: &'static Schema,
    doc: Doc,
    origin: String,
}

/// The entity an item is being read inside of.
#[derive(Clone, Copy)]
struct Outer<'a> {
    /// The item's field referring to the parent.
    field: &'static str,
    id: &'a str,
    /// The parent's endpoint-key value, which a child may also use to name its parent.
    key: Option<&'a str>,
}

#[derive(Default)]
struct Walker {
    pending: Vec<Pending>,
    flat: Flat,
    unique: HashSet<(&'static str, &'static str, String)>,
    /// [`children_of`] per entity, computed once.
    children: HashMap<&'static str, Vec<(&'static Schema, &'static str)>>,
}

/// Flattens the entity lists of a document.
pub(super) fn flatten(mut lists: Map<String, Value>) -> Flat {
    let mut w = Walker {
        children: entities::all()
            .iter()
            .map(|s| (s.name, children_of(s)))
            .collect(),
        ..Walker::default()
    };
    // Dependency order, so a stable id that depends on a parent's id finds it computed.
    for schema in entities::all() {
        if let Some(list) = lists.remove(schema.name) {
            w.list(schema, list, schema.name, None);
        }
    }
    let Walker {
        pending, mut flat, ..
    } = w;
    for item in pending {
        if let Some(item) = resolve(item, &flat.declared, &mut flat.problems) {
            flat.items.push(item);
        }
    }
    flat
}

/// Entities that may be nested in `parent`: (child schema, child's field pointing at it).
fn children_of(parent: &'static Schema) -> Vec<(&'static Schema, &'static str)> {
    entities::all()
        .iter()
        .filter(|child| parent.field(child.name).is_none())
        .filter_map(|child| {
            child
                .record
                .fields
                .iter()
                .find(|(_, f)| f.foreign_ref().is_some_and(|r| r.reference == parent.name))
                .map(|(name, _)| (child, name.as_str()))
        })
        .collect()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Walker {
    fn problem(&mut self, path: &str, message: &str) {
        self.flat.problems.push(Problem::new(path, message));
    }

    fn list(&mut self, schema: &'static Schema, list: Value, at: &str, outer: Option<Outer<'_>>) {
        let items = match list {
            Value::Null => return,
            Value::Object(m) if m.is_empty() => return,
            Value::Array(items) => items,
            _ => return self.problem(at, "expected an array"),
        };
        for (i, item) in items.into_iter().enumerate() {
            let origin = format!("{at}[{i}]");
            match item {
                Value::Object(doc) => self.item(schema, doc, origin, outer),
                // A certificate's SNIs may be given by name alone.
                Value::String(name) if schema.name == "snis" && outer.is_some() => {
                    let mut doc = Map::new();
                    doc.insert("name".into(), Value::String(name));
                    self.item(schema, doc, origin, outer);
                }
                _ => self.problem(&origin, "expected a record"),
            }
        }
    }

    fn item(
        &mut self,
        schema: &'static Schema,
        mut doc: Doc,
        origin: String,
        outer: Option<Outer<'_>>,
    ) {
        match doc.remove("_comment") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => self.problem(&format!("{origin}._comment"), "expected a string"),
        }
        match doc.remove("_ignore") {
            None | Some(Value::Null | Value::Array(_)) => {}
            Some(_) => self.problem(&format!("{origin}._ignore"), "expected an array"),
        }
        let mut nested = Vec::new();
        for &(child, field) in self.children.get(schema.name).into_iter().flatten() {
            if let Some(list) = doc.remove(child.name) {
                nested.push((child, field, list));
            }
        }
        if let Some(o) = outer {
            self.fill_parent(&mut doc, &origin, o);
        }
        let id = self.assign_id(schema, &mut doc, outer);
        let key = schema
            .endpoint_key
            .and_then(|k| doc.get(k))
            .and_then(text_of);
        let duplicate = self.duplicate(schema, &doc, &id);
        self.flat.declared.ids.insert((schema.name, id.clone()));
        match duplicate {
            Some(message) => self.problem(&origin, &message),
            None => {
                self.remember(schema, &doc, &id);
                self.pending.push(Pending {
                    schema,
                    doc,
                    origin: origin.clone(),
                });
            }
        }
        for (child, field, list) in nested {
            let inner = Outer {
                field,
                id: &id,
                key: key.as_deref(),
            };
            self.list(
                child,
                list,
                &format!("{origin}.{}", child.name),
                Some(inner),
            );
        }
    }

    /// A nested child refers to its parent; naming the parent itself is allowed.
    fn fill_parent(&mut self, doc: &mut Doc, origin: &str, outer: Outer<'_>) {
        let names_parent = match doc.get(outer.field) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => {
                s.eq_ignore_ascii_case(outer.id) || Some(s.as_str()) == outer.key
            }
            Some(Value::Object(m)) => m
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case(outer.id)),
            Some(_) => false,
        };
        if !names_parent {
            self.problem(&format!("{origin}.{}", outer.field), "value must be null");
        }
        doc.insert(outer.field.to_owned(), json!({ "id": outer.id }));
    }

    fn assign_id(
        &mut self,
        schema: &'static Schema,
        doc: &mut Doc,
        outer: Option<Outer<'_>>,
    ) -> String {
        match doc.get("id") {
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            // A wrong type is the store's to report; children still need something to point at.
            Some(v) if !v.is_null() => uuid::Uuid::new_v4().to_string(),
            _ => {
                let parent = outer.map(|o| Parent {
                    field: o.field,
                    id: o.id,
                });
                let id = ids::stable_id(schema, doc, parent)
                    .unwrap_or_else(uuid::Uuid::new_v4)
                    .to_string();
                doc.insert("id".into(), Value::from(id.as_str()));
                id
            }
        }
    }

    /// Unique fields in order (the endpoint key first), then the id.
    fn unique_fields(schema: &'static Schema) -> Vec<&'static str> {
        let mut fields: Vec<&'static str> = schema.endpoint_key.into_iter().collect();
        for (name, field) in &schema.record.fields {
            if field.unique && name != "id" && !fields.contains(&name.as_str()) {
                fields.push(name.as_str());
            }
        }
        fields
            .into_iter()
            .filter(|f| schema.field(f).is_some_and(|f| f.unique))
            .collect()
    }

    fn duplicate(&self, schema: &'static Schema, doc: &Doc, id: &str) -> Option<String> {
        for field in Self::unique_fields(schema) {
            let Some(value) = doc.get(field).and_then(text_of) else {
                continue;
            };
            if self.unique.contains(&(schema.name, field, value.clone())) {
                return Some(format!(
                    "uniqueness violation: '{}' entity with {field} set to '{value}' already declared",
                    schema.name
                ));
            }
        }
        if self
            .flat
            .declared
            .ids
            .contains(&(schema.name, id.to_owned()))
        {
            return Some(format!(
                "uniqueness violation: '{}' entity with primary key set to '{id}' already declared",
                schema.name
            ));
        }
        None
    }

    fn remember(&mut self, schema: &'static Schema, doc: &Doc, id: &str) {
        for field in Self::unique_fields(schema) {
            if let Some(value) = doc.get(field).and_then(text_of) {
                if Some(field) == schema.endpoint_key {
                    self.flat
                        .declared
                        .keys
                        .insert((schema.name, value.clone()), id.to_owned());
                }
                self.unique.insert((schema.name, field, value));
            }
        }
    }
}

/// Turns references into `{"id": ...}` where the document declares their target.
fn resolve(item: Pending, declared: &Declared, problems: &mut Vec<Problem>) -> Option<ImportItem> {
    let Pending {
        schema,
        mut doc,
        origin,
    } = item;
    for (field, foreign) in schema.foreign_fields() {
        let Some(target) = entities::entity(foreign.reference) else {
            continue;
        };
        let resolved = match doc.get(field) {
            Some(Value::String(s)) => match declared.resolve(target.name, s) {
                Some(id) => json!({ "id": id }),
                None if uuid::Uuid::parse_str(s).is_ok() => json!({ "id": s }),
                None => match target
                    .endpoint_key
                    .filter(|k| target.field(k).is_some_and(|f| f.unique))
                {
                    // Possibly in the database already; the store looks it up.
                    Some(key) => json!({ key: s }),
                    None => {
                        problems.push(Problem::new(
                            &origin,
                            &super::report::invalid_reference(field, s, target.name),
                        ));
                        return None;
                    }
                },
            },
            Some(Value::Object(m)) if m.len() == 1 => {
                let by_key = target
                    .endpoint_key
                    .and_then(|k| m.get(k))
                    .and_then(Value::as_str);
                match by_key.and_then(|text| declared.resolve(target.name, text)) {
                    Some(id) => json!({ "id": id }),
                    None => continue,
                }
            }
            _ => continue,
        };
        doc.insert(field.to_owned(), resolved);
    }
    Some(ImportItem {
        schema,
        doc,
        origin,
    })
}
