//! Admin and Status API node endpoints over real HTTP and HTTPS.

use crate::support::http::{get, send};
use crate::support::kong::{free_port, Kong};

#[test]
fn root_reports_node_and_masks_secrets() {
    let k = Kong::start("pg_password = hunter2\nnode_id = 0b7c9c3a-6a4b-4b68-9f2d-5a0d1c8e6f11");
    let r = get(&k.admin("/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("server"), Some("kong/3.10.0"));
    assert!(r.header("x-kong-admin-latency").is_some());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let info = r.json();
    assert_eq!(info["node_id"], "0b7c9c3a-6a4b-4b68-9f2d-5a0d1c8e6f11");
    assert_eq!(info["edition"], "community");
    assert_eq!(info["configuration"]["pg_password"], "******");
    assert!(!r.body.contains("hunter2"), "secrets never leave the node");
    assert_eq!(
        info["configuration"]["admin_listen"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(info["hostname"].is_string());
    let available = &info["plugins"]["available_on_server"];
    assert_eq!(
        available["key-auth"],
        serde_json::json!({"version": "3.10.0", "priority": 1250})
    );
    assert_eq!(available["prometheus"]["priority"], 13);
    assert_eq!(info["plugins"]["enabled_in_cluster"], serde_json::json!([]));
}

#[test]
fn status_counts_connections_and_reports_the_database() {
    let k = Kong::start("");
    for _ in 0..3 {
        get(&k.proxy("/"));
    }
    let s = get(&k.admin("/status")).json();
    assert_eq!(s["database"]["reachable"], true);
    assert!(
        s["server"]["total_requests"].as_u64().unwrap_or(0) >= 4,
        "{s}"
    );
    assert!(
        s["server"]["connections_accepted"].as_u64().unwrap_or(0) >= 2,
        "proxy and admin connections counted: {s}"
    );
    assert!(s["memory"]["workers_lua_vms"][0]["http_allocated_gc"]
        .as_str()
        .is_some_and(|v| v.ends_with(" MiB")));
    let bad = get(&k.admin("/status?unit=x"));
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["message"],
        "invalid unit 'x' (expected 'k/K', 'm/M', or 'g/G')"
    );
}

#[test]
fn unknown_paths_and_methods_answer_in_kongs_shape() {
    let k = Kong::start("");
    let r = get(&k.admin("/no/such/path"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), serde_json::json!({"message": "Not found"}));
    let r = send("POST", &k.admin("/status"), &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "Method not allowed"})
    );
}

#[test]
fn https_listeners_use_a_generated_certificate_and_speak_h2() {
    let k = Kong::start("");
    let r = get(&format!("https://127.0.0.1:{}/", k.admin_ssl_port));
    assert_eq!(r.status, 200);
    assert_eq!(r.version, reqwest::Version::HTTP_2);
    assert!(k
        .prefix()
        .join("ssl/admin-kong-default-ecdsa.crt")
        .is_file());
    assert!(k.prefix().join("ssl/kong-default-ecdsa.crt").is_file());
    let p = get(&format!("https://127.0.0.1:{}/x", k.proxy_ssl_port));
    assert_eq!(p.status, 404);
}

#[test]
fn status_listener_serves_status_and_readiness() {
    let port = free_port();
    let k = Kong::start(&format!("status_listen = 127.0.0.1:{port}"));
    let ready = get(&format!("http://127.0.0.1:{port}/status/ready"));
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), serde_json::json!({"message": "ready"}));
    let status = get(&format!("http://127.0.0.1:{port}/status"));
    assert_eq!(status.json()["database"]["reachable"], true);
    assert_eq!(get(&format!("http://127.0.0.1:{port}/")).status, 404);
    drop(k);
}

