//! What each attribute matches.

use serde_json::json;

use super::*;

#[test]
fn host_exact_matches_the_host_header_without_its_port() {
    let r = router(vec![route(1, json!({"hosts": ["domain-1.org"]}))]);
    assert_routes_to(&r, &get("domain-1.org", "/"), 1);
    assert_routes_to(&r, &get("domain-1.org:80", "/"), 1);
    assert_routes_to(&r, &get("domain-1.org:123", "/"), 1);
    assert_no_match(&r, &get("domain-2.org", "/"));
    assert_no_match(&r, &get("sub.domain-1.org", "/"));
}

#[test]
fn host_comparison_is_case_sensitive() {
    let r = router(vec![route(1, json!({"hosts": ["example.com"]}))]);
    assert_no_match(&r, &get("Example.com", "/"));
}

#[test]
fn host_without_header_matches_only_hostless_routes() {
    let r = router(vec![
        route(1, json!({"hosts": ["example.com"], "paths": ["/a"]})),
        route(2, json!({"paths": ["/a"]})),
    ]);
    assert_routes_to(&r, &get("", "/a").no_host(), 2);
    assert_routes_to(&r, &get("example.com", "/a"), 1);
}

#[test]
fn host_with_port_requires_that_port() {
    let r = router(vec![
        route(1, json!({"hosts": ["domain-1.org:321", "domain-2.org"]})),
        route(2, json!({"hosts": ["domain-3.org:321"]})),
    ]);
    assert_routes_to(&r, &get("domain-1.org:321", "/"), 1);
    assert_no_match(&r, &get("domain-1.org:123", "/"));
    assert_routes_to(&r, &get("domain-2.org:9", "/"), 1);
    assert_routes_to(&r, &get("domain-3.org:321", "/"), 2);
    assert_no_match(&r, &get("domain-3.org:123", "/"));
}

#[test]
fn host_with_port_uses_the_listening_port_when_the_header_has_none() {
    let r = router(vec![route(1, json!({"hosts": ["example.com:8000"]}))]);
    assert_routes_to(&r, &get("example.com", "/").port(8000), 1);
    assert_no_match(&r, &get("example.com", "/").port(8001));
    // The header's port wins over the listening port.
    assert_no_match(&r, &get("example.com:8001", "/").port(8000));
}

#[test]
fn host_leading_wildcard_matches_any_subdomain() {
    let r = router(vec![route(1, json!({"hosts": ["*.route.com"]}))]);
    assert_routes_to(&r, &get("foo.route.com", "/"), 1);
    assert_routes_to(&r, &get("a.b.route.com", "/"), 1);
    assert_routes_to(&r, &get("foo.route.com:123", "/"), 1);
    assert_no_match(&r, &get("route.com", "/"));
    assert_no_match(&r, &get("foo.route.org", "/"));
}

#[test]
fn host_trailing_wildcard_matches_any_top_level() {
    let r = router(vec![route(1, json!({"hosts": ["route.*"]}))]);
    assert_routes_to(&r, &get("route.org", "/"), 1);
    assert_routes_to(&r, &get("route.co.uk", "/"), 1);
    assert_routes_to(&r, &get("route.org:123", "/"), 1);
    assert_no_match(&r, &get("myroute.org", "/"));
}

#[test]
fn host_wildcard_with_port_requires_that_port() {
    let r = router(vec![route(1, json!({"hosts": ["*.route.net:123"]}))]);
    assert_routes_to(&r, &get("foo.route.net:123", "/"), 1);
    assert_no_match(&r, &get("foo.route.net:124", "/"));
    assert_no_match(&r, &get("foo.route.net", "/"));
    assert_routes_to(&r, &get("foo.route.net", "/").port(123), 1);
}

#[test]
fn host_ipv6_literal_is_never_split_at_a_colon() {
    let r = router(vec![route(1, json!({"hosts": ["[::1]"]}))]);
    assert_no_match(&r, &get("[::1]:80", "/"));
}

