//! Each upstream's background task: rebuilds its layout when DNS answers change, and runs the
//! active health checks (http, https, tcp probes) every `healthy.interval` seconds against
//! available addresses and every `unhealthy.interval` seconds against unavailable ones, at most
//! `concurrency` probes at once. The task holds only a weak reference: it ends with its upstream
//! (or is aborted when the upstream is removed or its health-check settings change).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::health::Report;
use super::layout::Address;
use super::spec::{ProbeKind, UpstreamSpec};
use super::Upstream;

/// TLS client settings for https probes: verifying (against the trusted CAs) or not.
#[derive(Clone)]
pub struct ProbeTls {
    verify: Arc<rustls::ClientConfig>,
    no_verify: Arc<rustls::ClientConfig>,
}

impl ProbeTls {
    /// Settings trusting `trusted` (`lua_ssl_trusted_certificate` entries).
    pub fn new(trusted: &[String]) -> ProbeTls {
        ProbeTls {
            verify: crate::proxy::upstream::probe_tls(Some(trusted)),
            no_verify: crate::proxy::upstream::probe_tls(None),
        }
    }
}

/// The upstream's background task.
pub async fn run(upstream: Weak<Upstream>, tls: ProbeTls) {
    let (mut dns, spec) = match upstream.upgrade() {
        Some(u) => (u.dns.subscribe(), u.spec()),
        None => return,
    };
    let active = &spec.checks.active;
    let enabled = spec.checks.active_enabled();
    let every = |s: f64| Duration::from_secs_f64(if s > 0.0 { s } else { 3600.0 });
    let healthy_on = enabled && active.healthy_interval > 0.0;
    let unhealthy_on = enabled && active.unhealthy_interval > 0.0;
    let mut healthy = tokio::time::interval(every(active.healthy_interval));
    let mut unhealthy = tokio::time::interval(every(active.unhealthy_interval));
    healthy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    unhealthy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if active.kind == ProbeKind::Grpc
        && (active.healthy_interval > 0.0 || active.unhealthy_interval > 0.0)
    {
        tracing::warn!(upstream = %spec.name, "[healthchecks] gRPC active health checks are not supported; active checks are off");
    }
    loop {
        let probe_available = tokio::select! {
            changed = dns.changed() => {
                if changed.is_err() {
                    return;
                }
                match upstream.upgrade() {
                    Some(u) => u.rebuild(),
                    None => return,
                }
                continue;
            }
            _ = healthy.tick(), if healthy_on => true,
            _ = unhealthy.tick(), if unhealthy_on => false,
        };
        let Some(u) = upstream.upgrade() else { return };
        let layout = u.layout();
        drop(u);
        let due: Vec<Address> = layout
            .addresses
            .iter()
            .filter(|a| a.weight > 0 && a.state.available() == probe_available)
            .cloned()
            .collect();
        check_all(due, &spec, &tls).await;
    }
}

