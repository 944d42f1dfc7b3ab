//! Ids for entities a document declares without one.
//!
//! Kong derives them, so loading the same file twice gives the same ids: a UUIDv5 in a
//! namespace per entity (itself the UUIDv5 of the entity name in a fixed namespace), of a key
//! built from what identifies the entity:
//!
//! 1. its cache key, when the schema has one: `<entity>:*:<v1>:<v2>…` (`*` stands for the
//!    workspace). References are used as written (a name stays a name); a missing reference to
//!    the entity the item is nested in uses that parent's id; other missing optional parts are
//!    empty. A part the datastore generates (a key-auth `key`) or a missing required part
//!    means no stable key exists;
//! 2. else its endpoint key's value (a name, a username); a non-unique endpoint key is
//!    qualified with the owning parent's id and the workspace;
//! 3. else nothing: the caller makes up a random id (unnamed services, certificates ...).

use serde_json::Value;
use uuid::Uuid;

use crate::store::schema::{Doc, OnDelete, Schema};

/// The namespace of all entity namespaces.
pub const NAMESPACE: Uuid = uuid::uuid!("fd02801f-0957-4a15-a55a-c8d9606f30b5");

/// The workspace part of keys (the default workspace, written as Kong writes it).
const WORKSPACE: &str = "*";

/// The namespace of one entity's ids.
pub fn namespace(entity: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, entity.as_bytes())
}

/// The id of `entity` identified by `key`.
pub fn generate(entity: &str, key: &str) -> Uuid {
    Uuid::new_v5(&namespace(entity), key.as_bytes())
}

/// The entity an item is nested in: the item's field that refers to it, and its id.
#[derive(Debug, Clone, Copy)]
pub struct Parent<'a> {
    /// The item's foreign field pointing at the parent (`service` for a nested route).
    pub field: &'a str,
    /// The parent's id.
    pub id: &'a str,
}

/// A stable id for `item`, when it has enough to identify it.
pub fn stable_id(schema: &Schema, item: &Doc, parent: Option<Parent<'_>>) -> Option<Uuid> {
    key(schema, item, parent).map(|k| generate(schema.name, &k))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("id").map(|id| match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

/// The key an id is derived from (see the module docs).
pub fn key(schema: &Schema, item: &Doc, parent: Option<Parent<'_>>) -> Option<String> {
    if !schema.cache_key.is_empty() {
        return cache_key(schema, item, parent);
    }
    let endpoint = schema.endpoint_key?;
    let mut key = item.get(endpoint).and_then(text)?;
    if schema.field(endpoint).is_some_and(|f| !f.unique) {
        for (name, foreign) in schema.foreign_fields() {
            if foreign.on_delete != OnDelete::Cascade {
                continue;
            }
            let owner = match parent {
                Some(p) if p.field == name => Some(p.id.to_owned()),
                _ => item.get(name).and_then(text),
            };
            key.push(':');
            key.push_str(&owner.unwrap_or_default());
        }
        key.push(':');
        key.push_str(WORKSPACE);
    }
    Some(key)
}

fn cache_key(schema: &Schema, item: &Doc, parent: Option<Parent<'_>>) -> Option<String> {
    let mut parts = vec![schema.name.to_owned(), WORKSPACE.to_owned()];
    for name in schema.cache_key {
        let field = schema.field(name)?;
        if field.auto {
            return None;
        }
        let part = match item.get(*name).and_then(text) {
            Some(v) => v,
            None => match parent {
                Some(p) if p.field == *name => p.id.to_owned(),
                _ if field.required => return None,
                _ => String::new(),
            },
        };
        parts.push(part);
    }
    Some(parts.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entities::entity;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => Doc::new(),
        }
    }

    fn schema(name: &str) -> &'static Schema {
        entity(name).expect("known entity")
    }

    #[test]
    fn namespaces_derive_from_the_entity_name() {
        assert_eq!(namespace("services"), Uuid::new_v5(&NAMESPACE, b"services"));
        assert_eq!(
            generate("services", "svc"),
            Uuid::new_v5(&namespace("services"), b"svc")
        );
        assert_eq!(generate("services", "svc").get_version_num(), 5);
    }

    #[test]
    fn endpoint_keys_name_entities() {
        let svc = doc(json!({"name": "svc", "host": "h"}));
        assert_eq!(key(schema("services"), &svc, None).as_deref(), Some("svc"));
        let anonymous = doc(json!({"host": "h"}));
        assert_eq!(key(schema("services"), &anonymous, None), None);
    }

    #[test]
    fn cache_keys_use_references_as_written_and_the_parent_id() {
        let plugin = doc(json!({"name": "acl", "service": "svc"}));
        assert_eq!(
            key(schema("plugins"), &plugin, None).as_deref(),
            Some("plugins:*:acl::svc:")
        );
        let nested = doc(json!({"name": "acl"}));
        let parent = Parent {
            field: "route",
            id: "r-id",
        };
        assert_eq!(
            key(schema("plugins"), &nested, Some(parent)).as_deref(),
            Some("plugins:*:acl:r-id::")
        );
        let target = doc(json!({"target": "10.0.0.1:80"}));
        assert_eq!(
            key(
                schema("targets"),
                &target,
                Some(Parent {
                    field: "upstream",
                    id: "u"
                })
            )
            .as_deref(),
            Some("targets:*:u:10.0.0.1:80")
        );
        // A required part missing: no stable key.
        assert_eq!(key(schema("targets"), &target, None), None);
    }

    #[test]
    fn generated_cache_key_parts_mean_random_ids() {
        let cred = doc(json!({"key": "secret"}));
        let parent = Parent {
            field: "consumer",
            id: "c",
        };
        assert_eq!(
            key(schema("keyauth_credentials"), &cred, Some(parent)),
            None
        );
    }
}
