//! Declarative configuration through the real binary: `kong config parse`, `db_import`,
//! `db_export`, and DB-less nodes started from a file. The PostgreSQL round trip runs at the
//! library level until `database = postgres` can be opened by the node.

use std::path::{Path, PathBuf};

use crate::support::http::get;
use crate::support::kong::{kong, text, Kong};

/// A scratch directory with a `kong.conf` whose prefix (and so SQLite file) is inside it.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let conf = format!("prefix = {}\n", ws.dir.path().join("prefix").display());
        std::fs::write(ws.conf(), conf).expect("write kong.conf");
        ws
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("kong.conf")
    }

    fn file(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).expect("write file");
        path
    }

    /// Runs `kong config <args> -c kong.conf`.
    fn config(&self, args: &[&str]) -> std::process::Output {
        let conf = self.conf();
        let mut all = vec!["config"];
        all.extend(args);
        all.extend(["-c", path(&conf)]);
        kong(&all)
    }

    fn import(&self, file: &Path) -> std::process::Output {
        self.config(&["db_import", path(file)])
    }

    /// `kong config db_export` to standard output, which must succeed.
    fn export(&self) -> String {
        let out = self.config(&["db_export"]);
        assert!(out.status.success(), "db_export failed: {}", text(&out));
        String::from_utf8(out.stdout).expect("utf-8 export")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `kong config parse FILE` on `body` written as `name`.
fn parse(name: &str, body: &str) -> (i32, String) {
    let ws = Workspace::new();
    let file = ws.file(name, body);
    let out = ws.config(&["parse", path(&file)]);
    (out.status.code().unwrap_or(-1), text(&out))
}

fn assert_lines(output: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            output.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{output}"
        );
    }
}

/// Every nesting form that exists without plugins, plus references between top-level lists.
fn nested_file() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["a.test".into()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let indent = |pem: String| pem.trim_end().replace('\n', "\n      ");
    format!(
        r#"_format_version: "3.0"
_comment: every nesting form
services:
  - name: svc
    _comment: a service
    url: http://upstream.test:8080/api
    tags: [team-a]
    routes:
      - name: r1
        paths: ["/api"]
      - name: r2
        hosts: [example.test]
routes:
  - name: top
    service: svc
    paths: ["/top"]
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-key
    basicauth_credentials:
      - username: alice
        password: secret
    jwt_secrets:
      - key: alice-jwt
        secret: s3cr3t
    hmacauth_credentials:
      - username: alice-hmac
        secret: hmac-secret
    acls:
      - group: admins
upstreams:
  - name: upstream.test
    targets:
      - target: 10.0.0.1:8080
      - target: 10.0.0.2
certificates:
  - id: 3f0c4c4e-1d53-4f6b-9c0e-7e0b1d9f2a11
    cert: |
      {cert}
    key: |
      {key}
    snis:
      - name: a.test
    services:
      - name: mtls-svc
        url: https://mtls.test
    upstreams:
      - name: mtls.upstream
"#,
        cert = indent(cert.pem()),
        key = indent(key.serialize_pem()),
    )
}

#[test]
fn parse_accepts_a_valid_file() {
    let (code, out) = parse("kong.yml", &nested_file());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "parse successful");
}

#[test]
fn parse_names_every_problem_by_its_path() {
    let (code, out) = parse(
        "kong.yml",
        r#"_format_version: "3.0"
services:
  - name: ok
    host: ok.test
  - name: s1
    host: h.test
    retries: many
    routes:
      - name: r
        paths: ["/fine", "nope"]
        colour: blue
consumers:
  - tags: [x]
upstreams:
  - name: u.test
    targets:
      - target: "not a target!"
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("Error: Failed parsing:\n"), "{out}");
    assert_lines(
        &out,
        &[
            "services[1].retries: expected an integer",
            "services[1].routes[0].colour: unknown field",
            "services[1].routes[0].paths[1]: should start with: / (fixed path) or ~/ (regex path)",
            "consumers[0]: at least one of these fields must be non-empty: 'custom_id', 'username'",
            "upstreams[0].targets[0].target: Invalid target; not a valid hostname or ip address",
        ],
    );
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    let (code, out) = parse(
        "kong.yml",
        "_format_version: \"3.0\"\nservices:\n  - name: a\n   host: b\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "failed parsing declarative configuration: YAML syntax error at line 4, column 4:"
        ),
        "{out}"
    );
}

