//! Validation errors in Kong's shape: a nested object mirroring the input, plus entity-level
//! messages under `@entity`.

use std::fmt;

use serde_json::{Map, Value};

/// Where in a document a value sits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Seg>);

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Path {
    /// The document root.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Path {
        let mut p = self.0.clone();
        p.push(Seg::Key(key.to_owned()));
        Path(p)
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Path {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        Path(p)
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Every problem found in one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaErrors {
    fields: Map<String, Value>,
    entity: Vec<String>,
    count: usize,
}

impl SchemaErrors {
    /// No errors yet.
    pub fn new() -> SchemaErrors {
        SchemaErrors::default()
    }

    /// One error on the field at `path`.
    pub fn at(path: &Path, message: impl Into<String>) -> SchemaErrors {
        let mut e = SchemaErrors::new();
        e.field(path, message);
        e
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many messages were recorded.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Records a field error. The first message for a path wins (later ones would only repeat
    /// the cause).
    pub fn field(&mut self, path: &Path, message: impl Into<String>) {
        if path.is_root() {
            self.entity(message);
            return;
        }
        if insert(&mut self.fields, &path.0, Value::String(message.into())) {
            self.count += 1;
        }
    }

    /// Records an entity-level error (`@entity`).
    pub fn entity(&mut self, message: impl Into<String>) {
        self.entity.push(message.into());
        self.count += 1;
    }

    /// Whether the field at the top-level `name` has an error.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// Merges `other` into this set.
    pub fn merge(&mut self, other: SchemaErrors) {
        for (path, msg) in other.flat_fields() {
            if insert_flat(&mut self.fields, &path, msg) {
                self.count += 1;
            }
        }
        for m in other.entity {
            self.entity(m);
        }
    }

    /// Kong's `fields` object: the nested errors plus `@entity` when there are entity errors.
    pub fn to_fields(&self) -> Value {
        let mut fields = self.fields.clone();
        if !self.entity.is_empty() {
            fields.insert(
                "@entity".into(),
                Value::Array(self.entity.iter().cloned().map(Value::String).collect()),
            );
        }
        Value::Object(fields)
    }

    /// Every message as `path: message`, entity-level ones first, then fields in path order.
    pub fn flattened(&self) -> Vec<String> {
        let mut out: Vec<String> = self.entity.clone();
        let mut fields: Vec<(String, String)> = self
            .flat_fields()
            .into_iter()
            .map(|(p, m)| (p.to_string(), m))
            .collect();
        fields.sort();
        out.extend(fields.into_iter().map(|(p, m)| format!("{p}: {m}")));
        out
    }

    /// Kong's message: `schema violation (a: b)` or `N schema violations (a: b; c: d)`.
    pub fn message(&self) -> String {
        let all = self.flattened();
        match all.len() {
            1 => format!("schema violation ({})", all[0]),
            n => format!("{n} schema violations ({})", all.join("; ")),
        }
    }

    /// The field errors as (path, message) pairs.
    fn flat_fields(&self) -> Vec<(Path, String)> {
        let mut out = Vec::new();
        flatten(&Value::Object(self.fields.clone()), Path::root(), &mut out);
        out
    }
}

impl fmt::Display for SchemaErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for SchemaErrors {}

fn flatten(v: &Value, path: Path, out: &mut Vec<(Path, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(v, path.key(k), out)
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, path.index(i), out)
            }
        }
        Value::String(s) => out.push((path, s.clone())),
        _ => {}
    }
}

fn insert_flat(root: &mut Map<String, Value>, path: &Path, msg: String) -> bool {
    insert(root, &path.0, Value::String(msg))
}

/// Inserts `value` at `path` creating objects/arrays on the way; false when something is there.
fn insert(root: &mut Map<String, Value>, path: &[Seg], value: Value) -> bool {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        if root.contains_key(first) {
            return false;
        }
        root.insert(first.clone(), value);
        return true;
    }
    let slot = root.entry(first.clone()).or_insert(Value::Null);
    insert_value(slot, rest, value)
}

fn insert_value(slot: &mut Value, path: &[Seg], value: Value) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        if slot.is_null() {
            *slot = value;
            return true;
        }
        return false;
    };
    match seg {
        Seg::Key(k) => {
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            match slot {
                Value::Object(m) => {
                    let next = m.entry(k.clone()).or_insert(Value::Null);
                    insert_value(next, rest, value)
                }
                _ => false,
            }
        }
        Seg::Index(i) => {
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            match slot {
                Value::Array(a) => {
                    if a.len() <= *i {
                        a.resize(*i + 1, Value::Null);
                    }
                    insert_value(&mut a[*i], rest, value)
                }
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_kongs_shape() {
        let mut e = SchemaErrors::new();
        e.field(&Path::root().key("host"), "required field missing");
        assert_eq!(
            e.message(),
            "schema violation (host: required field missing)"
        );
        e.field(&Path::root().key("paths").index(1), "should start with: /");
        e.entity("failed conditional validation given value of field 'protocol'");
        assert_eq!(
            e.message(),
            "3 schema violations (failed conditional validation given value of field 'protocol'; host: required field missing; paths[1]: should start with: /)"
        );
        assert_eq!(
            e.to_fields(),
            serde_json::json!({
                "host": "required field missing",
                "paths": [null, "should start with: /"],
                "@entity": ["failed conditional validation given value of field 'protocol'"]
            })
        );
    }
}
