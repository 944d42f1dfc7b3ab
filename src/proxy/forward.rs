//! Sending a request upstream and getting the response head back: a pooled or new connection,
//! the service's timeouts and retries, and the mapping of failures to Kong's 502/503/504.
//!
//! A try is repeated (up to the service's `retries`) when the connection could not be made, or
//! when the request came back unsent, or (idempotent buffered requests) timed out; each retry
//! asks the [`Peers`] again, so a balanced upstream may send it to another target, and every
//! failure or response is reported to them for the passive health checks. A reused keep-alive
//! connection found closed by the peer costs a new connection, not a retry. As nginx, a request
//! that reached the upstream is sent again only when its method is idempotent and its body was
//! buffered; a POST or PATCH is never duplicated.
//!
//! Two clients do the sending. A buffered HTTP/1.1 request without upgrade (nearly all traffic)
//! goes through the proxy's own client ([`super::h1`]), in the request's task; a body streamed
//! from the client, a protocol upgrade and HTTP/2 (gRPC) go through hyper's clients.
//!
//! A request body streamed from the client (`request_buffering = false`) is watched while it is
//! sent: a client pausing longer than `client_body_timeout` gets 408, a client sending a broken
//! body 400 — not a 502 blaming the upstream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};

use super::error::ProxyError;
use super::headers::Overlay;
use super::pool::{Conn, PeerRef, Pool, PooledBody, Returning, Sender};
use super::upstream::{dial, Keepalive, TlsProfile, UpstreamBody};
use crate::balancer::peers::{Chosen, Peers};
use crate::runtime::body::RequestBody;

/// What a streamed client body did wrong, if anything.
#[derive(Debug, Default)]
struct ClientFault(std::sync::OnceLock<ProxyError>);

pin_project_lite::pin_project! {
    /// A client body streamed upstream, with the client's idle timeout; a failure is recorded
    /// so the proxy blames the client, not the upstream.
    struct ClientBody {
        #[pin]
        inner: RequestBody,
        #[pin]
        idle: tokio::time::Sleep,
        timeout: Duration,
        fault: Arc<ClientFault>,
    }
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + *this.timeout;
                this.idle.reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let _ = this.fault.0.set(ProxyError::BadRequest);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.poll(cx) {
                Poll::Ready(()) => {
                    let _ = this.fault.0.set(ProxyError::RequestTimeout);
                    // Ends the upstream request; the recorded fault decides the answer.
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// How to send one request (where to is the [`Peers`]' business, try by try).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The TLS profile, when the upstream speaks TLS.
    pub tls: Option<&'a TlsProfile>,
    /// Whether the connection speaks HTTP/2.
    pub h2: bool,
    /// Whether the request asks for a protocol upgrade (WebSocket).
    pub upgrade: bool,
    /// How the upstream `Host` (and TLS server name) follows the peer.
    pub host: HostRule<'a>,
    /// Timeouts of the service.
    pub timeouts: Timeouts,
    /// Extra tries after a failed connection (`retries`).
    pub retries: u32,
    /// How long a client streaming its body may pause (`client_body_timeout`).
    pub client_body_timeout: Duration,
}

/// Where the upstream `Host` comes from.
#[derive(Debug, Clone, Copy)]
pub struct HostRule<'a> {
    /// A `Host` kept whatever the peer (`preserve_host`, or set by a plugin).
    pub fixed: Option<&'a str>,
    /// The scheme's default port, left out of a `Host` built from the peer.
    pub default_port: u16,
}

impl HostRule<'_> {
    /// The `Host` for a peer named `hostname` on `port`.
    pub fn host(&self, hostname: &str, port: u16) -> String {
        if let Some(h) = self.fixed {
            return h.to_owned();
        }
        let v6 = hostname.contains(':') && !hostname.starts_with('[');
        let mut host = String::with_capacity(hostname.len() + 8);
        if v6 {
            host.push('[');
        }
        host.push_str(hostname);
        if v6 {
            host.push(']');
        }
        if port != self.default_port {
            host.push(':');
            host.push_str(itoa::Buffer::new().format(port));
        }
        host
    }

    /// The TLS server name: the `Host` without its port.
    pub fn sni<'b>(&'b self, hostname: &'b str) -> &'b str {
        match self.fixed {
            Some(h) => h
                .rsplit_once(':')
                .filter(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok())
                .map_or(h, |(h, _)| h),
            None => hostname,
        }
    }
}

