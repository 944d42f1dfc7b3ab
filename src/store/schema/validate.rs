//! Turning an input document into a complete, valid entity.
//!
//! One pass walks the schema: unknown keys are refused, each value is type-checked (integers
//! without fractions, sets de-duplicated), absent fields take their defaults, rules run, then
//! the record's multi-field checks. Every problem is collected; nothing stops at the first.

use serde_json::{Map, Value};

use super::{Doc, Field, Kind, Path, Record, Rule, Schema, SchemaErrors};

/// A plugin's contribution to validation: its config record and the scopes it allows.
#[derive(Debug, Clone)]
pub struct PluginSchema {
    /// Plugin name, e.g. `key-auth`.
    pub name: String,
    /// The `config` record.
    pub config: Record,
    /// Protocols the plugin can run on (`None` = every HTTP-family protocol).
    pub protocols: Option<Vec<&'static str>>,
    /// The plugin cannot be scoped to a consumer (auth plugins identify consumers).
    pub no_consumer: bool,
    /// The plugin cannot be scoped to a route.
    pub no_route: bool,
    /// The plugin cannot be scoped to a service.
    pub no_service: bool,
}

/// The registry of plugin schemas the node has enabled.
pub trait PluginSchemas: Send + Sync + std::fmt::Debug {
    /// The schema of an enabled plugin.
    fn plugin(&self, name: &str) -> Option<&PluginSchema>;

    /// Names of the enabled plugins, sorted.
    fn names(&self) -> Vec<String>;
}

/// A registry with no plugins.
#[derive(Debug, Default)]
pub struct NoPlugins;

impl PluginSchemas for NoPlugins {
    fn plugin(&self, _: &str) -> Option<&PluginSchema> {
        None
    }

    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What validation may consult besides the document.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Enabled plugins.
    pub plugins: &'a dyn PluginSchemas,
}

impl Schema {
    /// Validates a whole entity: shorthands, fields, defaults, rules, then entity checks.
    pub fn validate(&self, mut input: Doc, ctx: &Context<'_>) -> Result<Doc, SchemaErrors> {
        let mut errs = SchemaErrors::new();
        for shorthand in &self.shorthands {
            if let Err(e) = shorthand(&mut input) {
                errs.merge(e);
            }
        }
        for name in self.virtual_fields {
            input.remove(*name);
        }
        let mut out = record(&self.record, input, &Path::root(), ctx, &mut errs);
        if let Some(finish) = self.finish {
            finish(&mut out, ctx, &mut errs);
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }
}

/// Validates `input` against `rec` (a plugin config, a nested record).
pub fn validate_record(
    rec: &Record,
    input: Doc,
    at: &Path,
    ctx: &Context<'_>,
    errs: &mut SchemaErrors,
) -> Doc {
    record(rec, input, at, ctx, errs)
}

fn record(
    rec: &Record,
    mut input: Doc,
    at: &Path,
    ctx: &Context<'_>,
    errs: &mut SchemaErrors,
) -> Doc {
    for shorthand in &rec.shorthands {
        shorthand(&mut input);
    }
    let mut out = Map::new();
    for (name, field) in &rec.fields {
        let path = at.key(name);
        let v = input.remove(name);
        let v = match v {
            Some(Value::Null) | None if field.default.is_some() => field.default.clone(),
            Some(Value::Null) => None,
            other => other,
        };
        let v = match (v, &field.kind) {
            // An absent record is built from its own defaults.
            (None, Kind::Record(sub)) => {
                let mut sub_errs = SchemaErrors::new();
                let built = record(sub, Map::new(), &path, ctx, &mut sub_errs);
                if sub_errs.is_empty() {
                    Value::Object(built)
                } else if field.required {
                    errs.merge(sub_errs);
                    Value::Null
                } else {
                    Value::Null
                }
            }
            (None, _) => Value::Null,
            (Some(v), _) => value(field, v, &path, ctx, errs),
        };
        if v.is_null() && field.required && !field.auto {
            errs.field(&path, "required field missing");
        }
        out.insert(name.clone(), v);
    }
    for key in input.keys() {
        errs.field(&at.key(key), "unknown field");
    }
    for check in &rec.checks {
        check.run(&out, ctx, at, errs);
    }
    out
}

fn type_error(field: &Field) -> &'static str {
    match field.kind {
        Kind::String => "expected a string",
        Kind::Integer => "expected an integer",
        Kind::Number => "expected a number",
        Kind::Boolean => "expected a boolean",
        Kind::Array(_) => "expected an array",
        Kind::Set(_) => "expected a set",
        Kind::Map(..) => "expected a map",
        Kind::Record(_) | Kind::Foreign(_) | Kind::Any => "expected a record",
    }
}

