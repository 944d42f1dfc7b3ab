//! `routes`: the rules that match client requests to services.

use serde_json::{json, Value};

use super::common::{id, port, schema, strings, tags, timestamps};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, OnDelete, Path, Record, Schema, SchemaErrors,
    Timestamps,
};

/// The routes schema.
pub fn routes() -> Schema {
    let endpoint = || {
        Field::record(
            Record::new(vec![
                (
                    "ip",
                    Field::string().custom("ip_or_cidr", typedefs::ip_or_cidr),
                ),
                ("port", port()),
            ])
            .checks(vec![EntityCheck::AtLeastOneOf(&["ip", "port"])]),
        )
    };
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        (
            "name",
            Field::string()
                .unique()
                .custom("utf8_name", typedefs::utf8_name),
        ),
        (
            "protocols",
            Field::set(Field::string().one_of(typedefs::PROTOCOLS))
                .required()
                .len_min(1)
                .default(strings(&["http", "https"]))
                .custom("protocol groups", protocol_groups),
        ),
        (
            "methods",
            Field::set(Field::string().custom("method", method)),
        ),
        (
            "hosts",
            Field::array(Field::string().custom("host", route_host)),
        ),
        (
            "paths",
            Field::array(Field::string().custom("route path", route_path)),
        ),
        (
            "headers",
            Field::map(
                Field::string().custom("header_name", header_key),
                Field::array(Field::string()),
            ),
        ),
        (
            "https_redirect_status_code",
            Field::integer().required().default(json!(426)).rule(
                crate::store::schema::Rule::OneOf(
                    [426, 301, 302, 307, 308].map(Value::from).to_vec(),
                ),
            ),
        ),
        ("regex_priority", Field::integer().default(json!(0))),
        (
            "strip_path",
            Field::boolean().required().default(json!(true)),
        ),
        (
            "path_handling",
            Field::string().default(json!("v0")).one_of(&["v0", "v1"]),
        ),
        (
            "preserve_host",
            Field::boolean().required().default(json!(false)),
        ),
        (
            "request_buffering",
            Field::boolean().required().default(json!(true)),
        ),
        (
            "response_buffering",
            Field::boolean().required().default(json!(true)),
        ),
        (
            "snis",
            Field::set(Field::string().custom("wildcard_host", typedefs::wildcard_host)),
        ),
        ("sources", Field::set(endpoint())),
        ("destinations", Field::set(endpoint())),
        tags(),
        ("service", Field::foreign("services", OnDelete::Restrict)),
    ]);
    let record = Record::new(fields).checks(vec![EntityCheck::Custom(protocol_rules)]);
    let mut s = schema("routes", Some("name"), Timestamps::Seconds, record);
    s.shorthands = vec![grpc_strip_path];
    s
}

fn method(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

fn header_key(v: &Value) -> Result<(), String> {
    typedefs::header_name(v)?;
    if v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("host")) {
        return Err(
            "cannot contain 'host' header, which must be specified in the 'hosts' attribute".into(),
        );
    }
    Ok(())
}

fn route_host(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let (host, _) = typedefs::split_port(s)?;
    let stars = host.matches('*').count();
    if stars > 1 {
        return Err("invalid wildcard: must have at most one wildcard".into());
    }
    if stars == 1 && !(host.starts_with("*.") || host.ends_with(".*")) {
        return Err("invalid wildcard: must be placed at leftmost or rightmost label".into());
    }
    let bare = host.replace('*', "wildcard");
    typedefs::host_with_optional_port(&Value::from(bare)).map_err(|_| format!("invalid value: {s}"))
}

fn route_path(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if let Some(re) = s.strip_prefix('~') {
        if !re.starts_with('/') {
            return Err("should start with: / (fixed path) or ~/ (regex path)".into());
        }
        return regex::Regex::new(re)
            .map(|_| ())
            .map_err(|e| format!("invalid regex: '{re}' ({})", first_line(&e.to_string())));
    }
    if !s.starts_with('/') {
        return Err("should start with: / (fixed path) or ~/ (regex path)".into());
    }
    typedefs::path(v)
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_owned()
}

