//! Propagation: how long an Admin API write takes to reach the proxy on the same node.
//!
//! Starts the release `kong` binary on free loopback ports with a tiny in-process upstream,
//! then 100 times: creates a route with a new path over the Admin API and polls the proxy (every
//! millisecond) until that path answers 200. Prints p50, p99 and max of write → first 200.
//!
//! Run: `cargo bench --bench propagation` (goal: p99 ≤ 100 ms on one node).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// An upstream answering 200 "ok" to everything.
async fn upstream() -> std::io::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(port)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bin = env!("CARGO_BIN_EXE_kong");
    let dir = tempfile::tempdir()?;
    let (proxy, admin) = (free_port(), free_port());
    let conf = dir.path().join("kong.conf");
    std::fs::write(
        &conf,
        format!(
            "prefix = {}\nproxy_listen = 127.0.0.1:{proxy}\nadmin_listen = 127.0.0.1:{admin}\n",
            dir.path().join("prefix").display()
        ),
    )?;
    let started = Command::new(bin)
        .args(["start", "-c"])
        .arg(&conf)
        .status()?;
    if !started.success() {
        return Err("kong start failed".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let up = upstream().await?;
        let client = reqwest::Client::new();
        let admin_url = format!("http://127.0.0.1:{admin}");
        client
            .post(format!("{admin_url}/services"))
            .json(&serde_json::json!({"name": "s", "url": format!("http://127.0.0.1:{up}")}))
            .send()
            .await?
            .error_for_status()?;
        let mut samples = Vec::new();
        for i in 0..100 {
            let path = format!("/p{i}");
            let written = Instant::now();
            client
                .post(format!("{admin_url}/services/s/routes"))
                .json(&serde_json::json!({"paths": [path]}))
                .send()
                .await?
                .error_for_status()?;
            loop {
                let r = client
                    .get(format!("http://127.0.0.1:{proxy}{path}"))
                    .send()
                    .await?;
                if r.status() == 200 {
                    break;
                }
                if written.elapsed() > Duration::from_secs(10) {
                    return Err(format!("{path} never became routable").into());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples.push(written.elapsed());
        }
        Ok::<_, Box<dyn std::error::Error>>(samples)
    });
    let _ = Command::new(bin)
        .args(["stop", "-p"])
        .arg(dir.path().join("prefix"))
        .status();
    let mut samples = result?;
    samples.sort();
    println!(
        "propagation (Admin API write → first 200 on the proxy, 100 writes, SQLite): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 ≤ 100 ms)",
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    Ok(())
}
