//! Library-level tests of the whole path: text → items → store → export, with a small plugin
//! registry so nested plugins can be covered before the real plugins exist.

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::store::schema::{Field, PluginSchema, PluginSchemas, Record};
use crate::store::EntityKey;

#[derive(Debug)]
struct TestPlugins(Vec<PluginSchema>);

impl PluginSchemas for TestPlugins {
    fn plugin(&self, name: &str) -> Option<&PluginSchema> {
        self.0.iter().find(|p| p.name == name)
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name.clone()).collect()
    }
}

fn plugin(name: &str, config: Record, no_consumer: bool) -> PluginSchema {
    PluginSchema {
        name: name.to_owned(),
        config,
        protocols: None,
        no_consumer,
        no_route: false,
        no_service: false,
    }
}

fn store() -> Store {
    let plugins = TestPlugins(vec![
        plugin("key-auth", Record::new(vec![]), true),
        plugin(
            "rate-limiting",
            Record::new(vec![("minute", Field::integer())]),
            false,
        ),
    ]);
    Store::memory().with_plugins(Arc::new(plugins))
}

async fn load_yaml(store: &Store, text: &str) -> Result<ImportSummary, DeclarativeError> {
    load(store, prepare_text(text, Some("kong.yml"))?, false).await
}

fn lines(e: DeclarativeError) -> Vec<String> {
    match e {
        DeclarativeError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}

async fn get(store: &Store, entity: &str, key: &str) -> Value {
    let key = EntityKey::parse(crate::store::entities::entity(entity).expect("entity"), key)
        .expect("key");
    Value::Object(
        store
            .select(entity, &key)
            .await
            .expect("select")
            .expect("found"),
    )
}

const NESTED: &str = r#"
_format_version: "3.0"
_comment: a document of every nesting form
services:
  - name: svc
    _comment: ignored
    _ignore: [anything, 1]
    url: http://upstream.test:8080/api
    routes:
      - name: r1
        paths: ["/api"]
        plugins:
          - name: key-auth
          - name: rate-limiting
            consumer: alice
            config: { minute: 10 }
    plugins:
      - name: rate-limiting
        config: { minute: 5 }
routes:
  - name: r2
    service: svc
    paths: ["/two"]
    plugins:
      - name: key-auth
consumers:
  - username: alice
    plugins:
      - name: rate-limiting
    keyauth_credentials:
      - key: secret-key
    basicauth_credentials:
      - username: alice-basic
        password: pw
    jwt_secrets:
      - key: jwt-key
    hmacauth_credentials:
      - username: alice-hmac
    acls:
      - group: admins
upstreams:
  - name: upstream.test
    targets:
      - target: 10.0.0.1:8080
      - target: 10.0.0.2
certificates:
  - cert: CERT
    key: KEY
    snis:
      - name: a.test
    services:
      - name: tls-svc
        url: https://tls.test
    upstreams:
      - name: tls.upstream
plugins:
  - name: rate-limiting
    service: svc
    route: r2
    config: { minute: 1 }
"#;

fn with_certificate(text: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["a.test".into()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate")
        .pem();
    let key = key.serialize_pem();
    let indent = |pem: &str| pem.trim_end().replace('\n', "\n      ");
    text.replace("cert: CERT", &format!("cert: |\n      {}", indent(&cert)))
        .replace("key: KEY", &format!("key: |\n      {}", indent(&key)))
}

#[tokio::test]
async fn every_nesting_form_loads_with_parents_filled_in() {
    let store = store();
    let summary = load_yaml(&store, &with_certificate(NESTED))
        .await
        .expect("loads");
    let count = |name: &str| {
        summary
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    };
    assert_eq!(count("services"), 2);
    assert_eq!(count("routes"), 2);
    assert_eq!(count("plugins"), 6);
    assert_eq!(count("targets"), 2);
    assert_eq!(count("snis"), 1);
    assert_eq!(count("upstreams"), 2);
    let svc = get(&store, "services", "svc").await;
    let r1 = get(&store, "routes", "r1").await;
    assert_eq!(r1["service"]["id"], svc["id"]);
    let r2 = get(&store, "routes", "r2").await;
    assert_eq!(
        r2["service"]["id"], svc["id"],
        "top-level reference by name"
    );
    let alice = get(&store, "consumers", "alice").await;
    let cred = get(&store, "keyauth_credentials", "secret-key").await;
    assert_eq!(cred["consumer"]["id"], alice["id"]);
    let tls = get(&store, "services", "tls-svc").await;
    let sni = get(&store, "snis", "a.test").await;
    assert_eq!(tls["client_certificate"]["id"], sni["certificate"]["id"]);
    let upstream = get(&store, "upstreams", "upstream.test").await;
    let targets = store
        .page("targets", &crate::store::PageRequest::default())
        .await
        .expect("targets");
    assert!(targets
        .data
        .iter()
        .all(|t| t["upstream"]["id"] == upstream["id"]));
    let plugins = store
        .page("plugins", &crate::store::PageRequest::default())
        .await
        .expect("plugins");
    let scoped = plugins
        .data
        .iter()
        .find(|p| p["route"]["id"] == r1["id"] && p["name"] == "rate-limiting")
        .expect("route plugin with a consumer");
    assert_eq!(
        scoped["consumer"]["id"], alice["id"],
        "other references in nested children"
    );
}

#[tokio::test]
async fn ids_are_stable_across_loads() {
    let text = with_certificate(NESTED);
    let a = store();
    let b = store();
    load_yaml(&a, &text).await.expect("a");
    load_yaml(&b, &text).await.expect("b");
    for (entity, key) in [
        ("services", "svc"),
        ("routes", "r1"),
        ("consumers", "alice"),
        ("upstreams", "upstream.test"),
        ("basicauth_credentials", "alice-basic"),
    ] {
        assert_eq!(
            get(&a, entity, key).await["id"],
            get(&b, entity, key).await["id"],
            "{entity} {key}"
        );
    }
    assert_eq!(
        get(&a, "services", "svc").await["id"],
        json!(ids::generate("services", "svc").to_string())
    );
    let export_a = export::export(&a).await.expect("export");
    let export_b = export::export(&b).await.expect("export");
    let stable = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("_at:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Random ids remain for entities without a stable key (the certificate, key-auth
    // credentials); everything else matches.
    assert_eq!(
        stable(&export_a).len(),
        stable(&export_b).len(),
        "same shape"
    );
}

#[tokio::test]
async fn errors_name_the_entity_path() {
    let store = store();
    let text = r#"
_format_version: "3.0"
services:
  - name: ok
    host: ok.test
  - name: s1
    host: h.test
    routes:
      - name: bad
        paths: ["/fine", "nope"]
consumers:
  - tags: [x]
plugins:
  - name: nope
upstreams:
  - name: u.test
    targets:
      - target: "not a target!"
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(
        got,
        [
            "services[1].routes[0].paths[1]: should start with: / (fixed path) or ~/ (regex path)",
            "consumers[0]: at least one of these fields must be non-empty: 'custom_id', 'username'",
            "upstreams[0].targets[0].target: Invalid target; not a valid hostname or ip address",
            "plugins[0].name: plugin 'nope' not enabled; add it to the 'plugins' configuration property",
        ]
    );
    assert!(store
        .export()
        .await
        .expect("export")
        .iter()
        .all(|(_, d)| d.is_empty()));
}

#[tokio::test]
async fn references_to_nothing_are_named() {
    let store = store();
    let text = r#"
_format_version: "3.0"
routes:
  - name: r
    service: missing
    paths: ["/"]
  - name: r2
    service: 8a7d3c8e-0000-4000-8000-000000000000
    paths: ["/"]
snis:
  - name: a.test
    certificate: not-a-uuid
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(
        got,
        [
            "snis[0]: invalid reference 'certificate: not-a-uuid' (no such entry in 'certificates')",
            "routes[0]: invalid reference 'service: missing' (no such entry in 'services')",
            "routes[1]: invalid reference 'service: 8a7d3c8e-0000-4000-8000-000000000000' (no such entry in 'services')",
        ]
    );
}

#[tokio::test]
async fn a_failed_entity_does_not_drag_its_referrers_along() {
    let store = store();
    let text = r#"
_format_version: "3.0"
services:
  - name: svc
    host: "bad host"
    routes:
      - name: r
        paths: ["/"]
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("services[0].host: "), "{got:?}");
}

#[tokio::test]
async fn duplicates_are_refused_by_key_and_by_id() {
    let store = store();
    let text = r#"
_format_version: "3.0"
services:
  - name: svc
    host: a.test
  - name: svc
    host: b.test
  - id: 0b5e4d2a-0000-4000-8000-000000000001
    host: c.test
  - id: 0B5E4D2A-0000-4000-8000-000000000001
    host: d.test
consumers:
  - username: bob
    custom_id: c1
  - username: carol
    custom_id: c1
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(
        got,
        [
            "services[1]: uniqueness violation: 'services' entity with name set to 'svc' already declared",
            "services[3]: uniqueness violation: 'services' entity with primary key set to '0b5e4d2a-0000-4000-8000-000000000001' already declared",
            "consumers[1]: uniqueness violation: 'consumers' entity with custom_id set to 'c1' already declared",
        ]
    );
}

#[tokio::test]
async fn legacy_formats_migrate_route_paths() {
    let store = store();
    let text = r#"
_format_version: "1.1"
services:
  - name: svc
    host: a.test
    routes:
      - name: r
        paths: ["/users/\\d+", "/plain//x"]
"#;
    load_yaml(&store, text).await.expect("loads");
    let r = get(&store, "routes", "r").await;
    assert_eq!(r["paths"], json!(["~/users/\\d+", "/plain/x"]));
}

#[tokio::test]
async fn transform_false_keeps_stored_hashes() {
    let text = |transform: bool| {
        format!(
            "_format_version: '3.0'\n_transform: {transform}\nconsumers:\n  - username: a\n    basicauth_credentials:\n      - username: u\n        password: already-hashed\n"
        )
    };
    let hashed = store();
    load_yaml(&hashed, &text(true)).await.expect("loads");
    let raw = store();
    load_yaml(&raw, &text(false)).await.expect("loads");
    assert_ne!(
        get(&hashed, "basicauth_credentials", "u").await["password"],
        "already-hashed"
    );
    assert_eq!(
        get(&raw, "basicauth_credentials", "u").await["password"],
        "already-hashed"
    );
}

#[tokio::test]
async fn exports_load_back_into_the_same_document() {
    let first = store();
    load_yaml(&first, &with_certificate(NESTED))
        .await
        .expect("loads");
    let exported = export::export(&first).await.expect("export");
    assert!(exported.starts_with("_format_version: \"3.0\"\n_transform: false\n"));
    let second = store();
    load_yaml(&second, &exported).await.expect("export loads");
    let again = export::export(&second).await.expect("export");
    assert_eq!(exported, again);
}

#[tokio::test]
async fn replacing_keeps_the_old_state_on_error() {
    let store = store();
    let ok = "_format_version: '3.0'\nservices:\n  - name: a\n    host: a.test\n";
    let applied = apply(&store, ok, None).await.expect("applies");
    assert_eq!(applied.hash, configuration_hash(ok));
    assert_eq!(applied.hash.len(), 32);
    let bad = "_format_version: '3.0'\nservices:\n  - name: b\n";
    assert!(apply(&store, bad, None).await.is_err());
    let exported = export::export(&store).await.expect("export");
    assert!(exported.contains("name: a\n"), "{exported}");
    let replaced = "_format_version: '3.0'\nservices:\n  - name: c\n    host: c.test\n";
    apply(&store, replaced, None).await.expect("applies");
    let exported = export::export(&store).await.expect("export");
    assert!(!exported.contains("name: a\n") && exported.contains("name: c\n"));
}

#[tokio::test]
async fn nested_children_may_name_their_parent_but_no_other() {
    let store = store();
    let text = r#"
_format_version: "3.0"
services:
  - name: svc
    host: a.test
    routes:
      - name: same
        service: svc
        paths: ["/a"]
      - name: other
        service: elsewhere
        paths: ["/b"]
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(got, ["services[0].routes[1].service: value must be null"]);
}

#[tokio::test]
async fn structure_problems_are_reported_with_the_entities_errors() {
    let store = store();
    let text = r#"
_format_version: "3.0"
services: "not a list"
consumers:
  - 42
  - username: x
    _comment: 7
    extra: 1
routes:
  - name: r
    paths: ["/"]
    hosts: "not a list"
"#;
    let got = lines(load_yaml(&store, text).await.expect_err("invalid"));
    assert_eq!(
        got,
        [
            "services: expected an array",
            "consumers[0]: expected a record",
            "consumers[1]._comment: expected a string",
            // The store checks entities in dependency order: routes before consumers.
            "routes[0].hosts: expected an array",
            "consumers[1].extra: unknown field",
        ]
    );
}

/// Every leaf of a document replaced, one at a time, by values that have broken parsers before.
#[tokio::test]
async fn odd_values_anywhere_never_panic() {
    fn leaves(v: &Value, at: Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| {
                let mut p = at.clone();
                p.push(json!(k));
                leaves(v, p, out)
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
                let mut p = at.clone();
                p.push(json!(i));
                leaves(v, p, out)
            }),
            _ => out.push(at),
        }
    }
    fn slot<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
        path.iter().try_fold(v, |v, seg| match seg {
            Value::String(k) => v.get_mut(k.as_str()),
            Value::Number(i) => v.get_mut(i.as_u64().unwrap_or_default() as usize),
            _ => None,
        })
    }
    let base = NESTED
        .replace("cert: CERT", "cert: x")
        .replace("key: KEY", "key: y");
    let doc: Value = serde_norway::from_str(&base).expect("yaml");
    let mut paths = Vec::new();
    leaves(&doc, Vec::new(), &mut paths);
    let odd = [
        json!(""),
        json!("é"),
        json!("%é"),
        json!("/%aé"),
        json!("[::1]:99999"),
        json!("http://"),
        json!("://é"),
        json!("~"),
        json!("~/(("),
        json!("a:b:c"),
        json!("*.*"),
        json!(-1),
        json!(1e300),
        json!(u64::MAX),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!([null]),
        json!({"id": 5}),
        json!("00000000-0000-0000-0000-000000000000"),
    ];
    for path in &paths {
        for value in &odd {
            let mut mangled = doc.clone();
            if let Some(v) = slot(&mut mangled, path) {
                *v = value.clone();
            }
            let text = mangled.to_string();
            if let Ok(prepared) = prepare_text(&text, None) {
                let _ = load(&store(), prepared, false).await;
            }
        }
    }
}

