//! `upstreams` (virtual hostnames with a balancer and health checks) and their `targets`.

use serde_json::{json, Value};

use super::common::{id, schema, tags, timestamps};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, Match, OnDelete, Path, Record, Schema,
    SchemaErrors, Timestamps,
};

const HASH_ON: &[&str] = &[
    "none",
    "consumer",
    "ip",
    "header",
    "cookie",
    "path",
    "query_arg",
    "uri_capture",
];

/// The upstreams schema.
pub fn upstreams() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        (
            "name",
            Field::string()
                .required()
                .unique()
                .custom("hostname", upstream_name),
        ),
        (
            "algorithm",
            Field::string().default(json!("round-robin")).one_of(&[
                "consistent-hashing",
                "least-connections",
                "round-robin",
                "latency",
            ]),
        ),
        (
            "hash_on",
            Field::string().default(json!("none")).one_of(HASH_ON),
        ),
        (
            "hash_fallback",
            Field::string().default(json!("none")).one_of(HASH_ON),
        ),
        (
            "hash_on_header",
            Field::string().custom("header_name", typedefs::header_name),
        ),
        (
            "hash_fallback_header",
            Field::string().custom("header_name", typedefs::header_name),
        ),
        (
            "hash_on_cookie",
            Field::string().custom("cookie_name", cookie_name),
        ),
        (
            "hash_on_cookie_path",
            Field::string()
                .default(json!("/"))
                .custom("path", typedefs::path),
        ),
        ("hash_on_query_arg", Field::string()),
        ("hash_fallback_query_arg", Field::string()),
        ("hash_on_uri_capture", Field::string()),
        ("hash_fallback_uri_capture", Field::string()),
        (
            "slots",
            Field::integer()
                .default(json!(10000))
                .between(10.0, 65536.0),
        ),
        ("healthchecks", Field::record(healthchecks())),
        tags(),
        (
            "host_header",
            Field::string().custom("host_with_optional_port", typedefs::host_with_optional_port),
        ),
        (
            "client_certificate",
            Field::foreign("certificates", OnDelete::Restrict),
        ),
        ("use_srv_name", Field::boolean().default(json!(false))),
    ]);
    let needs = |value: &'static [&'static str], field| EntityCheck::Conditional {
        if_field: if field == "hash_fallback_header"
            || field == "hash_fallback_query_arg"
            || field == "hash_fallback_uri_capture"
        {
            "hash_fallback"
        } else {
            "hash_on"
        },
        if_match: Match::OneOf(value),
        then_field: field,
        then_match: Match::NotNull,
    };
    let record = Record::new(fields).checks(vec![
        EntityCheck::Distinct(&["hash_on_header", "hash_fallback_header"]),
        EntityCheck::Distinct(&["hash_on_query_arg", "hash_fallback_query_arg"]),
        EntityCheck::Distinct(&["hash_on_uri_capture", "hash_fallback_uri_capture"]),
        needs(&["header"], "hash_on_header"),
        needs(&["header"], "hash_fallback_header"),
        needs(&["cookie"], "hash_on_cookie"),
        needs(&["query_arg"], "hash_on_query_arg"),
        needs(&["query_arg"], "hash_fallback_query_arg"),
        needs(&["uri_capture"], "hash_on_uri_capture"),
        needs(&["uri_capture"], "hash_fallback_uri_capture"),
        EntityCheck::Conditional {
            if_field: "hash_fallback",
            if_match: Match::OneOf(&["cookie"]),
            then_field: "hash_on_cookie",
            then_match: Match::NotNull,
        },
        EntityCheck::Conditional {
            if_field: "hash_on",
            if_match: Match::OneOf(&["none", "cookie"]),
            then_field: "hash_fallback",
            then_match: Match::OneOf(&["none"]),
        },
        EntityCheck::Custom(fallback_differs),
    ]);
    let mut s = schema("upstreams", Some("name"), Timestamps::Seconds, record);
    s.shorthands = vec![algorithm_shorthand];
    s
}

fn upstream_name(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s.parse::<std::net::IpAddr>().is_err() && !s.contains(':') && typedefs::host(v).is_ok() {
        Ok(())
    } else {
        Err(format!("Invalid name ('{s}'); must be a valid hostname"))
    }
}

fn cookie_name(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s.bytes()
        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    {
        Ok(())
    } else {
        Err(format!("invalid cookie name: {s}"))
    }
}

/// `hash_fallback` must not repeat `hash_on` for the value-less kinds.
fn fallback_differs(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    let on = doc.get("hash_on").and_then(Value::as_str);
    let fallback = doc.get("hash_fallback").and_then(Value::as_str);
    if let (Some(on), Some(fb)) = (on, fallback) {
        if on == fb && ["consumer", "ip", "path"].contains(&on) {
            errs.field(
                &Path::root().key("hash_fallback"),
                "must be different from hash_on",
            );
            errs.entity("failed conditional validation given value of field 'hash_on'");
        }
    }
}