#[test]
fn access_logs_record_requests() {
    let k = Kong::start("");
    get(&k.proxy("/logged?x=1"));
    get(&k.admin("/status"));
    let ok = crate::support::kong::wait_until(std::time::Duration::from_secs(5), || {
        k.log("access.log")
            .contains("\"GET /logged?x=1 HTTP/1.1\" 404")
            && k.log("admin_access.log")
                .contains("\"GET /status HTTP/1.1\" 200")
    });
    assert!(
        ok,
        "access: {}\nadmin: {}",
        k.log("access.log"),
        k.log("admin_access.log")
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let k = Kong::start("log_format = json");
    get(&k.proxy("/json-log"));
    let ok = crate::support::kong::wait_until(std::time::Duration::from_secs(5), || {
        k.log("access.log").contains("/json-log")
    });
    assert!(ok);
    for file in ["access.log", "error.log"] {
        for line in k.log(file).lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{file}: not JSON ({e}): {line}"));
        }
    }
    let access: serde_json::Value = serde_json::from_str(
        k.log("access.log")
            .lines()
            .find(|l| l.contains("/json-log"))
            .unwrap_or("{}"),
    )
    .expect("json");
    assert_eq!(access["status"], 404);
    assert_eq!(access["method"], "GET");
}

#[test]
fn configured_certificates_are_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["admin.example.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (cert_path, key_path) = (dir.path().join("admin.crt"), dir.path().join("admin.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let k = Kong::start(&format!(
        "admin_ssl_cert = {}\nadmin_ssl_cert_key = {}",
        cert_path.display(),
        key_path.display()
    ));
    let port = k.admin_ssl_port;
    let root = reqwest::Certificate::from_pem(cert.pem().as_bytes()).expect("root");
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("admin.example.test", ([127, 0, 0, 1], port).into())
        .build()
        .expect("client");
    let status = crate::support::http::rt()
        .block_on(async {
            client
                .get(format!("https://admin.example.test:{port}/status"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
        .expect("the configured certificate verifies for its name");
    assert_eq!(status, 200);
    assert!(
        !k.prefix().join("ssl/admin-kong-default-ecdsa.crt").exists(),
        "no default certificate is generated when one is configured"
    );
}

#[test]
fn a_missing_certificate_file_stops_start_with_its_path() {
    let k = Kong::configure("ssl_cert = /nonexistent/c.pem\nssl_cert_key = /nonexistent/k.pem");
    let out = k.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    let t = crate::support::kong::text(&out);
    assert!(
        t.contains("could not read certificate '/nonexistent/c.pem'"),
        "{t}"
    );
}

#[test]
fn the_log_level_can_be_raised_for_a_while() {
    use crate::support::kong::wait_until;
    use std::time::Duration;
    let k = Kong::start("log_level = notice");
    let level = |k: &Kong| get(&k.admin("/debug/node/log-level")).json()["message"].clone();
    assert_eq!(level(&k), "log level: notice");
    let r = send("PUT", &k.admin("/debug/node/log-level/bogus"), &[], None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "unknown log level: bogus");
    let r = send(
        "PUT",
        &k.admin("/debug/node/log-level/debug?timeout=-1"),
        &[],
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "timeout must be greater than or equal to 0"
    );
    let r = send("PUT", &k.admin("/debug/node/log-level/notice"), &[], None);
    assert_eq!(r.json()["message"], "log level is already notice");

    let r = send(
        "PUT",
        &k.admin("/debug/node/log-level/debug?timeout=1"),
        &[],
        None,
    );
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (200, "log level changed".into())
    );
    assert_eq!(level(&k), "log level: debug");
    assert!(
        wait_until(Duration::from_secs(5), || level(&k) == "log level: notice"),
        "the configured level comes back after the timeout"
    );

    let dbless = Kong::start("database = off");
    let r = send(
        "PUT",
        &dbless.admin("/debug/node/log-level/debug"),
        &[],
        None,
    );
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json()["message"],
        "cannot change log level when not using a database"
    );
}

#[test]
fn diagnostics_of_features_a_node_does_not_run() {
    let k = Kong::start("");
    let r = get(&k.admin("/status/dns"));
    assert_eq!(r.status, 501);
    assert_eq!(
        r.json()["message"],
        "not implemented with the legacy DNS client"
    );
    for path in ["/clustering/data-planes", "/clustering/status"] {
        let r = get(&k.admin(path));
        assert_eq!(r.status, 400, "{path}");
        assert!(r.json()["message"].as_str().is_some_and(
            |m| m.contains("only available when Kong is configured to run as Control Plane")
        ));
    }
    let timers = get(&k.admin("/timers")).json();
    assert_eq!(timers["worker"]["count"], 1);
    assert!(timers["stats"]["sys"]["running"]
        .as_u64()
        .is_some_and(|n| n > 0));
}
