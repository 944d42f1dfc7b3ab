//! `rate-limiting` and `response-ratelimiting` through the real binary: Kong's statuses,
//! bodies and headers, separate counters per identifier, and each policy's store (`local`,
//! `cluster` on SQLite and PostgreSQL, `redis` against a real `redis-server`, including one
//! that goes away).
//!
//! Windows are aligned to the calendar, so tests use hour (and longer) windows and, before a
//! scenario, step past a window boundary that is only seconds away ([`fresh_window`]): a test
//! never sees its counters reset halfway.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::support::admin::admin;
use crate::support::http::{rt, send, Reply};
use crate::support::kong::{wait_until, Kong};
use crate::support::pg::require_pg;
use crate::support::redis::{require_redis, require_redis_tls};
use crate::support::upstream::EchoUpstream;

fn admin_reply(kong: &Kong, method: &str, path: &str, body: Value) -> Reply {
    send(
        method,
        &kong.admin(path),
        &[("content-type", "application/json")],
        Some(body.to_string()),
    )
}

fn get(kong: &Kong, path: &str, headers: &[(&str, &str)]) -> Reply {
    match headers.iter().find(|(k, _)| *k == FROM) {
        Some((_, from)) => get_from(from, &kong.proxy(path)),
        None => send("GET", &kong.proxy(path), headers, None),
    }
}

/// A pseudo header naming the loopback address a request is sent from (the whole of
/// 127.0.0.0/8 reaches the node), so tests have several client IPs.
const FROM: &str = "from";

fn get_from(from: &str, url: &str) -> Reply {
    let ip: std::net::IpAddr = from.parse().expect("source address");
    let client = reqwest::Client::builder()
        .local_address(ip)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    rt().block_on(async move {
        let resp = client.get(url).send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let version = resp.version();
        let body = resp.text().await.expect("body");
        Reply {
            status,
            headers,
            body,
            version,
        }
    })
}

/// Waits until `GET path` (with `headers`) answers with `header` set: the plugin is live.
fn until_header(kong: &Kong, path: &str, headers: &[(&str, &str)], header: &str) -> Reply {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(10), || {
        let r = get(kong, path, headers);
        let done = r.header(header).is_some();
        last = Some(r);
        done
    });
    let last = last.expect("a reply");
    assert!(
        ok,
        "GET {path} never had {header}: {} {:?}",
        last.status, last.headers
    );
    last
}

/// Waits until `GET path` answers `status`.
fn until_status(kong: &Kong, path: &str, headers: &[(&str, &str)], status: u16) -> Reply {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(10), || {
        let r = get(kong, path, headers);
        let done = r.status == status;
        last = Some(r);
        done
    });
    let last = last.expect("a reply");
    assert!(
        ok,
        "GET {path} never answered {status}: {} {}",
        last.status, last.body
    );
    last
}

/// If the current `len`-second window ends within 15 s, sleeps into the next one.
fn fresh_window(len: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let left = len - now % len;
    if left < 15 {
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} in {} {:?}", r.status, r.headers))
}

/// A service and a route at `path` to `upstream`; returns the route's id.
fn route(kong: &Kong, name: &str, path: &str, upstream: &str) -> String {
    admin(
        kong,
        "POST",
        "/services",
        json!({"name": name, "url": upstream}),
    );
    let r = admin(
        kong,
        "POST",
        &format!("/services/{name}/routes"),
        json!({"name": name, "paths": [path]}),
    );
    r["id"].as_str().expect("route id").to_owned()
}

/// Sends `n` requests that must all pass; returns the last.
fn pass(kong: &Kong, path: &str, headers: &[(&str, &str)], n: usize) -> Reply {
    let mut last = None;
    for i in 0..n {
        let r = get(kong, path, headers);
        assert_eq!(r.status, 200, "request {i}: {} {:?}", r.body, r.headers);
        last = Some(r);
    }
    last.expect("at least one request")
}

