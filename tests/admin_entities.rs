//! The Admin API's entity endpoints, driven the way client tools drive them: a real node on
//! loopback, JSON over HTTP, Kong's documented responses asserted field by field.

use serde_json::{json, Value};

use crate::support::http::{send, Reply};
use crate::support::kong::Kong;

/// A client bound to one node's Admin API.
struct Admin<'a>(&'a Kong);

impl Admin<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let headers: &[(&str, &str)] = match body {
            Some(_) => &[("content-type", "application/json")],
            None => &[],
        };
        send(
            method,
            &self.0.admin(path),
            headers,
            body.map(|b| b.to_string()),
        )
    }

    fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }
}

#[test]
fn a_client_session_from_service_to_cascade_on_sqlite() {
    client_session(&Kong::start(""));
}

#[test]
fn a_client_session_from_service_to_cascade_on_postgres() {
    let Some(target) = crate::migrations::target::Target::postgres("admin_session") else {
        return;
    };
    let mut kong = Kong::configure(&target.database_lines());
    let started = kong.run(&["start", "--run-migrations"]);
    assert!(
        started.status.success(),
        "{}",
        crate::support::kong::text(&started)
    );
    kong.set_running();
    kong.wait_ready();
    client_session(&kong);
}

fn client_session(kong: &Kong) {
    let api = Admin(kong);

    let svc = api.expect("POST", "/services", Some(json!({"name": "billing", "url": "http://billing.internal:8080/v1", "tags": ["team-a"]})), 201);
    assert_eq!(svc["host"], "billing.internal");
    assert_eq!(svc["port"], 8080);
    assert_eq!(svc["path"], "/v1");
    assert_eq!(svc["retries"], 5);
    assert_eq!(
        svc["client_certificate"],
        Value::Null,
        "unset fields are present as null"
    );
    let svc_id = svc["id"].as_str().expect("id").to_owned();

    let route = api.expect(
        "POST",
        "/services/billing/routes",
        Some(json!({"name": "billing-route", "paths": ["/billing"]})),
        201,
    );
    assert_eq!(route["service"], json!({"id": svc_id}));
    assert_eq!(route["protocols"], json!(["http", "https"]));
    let linked = api.expect("GET", "/routes/billing-route/service", None, 200);
    assert_eq!(linked["id"], svc_id.as_str());
    let listed = api.expect("GET", &format!("/services/{svc_id}/routes"), None, 200);
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["next"], Value::Null);

    api.expect(
        "POST",
        "/consumers",
        Some(json!({"username": "bob", "custom_id": "c-42"})),
        201,
    );
    let cred = api.expect("POST", "/consumers/bob/key-auth", Some(json!({})), 201);
    assert_eq!(cred["key"].as_str().map(str::len), Some(32));
    let by_custom = api.expect("GET", "/consumers?custom_id=c-42", None, 200);
    assert_eq!(by_custom["data"][0]["username"], "bob");
    let keys = api.expect("GET", "/key-auths", None, 200);
    assert_eq!(
        keys["data"][0]["consumer"]["id"],
        by_custom["data"][0]["id"]
    );

    // A plugin on the service: every config field with its default, scopes as references.
    let plugin = api.expect(
        "POST",
        "/services/billing/plugins",
        Some(json!({"name": "key-auth", "config": {"key_names": ["x-key"]}, "tags": ["team-a"]})),
        201,
    );
    assert_eq!(plugin["service"], json!({"id": svc_id}));
    assert_eq!(
        (
            &plugin["route"],
            &plugin["consumer"],
            &plugin["instance_name"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(plugin["enabled"], true);
    assert_eq!(
        plugin["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    assert_eq!(plugin["config"]["key_names"], json!(["x-key"]));
    assert_eq!(plugin["config"]["hide_credentials"], false);
    assert_eq!(plugin["config"]["key_in_header"], true);
    assert_eq!(plugin["config"]["anonymous"], Value::Null);
    let plugin_id = plugin["id"].as_str().expect("id").to_owned();
    let dup = api.expect(
        "POST",
        "/plugins",
        Some(json!({"name": "key-auth", "service": {"id": svc_id}})),
        409,
    );
    assert_eq!(dup["code"], 5);
    let bad = api.expect(
        "POST",
        "/consumers/bob/plugins",
        Some(json!({"name": "key-auth"})),
        400,
    );
    assert_eq!(
        bad["code"], 2,
        "key-auth cannot be scoped to a consumer: {bad}"
    );
    let listed = api.expect("GET", "/services/billing/plugins", None, 200);
    assert_eq!(listed["data"][0]["id"], plugin_id.as_str());
    let patched = api.expect(
        "PATCH",
        &format!("/plugins/{plugin_id}"),
        Some(json!({"config": {"hide_credentials": true}})),
        200,
    );
    assert_eq!(
        (
            &patched["config"]["hide_credentials"],
            &patched["config"]["key_names"]
        ),
        (&json!(true), &json!(["x-key"])),
        "PATCH merges into config"
    );

    for i in 0..4 {
        api.expect(
            "POST",
            "/services",
            Some(json!({"name": format!("extra-{i}"), "host": "h", "tags": ["team-b"]})),
            201,
        );
    }
    let first = api.expect("GET", "/services?size=2&tags=team-b", None, 200);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().expect("next link");
    assert!(
        next.starts_with("/services?offset=") && next.ends_with("&tags=team-b&size=2"),
        "{next}"
    );
    let second = api.expect("GET", next, None, 200);
    assert_eq!(second["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["next"], Value::Null);
    assert!(second.get("offset").is_none(), "no offset on the last page");

    let patched = api.expect(
        "PATCH",
        "/services/billing",
        Some(json!({"retries": 3})),
        200,
    );
    assert_eq!(
        (patched["retries"].clone(), patched["host"].clone()),
        (json!(3), json!("billing.internal"))
    );
    let upserted = api.expect(
        "PUT",
        "/services/fresh",
        Some(json!({"host": "fresh.internal"})),
        200,
    );
    assert_eq!(upserted["name"], "fresh");

    let refused = api.expect("DELETE", "/services/billing", None, 400);
    assert_eq!(
        refused,
        json!({"code": 4, "name": "foreign key violation", "message": "an existing 'routes' entity references this 'services' entity", "fields": {"@referenced_by": "routes"}})
    );
    api.expect("DELETE", "/routes/billing-route", None, 204);
    api.expect("DELETE", "/services/billing", None, 204);
    api.expect("GET", &format!("/plugins/{plugin_id}"), None, 404);
    api.expect("DELETE", "/services/billing", None, 204);
    api.expect("GET", "/services/billing", None, 404);

    api.expect("DELETE", "/consumers/bob", None, 204);
    let keys = api.expect("GET", "/key-auths", None, 200);
    assert_eq!(
        keys["data"],
        json!([]),
        "credentials go with their consumer"
    );
}

#[test]
fn bad_requests_get_kong_shaped_answers() {
    let kong = Kong::start("");
    let api = Admin(&kong);
    let bad_json = send(
        "POST",
        &kong.admin("/services"),
        &[("content-type", "application/json")],
        Some("{nope".into()),
    );
    assert_eq!(
        (bad_json.status, bad_json.json()),
        (400, json!({"message": "Cannot parse JSON body"}))
    );
    let wrong_type = send(
        "POST",
        &kong.admin("/services"),
        &[("content-type", "text/plain")],
        Some("host=x".into()),
    );
    assert_eq!(wrong_type.status, 415);
    let invalid = api.expect(
        "POST",
        "/services",
        Some(json!({"host": "h", "port": "eighty", "flavour": 1})),
        400,
    );
    assert_eq!(invalid["code"], 2);
    assert_eq!(
        invalid["fields"],
        json!({"port": "expected an integer", "flavour": "unknown field"})
    );
    assert_eq!(
        api.expect("GET", "/services/ghost", None, 404),
        json!({"message": "Not found"})
    );
    let missing = api.expect("PATCH", "/services/ghost", Some(json!({"retries": 1})), 404);
    assert_eq!(missing["code"], 6);
    assert_eq!(
        missing["message"],
        "could not find the entity with '{name=\"ghost\"}'"
    );
    let pk = api.expect("GET", "/ca_certificates/not-a-uuid", None, 400);
    assert_eq!(
        pk["message"],
        "invalid primary key: '{id=\"expected a valid UUID\"}'"
    );
    assert_eq!(
        api.expect("GET", "/no-such-thing", None, 404),
        json!({"message": "Not found"})
    );
    assert_eq!(
        api.expect("PUT", "/services", None, 405),
        json!({"message": "Method not allowed"})
    );
    api.expect("GET", "/targets", None, 404);
    let offset = api.expect("GET", "/services?offset=%25%25", None, 400);
    assert_eq!(offset["code"], 7);
    let size = api.expect("GET", "/services?size=abc", None, 400);
    assert_eq!(size["message"], "size must be a number");
    let tags = api.expect("GET", "/services?tags=a,b/c", None, 400);
    assert_eq!(tags["options"], json!({"tags": "invalid filter syntax"}));
    let options = api.call("OPTIONS", "/services", None);
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
    api.expect("GET", "/services/", None, 200);
}

#[test]
fn dbless_reads_work_and_writes_answer_405() {
    let kong = Kong::start("database = off");
    let api = Admin(&kong);
    assert_eq!(
        api.expect("GET", "/services", None, 200),
        json!({"data": [], "next": null})
    );
    let refused = api.expect("POST", "/services", Some(json!({"host": "h"})), 405);
    assert_eq!(
        refused,
        json!({"code": 12, "name": "operation unsupported", "message": "cannot create 'services' entities when not using a database"})
    );
    api.expect("DELETE", "/services/ghost", None, 204);
    api.expect("PATCH", "/services/ghost", Some(json!({})), 404);
}

#[test]
fn schemas_validate_and_tags() {
    let kong = Kong::start("");
    let api = Admin(&kong);
    let schema = api.expect("GET", "/schemas/services", None, 200);
    let fields = schema["fields"].as_array().expect("fields");
    assert_eq!(
        fields[0],
        json!({"id": {"type": "string", "uuid": true, "auto": true}})
    );
    let retries = fields
        .iter()
        .find_map(|f| f.get("retries"))
        .expect("retries");
    assert_eq!(
        retries,
        &json!({"type": "integer", "default": 5, "between": [0, 32767]})
    );
    let cert = fields
        .iter()
        .find_map(|f| f.get("client_certificate"))
        .expect("client_certificate");
    assert_eq!(
        cert,
        &json!({"type": "foreign", "reference": "certificates", "on_delete": "restrict"})
    );
    assert!(schema["entity_checks"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    let healthchecks = api.expect("GET", "/schemas/upstreams", None, 200);
    assert!(
        healthchecks.to_string().contains("\"http_statuses\""),
        "nested records are rendered"
    );
    assert_eq!(
        api.expect("GET", "/schemas/nope", None, 404),
        json!({"message": "No entity named 'nope'"})
    );
    assert_eq!(
        api.expect(
            "POST",
            "/schemas/services/validate",
            Some(json!({"host": "h"})),
            200
        ),
        json!({"message": "schema validation successful"})
    );
    let invalid = api.expect(
        "POST",
        "/schemas/routes/validate",
        Some(json!({"paths": ["x"]})),
        400,
    );
    assert_eq!(invalid["code"], 2);
    assert_eq!(
        api.expect("GET", "/services", None, 200)["data"],
        json!([]),
        "validation stores nothing"
    );
    let enabled = api.expect("GET", "/plugins/enabled", None, 200)["enabled_plugins"].clone();
    let names: Vec<&str> = enabled
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(names.contains(&"request-termination"), "{enabled}");
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {enabled}");
    assert_eq!(
        api.expect("GET", "/schemas/plugins/no-such-plugin", None, 404),
        json!({"message": "No plugin named 'no-such-plugin'"})
    );

    api.expect(
        "POST",
        "/services",
        Some(json!({"name": "a", "host": "h", "tags": ["blue", "green"]})),
        201,
    );
    api.expect(
        "POST",
        "/consumers",
        Some(json!({"username": "u", "tags": ["blue"]})),
        201,
    );
    let all = api.expect("GET", "/tags", None, 200);
    let entries: Vec<(String, String)> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| {
            (
                e["tag"].as_str().unwrap_or("").to_owned(),
                e["entity_name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("blue".into(), "consumers".into()),
            ("blue".into(), "services".into()),
            ("green".into(), "services".into())
        ]
    );
    let blue = api.expect("GET", "/tags/blue?size=1", None, 200);
    assert_eq!(blue["data"][0]["entity_name"], "consumers");
    let next = blue["next"].as_str().expect("next");
    assert!(next.starts_with("/tags/blue?offset="), "{next}");
    let rest = api.expect("GET", next, None, 200);
    assert_eq!(
        (rest["data"][0]["entity_name"].clone(), rest["next"].clone()),
        (json!("services"), Value::Null)
    );
    let bad = api.expect("GET", "/tags/%FF", None, 400);
    assert!(bad["message"].as_str().is_some_and(|m| m.contains("utf-8")));
}

#[test]
fn form_and_multipart_bodies_are_typed_by_the_schema() {
    let kong = Kong::start("");
    let form = |path: &str, body: &str| {
        send(
            "POST",
            &kong.admin(path),
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.to_owned()),
        )
    };
    let svc = form(
        "/services",
        "name=f&url=http://f.internal:81&retries=3&tags[]=a&tags[]=b&tls_verify=",
    );
    assert_eq!(svc.status, 201, "{}", svc.body);
    let svc = svc.json();
    assert_eq!(
        (
            svc["retries"].clone(),
            svc["port"].clone(),
            svc["tags"].clone()
        ),
        (json!(3), json!(81), json!(["a", "b"]))
    );
    assert_eq!(svc["tls_verify"], Value::Null, "empty means null");
    let route = form(
        "/routes",
        "paths=/only&service.name=f&methods[1]=GET&methods[2]=POST",
    );
    assert_eq!(route.status, 201, "{}", route.body);
    let route = route.json();
    assert_eq!(
        route["paths"],
        json!(["/only"]),
        "a single value for an array field"
    );
    assert_eq!(route["methods"], json!(["GET", "POST"]));
    assert_eq!(route["service"]["id"], svc["id"]);
    let bad = form("/services", "host=h&port=eighty");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["fields"]["port"], "expected an integer");

    let boundary = "XyZ";
    let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nmulti\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"tags[]\"\r\n\r\nx\r\n--{boundary}--\r\n");
    let ct = format!("multipart/form-data; boundary={boundary}");
    let consumer = send(
        "POST",
        &kong.admin("/consumers"),
        &[("content-type", ct.as_str())],
        Some(body),
    );
    assert_eq!(consumer.status, 201, "{}", consumer.body);
    assert_eq!(consumer.json()["tags"], json!(["x"]));
    let two = send(
        "POST",
        &kong.admin("/consumers"),
        &[
            ("content-type", "application/json"),
            ("content-type", "application/json"),
        ],
        Some("{}".into()),
    );
    assert_eq!(
        (two.status, two.json()),
        (
            400,
            json!({"message": "Multiple Content-Type headers not allowed"})
        )
    );
}

#[test]
fn odd_paths_and_huge_bodies_are_answered_cleanly() {
    let kong = Kong::start("");
    let api = Admin(&kong);
    let unicode = api.expect(
        "PUT",
        "/services/%E2%9C%93-svc",
        Some(json!({"host": "h"})),
        200,
    );
    assert_eq!(
        unicode["name"], "✓-svc",
        "percent-encoded names are decoded"
    );
    assert_eq!(
        api.expect("GET", "/services/%E2%9C%93-svc", None, 200)["id"],
        unicode["id"]
    );
    for odd in [
        "/services/%FF%FE",
        "/services/a%2Fb",
        "/services/..%2F..%2Fetc",
        "/services/%00",
    ] {
        assert_eq!(
            api.expect("GET", odd, None, 404),
            json!({"message": "Not found"}),
            "{odd}"
        );
    }
    let bad_name = api.expect(
        "PUT",
        "/services/has%20space",
        Some(json!({"host": "h"})),
        400,
    );
    assert!(
        bad_name["fields"]["name"]
            .as_str()
            .is_some_and(|m| m.contains("invalid value")),
        "{bad_name}"
    );
    let huge = format!("{{\"host\": \"{}\"}}", "x".repeat(11 * 1024 * 1024));
    // The node answers 413 as soon as it sees the length and closes the connection; a client
    // still sending may see that close before the answer. Either way nothing is stored.
    let r = crate::support::http::try_send(
        "POST",
        &kong.admin("/services"),
        &[("content-type", "application/json")],
        Some(huge),
    );
    if let Ok(r) = r {
        assert_eq!(r.status, 413, "{}", r.body);
        assert!(r.json()["message"].is_string());
    }
    assert_eq!(
        api.expect("GET", "/services", None, 200)["data"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "nothing else stored"
    );
}

#[test]
fn targets_are_addressed_by_their_address_within_their_upstream() {
    let kong = Kong::start("");
    let api = Admin(&kong);
    api.expect(
        "POST",
        "/upstreams",
        Some(json!({"name": "pool.internal"})),
        201,
    );
    let t = api.expect(
        "POST",
        "/upstreams/pool.internal/targets",
        Some(json!({"target": "10.0.0.1"})),
        201,
    );
    assert_eq!(t["target"], "10.0.0.1:8000");
    let by_address = api.expect(
        "GET",
        "/upstreams/pool.internal/targets/10.0.0.1",
        None,
        200,
    );
    assert_eq!(by_address["id"], t["id"], "the default port is implied");
    let patched = api.expect(
        "PUT",
        "/upstreams/pool.internal/targets/10.0.0.1:8000",
        Some(json!({"weight": 5})),
        200,
    );
    assert_eq!(
        (patched["id"].clone(), patched["weight"].clone()),
        (t["id"].clone(), json!(5))
    );
    api.expect(
        "PUT",
        "/upstreams/pool.internal/targets/10.0.0.2",
        Some(json!({"weight": 5})),
        404,
    );
    let all = api.expect("GET", "/upstreams/pool.internal/targets/all", None, 200);
    assert_eq!(all["data"].as_array().map(Vec::len), Some(1));
    api.expect(
        "DELETE",
        "/upstreams/pool.internal/targets/10.0.0.1",
        None,
        204,
    );
    assert_eq!(
        api.expect("GET", "/upstreams/pool.internal/targets", None, 200)["data"],
        json!([])
    );
}
