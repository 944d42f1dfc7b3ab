//! Fields every entity shares.

use serde_json::Value;

use crate::store::schema::{typedefs, Field, Record, Schema, Timestamps};

/// `id`: a UUID generated when absent.
pub fn id() -> (&'static str, Field) {
    (
        "id",
        Field::string()
            .rule(crate::store::schema::Rule::Uuid)
            .auto(),
    )
}

/// `created_at` / `updated_at` for the given style.
pub fn timestamps(style: Timestamps) -> Vec<(&'static str, Field)> {
    let stamp = || match style {
        Timestamps::Millis => Field::number().auto(),
        _ => Field::integer().auto(),
    };
    match style {
        Timestamps::CreatedOnly => vec![("created_at", stamp())],
        _ => vec![("created_at", stamp()), ("updated_at", stamp())],
    }
}

/// `tags`: a set of tag strings.
pub fn tags() -> (&'static str, Field) {
    (
        "tags",
        Field::set(Field::string().custom("tag", typedefs::tag)),
    )
}

/// A port number.
pub fn port() -> Field {
    Field::integer().between(0.0, 65535.0)
}

/// A timeout in milliseconds.
pub fn timeout() -> Field {
    Field::integer().between(0.0, 2_147_483_646.0)
}

/// A schema with Kong's usual defaults; callers fill in the rest.
pub fn schema(
    name: &'static str,
    endpoint_key: Option<&'static str>,
    timestamps: Timestamps,
    record: Record,
) -> Schema {
    Schema {
        name,
        endpoint_key,
        cache_key: &[],
        record,
        timestamps,
        shorthands: Vec::new(),
        ttl: false,
        virtual_fields: &[],
        finish: None,
        transform: None,
    }
}

/// A JSON string array.
pub fn strings(values: &[&str]) -> Value {
    Value::Array(values.iter().map(|s| Value::from(*s)).collect())
}