#[test]
fn local_policy_counts_down_then_answers_429_as_kong_does() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "rl", "/rl", &echo.url());
    admin(
        &kong,
        "POST",
        "/routes/rl/plugins",
        json!({"name": "rate-limiting", "config": {
            "hour": 3, "day": 5, "limit_by": "header", "header_name": "x-client"
        }}),
    );
    until_header(
        &kong,
        "/rl",
        &[("x-client", "warm-up")],
        "x-ratelimit-limit-hour",
    );
    fresh_window(3600);

    let a = [("x-client", "a")];
    for (i, left) in [(1, 2), (2, 1), (3, 0)] {
        let r = get(&kong, "/rl", &a);
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(header(&r, "x-ratelimit-limit-hour"), "3");
        assert_eq!(header(&r, "x-ratelimit-remaining-hour"), left.to_string());
        assert_eq!(header(&r, "x-ratelimit-limit-day"), "5");
        assert_eq!(header(&r, "x-ratelimit-remaining-day"), (5 - i).to_string());
        // The most restrictive window is the hour.
        assert_eq!(header(&r, "ratelimit-limit"), "3");
        assert_eq!(header(&r, "ratelimit-remaining"), left.to_string());
        let reset: u64 = header(&r, "ratelimit-reset").parse().expect("seconds");
        assert!((1..=3600).contains(&reset), "{reset}");
        assert!(r.header("retry-after").is_none());
        assert_eq!(r.json()["headers"]["x-client"], "a", "proxied");
    }

    let r = get(&kong, "/rl", &a);
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"message": "API rate limit exceeded"}));
    assert!(header(&r, "content-type").starts_with("application/json"));
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    // Only the exhausted window counts the rejected request down: the day still has 2.
    assert_eq!(header(&r, "x-ratelimit-remaining-day"), "2");
    assert_eq!(header(&r, "ratelimit-remaining"), "0");
    assert_eq!(header(&r, "retry-after"), header(&r, "ratelimit-reset"));
    // Rejected requests are not counted: the day is still at 2 left.
    assert_eq!(
        header(&get(&kong, "/rl", &a), "x-ratelimit-remaining-day"),
        "2"
    );

    // Another header value has its own counter.
    let r = get(&kong, "/rl", &[("x-client", "b")]);
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "2");

    // No header: the client IP is the identifier, so a header carrying that IP shares it.
    pass(&kong, "/rl", &[], 3);
    assert_eq!(get(&kong, "/rl", &[]).status, 429);
    assert_eq!(get(&kong, "/rl", &[("x-client", "127.0.0.1")]).status, 429);
}

#[test]
fn ip_path_and_service_identifiers_have_separate_counters() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "s1", "/s1", &echo.url());
    admin(
        &kong,
        "POST",
        "/services/s1/routes",
        json!({"name": "s1b", "paths": ["/s1b"]}),
    );
    route(&kong, "s2", "/s2", &echo.url());
    route(&kong, "p", "/p", &echo.url());
    admin(
        &kong,
        "POST",
        "/services/s1/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 2, "limit_by": "ip"}}),
    );
    admin(
        &kong,
        "POST",
        "/services/s2/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 2, "limit_by": "service"}}),
    );
    admin(
        &kong,
        "POST",
        "/services/p/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 2, "limit_by": "path", "path": "/p/counted"}}),
    );
    let warm = [(FROM, "127.0.9.9")];
    until_header(&kong, "/s1", &warm, "x-ratelimit-limit-hour");
    until_header(&kong, "/s2", &warm, "x-ratelimit-limit-hour");
    until_header(&kong, "/p/warm", &warm, "x-ratelimit-limit-hour");
    fresh_window(3600);

    // limit_by ip: per client address, across the service's routes.
    let one = [(FROM, "127.0.0.11")];
    let two = [(FROM, "127.0.0.12")];
    pass(&kong, "/s1", &one, 1);
    pass(&kong, "/s1b", &one, 1);
    assert_eq!(get(&kong, "/s1", &one).status, 429);
    assert_eq!(get(&kong, "/s1b", &one).status, 429);
    let r = pass(&kong, "/s1", &two, 1);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "1");

    // limit_by service: every client together (the warm-up request counted already).
    let r = get(&kong, "/s2", &one);
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    assert_eq!(get(&kong, "/s2", &two).status, 429);

    // limit_by path: the configured path has its own counter; other paths count by IP.
    pass(&kong, "/p/counted", &one, 1);
    pass(&kong, "/p/counted", &two, 1);
    assert_eq!(
        get(&kong, "/p/counted", &[(FROM, "127.0.0.13")]).status,
        429
    );
    let r = pass(&kong, "/p/other", &one, 1);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "1");
}

