//! Datastore errors in Kong's shape: a numeric code, a name, a message and details.
//!
//! The Admin API turns these into responses (status per code); the CLI prints the message.
//! Database driver detail stays in the log: [`DbError::Database`] shows only a generic text.

use serde_json::{json, Map, Value};

use super::schema::SchemaErrors;

/// Why a datastore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A malformed primary key (code 1).
    #[error("invalid primary key: '{}'", lua(.0))]
    InvalidPrimaryKey(Value),
    /// Validation failed (code 2).
    #[error("{0}")]
    Schema(SchemaErrors),
    /// An entity with this id exists already (code 3).
    #[error("primary key violation on key '{{id=\"{0}\"}}'")]
    PrimaryKey(String),
    /// A reference to an entity that does not exist (code 4).
    #[error("the foreign key '{{id=\"{id}\"}}' does not reference an existing '{entity}' entity.")]
    ForeignKey {
        /// Referencing field.
        field: String,
        /// Referenced entity.
        entity: &'static str,
        /// Referenced id.
        id: String,
    },
    /// A delete refused because other entities reference this one (code 4).
    #[error("an existing '{referenced_by}' entity references this '{entity}' entity")]
    Restricted {
        /// Entity being deleted.
        entity: &'static str,
        /// Entity that references it.
        referenced_by: &'static str,
    },
    /// A unique value is taken (code 5).
    #[error("UNIQUE violation detected on '{}'", lua(.0))]
    Unique(Value),
    /// The addressed entity does not exist (code 6).
    #[error("could not find the entity with {}'{}'", if *.by_id { "primary key " } else { "" }, lua(.key))]
    NotFound {
        /// The key used, e.g. `{"id": ...}` or `{"name": ...}`.
        key: Value,
        /// Whether the key was the primary key.
        by_id: bool,
    },
    /// A bad pagination token (code 7).
    #[error("'{0}' is not a valid offset: {1}")]
    InvalidOffset(String, &'static str),
    /// The database failed (code 8). The detail is for operators; API responses show a
    /// generic message instead (see [`DbError::to_json`]).
    #[error("database error: {0}")]
    Database(String),
    /// A bad page size (code 9).
    #[error("{0}")]
    InvalidSize(&'static str),
    /// A bad query option such as a tag filter (code 11).
    #[error("invalid option ({option}: {message})")]
    InvalidOptions {
        /// Option name.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The backend cannot do this (code 12), e.g. writes in DB-less mode.
    #[error("{0}")]
    Unsupported(String),
    /// A reference by name that matches nothing (code 13).
    #[error("foreign key unresolved ({field}.{key}: the foreign key cannot be resolved with '{{{key}={}}}' for an existing '{entity}' entity)", lua(.value))]
    Unresolved {
        /// Referencing field.
        field: String,
        /// Unique field of the referenced entity used.
        key: String,
        /// Value given.
        value: Value,
        /// Referenced entity.
        entity: &'static str,
    },
    /// Deleting a CA certificate that services still use (code 19).
    #[error("ca certificate {id} is still referenced by {entity} (id = {by})")]
    ReferencedByOthers {
        /// CA certificate id.
        id: String,
        /// Referencing entity.
        entity: &'static str,
        /// Referencing entity's id.
        by: String,
    },
    /// An unknown entity name.
    #[error("No entity named '{0}'")]
    UnknownEntity(String),
}

impl From<SchemaErrors> for DbError {
    fn from(e: SchemaErrors) -> DbError {
        DbError::Schema(e)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> DbError {
        DbError::Database(e.to_string())
    }
}

impl DbError {
    /// Kong's numeric code.
    pub fn code(&self) -> u16 {
        match self {
            DbError::InvalidPrimaryKey(_) => 1,
            DbError::Schema(_) => 2,
            DbError::PrimaryKey(_) => 3,
            DbError::ForeignKey { .. } | DbError::Restricted { .. } => 4,
            DbError::Unique(_) => 5,
            DbError::NotFound { .. } | DbError::UnknownEntity(_) => 6,
            DbError::InvalidOffset(..) => 7,
            DbError::Database(_) => 8,
            DbError::InvalidSize(_) => 9,
            DbError::InvalidOptions { .. } => 11,
            DbError::Unsupported(_) => 12,
            DbError::Unresolved { .. } => 13,
            DbError::ReferencedByOthers { .. } => 19,
        }
    }

    /// Kong's name for the code.
    pub fn name(&self) -> &'static str {
        match self.code() {
            1 => "invalid primary key",
            2 => "schema violation",
            3 => "primary key violation",
            4 => "foreign key violation",
            5 => "unique constraint violation",
            6 => "not found",
            7 => "invalid offset",
            9 => "invalid size",
            11 => "invalid options",
            12 => "operation unsupported",
            13 => "foreign keys unresolved",
            19 => "referenced by others",
            _ => "database error",
        }
    }

    /// The details object (`fields`, or `options` for code 11).
    pub fn details(&self) -> Option<Value> {
        Some(match self {
            DbError::InvalidPrimaryKey(v) | DbError::Unique(v) => v.clone(),
            DbError::Schema(e) => e.to_fields(),
            DbError::PrimaryKey(id) => json!({ "id": id }),
            DbError::ForeignKey { field, id, .. } => json!({ field: { "id": id } }),
            DbError::Restricted { referenced_by, .. } => json!({ "@referenced_by": referenced_by }),
            DbError::NotFound { key, .. } => key.clone(),
            DbError::InvalidOptions { option, message } => json!({ *option: message }),
            DbError::Unresolved {
                field,
                key,
                entity,
                value,
            } => json!({ field: { key: format!(
                "the foreign key cannot be resolved with '{}' for an existing '{entity}' entity",
                lua(&json!({ key: value }))
            ) } }),
            _ => return None,
        })
    }

    /// The whole error as Kong's JSON body; database failures never show their detail.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code()));
        body.insert("name".into(), json!(self.name()));
        let message = match self {
            DbError::Database(_) => "An unexpected error occurred".to_owned(),
            other => other.to_string(),
        };
        body.insert("message".into(), json!(message));
        if let Some(details) = self.details() {
            let key = if self.code() == 11 {
                "options"
            } else {
                "fields"
            };
            body.insert(key.into(), details);
        }
        Value::Object(body)
    }
}

/// Formats a value the way Kong prints keys in messages: `{name="x",route=null}`.
pub fn lua(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", lua(v))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(lua).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_kong() {
        let e = DbError::Unique(json!({"username": "bob"}));
        assert_eq!(
            e.to_string(),
            "UNIQUE violation detected on '{username=\"bob\"}'"
        );
        let e = DbError::NotFound {
            key: json!({"name": "x"}),
            by_id: false,
        };
        assert_eq!(
            e.to_string(),
            "could not find the entity with '{name=\"x\"}'"
        );
        let e = DbError::InvalidOptions {
            option: "tags",
            message: "cannot be null".into(),
        };
        assert_eq!(
            e.to_json(),
            json!({"code": 11, "name": "invalid options", "message": "invalid option (tags: cannot be null)", "options": {"tags": "cannot be null"}})
        );
    }
}
