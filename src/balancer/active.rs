//! Each upstream's background task: rebuilds its layout when DNS answers change, and runs the
//! active health checks (http, https, tcp probes) every `healthy.interval` seconds against
//! available addresses and every `unhealthy.interval` seconds against unavailable ones, at most
//! `concurrency` probes at once. The task holds only a weak reference: it ends with its upstream
//! (or is aborted when the upstream is removed or its health-check settings change).
//!
//! HTTP(S) probes keep their connection open between rounds when the target allows it (an
//! HTTP/1.1 answer with a `Content-Length` body and no `Connection: close`), so a round of
//! probes costs a request each, not a TCP (and TLS) handshake and teardown each. A kept
//! connection the target closed meanwhile is replaced by a new one within the same probe, and
//! is not counted as a failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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

/// A probe connection, plain or TLS.
trait ProbeIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ProbeIo for T {}

/// Probe connections kept open between rounds, by address.
#[derive(Default)]
pub struct Kept(Mutex<HashMap<(IpAddr, u16), Box<dyn ProbeIo>>>);

impl Kept {
    fn take(&self, key: (IpAddr, u16)) -> Option<Box<dyn ProbeIo>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
    }

    fn put(&self, key: (IpAddr, u16), io: Box<dyn ProbeIo>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, io);
    }

    /// Closes the connections of addresses no longer in `addresses`.
    fn retain(&self, addresses: &[Address]) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_empty() {
            return;
        }
        let live: std::collections::HashSet<(IpAddr, u16)> =
            addresses.iter().map(|a| (a.ip, a.port)).collect();
        kept.retain(|key, _| live.contains(key));
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
    let kept = Arc::new(Kept::default());
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
        kept.retain(&layout.addresses);
        let due: Vec<Address> = layout
            .addresses
            .iter()
            .filter(|a| a.weight > 0 && a.state.available() == probe_available)
            .cloned()
            .collect();
        check_all(due, &spec, &tls, &kept).await;
    }
}

