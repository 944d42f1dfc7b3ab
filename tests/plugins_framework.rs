//! The plugin framework through the real proxy, with `request-termination` as the plugin:
//! scoping precedence, `enabled`, `protocols`, triggers, echo, the `plugins` property, and the
//! Admin API validating configs with the plugin's schema.

use std::time::Duration;

use serde_json::json;

use crate::support::admin::{admin, service_with_route};
use crate::support::http::send;
use crate::support::kong::{wait_until, Kong};
use crate::support::upstream::EchoUpstream;

/// Waits until `GET path` answers `status`.
fn until_status(kong: &Kong, path: &str, status: u16) -> crate::support::http::Reply {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(5), || {
        let r = send("GET", &kong.proxy(path), &[], None);
        let done = r.status == status;
        last = Some(r);
        done
    });
    let last = last.expect("a reply");
    assert!(
        ok,
        "GET {path} never answered {status}: {} {}",
        last.status, last.body
    );
    last
}

#[test]
fn the_most_specific_instance_applies() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "s1", "url": echo.url()}),
    );
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "s2", "url": echo.url()}),
    );
    admin(
        &kong,
        "POST",
        "/services/s1/routes",
        json!({"name": "r1", "paths": ["/r1"]}),
    );
    admin(
        &kong,
        "POST",
        "/services/s1/routes",
        json!({"name": "r1b", "paths": ["/r1b"]}),
    );
    admin(
        &kong,
        "POST",
        "/services/s2/routes",
        json!({"name": "r2", "paths": ["/r2"]}),
    );
    until_status(&kong, "/r2", 200);

    // Global: every routed request answers 418. Access handlers never run for requests that
    // match no route (those get the 404, as in Kong).
    let global = admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "request-termination", "config": {"status_code": 418, "message": "global"}}),
    );
    let r = until_status(&kong, "/r2", 418);
    assert_eq!(r.json(), json!({"message": "global"}));
    assert!(r.header("x-kong-response-latency").is_some());
    assert!(r.header("x-kong-request-id").is_some());
    until_status(&kong, "/nowhere", 404);

    // Service beats global; route beats service.
    admin(
        &kong,
        "POST",
        "/services/s1/plugins",
        json!({"name": "request-termination", "config": {"status_code": 403, "message": "service"}}),
    );
    admin(
        &kong,
        "POST",
        "/routes/r1/plugins",
        json!({"name": "request-termination", "config": {"status_code": 401}}),
    );
    let r = until_status(&kong, "/r1", 401);
    assert_eq!(
        r.json(),
        json!({"message": "Unauthorized"}),
        "default message"
    );
    assert_eq!(
        until_status(&kong, "/r1b", 403).json()["message"],
        "service"
    );
    assert_eq!(until_status(&kong, "/r2", 418).json()["message"], "global");

    // Disabled instances step aside for the next most specific one.
    let id = global["id"].as_str().expect("id");
    admin(
        &kong,
        "PATCH",
        &format!("/plugins/{id}"),
        json!({"enabled": false}),
    );
    until_status(&kong, "/r2", 200);

    // An instance limited to other protocols does not run.
    admin(
        &kong,
        "PATCH",
        &format!("/plugins/{id}"),
        json!({"enabled": true, "protocols": ["https"]}),
    );
    let r = until_status(&kong, "/r2", 200);
    assert_eq!(r.json()["path"], "/");
}

#[test]
fn triggers_bodies_and_echo() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    service_with_route(
        &kong,
        json!({"name": "s", "url": echo.url()}),
        json!({"name": "t", "paths": ["/t"]}),
    );
    admin(
        &kong,
        "POST",
        "/services/s/routes",
        json!({"name": "b", "paths": ["/b"]}),
    );
    admin(
        &kong,
        "POST",
        "/services/s/routes",
        json!({"name": "e", "paths": ["/e"]}),
    );
    admin(
        &kong,
        "POST",
        "/routes/t/plugins",
        json!({"name": "request-termination", "config": {"trigger": "x-stop"}}),
    );
    admin(
        &kong,
        "POST",
        "/routes/b/plugins",
        json!({"name": "request-termination",
               "config": {"status_code": 200, "body": "<p>hi</p>", "content_type": "text/html"}}),
    );
    admin(
        &kong,
        "POST",
        "/routes/e/plugins",
        json!({"name": "request-termination", "config": {"status_code": 404, "echo": true}}),
    );
    until_status(&kong, "/e", 404);
    // Without the trigger the request goes through.
    assert_eq!(send("GET", &kong.proxy("/t"), &[], None).status, 200);
    let r = send("GET", &kong.proxy("/t"), &[("x-stop", "1")], None);
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), json!({"message": "Service unavailable"}));
    assert_eq!(send("GET", &kong.proxy("/t?x-stop"), &[], None).status, 503);

    let r = send("GET", &kong.proxy("/b"), &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, "<p>hi</p>"));
    assert_eq!(r.header("content-type"), Some("text/html"));

    let r = send(
        "POST",
        &kong.proxy("/e/x?q=1"),
        &[("content-type", "application/json"), ("x-h", "v")],
        Some(r#"{"a":1}"#.into()),
    );
    assert_eq!(r.status, 404);
    let body = r.json();
    assert_eq!(body["message"], "Not found");
    assert_eq!(body["request"]["method"], "POST");
    assert_eq!(body["request"]["path"], "/e/x");
    assert_eq!(body["request"]["query"]["q"], "1");
    assert_eq!(body["request"]["headers"]["x-h"], "v");
    assert_eq!(body["request"]["body"], json!({"a": 1}));
    assert_eq!(body["request"]["raw_body"], r#"{"a":1}"#);
    assert_eq!(body["matched_route"]["name"], "e");
    assert_eq!(body["matched_service"]["name"], "s");
    assert!(body["kong"]["node_id"].is_string());
}

#[test]
fn configs_are_validated_by_the_plugins_schema() {
    let kong = Kong::start("");
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(
            json!({"name": "request-termination", "config": {"status_code": 700, "echo": "yes"}})
                .to_string(),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let body = r.json();
    assert_eq!(body["code"], 2);
    assert_eq!(
        body["fields"]["config"]["status_code"],
        "value should be between 100 and 599"
    );
    assert_eq!(body["fields"]["config"]["echo"], "expected a boolean");
    let r = send(
        "GET",
        &kong.admin("/plugins/schema/request-termination"),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("status_code"), "{}", r.body);
}

#[test]
fn the_plugins_property_limits_what_can_be_configured() {
    let kong = Kong::start("plugins = off");
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(json!({"name": "request-termination"}).to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("plugin 'request-termination' not enabled"),
        "{}",
        r.body
    );
    drop(kong);

    let kong = Kong::configure("plugins = bundled, no-such-plugin");
    let out = kong.run(&["start"]);
    assert!(!out.status.success());
    let text = crate::support::kong::text(&out);
    assert!(
        text.contains("plugin 'no-such-plugin' is enabled but not installed"),
        "{text}"
    );
}
