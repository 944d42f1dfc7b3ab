//! Which route wins when several match.

use serde_json::json;

use super::*;

#[test]
fn match_weight_more_attributes_win_over_a_longer_prefix() {
    let r = router(vec![
        route(1, json!({"paths": ["/a/b/c/d"]})),
        route(2, json!({"paths": ["/a"], "methods": ["GET"]})),
    ]);
    assert_routes_to(&r, &get("x", "/a/b/c/d"), 2);
    assert_routes_to(&r, &get("x", "/a/b/c/d").method("POST"), 1);
}

#[test]
fn match_weight_host_and_uri_beat_method() {
    let r = router(vec![
        route(1, json!({"hosts": ["domain-1.org", "domain-2.org"]})),
        route(2, json!({"methods": ["TRACE"]})),
        route(3, json!({"paths": ["/my-route"]})),
        route(
            4,
            json!({"paths": ["/route-4"], "hosts": ["domain-1.org", "domain-2.org"]}),
        ),
        route(
            5,
            json!({"hosts": ["domain-1.org", "domain-2.org"], "methods": ["POST", "PUT"]}),
        ),
        route(
            6,
            json!({"methods": ["POST", "PUT"], "paths": ["/route-6"]}),
        ),
    ]);
    // host (1) and method (2) both match with weight 1; a plain host is the more specific.
    assert_routes_to(&r, &get("domain-2.org", "/").method("TRACE"), 1);
    // uri (3) and method (2): a prefix path adds its length to the priority.
    assert_routes_to(&r, &get("domain.org", "/my-route").method("TRACE"), 3);
    assert_routes_to(&r, &get("domain-1.org", "/route-4").method("TRACE"), 4);
    assert_routes_to(&r, &get("domain-1.org", "/route-4").method("PUT"), 4);
    assert_routes_to(&r, &get("domain-1.org", "/x").method("PUT"), 5);
    assert_routes_to(&r, &get("domain.org", "/route-6").method("PUT"), 6);
}

#[test]
fn method_does_not_supersede_a_prefix_path() {
    let r = router(vec![
        route(2, json!({"methods": ["GET"]})),
        route(1, json!({"paths": ["/example"]})),
    ]);
    assert_routes_to(&r, &get("d", "/example"), 1);
    assert_routes_to(&r, &get("d", "/example/status/200"), 1);
    assert_routes_to(&r, &get("d", "/other"), 2);
}

#[test]
fn root_path_is_a_catch_all_below_longer_prefixes() {
    let r = router(vec![
        route(1, json!({"paths": ["/"]})),
        route(2, json!({"paths": ["/my-route"]})),
    ]);
    assert_routes_to(&r, &get("d", "/my-route/hello/world"), 2);
    assert_routes_to(&r, &get("d", "/foobar/baz"), 1);
    assert_routes_to(&r, &get("d", "/"), 1);
}

#[test]
fn longest_prefix_wins() {
    let r = router(vec![
        route(1, json!({"paths": ["/a"]})),
        route(2, json!({"paths": ["/a/bb"]})),
        route(3, json!({"paths": ["/a/b"]})),
    ]);
    assert_routes_to(&r, &get("d", "/a/bb/foobar"), 2);
    assert_routes_to(&r, &get("d", "/a/b/foobar"), 3);
    assert_routes_to(&r, &get("d", "/a/c"), 1);
}

#[test]
fn plain_host_beats_wildcard_host() {
    let r = router(vec![
        route(1, json!({"hosts": ["plain.route.com"]})),
        route(2, json!({"hosts": ["*.route.com"]})),
        route(3, json!({"hosts": ["route.*"]})),
        route(4, json!({"hosts": ["route.com"]})),
    ]);
    assert_routes_to(&r, &get("route.com", "/"), 4);
    assert_routes_to(&r, &get("route.org", "/"), 3);
    assert_routes_to(&r, &get("plain.route.com", "/"), 1);
    assert_routes_to(&r, &get("foo.route.com", "/"), 2);
}

#[test]
fn route_with_one_wildcard_host_is_not_plain_hosts_only() {
    let r = router(vec![
        route(1, json!({"hosts": ["a.test", "*.a.test"]})),
        route(2, json!({"hosts": ["a.test"]})),
    ]);
    assert_routes_to(&r, &get("a.test", "/"), 2);
    assert_routes_to(&r, &get("b.a.test", "/"), 1);
}

#[test]
fn wildcard_host_plus_path_beats_plain_host_alone() {
    let r = router(vec![
        route(1, json!({"hosts": ["*.route.com"], "paths": ["/path1"]})),
        route(
            2,
            json!({"hosts": ["plain.route.com"], "paths": ["/path2"]}),
        ),
        route(3, json!({"hosts": ["plain.route.com"]})),
    ]);
    assert_routes_to(&r, &get("plain.route.com", "/path1"), 1);
    assert_routes_to(&r, &get("plain.route.com", "/path2"), 2);
    assert_routes_to(&r, &get("plain.route.com", "/path3"), 3);
}

