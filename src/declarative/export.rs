//! Writing a store as a declarative document.
//!
//! The document loads back into the same state: `_format_version: "3.0"`, `_transform: false`
//! (stored values such as basic-auth password hashes are already transformed), one flat list
//! per entity in dependency order, each ordered by id, fields in schema order with unset
//! (null) fields left out, references as plain id strings. The same store always gives the
//! same bytes, so an export, imported into an empty database and exported again, is identical.

use serde_json::Value;
use serde_norway::{Mapping, Value as Yaml};

use super::DeclarativeError;
use crate::store::schema::{Doc, Schema};
use crate::store::{entities, Store};

/// The first lines of every export.
const HEADER: &str = "_format_version: \"3.0\"\n_transform: false\n";

/// Exports everything in `store` as YAML.
pub async fn export(store: &Store) -> Result<String, DeclarativeError> {
    to_yaml(&store.export().await?)
}

/// Writes exported entity groups as YAML.
pub fn to_yaml(groups: &[(&'static str, Vec<Doc>)]) -> Result<String, DeclarativeError> {
    let mut top = Mapping::new();
    for (name, docs) in groups {
        let Some(schema) = entities::entity(name) else {
            continue;
        };
        if docs.is_empty() {
            continue;
        }
        let list = docs.iter().map(|d| entity(schema, d)).collect();
        top.insert(Yaml::from(*name), Yaml::Sequence(list));
    }
    let mut out = String::from(HEADER);
    if !top.is_empty() {
        out.push_str(&serde_norway::to_string(&top)?);
    }
    Ok(out)
}

/// One entity: schema fields in order, nulls left out, references as ids.
fn entity(schema: &Schema, doc: &Doc) -> Yaml {
    let mut out = Mapping::new();
    for (name, field) in &schema.record.fields {
        let value = match doc.get(name) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let value = match (field.foreign_ref(), value) {
            (Some(_), Value::Object(m)) => match m.get("id") {
                Some(id) => id,
                None => value,
            },
            _ => value,
        };
        out.insert(Yaml::from(name.as_str()), yaml(value));
    }
    Yaml::Mapping(out)
}

fn yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Yaml::from(i)
            } else if let Some(u) = n.as_u64() {
                Yaml::from(u)
            } else {
                Yaml::from(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => Yaml::from(s.as_str()),
        Value::Array(a) => Yaml::Sequence(a.iter().map(yaml).collect()),
        Value::Object(m) => Yaml::Mapping(
            m.iter()
                .map(|(k, v)| (Yaml::from(k.as_str()), yaml(v)))
                .collect(),
        ),
    }
}
