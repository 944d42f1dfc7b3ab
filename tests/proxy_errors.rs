//! The proxy's error responses (Kong's shapes, negotiated by Accept).

use crate::support::http::send;
use crate::support::kong::Kong;

#[test]
fn no_route_is_a_kong_json_404_with_request_id() {
    let k = Kong::start("");
    let r = send("GET", &k.proxy("/anything"), &[], None);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("server"), Some("kong/3.10.0"));
    assert!(r.header("x-kong-response-latency").is_some());
    let id = r
        .header("x-kong-request-id")
        .expect("request id header")
        .to_string();
    assert_eq!(id.len(), 32);
    let body = r.json();
    assert_eq!(body["message"], "no Route matched with those values");
    assert_eq!(body["request_id"], id.as_str());
}

#[test]
fn error_format_follows_accept() {
    let k = Kong::start("");
    let cases = [
        (
            "text/html",
            "text/html; charset=utf-8",
            "<p>no Route matched with those values.</p>",
        ),
        (
            "application/xml",
            "application/xml; charset=utf-8",
            "<message>no Route matched with those values</message>",
        ),
        (
            "text/plain",
            "text/plain; charset=utf-8",
            "no Route matched with those values\nrequest_id: ",
        ),
        (
            "*/*",
            "application/json; charset=utf-8",
            "\"message\":\"no Route matched with those values\"",
        ),
    ];
    for (accept, ctype, needle) in cases {
        let r = send("GET", &k.proxy("/x"), &[("accept", accept)], None);
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some(ctype), "{accept}");
        assert!(r.body.contains(needle), "{accept}: {}", r.body);
    }
}

#[test]
fn headers_property_controls_response_headers() {
    let k = Kong::start("headers = off");
    let r = send("GET", &k.proxy("/x"), &[], None);
    assert_eq!(r.status, 404);
    assert!(r.header("server").is_none());
    assert!(r.header("x-kong-request-id").is_none());
    assert!(r.header("x-kong-response-latency").is_none());
}

#[test]
fn body_over_client_max_body_size_is_413() {
    let k = Kong::start("nginx_http_client_max_body_size = 1k");
    let r = send(
        "POST",
        &k.proxy("/upload"),
        &[("content-type", "text/plain")],
        Some("x".repeat(2048)),
    );
    assert_eq!(r.status, 413);
    assert!(r.body.contains("Payload too large"), "{}", r.body);
    let small = send("POST", &k.proxy("/upload"), &[], Some("x".repeat(100)));
    assert_eq!(small.status, 404);
}
