//! Router micro-benchmarks: lookup at 10, 1,000 and 10,000 routes, and building 10,000.
//!
//! Run: `cargo bench -j 1 --bench router -- --warm-up-time 1 --measurement-time 3`.
//!
//! Three route sets, each looked up by a request for a route in the middle of the set:
//! - `prefix`: routes with one distinct path prefix each (`/svc<i>/v1`), no hosts;
//! - `host`: routes with one distinct exact host each and the path `/`;
//! - `mix`: 45% prefix routes, 45% host routes with methods, 10% regex routes with a named
//!   capture group; the request hits a regex route (the dearest case: regex search and
//!   captures). `miss` looks up a request no route of the mix matches.
//!
//! `build` compiles the 10,000-route mix from scratch; `rebuild` compiles it again reusing the
//! previous router's regexes, as the snapshot does after a change.
//!
//! A lookup should cost the same whatever the number of routes.

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion};
use http::HeaderMap;
use kong::router::{Doc, RequestInfo, Router};
use serde_json::{json, Value};

const SERVICE: &str = "00000000-0000-4000-8000-000000000001";

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => Doc::new(),
    }
}

fn route(i: usize, fields: Value) -> Doc {
    let mut d = doc(json!({
        "id": format!("10000000-0000-4000-8000-{i:012}"),
        "protocols": ["http", "https"],
        "service": {"id": SERVICE},
        "strip_path": true,
        "regex_priority": 0,
    }));
    d.extend(doc(fields));
    d
}

fn services() -> Vec<Doc> {
    vec![doc(json!({
        "id": SERVICE, "protocol": "http", "host": "upstream.test", "port": 80, "path": "/base",
    }))]
}

#[derive(Clone, Copy)]
enum Set {
    Prefix,
    Host,
    Mix,
}

fn routes(set: Set, n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| match set {
            Set::Prefix => route(i, json!({"paths": [format!("/svc{i}/v1")]})),
            Set::Host => route(
                i,
                json!({"hosts": [format!("h{i}.example.com")], "paths": ["/"]}),
            ),
            Set::Mix if i % 10 == 9 => route(
                i,
                json!({"paths": [format!(r"~/r{i}/(?<id>\d+)/items$")], "regex_priority": i % 7}),
            ),
            Set::Mix if i % 2 == 0 => route(i, json!({"paths": [format!("/svc{i}/v1")]})),
            Set::Mix => route(
                i,
                json!({"hosts": [format!("h{i}.example.com")], "methods": ["GET", "POST"]}),
            ),
        })
        .collect()
}

/// Host and path of a request for a route in the middle of the set.
fn request(set: Set, n: usize) -> (String, String) {
    let mid = n / 2;
    match set {
        Set::Prefix => ("api.test".into(), format!("/svc{mid}/v1/users/42")),
        Set::Host => (format!("h{mid}.example.com"), "/orders/1".into()),
        // The regex route nearest the middle.
        Set::Mix => (
            "api.test".into(),
            format!("/r{}/12345/items", mid - mid % 10 + 9),
        ),
    }
}

fn bench_find(
    c: &mut Criterion,
    name: &str,
    set: Set,
    request: impl Fn(usize) -> (String, String),
) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group(format!("lookup/{name}"));
    for n in [10, 1_000, 10_000] {
        let router = match Router::build(&routes(set, n), &services()) {
            Ok(r) => r,
            Err(e) => panic!("router build failed: {e}"),
        };
        let (host, path) = request(n);
        let mut info = RequestInfo::new("GET", &path, &headers);
        info.host = Some(&host);
        let expect_match = name != "miss";
        assert_eq!(router.find(&info).is_some(), expect_match, "{name} {n}");
        group.bench_with_input(BenchmarkId::from_parameter(n), &info, |b, info| {
            b.iter(|| black_box(router.find(black_box(info))).is_some())
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    for (name, set) in [
        ("prefix", Set::Prefix),
        ("host", Set::Host),
        ("mix", Set::Mix),
    ] {
        bench_find(c, name, set, |n| request(set, n));
    }
    bench_find(c, "miss", Set::Mix, |_| {
        ("nope.test".into(), "/nothing/here".into())
    });
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    let routes = routes(Set::Mix, 10_000);
    let services = services();
    group.bench_function("mix/10000", |b| {
        b.iter(|| Router::build(black_box(&routes), black_box(&services)).is_ok())
    });
    let previous = match Router::build(&routes, &services) {
        Ok(r) => r,
        Err(e) => panic!("router build failed: {e}"),
    };
    group.bench_function("rebuild/mix/10000", |b| {
        b.iter(|| {
            previous
                .rebuild(black_box(&routes), black_box(&services))
                .is_ok()
        })
    });
    group.finish();
}

// In a private module: the function the macro generates is not public API to document.
mod group {
    criterion::criterion_group!(benches, super::lookup, super::build);
}
criterion_main!(group::benches);
