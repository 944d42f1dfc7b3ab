//! Balancer selection cost: one pick per request for each algorithm, over 10 targets, as the
//! proxy does it (consistent hashing includes hashing the request's header value).
//!
//! `cargo bench --bench balancer`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

use criterion::{criterion_main, Criterion};
use http::HeaderMap;
use kong::balancer::hash::xxh32;
use kong::balancer::health::AddrState;
use kong::balancer::layout::{Address, Layout, TargetView, Tried};
use kong::balancer::peers::{hash_value, HashInput};
use kong::balancer::spec::{TargetSpec, UpstreamSpec};
use serde_json::json;

fn layout(upstream: serde_json::Value, targets: usize) -> Layout {
    let doc = match upstream {
        serde_json::Value::Object(m) => m,
        _ => Default::default(),
    };
    let spec = Arc::new(UpstreamSpec::read(&doc));
    let mut views = Vec::new();
    let mut addresses = Vec::new();
    for n in 0..targets {
        let ip: IpAddr = format!("10.0.0.{}", n + 1).parse().expect("ip");
        let weight = 100 + 10 * n as u32;
        views.push(TargetView {
            spec: TargetSpec {
                id: n.to_string(),
                name: ip.to_string(),
                port: 8000,
                weight,
            },
            dns: "A".into(),
            dns_error: false,
        });
        addresses.push(Address {
            ip,
            ip_text: ip.to_string().into(),
            port: 8000,
            weight,
            target: n,
            hostname: ip.to_string().into(),
            state: Arc::new(AddrState::new()),
        });
    }
    Layout::new(spec, views, addresses)
}

fn picks(c: &mut Criterion) {
    let tried = Tried::default();
    let rr = layout(json!({}), 10);
    c.bench_function("round-robin pick (10 targets)", |b| {
        b.iter(|| black_box(rr.pick(0, &tried)))
    });
    let ch = layout(
        json!({"algorithm": "consistent-hashing", "hash_on": "header", "hash_on_header": "x-user"}),
        10,
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-user",
        "3b5c8a3e-9f0e-4a57-b6d2-1f0c2e9d8a77".parse().expect("v"),
    );
    let input = HashInput {
        consumer: None,
        ip: "127.0.0.1".parse().expect("ip"),
        headers: &headers,
        path: "/",
        query: None,
        captures: [None, None],
    };
    c.bench_function("consistent-hashing hash + pick (10 targets)", |b| {
        b.iter(|| {
            let (value, _) = hash_value(&ch.spec, black_box(&input));
            let h = xxh32(value.as_deref().unwrap_or_default().as_bytes());
            black_box(ch.pick(h, &tried))
        })
    });
    let lc = layout(json!({"algorithm": "least-connections"}), 10);
    c.bench_function("least-connections pick (10 targets)", |b| {
        b.iter(|| black_box(lc.pick(0, &tried)))
    });
    let lat = layout(json!({"algorithm": "latency"}), 10);
    for (i, a) in lat.addresses.iter().enumerate() {
        a.state.record(0.01 * (i + 1) as f64);
    }
    // The proxy reads the clock once per try for this algorithm (to time the response too);
    // the pick gets that reading.
    let now = kong::balancer::health::now_micros();
    c.bench_function("latency pick (10 targets)", |b| {
        b.iter(|| black_box(lat.pick_at(0, &tried, now)))
    });
    // A target down: round-robin walks past it.
    rr.addresses[3].state.set(false);
    c.bench_function("round-robin pick, one target down", |b| {
        b.iter(|| black_box(rr.pick(0, &tried)))
    });
}

/// The benchmark group.
mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::picks);
}
criterion_main!(group::benches);
