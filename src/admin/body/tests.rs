//! Body decoding as a client sees it: headers and bytes in, document (or Kong's error) out.
//! Examples follow `shared/reference/kong-admin-api.md` §4.1–4.2; the property tests at the end
//! feed arbitrary input and check nothing panics and JSON passes through unchanged.

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{decode, BodyError, Decoded};
use crate::store::entities::entity;
use crate::store::schema::{Context, Doc, Field, NoPlugins, Record};

const FORM: &str = "application/x-www-form-urlencoded";
const UUID: &str = "6f1b6a41-5a3c-4a6e-9d55-2a0d0c3b7e11";

fn headers(content_types: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for ct in content_types {
        h.append(CONTENT_TYPE, HeaderValue::from_str(ct).expect("header"));
    }
    h
}

fn decoded(content_type: &str, body: &str) -> Decoded {
    decode(&headers(&[content_type]), body.as_bytes()).expect("decodes")
}

/// A form body coerced by `record`.
fn form_doc(body: &str, record: &Record, any: Option<&Record>) -> Value {
    Value::Object(
        decoded(FORM, body)
            .into_doc(record, any)
            .expect("a document"),
    )
}

fn record_of(entity_name: &str) -> &'static Record {
    &entity(entity_name).expect("entity").record
}

/// A plugin config record in the shape of key-auth / rate-limiting's.
fn plugin_config() -> Record {
    Record::new(vec![
        ("key_names", Field::array(Field::string())),
        ("hide_credentials", Field::boolean()),
        ("minute", Field::number()),
        (
            "headers",
            Field::array(Field::string()), // `config.headers[1]=…` in §4.2
        ),
        (
            "redis",
            Field::record(Record::new(vec![
                ("host", Field::string()),
                ("port", Field::integer()),
                ("ssl", Field::boolean()),
            ])),
        ),
    ])
}

// ---- §4.1 content types ----

#[test]
fn json_objects_are_used_as_they_are() {
    let d = decoded("application/json", r#"{"name":"s","port":"8080"}"#);
    assert_eq!(d.text("name"), Some("s"));
    let doc = d.into_doc(record_of("services"), None).expect("doc");
    // Never coerced: validation reports the string port.
    assert_eq!(Value::Object(doc), json!({"name": "s", "port": "8080"}));
}

#[test]
fn json_content_type_parameters_and_case_are_ignored() {
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ] {
        assert!(matches!(decoded(ct, "{}"), Decoded::Json(_)), "{ct}");
    }
}

#[test]
fn json_that_is_not_an_object_cannot_be_parsed() {
    for body in ["", "  ", "{", "[1]", "[]", "null", "\"s\"", "1", "{} x"] {
        let err = decode(&headers(&["application/json"]), body.as_bytes());
        assert_eq!(err, Err(BodyError::Json), "{body:?}");
    }
    let e = BodyError::Json;
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert_eq!(e.message().as_deref(), Some("Cannot parse JSON body"));
}

#[test]
fn no_content_type_is_fine_only_without_a_body() {
    let none = HeaderMap::new();
    assert_eq!(decode(&none, b""), Ok(Decoded::Empty));
    assert_eq!(
        Decoded::Empty.into_doc(&Record::default(), None),
        Ok(Doc::new())
    );
    assert_eq!(
        decode(&none, b"name=x"),
        Err(BodyError::UnsupportedMediaType)
    );
}

#[test]
fn unknown_media_types_are_415_with_an_empty_body() {
    for ct in [
        "text/plain",
        "application/xml",
        "",
        "application/jsonx",
        "multipart/mixed; boundary=x",
    ] {
        let got = decode(&headers(&[ct]), b"{}");
        assert_eq!(got, Err(BodyError::UnsupportedMediaType), "{ct:?}");
    }
    // A header value that is not visible ASCII.
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_bytes(b"application/json\xff").expect("header"),
    );
    assert_eq!(decode(&h, b"{}"), Err(BodyError::UnsupportedMediaType));
    let e = BodyError::UnsupportedMediaType;
    assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(e.message(), None);
}

#[test]
fn multiple_content_type_headers_are_refused() {
    let h = headers(&["application/json", "application/json"]);
    let e = decode(&h, b"{}").expect_err("refused");
    assert_eq!(e, BodyError::MultipleContentTypes);
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        e.message().as_deref(),
        Some("Multiple Content-Type headers not allowed")
    );
}

