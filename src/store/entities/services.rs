//! `services`: the upstream APIs routes lead to.

use serde_json::{json, Value};

use super::common::{id, schema, tags, timeout, timestamps};
use crate::store::schema::{
    typedefs, Doc, EntityCheck, Field, Match, OnDelete, Path, Record, Rule, Schema, SchemaErrors,
    Timestamps,
};

const NO_PATH: &[&str] = &["tcp", "tls", "udp", "grpc", "grpcs"];
const TLS_ONLY: &[&str] = &["https", "wss", "tls"];
/// Service protocols: the route protocols, plus WebSocket (`ws`, `wss`) upstreams.
const SERVICE_PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
    "ws",
    "wss",
];

/// The services schema.
pub fn services() -> Schema {
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
            "retries",
            Field::integer().default(json!(5)).between(0.0, 32767.0),
        ),
        (
            "protocol",
            Field::string()
                .required()
                .default(json!("http"))
                .one_of(SERVICE_PROTOCOLS),
        ),
        (
            "host",
            Field::string().required().custom("host", typedefs::host),
        ),
        (
            "port",
            Field::integer()
                .required()
                .default(json!(80))
                .between(0.0, 65535.0),
        ),
        ("path", Field::string().custom("path", typedefs::path)),
        (
            "connect_timeout",
            timeout()
                .between(1.0, 2_147_483_646.0)
                .default(json!(60000)),
        ),
        (
            "write_timeout",
            timeout()
                .between(1.0, 2_147_483_646.0)
                .default(json!(60000)),
        ),
        (
            "read_timeout",
            timeout()
                .between(1.0, 2_147_483_646.0)
                .default(json!(60000)),
        ),
        tags(),
        (
            "client_certificate",
            Field::foreign("certificates", OnDelete::Restrict),
        ),
        ("tls_verify", Field::boolean()),
        ("tls_verify_depth", Field::integer().between(0.0, 64.0)),
        (
            "ca_certificates",
            Field::array(Field::string().rule(Rule::Uuid)),
        ),
        ("enabled", Field::boolean().required().default(json!(true))),
    ]);
    let when = |then_field, if_match| EntityCheck::Conditional {
        if_field: "protocol",
        if_match,
        then_field,
        then_match: Match::Null,
    };
    let record = Record::new(fields).checks(vec![
        when("path", Match::OneOf(NO_PATH)),
        when("client_certificate", Match::NotOneOf(TLS_ONLY)),
        when("tls_verify", Match::NotOneOf(TLS_ONLY)),
        when("tls_verify_depth", Match::NotOneOf(TLS_ONLY)),
        when("ca_certificates", Match::NotOneOf(TLS_ONLY)),
    ]);
    let mut s = schema("services", Some("name"), Timestamps::Seconds, record);
    s.shorthands = vec![url_shorthand];
    s
}

/// `url`: sets protocol, host, port and path at once; the parts override separate fields.
fn url_shorthand(doc: &mut Doc) -> Result<(), SchemaErrors> {
    let Some(url) = doc.remove("url") else {
        return Ok(());
    };
    let url = match url {
        Value::Null => return Ok(()),
        Value::String(s) => s,
        _ => {
            return Err(SchemaErrors::at(
                &Path::root().key("url"),
                "expected a string",
            ))
        }
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, url.as_str()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match typedefs::split_port(authority) {
        Ok((h, p)) if !h.is_empty() && !h.contains(' ') && scheme.is_some() => (Some(h), p),
        _ => (None, None),
    };
    let protocol = scheme.unwrap_or_else(|| match port {
        Some(443) => "https".into(),
        _ => "http".into(),
    });
    let secure = matches!(protocol.as_str(), "https" | "wss");
    let port = port.unwrap_or(if secure { 443 } else { 80 });
    doc.insert("protocol".into(), Value::from(protocol));
    doc.insert("host".into(), host.map_or(Value::Null, Value::from));
    doc.insert("port".into(), Value::from(port));
    let path = match (host, path) {
        (Some(_), p) => p.map(str::to_owned),
        // Not a URL at all: keep the text as the path so its error tells what is wrong.
        (None, _) => Some(url.clone()),
    };
    doc.insert("path".into(), path.map_or(Value::Null, Value::from));
    Ok(())
}
