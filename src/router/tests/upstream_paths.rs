//! Upstream paths through the whole router: service path × route path × strip_path ×
//! request, for prefix paths, for the same paths written as regexes, and for routes matched by
//! host alone. `path_handling` never changes the result in this flavor.

use serde_json::{json, Value};

use super::*;
use crate::router::normalize_path;

/// Both values of `strip_path`.
const BOTH: &[bool] = &[false, true];
const STRIP: &[bool] = &[true];
const KEEP: &[bool] = &[false];

/// (service path, route path (None: matched by host), strip_path values, raw request path,
/// expected upstream path).
type Row = (
    &'static str,
    Option<&'static str>,
    &'static [bool],
    &'static str,
    &'static str,
);

const ROWS: &[Row] = &[
    ("/", Some("/"), BOTH, "/", "/"),
    ("/", Some("/"), BOTH, "/route", "/route"),
    ("/", Some("/"), BOTH, "/route/", "/route/"),
    ("/", Some("/"), BOTH, "/routereq", "/routereq"),
    ("/", Some("/"), BOTH, "/route/req", "/route/req"),
    ("/", Some("/route"), KEEP, "/route", "/route"),
    ("/", Some("/route"), KEEP, "/route/", "/route/"),
    ("/", Some("/route"), KEEP, "/routereq", "/routereq"),
    ("/", Some("/route"), STRIP, "/route", "/"),
    ("/", Some("/route"), STRIP, "/route/", "/"),
    ("/", Some("/route"), STRIP, "/routereq", "/req"),
    ("/", Some("/route/"), KEEP, "/route/", "/route/"),
    ("/", Some("/route/"), KEEP, "/route/req", "/route/req"),
    ("/", Some("/route/"), STRIP, "/route/", "/"),
    ("/", Some("/route/"), STRIP, "/route/req", "/req"),
    ("/srv", Some("/rou"), KEEP, "/roureq", "/srv/roureq"),
    ("/srv", Some("/rou"), STRIP, "/roureq", "/srv/req"),
    ("/srv/", Some("/rou"), KEEP, "/rou", "/srv/rou"),
    ("/srv/", Some("/rou"), STRIP, "/rou", "/srv"),
    ("/service", Some("/"), BOTH, "/", "/service"),
    ("/service", Some("/"), BOTH, "/route", "/service/route"),
    ("/service", Some("/"), BOTH, "/route/", "/service/route/"),
    (
        "/service",
        Some("/"),
        BOTH,
        "/routereq",
        "/service/routereq",
    ),
    (
        "/service",
        Some("/"),
        BOTH,
        "/route/req",
        "/service/route/req",
    ),
    ("/service", Some("/route"), KEEP, "/route", "/service/route"),
    (
        "/service",
        Some("/route"),
        KEEP,
        "/route/",
        "/service/route/",
    ),
    (
        "/service",
        Some("/route"),
        KEEP,
        "/routereq",
        "/service/routereq",
    ),
    ("/service", Some("/route"), STRIP, "/route", "/service"),
    ("/service", Some("/route"), STRIP, "/route/", "/service/"),
    (
        "/service",
        Some("/route"),
        STRIP,
        "/routereq",
        "/service/req",
    ),
    (
        "/service",
        Some("/route/"),
        KEEP,
        "/route/",
        "/service/route/",
    ),
    (
        "/service",
        Some("/route/"),
        KEEP,
        "/route/req",
        "/service/route/req",
    ),
    ("/service", Some("/route/"), STRIP, "/route/", "/service/"),
    (
        "/service",
        Some("/route/"),
        STRIP,
        "/route/req",
        "/service/req",
    ),
    ("/service/", Some("/"), BOTH, "/route/", "/service/route/"),
    ("/service/", Some("/"), BOTH, "/", "/service/"),
    ("/service/", Some("/"), BOTH, "/route", "/service/route"),
    (
        "/service/",
        Some("/"),
        BOTH,
        "/routereq",
        "/service/routereq",
    ),
    (
        "/service/",
        Some("/"),
        BOTH,
        "/route/req",
        "/service/route/req",
    ),
    (
        "/service/",
        Some("/route"),
        KEEP,
        "/route",
        "/service/route",
    ),
    (
        "/service/",
        Some("/route"),
        KEEP,
        "/route/",
        "/service/route/",
    ),
    (
        "/service/",
        Some("/route"),
        KEEP,
        "/routereq",
        "/service/routereq",
    ),
    ("/service/", Some("/route"), STRIP, "/route", "/service"),
    ("/service/", Some("/route"), STRIP, "/route/", "/service/"),
    (
        "/service/",
        Some("/route"),
        STRIP,
        "/routereq",
        "/service/req",
    ),
    (
        "/service/",
        Some("/route/"),
        KEEP,
        "/route/",
        "/service/route/",
    ),
    (
        "/service/",
        Some("/route/"),
        KEEP,
        "/route/req",
        "/service/route/req",
    ),
    ("/service/", Some("/route/"), STRIP, "/route/", "/service/"),
    (
        "/service/",
        Some("/route/"),
        STRIP,
        "/route/req",
        "/service/req",
    ),
    ("/", None, BOTH, "/", "/"),
    ("/", None, BOTH, "/route", "/route"),
    ("/", None, BOTH, "/route/", "/route/"),
    ("/service", None, BOTH, "/", "/service"),
    ("/service", None, BOTH, "/route", "/service/route"),
    ("/service", None, BOTH, "/route/", "/service/route/"),
    ("/service/", None, BOTH, "/", "/service/"),
    ("/service/", None, BOTH, "/route", "/service/route"),
    ("/service/", None, BOTH, "/route/", "/service/route/"),
    // Stripping never leaves a dot segment behind, escaped or not.
    (
        "/service",
        Some("/route"),
        STRIP,
        "/route./req",
        "/service/req",
    ),
    (
        "/service/",
        Some("/route"),
        STRIP,
        "/route./req",
        "/service/req",
    ),
    (
        "/service",
        Some("/route"),
        STRIP,
        "/route%2E/req",
        "/service/req",
    ),
    (
        "/service/",
        Some("/route"),
        STRIP,
        "/route%2e/req",
        "/service/req",
    ),
    (
        "/service",
        Some("/route"),
        STRIP,
        "/route../req",
        "/service/req",
    ),
    (
        "/service/",
        Some("/route"),
        STRIP,
        "/route../req",
        "/service/req",
    ),
    (
        "/service",
        Some("/route"),
        STRIP,
        "/route%2E%2E/req",
        "/service/req",
    ),
    (
        "/service/",
        Some("/route"),
        STRIP,
        "/route%2e%2E/req",
        "/service/req",
    ),
    (
        "/service",
        Some("/route"),
        KEEP,
        "/route./req",
        "/service/route./req",
    ),
    (
        "/service/",
        Some("/route"),
        KEEP,
        "/route./req",
        "/service/route./req",
    ),
    (
        "/service",
        Some("/route"),
        KEEP,
        "/route%2E/req",
        "/service/route./req",
    ),
    (
        "/service",
        Some("/route"),
        KEEP,
        "/route../req",
        "/service/route../req",
    ),
    (
        "/service/",
        Some("/route"),
        KEEP,
        "/route%2e%2E/req",
        "/service/route../req",
    ),
];