/// Probes `addresses` in `concurrency` parallel lanes and reports each result.
pub async fn check_all(addresses: Vec<Address>, spec: &Arc<UpstreamSpec>, tls: &ProbeTls) {
    if addresses.is_empty() {
        return;
    }
    let lanes = spec.checks.active.concurrency.max(1).min(addresses.len());
    let mut work: Vec<Vec<Address>> = vec![Vec::new(); lanes];
    for (i, a) in addresses.into_iter().enumerate() {
        work[i % lanes].push(a);
    }
    let mut set = tokio::task::JoinSet::new();
    for lane in work {
        let spec = spec.clone();
        let tls = tls.clone();
        set.spawn(async move {
            for a in lane {
                let report = probe(&a, &spec, &tls).await;
                if let Some(r) = report {
                    if let Some(state) = a.state.report(r, &spec.checks.active.limits) {
                        tracing::warn!(
                            upstream = %spec.name, address = %format!("{}:{}", a.ip_text, a.port),
                            "[healthchecks] active check: target is now {state:?}"
                        );
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// One probe; `None` when the answer's status is in neither list.
pub async fn probe(a: &Address, spec: &UpstreamSpec, tls: &ProbeTls) -> Option<Report> {
    let active = &spec.checks.active;
    let timeout = active.timeout;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((a.ip, a.port))).await {
        Err(_) => return Some(Report::Timeout),
        Ok(Err(_)) => return Some(Report::TcpFailure),
        Ok(Ok(s)) => s,
    };
    let host = spec.host_header.as_deref().unwrap_or(&a.hostname);
    match active.kind {
        ProbeKind::Tcp | ProbeKind::Grpc => Some(Report::Success),
        ProbeKind::Http => http_probe(stream, host, spec).await,
        ProbeKind::Https => {
            let sni = active.https_sni.as_deref().unwrap_or(host);
            let config = if active.https_verify_certificate {
                tls.verify.clone()
            } else {
                tls.no_verify.clone()
            };
            let bare = sni.trim_start_matches('[').trim_end_matches(']');
            let name = match bare.parse::<std::net::IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => match rustls::pki_types::ServerName::try_from(bare.to_owned()) {
                    Ok(n) => n,
                    Err(_) => return Some(Report::TcpFailure),
                },
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                Err(_) => Some(Report::Timeout),
                Ok(Err(e)) => {
                    tracing::debug!(upstream = %spec.name, error = %e, "[healthchecks] TLS handshake failed");
                    Some(Report::TcpFailure)
                }
                Ok(Ok(s)) => http_probe(s, host, spec).await,
            }
        }
    }
}

/// `GET http_path` with `Connection: close`; the status line decides.
async fn http_probe<S>(mut stream: S, host: &str, spec: &UpstreamSpec) -> Option<Report>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let active = &spec.checks.active;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        active.http_path
    );
    for (name, value) in &active.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    match tokio::time::timeout(active.timeout, stream.write_all(request.as_bytes())).await {
        Err(_) => return Some(Report::Timeout),
        Ok(Err(_)) => return Some(Report::TcpFailure),
        Ok(Ok(())) => {}
    }
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    match tokio::time::timeout(active.timeout, reader.read_line(&mut line)).await {
        Err(_) => return Some(Report::Timeout),
        Ok(Err(_)) => return Some(Report::TcpFailure),
        Ok(Ok(0)) => return Some(Report::TcpFailure),
        Ok(Ok(_)) => {}
    }
    let status = parse_status(&line).unwrap_or(0);
    Report::of_status(status, &active.healthy_statuses, &active.unhealthy_statuses)
}

/// The status of an `HTTP/x.y NNN ...` line.
fn parse_status(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP/")?;
    let mut parts = rest.split_whitespace();
    parts.next()?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::balancer::health::AddrState;

    fn spec(kind: &str) -> UpstreamSpec {
        let doc = json!({"name": "probe.test", "healthchecks": {"active": {"type": kind, "timeout": 0.5,
            "http_path": "/status", "headers": {"x-probe": ["yes"]}}}});
        match doc {
            serde_json::Value::Object(m) => UpstreamSpec::read(&m),
            _ => UpstreamSpec::read(&Default::default()),
        }
    }

    fn address(port: u16) -> Address {
        let ip: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        Address {
            ip,
            ip_text: "127.0.0.1".into(),
            port,
            weight: 10,
            target: 0,
            hostname: "backend.test".into(),
            state: Arc::new(AddrState::new()),
        }
    }

    /// A one-shot server answering `status`, returning the request it read.
    async fn server(status: u16) -> (u16, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn http_probes_send_path_host_and_headers_and_read_the_status() {
        let tls = ProbeTls::new(&[]);
        let (port, seen) = server(200).await;
        let r = probe(&address(port), &spec("http"), &tls).await;
        assert_eq!(r, Some(Report::Success));
        let request = seen.await.expect("request");
        assert!(
            request.starts_with("GET /status HTTP/1.1\r\nHost: backend.test\r\n"),
            "{request}"
        );
        assert!(request.contains("x-probe: yes\r\n"), "{request}");
        let (port, _) = server(500).await;
        assert_eq!(
            probe(&address(port), &spec("http"), &tls).await,
            Some(Report::HttpFailure)
        );
        // In neither list: not counted.
        let (port, _) = server(201).await;
        assert_eq!(probe(&address(port), &spec("http"), &tls).await, None);
    }

    #[tokio::test]
    async fn tcp_probes_connect_only() {
        let tls = ProbeTls::new(&[]);
        let (port, _) = server(200).await;
        assert_eq!(
            probe(&address(port), &spec("tcp"), &tls).await,
            Some(Report::Success)
        );
        // Nothing listens there any more.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr").port();
        drop(l);
        assert_eq!(
            probe(&address(closed), &spec("tcp"), &tls).await,
            Some(Report::TcpFailure)
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(super::parse_status("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(super::parse_status("HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(super::parse_status("garbage"), None);
    }
}
