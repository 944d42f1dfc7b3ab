//! `/config` on a DB-less node: replacing the whole configuration over the Admin API, in every
//! input form, with Kong's answers for success, unchanged hashes and invalid documents.

use serde_json::{json, Value};

use crate::support::http::{get, send};
use crate::support::kong::Kong;

fn post(kong: &Kong, query: &str, content_type: &str, body: String) -> (u16, Value) {
    let r = send(
        "POST",
        &kong.admin(&format!("/config{query}")),
        &[("content-type", content_type)],
        Some(body),
    );
    let json = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, json)
}

#[test]
fn config_is_only_for_dbless_nodes() {
    let kong = Kong::start("");
    let msg = json!({"message": "this endpoint is only available when Kong is configured to not use a database"});
    assert_eq!(get(&kong.admin("/config")).json(), msg);
    assert_eq!(post(&kong, "", "application/json", "{}".into()), (400, msg));
}

#[test]
fn posting_a_configuration_replaces_everything() {
    let kong = Kong::start("database = off");
    let before = get(&kong.admin("/status")).json()["configuration_hash"].clone();
    assert_eq!(before, "00000000000000000000000000000000");

    let doc = json!({"_format_version": "3.0", "services": [{"name": "a", "url": "http://a.internal", "routes": [{"name": "ra", "paths": ["/a"]}]}]});
    let (status, body) = post(&kong, "", "application/json", doc.to_string());
    assert_eq!(status, 201, "{body}");
    let services = body["services"].as_object().expect("services by id");
    let (id, svc) = services.iter().next().expect("one service");
    assert_eq!(svc["id"], id.as_str());
    assert_eq!(svc["host"], "a.internal");
    assert_eq!(body["routes"].as_object().map(|r| r.len()), Some(1));
    assert_eq!(get(&kong.admin("/services/a")).json()["id"], id.as_str());
    let hash = get(&kong.admin("/status")).json()["configuration_hash"].clone();
    assert_ne!(hash, before);

    let yaml = "_format_version: \"3.0\"\nconsumers:\n  - username: bob\n";
    let (status, _) = post(&kong, "", "application/yaml", yaml.into());
    assert_eq!(status, 201);
    assert_eq!(
        get(&kong.admin("/services")).json()["data"],
        json!([]),
        "the old configuration is gone"
    );
    assert_eq!(get(&kong.admin("/consumers/bob")).status, 200);
    let exported = get(&kong.admin("/config")).json();
    let text = exported["config"].as_str().expect("config text");
    assert!(
        text.contains("_format_version") && text.contains("username: bob"),
        "{text}"
    );

    let (status, _) = post(&kong, "?check_hash=1", "application/yaml", yaml.into());
    assert_eq!(status, 304, "same text, same hash: nothing to do");
    let wrapped = json!({"config": "_format_version: \"3.0\"\nconsumers:\n  - username: carol\n"});
    let (status, _) = post(&kong, "", "application/json", wrapped.to_string());
    assert_eq!(status, 201);
    assert_eq!(get(&kong.admin("/consumers/carol")).status, 200);
}

#[test]
fn invalid_configurations_change_nothing_and_say_why() {
    let kong = Kong::start("database = off");
    let good = "_format_version: \"3.0\"\nconsumers:\n  - username: bob\n";
    assert_eq!(post(&kong, "", "application/yaml", good.into()).0, 201);
    let hash = get(&kong.admin("/status")).json()["configuration_hash"].clone();

    let bad = json!({"_format_version": "3.0", "services": [{"name": "ok", "host": "h"}, {"name": "bad", "port": 70000}]});
    let (status, body) = post(
        &kong,
        "?flatten_errors=1",
        "application/json",
        bad.to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    assert_eq!(
        body["fields"]["services"][0],
        Value::Null,
        "valid entries are null"
    );
    assert_eq!(
        body["fields"]["services"][1]["host"],
        "required field missing"
    );
    assert_eq!(
        body["fields"]["services"][1]["port"],
        "value should be between 0 and 65535"
    );
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("declarative config is invalid: ")));
    let flat = &body["flattened_errors"][0];
    assert_eq!(flat["entity_type"], "service");
    assert_eq!(flat["entity_name"], "bad");
    assert_eq!(flat["entity"]["port"], 70000);
    assert!(
        flat["errors"].as_array().is_some_and(|e| e.contains(
            &json!({"type": "field", "field": "host", "message": "required field missing"})
        )),
        "{flat}"
    );

    let (status, body) = post(
        &kong,
        "",
        "application/yaml",
        "_format_version: \"3.0\"\nservices: [\n".into(),
    );
    assert_eq!(status, 400);
    assert!(
        body["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed parsing declarative configuration")),
        "{body}"
    );
    let (status, body) = post(&kong, "", "application/json", "{}".into());
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "expected a declarative configuration"})
        )
    );

    assert_eq!(
        get(&kong.admin("/status")).json()["configuration_hash"],
        hash,
        "nothing changed"
    );
    assert_eq!(get(&kong.admin("/consumers/bob")).status, 200);
}