#[test]
fn path_prefix_matches_from_the_start_only() {
    let r = router(vec![route(1, json!({"paths": ["/my-route"]}))]);
    assert_routes_to(&r, &get("x", "/my-route"), 1);
    assert_routes_to(&r, &get("x", "/my-route/hello"), 1);
    assert_routes_to(&r, &get("x", "/my-routeX"), 1);
    assert_no_match(&r, &get("x", "/hello/my-route"));
    assert_no_match(&r, &get("x", "/my-rout"));
}

#[test]
fn path_comparison_is_case_sensitive() {
    let r = router(vec![route(1, json!({"paths": ["/Foo"]}))]);
    assert_no_match(&r, &get("x", "/foo"));
    assert_routes_to(&r, &get("x", "/Foo"), 1);
}

#[test]
fn path_regex_is_anchored_at_the_start_not_the_end() {
    let r = router(vec![route(1, json!({"paths": [r"~/users/\d+/profile"]}))]);
    assert_routes_to(&r, &get("x", "/users/123/profile"), 1);
    assert_routes_to(&r, &get("x", "/users/123/profile/more"), 1);
    assert_no_match(&r, &get("x", "/api/users/123/profile"));
    assert_no_match(&r, &get("x", "/users/abc/profile"));
}

#[test]
fn path_regex_end_anchor_is_honoured() {
    let r = router(vec![route(1, json!({"paths": [r"~/status/\d+$"]}))]);
    assert_routes_to(&r, &get("x", "/status/200"), 1);
    assert_no_match(&r, &get("x", "/status/200/x"));
}

#[test]
fn path_regex_with_alternation_is_only_anchored_on_its_first_branch() {
    // As in Kong, `^` is prepended to the pattern as written.
    let r = router(vec![route(1, json!({"paths": ["~/a|/b"]}))]);
    assert_routes_to(&r, &get("x", "/a"), 1);
    assert_routes_to(&r, &get("x", "/x/b"), 1);
}

