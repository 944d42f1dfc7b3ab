//! Stored data the router refuses, and the guarantee that no input makes it panic.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::router::RouterError;

fn build(routes: Vec<Doc>) -> Result<Router, RouterError> {
    Router::build(&routes, &[service(SVC, json!({}))])
}

fn err(routes: Vec<Doc>) -> String {
    match build(routes) {
        Ok(_) => panic!("expected a build error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn build_error_names_the_route_field_and_reason() {
    let e = err(vec![route(1, json!({"paths": "/not-an-array"}))]);
    assert_eq!(
        e,
        format!(
            "route {}: field 'paths': expected an array of strings",
            rid(1)
        )
    );
}

#[test]
fn build_error_for_wrong_json_types() {
    for fields in [
        json!({"paths": [1]}),
        json!({"hosts": "a.test"}),
        json!({"methods": [true]}),
        json!({"paths": ["/a"], "strip_path": "yes"}),
        json!({"paths": ["/a"], "regex_priority": "high"}),
        json!({"paths": ["/a"], "regex_priority": 1.5}),
        json!({"paths": ["/a"], "headers": ["x"]}),
        json!({"paths": ["/a"], "headers": {"x": "y"}}),
        json!({"paths": ["/a"], "headers": {"x": [1]}}),
        json!({"paths": ["/a"], "protocols": "http"}),
        json!({"paths": ["/a"], "protocols": ["gopher"]}),
        json!({"paths": ["/a"], "service": "svc"}),
        json!({"paths": ["/a"], "path_handling": "v2"}),
        json!({"paths": ["/a"], "https_redirect_status_code": 400}),
        json!({"paths": ["/a"], "https_redirect_status_code": 70000}),
    ] {
        assert!(build(vec![route(1, fields.clone())]).is_err(), "{fields}");
    }
}

#[test]
fn build_error_for_a_route_id_that_is_not_a_uuid() {
    let mut doc = route(1, json!({"paths": ["/a"]}));
    doc.insert("id".into(), json!("route-one"));
    assert!(err(vec![doc]).contains("expected a UUID"));
    let mut doc = route(1, json!({"paths": ["/a"]}));
    doc.remove("id");
    assert!(err(vec![doc]).contains("field 'id'"));
}

#[test]
fn build_error_for_an_unknown_service() {
    let doc = route(1, json!({"paths": ["/a"], "service": {"id": "nope"}}));
    assert_eq!(
        err(vec![doc]),
        format!("route {}: service nope not found", rid(1))
    );
}

#[test]
fn build_error_for_a_bad_service() {
    let routes = vec![route(1, json!({"paths": ["/a"]}))];
    for fields in [
        json!({"host": null}),
        json!({"port": "80"}),
        json!({"port": 70000}),
        json!({"protocol": "ftp"}),
        json!({"retries": -1}),
        json!({"enabled": "no"}),
    ] {
        let services = vec![service(SVC, fields.clone())];
        assert!(Router::build(&routes, &services).is_err(), "{fields}");
    }
}

#[test]
fn build_error_for_duplicate_route_ids() {
    let e = err(vec![
        route(1, json!({"paths": ["/a"]})),
        route(1, json!({"paths": ["/b"]})),
    ]);
    assert_eq!(e, format!("route {}: duplicate id", rid(1)));
}

#[test]
fn build_error_for_an_invalid_regex_path() {
    let e = err(vec![route(1, json!({"paths": ["~/(unclosed"]}))]);
    assert!(
        e.starts_with(&format!("route {}: invalid regex '~/(unclosed'", rid(1))),
        "{e}"
    );
}

#[test]
fn build_error_for_an_invalid_header_regex() {
    let e = err(vec![route(1, json!({"headers": {"x": ["~*["]}}))]);
    assert!(e.contains("invalid regex '~*['"), "{e}");
}

#[test]
fn build_error_for_a_header_without_values() {
    let e = err(vec![route(1, json!({"headers": {"x": []}}))]);
    assert!(e.contains("non-empty array"), "{e}");
}

#[test]
fn build_error_for_a_route_with_nothing_to_match() {
    let e = err(vec![route(1, json!({"paths": [], "hosts": null}))]);
    assert_eq!(
        e,
        format!(
            "route {}: no methods, hosts, headers, paths or snis to match on",
            rid(1)
        )
    );
}

#[test]
fn build_error_for_sources_or_expression_on_http_routes() {
    let e = err(vec![route(
        1,
        json!({"paths": ["/a"], "sources": [{"ip": "10.0.0.1"}]}),
    )]);
    assert!(e.contains("'sources': not supported"), "{e}");
    let e = err(vec![route(1, json!({"expression": "http.path == \"/a\""}))]);
    assert!(e.contains("'expression'"), "{e}");
}

#[test]
fn build_accepts_nulls_for_optional_fields() {
    let r = build(vec![route(
        1,
        json!({"paths": ["/a"], "hosts": null, "methods": null, "headers": null,
               "snis": null, "sources": null, "destinations": null, "name": null,
               "regex_priority": null, "path_handling": null, "tags": null}),
    )]);
    assert!(r.is_ok());
}

#[test]
fn build_of_nothing_matches_nothing() {
    let r = build(Vec::new()).expect("builds");
    assert!(r.is_empty());
    assert_no_match(&r, &get("x", "/"));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[~/*.a-z:0-9(?<>)|\\[\\]{}\\\\ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_-]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const ROUTE_FIELDS: &[&str] = &[
    "id",
    "protocols",
    "methods",
    "hosts",
    "paths",
    "headers",
    "snis",
    "sources",
    "destinations",
    "regex_priority",
    "strip_path",
    "preserve_host",
    "path_handling",
    "https_redirect_status_code",
    "service",
    "request_buffering",
    "response_buffering",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn build_never_panics_on_arbitrary_field_values(
        values in prop::collection::vec((0..ROUTE_FIELDS.len(), arb_json()), 1..6),
        path in "[/a-z~.%0-9]{0,10}",
        host in "[a-z.:*0-9]{0,10}",
    ) {
        let mut doc = route(1, json!({"paths": ["/a"]}));
        for (i, v) in values {
            doc.insert(ROUTE_FIELDS[i].into(), v);
        }
        if let Ok(r) = build(vec![doc]) {
            let _ = r.find(&get(&host, &path).info());
        }
    }
}