/// Protocols come in groups that cannot be mixed in one route.
fn protocol_groups(v: &Value) -> Result<(), String> {
    const GROUPS: &[&[&str]] = &[
        &["http", "https"],
        &["tcp", "tls", "udp"],
        &["tls_passthrough"],
        &["grpc", "grpcs"],
    ];
    let list: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let used = GROUPS
        .iter()
        .filter(|g| list.iter().any(|p| g.contains(p)))
        .count();
    if used > 1 {
        return Err("mixing protocols from different groups is not allowed: http, https | tcp, tls, udp | tls_passthrough | grpc, grpcs".into());
    }
    Ok(())
}

/// gRPC routes default to `strip_path = false`.
fn grpc_strip_path(doc: &mut Doc) -> Result<(), SchemaErrors> {
    let grpc = doc
        .get("protocols")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            !a.is_empty()
                && a.iter()
                    .all(|p| matches!(p.as_str(), Some("grpc") | Some("grpcs")))
        });
    if grpc && doc.get("strip_path").is_none_or(Value::is_null) {
        doc.insert("strip_path".into(), Value::Bool(false));
    }
    Ok(())
}

fn is_set(doc: &Doc, f: &str) -> bool {
    match doc.get(f) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

fn quoted(fields: &[&str]) -> String {
    let q: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

/// The per-protocol matcher rules.
fn protocol_rules(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    let protocols: Vec<&str> = doc
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if protocols.is_empty() {
        return;
    }
    let has = |p: &str| protocols.contains(&p);
    let (named, need, forbid): (&[&str], &[&str], &[&str]) = if has("https") {
        (
            &["https"],
            &["methods", "hosts", "headers", "paths", "snis"],
            &["sources", "destinations"],
        )
    } else if has("http") {
        (
            &["http"],
            &["methods", "hosts", "headers", "paths"],
            &["sources", "destinations"],
        )
    } else if has("grpcs") {
        (
            &["grpcs"],
            &["hosts", "headers", "paths", "snis"],
            &["methods", "sources", "destinations"],
        )
    } else if has("grpc") {
        (
            &["grpc"],
            &["hosts", "headers", "paths"],
            &["methods", "sources", "destinations"],
        )
    } else if has("tls_passthrough") {
        (
            &["tls_passthrough"],
            &["snis"],
            &["methods", "hosts", "paths", "headers"],
        )
    } else {
        (
            &["tcp", "tls", "udp"],
            &["sources", "destinations", "snis"],
            &["methods", "hosts", "paths", "headers"],
        )
    };
    for f in forbid {
        if is_set(doc, f) {
            errs.field(&Path::root().key(f), "value must be null");
            errs.entity("failed conditional validation given value of field 'protocols'");
        }
    }
    if (has("grpc") || has("grpcs")) && doc.get("strip_path") == Some(&Value::Bool(true)) {
        errs.field(&Path::root().key("strip_path"), "value must be false");
        errs.entity("failed conditional validation given value of field 'protocols'");
    }
    let snis_ok = ["grpcs", "https", "tls", "tls_passthrough"]
        .iter()
        .any(|p| has(p));
    if is_set(doc, "snis") && !snis_ok {
        errs.field(
            &Path::root().key("snis"),
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
        );
    }
    if !need.iter().any(|f| is_set(doc, f)) {
        let msg = if named == ["tls_passthrough"] {
            "must set snis when 'protocols' is 'tls_passthrough'".to_owned()
        } else {
            format!(
                "must set one of {} when 'protocols' is {}",
                quoted_list(need),
                quoted(named)
            )
        };
        errs.entity(msg);
    }
}

fn quoted_list(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