#[test]
fn hidden_headers_and_a_custom_error() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "h", "/h", &echo.url());
    let plugin = admin(
        &kong,
        "POST",
        "/routes/h/plugins",
        json!({"name": "rate-limiting", "config": {
            "hour": 1, "limit_by": "header", "header_name": "x-client",
            "error_code": 403, "error_message": "slow down"
        }}),
    );
    until_header(
        &kong,
        "/h",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    let id = plugin["id"].as_str().expect("id");
    admin(
        &kong,
        "PATCH",
        &format!("/plugins/{id}"),
        json!({"config": {
            "hour": 1, "limit_by": "header", "header_name": "x-client",
            "error_code": 403, "error_message": "slow down", "hide_client_headers": true
        }}),
    );
    // The warm-up client is used up; once the change is live its answer has no headers.
    let r = until_status(&kong, "/h", &[("x-client", "warm")], 403);
    let live = wait_until(Duration::from_secs(10), || {
        get(&kong, "/h", &[("x-client", "warm")])
            .header("x-ratelimit-limit-hour")
            .is_none()
    });
    assert!(
        live,
        "hide_client_headers never took effect: {:?}",
        r.headers
    );
    fresh_window(3600);

    let r = get(&kong, "/h", &[("x-client", "c")]);
    assert_eq!(r.status, 200);
    for name in [
        "x-ratelimit-limit-hour",
        "x-ratelimit-remaining-hour",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(r.header(name).is_none(), "{name} shown");
    }
    let r = get(&kong, "/h", &[("x-client", "c")]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json(), json!({"message": "slow down"}));
    assert!(r.header("retry-after").is_none());
}

#[test]
fn local_counters_survive_configuration_changes() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "keep", "/keep", &echo.url());
    let plugin = admin(
        &kong,
        "POST",
        "/routes/keep/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 3, "day": 10, "limit_by": "header", "header_name": "x-client"}}),
    );
    until_header(
        &kong,
        "/keep",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    fresh_window(3600);
    pass(&kong, "/keep", &[("x-client", "k")], 2);

    // A new instance of the plugin (changed config) on the same route counts on.
    let id = plugin["id"].as_str().expect("id");
    admin(
        &kong,
        "PATCH",
        &format!("/plugins/{id}"),
        json!({"config": {"hour": 3, "day": 11, "limit_by": "header", "header_name": "x-client"}}),
    );
    let r = until_header(
        &kong,
        "/keep",
        &[("x-client", "probe")],
        "x-ratelimit-limit-day",
    );
    let live = wait_until(Duration::from_secs(10), || {
        get(&kong, "/keep", &[("x-client", "probe")]).header("x-ratelimit-limit-day") == Some("11")
    });
    assert!(live, "the change never went live: {:?}", r.headers);
    // Unrelated changes rebuild the configuration too.
    admin(&kong, "POST", "/consumers", json!({"username": "someone"}));
    let r = get(&kong, "/keep", &[("x-client", "k")]);
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    assert_eq!(get(&kong, "/keep", &[("x-client", "k")]).status, 429);
}

