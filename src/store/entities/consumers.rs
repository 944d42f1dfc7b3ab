//! `consumers`: the identities that credentials and plugins attach to.

use super::common::{id, schema, tags, timestamps};
use crate::store::schema::{EntityCheck, Field, Record, Schema, Timestamps};

/// The consumers schema.
pub fn consumers() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        ("username", Field::string().unique()),
        ("custom_id", Field::string().unique()),
        tags(),
    ]);
    let record =
        Record::new(fields).checks(vec![EntityCheck::AtLeastOneOf(&["custom_id", "username"])]);
    schema("consumers", Some("username"), Timestamps::Seconds, record)
}