#[test]
fn yaml_is_raw_text_for_config_only() {
    for ct in ["application/yaml", "text/yaml; charset=utf-8"] {
        let d = decoded(ct, "_format_version: \"3.0\"\n");
        assert_eq!(d, Decoded::Yaml("_format_version: \"3.0\"\n".into()));
        assert_eq!(
            d.into_doc(&Record::default(), None),
            Err(BodyError::UnsupportedMediaType)
        );
    }
}

#[test]
fn too_many_form_fields_is_kongs_400() {
    let body = "a=1&".repeat(1001);
    let e = decode(&headers(&[FORM]), body.as_bytes()).expect_err("too many");
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert_eq!(e.message().as_deref(), Some("Too many arguments"));
}

// ---- §4.2 form decoding ----

#[test]
fn dots_and_brackets_both_nest() {
    let empty = Record::default();
    assert_eq!(form_doc("a.b=1", &empty, None), json!({"a": {"b": "1"}}));
    assert_eq!(form_doc("a[b]=1", &empty, None), json!({"a": {"b": "1"}}));
    assert_eq!(
        form_doc("a%5Bb%5D=1&a.c=2", &empty, None),
        json!({"a": {"b": "1", "c": "2"}})
    );
}

#[test]
fn arrays_by_brackets_indexes_and_repeated_keys() {
    let empty = Record::default();
    assert_eq!(
        form_doc("a[]=x&a[]=y", &empty, None),
        json!({"a": ["x", "y"]})
    );
    assert_eq!(form_doc("a[1]=x", &empty, None), json!({"a": ["x"]}));
    assert_eq!(
        form_doc("a[2]=y&a[1]=x", &empty, None),
        json!({"a": ["x", "y"]})
    );
    assert_eq!(form_doc("a=x&a=y", &empty, None), json!({"a": ["x", "y"]}));
    assert_eq!(
        form_doc("a%5B%5D=x&a%5b%5d=y", &empty, None),
        json!({"a": ["x", "y"]})
    );
    assert_eq!(
        form_doc("a[1][b]=x&a[2][b]=y", &empty, None),
        json!({"a": [{"b": "x"}, {"b": "y"}]})
    );
}

#[test]
fn plus_is_a_space_and_bare_keys_are_true() {
    let empty = Record::default();
    assert_eq!(
        form_doc("a=hello+world%2B&flag", &empty, None),
        json!({"a": "hello world+", "flag": true})
    );
}

#[test]
fn service_fields_are_typed_by_the_schema() {
    let doc = form_doc(
        "name=s&host=example.com&port=8080&retries=abc&connect_timeout=1.5&enabled=true&tags=one&path=",
        record_of("services"),
        None,
    );
    assert_eq!(
        doc,
        json!({
            "name": "s",
            "host": "example.com",
            "port": 8080,
            "retries": "abc",
            "connect_timeout": 1.5,
            "enabled": true,
            "tags": ["one"],
            "path": null,
        })
    );
}

#[test]
fn booleans_accept_only_true_and_false() {
    let doc = form_doc("enabled=TRUE&tls_verify=false", record_of("services"), None);
    assert_eq!(doc, json!({"enabled": "TRUE", "tls_verify": false}));
}

#[test]
fn route_arrays_sets_maps_and_foreign_keys() {
    let doc = form_doc(
        &format!(
            "paths[2]=/b&paths[1]=/a&methods=GET&hosts[]=&headers.x-one[]=a&headers.x-one[]=b\
             &headers.x-two=c&service.id={UUID}&regex_priority=-3&strip_path=false"
        ),
        record_of("routes"),
        None,
    );
    assert_eq!(
        doc,
        json!({
            "paths": ["/a", "/b"],
            "methods": ["GET"],
            // `hosts[]=` is an empty list (Lua drops the nil), `hosts=` would be null.
            "hosts": [],
            "headers": {"x-one": ["a", "b"], "x-two": ["c"]},
            "service": {"id": UUID},
            "regex_priority": -3,
            "strip_path": false,
        })
    );
    let by_name = form_doc("service.name=svc&service[id]=", record_of("routes"), None);
    assert_eq!(by_name, json!({"service": {"name": "svc", "id": null}}));
    let unlinked = form_doc("service=", record_of("routes"), None);
    assert_eq!(unlinked, json!({"service": null}));
}