#[test]
fn schemas_check_what_kong_checks() {
    let kong = Kong::start("");
    let bad = |config: Value| {
        let r = admin_reply(
            &kong,
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": config}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        r.json()
    };
    let e = bad(json!({}));
    assert_eq!(
        e["fields"]["@entity"],
        json!(["at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"]),
        "{e}"
    );
    let e = bad(json!({"second": 20, "hour": 10}));
    assert_eq!(
        e["fields"]["config"],
        "The limit for hour(10.0) cannot be lower than the limit for second(20.0)",
        "{e}"
    );
    let e = bad(json!({"minute": 0}));
    assert_eq!(
        e["fields"]["config"]["minute"], "value must be greater than 0",
        "{e}"
    );
    let e = bad(json!({"minute": 1, "policy": "redis"}));
    assert_eq!(
        e["fields"]["config"]["redis"]["host"], "required field missing",
        "{e}"
    );
    assert!(
        e["fields"]["@entity"]
            .to_string()
            .contains("failed conditional validation given value of field 'config.policy'"),
        "{e}"
    );
    let e = bad(json!({"minute": 1, "limit_by": "header"}));
    assert_eq!(
        e["fields"]["config"]["header_name"], "required field missing",
        "{e}"
    );
    let e = bad(json!({"minute": 1, "sync_rate": 1}));
    assert_eq!(
        e["fields"]["config"], "sync_rate can only be used with the redis policy",
        "{e}"
    );
    let e = bad(json!({"minute": 1, "policy": "nope"}));
    assert_eq!(
        e["fields"]["config"]["policy"], "expected one of: local, cluster, redis",
        "{e}"
    );

    // The deprecated flat redis fields land in the record; defaults fill the rest.
    let created = admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "rate-limiting", "config": {
            "minute": 1, "policy": "redis", "redis_host": "127.0.0.1", "redis_port": 6380,
            "redis_database": 2
        }}),
    );
    let config = &created["config"];
    assert_eq!(config["redis"]["host"], "127.0.0.1", "{config}");
    assert_eq!(config["redis"]["port"], 6380);
    assert_eq!(config["redis"]["database"], 2);
    assert_eq!(config["redis"]["timeout"], 2000);
    assert_eq!(config["limit_by"], "consumer");
    assert_eq!(config["error_code"], 429);
    assert_eq!(config["error_message"], "API rate limit exceeded");
    assert_eq!(config["fault_tolerant"], true);
    assert_eq!(config["sync_rate"], -1);
    assert!(config.get("redis_host").is_none(), "{config}");

    let bad = |config: Value| {
        let r = admin_reply(
            &kong,
            "POST",
            "/plugins",
            json!({"name": "response-ratelimiting", "config": config}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        r.json()
    };
    let e = bad(json!({}));
    assert_eq!(
        e["fields"]["config"]["limits"], "required field missing",
        "{e}"
    );
    let e = bad(json!({"limits": {"video": {}}}));
    assert_eq!(
        e["fields"]["config"]["limits"]["video"],
        "at least one of these fields must be non-empty: 'second', 'minute', 'hour', 'day', 'month', 'year'",
        "{e}"
    );
    let e = bad(json!({"limits": {"video": {"second": 20, "minute": 10}}}));
    assert_eq!(
        e["fields"]["config"]["limits"]["video"],
        "the limit for minute(10.0) cannot be lower than the limit for second(20.0)",
        "{e}"
    );
    let created = admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "response-ratelimiting", "config": {"limits": {"video": {"minute": 10}}}}),
    );
    assert_eq!(created["config"]["header_name"], "x-kong-limit");
    assert_eq!(created["config"]["block_on_first_violation"], false);
}