/// Probes `addresses` in `concurrency` parallel lanes and reports each result.
pub async fn check_all(
    addresses: Vec<Address>,
    spec: &Arc<UpstreamSpec>,
    tls: &ProbeTls,
    kept: &Arc<Kept>,
) {
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
        let kept = kept.clone();
        set.spawn(async move {
            for a in lane {
                let report = probe(&a, &spec, &tls, &kept).await;
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
pub async fn probe(
    a: &Address,
    spec: &UpstreamSpec,
    tls: &ProbeTls,
    kept: &Kept,
) -> Option<Report> {
    let active = &spec.checks.active;
    let host = spec.host_header.as_deref().unwrap_or(&a.hostname);
    let key = (a.ip, a.port);
    if matches!(active.kind, ProbeKind::Http | ProbeKind::Https) {
        if let Some(io) = kept.take(key) {
            match http_probe(io, host, spec).await {
                Probed::Answered(report, again) => {
                    if let Some(io) = again {
                        kept.put(key, io);
                    }
                    return report;
                }
                // Closed by the target while idle: a new connection decides.
                Probed::Unanswered => {}
            }
        }
    }
    let io = match connect(a, host, spec, tls).await {
        Ok(io) => io,
        Err(report) => return Some(report),
    };
    match active.kind {
        ProbeKind::Tcp | ProbeKind::Grpc => Some(Report::Success),
        ProbeKind::Http | ProbeKind::Https => match http_probe(io, host, spec).await {
            Probed::Answered(report, again) => {
                if let Some(io) = again {
                    kept.put(key, io);
                }
                report
            }
            Probed::Unanswered => Some(Report::TcpFailure),
        },
    }
}

/// A new probe connection: TCP, and TLS for https probes.
async fn connect(
    a: &Address,
    host: &str,
    spec: &UpstreamSpec,
    tls: &ProbeTls,
) -> Result<Box<dyn ProbeIo>, Report> {
    let active = &spec.checks.active;
    let timeout = active.timeout;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect((a.ip, a.port))).await {
        Err(_) => return Err(Report::Timeout),
        Ok(Err(_)) => return Err(Report::TcpFailure),
        Ok(Ok(s)) => s,
    };
    if active.kind != ProbeKind::Https {
        let _ = stream.set_nodelay(true);
        return Ok(Box::new(stream));
    }
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
            Err(_) => return Err(Report::TcpFailure),
        },
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(Report::Timeout),
        Ok(Err(e)) => {
            tracing::debug!(upstream = %spec.name, error = %e, "[healthchecks] TLS handshake failed");
            Err(Report::TcpFailure)
        }
        Ok(Ok(s)) => Ok(Box::new(s)),
    }
}

/// How an HTTP probe went.
enum Probed {
    /// The target answered (or timed out): the report, and the connection when it may be
    /// used again.
    Answered(Option<Report>, Option<Box<dyn ProbeIo>>),
    /// The request could not be written, or the connection closed before any answer.
    Unanswered,
}

/// Largest probe answer head, and largest body read to keep a connection.
const MAX_HEAD: usize = 16 << 10;
const MAX_KEPT_BODY: usize = 64 << 10;

/// `GET http_path` (HTTP/1.1, keep-alive); the status decides. The connection comes back when
/// the answer was framed by a `Content-Length` read whole and the target keeps it open.
async fn http_probe(mut io: Box<dyn ProbeIo>, host: &str, spec: &UpstreamSpec) -> Probed {
    let active = &spec.checks.active;
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", active.http_path);
    for (name, value) in &active.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    match tokio::time::timeout(active.timeout, io.write_all(request.as_bytes())).await {
        Err(_) => return Probed::Answered(Some(Report::Timeout), None),
        Ok(Err(_)) => return Probed::Unanswered,
        Ok(Ok(())) => {}
    }
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(active.timeout, async {
        loop {
            if buf.len() >= MAX_HEAD {
                return Ok::<_, std::io::Error>(None);
            }
            if io.read_buf(&mut buf).await? == 0 {
                return Ok(None);
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => return Ok(Some((len, Answer::of(&head)))),
                Ok(httparse::Status::Partial) => continue,
                // Too many headers or not HTTP: judged by the status line alone.
                Err(_) => return Ok(Some((buf.len(), Answer::unframed(&buf)))),
            }
        }
    })
    .await;
    let (head_len, answer) = match read {
        Err(_) => return Probed::Answered(Some(Report::Timeout), None),
        Ok(Err(_)) if buf.is_empty() => return Probed::Unanswered,
        Ok(Err(_)) => return Probed::Answered(Some(Report::TcpFailure), None),
        Ok(Ok(None)) if buf.is_empty() => return Probed::Unanswered,
        // Cut off or oversized: the status line, if any, still decides.
        Ok(Ok(None)) => (buf.len(), Answer::unframed(&buf)),
        Ok(Ok(Some(found))) => found,
    };
    let report = Report::of_status(
        answer.status,
        &active.healthy_statuses,
        &active.unhealthy_statuses,
    );
    let Some(body) = answer.reusable_body.filter(|n| *n <= MAX_KEPT_BODY) else {
        return Probed::Answered(report, None);
    };
    let whole = head_len + body;
    let rest = tokio::time::timeout(active.timeout, async {
        while buf.len() < whole {
            if io.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    // Bytes past the answer would be misread as the next one's.
    let again = matches!(rest, Ok(Ok(()))) && buf.len() == whole;
    Probed::Answered(report, again.then_some(io))
}

/// What a probe needs of an answer head.
struct Answer {
    status: u16,
    /// The body length, when the connection may carry another request after it.
    reusable_body: Option<usize>,
}

impl Answer {
    fn of(head: &httparse::Response<'_, '_>) -> Answer {
        let status = head.code.unwrap_or(0);
        let mut length = None;
        let mut close = head.version != Some(1);
        for h in head.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                close = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                close |= h
                    .value
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
        }
        let bodiless = status == 204 || status == 304 || (100..200).contains(&status);
        let reusable_body = match (close, bodiless) {
            (true, _) => None,
            (false, true) => Some(0),
            (false, false) => length,
        };
        Answer {
            status,
            reusable_body,
        }
    }

    /// An answer whose head could not be parsed: its status line alone.
    fn unframed(bytes: &[u8]) -> Answer {
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        Answer {
            status: parse_status(&String::from_utf8_lossy(line)).unwrap_or(0),
            reusable_body: None,
        }
    }
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
        let r = probe(&address(port), &spec("http"), &tls, &Kept::default()).await;
        assert_eq!(r, Some(Report::Success));
        let request = seen.await.expect("request");
        assert!(
            request.starts_with("GET /status HTTP/1.1\r\nHost: backend.test\r\n"),
            "{request}"
        );
        assert!(request.contains("x-probe: yes\r\n"), "{request}");
        let (port, _) = server(500).await;
        assert_eq!(
            probe(&address(port), &spec("http"), &tls, &Kept::default()).await,
            Some(Report::HttpFailure)
        );
        // In neither list: not counted.
        let (port, _) = server(201).await;
        assert_eq!(
            probe(&address(port), &spec("http"), &tls, &Kept::default()).await,
            None
        );
    }

    #[tokio::test]
    async fn tcp_probes_connect_only() {
        let tls = ProbeTls::new(&[]);
        let (port, _) = server(200).await;
        assert_eq!(
            probe(&address(port), &spec("tcp"), &tls, &Kept::default()).await,
            Some(Report::Success)
        );
        // Nothing listens there any more.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr").port();
        drop(l);
        assert_eq!(
            probe(&address(closed), &spec("tcp"), &tls, &Kept::default()).await,
            Some(Report::TcpFailure)
        );
    }

    /// A server answering every request on one connection at a time with `status`; counts the
    /// connections it accepted. After `close_after` answers on a connection it closes it.
    async fn keepalive_server(
        status: u16,
        close_after: usize,
    ) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut answered = 0;
                let mut buf = Vec::new();
                while answered < close_after {
                    let mut chunk = [0u8; 1024];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
                        let _ = s.write_all(reply.as_bytes()).await;
                        answered += 1;
                    }
                }
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn http_probes_keep_their_connection_between_rounds() {
        use std::sync::atomic::Ordering;
        let tls = ProbeTls::new(&[]);
        let kept = Kept::default();
        let (port, accepted) = keepalive_server(200, usize::MAX).await;
        for _ in 0..3 {
            let r = probe(&address(port), &spec("http"), &tls, &kept).await;
            assert_eq!(r, Some(Report::Success));
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three probes"
        );
    }

    #[tokio::test]
    async fn a_kept_connection_closed_by_the_target_is_replaced_without_a_failure() {
        use std::sync::atomic::Ordering;
        let tls = ProbeTls::new(&[]);
        let kept = Kept::default();
        // Each connection serves one answer, then the target closes it.
        let (port, accepted) = keepalive_server(200, 1).await;
        for _ in 0..3 {
            let r = probe(&address(port), &spec("http"), &tls, &kept).await;
            assert_eq!(r, Some(Report::Success));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// A server reading one request and sending `reply`, then holding the socket open.
    async fn answer_once(reply: &'static [u8]) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        port
    }

    #[tokio::test]
    async fn answers_that_close_or_are_unframed_are_not_kept() {
        let tls = ProbeTls::new(&[]);
        let kept = Kept::default();
        // The socket stays open after the answer: the prober must not wait for more.
        let port =
            answer_once(b"HTTP/1.1 503 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(
            probe(&address(port), &spec("http"), &tls, &kept).await,
            Some(Report::HttpFailure)
        );
        assert!(kept.take((address(port).ip, port)).is_none());
        // Garbage instead of HTTP: status 0, a failure.
        let port = answer_once(b"SSH-2.0-OpenSSH\r\n").await;
        assert_eq!(
            probe(&address(port), &spec("http"), &tls, &kept).await,
            Some(Report::HttpFailure)
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(super::parse_status("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(super::parse_status("HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(super::parse_status("garbage"), None);
    }
}