#[test]
fn nested_records_recurse() {
    let doc = form_doc(
        "healthchecks.active.healthy.http_statuses[]=200&healthchecks.active.healthy.http_statuses[]=302\
         &healthchecks.active.unhealthy.http_statuses=500&healthchecks.threshold=12.5\
         &healthchecks.active.healthy.interval=0&healthchecks.active.bogus=1&slots=100",
        record_of("upstreams"),
        None,
    );
    assert_eq!(
        doc,
        json!({
            "healthchecks": {
                "active": {
                    "healthy": {"http_statuses": [200, 302], "interval": 0},
                    "unhealthy": {"http_statuses": [500]},
                    "bogus": "1",
                },
                "threshold": 12.5,
            },
            "slots": 100,
        })
    );
}

#[test]
fn plugin_config_is_typed_by_the_given_record() {
    let body = "name=key-auth&config.key_names=apikey&config.hide_credentials=true&config.minute=5\
                &config.headers[1]=x-a&config.headers[2]=x-b&config.redis.port=6379\
                &config.redis.host=&config.unknown=7";
    let d = decoded(FORM, body);
    assert_eq!(d.text("name"), Some("key-auth"));
    let config = plugin_config();
    let doc = Value::Object(
        d.clone()
            .into_doc(record_of("plugins"), Some(&config))
            .expect("doc"),
    );
    assert_eq!(
        doc["config"],
        json!({
            "key_names": ["apikey"],
            "hide_credentials": true,
            "minute": 5,
            "headers": ["x-a", "x-b"],
            "redis": {"port": 6379, "host": null},
            "unknown": "7",
        })
    );
    // Without the plugin's record the values stay text.
    let doc = Value::Object(d.into_doc(record_of("plugins"), None).expect("doc"));
    assert_eq!(doc["config"]["minute"], json!("5"));
    assert_eq!(doc["config"]["headers"], json!(["x-a", "x-b"]));
}

#[test]
fn unknown_keys_and_ttl() {
    let doc = form_doc("foo=1&bar=&ttl=10&baz[x]=", record_of("services"), None);
    assert_eq!(
        doc,
        json!({"foo": "1", "bar": "", "ttl": 10, "baz": {"x": ""}})
    );
}

#[test]
fn values_that_do_not_fit_stay_for_validation_to_report() {
    let doc = form_doc(
        "port[a]=1&name[]=x&tags.a=b&service=abc",
        record_of("routes"),
        None,
    );
    assert_eq!(
        doc,
        json!({
            "port": {"a": "1"},
            "name": ["x"],
            "tags": {"a": "b"},
            "service": "abc",
        })
    );
    let doc = form_doc("retries=abc", record_of("services"), None);
    let doc = doc.as_object().cloned().expect("object");
    let ctx = Context {
        plugins: &NoPlugins,
    };
    let errs = entity("services")
        .expect("services")
        .validate(doc, &ctx)
        .expect_err("invalid");
    assert!(
        errs.flattened()
            .iter()
            .any(|e| e.contains("expected an integer")),
        "{errs}"
    );
}

#[test]
fn a_form_route_validates() {
    let doc = form_doc(
        &format!("name=r&paths[]=/a&methods=GET&service.id={UUID}&strip_path=false"),
        record_of("routes"),
        None,
    );
    let ctx = Context {
        plugins: &NoPlugins,
    };
    let route = entity("routes")
        .expect("routes")
        .validate(doc.as_object().cloned().expect("object"), &ctx)
        .expect("valid");
    assert_eq!(route["paths"], json!(["/a"]));
    assert_eq!(route["strip_path"], json!(false));
    assert_eq!(route["service"], json!({"id": UUID}));
}

// ---- multipart ----

fn multipart_body(boundary: &str, parts: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, content) in parts {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{content}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

#[test]
fn multipart_parts_are_form_fields() {
    let body = multipart_body(
        "------abc",
        &[
            ("name", "s"),
            ("host", "example.com"),
            ("port", "8080"),
            ("tags[]", "a"),
            ("tags[]", "b"),
            ("client_certificate.id", UUID),
            ("path", ""),
        ],
    );
    let d = decoded("multipart/form-data; boundary=------abc", &body);
    let doc = d.into_doc(record_of("services"), None).expect("doc");
    assert_eq!(
        Value::Object(doc),
        json!({
            "name": "s",
            "host": "example.com",
            "port": 8080,
            "tags": ["a", "b"],
            "client_certificate": {"id": UUID},
            "path": null,
        })
    );
}

#[test]
fn multipart_boundary_may_be_quoted() {
    let body = multipart_body("a b", &[("name", "s")]);
    let d = decoded(
        r#"multipart/form-data; charset=utf-8; BOUNDARY="a b""#,
        &body,
    );
    assert_eq!(d.text("name"), Some("s"));
}

#[test]
fn broken_multipart_is_400() {
    let h = headers(&["multipart/form-data"]);
    let e = decode(&h, b"--x\r\n\r\n--x--").expect_err("no boundary");
    assert_eq!(
        e.message().as_deref(),
        Some("Cannot parse multipart/form-data body: missing boundary")
    );
    let h = headers(&["multipart/form-data; boundary=x"]);
    let e = decode(
        &h,
        b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
    )
    .expect_err("cut");
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
}

// ---- properties ----

/// Content types worth mixing with random bytes: every supported one, with parameters.
fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just(FORM.to_owned()),
        Just("multipart/form-data; boundary=b".to_owned()),
        Just("multipart/form-data".to_owned()),
        Just("text/yaml".to_owned()),
        "[ -~]{0,40}",
        "(application|multipart|text)/[a-z-]{0,20}(; ?[a-z]{1,8}=\"?[ -~]{0,8}\"?)?",
    ]
}