#[test]
fn dbless_nodes_refuse_the_cluster_policy() {
    let kong = Kong::start("database = off");
    let doc = json!({"_format_version": "3.0", "plugins": [
        {"name": "rate-limiting", "config": {"minute": 1, "policy": "cluster"}}
    ]});
    let r = send(
        "POST",
        &kong.admin("/config"),
        &[("content-type", "application/json")],
        Some(doc.to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("expected one of: local, redis"),
        "{}",
        r.body
    );
    let schema = send(
        "GET",
        &kong.admin("/schemas/plugins/rate-limiting"),
        &[],
        None,
    );
    assert!(!schema.body.contains("cluster"), "{}", schema.body);
}

/// The `cluster` policy on the default SQLite datastore: counts are rows, so they outlive the
/// node.
#[test]
fn cluster_policy_on_sqlite_survives_a_restart() {
    let echo = EchoUpstream::start();
    let mut kong = Kong::start("");
    route(&kong, "c", "/c", &echo.url());
    admin(
        &kong,
        "POST",
        "/routes/c/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 3, "policy": "cluster", "limit_by": "header", "header_name": "x-client"}}),
    );
    until_header(
        &kong,
        "/c",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    fresh_window(3600);
    let r = pass(&kong, "/c", &[("x-client", "c")], 2);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "1");

    let stopped = kong.run(&["stop"]);
    assert!(stopped.status.success());
    kong.set_stopped();
    let started = kong.run(&["start"]);
    assert!(started.status.success());
    kong.set_running();
    kong.wait_ready();
    let r = until_header(&kong, "/c", &[("x-client", "c")], "x-ratelimit-limit-hour");
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    assert_eq!(get(&kong, "/c", &[("x-client", "c")]).status, 429);
}

/// The `cluster` policy on PostgreSQL: two nodes on one database share the counters.
#[test]
fn cluster_policy_on_postgres_is_shared_by_nodes() {
    let Some(pg) = require_pg() else { return };
    let database = pg.create_database("ratelimit").expect("database");
    let env = pg.kong_env(&database);
    let mut lines = String::from("db_update_frequency = 1\n");
    for (k, v) in &env {
        let key = k.trim_start_matches("KONG_").to_ascii_lowercase();
        lines.push_str(&format!("{key} = {v}\n"));
    }
    let echo = EchoUpstream::start();
    let mut a = Kong::configure(&lines);
    let out = a.run(&["start", "--run-migrations"]);
    assert!(out.status.success(), "{}", crate::support::kong::text(&out));
    a.set_running();
    a.wait_ready();
    route(&a, "pg", "/pg", &echo.url());
    admin(
        &a,
        "POST",
        "/routes/pg/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 3, "policy": "cluster", "limit_by": "header", "header_name": "x-client"}}),
    );
    until_header(&a, "/pg", &[("x-client", "warm")], "x-ratelimit-limit-hour");
    // Nodes do not follow each other's changes yet: the second one starts with them.
    let mut b = Kong::configure(&lines);
    let out = b.run(&["start"]);
    assert!(out.status.success(), "{}", crate::support::kong::text(&out));
    b.set_running();
    b.wait_ready();
    until_header(&b, "/pg", &[("x-client", "warm")], "x-ratelimit-limit-hour");
    fresh_window(3600);

    let who = [("x-client", "shared")];
    let r = pass(&a, "/pg", &who, 2);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "1");
    let r = pass(&b, "/pg", &who, 1);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    let r = get(&a, "/pg", &who);
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"message": "API rate limit exceeded"}));
    let rows = pg
        .psql(
            &database,
            "SELECT value FROM ratelimiting_metrics WHERE identifier = 'shared' AND period = 'hour'",
        )
        .expect("rows");
    assert_eq!(rows, "3");
}

#[test]
fn redis_policy_with_auth_and_a_database() {
    let Some(redis) = require_redis(Some("s3cret")) else {
        return;
    };
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "r", "/r", &echo.url());
    route(&kong, "bad", "/bad", &echo.url());
    route(&kong, "user", "/user", &echo.url());
    let config = |extra: Value| {
        let mut c = json!({"hour": 3, "policy": "redis", "limit_by": "header", "header_name": "x-client",
            "redis": {"host": "127.0.0.1", "port": redis.port, "password": "s3cret", "database": 3}});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    };
    admin(
        &kong,
        "POST",
        "/routes/r/plugins",
        json!({"name": "rate-limiting", "config": config(json!({}))}),
    );
    // The default user by name, with the deprecated flat fields.
    admin(
        &kong,
        "POST",
        "/routes/user/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 3, "policy": "redis", "limit_by": "header", "header_name": "x-client",
            "redis_host": "127.0.0.1", "redis_port": redis.port, "redis_username": "default", "redis_password": "s3cret"}}),
    );
    // A wrong password: the plugin cannot count.
    admin(
        &kong,
        "POST",
        "/routes/bad/plugins",
        json!({"name": "rate-limiting", "config": config(json!({
            "fault_tolerant": false,
            "redis": {"host": "127.0.0.1", "port": redis.port, "password": "wrong"}
        }))}),
    );
    until_header(
        &kong,
        "/r",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    until_header(
        &kong,
        "/user",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    fresh_window(3600);

    let who = [("x-client", "red")];
    let r = pass(&kong, "/r", &who, 3);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "0");
    let r = get(&kong, "/r", &who);
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"message": "API rate limit exceeded"}));
    // Kong's keys, in the configured database.
    let keys = redis.cmd(3, &["KEYS", "ratelimit:*:red:*:hour"]);
    let redis::Value::Array(keys) = keys else {
        panic!("KEYS answered {keys:?}")
    };
    assert_eq!(keys.len(), 1, "{keys:?}");
    let redis::Value::Array(none) = redis.cmd(0, &["KEYS", "ratelimit:*:red:*"]) else {
        panic!("KEYS")
    };
    assert!(
        none.is_empty(),
        "nothing in database 0 but the /user counters"
    );

    let r = pass(&kong, "/user", &who, 1);
    assert_eq!(header(&r, "x-ratelimit-remaining-hour"), "2");

    let r = until_status(&kong, "/bad", &who, 500);
    assert_eq!(r.json()["message"], "An unexpected error occurred");
}

