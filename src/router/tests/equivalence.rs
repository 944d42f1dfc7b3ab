//! The index finds exactly what a linear scan in priority order finds, on random route sets.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const HOSTS: &[&str] = &[
    "a.test",
    "b.test",
    "*.test",
    "a.*",
    "x.a.test",
    "a.test:8080",
    "*.a.test",
    "b.*:80",
    "*test",
];
const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/b",
    "/ab",
    "/b",
    r"~/a/\d+",
    "~/a",
    "~/(a|b)/x",
    "~/b/[a-z]+$",
    "/a/b/c",
    "~/a?b",
];
const METHODS: &[&str] = &["GET", "POST"];
const REQ_HOSTS: &[Option<&str>] = &[
    Some("a.test"),
    Some("b.test"),
    Some("x.a.test"),
    Some("a.test:8080"),
    Some("a.org"),
    Some("q.b.test"),
    Some("b.org:80"),
    Some("atest"),
    None,
];
const REQ_PATHS: &[&str] = &[
    "/", "/a", "/a/1", "/a/b", "/a/b/c", "/ab", "/b/x", "/b/xyz", "/c", "/a/x", "/b",
];

fn arb_route() -> impl Strategy<Value = Value> {
    (
        prop::sample::subsequence(HOSTS, 0..3),
        prop::sample::subsequence(PATHS, 0..3),
        prop::sample::subsequence(METHODS, 0..2),
        prop::option::of(prop::sample::select(vec!["1", "~*^[12]$"])),
        -2i64..3,
    )
        .prop_map(|(hosts, paths, methods, header, rp)| {
            let mut r = json!({"regex_priority": rp});
            if !hosts.is_empty() {
                r["hosts"] = json!(hosts);
            }
            if !paths.is_empty() {
                r["paths"] = json!(paths);
            }
            if !methods.is_empty() {
                r["methods"] = json!(methods);
            }
            if let Some(h) = header {
                r["headers"] = json!({"x-v": [h]});
            }
            if hosts.is_empty() && paths.is_empty() && methods.is_empty() && header.is_none() {
                r["paths"] = json!(["/"]);
            }
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn index_finds_what_a_linear_scan_finds(
        routes in prop::collection::vec(arb_route(), 1..25),
        requests in prop::collection::vec(
            (
                prop::sample::select(REQ_HOSTS),
                prop::sample::select(REQ_PATHS),
                prop::sample::select(METHODS),
                prop::option::of(prop::sample::select(vec!["1", "2", "3"])),
            ),
            1..20,
        ),
    ) {
        let docs: Vec<Doc> = routes
            .into_iter()
            .enumerate()
            .map(|(i, fields)| route(u32::try_from(i).unwrap_or(0) + 1, fields))
            .collect();
        let r = router(docs);
        for (host, path, method, header) in requests {
            let mut req = get(host.unwrap_or(""), path).method(method);
            if host.is_none() {
                req = req.no_host();
            }
            if let Some(v) = header {
                req = req.header("x-v", v);
            }
            let info = req.info();
            let fast = r.find(&info).map(|m| (m.route.id.clone(), m.matched_path.map(str::to_owned)));
            let slow = r
                .find_linear(&info)
                .map(|m| (m.route.id.clone(), m.matched_path.map(str::to_owned)));
            prop_assert_eq!(fast, slow, "request {:?}", req);
        }
    }
}

#[test]
fn index_scales_to_many_distinct_hosts_and_prefixes() {
    let mut routes = Vec::new();
    for i in 0..2000u32 {
        routes.push(route(
            i + 1,
            json!({"hosts": [format!("h{i}.test")], "paths": ["/"]}),
        ));
        routes.push(route(10_000 + i, json!({"paths": [format!("/p{i}/")]})));
    }
    let r = router(routes);
    assert_routes_to(&r, &get("h1234.test", "/x"), 1235);
    assert_routes_to(&r, &get("nope.test", "/p77/x"), 10_077);
    // A host and a path outweigh a longer path alone.
    assert_routes_to(&r, &get("h5.test", "/p77/x"), 6);
    assert_no_match(&r, &get("nope.test", "/p77"));
}

#[test]
fn rebuild_answers_like_a_fresh_build_with_changed_patterns() {
    let before = router(vec![
        route(1, json!({"paths": [r"~/a/(\d+)"]})),
        route(2, json!({"headers": {"x-v": ["~*^v1$"]}, "paths": ["/h"]})),
    ]);
    let after = vec![
        route(1, json!({"paths": [r"~/a/(\d+)$"]})),
        route(2, json!({"headers": {"x-v": ["~*^v1$"]}, "paths": ["/h"]})),
        route(3, json!({"paths": ["~/b"]})),
    ];
    let services = vec![service(SVC, json!({}))];
    let rebuilt = before.rebuild(&after, &services).expect("rebuilds");
    assert_routes_to(&rebuilt, &get("x", "/a/1"), 1);
    assert_no_match(&rebuilt, &get("x", "/a/1/x"));
    assert_routes_to(&rebuilt, &get("x", "/h").header("x-v", "V1"), 2);
    assert_routes_to(&rebuilt, &get("x", "/b"), 3);
    // The old router is untouched.
    assert_routes_to(&before, &get("x", "/a/1/x"), 1);
}