/// Type-checks and normalises one present, non-null value; returns null after an error.
fn value(field: &Field, v: Value, at: &Path, ctx: &Context<'_>, errs: &mut SchemaErrors) -> Value {
    let before = errs.len();
    let v = match (&field.kind, v) {
        (Kind::String, v @ Value::String(_)) => v,
        (Kind::Boolean, v @ Value::Bool(_)) => v,
        (Kind::Number, v @ Value::Number(_)) => v,
        (Kind::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => {
                    errs.field(at, "expected an integer");
                    return Value::Null;
                }
            },
        },
        (Kind::Array(el) | Kind::Set(el), v) => {
            let items = match v {
                Value::Array(items) => items,
                // An empty object is how some clients spell an empty list.
                Value::Object(m) if m.is_empty() => Vec::new(),
                _ => {
                    errs.field(at, type_error(field));
                    return Value::Null;
                }
            };
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let p = at.index(i);
                if item.is_null() {
                    errs.field(&p, "required field missing");
                    continue;
                }
                let item = value(el, item, &p, ctx, errs);
                if matches!(field.kind, Kind::Set(_)) && out.contains(&item) {
                    continue;
                }
                out.push(item);
            }
            Value::Array(out)
        }
        (Kind::Map(k, val), Value::Object(m)) => {
            let mut out = Map::new();
            for (key, item) in m {
                let p = at.key(&key);
                value(k, Value::String(key.clone()), &p, ctx, errs);
                let item = if item.is_null() {
                    errs.field(&p, "required field missing");
                    Value::Null
                } else {
                    value(val, item, &p, ctx, errs)
                };
                out.insert(key, item);
            }
            Value::Object(out)
        }
        (Kind::Record(rec), Value::Object(m)) => Value::Object(record(rec, m, at, ctx, errs)),
        (Kind::Foreign(_), Value::Object(m)) => foreign(m, at, errs),
        (Kind::Any, v @ Value::Object(_)) => v,
        (_, _) => {
            errs.field(at, type_error(field));
            return Value::Null;
        }
    };
    if errs.len() > before {
        return v;
    }
    rules(field, &v, at, errs);
    v
}

fn foreign(mut m: Doc, at: &Path, errs: &mut SchemaErrors) -> Value {
    let id = m.remove("id");
    for key in m.keys() {
        errs.field(&at.key(key), "unknown field");
    }
    match id {
        Some(Value::String(s)) if uuid::Uuid::parse_str(&s).is_ok() => {
            serde_json::json!({ "id": s.to_ascii_lowercase() })
        }
        Some(Value::String(_)) => {
            errs.field(&at.key("id"), "expected a valid UUID");
            Value::Null
        }
        Some(Value::Null) | None => {
            errs.field(&at.key("id"), "required field missing");
            Value::Null
        }
        Some(_) => {
            errs.field(&at.key("id"), "expected a string");
            Value::Null
        }
    }
}

fn len_of(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(m) => Some(m.len()),
        _ => None,
    }
}

/// Formats a bound the way people write it (`65535`, not `65535.0`).
fn bound(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn rules(field: &Field, v: &Value, at: &Path, errs: &mut SchemaErrors) {
    // Strings are non-empty unless the field says otherwise.
    if matches!(field.kind, Kind::String)
        && !field.rules.iter().any(|r| matches!(r, Rule::LenMin(_)))
        && v.as_str() == Some("")
    {
        errs.field(at, "length must be at least 1");
        return;
    }
    for rule in &field.rules {
        let problem = match rule {
            Rule::OneOf(values) if !values.contains(v) => Some(format!(
                "expected one of: {}",
                values
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Rule::Between(min, max) => match v.as_f64() {
                Some(n) if n < *min || n > *max => Some(format!(
                    "value should be between {} and {}",
                    bound(*min),
                    bound(*max)
                )),
                _ => None,
            },
            Rule::LenMin(n) => match len_of(v) {
                Some(l) if l < *n => Some(format!("length must be at least {n}")),
                _ => None,
            },
            Rule::LenMax(n) => match len_of(v) {
                Some(l) if l > *n => Some(format!("length must not exceed {n}")),
                _ => None,
            },
            Rule::StartsWith(p) => match v.as_str() {
                Some(s) if !s.starts_with(p) => Some(format!("should start with: {p}")),
                _ => None,
            },
            Rule::Uuid => match v.as_str() {
                Some(s) if uuid::Uuid::parse_str(s).is_err() => {
                    Some("expected a valid UUID".to_owned())
                }
                _ => None,
            },
            Rule::Custom(_, check) => check(v).err(),
            _ => None,
        };
        if let Some(p) = problem {
            errs.field(at, p);
            return;
        }
    }
}