#[test]
fn redis_going_away_fails_open_or_closed() {
    let Some(mut redis) = require_redis(None) else {
        return;
    };
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "open", "/open", &echo.url());
    route(&kong, "closed", "/closed", &echo.url());
    for (route, tolerant) in [("open", true), ("closed", false)] {
        admin(
            &kong,
            "POST",
            &format!("/routes/{route}/plugins"),
            json!({"name": "rate-limiting", "config": {"hour": 100, "policy": "redis",
                "limit_by": "header", "header_name": "x-client", "fault_tolerant": tolerant,
                "redis": {"host": "127.0.0.1", "port": redis.port, "timeout": 500}}}),
        );
    }
    until_header(
        &kong,
        "/open",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    until_header(
        &kong,
        "/closed",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );

    redis.kill();
    for _ in 0..3 {
        let r = get(&kong, "/open", &[("x-client", "x")]);
        assert_eq!(r.status, 200, "fault tolerant: proxied without limiting");
        assert!(
            r.header("x-ratelimit-limit-hour").is_none(),
            "{:?}",
            r.headers
        );
        let r = get(&kong, "/closed", &[("x-client", "x")]);
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["message"], "An unexpected error occurred");
    }

    // Back again: limiting resumes on a new connection.
    redis.restart().expect("redis again");
    until_header(
        &kong,
        "/open",
        &[("x-client", "x")],
        "x-ratelimit-limit-hour",
    );
    until_status(&kong, "/closed", &[("x-client", "x")], 200);
}