#[test]
fn wildcard_host_with_port_ties_with_wildcard_host_by_id() {
    // Both are one wildcard host: same priority, the larger id is tried first.
    let r = router(vec![
        route(1, json!({"hosts": ["route.*"]})),
        route(2, json!({"hosts": ["route.*:80"]})),
    ]);
    assert_routes_to(&r, &get("route.org", "/"), 2);
    assert_routes_to(&r, &get("route.org:81", "/"), 1);
}

#[test]
fn more_headers_win() {
    let r = router(vec![
        route(1, json!({"headers": {"version": ["v1"]}})),
        route(
            2,
            json!({"headers": {"version": ["v1"], "location": ["here"]}}),
        ),
    ]);
    assert_routes_to(
        &r,
        &get("d", "/")
            .header("version", "v1")
            .header("location", "here"),
        2,
    );
    assert_routes_to(&r, &get("d", "/").header("version", "v1"), 1);
}

#[test]
fn more_headers_beat_longer_paths() {
    let r = router(vec![
        route(
            1,
            json!({"headers": {"version": ["v1"]}, "paths": ["/long/path/here"]}),
        ),
        route(
            2,
            json!({"headers": {"version": ["v1"], "user": ["u"]}, "paths": ["/"]}),
        ),
    ]);
    let req = get("d", "/long/path/here")
        .header("version", "v1")
        .header("user", "u");
    assert_routes_to(&r, &req, 2);
}

#[test]
fn regex_path_beats_prefix_path_of_equal_weight() {
    let r = router(vec![
        route(1, json!({"paths": ["/users/123/profile"]})),
        route(2, json!({"paths": [r"~/users/\d+"]})),
    ]);
    // Even an exact, longer prefix loses to a regex.
    assert_routes_to(&r, &get("d", "/users/123/profile"), 2);
    assert_no_match(&r, &get("d", "/users/abc"));
}

#[test]
fn regex_path_with_host_beats_prefix_path_with_host() {
    let r = router(vec![
        route(1, json!({"hosts": ["h.test"], "paths": ["/route/persons"]})),
        route(
            2,
            json!({"hosts": ["h.test"], "paths": [r"~/route/persons/\d+/profile"]}),
        ),
    ]);
    assert_routes_to(&r, &get("h.test", "/route/persons/456/profile"), 2);
    assert_routes_to(&r, &get("h.test", "/route/persons/x"), 1);
}

#[test]
fn regex_priority_orders_regex_paths() {
    let r = router(vec![
        route(1, json!({"paths": ["~/a/.*"], "regex_priority": 1})),
        route(2, json!({"paths": ["~/a/b"], "regex_priority": 2})),
        route(3, json!({"paths": ["~/a/b/c"], "regex_priority": 0})),
    ]);
    assert_routes_to(&r, &get("d", "/a/b/c"), 2);
    assert_routes_to(&r, &get("d", "/a/x"), 1);
}

#[test]
fn regex_priority_negative_sorts_below_zero() {
    let r = router(vec![
        route(1, json!({"paths": ["~/a"], "regex_priority": -1})),
        route(2, json!({"paths": ["~/a"], "regex_priority": 0})),
        route(3, json!({"paths": ["~/a"], "regex_priority": -5})),
    ]);
    assert_routes_to(&r, &get("d", "/a"), 2);
}

#[test]
fn regex_priority_is_ignored_for_prefix_paths() {
    let r = router(vec![
        route(1, json!({"hosts": ["domain-1.org"], "paths": ["~/.*"]})),
        route(
            2,
            json!({"hosts": ["domain-2.org"], "paths": ["/"], "regex_priority": 5}),
        ),
        route(3, json!({"hosts": ["domain-2.org"], "paths": ["/v1"]})),
    ]);
    assert_routes_to(&r, &get("domain-2.org", "/v1"), 3);
}

#[test]
fn regex_priority_does_not_lift_a_regex_over_more_attributes() {
    let r = router(vec![
        route(1, json!({"paths": ["~/a"], "regex_priority": 1000})),
        route(2, json!({"paths": ["/a"], "methods": ["GET"]})),
    ]);
    assert_routes_to(&r, &get("d", "/a"), 2);
}

#[test]
fn equal_priority_larger_uuid_wins() {
    let r = router(vec![
        route(7, json!({"paths": ["/same"]})),
        route(9, json!({"paths": ["/same"]})),
        route(8, json!({"paths": ["/same"]})),
    ]);
    assert_routes_to(&r, &get("d", "/same"), 9);
}