/// Form keys built from the characters the key syntax cares about.
fn form_key() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-z]{1,3}",
            Just(".".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("[]".to_owned()),
            "\\[[0-9]{1,3}\\]",
            "\\[[a-z.]{0,3}\\]",
            Just("%5B".to_owned()),
            Just("%5d".to_owned()),
            "[0-9]{1,20}",
            "[ -~]",
        ],
        1..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no infinities or NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Runs both steps against several schemas; only a panic fails.
fn both_steps(headers: &HeaderMap, body: &[u8]) {
    if let Ok(d) = decode(headers, body) {
        let config = plugin_config();
        for name in ["services", "routes", "plugins", "upstreams"] {
            let _ = d.clone().into_doc(record_of(name), Some(&config));
            let _ = d.clone().into_doc(record_of(name), None);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(ct in content_type(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(value) = HeaderValue::from_str(&ct) {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, value);
            both_steps(&h, &body);
        }
        both_steps(&HeaderMap::new(), &body);
    }

    #[test]
    fn arbitrary_form_keys_never_panic(
        pairs in proptest::collection::vec((form_key(), "[ -~]{0,6}"), 0..16),
    ) {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        both_steps(&headers(&[FORM]), body.join("&").as_bytes());
        let parts: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| !k.contains('"'))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = multipart_body("#b#", &parts);
        let h = headers(&["multipart/form-data; boundary=#b#"]);
        prop_assert!(decode(&h, body.as_bytes()).is_ok());
        both_steps(&h, body.as_bytes());
    }

    #[test]
    fn damaged_multipart_never_panics(
        pairs in proptest::collection::vec((form_key(), "[ -~\r\n]{0,12}"), 0..6),
        cut in any::<proptest::sample::Index>(),
        at in any::<proptest::sample::Index>(),
        splice in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let parts: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| !k.contains('"'))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let whole = multipart_body("b", &parts).into_bytes();
        let h = headers(&["multipart/form-data; boundary=b"]);
        both_steps(&h, &whole[..cut.index(whole.len() + 1)]);
        let mut spliced = whole.clone();
        let i = at.index(whole.len() + 1);
        spliced.splice(i..i, splice);
        both_steps(&h, &spliced);
    }

    #[test]
    fn json_objects_round_trip_unchanged(
        object in proptest::collection::btree_map(".{0,8}", json_value(), 0..8),
    ) {
        let object: Doc = object.into_iter().collect();
        let body = serde_json::to_vec(&object).expect("serialises");
        let d = decode(&headers(&["application/json"]), &body).expect("decodes");
        let config = plugin_config();
        let doc = d.into_doc(record_of("services"), Some(&config)).expect("doc");
        prop_assert_eq!(doc, object);
    }

    #[test]
    fn simple_form_values_round_trip(
        fields in proptest::collection::btree_map("[a-z_]{1,10}", "\\PC{0,20}", 1..8),
    ) {
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let d = decode(&headers(&[FORM]), body.join("&").as_bytes()).expect("decodes");
        let doc = d.into_doc(&Record::default(), None).expect("doc");
        let want: Doc = fields.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        prop_assert_eq!(&doc, &want);

        let parts: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let body = multipart_body("--=_b", &parts);
        let h = headers(&["multipart/form-data; boundary=\"--=_b\""]);
        let doc = decode(&h, body.as_bytes()).expect("decodes").into_doc(&Record::default(), None).expect("doc");
        prop_assert_eq!(doc, want);
    }
}
