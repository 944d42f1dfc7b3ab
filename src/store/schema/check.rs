//! Checks that span several fields of one record.

use serde_json::Value;

use super::{Doc, Path, SchemaErrors};
use crate::store::schema::validate::Context;

/// A condition on one field's value.
#[derive(Debug, Clone)]
pub enum Match {
    /// The value is null or absent.
    Null,
    /// The value is set.
    NotNull,
    /// The value is one of these strings.
    OneOf(&'static [&'static str]),
    /// The value is none of these strings.
    NotOneOf(&'static [&'static str]),
    /// The value equals this boolean.
    Bool(bool),
}

impl Match {
    fn test(&self, v: Option<&Value>) -> bool {
        let v = v.filter(|v| !v.is_null());
        match self {
            Match::Null => v.is_none(),
            Match::NotNull => v.is_some(),
            Match::OneOf(set) => v.and_then(Value::as_str).is_some_and(|s| set.contains(&s)),
            Match::NotOneOf(set) => !v.and_then(Value::as_str).is_some_and(|s| set.contains(&s)),
            Match::Bool(b) => v.and_then(Value::as_bool) == Some(*b),
        }
    }

    fn failure(&self) -> String {
        match self {
            Match::Null => "value must be null".into(),
            Match::NotNull => "required field missing".into(),
            Match::OneOf(set) => format!("expected one of: {}", set.join(", ")),
            Match::NotOneOf(_) => "invalid value".into(),
            Match::Bool(b) => format!("value must be {b}"),
        }
    }
}

/// A multi-field rule, reported under `@entity` (and on the field where one is to blame).
#[derive(Debug, Clone)]
pub enum EntityCheck {
    /// At least one of the fields is set.
    AtLeastOneOf(&'static [&'static str]),
    /// Exactly one of the fields is set.
    OnlyOneOf(&'static [&'static str]),
    /// At most one of the fields is set.
    MutuallyExclusive(&'static [&'static str]),
    /// Either every field is set or none is.
    AllOrNone(&'static [&'static str]),
    /// The set fields hold different values.
    Distinct(&'static [&'static str]),
    /// When `if_field` matches, `then_field` must match too.
    Conditional {
        /// Field whose value triggers the check.
        if_field: &'static str,
        /// Trigger.
        if_match: Match,
        /// Field constrained when triggered.
        then_field: &'static str,
        /// Constraint.
        then_match: Match,
    },
    /// A rule in code over the whole record.
    Custom(fn(&Doc, &Context<'_>, &Path, &mut SchemaErrors)),
}

fn is_set(doc: &Doc, f: &str) -> bool {
    match doc.get(f) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

fn quoted(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl EntityCheck {
    /// Fields the check reads; it is skipped when one of them already failed.
    fn fields(&self) -> Vec<&'static str> {
        match self {
            EntityCheck::AtLeastOneOf(f)
            | EntityCheck::OnlyOneOf(f)
            | EntityCheck::MutuallyExclusive(f)
            | EntityCheck::AllOrNone(f)
            | EntityCheck::Distinct(f) => f.to_vec(),
            EntityCheck::Conditional {
                if_field,
                then_field,
                ..
            } => vec![if_field, then_field],
            EntityCheck::Custom(_) => Vec::new(),
        }
    }

    /// Runs the check on a record whose fields already passed their own validation.
    pub(crate) fn run(&self, doc: &Doc, ctx: &Context<'_>, at: &Path, errs: &mut SchemaErrors) {
        if self
            .fields()
            .iter()
            .any(|f| at.is_root() && errs.has_field(f))
        {
            return;
        }
        let set = |fields: &[&str]| fields.iter().filter(|f| is_set(doc, f)).count();
        let record_error = |errs: &mut SchemaErrors, msg: String| {
            if at.is_root() {
                errs.entity(msg)
            } else {
                errs.field(at, msg)
            }
        };
        match self {
            EntityCheck::AtLeastOneOf(f) if set(f) == 0 => record_error(
                errs,
                format!(
                    "at least one of these fields must be non-empty: {}",
                    quoted(f)
                ),
            ),
            EntityCheck::OnlyOneOf(f) if set(f) != 1 => record_error(
                errs,
                format!(
                    "exactly one of these fields must be non-empty: {}",
                    quoted(f)
                ),
            ),
            EntityCheck::MutuallyExclusive(f) if set(f) > 1 => record_error(
                errs,
                format!(
                    "only one or none of these fields must be set: {}",
                    quoted(f)
                ),
            ),
            EntityCheck::AllOrNone(f) if set(f) != 0 && set(f) != f.len() => record_error(
                errs,
                format!("all or none of these fields must be set: {}", quoted(f)),
            ),
            EntityCheck::Distinct(f) => {
                let values: Vec<&Value> = f
                    .iter()
                    .filter_map(|k| doc.get(*k))
                    .filter(|v| !v.is_null())
                    .collect();
                let dup = values
                    .iter()
                    .enumerate()
                    .any(|(i, v)| values[..i].contains(v));
                if dup {
                    record_error(
                        errs,
                        format!("values of these fields must be distinct: {}", quoted(f)),
                    )
                }
            }
            EntityCheck::Conditional {
                if_field,
                if_match,
                then_field,
                then_match,
            } if if_match.test(doc.get(*if_field)) && !then_match.test(doc.get(*then_field)) => {
                errs.field(&at.key(then_field), then_match.failure());
                record_error(
                    errs,
                    format!("failed conditional validation given value of field '{if_field}'"),
                );
            }
            EntityCheck::Custom(check) => check(doc, ctx, at, errs),
            _ => {}
        }
    }
}
