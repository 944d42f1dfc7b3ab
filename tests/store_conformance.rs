//! The datastore conformance suite: the same cases, word for word, against the embedded
//! SQLite file, a real PostgreSQL server, and the in-memory (DB-less) backend.
//!
//! Each case gets a fresh, migrated, empty store. The cases assert what a user of the Admin API
//! or of declarative files sees: complete entities with Kong's defaults, Kong's error codes and
//! messages, pagination, tag filters, cascades, and all-or-nothing writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kong::store::migrations::{self, Db};
use kong::store::schema::{Field, PluginSchema, PluginSchemas, Record};
use kong::store::{
    DbError, EntityKey, ImportItem, ImportOptions, PageRequest, Store, TagFilter, WriteOptions,
};
use serde_json::{json, Map, Value};

use crate::support::http::rt;
use crate::support::pg::require_pg;

type Case = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Two plugins described the way bundled plugins will be: one that identifies consumers (so it
/// cannot be scoped to one) and one with required config.
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

fn plugins() -> Arc<dyn PluginSchemas> {
    Arc::new(TestPlugins(vec![
        PluginSchema {
            name: "key-auth".into(),
            config: Record::new(vec![
                (
                    "key_names",
                    Field::array(Field::string())
                        .required()
                        .default(json!(["apikey"])),
                ),
                ("hide_credentials", Field::boolean().default(json!(false))),
            ]),
            protocols: Some(vec!["grpc", "grpcs", "http", "https"]),
            no_consumer: true,
            no_route: false,
            no_service: false,
        },
        PluginSchema {
            name: "rate-limiting".into(),
            config: Record::new(vec![
                ("minute", Field::number()),
                (
                    "policy",
                    Field::string()
                        .default(json!("local"))
                        .one_of(&["local", "cluster", "redis"]),
                ),
                (
                    "redis",
                    Field::record(Record::new(vec![
                        ("host", Field::string()),
                        ("port", Field::integer().default(json!(6379))),
                    ])),
                ),
            ]),
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        },
    ]))
}

/// Brings a database to the embedded schema with the same runner `kong migrations` uses.
async fn migrate(db: Db) {
    let list = match db {
        Db::Sqlite { .. } => migrations::SQLITE,
        Db::Postgres { .. } => migrations::POSTGRES,
    };
    migrations::Migrator::new(db, list)
        .up_to_date()
        .await
        .expect("migrations");
}

fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kong.db");
    let store = rt().block_on(async {
        let pool = kong::store::sqlite_pool(&path).await.expect("sqlite");
        migrate(Db::Sqlite {
            pool: pool.clone(),
            database: "kong.db".into(),
        })
        .await;
        Store::sqlite(pool)
    });
    (store, dir)
}

fn postgres_store() -> Option<Store> {
    let pg = require_pg()?;
    let url = pg.fresh_database("conformance").expect("database");
    Some(rt().block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("connect");
        migrate(Db::Postgres {
            pool: pool.clone(),
            database: "conformance".into(),
            schema: None,
        })
        .await;
        Store::postgres(pool)
    }))
}

fn run_sqlite(case: Case) {
    let (store, _dir) = sqlite_store();
    rt().block_on(case(store.with_plugins(plugins())));
}

fn run_postgres(case: Case) {
    let Some(store) = postgres_store() else {
        return;
    };
    rt().block_on(case(store.with_plugins(plugins())));
}

fn run_memory(case: Case) {
    rt().block_on(case(Store::memory().with_plugins(plugins())));
}