fn upstream(service_path: &str, route_fields: Value, strip: bool, raw: &str) -> String {
    let mut fields = route_fields;
    if let Some(o) = fields.as_object_mut() {
        o.insert("strip_path".into(), json!(strip));
    }
    let routes = vec![route(1, fields)];
    let services = vec![service(SVC, json!({"path": service_path}))];
    let r = Router::build(&routes, &services).expect("builds");
    let path = normalize_path(raw).expect("utf-8").into_owned();
    let req = get("localbin.test", &path);
    let m = r.find(&req.info()).expect("matches");
    m.upstream_path.to_string()
}

#[test]
fn upstream_path_v0_table_with_prefix_paths_and_hosts() {
    for &(s, p, strips, raw, want) in ROWS {
        for &strip in strips {
            let fields = match p {
                Some(p) => json!({"paths": [p]}),
                None => json!({"hosts": ["localbin.test"]}),
            };
            let got = upstream(s, fields, strip, raw);
            assert_eq!(
                got, want,
                "service {s}, route {p:?}, strip {strip}, request {raw}"
            );
        }
    }
}

#[test]
fn upstream_path_v0_table_with_the_same_paths_as_regexes() {
    for &(s, p, strips, raw, want) in ROWS {
        let Some(p) = p else { continue };
        for &strip in strips {
            // `[0]?` matches nothing here: the regex consumes exactly the prefix.
            let regex = format!("~/[0]?{}", &p[1..]);
            let got = upstream(s, json!({"paths": [regex]}), strip, raw);
            assert_eq!(
                got, want,
                "service {s}, route {regex}, strip {strip}, request {raw}"
            );
        }
    }
}

#[test]
fn upstream_path_ignores_path_handling_v1() {
    let fields = json!({"paths": ["/rou"], "path_handling": "v1"});
    assert_eq!(upstream("/srv", fields, true, "/roureq"), "/srv/req");
}

#[test]
fn upstream_path_defaults_to_root_without_service_path() {
    let fields = json!({"paths": ["/fv0"]});
    let routes = vec![route(1, fields)];
    let services = vec![service(SVC, json!({"path": null}))];
    let r = Router::build(&routes, &services).expect("builds");
    let req = get("x", "/fv0/");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.upstream_path, "/");
    let r = router(vec![route(
        1,
        json!({"paths": ["/fv0"], "strip_path": false}),
    )]);
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.upstream_path, "/fv0/");
}

#[test]
fn stripped_prefix_is_the_matched_path_only_when_stripping() {
    let r = router(vec![
        route(1, json!({"paths": ["/hello"]})),
        route(2, json!({"paths": ["/keep"], "strip_path": false})),
    ]);
    let req = get("x", "/hello/world");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.stripped_prefix, Some("/hello"));
    assert_eq!(m.upstream_path, "/world");
    let req = get("x", "/keep/it");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.matched_path, Some("/keep"));
    assert_eq!(m.stripped_prefix, None);
}

#[test]
fn regex_strip_removes_the_whole_match() {
    let r = router(vec![route(1, json!({"paths": [r"~/users/\d+/"]}))]);
    let req = get("x", "/users/42/profile");
    let m = r.find(&req.info()).expect("matches");
    assert_eq!(m.stripped_prefix, Some("/users/42/"));
    assert_eq!(m.upstream_path, "/profile");
}
