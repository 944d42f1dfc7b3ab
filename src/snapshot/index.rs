//! Entities the proxy looks up by id or by a field while serving: routes, services and
//! consumers for plugins and the log, and whatever credentials the enabled plugins declared
//! (key-auth keys, basic-auth usernames, ...). Built with the snapshot, read without locks.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde_json::Value;

use crate::store::schema::Doc;

/// Maps looked up on every authenticated request: a fast hasher, randomly seeded per process.
type Map<K, V> = HashMap<K, V, RandomState>;

/// Documents by the value of one field.
type ByValue = Map<String, Vec<Arc<Doc>>>;

/// Entities by id, and by the fields plugins look them up with.
#[derive(Debug, Clone, Default)]
pub struct Index {
    by_id: Map<&'static str, Map<String, Arc<Doc>>>,
    by_field: Map<(&'static str, &'static str), ByValue>,
}

/// Which entities and fields an [`Index`] keeps.
#[derive(Debug, Clone, Default)]
pub struct IndexPlan {
    /// Entities kept by id.
    pub entities: Vec<&'static str>,
    /// `(entity, field)` pairs kept by value (foreign keys by the referenced id).
    pub fields: Vec<(&'static str, &'static str)>,
}

impl IndexPlan {
    /// The entities the proxy itself needs, plus `fields`.
    pub fn with(fields: impl IntoIterator<Item = (&'static str, &'static str)>) -> IndexPlan {
        let mut plan = IndexPlan {
            entities: vec!["routes", "services", "consumers"],
            fields: vec![("consumers", "username"), ("consumers", "custom_id")],
        };
        for (entity, field) in fields {
            if !plan.fields.contains(&(entity, field)) {
                plan.fields.push((entity, field));
            }
            if !plan.entities.contains(&entity) {
                plan.entities.push(entity);
            }
        }
        plan
    }

    /// Whether `entity` is indexed at all.
    pub fn wants(&self, entity: &str) -> bool {
        self.entities.contains(&entity)
    }
}

/// The text a field is indexed by: strings as they are, numbers as written, and a foreign key
/// by the referenced id.
fn key_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Index {
    /// Adds a page of `entity` documents, per `plan`.
    pub fn add(&mut self, plan: &IndexPlan, entity: &'static str, docs: &[Doc]) {
        let Some(entity) = plan.entities.iter().copied().find(|e| *e == entity) else {
            return;
        };
        let fields: Vec<&'static str> = plan
            .fields
            .iter()
            .filter(|(e, _)| *e == entity)
            .map(|(_, f)| *f)
            .collect();
        for doc in docs {
            let Some(id) = doc.get("id").and_then(Value::as_str) else {
                continue;
            };
            let doc = Arc::new(doc.clone());
            for field in &fields {
                if let Some(key) = doc.get(*field).and_then(key_of) {
                    self.by_field
                        .entry((entity, field))
                        .or_default()
                        .entry(key)
                        .or_default()
                        .push(doc.clone());
                }
            }
            self.by_id
                .entry(entity)
                .or_default()
                .insert(id.to_owned(), doc);
        }
    }

    /// `entity` with id `id`.
    pub fn get(&self, entity: &str, id: &str) -> Option<&Arc<Doc>> {
        self.by_id.get(entity)?.get(id)
    }

    /// The `entity` documents whose `field` is `value` (a foreign key by the referenced id).
    pub fn find(&self, entity: &'static str, field: &'static str, value: &str) -> &[Arc<Doc>] {
        self.by_field
            .get(&(entity, field))
            .and_then(|m| m.get(value))
            .map_or(&[], Vec::as_slice)
    }

    /// A consumer by id or username (how `anonymous` and the Admin API name consumers).
    pub fn consumer(&self, id_or_username: &str) -> Option<&Arc<Doc>> {
        self.get("consumers", id_or_username)
            .or_else(|| self.find("consumers", "username", id_or_username).first())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("object literal"),
        }
    }

    #[test]
    fn finds_by_id_field_and_foreign_key() {
        let plan = IndexPlan::with([("keyauth_credentials", "key"), ("acls", "consumer")]);
        let mut index = Index::default();
        index.add(
            &plan,
            "consumers",
            &[doc(json!({"id": "c1", "username": "ann"}))],
        );
        index.add(
            &plan,
            "keyauth_credentials",
            &[doc(
                json!({"id": "k1", "key": "secret", "consumer": {"id": "c1"}}),
            )],
        );
        index.add(
            &plan,
            "acls",
            &[
                doc(json!({"id": "a1", "group": "g1", "consumer": {"id": "c1"}})),
                doc(json!({"id": "a2", "group": "g2", "consumer": {"id": "c1"}})),
            ],
        );
        index.add(&plan, "snis", &[doc(json!({"id": "s1"}))]);
        assert_eq!(index.find("keyauth_credentials", "key", "secret").len(), 1);
        assert_eq!(index.find("acls", "consumer", "c1").len(), 2);
        assert!(index.find("keyauth_credentials", "key", "nope").is_empty());
        assert_eq!(
            index.consumer("ann").and_then(|c| c.get("id")),
            Some(&json!("c1"))
        );
        assert!(index.consumer("c1").is_some());
        assert!(index.get("snis", "s1").is_none(), "not planned, not kept");
    }
}