/// An upstream that reports usage: `/...?usage=<value>` answers with `x-kong-limit: <value>`
/// and a JSON body of the request headers it got.
struct UsageUpstream {
    addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl UsageUpstream {
    fn start() -> UsageUpstream {
        let listener = rt()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        rt().spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = &mut stop => return,
                };
                let Ok((stream, _)) = conn else { continue };
                tokio::spawn(async move {
                    let service = service_fn(|req: hyper::Request<Incoming>| async move {
                        let usage = req.uri().query().and_then(|q| {
                            form_urlencoded::parse(q.as_bytes())
                                .find(|(k, _)| k == "usage")
                                .map(|(_, v)| v.into_owned())
                        });
                        let mut headers = serde_json::Map::new();
                        for (k, v) in req.headers() {
                            headers.insert(
                                k.as_str().to_owned(),
                                Value::from(v.to_str().unwrap_or_default()),
                            );
                        }
                        let body = json!({"headers": headers}).to_string();
                        let mut resp = hyper::Response::builder()
                            .status(200)
                            .header("content-type", "application/json");
                        if let Some(usage) = usage {
                            resp = resp.header("x-kong-limit", usage);
                        }
                        Ok::<_, Infallible>(
                            resp.body(Full::new(Bytes::from(body))).expect("response"),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        UsageUpstream {
            addr,
            _shutdown: shutdown,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn usage_path(path: &str, usage: &str) -> String {
    let usage: String = form_urlencoded::byte_serialize(usage.as_bytes()).collect();
    format!("{path}?usage={usage}")
}

/// Runs the usage scenario on `path` for `policy`; `settle` waits for increments counted in
/// the background.
fn response_limits_scenario(kong: &Kong, path: &str, who: &[(&str, &str)]) {
    let settle = |expected_left: &str| {
        let ok = wait_until(Duration::from_secs(5), || {
            get(kong, path, who).json()["headers"]["x-ratelimit-remaining-videos"] == expected_left
        });
        assert!(ok, "the upstream never saw {expected_left} left");
    };
    let r = get(kong, &usage_path(path, "videos=2, images=1"), who);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-ratelimit-remaining-videos"], "3");
    assert_eq!(r.json()["headers"]["x-ratelimit-remaining-images"], "100");
    assert!(
        r.header("x-kong-limit").is_none(),
        "the usage header is removed"
    );
    assert_eq!(header(&r, "x-ratelimit-limit-videos-hour"), "3");
    assert_eq!(header(&r, "x-ratelimit-remaining-videos-hour"), "1");
    assert_eq!(header(&r, "x-ratelimit-limit-images-hour"), "100");
    assert_eq!(header(&r, "x-ratelimit-remaining-images-hour"), "99");
    settle("1");

    let r = get(kong, &usage_path(path, "videos=1"), who);
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-videos-hour"), "0");
    settle("0");

    // Used up, and used again: 429 without the upstream's body.
    let r = get(kong, &usage_path(path, "videos=1"), who);
    assert_eq!(r.status, 429);
    assert_eq!(r.body, "");
    assert!(r.header("x-kong-limit").is_none());
    // Requests that use nothing still pass.
    let r = get(kong, path, who);
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-videos-hour"), "0");
}

#[test]
fn response_ratelimiting_counts_what_the_upstream_reports() {
    let upstream = UsageUpstream::start();
    let kong = Kong::start("");
    route(&kong, "v", "/v", &upstream.url());
    route(&kong, "block", "/block", &upstream.url());
    let limits = json!({"videos": {"hour": 3, "day": 10}, "images": {"hour": 100}});
    admin(
        &kong,
        "POST",
        "/routes/v/plugins",
        json!({"name": "response-ratelimiting", "config": {"limits": limits, "limit_by": "ip"}}),
    );
    admin(
        &kong,
        "POST",
        "/routes/block/plugins",
        json!({"name": "response-ratelimiting", "config": {"limits": {"videos": {"hour": 1}}, "limit_by": "ip", "block_on_first_violation": true}}),
    );
    until_header(&kong, "/v", &[], "x-ratelimit-limit-videos-hour");
    until_header(&kong, "/block", &[], "x-ratelimit-limit-videos-hour");
    fresh_window(3600);
    response_limits_scenario(&kong, "/v", &[(FROM, "127.0.1.1")]);
    // Another client has its own counters.
    let r = get(&kong, "/v", &[(FROM, "127.0.1.2")]);
    assert_eq!(header(&r, "x-ratelimit-remaining-videos-hour"), "3");

    // block_on_first_violation: once used up, requests are refused before the upstream.
    let who = [(FROM, "127.0.1.3")];
    let r = get(&kong, &usage_path("/block", "videos=1"), &who);
    assert_eq!(r.status, 200);
    let r = get(&kong, "/block", &who);
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json(),
        json!({"message": "API rate limit exceeded for 'videos'"})
    );
}

#[test]
fn response_ratelimiting_on_the_datastore_and_redis() {
    let upstream = UsageUpstream::start();
    let redis = require_redis(None);
    let kong = Kong::start("");
    let limits = json!({"videos": {"hour": 3}, "images": {"hour": 100}});
    route(&kong, "db", "/db", &upstream.url());
    admin(
        &kong,
        "POST",
        "/routes/db/plugins",
        json!({"name": "response-ratelimiting", "config": {"limits": limits, "policy": "cluster", "limit_by": "ip"}}),
    );
    until_header(&kong, "/db", &[], "x-ratelimit-limit-videos-hour");
    if let Some(redis) = &redis {
        route(&kong, "red", "/red", &upstream.url());
        admin(
            &kong,
            "POST",
            "/routes/red/plugins",
            json!({"name": "response-ratelimiting", "config": {"limits": limits, "policy": "redis", "limit_by": "ip",
                "redis": {"host": "127.0.0.1", "port": redis.port}}}),
        );
        until_header(&kong, "/red", &[], "x-ratelimit-limit-videos-hour");
    }
    fresh_window(3600);
    response_limits_scenario(&kong, "/db", &[]);
    if redis.is_some() {
        response_limits_scenario(&kong, "/red", &[]);
    }
}

#[test]
fn redis_over_tls_verified_or_not() {
    let Some(redis) = require_redis_tls() else {
        return;
    };
    let cert = redis.tls_cert.clone().expect("certificate");
    let echo = EchoUpstream::start();
    let kong = Kong::start(&format!("lua_ssl_trusted_certificate = {}", cert.display()));
    let tls = |verify: bool, server_name: Option<&str>| {
        json!({"hour": 3, "policy": "redis", "limit_by": "header", "header_name": "x-client",
            "fault_tolerant": false,
            "redis": {"host": "127.0.0.1", "port": redis.port, "ssl": true, "ssl_verify": verify,
                "server_name": server_name}})
    };
    for (name, config) in [
        ("plain", tls(false, None)),
        ("verified", tls(true, Some("localhost"))),
        // The certificate is for localhost, not for the address.
        ("wrong-name", tls(true, None)),
    ] {
        route(&kong, name, &format!("/{name}"), &echo.url());
        admin(
            &kong,
            "POST",
            &format!("/routes/{name}/plugins"),
            json!({"name": "rate-limiting", "config": config}),
        );
    }
    until_header(
        &kong,
        "/plain",
        &[("x-client", "t")],
        "x-ratelimit-limit-hour",
    );
    let r = until_header(
        &kong,
        "/verified",
        &[("x-client", "t")],
        "x-ratelimit-limit-hour",
    );
    assert_eq!(r.status, 200);
    let r = until_status(&kong, "/wrong-name", &[("x-client", "t")], 500);
    assert_eq!(r.json()["message"], "An unexpected error occurred");
}

#[test]
fn redis_sync_rate_counts_locally_and_sends_later() {
    let Some(redis) = require_redis(None) else {
        return;
    };
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    route(&kong, "sync", "/sync", &echo.url());
    admin(
        &kong,
        "POST",
        "/routes/sync/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 3, "policy": "redis", "sync_rate": 0.2,
            "limit_by": "header", "header_name": "x-client",
            "redis": {"host": "127.0.0.1", "port": redis.port}}}),
    );
    until_header(
        &kong,
        "/sync",
        &[("x-client", "warm")],
        "x-ratelimit-limit-hour",
    );
    fresh_window(3600);
    let who = [("x-client", "s")];
    for left in ["2", "1", "0"] {
        let r = pass(&kong, "/sync", &who, 1);
        assert_eq!(header(&r, "x-ratelimit-remaining-hour"), left);
    }
    assert_eq!(get(&kong, "/sync", &who).status, 429);
    // Within a few sync periods, Redis holds the three requests.
    let value = || {
        let keys = redis.cmd(0, &["KEYS", "ratelimit:*:s:*:hour"]);
        let redis::Value::Array(keys) = keys else {
            return None;
        };
        let key = match keys.first() {
            Some(redis::Value::BulkString(k)) => String::from_utf8_lossy(k).into_owned(),
            _ => return None,
        };
        match redis.cmd(0, &["GET", &key]) {
            redis::Value::BulkString(v) => String::from_utf8_lossy(&v).parse::<i64>().ok(),
            _ => None,
        }
    };
    let synced = wait_until(Duration::from_secs(5), || value().is_some_and(|v| v >= 3));
    assert!(synced, "Redis has {:?}", value());
    // Counted in Redis, the limit holds after the local view was dropped.
    assert_eq!(get(&kong, "/sync", &who).status, 429);
}