/// Declares each case once and runs it on every backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $case() { super::run_sqlite(|s| Box::pin(super::$case(s))) } )* }
        mod postgres { $( #[test] fn $case() { super::run_postgres(|s| Box::pin(super::$case(s))) } )* }
        mod memory { $( #[test] fn $case() { super::run_memory(|s| Box::pin(super::$case(s))) } )* }
    };
}

conformance!(
    services_get_every_field_with_defaults,
    service_url_shorthand_sets_its_parts,
    validation_reports_every_error_at_once,
    unique_fields_conflict,
    lookups_by_id_and_endpoint_key,
    pagination_walks_every_entity_once,
    page_size_and_offset_errors,
    tag_filters_and_or,
    nested_lists_by_parent,
    route_protocol_rules,
    foreign_keys_by_id_and_by_name,
    deletes_restrict_and_cascade,
    upsert_replaces_and_keeps_created_at,
    patch_merges_records,
    plugins_validate_config_with_the_plugin_schema,
    credentials_hash_passwords_and_generate_keys,
    targets_are_normalised_and_unique_per_upstream,
    upstream_algorithm_follows_hash_on,
    import_is_all_or_nothing,
    writes_announce_changes,
    certificates_manage_their_snis,
    ca_certificates_in_use_cannot_be_deleted,
);

fn doc(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("test document must be an object"),
    }
}

fn id(d: &Map<String, Value>) -> String {
    d["id"].as_str().expect("id").to_owned()
}

fn w() -> WriteOptions {
    WriteOptions::default()
}

async fn insert(s: &Store, entity: &str, v: Value) -> Map<String, Value> {
    match s.insert(entity, doc(v.clone()), w()).await {
        Ok(d) => d,
        Err(e) => panic!("insert {entity} {v}: {e} ({e:?})"),
    }
}

async fn insert_err(s: &Store, entity: &str, v: Value) -> DbError {
    match s.insert(entity, doc(v.clone()), w()).await {
        Ok(d) => panic!("insert {entity} {v} should fail, stored {d:?}"),
        Err(e) => e,
    }
}

async fn services_get_every_field_with_defaults(s: Store) {
    let svc = insert(&s, "services", json!({"host": "example.com"})).await;
    assert!(uuid::Uuid::parse_str(&id(&svc)).is_ok());
    assert!(svc["created_at"]
        .as_i64()
        .is_some_and(|t| t > 1_700_000_000));
    assert_eq!(svc["created_at"], svc["updated_at"]);
    for (field, value) in [
        ("name", Value::Null),
        ("retries", json!(5)),
        ("protocol", json!("http")),
        ("port", json!(80)),
        ("path", Value::Null),
        ("connect_timeout", json!(60000)),
        ("write_timeout", json!(60000)),
        ("read_timeout", json!(60000)),
        ("tags", Value::Null),
        ("client_certificate", Value::Null),
        ("tls_verify", Value::Null),
        ("tls_verify_depth", Value::Null),
        ("ca_certificates", Value::Null),
        ("enabled", json!(true)),
    ] {
        assert_eq!(svc.get(field), Some(&value), "field {field}");
    }
    let read = s
        .select("services", &EntityKey::Id(id(&svc)))
        .await
        .expect("select")
        .expect("found");
    assert_eq!(read, svc, "what is read is what was returned");
}

async fn service_url_shorthand_sets_its_parts(s: Store) {
    let svc = insert(
        &s,
        "services",
        json!({"url": "https://api.example.com:8443/v1", "port": 1}),
    )
    .await;
    assert_eq!(svc["protocol"], "https");
    assert_eq!(svc["host"], "api.example.com");
    assert_eq!(svc["port"], 8443);
    assert_eq!(svc["path"], "/v1");
    assert!(svc.get("url").is_none(), "the shorthand is never echoed");
    let svc = insert(&s, "services", json!({"url": "https://secure.example.com"})).await;
    assert_eq!(
        (svc["port"].clone(), svc["path"].clone()),
        (json!(443), Value::Null)
    );
    let err = insert_err(&s, "services", json!({"url": "invalid url"})).await;
    assert_eq!(err.code(), 2);
    let fields = err.details().expect("fields");
    assert_eq!(fields["host"], "required field missing");
    assert_eq!(fields["path"], "should start with: /");
}

async fn validation_reports_every_error_at_once(s: Store) {
    let err = insert_err(
        &s,
        "services",
        json!({"host": "h", "protocol": "ftp", "port": 70000, "retries": 1.5, "colour": "red"}),
    )
    .await;
    assert_eq!(err.code(), 2);
    assert_eq!(err.name(), "schema violation");
    let body = err.to_json();
    assert_eq!(
        body["fields"],
        json!({
            "protocol": "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp, ws, wss",
            "port": "value should be between 0 and 65535",
            "retries": "expected an integer",
            "colour": "unknown field",
        })
    );
    assert_eq!(
        body["message"],
        "4 schema violations (colour: unknown field; port: value should be between 0 and 65535; protocol: expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp, ws, wss; retries: expected an integer)"
    );
    let err = insert_err(
        &s,
        "services",
        json!({"host": "h", "protocol": "tcp", "path": "/x"}),
    )
    .await;
    assert_eq!(
        err.details().expect("fields"),
        json!({"path": "value must be null", "@entity": ["failed conditional validation given value of field 'protocol'"]})
    );
    let err = insert_err(&s, "consumers", json!({})).await;
    assert_eq!(
        err.to_string(),
        "schema violation (at least one of these fields must be non-empty: 'custom_id', 'username')"
    );
    let empty = s
        .page("services", &PageRequest::default())
        .await
        .expect("page");
    assert!(empty.data.is_empty(), "failed writes store nothing");
}

async fn unique_fields_conflict(s: Store) {
    insert(&s, "consumers", json!({"username": "bob"})).await;
    let err = insert_err(&s, "consumers", json!({"username": "bob"})).await;
    assert_eq!(err.code(), 5);
    assert_eq!(
        err.to_string(),
        "UNIQUE violation detected on '{username=\"bob\"}'"
    );
    assert_eq!(err.details(), Some(json!({"username": "bob"})));
    let alice = insert(
        &s,
        "consumers",
        json!({"username": "alice", "custom_id": "c-1"}),
    )
    .await;
    let err = insert_err(
        &s,
        "consumers",
        json!({"id": id(&alice), "username": "carol"}),
    )
    .await;
    assert_eq!(err.code(), 3, "{err}");
    let err = insert_err(&s, "consumers", json!({"custom_id": "c-1"})).await;
    assert_eq!(err.details(), Some(json!({"custom_id": "c-1"})));
}

async fn lookups_by_id_and_endpoint_key(s: Store) {
    let svc = insert(
        &s,
        "services",
        json!({"name": "billing", "host": "b.internal"}),
    )
    .await;
    let schema = kong::store::entities::entity("services").expect("schema");
    let by_name = EntityKey::parse(schema, "billing").expect("key");
    assert_eq!(by_name, EntityKey::Endpoint("billing".into()));
    let found = s.select("services", &by_name).await.expect("select");
    assert_eq!(found.map(|d| id(&d)), Some(id(&svc)));
    let upper = id(&svc).to_uppercase();
    let by_id = EntityKey::parse(schema, &upper).expect("key");
    assert!(s
        .select("services", &by_id)
        .await
        .expect("select")
        .is_some());
    let missing = EntityKey::parse(schema, "nope").expect("key");
    assert_eq!(s.select("services", &missing).await.expect("select"), None);
    let ca = kong::store::entities::entity("ca_certificates").expect("schema");
    let err = EntityKey::parse(ca, "not-a-uuid").expect_err("ca certificates have no endpoint key");
    assert_eq!(err.code(), 1);
    assert_eq!(
        err.to_string(),
        "invalid primary key: '{id=\"expected a valid UUID\"}'"
    );
}

async fn pagination_walks_every_entity_once(s: Store) {
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(id(&insert(
            &s,
            "consumers",
            json!({"username": format!("user{i}")}),
        )
        .await));
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut req = PageRequest {
        size: Some(10),
        ..PageRequest::default()
    };
    let mut pages = 0;
    loop {
        let page = s.page("consumers", &req).await.expect("page");
        pages += 1;
        seen.extend(page.data.iter().map(id));
        match page.offset {
            Some(token) => req.offset = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every entity once, ordered by id");
    let all = s
        .page("consumers", &PageRequest::default())
        .await
        .expect("page");
    assert_eq!((all.data.len(), all.offset), (25, None));
}

async fn page_size_and_offset_errors(s: Store) {
    for size in [0, 1001] {
        let err = s
            .page(
                "services",
                &PageRequest {
                    size: Some(size),
                    ..Default::default()
                },
            )
            .await
            .expect_err("size out of range");
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (9, "size must be an integer between 1 and 1000")
        );
    }
    let err = s
        .page(
            "services",
            &PageRequest {
                offset: Some("%%%".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), 7);
    assert_eq!(
        err.to_string(),
        "'%%%' is not a valid offset: bad base64 encoding"
    );
    let err = s
        .page(
            "services",
            &PageRequest {
                offset: Some("aGVsbG8".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("bad json");
    assert_eq!(
        err.to_string(),
        "'aGVsbG8' is not a valid offset: bad json encoding"
    );
}

async fn tag_filters_and_or(s: Store) {
    insert(
        &s,
        "services",
        json!({"name": "a", "host": "h", "tags": ["prod", "eu"]}),
    )
    .await;
    insert(
        &s,
        "services",
        json!({"name": "b", "host": "h", "tags": ["prod", "us"]}),
    )
    .await;
    insert(
        &s,
        "services",
        json!({"name": "c", "host": "h", "tags": ["dev", "eu", "eu"]}),
    )
    .await;
    let names = |filter: &str| {
        let s = s.clone();
        let filter = TagFilter::parse(filter).expect("filter");
        async move {
            let page = s
                .page(
                    "services",
                    &PageRequest {
                        tags: Some(filter),
                        ..Default::default()
                    },
                )
                .await
                .expect("page");
            let mut n: Vec<String> = page
                .data
                .iter()
                .map(|d| d["name"].as_str().unwrap_or("").to_owned())
                .collect();
            n.sort();
            n
        }
    };
    assert_eq!(names("prod").await, ["a", "b"]);
    assert_eq!(names("prod,eu").await, ["a"]);
    assert_eq!(names("us/dev").await, ["b", "c"]);
    assert_eq!(names("nothing").await, Vec::<String>::new());
    let c = s
        .select("services", &EntityKey::Endpoint("c".into()))
        .await
        .expect("c")
        .expect("c");
    assert_eq!(c["tags"], json!(["dev", "eu"]), "tags are a set");
    for (bad, why) in [
        ("a,b/c", "invalid filter syntax"),
        ("", "cannot be null"),
        ("a,b,c,d,e,f", "cannot query more than 5 tags"),
    ] {
        let err = TagFilter::parse(bad).expect_err(bad);
        assert_eq!(err.to_json()["options"], json!({"tags": why}));
    }
}

async fn nested_lists_by_parent(s: Store) {
    let a = insert(&s, "services", json!({"name": "a", "host": "h"})).await;
    let b = insert(&s, "services", json!({"name": "b", "host": "h"})).await;
    for i in 0..3 {
        insert(
            &s,
            "routes",
            json!({"paths": [format!("/a{i}")], "service": {"id": id(&a)}}),
        )
        .await;
    }
    insert(
        &s,
        "routes",
        json!({"paths": ["/b"], "service": {"id": id(&b)}}),
    )
    .await;
    let req = PageRequest {
        size: Some(2),
        parent: Some(("service".into(), id(&a))),
        ..Default::default()
    };
    let first = s.page("routes", &req).await.expect("page");
    assert_eq!(first.data.len(), 2);
    let rest = s
        .page(
            "routes",
            &PageRequest {
                offset: first.offset.clone(),
                ..req.clone()
            },
        )
        .await
        .expect("page");
    assert_eq!((rest.data.len(), rest.offset), (1, None));
    for r in first.data.iter().chain(&rest.data) {
        assert_eq!(r["service"], json!({"id": id(&a)}));
    }
}

async fn route_protocol_rules(s: Store) {
    let err = insert_err(&s, "routes", json!({"protocols": ["http"]})).await;
    assert_eq!(
        err.details().expect("fields")["@entity"],
        json!([
            "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"
        ])
    );
    let err = insert_err(&s, "routes", json!({})).await;
    assert_eq!(
        err.details().expect("fields")["@entity"],
        json!(["must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"])
    );
    let err = insert_err(
        &s,
        "routes",
        json!({"protocols": ["tcp"], "paths": ["/x"], "sources": [{"ip": "10.0.0.0/8"}]}),
    )
    .await;
    assert_eq!(
        err.details().expect("fields")["paths"],
        "value must be null"
    );
    let err = insert_err(
        &s,
        "routes",
        json!({"protocols": ["http", "tcp"], "paths": ["/"]}),
    )
    .await;
    assert!(err.to_string().contains("mixing protocols"), "{err}");
    let err = insert_err(&s, "routes", json!({"paths": ["/a/../b"]})).await;
    assert_eq!(
        err.details(),
        Some(json!({"paths": ["non-normalized path, consider use '/b' instead"]}))
    );
    let err = insert_err(&s, "routes", json!({"paths": ["/ok", "nope", "~/(unclosed"], "methods": ["get"], "headers": {"Host": ["x"]}})).await;
    let fields = err.details().expect("fields");
    assert_eq!(fields["paths"][0], Value::Null);
    assert_eq!(
        fields["paths"][1],
        "should start with: / (fixed path) or ~/ (regex path)"
    );
    assert!(
        fields["paths"][2]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid regex")),
        "{fields}"
    );
    assert_eq!(fields["methods"][0], "invalid value: get");
    assert!(fields["headers"]["Host"]
        .as_str()
        .is_some_and(|m| m.contains("'host' header")));
    let grpc = insert(
        &s,
        "routes",
        json!({"protocols": ["grpc"], "paths": ["/pkg.Svc/"]}),
    )
    .await;
    assert_eq!(
        grpc["strip_path"], false,
        "gRPC routes keep their path by default"
    );
    let r = insert(
        &s,
        "routes",
        json!({"hosts": ["*.example.com", "api.example.*:8080"]}),
    )
    .await;
    for (field, value) in [
        ("protocols", json!(["http", "https"])),
        ("https_redirect_status_code", json!(426)),
        ("regex_priority", json!(0)),
        ("strip_path", json!(true)),
        ("path_handling", json!("v0")),
        ("preserve_host", json!(false)),
        ("request_buffering", json!(true)),
        ("response_buffering", json!(true)),
        ("service", Value::Null),
        ("paths", Value::Null),
    ] {
        assert_eq!(r.get(field), Some(&value), "field {field}");
    }
}

async fn foreign_keys_by_id_and_by_name(s: Store) {
    let missing = uuid::Uuid::new_v4().to_string();
    let err = insert_err(
        &s,
        "routes",
        json!({"paths": ["/"], "service": {"id": missing}}),
    )
    .await;
    assert_eq!(err.code(), 4);
    assert_eq!(
        err.to_string(),
        format!("the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity.")
    );
    assert_eq!(err.details(), Some(json!({"service": {"id": missing}})));
    let svc = insert(&s, "services", json!({"name": "orders", "host": "o"})).await;
    let r = insert(
        &s,
        "routes",
        json!({"paths": ["/"], "service": {"name": "orders"}}),
    )
    .await;
    assert_eq!(r["service"], json!({"id": id(&svc)}));
    let err = insert_err(
        &s,
        "routes",
        json!({"paths": ["/"], "service": {"name": "ghost"}}),
    )
    .await;
    assert_eq!(err.code(), 13);
    assert_eq!(
        err.to_string(),
        "foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"ghost\"}' for an existing 'services' entity)"
    );
}

async fn deletes_restrict_and_cascade(s: Store) {
    let svc = insert(&s, "services", json!({"name": "s", "host": "h"})).await;
    let route = insert(
        &s,
        "routes",
        json!({"paths": ["/"], "service": {"id": id(&svc)}}),
    )
    .await;
    let err = s
        .delete("services", &EntityKey::Id(id(&svc)))
        .await
        .expect_err("routes restrict");
    assert_eq!(err.code(), 4);
    assert_eq!(
        err.to_string(),
        "an existing 'routes' entity references this 'services' entity"
    );
    assert_eq!(err.details(), Some(json!({"@referenced_by": "routes"})));
    let bob = insert(&s, "consumers", json!({"username": "bob"})).await;
    insert(
        &s,
        "keyauth_credentials",
        json!({"consumer": {"id": id(&bob)}}),
    )
    .await;
    insert(
        &s,
        "acls",
        json!({"consumer": {"id": id(&bob)}, "group": "admins"}),
    )
    .await;
    insert(&s, "plugins", json!({"name": "rate-limiting", "consumer": {"id": id(&bob)}, "route": {"id": id(&route)}, "config": {"minute": 5}})).await;
    s.delete("consumers", &EntityKey::Endpoint("bob".into()))
        .await
        .expect("delete");
    for entity in ["keyauth_credentials", "acls", "plugins", "consumers"] {
        let left = s.page(entity, &PageRequest::default()).await.expect("page");
        assert!(left.data.is_empty(), "{entity} deleted with their consumer");
    }
    s.delete("consumers", &EntityKey::Endpoint("bob".into()))
        .await
        .expect("deleting something absent succeeds");
    s.delete("routes", &EntityKey::Id(id(&route)))
        .await
        .expect("route");
    s.delete("services", &EntityKey::Id(id(&svc)))
        .await
        .expect("service, now unreferenced");
}

async fn upsert_replaces_and_keeps_created_at(s: Store) {
    let key = EntityKey::Endpoint("inventory".into());
    let first = s
        .upsert(
            "services",
            &key,
            doc(json!({"host": "a", "retries": 1})),
            w(),
        )
        .await
        .expect("create by name");
    assert_eq!(first["name"], "inventory");
    let second = s
        .upsert(
            "services",
            &key,
            doc(json!({"host": "b", "name": "ignored"})),
            w(),
        )
        .await
        .expect("replace by name");
    assert_eq!(id(&second), id(&first), "same entity");
    assert_eq!(second["name"], "inventory", "the key from the path wins");
    assert_eq!(second["retries"], 5, "omitted fields revert to defaults");
    assert_eq!(second["created_at"], first["created_at"]);
    let fixed = uuid::Uuid::new_v4().to_string();
    let third = s
        .upsert(
            "services",
            &EntityKey::Id(fixed.clone()),
            doc(json!({"host": "c"})),
            w(),
        )
        .await
        .expect("create by id");
    assert_eq!(id(&third), fixed);
}

async fn patch_merges_records(s: Store) {
    let up = insert(&s, "upstreams", json!({"name": "backend.internal"})).await;
    let active = &up["healthchecks"]["active"];
    assert_eq!(active["http_path"], "/");
    assert_eq!(active["healthy"]["http_statuses"], json!([200, 302]));
    assert_eq!(
        up["healthchecks"]["passive"]["unhealthy"]["http_statuses"],
        json!([429, 500, 503])
    );
    let key = EntityKey::Id(id(&up));
    let patched = s
        .update(
            "upstreams",
            &key,
            doc(json!({"healthchecks": {"active": {"healthy": {"interval": 5}}}, "slots": 100})),
            w(),
        )
        .await
        .expect("patch");
    assert_eq!(patched["healthchecks"]["active"]["healthy"]["interval"], 5);
    assert_eq!(
        patched["healthchecks"]["active"]["healthy"]["http_statuses"],
        json!([200, 302]),
        "siblings kept"
    );
    assert_eq!(patched["slots"], 100);
    assert_eq!(patched["created_at"], up["created_at"]);
    let err = s
        .update(
            "upstreams",
            &EntityKey::Endpoint("ghost".into()),
            doc(json!({"slots": 20})),
            w(),
        )
        .await
        .expect_err("absent");
    assert_eq!(err.code(), 6);
    assert_eq!(
        err.to_string(),
        "could not find the entity with '{name=\"ghost\"}'"
    );
    let err = s
        .update("upstreams", &key, doc(json!({"slots": 1})), w())
        .await
        .expect_err("invalid patch");
    assert_eq!(
        err.details(),
        Some(json!({"slots": "value should be between 10 and 65536"}))
    );
}

async fn plugins_validate_config_with_the_plugin_schema(s: Store) {
    let err = insert_err(&s, "plugins", json!({"name": "nope"})).await;
    assert_eq!(
        err.details(),
        Some(
            json!({"name": "plugin 'nope' not enabled; add it to the 'plugins' configuration property"})
        )
    );
    let global = insert(&s, "plugins", json!({"name": "key-auth"})).await;
    assert_eq!(
        global["config"],
        json!({"key_names": ["apikey"], "hide_credentials": false})
    );
    assert_eq!(
        global["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    assert_eq!(global["enabled"], true);
    let err = insert_err(&s, "plugins", json!({"name": "key-auth"})).await;
    assert_eq!(err.code(), 5);
    assert_eq!(
        err.details(),
        Some(json!({"name": "key-auth", "route": null, "service": null, "consumer": null}))
    );
    let bob = insert(&s, "consumers", json!({"username": "bob"})).await;
    let err = insert_err(
        &s,
        "plugins",
        json!({"name": "key-auth", "consumer": {"id": id(&bob)}, "config": {"colour": 1}}),
    )
    .await;
    assert_eq!(
        err.details(),
        Some(json!({"consumer": "value must be null", "config": {"colour": "unknown field"}}))
    );
    let rl = insert(
        &s,
        "plugins",
        json!({"name": "rate-limiting", "config": {"minute": 10, "redis": {"host": "r"}}}),
    )
    .await;
    assert_eq!(rl["config"]["redis"], json!({"host": "r", "port": 6379}));
    let patched = s
        .update(
            "plugins",
            &EntityKey::Id(id(&rl)),
            doc(json!({"config": {"redis": {"port": 6380}}})),
            w(),
        )
        .await
        .expect("patch config");
    assert_eq!(patched["config"]["minute"], 10);
    assert_eq!(
        patched["config"]["redis"],
        json!({"host": "r", "port": 6380})
    );
}

async fn credentials_hash_passwords_and_generate_keys(s: Store) {
    let bob = insert(&s, "consumers", json!({"username": "bob"})).await;
    let consumer = json!({"id": id(&bob)});
    let basic = insert(
        &s,
        "basicauth_credentials",
        json!({"consumer": consumer, "username": "bob", "password": "secret"}),
    )
    .await;
    let expected = kong::store::entities::hash_basicauth_password("secret", &id(&bob));
    assert_eq!(basic["password"], expected);
    assert_eq!(expected.len(), 40);
    assert!(
        basic.get("updated_at").is_none(),
        "credentials only have created_at"
    );
    let renamed = s
        .update(
            "basicauth_credentials",
            &EntityKey::Id(id(&basic)),
            doc(json!({"username": "robert"})),
            w(),
        )
        .await
        .expect("patch");
    assert_eq!(
        renamed["password"], expected,
        "an untouched password is not hashed twice"
    );
    let key = insert(&s, "keyauth_credentials", json!({"consumer": consumer})).await;
    assert_eq!(key["key"].as_str().map(str::len), Some(32));
    let jwt = insert(&s, "jwt_secrets", json!({"consumer": consumer})).await;
    assert_eq!(jwt["algorithm"], "HS256");
    assert!(jwt["secret"].is_string() && jwt["key"].is_string());
    let err = insert_err(
        &s,
        "jwt_secrets",
        json!({"consumer": consumer, "algorithm": "RS256"}),
    )
    .await;
    assert_eq!(
        err.details().expect("fields")["rsa_public_key"],
        "required field missing when 'algorithm' is RS256"
    );
    insert(&s, "acls", json!({"consumer": consumer, "group": "ops"})).await;
    let err = insert_err(&s, "acls", json!({"consumer": consumer, "group": "ops"})).await;
    assert_eq!(err.code(), 5);
}

async fn targets_are_normalised_and_unique_per_upstream(s: Store) {
    let up = insert(&s, "upstreams", json!({"name": "pool"})).await;
    let other = insert(&s, "upstreams", json!({"name": "pool2"})).await;
    let t = insert(
        &s,
        "targets",
        json!({"upstream": {"id": id(&up)}, "target": "10.0.0.1"}),
    )
    .await;
    assert_eq!(t["target"], "10.0.0.1:8000");
    assert_eq!(t["weight"], 100);
    assert!(
        t["created_at"].is_f64(),
        "targets carry millisecond timestamps"
    );
    let v6 = insert(
        &s,
        "targets",
        json!({"upstream": {"id": id(&up)}, "target": "::1"}),
    )
    .await;
    assert_eq!(v6["target"], "[::1]:8000");
    let err = insert_err(
        &s,
        "targets",
        json!({"upstream": {"id": id(&up)}, "target": "10.0.0.1:8000"}),
    )
    .await;
    assert_eq!(err.code(), 5);
    insert(
        &s,
        "targets",
        json!({"upstream": {"id": id(&other)}, "target": "10.0.0.1:8000"}),
    )
    .await;
    let err = insert_err(
        &s,
        "targets",
        json!({"upstream": {"id": id(&up)}, "target": "not valid!"}),
    )
    .await;
    assert_eq!(
        err.details(),
        Some(json!({"target": "Invalid target; not a valid hostname or ip address"}))
    );
    s.delete("upstreams", &EntityKey::Id(id(&up)))
        .await
        .expect("cascade");
    let left = s
        .page("targets", &PageRequest::default())
        .await
        .expect("page");
    assert_eq!(
        left.data.len(),
        1,
        "only the other upstream's target is left"
    );
}

async fn upstream_algorithm_follows_hash_on(s: Store) {
    let up = insert(
        &s,
        "upstreams",
        json!({"name": "h1", "hash_on": "header", "hash_on_header": "x-user"}),
    )
    .await;
    assert_eq!(up["algorithm"], "consistent-hashing");
    let up = insert(
        &s,
        "upstreams",
        json!({"name": "h2", "algorithm": "least-connections", "hash_on": "ip"}),
    )
    .await;
    assert_eq!(up["hash_on"], "none");
    let err = insert_err(&s, "upstreams", json!({"name": "h3", "hash_on": "header"})).await;
    assert_eq!(
        err.details().expect("fields")["hash_on_header"],
        "required field missing"
    );
    let err = insert_err(&s, "upstreams", json!({"name": "10.0.0.1"})).await;
    assert_eq!(
        err.details(),
        Some(json!({"name": "Invalid name ('10.0.0.1'); must be a valid hostname"}))
    );
}

async fn import_is_all_or_nothing(s: Store) {
    let schema = |n| kong::store::entities::entity(n).expect("schema");
    let svc_id = uuid::Uuid::new_v4().to_string();
    let good = vec![
        ImportItem {
            schema: schema("routes"),
            doc: doc(json!({"paths": ["/"], "service": {"id": svc_id}})),
            origin: "routes[0]".into(),
        },
        ImportItem {
            schema: schema("services"),
            doc: doc(json!({"id": svc_id, "name": "s", "host": "h"})),
            origin: "services[0]".into(),
        },
    ];
    let mut bad = good.clone();
    bad.push(ImportItem {
        schema: schema("services"),
        doc: doc(json!({"name": "t", "port": "x"})),
        origin: "services[1]".into(),
    });
    let err = s
        .import(bad, ImportOptions::default())
        .await
        .expect_err("one bad item");
    assert!(err.to_string().contains("services[1]: 2 schema violations (host: required field missing; port: expected an integer)"), "{err}");
    assert!(
        s.page("services", &PageRequest::default())
            .await
            .expect("page")
            .data
            .is_empty(),
        "nothing written"
    );
    let summary = s
        .import(good.clone(), ImportOptions::default())
        .await
        .expect("import");
    assert_eq!(summary, vec![("services", 1), ("routes", 1)]);
    let exported = s.export().await.expect("export");
    let count = |name: &str| {
        exported
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.len())
    };
    assert_eq!((count("services"), count("routes")), (Some(1), Some(1)));
    let replaced = s
        .import(
            vec![ImportItem {
                schema: schema("consumers"),
                doc: doc(json!({"username": "u"})),
                origin: "consumers[0]".into(),
            }],
            ImportOptions {
                replace: true,
                ..Default::default()
            },
        )
        .await
        .expect("replace");
    assert_eq!(replaced, vec![("consumers", 1)]);
    assert!(
        s.page("services", &PageRequest::default())
            .await
            .expect("page")
            .data
            .is_empty(),
        "replace drops what was there"
    );
}

async fn writes_announce_changes(s: Store) {
    let mut changes = s.subscribe();
    let svc = insert(&s, "services", json!({"host": "h"})).await;
    s.update(
        "services",
        &EntityKey::Id(id(&svc)),
        doc(json!({"port": 81})),
        w(),
    )
    .await
    .expect("patch");
    s.delete("services", &EntityKey::Id(id(&svc)))
        .await
        .expect("delete");
    let mut ops = Vec::new();
    for _ in 0..3 {
        let c = changes.recv().await.expect("change");
        assert_eq!(
            (c.entity.as_deref(), c.id.as_deref()),
            (Some("services"), Some(id(&svc).as_str()))
        );
        ops.push(c.op);
    }
    assert_eq!(ops, ["create", "update", "delete"]);
}

/// A self-signed certificate and its key, PEM.
fn certificate(name: &str, ca: bool) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

async fn certificates_manage_their_snis(s: Store) {
    let (cert, key) = certificate("example.com", false);
    let (_, other_key) = certificate("other.com", false);
    let err = insert_err(&s, "certificates", json!({"cert": cert, "key": other_key})).await;
    assert_eq!(
        err.details(),
        Some(json!({"@entity": ["certificate does not match key"]}))
    );
    let c = insert(
        &s,
        "certificates",
        json!({"cert": cert, "key": key, "snis": ["b.example.com", "*.example.com"]}),
    )
    .await;
    assert_eq!(
        c["snis"],
        json!(["*.example.com", "b.example.com"]),
        "sorted names"
    );
    let sni = s
        .select("snis", &EntityKey::Endpoint("b.example.com".into()))
        .await
        .expect("sni")
        .expect("sni exists");
    assert_eq!(sni["certificate"], json!({"id": id(&c)}));
    let err = insert_err(
        &s,
        "certificates",
        json!({"cert": cert, "key": key, "snis": ["b.example.com"]}),
    )
    .await;
    assert_eq!(
        err.details(),
        Some(
            json!({"snis": format!("b.example.com already associated with existing certificate '{}'", id(&c))})
        )
    );
    let err = insert_err(
        &s,
        "certificates",
        json!({"cert": cert, "key": key, "snis": ["x.com", "x.com"]}),
    )
    .await;
    assert_eq!(err.details(), Some(json!({"snis": "x.com is duplicated"})));
    let patched = s
        .update(
            "certificates",
            &EntityKey::Id(id(&c)),
            doc(json!({"snis": ["c.example.com"]})),
            w(),
        )
        .await
        .expect("patch snis");
    assert_eq!(patched["snis"], json!(["c.example.com"]));
    assert!(
        s.select("snis", &EntityKey::Endpoint("b.example.com".into()))
            .await
            .expect("sni")
            .is_none(),
        "replaced"
    );
    let svc = insert(
        &s,
        "services",
        json!({"host": "h", "protocol": "https", "client_certificate": {"id": id(&c)}}),
    )
    .await;
    let err = s
        .delete("certificates", &EntityKey::Id(id(&c)))
        .await
        .expect_err("in use");
    assert_eq!(
        err.to_string(),
        "an existing 'services' entity references this 'certificates' entity"
    );
    s.delete("services", &EntityKey::Id(id(&svc)))
        .await
        .expect("service");
    s.delete("certificates", &EntityKey::Id(id(&c)))
        .await
        .expect("certificate");
    assert!(
        s.page("snis", &PageRequest::default())
            .await
            .expect("page")
            .data
            .is_empty(),
        "SNIs go with their certificate"
    );
}

async fn ca_certificates_in_use_cannot_be_deleted(s: Store) {
    let (ca, _) = certificate("ca.internal", true);
    let stored = insert(&s, "ca_certificates", json!({"cert": ca})).await;
    assert_eq!(stored["cert_digest"].as_str().map(str::len), Some(64));
    let err = insert_err(&s, "ca_certificates", json!({"cert": ca})).await;
    assert_eq!(err.code(), 5, "the digest is unique: {err}");
    let two = format!("{ca}{ca}");
    let err = insert_err(&s, "ca_certificates", json!({"cert": two})).await;
    assert_eq!(
        err.details(),
        Some(json!({"cert": "invalid certificate: please submit only one certificate"}))
    );
    let svc = insert(
        &s,
        "services",
        json!({"host": "h", "protocol": "https", "ca_certificates": [id(&stored)]}),
    )
    .await;
    let err = s
        .delete("ca_certificates", &EntityKey::Id(id(&stored)))
        .await
        .expect_err("in use");
    assert_eq!(err.code(), 19);
    assert_eq!(
        err.to_string(),
        format!(
            "ca certificate {} is still referenced by services (id = {})",
            id(&stored),
            id(&svc)
        )
    );
}

/// The database fails in the middle of an import (a trigger raises after some rows, as a full
/// disk or a dropped connection would): the import reports the failure and leaves the
/// datastore exactly as it was.
#[test]
fn postgres_failing_mid_import_leaves_everything_as_it_was() {
    let Some(pg) = require_pg() else { return };
    let name = pg.create_database("midimport").expect("database");
    let url = pg.url_for(&name);
    rt().block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url).await.expect("connect");
        migrate(Db::Postgres { pool: pool.clone(), database: name.clone(), schema: None }).await;
        let store = Store::postgres(pool.clone());
        store.insert("services", doc(json!({"name": "before", "host": "h"})), w()).await.expect("seed");
        let before = store.export().await.expect("export");
        sqlx::raw_sql(
            "CREATE FUNCTION fail_late() RETURNS trigger AS $$ BEGIN
                 IF (SELECT count(*) FROM entities) > 150 THEN RAISE EXCEPTION 'disk full'; END IF;
                 RETURN NEW; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER fail_late AFTER INSERT ON entities FOR EACH ROW EXECUTE FUNCTION fail_late();",
        )
        .execute(&pool)
        .await
        .expect("trigger");
        let schema = kong::store::entities::entity("services").expect("schema");
        let items = (0..300)
            .map(|i| ImportItem { schema, doc: doc(json!({"name": format!("s{i}"), "host": "h"})), origin: format!("services[{i}]") })
            .collect();
        let err = store.import(items, ImportOptions::default()).await.expect_err("the database fails");
        assert!(err.to_string().contains("disk full"), "the cause is named: {err}");
        assert_eq!(store.export().await.expect("export"), before, "nothing changed");
    });
}