#[test]
fn path_special_characters_match_literally() {
    let r = router(vec![
        route(1, json!({"paths": [r"/\d"]})),
        route(2, json!({"paths": [r#"~/\d+""#]})),
    ]);
    assert_routes_to(&r, &get("x", r"/\d"), 1);
    assert_routes_to(&r, &get("x", r#"/123""#), 2);
}

#[test]
fn path_matching_uses_the_normalized_path() {
    let r = router(vec![route(1, json!({"paths": ["/users/john doe"]}))]);
    let normalized = crate::router::normalize_path("/users/%6aohn%20doe/./x");
    let path = normalized.map(|c| c.into_owned()).unwrap_or_default();
    assert_routes_to(&r, &get("x", &path), 1);
}

#[test]
fn method_must_be_one_of_the_listed_methods() {
    let r = router(vec![route(1, json!({"methods": ["TRACE", "POST"]}))]);
    assert_routes_to(&r, &get("x", "/").method("TRACE"), 1);
    assert_routes_to(&r, &get("x", "/").method("POST"), 1);
    assert_no_match(&r, &get("x", "/"));
    assert_no_match(&r, &get("x", "/").method("post"));
}

#[test]
fn attributes_are_and_ed_values_are_or_ed() {
    let r = router(vec![route(
        1,
        json!({
            "hosts": ["a.org", "b.org"],
            "methods": ["POST", "PUT"],
            "paths": ["/x", "/y"],
        }),
    )]);
    assert_routes_to(&r, &get("b.org", "/y/1").method("PUT"), 1);
    assert_routes_to(&r, &get("a.org", "/x").method("POST"), 1);
    assert_no_match(&r, &get("c.org", "/x").method("POST"));
    assert_no_match(&r, &get("a.org", "/z").method("POST"));
    assert_no_match(&r, &get("a.org", "/x").method("GET"));
}

#[test]
fn header_values_match_case_insensitively() {
    let r = router(vec![route(1, json!({"headers": {"test1": ["Quote"]}}))]);
    assert_routes_to(&r, &get("x", "/").header("test1", "QUOTE"), 1);
    assert_routes_to(&r, &get("x", "/").header("test1", "quote"), 1);
    assert_routes_to(&r, &get("x", "/").header("test1", "QuoTe"), 1);
    assert_no_match(&r, &get("x", "/").header("test1", "quotes"));
    assert_no_match(&r, &get("x", "/"));
}

#[test]
fn header_names_are_case_insensitive_and_underscore_means_dash() {
    let r = router(vec![
        route(1, json!({"headers": {"X-Version": ["v1"]}})),
        route(2, json!({"headers": {"x_team": ["blue"]}})),
    ]);
    assert_routes_to(&r, &get("x", "/").header("x-version", "v1"), 1);
    assert_routes_to(&r, &get("x", "/").header("x-team", "blue"), 2);
}

#[test]
fn header_any_listed_value_and_any_request_value_may_match() {
    let r = router(vec![route(
        1,
        json!({"headers": {"location": ["my-location-1", "my-location-2"]}}),
    )]);
    assert_routes_to(&r, &get("x", "/").header("location", "my-location-2"), 1);
    let repeated = get("x", "/")
        .header("location", "elsewhere")
        .header("location", "my-location-1");
    assert_routes_to(&r, &repeated, 1);
    assert_no_match(&r, &get("x", "/").header("location", "my-location-3"));
}

#[test]
fn header_every_listed_name_must_match() {
    let r = router(vec![route(1, json!({"headers": {"a": ["1"], "b": ["2"]}}))]);
    assert_routes_to(&r, &get("x", "/").header("a", "1").header("b", "2"), 1);
    assert_no_match(&r, &get("x", "/").header("a", "1"));
}

#[test]
fn header_regex_value_is_case_insensitive_and_unanchored() {
    let r = router(vec![route(
        1,
        json!({"headers": {"user-agent": [r"~*windows|linux|os\s+x\s*[\d\._]+|solaris|bsd"]}}),
    )]);
    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)";
    assert_routes_to(&r, &get("x", "/").header("user-agent", ua), 1);
    assert_routes_to(&r, &get("x", "/").header("user-agent", "LINUX box"), 1);
    assert_no_match(&r, &get("x", "/").header("user-agent", "curl/8"));
}

#[test]
fn header_value_that_is_not_utf8_does_not_match() {
    let r = router(vec![route(1, json!({"headers": {"x-a": ["b"]}}))]);
    let mut req = get("x", "/");
    req.headers.insert(
        HeaderName::from_static("x-a"),
        HeaderValue::from_bytes(b"\xff").unwrap_or(HeaderValue::from_static("")),
    );
    assert_no_match(&r, &req);
}

#[test]
fn sni_is_checked_on_tls_connections_only() {
    let r = router(vec![route(
        1,
        json!({"protocols": ["https"], "snis": ["www.example.org"]}),
    )]);
    assert_routes_to(&r, &get("x", "/").https(Some("www.example.org")), 1);
    assert_no_match(&r, &get("x", "/").https(Some("other.example.org")));
    assert_no_match(&r, &get("x", "/").https(None));
    // Over plain HTTP the SNI condition is void (the proxy then answers 426).
    assert_routes_to(&r, &get("x", "/"), 1);
}

#[test]
fn sni_wildcards_and_trailing_dot() {
    let r = router(vec![
        route(
            1,
            json!({"protocols": ["https"], "snis": ["*.example.org"], "paths": ["/1"]}),
        ),
        route(
            2,
            json!({"protocols": ["https"], "snis": ["example.*"], "paths": ["/2"]}),
        ),
        route(
            3,
            json!({"protocols": ["https"], "snis": ["fqdn.test."], "paths": ["/3"]}),
        ),
    ]);
    assert_routes_to(&r, &get("x", "/1").https(Some("a.example.org")), 1);
    assert_no_match(&r, &get("x", "/1").https(Some("example.org")));
    assert_routes_to(&r, &get("x", "/2").https(Some("example.net")), 2);
    assert_routes_to(&r, &get("x", "/3").https(Some("fqdn.test")), 3);
}

#[test]
fn protocols_do_not_take_part_in_matching() {
    let r = router(vec![route(
        1,
        json!({"protocols": ["https"], "paths": ["/s"]}),
    )]);
    let req = get("x", "/s");
    let m = r.find(&req.info());
    assert!(m.is_some_and(|m| m.protocol_mismatch.is_some()));
}

#[test]
fn disabled_service_makes_its_routes_unroutable() {
    let off = "5a9b1d3e-0000-4000-8000-0000000000ff";
    let routes = vec![
        route(1, json!({"paths": ["/a"], "service": {"id": off}})),
        route(2, json!({"paths": ["/"]})),
    ];
    let services = vec![
        service(SVC, json!({})),
        service(off, json!({"enabled": false})),
    ];
    let r = Router::build(&routes, &services).expect("builds");
    assert_routes_to(&r, &get("x", "/a"), 2);
    assert_eq!(r.len(), 1);
}

#[test]
fn serviceless_route_matches_without_a_service() {
    let mut doc = route(1, json!({"paths": ["/a"]}));
    doc.insert("service".into(), serde_json::Value::Null);
    let r = router(vec![doc]);
    let req = get("x", "/a/b");
    let m = r.find(&req.info()).expect("matches");
    assert!(m.service.is_none());
    assert_eq!(m.upstream_path, "/b");
}

#[test]
fn stream_routes_are_ignored() {
    let r = router(vec![
        route(
            1,
            json!({"protocols": ["tcp"], "sources": [{"ip": "10.0.0.1"}]}),
        ),
        route(
            2,
            json!({"protocols": ["tls_passthrough"], "snis": ["a.test"]}),
        ),
    ]);
    assert!(r.is_empty());
    assert_no_match(&r, &get("a.test", "/"));
}

#[test]
fn route_with_a_stream_service_is_routed_without_it() {
    let tcp = "5a9b1d3e-0000-4000-8000-0000000000aa";
    let routes = vec![route(1, json!({"paths": ["/a"], "service": {"id": tcp}}))];
    let services = vec![service(tcp, json!({"protocol": "tcp", "path": null}))];
    let r = Router::build(&routes, &services).expect("builds");
    let req = get("x", "/a");
    let m = r.find(&req.info()).expect("matches");
    assert!(m.service.is_none());
    assert_eq!(r.warnings().len(), 1);
}

#[test]
fn match_carries_route_and_service_data() {
    let routes = vec![route(
        1,
        json!({
            "name": "r1",
            "paths": ["/a"],
            "preserve_host": true,
            "strip_path": false,
            "request_buffering": false,
            "https_redirect_status_code": 301,
        }),
    )];
    let services = vec![service(
        SVC,
        json!({"name": "s1", "protocol": "https", "host": "api.test", "port": 8443,
               "path": "/base", "connect_timeout": 1, "write_timeout": 2, "read_timeout": 3,
               "retries": 7}),
    )];
    let r = Router::build(&routes, &services).expect("builds");
    let req = get("x", "/a/b");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.route.name.as_deref(), Some("r1"));
    assert!(m.route.preserve_host);
    assert!(!m.route.strip_path);
    assert!(!m.route.request_buffering);
    assert!(m.route.response_buffering);
    assert_eq!(m.route.https_redirect_status_code, 301);
    let s = m.service.expect("service");
    assert_eq!(s.name.as_deref(), Some("s1"));
    assert_eq!(s.protocol, crate::router::Protocol::Https);
    assert_eq!((s.host.as_str(), s.port), ("api.test", 8443));
    assert_eq!(
        (s.connect_timeout, s.write_timeout, s.read_timeout),
        (1, 2, 3)
    );
    assert_eq!(s.retries, 7);
    assert_eq!(m.upstream_path, "/base/a/b");
    assert_eq!(m.matched_path, Some("/a"));
    assert_eq!(m.stripped_prefix, None);
}