/// A service's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
    /// Sending the request.
    pub write: Duration,
    /// Waiting for the response head, and between two reads of the response body.
    pub read: Duration,
}

/// The request body going upstream: read whole first, or streamed as it arrives.
pub enum Outgoing {
    /// Read whole first (`request_buffering`).
    Buffered(Bytes),
    /// Passed through as it arrives.
    Streamed(RequestBody),
}

/// What came back: the response, and for a protocol upgrade (WebSocket) the upstream
/// connection is not pooled.
pub type Upstream = Response<PooledBody>;

/// Sends `head` + `body` as `target` says, to the peer `peers` has chosen, through `pool`.
/// A retry asks `peers` for the next peer; every try's outcome is reported to it (passive
/// health checks).
#[allow(clippy::too_many_arguments)]
pub async fn send(
    pool: &Arc<Pool>,
    keepalive: Keepalive,
    mut head: http::request::Parts,
    overlay: &mut Overlay,
    body: Outgoing,
    target: &Target<'_>,
    peers: &mut Peers,
) -> Result<Upstream, ProxyError> {
    let body = match body {
        Outgoing::Buffered(bytes) if !target.h2 && !target.upgrade => {
            return send_own(pool, keepalive, head, overlay, bytes, target, peers).await;
        }
        other => other,
    };
    // Hyper's clients send the header map.
    overlay.apply(&mut head.headers);
    let streamed = matches!(body, Outgoing::Streamed(_));
    let idempotent = idempotent(&head.method);
    // What it takes to send the request again after it reached the upstream.
    let replay = match &body {
        Outgoing::Buffered(bytes) if idempotent => Some((head.clone(), bytes.clone())),
        _ => None,
    };
    let fault = Arc::new(ClientFault::default());
    let body: UpstreamBody = match body {
        Outgoing::Buffered(bytes) => buffered(bytes),
        Outgoing::Streamed(incoming) => ClientBody {
            inner: incoming,
            idle: tokio::time::sleep(target.client_body_timeout),
            timeout: target.client_body_timeout,
            fault: fault.clone(),
        }
        .boxed(),
    };
    let mut req = Request::from_parts(head, body);
    let t = target.timeouts;
    // Sending and waiting for the response head are bounded together: the read timeout, plus
    // the write timeout when the body streams from the client (a buffered one is written at
    // once).
    let limit = t.read + if streamed { t.write } else { Duration::ZERO };
    let mut tries = 0u32;
    // The first peer was chosen by the caller (it built the request's Host from it).
    let mut pick = false;
    loop {
        if pick {
            pick = false;
            peers.pick()?;
            if peers.balanced() && target.host.fixed.is_none() && !target.h2 {
                // Another target may want another Host.
                let c = peers.chosen();
                if let Ok(v) = http::HeaderValue::from_str(&target.host.host(c.hostname, c.port)) {
                    req.headers_mut().insert(http::header::HOST, v);
                }
            }
        }
        let connected = connect(pool, keepalive, target, peers.chosen(), !target.h2).await;
        let conn = match connected {
            Ok(conn) => conn,
            Err(e) => match connect_failed(e, peers, &mut tries, target.retries) {
                Some(e) => return Err(e),
                None => {
                    pick = true;
                    continue;
                }
            },
        };
        let reused = conn.reused;
        let outcome = tokio::time::timeout(limit, exchange(conn, req, pool, keepalive)).await;
        if let Some(client) = fault.0.get() {
            return Err(client.clone());
        }
        match outcome {
            Err(_) => {
                peers.failed(true);
                // As nginx's `proxy_next_upstream timeout`: an idempotent buffered request
                // goes to the next peer.
                match &replay {
                    Some((head, bytes)) if tries < target.retries => {
                        tries += 1;
                        pick = true;
                        req = Request::from_parts(head.clone(), buffered(bytes.clone()));
                        continue;
                    }
                    _ => return Err(ProxyError::GatewayTimeout),
                }
            }
            Ok(Ok((resp, returning))) => {
                peers.answered(resp.status().as_u16());
                let upgraded = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                let (parts, incoming) = resp.into_parts();
                // An upgraded connection belongs to the tunnel, never to the pool.
                let returning = if upgraded { None } else { returning };
                let body = PooledBody::new(incoming, t.read, returning);
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Err(Failed { error, unsent })) => {
                let unsent = match (unsent, &replay) {
                    (Some(unsent), _) => unsent,
                    (None, Some((head, bytes))) if reused || tries < target.retries => {
                        tracing::debug!(error = ?error, "upstream request failed; sending it again");
                        Request::from_parts(head.clone(), buffered(bytes.clone()))
                    }
                    (None, _) => {
                        tracing::debug!(error = ?error, "upstream request failed");
                        let e = classify(error.as_ref());
                        peers.failed(e == ProxyError::GatewayTimeout);
                        return Err(e);
                    }
                };
                req = unsent;
                if reused {
                    // A kept-alive connection closed by the peer meanwhile: not the peer's
                    // fault, not a try.
                    continue;
                }
                let e = classify(error.as_ref());
                peers.failed(e == ProxyError::GatewayTimeout);
                if tries < target.retries {
                    tries += 1;
                    pick = true;
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// A connection to the chosen peer `c`: an idle one from the pool, else a new one. `streamed`
/// picks hyper's HTTP/1.1 client over the proxy's own.
async fn connect(
    pool: &Pool,
    keepalive: Keepalive,
    target: &Target<'_>,
    c: Chosen<'_>,
    streamed: bool,
) -> Result<Conn, ProxyError> {
    let peer = PeerRef {
        host: c.host,
        port: c.port,
        tls: target
            .tls
            .map(|profile| (profile.id, target.host.sni(c.hostname))),
        h2: target.h2,
        streamed,
    };
    match pool.checkout(peer, &keepalive) {
        Some(conn) => Ok(conn),
        // Boxed: a new connection's TLS handshake would otherwise make every request's future
        // larger.
        None => Box::pin(dial(peer, target.tls, target.timeouts.connect)).await,
    }
}

/// Whether a request with `method` may be sent again after it reached the upstream.
fn idempotent(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::PUT
            | http::Method::DELETE
            | http::Method::OPTIONS
            | http::Method::TRACE
    )
}

/// [`send`] for a buffered HTTP/1.1 request without upgrade, through the proxy's own client
/// ([`super::h1`]): the request is encoded once, and again only when a retry goes to a peer
/// that wants another `Host`.
async fn send_own(
    pool: &Arc<Pool>,
    keepalive: Keepalive,
    head: http::request::Parts,
    overlay: &mut Overlay,
    body: Bytes,
    target: &Target<'_>,
    peers: &mut Peers,
) -> Result<Upstream, ProxyError> {
    let idempotent = idempotent(&head.method);
    let t = target.timeouts;
    let mut tries = 0u32;
    // The first peer was chosen by the caller (it built the request's Host from it).
    let mut pick = false;
    loop {
        if pick {
            pick = false;
            peers.pick()?;
            if peers.balanced() && target.host.fixed.is_none() {
                // Another target may want another Host.
                let c = peers.chosen();
                if let Ok(v) = http::HeaderValue::from_str(&target.host.host(c.hostname, c.port)) {
                    overlay.host = Some(v);
                }
            }
        }
        let connected = connect(pool, keepalive, target, peers.chosen(), false).await;
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(e) => match connect_failed(e, peers, &mut tries, target.retries) {
                Some(e) => return Err(e),
                None => {
                    pick = true;
                    continue;
                }
            },
        };
        let reused = conn.reused;
        let Sender::Own(h1) = &mut conn.sender else {
            // Pooled apart (`PeerRef::streamed`): cannot happen.
            return Err(ProxyError::BadGateway);
        };
        // Sending and waiting for the response head are bounded together by the read timeout
        // (the body is written at once).
        let exchange = async {
            h1.send(&head, overlay, &body).await?;
            h1.read_head(&head.method).await.map_err(|e| (e, true))
        };
        let failure = match tokio::time::timeout(t.read, exchange).await {
            Err(_) => {
                peers.failed(true);
                // As nginx's `proxy_next_upstream timeout`: an idempotent request goes to the
                // next peer.
                if idempotent && tries < target.retries {
                    tries += 1;
                    pick = true;
                    continue;
                }
                return Err(ProxyError::GatewayTimeout);
            }
            Ok(Ok(answer)) => {
                let status = answer.parts.status;
                peers.answered(status.as_u16());
                if status == http::StatusCode::SWITCHING_PROTOCOLS {
                    // An upstream may only switch protocols when asked to.
                    return Err(ProxyError::BadGateway);
                }
                let returning = Returning {
                    pool: pool.clone(),
                    conn,
                    keepalive,
                };
                let body = PooledBody::own(answer.body, t.read, returning);
                return Ok(Response::from_parts(answer.parts, body));
            }
            Ok(Err(failure)) => failure,
        };
        let (error, sent) = failure;
        tracing::debug!(error = %error, sent, reused, "upstream request failed");
        if sent && !idempotent {
            // It may have been acted upon: never sent twice.
            peers.failed(false);
            return Err(ProxyError::BadGateway);
        }
        if reused {
            // A kept-alive connection closed by the peer meanwhile: not the peer's fault, not
            // a try.
            continue;
        }
        peers.failed(false);
        if tries < target.retries {
            tries += 1;
            pick = true;
            continue;
        }
        return Err(ProxyError::BadGateway);
    }
}

fn buffered(bytes: Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// Reports a failed connection to `peers`; the error to answer with, or `None` when another
/// try is due (counted in `tries`).
fn connect_failed(
    e: ProxyError,
    peers: &mut Peers,
    tries: &mut u32,
    retries: u32,
) -> Option<ProxyError> {
    peers.failed(e == ProxyError::GatewayTimeout);
    if retryable(&e) && *tries < retries {
        *tries += 1;
        return None;
    }
    Some(e)
}

/// Connection failures worth another try.
fn retryable(e: &ProxyError) -> bool {
    matches!(e, ProxyError::BadGateway | ProxyError::GatewayTimeout)
}

/// A failed exchange; `unsent` is the request when it never left.
struct Failed {
    error: Option<hyper::Error>,
    unsent: Option<Request<UpstreamBody>>,
}

/// Sends `req` on `conn`; an HTTP/1.1 connection comes back with the response, to be returned
/// to the pool once the body is read.
async fn exchange(
    conn: Conn,
    mut req: Request<UpstreamBody>,
    pool: &Arc<Pool>,
    keepalive: Keepalive,
) -> Result<(Response<hyper::body::Incoming>, Option<Returning>), Failed> {
    let Conn {
        peer,
        sender,
        used,
        reused,
    } = conn;
    match sender {
        // Never dialed for this path (`PeerRef::streamed`).
        Sender::Own(_) => Err(Failed {
            error: None,
            unsent: Some(req),
        }),
        Sender::HyperH1(mut s) => {
            if let Err(error) = s.ready().await {
                return Err(Failed {
                    error: Some(error),
                    unsent: Some(req),
                });
            }
            match s.try_send_request(req).await {
                Ok(resp) => Ok((
                    resp,
                    Some(Returning {
                        pool: pool.clone(),
                        conn: Conn {
                            peer,
                            sender: Sender::HyperH1(s),
                            used,
                            reused,
                        },
                        keepalive,
                    }),
                )),
                Err(mut e) => Err(Failed {
                    unsent: e.take_message(),
                    error: Some(e.into_error()),
                }),
            }
        }
        Sender::H2(mut s) => {
            *req.version_mut() = http::Version::HTTP_2;
            if let Err(error) = s.ready().await {
                return Err(Failed {
                    error: Some(error),
                    unsent: Some(req),
                });
            }
            let conn = Conn {
                peer,
                sender: Sender::H2(s.clone()),
                used,
                reused,
            };
            if !reused {
                pool.share(&conn, &keepalive);
            }
            match s.try_send_request(req).await {
                Ok(resp) => Ok((resp, None)),
                Err(mut e) => Err(Failed {
                    unsent: e.take_message(),
                    error: Some(e.into_error()),
                }),
            }
        }
    }
}

/// Classifies a failure on an established connection the way Kong reports it.
fn classify(e: Option<&hyper::Error>) -> ProxyError {
    if e.is_some_and(hyper::Error::is_timeout) {
        ProxyError::GatewayTimeout
    } else {
        ProxyError::BadGateway
    }
}
