//! The store's import failures, told per place in the document.
//!
//! Schema errors become one line per field (`services[2].routes[0].paths[1]: should start
//! with: /`), entity-level ones one line at the entity (`consumers[0]: at least one of ...`).
//! A reference the store could not find becomes Kong's `invalid reference` message; one to an
//! entity the document does declare is left out, since it only failed because that entity
//! failed, and that entity's own error is already listed.

use serde_json::Value;

use super::flatten::Declared;
use super::{DeclarativeError, Problem};
use crate::store::{DbError, ImportFailure};

/// Kong's message for a reference to nothing.
pub(super) fn invalid_reference(field: &str, value: &str, entity: &str) -> String {
    format!("invalid reference '{field}: {value}' (no such entry in '{entity}')")
}

/// The problems of a failed import. With `has_database`, references to entities the document
/// does not declare are not reported: the database the document is meant for may hold them.
pub(super) fn problems(
    failure: ImportFailure,
    declared: &Declared,
    has_database: bool,
) -> Result<Vec<Problem>, DeclarativeError> {
    let errors = match failure {
        ImportFailure::Invalid(errors) => errors,
        ImportFailure::Db(e) => return Err(DeclarativeError::Db(e)),
    };
    let mut out = Vec::new();
    for e in errors {
        let reference = match &e.error {
            DbError::ForeignKey { field, entity, id } => Some((field.clone(), id.clone(), *entity)),
            DbError::Unresolved {
                field,
                value,
                entity,
                ..
            } => Some((
                field.clone(),
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned),
                *entity,
            )),
            _ => None,
        };
        match (reference, e.error) {
            (Some((field, value, entity)), _) => {
                if declared.resolve(entity, &value).is_none() && !has_database {
                    out.push(Problem::new(
                        &e.origin,
                        &invalid_reference(&field, &value, entity),
                    ));
                }
            }
            (None, DbError::Schema(errs)) => walk(&errs.to_fields(), &e.origin, &mut out),
            (None, other) => out.push(Problem::new(&e.origin, &other.to_string())),
        }
    }
    Ok(out)
}

/// One problem per message in Kong's nested `fields` object.
fn walk(v: &Value, at: &str, out: &mut Vec<Problem>) {
    match v {
        Value::Object(m) => {
            // Entity-level messages first, as Kong lists them.
            if let Some(Value::Array(msgs)) = m.get("@entity") {
                for msg in msgs {
                    walk(msg, at, out);
                }
            }
            for (k, v) in m.iter().filter(|(k, _)| *k != "@entity") {
                walk(v, &format!("{at}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(v, &format!("{at}[{i}]"), out);
            }
        }
        Value::String(s) => out.push(Problem::new(at, s)),
        _ => {}
    }
}
