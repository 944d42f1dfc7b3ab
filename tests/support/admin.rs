//! Admin API calls made by the tests, asserting they succeed.

use serde_json::Value;

use super::http::send;
use super::kong::Kong;

/// Calls the Admin API with a JSON body, asserting a 2xx answer; the answer's JSON (`Null` for
/// an empty body, as a 204 has).
pub fn admin(kong: &Kong, method: &str, path: &str, body: Value) -> Value {
    let r = send(
        method,
        &kong.admin(path),
        &[("content-type", "application/json")],
        Some(body.to_string()),
    );
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Creates a service from `service` (a JSON body with its `name`) and a route on it from
/// `route`; the route's JSON.
pub fn service_with_route(kong: &Kong, service: Value, route: Value) -> Value {
    let name = service["name"]
        .as_str()
        .expect("the service body names the service")
        .to_owned();
    admin(kong, "POST", "/services", service);
    admin(kong, "POST", &format!("/services/{name}/routes"), route)
}
