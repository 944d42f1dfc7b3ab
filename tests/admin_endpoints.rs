//! `/endpoints` and `/openapi.json` stay true: every listed endpoint is served with the listed
//! methods, and the OpenAPI document describes exactly those endpoints.

use serde_json::json;

use crate::support::http::{get, send};
use crate::support::kong::Kong;

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| match s {
            "{db_entity_name}" => "services".to_owned(),
            s if s.starts_with('{') => "00000000-0000-4000-8000-000000000000".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn endpoints_and_openapi_describe_what_is_served() {
    let kong = Kong::start("");
    let endpoints = get(&kong.admin("/endpoints")).json();
    let paths: Vec<String> = endpoints["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    assert!(
        paths.contains(&"/services/{services}/routes/{routes}".to_owned()),
        "{paths:?}"
    );
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "sorted");

    let openapi = get(&kong.admin("/openapi.json")).json();
    assert_eq!(openapi["openapi"], "3.0.3");
    let documented = openapi["paths"].as_object().expect("paths");
    assert_eq!(
        documented.len(),
        paths.len(),
        "one OpenAPI path per endpoint"
    );
    assert!(
        openapi["components"]["schemas"]["services"]["properties"]["retries"]["default"]
            == json!(5)
    );

    for path in &paths {
        let item = documented
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from openapi.json"));
        let methods: Vec<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| *k != "parameters")
            .map(|k| k.to_ascii_uppercase())
            .collect();
        let url = kong.admin(&concrete(path));
        let options = send("OPTIONS", &url, &[], None);
        if options.status == 204 {
            // Generated endpoints answer OPTIONS with what they allow.
            let allow = options.header("allow").unwrap_or_default().to_owned();
            for m in &methods {
                assert!(
                    allow.contains(m.as_str()),
                    "{path}: {m} documented, allowed: {allow}"
                );
            }
            continue;
        }
        for m in &methods {
            let body = (m == "POST").then(|| "{}".to_owned());
            let r = send(m, &url, &[("content-type", "application/json")], body);
            assert_ne!(r.status, 405, "{m} {path} is documented but not allowed");
            // A key that is not cached is the one documented endpoint whose answer is Kong's
            // plain "Not found".
            let expected_miss = path == "/cache/{key}";
            let routed_miss = r.status == 404 && r.body.contains("\"Not found\"") && !expected_miss;
            assert!(
                !routed_miss,
                "{m} {path} is documented but not routed: {}",
                r.body
            );
        }
    }
}