/// `least-connections` and `latency` never hash; a hash key implies `consistent-hashing`.
fn algorithm_shorthand(doc: &mut Doc) -> Result<(), SchemaErrors> {
    let algorithm = doc
        .get("algorithm")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let forced = matches!(algorithm.as_deref(), Some("least-connections" | "latency"));
    if forced {
        doc.insert("hash_on".into(), json!("none"));
        return Ok(());
    }
    match doc.get("hash_on").and_then(Value::as_str) {
        Some("none") => {
            doc.insert("algorithm".into(), json!("round-robin"));
        }
        Some(_) => {
            doc.insert("algorithm".into(), json!("consistent-hashing"));
        }
        None => {}
    }
    Ok(())
}

fn statuses(default: &[u16]) -> Field {
    Field::array(Field::integer().between(100.0, 999.0)).default(Value::Array(
        default.iter().map(|s| Value::from(*s)).collect(),
    ))
}

fn counter() -> Field {
    Field::integer().default(json!(0)).between(0.0, 255.0)
}

/// The `healthchecks` tree with all of Kong's defaults.
fn healthchecks() -> Record {
    let check_type = || {
        Field::string()
            .default(json!("http"))
            .one_of(&["tcp", "http", "https", "grpc", "grpcs"])
    };
    let interval = || Field::number().default(json!(0)).between(0.0, 65535.0);
    let active = Record::new(vec![
        ("type", check_type()),
        (
            "timeout",
            Field::number().default(json!(1)).between(0.0, 65535.0),
        ),
        (
            "concurrency",
            Field::integer()
                .default(json!(10))
                .between(1.0, 2_147_483_648.0),
        ),
        (
            "http_path",
            Field::string()
                .default(json!("/"))
                .custom("path", typedefs::path),
        ),
        (
            "https_sni",
            Field::string().custom("sni", typedefs::wildcard_host),
        ),
        (
            "https_verify_certificate",
            Field::boolean().required().default(json!(true)),
        ),
        (
            "headers",
            Field::map(
                Field::string().custom("header_name", typedefs::header_name),
                Field::array(Field::string()),
            ),
        ),
        (
            "healthy",
            Field::record(Record::new(vec![
                ("interval", interval()),
                ("http_statuses", statuses(&[200, 302])),
                ("successes", counter()),
            ])),
        ),
        (
            "unhealthy",
            Field::record(Record::new(vec![
                ("interval", interval()),
                (
                    "http_statuses",
                    statuses(&[429, 404, 500, 501, 502, 503, 504, 505]),
                ),
                ("tcp_failures", counter()),
                ("timeouts", counter()),
                ("http_failures", counter()),
            ])),
        ),
    ]);
    let passive = Record::new(vec![
        ("type", check_type()),
        (
            "healthy",
            Field::record(Record::new(vec![
                (
                    "http_statuses",
                    statuses(&[
                        200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
                        305, 306, 307, 308,
                    ]),
                ),
                ("successes", counter()),
            ])),
        ),
        (
            "unhealthy",
            Field::record(Record::new(vec![
                ("http_statuses", statuses(&[429, 500, 503])),
                ("tcp_failures", counter()),
                ("timeouts", counter()),
                ("http_failures", counter()),
            ])),
        ),
    ]);
    Record::new(vec![
        ("active", Field::record(active)),
        ("passive", Field::record(passive)),
        (
            "threshold",
            Field::number().default(json!(0)).between(0.0, 100.0),
        ),
    ])
}

/// The targets schema.
pub fn targets() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Millis));
    fields.extend([
        (
            "upstream",
            Field::foreign("upstreams", OnDelete::Cascade).required(),
        ),
        (
            "target",
            Field::string().required().custom("target", target),
        ),
        (
            "weight",
            Field::integer().default(json!(100)).between(0.0, 65535.0),
        ),
        tags(),
    ]);
    let mut s = schema(
        "targets",
        Some("target"),
        Timestamps::Millis,
        Record::new(fields),
    );
    s.cache_key = &["upstream", "target"];
    s.shorthands = vec![normalize_target];
    s
}

fn target(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let invalid = || "Invalid target; not a valid hostname or ip address".to_owned();
    let (host, _) = typedefs::split_port(s).map_err(|_| invalid())?;
    typedefs::host(&Value::from(host)).map_err(|_| invalid())
}

/// Targets are stored as `host:port`, port 8000 when absent, IPv6 bracketed.
fn normalize_target(doc: &mut Doc) -> Result<(), SchemaErrors> {
    let Some(Value::String(t)) = doc.get("target") else {
        return Ok(());
    };
    if let Some(normal) = target_address(t) {
        doc.insert("target".into(), Value::from(normal));
    }
    Ok(())
}

/// A target's stored form: `host:port` with port 8000 when absent, IPv6 bracketed; `None` when
/// the text is not an address at all.
pub fn target_address(text: &str) -> Option<String> {
    let (host, port) = typedefs::split_port(text).ok()?;
    let port = port.unwrap_or(8000);
    Some(if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}
