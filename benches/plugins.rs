//! Plugin chain overhead: what the phase driver costs per request, apart from what plugins do.
//!
//! Run: `cargo bench -j 1 --bench plugins -- --warm-up-time 1 --measurement-time 3`.
//!
//! `resolve+access/N`: the access phase over a route whose chain holds N plugins that do nothing
//! (each resolved by scope, checked for its protocol, collected, called), plus building the
//! request context the phases run on. `N = 0` is the context alone. The difference per plugin
//! is the framework's cost per plugin per request.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_main, BenchmarkId, Criterion};
use kong::plugins::{BuildEnv, Ctx, Kind, Plugin, Plugins, Registry};
use kong::router::{Doc, Protocol, Router};
use kong::snapshot::Snapshot;
use kong::store::schema::{PluginSchema, Record};
use serde_json::{json, Value};

/// A plugin kind whose instances do nothing, one kind per priority.
struct Noop(&'static str, i32);

struct Nothing;
impl Plugin for Nothing {}

impl Kind for Noop {
    fn name(&self) -> &'static str {
        self.0
    }
    fn priority(&self) -> i32 {
        self.1
    }
    fn schema(&self) -> PluginSchema {
        PluginSchema {
            name: self.0.into(),
            config: Record::new(vec![]),
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }
    fn build(&self, _: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Nothing))
    }
}

const NAMES: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => Doc::new(),
    }
}

fn bench(c: &mut Criterion) {
    let service = "00000000-0000-4000-8000-000000000001";
    let route = "10000000-0000-4000-8000-000000000001";
    let build_router = || {
        Router::build(
            &[doc(
                json!({"id": route, "paths": ["/"], "service": {"id": service}}),
            )],
            &[doc(
                json!({"id": service, "protocol": "http", "host": "h", "port": 80}),
            )],
        )
        .unwrap_or_else(|_| Router::empty())
    };
    let router = build_router();
    let kinds: Vec<Arc<dyn Kind>> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| Arc::new(Noop(n, 100 - i as i32)) as Arc<dyn Kind>)
        .collect();
    let enabled: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    let Ok(registry) = Registry::new(&enabled, kinds, BuildEnv::default()) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut group = c.benchmark_group("resolve+access");
    for n in [0usize, 1, 3, 8] {
        let docs: Vec<Doc> = NAMES[..n]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                doc(
                    json!({"id": format!("20000000-0000-4000-8000-{i:012}"), "name": name,
                           "route": {"id": route}, "config": {}}),
                )
            })
            .collect();
        let plugins = Plugins::build(&docs, &router, &registry, None);
        let mut snapshot = Snapshot::empty();
        snapshot.router = Arc::new(build_router());
        snapshot.plugins = plugins;
        let snapshot = Arc::new(snapshot);
        let started = std::time::Instant::now();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let head = http::Request::new(()).into_parts().0;
                let mut ctx = Ctx::new(
                    snapshot.clone(),
                    head,
                    std::net::Ipv4Addr::LOCALHOST.into(),
                    "http",
                    "0123456789abcdef0123456789abcdef",
                    started,
                );
                let chain = snapshot.plugins.for_route(0);
                let mut collected = Vec::new();
                let done = rt.block_on(kong::proxy::phases::access(
                    chain,
                    &mut ctx,
                    Protocol::Http,
                    &mut collected,
                ));
                black_box((done.is_ok(), collected.len()));
            })
        });
    }
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}

criterion_main!(benches);