#[test]
fn json_syntax_errors_give_line_and_column() {
    let (code, out) = parse(
        "kong.json",
        "{\n  \"_format_version\": \"3.0\",\n  \"services\": [,]\n}\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("failed parsing declarative configuration: JSON syntax error at line 3, column 16: expected value"),
        "{out}"
    );
}

#[test]
fn json_documents_parse_too() {
    let (code, out) = parse(
        "kong.json",
        r#"{"_format_version": "3.0", "services": [{"name": "s", "host": "s.test", "routes": [{"paths": ["/"]}]}]}"#,
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_top_level_is_checked() {
    let (code, out) = parse(
        "kong.yml",
        "_format_version: \"3.0\"\n_transform: yes please\nservicez: []\nworkspaces_x: 1\n",
    );
    assert_eq!(code, 1, "{out}");
    assert_lines(
        &out,
        &[
            "_transform: expected a boolean",
            "servicez: unknown field",
            "workspaces_x: unknown field",
        ],
    );
    let (code, out) = parse("kong.yml", "services: []\n");
    assert_eq!(code, 1);
    assert_lines(&out, &["_format_version: required field missing"]);
    let (code, out) = parse("kong.yml", "_format_version: \"0.9\"\n");
    assert_eq!(code, 1);
    assert_lines(&out, &["_format_version: expected one of: 1.1, 2.1, 3.0"]);
    let (code, out) = parse("kong.yml", "- just\n- a list\n");
    assert_eq!(code, 1);
    assert!(out.contains("expected an object"), "{out}");
}

#[test]
fn wrong_types_are_named() {
    let (code, out) = parse(
        "kong.yml",
        r#"_format_version: "3.0"
services: {name: not-a-list}
routes:
  - "a string"
  - name: r
    paths: "/not-a-list"
    strip_path: "yes"
consumers:
  - username: [a]
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_lines(
        &out,
        &[
            "services: expected an array",
            "routes[0]: expected a record",
            "routes[1].paths: expected an array",
            "routes[1].strip_path: expected a boolean",
            "consumers[0].username: expected a string",
        ],
    );
}

#[test]
fn dangling_references_are_named() {
    let (code, out) = parse(
        "kong.yml",
        r#"_format_version: "3.0"
routes:
  - name: r
    service: ghost
    paths: ["/"]
  - name: r2
    service: {id: 8a7d3c8e-0000-4000-8000-000000000000}
    paths: ["/"]
snis:
  - name: a.test
    certificate: no-such-certificate
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_lines(
        &out,
        &[
            "routes[0]: invalid reference 'service: ghost' (no such entry in 'services')",
            "routes[1]: invalid reference 'service: 8a7d3c8e-0000-4000-8000-000000000000' (no such entry in 'services')",
            "snis[0]: invalid reference 'certificate: no-such-certificate' (no such entry in 'certificates')",
        ],
    );
}

#[test]
fn duplicate_names_and_ids_are_refused() {
    let (code, out) = parse(
        "kong.yml",
        r#"_format_version: "3.0"
services:
  - name: svc
    host: a.test
    routes:
      - name: same-route
        paths: ["/a"]
  - name: svc
    host: b.test
  - id: 0b5e4d2a-0000-4000-8000-000000000001
    host: c.test
  - id: 0b5e4d2a-0000-4000-8000-000000000001
    host: d.test
routes:
  - name: same-route
    paths: ["/b"]
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_lines(
        &out,
        &[
            "services[1]: uniqueness violation: 'services' entity with name set to 'svc' already declared",
            "services[3]: uniqueness violation: 'services' entity with primary key set to '0b5e4d2a-0000-4000-8000-000000000001' already declared",
            "routes[0]: uniqueness violation: 'routes' entity with name set to 'same-route' already declared",
        ],
    );
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let ws = Workspace::new();
    let file = ws.dir.path().join("huge.yml");
    let f = std::fs::File::create(&file).expect("create");
    // Sparse: no 65 MiB are written, but the file says it is that large.
    f.set_len(65 * 1024 * 1024).expect("size");
    let out = ws.config(&["parse", path(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("declarative configuration is too large: 68157440 bytes (the limit is 67108864 bytes, 64 MiB)"),
        "{}",
        text(&out)
    );
}

#[test]
fn plugins_are_refused_until_enabled() {
    let (code, out) = parse(
        "kong.yml",
        r#"_format_version: "3.0"
services:
  - name: svc
    host: a.test
    plugins:
      - name: custom-auth
plugins:
  - name: my-custom-plugin
    config: {minute: 10}
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_lines(
        &out,
        &[
            "services[0].plugins[0].name: plugin 'custom-auth' not enabled; add it to the 'plugins' configuration property",
            "plugins[0].name: plugin 'my-custom-plugin' not enabled; add it to the 'plugins' configuration property",
        ],
    );
}

#[test]
fn format_1_1_route_paths_are_migrated() {
    let ws = Workspace::new();
    let file = ws.file(
        "legacy.yml",
        r#"_format_version: "1.1"
services:
  - name: svc
    host: a.test
    routes:
      - name: nested
        paths: ["/users/\\d+", "/plain//x/%7e"]
routes:
  - name: top
    service: svc
    paths: ["/v(1|2)/items"]
"#,
    );
    let out = ws.import(&file);
    assert!(out.status.success(), "{}", text(&out));
    let export = ws.export();
    assert!(export.contains("- ~/users/\\d+\n"), "{export}");
    assert!(export.contains("- /plain/x/~\n"), "{export}");
    assert!(export.contains("- ~/v(1|2)/items\n"), "{export}");
}

#[test]
fn nesting_forms_import_with_their_parents() {
    let ws = Workspace::new();
    let out = ws.import(&ws.file("kong.yml", &nested_file()));
    assert!(out.status.success(), "{}", text(&out));
    let summary = text(&out);
    assert!(summary.contains("import successful"), "{summary}");
    for line in [
        "services: 2",
        "routes: 3",
        "consumers: 1",
        "upstreams: 2",
        "targets: 2",
        "certificates: 1",
        "snis: 1",
        "keyauth_credentials: 1",
        "basicauth_credentials: 1",
        "jwt_secrets: 1",
        "hmacauth_credentials: 1",
        "acls: 1",
    ] {
        assert!(summary.contains(line), "{line} in {summary}");
    }
    let export = ws.export();
    let svc = kong::declarative::ids::generate("services", "svc").to_string();
    let alice = kong::declarative::ids::generate("consumers", "alice").to_string();
    let upstream = kong::declarative::ids::generate("upstreams", "upstream.test").to_string();
    let cert = "3f0c4c4e-1d53-4f6b-9c0e-7e0b1d9f2a11";
    assert_eq!(
        export.matches(&format!("service: {svc}\n")).count(),
        3,
        "{export}"
    );
    assert_eq!(
        export.matches(&format!("consumer: {alice}\n")).count(),
        5,
        "{export}"
    );
    assert_eq!(
        export.matches(&format!("upstream: {upstream}\n")).count(),
        2,
        "{export}"
    );
    assert_eq!(
        export
            .matches(&format!("client_certificate: {cert}\n"))
            .count(),
        2,
        "{export}"
    );
    assert!(
        export.contains(&format!("certificate: {cert}\n")),
        "{export}"
    );
    assert!(!export.contains("_comment"), "{export}");
}

#[test]
fn ids_are_deterministic_across_imports() {
    let file = nested_file();
    let exports: Vec<String> = (0..2)
        .map(|_| {
            let ws = Workspace::new();
            let out = ws.import(&ws.file("kong.yml", &file));
            assert!(out.status.success(), "{}", text(&out));
            ws.export()
        })
        .collect();
    // Key-auth and JWT credentials have no stable key (their key may be generated): Kong gives
    // them a random id, and so do we. Everything else keeps its id.
    let ids = |export: &str| -> Vec<String> {
        let mut section = "";
        let mut ids = Vec::new();
        for line in export.lines() {
            if !line.starts_with(' ') && !line.starts_with('-') {
                section = line;
            } else if let Some(id) = line.strip_prefix("- id: ") {
                if !matches!(section, "keyauth_credentials:" | "jwt_secrets:") {
                    ids.push(format!("{section} {id}"));
                }
            }
        }
        ids
    };
    assert_eq!(ids(&exports[0]), ids(&exports[1]));
    assert!(ids(&exports[0]).len() >= 15);
    let (code, out) = parse("kong.yml", &file);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn sqlite_import_export_round_trip_is_byte_identical() {
    let first = Workspace::new();
    let out = first.import(&first.file("kong.yml", &nested_file()));
    assert!(out.status.success(), "{}", text(&out));
    let export = first.export();
    assert!(
        export.starts_with("_format_version: \"3.0\"\n_transform: false\n"),
        "{export}"
    );
    let second = Workspace::new();
    let out = second.import(&second.file("export.yml", &export));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        second.export(),
        export,
        "export → import → export is identical"
    );
}

#[test]
fn db_import_is_all_or_nothing() {
    let ws = Workspace::new();
    let base = ws.file(
        "base.yml",
        "_format_version: \"3.0\"\nservices:\n  - name: kept\n    host: kept.test\n",
    );
    assert!(ws.import(&base).status.success());
    let before = ws.export();
    let bad = ws.file(
        "bad.yml",
        r#"_format_version: "3.0"
services:
  - name: new-one
    host: new.test
    routes:
      - name: fine
        paths: ["/fine"]
  - name: broken
    port: 99999
consumers:
  - username: someone
"#,
    );
    let out = ws.import(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Error: Failed importing:"),
        "{}",
        text(&out)
    );
    assert_lines(
        &text(&out),
        &[
            "services[1].host: required field missing",
            "services[1].port: value should be between 0 and 65535",
        ],
    );
    assert_eq!(ws.export(), before, "nothing was written");
}

#[test]
fn db_import_resolves_references_to_what_the_database_holds() {
    let ws = Workspace::new();
    let base = ws.file(
        "base.yml",
        "_format_version: \"3.0\"\nservices:\n  - name: existing\n    host: e.test\n",
    );
    assert!(ws.import(&base).status.success());
    let more = ws.file(
        "more.yml",
        "_format_version: \"3.0\"\nroutes:\n  - name: r\n    service: existing\n    paths: [\"/\"]\n",
    );
    let out = ws.import(&more);
    assert!(out.status.success(), "{}", text(&out));
    let svc = kong::declarative::ids::generate("services", "existing").to_string();
    assert!(ws.export().contains(&format!("service: {svc}\n")));
    let dangling = ws.file(
        "dangling.yml",
        "_format_version: \"3.0\"\nroutes:\n  - name: r2\n    service: nowhere\n    paths: [\"/\"]\n",
    );
    let out = ws.import(&dangling);
    assert_eq!(out.status.code(), Some(1));
    assert_lines(
        &text(&out),
        &["routes[0]: invalid reference 'service: nowhere' (no such entry in 'services')"],
    );
}

#[test]
fn db_export_writes_a_file_but_never_over_one() {
    let ws = Workspace::new();
    assert!(ws
        .import(&ws.file("kong.yml", &nested_file()))
        .status
        .success());
    let target = ws.dir.path().join("out.yml");
    let out = ws.config(&["db_export", path(&target)]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&target).expect("exported file");
    assert_eq!(written, ws.export());
    let out = ws.config(&["db_export", path(&target)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!(
            "{} already exists. Will not overwrite it.",
            target.display()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("still there"),
        written
    );
}

#[test]
fn database_commands_refuse_database_off() {
    let ws = Workspace::new();
    let mut conf = std::fs::read_to_string(ws.conf()).expect("conf");
    conf.push_str("database = off\n");
    std::fs::write(ws.conf(), conf).expect("conf");
    let file = ws.file("kong.yml", "_format_version: \"3.0\"\n");
    for args in [vec!["db_import", path(&file)], vec!["db_export"]] {
        let out = ws.config(&args);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out).contains("only works with a database"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn dbless_node_serves_its_declarative_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let body = nested_file();
    let file = dir.path().join("kong.yml");
    std::fs::write(&file, &body).expect("write");
    let k = Kong::start(&format!(
        "database = off\ndeclarative_config = {}",
        file.display()
    ));
    let root = get(&k.admin("/")).json();
    assert_eq!(root["configuration"]["database"], "off");
    let status = get(&k.admin("/status")).json();
    let hash = kong::declarative::configuration_hash(&body);
    assert_eq!(status["configuration_hash"], hash.as_str());
    assert_ne!(hash, "00000000000000000000000000000000");
    assert!(status.get("database").is_none(), "{status}");
}

#[test]
fn dbless_node_without_a_file_reports_the_empty_hash() {
    let k = Kong::start("database = off");
    let status = get(&k.admin("/status")).json();
    assert_eq!(
        status["configuration_hash"],
        "00000000000000000000000000000000"
    );
}

#[test]
fn dbless_node_loads_declarative_config_string() {
    let config = r#"{"_format_version": "3.0", "services": [{"name": "s", "host": "s.test"}]}"#;
    let k = Kong::start(&format!(
        "database = off\ndeclarative_config_string = {config}"
    ));
    let status = get(&k.admin("/status")).json();
    assert_eq!(
        status["configuration_hash"],
        kong::declarative::configuration_hash(config).as_str()
    );
}

#[test]
fn dbless_start_fails_on_an_invalid_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("kong.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n  - name: svc\n    routes:\n      - paths: [\"nope\"]\n",
    )
    .expect("write");
    let k = Kong::configure(&format!(
        "database = off\ndeclarative_config = {}",
        file.display()
    ));
    let out = k.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "error parsing declarative config file {}:",
            file.display()
        )),
        "{t}"
    );
    assert_lines(
        &t,
        &[
            "services[0].host: required field missing",
            "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        ],
    );
    assert!(k.pid().is_none(), "no pid file: nothing is running");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", k.admin_port)).is_err(),
        "nothing listens"
    );
}

/// The PostgreSQL backend, at the library level: this tree's node cannot open
/// `database = postgres` yet, so the store is built on a pool over a freshly migrated database.
#[test]
fn postgres_import_export_round_trip() {
    use crate::support::pg::require_pg;
    use kong::store::Store;

    let Some(pg) = require_pg() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let fresh = |hint: &str| -> Store {
        let name = pg.create_database(hint).expect("database");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
            .expect("migrations")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        for file in files {
            let sql = std::fs::read_to_string(&file).expect("migration");
            pg.psql(&name, &sql).expect("migration applies");
        }
        let url = pg.url_for(&name);
        let pool = crate::support::http::rt()
            .block_on(sqlx::PgPool::connect(&url))
            .expect("pool");
        Store::postgres(pool)
    };
    let load = |store: &Store, text: &str| {
        crate::support::http::rt().block_on(async {
            let prepared = kong::declarative::prepare_text(text, Some("kong.yml"))?;
            kong::declarative::load(store, prepared, false).await
        })
    };
    let export = |store: &Store| {
        crate::support::http::rt()
            .block_on(kong::declarative::export::export(store))
            .expect("export")
    };

    let first = fresh("decl_a");
    load(&first, &nested_file()).expect("import");
    let exported = export(&first);
    assert!(exported.contains("name: svc\n"), "{exported}");

    let second = fresh("decl_b");
    load(&second, &exported).expect("import of the export");
    assert_eq!(export(&second), exported, "byte-identical round trip");

    // All or nothing: a failing document leaves the database as it was.
    let bad = "_format_version: \"3.0\"\nservices:\n  - name: extra\n    host: x.test\n  - name: broken\n";
    let err = load(&second, bad).expect_err("invalid");
    assert!(
        err.to_string()
            .contains("services[1].host: required field missing"),
        "{err}"
    );
    assert_eq!(export(&second), exported);
}
