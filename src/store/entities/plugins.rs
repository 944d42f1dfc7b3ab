//! `plugins`: plugin instances, global or scoped to a route, service and/or consumer.
//!
//! The entity's own fields are fixed; `config` is validated against the named plugin's schema,
//! which comes from the node's plugin registry through the validation [`Context`].

use serde_json::{json, Map, Value};

use super::common::{id, schema, strings, tags, timestamps};
use crate::store::schema::{
    typedefs, validate_record, Context, Doc, Field, Kind, OnDelete, Path, Record, Schema,
    SchemaErrors, Timestamps,
};

/// The plugins schema.
pub fn plugins() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        ("name", Field::string().required()),
        (
            "instance_name",
            Field::string()
                .unique()
                .custom("utf8_name", typedefs::utf8_name),
        ),
        ("route", Field::foreign("routes", OnDelete::Cascade)),
        ("service", Field::foreign("services", OnDelete::Cascade)),
        ("consumer", Field::foreign("consumers", OnDelete::Cascade)),
        (
            "config",
            Field {
                kind: Kind::Any,
                ..Field::string()
            },
        ),
        (
            "protocols",
            Field::set(Field::string().one_of(typedefs::PROTOCOLS))
                .required()
                .len_min(1)
                .default(strings(typedefs::HTTP_PROTOCOLS)),
        ),
        ("enabled", Field::boolean().required().default(json!(true))),
        tags(),
    ]);
    let mut s = schema(
        "plugins",
        Some("instance_name"),
        Timestamps::Seconds,
        Record::new(fields),
    );
    s.cache_key = &["name", "route", "service", "consumer"];
    s.finish = Some(plugin_config);
    s
}

/// Validates `config` with the plugin's own schema and the scopes the plugin allows.
fn plugin_config(doc: &mut Doc, ctx: &Context<'_>, errs: &mut SchemaErrors) {
    let Some(name) = doc.get("name").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    let Some(plugin) = ctx.plugins.plugin(&name) else {
        errs.field(
            &Path::root().key("name"),
            format!("plugin '{name}' not enabled; add it to the 'plugins' configuration property"),
        );
        return;
    };
    let config = match doc.remove("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            errs.field(&Path::root().key("config"), "expected a record");
            return;
        }
    };
    let config = validate_record(
        &plugin.config,
        config,
        &Path::root().key("config"),
        ctx,
        errs,
    );
    doc.insert("config".into(), Value::Object(config));
    for (scope, forbidden) in [
        ("consumer", plugin.no_consumer),
        ("route", plugin.no_route),
        ("service", plugin.no_service),
    ] {
        if forbidden && doc.get(scope).is_some_and(|v| !v.is_null()) {
            errs.field(&Path::root().key(scope), "value must be null");
        }
    }
    if let Some(allowed) = &plugin.protocols {
        let protocols = doc.get("protocols").and_then(Value::as_array);
        for (i, p) in protocols.into_iter().flatten().enumerate() {
            if p.as_str().is_some_and(|p| !allowed.contains(&p)) {
                errs.field(
                    &Path::root().key("protocols").index(i),
                    format!("expected one of: {}", allowed.join(", ")),
                );
            }
        }
    }
}