/// A tiny deterministic generator, so the test needs no extra crate and always mutates alike.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

/// Documents cut, grown and sprinkled with syntax, as YAML and as JSON.
#[tokio::test]
async fn mangled_documents_never_panic() {
    let base = NESTED
        .replace("cert: CERT", "cert: x")
        .replace("key: KEY", "key: y");
    let json =
        serde_json::to_string(&serde_norway::from_str::<serde_json::Value>(&base).expect("yaml"))
            .expect("json");
    let junk: &[&str] = &[
        "", "\n", " ", "-", ":", "[", "]", "{", "}", "\"", "'", "&a", "*a", "!!str", "~", "null",
        "1e999", "-1", "é", "%", "/", "\\", "#", ",", "? ", "<<: ", "0x10", "\t",
    ];
    let mut rng = Lcg(7);
    for round in 0..400 {
        let source = if round % 2 == 0 { &base } else { &json };
        let mut text = source.clone();
        for _ in 0..(1 + rng.next() % 4) {
            let mut at = rng.next() % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + rng.next() % 40).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            match rng.next() % 3 {
                0 => text.insert_str(at, junk[rng.next() % junk.len()]),
                1 => text.replace_range(at..end, ""),
                _ => {
                    let piece = text[at..end].to_owned();
                    text.insert_str(at, &piece);
                }
            }
        }
        if let Ok(prepared) = prepare_text(&text, None) {
            let _ = load(&store(), prepared, false).await;
        }
    }
}