#[test]
fn equal_priority_ignores_created_at() {
    let mut older = route(1, json!({"paths": ["/same"]}));
    older.insert("created_at".into(), json!(1));
    let mut newer = route(2, json!({"paths": ["/same"]}));
    newer.insert("created_at".into(), json!(2_000_000_000));
    let r = router(vec![older, newer]);
    assert_routes_to(&r, &get("d", "/same"), 2);
}

#[test]
fn equal_priority_same_prefix_different_values_are_tested_in_turn() {
    let mut routes: Vec<_> = (1..6)
        .map(|n| route(n, json!({"hosts": ["domain.org"], "paths": ["/my-uri"]})))
        .collect();
    routes.push(route(
        20,
        json!({"hosts": ["domain.org"], "paths": ["/my-target-uri"]}),
    ));
    let r = router(routes);
    assert_routes_to(&r, &get("domain.org", "/my-target-uri"), 20);
    assert_routes_to(&r, &get("domain.org", "/my-uri"), 5);
}

#[test]
fn split_route_parts_compete_separately() {
    let r = router(vec![
        route(
            1,
            json!({"hosts": ["domain-1.org"], "paths": ["/foo", "/foo/bar/baz"]}),
        ),
        route(2, json!({"hosts": ["domain-1.org"], "paths": ["/foo/bar"]})),
    ]);
    assert_routes_to(&r, &get("domain-1.org", "/foo"), 1);
    assert_routes_to(&r, &get("domain-1.org", "/foo/bar"), 2);
    assert_routes_to(&r, &get("domain-1.org", "/foo/bar/baz"), 1);
}

#[test]
fn split_route_regex_part_and_prefix_part() {
    let r = router(vec![
        route(
            1,
            json!({"hosts": ["domain-1.org"], "paths": ["~/some/thing/else", "/foo"]}),
        ),
        route(2, json!({"hosts": ["domain-1.org"], "paths": ["/foo/bar"]})),
    ]);
    assert_routes_to(&r, &get("domain-1.org", "/some/thing/else"), 1);
    assert_routes_to(&r, &get("domain-1.org", "/foo/bar"), 2);
    assert_routes_to(&r, &get("domain-1.org", "/foo/x"), 1);
}

#[test]
fn split_route_short_path_does_not_supersede_a_longer_prefix() {
    let r = router(vec![
        route(1, json!({"paths": ["/a", "/bbbbbbb"]})),
        route(2, json!({"paths": ["/a/bb"]})),
    ]);
    assert_routes_to(&r, &get("d", "/a/bb/foobar"), 2);
    assert_routes_to(&r, &get("d", "/bbbbbbb/x"), 1);
}

#[test]
fn same_length_prefixes_stay_in_one_part_tested_in_order() {
    let r = router(vec![route(
        1,
        json!({"paths": ["/ab", "/ac"], "strip_path": true}),
    )]);
    let req = get("d", "/ac/x");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.matched_path, Some("/ac"));
    assert_eq!(m.upstream_path, "/x");
}

#[test]
fn first_matching_regex_in_configured_order_is_the_matched_path() {
    let r = router(vec![route(1, json!({"paths": ["~/a/b", "~/a"]}))]);
    let req = get("d", "/a/b/c");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.matched_path, Some("/a/b"));
}

#[test]
fn empty_hosts_array_counts_as_plain_hosts_only() {
    // Kong tests the field's type: `hosts: []` sets the plain-hosts bit without a host.
    let r = router(vec![
        route(1, json!({"paths": ["/a"], "hosts": []})),
        route(2, json!({"paths": ["/a/longer"], "hosts": null})),
    ]);
    assert_routes_to(&r, &get("d", "/a/longer"), 1);
}

#[test]
fn evaluation_order_of_the_proxy_guide_example() {
    // Regexes first, by regex_priority; then prefixes, longest first.
    let r = router(vec![
        route(1, json!({"paths": [r"~/status/\d+"], "regex_priority": 0})),
        route(
            2,
            json!({"paths": [r"~/version/\d+/status/\d+"], "regex_priority": 6}),
        ),
        route(3, json!({"paths": ["/version"]})),
        route(4, json!({"paths": ["/version/any/"]})),
    ]);
    assert_routes_to(&r, &get("d", "/version/1/status/2"), 2);
    assert_routes_to(&r, &get("d", "/status/200"), 1);
    assert_routes_to(&r, &get("d", "/version/any/thing"), 4);
    assert_routes_to(&r, &get("d", "/version/other"), 3);
    let order: Vec<_> = r
        .entries
        .iter()
        .map(|e| r.routes[e.route].info.id.clone())
        .collect();
    assert_eq!(order, vec![rid(2), rid(1), rid(4), rid(3)]);
}
