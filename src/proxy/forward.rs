//! Sending a request upstream and getting the response head back: a pooled or new connection,
//! the service's timeouts and retries, and the mapping of failures to Kong's 502/503/504.
//!
//! A try is repeated (up to the service's `retries`) when the connection could not be made, or
//! when the request came back unsent; a reused keep-alive connection found closed by the peer
//! costs a new connection, not a retry. A request that reached the upstream is never sent
//! twice: its failure is answered, so a non-idempotent request cannot be duplicated.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::error::ProxyError;
use super::pool::{Conn, PeerRef, Pool, PooledBody, Returning, Sender};
use super::upstream::{dial, Keepalive, TlsProfile, UpstreamBody};

/// Where and how to send one request.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The peer connected to.
    pub peer: PeerRef<'a>,
    /// The TLS profile, when the peer speaks TLS.
    pub tls: Option<&'a TlsProfile>,
    /// Timeouts of the service.
    pub timeouts: Timeouts,
    /// Extra tries after a failed connection (`retries`).
    pub retries: u32,
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
    Streamed(Incoming),
}

/// What came back: the response, and for a protocol upgrade (WebSocket) the upstream
/// connection is not pooled.
pub type Upstream = Response<PooledBody>;

/// Sends `head` + `body` to `target`, through `pool`.
pub async fn send(
    pool: &Arc<Pool>,
    keepalive: Keepalive,
    head: http::request::Parts,
    body: Outgoing,
    target: &Target<'_>,
) -> Result<Upstream, ProxyError> {
    let streamed = matches!(body, Outgoing::Streamed(_));
    let body: UpstreamBody = match body {
        Outgoing::Buffered(bytes) => Full::new(bytes).map_err(|never| match never {}).boxed(),
        Outgoing::Streamed(incoming) => incoming.boxed(),
    };
    let mut req = Request::from_parts(head, body);
    let t = target.timeouts;
    // Sending and waiting for the response head are bounded together: the read timeout, plus
    // the write timeout when the body streams from the client (a buffered one is written at
    // once).
    let limit = t.read + if streamed { t.write } else { Duration::ZERO };
    let mut tries = 0u32;
    loop {
        let conn = match pool.checkout(target.peer, &keepalive) {
            Some(conn) => conn,
            None => match dial(target.peer, target.tls, t.connect).await {
                Ok(conn) => conn,
                Err(e) => {
                    if retryable(&e) && tries < target.retries {
                        tries += 1;
                        continue;
                    }
                    return Err(e);
                }
            },
        };
        let reused = conn.reused;
        match tokio::time::timeout(limit, exchange(conn, req, pool, keepalive)).await {
            Err(_) => return Err(ProxyError::GatewayTimeout),
            Ok(Ok((resp, returning))) => {
                let upgraded = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                let (parts, incoming) = resp.into_parts();
                // An upgraded connection belongs to the tunnel, never to the pool.
                let returning = if upgraded { None } else { returning };
                let body = PooledBody::new(incoming, t.read, returning);
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Err(Failed { error, unsent })) => {
                let Some(unsent) = unsent else {
                    tracing::debug!(error = %error, "upstream request failed");
                    return Err(classify(&error));
                };
                req = unsent;
                if reused {
                    continue;
                }
                if tries < target.retries {
                    tries += 1;
                    continue;
                }
                return Err(classify(&error));
            }
        }
    }
}

/// Connection failures worth another try.
fn retryable(e: &ProxyError) -> bool {
    matches!(e, ProxyError::BadGateway | ProxyError::GatewayTimeout)
}

/// A failed exchange; `unsent` is the request when it never left.
struct Failed {
    error: hyper::Error,
    unsent: Option<Request<UpstreamBody>>,
}

/// Sends `req` on `conn`; an HTTP/1.1 connection comes back with the response, to be returned
/// to the pool once the body is read.
async fn exchange(
    conn: Conn,
    mut req: Request<UpstreamBody>,
    pool: &Arc<Pool>,
    keepalive: Keepalive,
) -> Result<(Response<Incoming>, Option<Returning>), Failed> {
    let Conn {
        peer,
        sender,
        used,
        reused,
    } = conn;
    match sender {
        Sender::H1(mut s) => {
            if let Err(error) = s.ready().await {
                return Err(Failed {
                    error,
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
                            sender: Sender::H1(s),
                            used,
                            reused,
                        },
                        keepalive,
                    }),
                )),
                Err(mut e) => Err(Failed {
                    unsent: e.take_message(),
                    error: e.into_error(),
                }),
            }
        }
        Sender::H2(mut s) => {
            *req.version_mut() = http::Version::HTTP_2;
            if let Err(error) = s.ready().await {
                return Err(Failed {
                    error,
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
                    error: e.into_error(),
                }),
            }
        }
    }
}

/// Classifies a failure on an established connection the way Kong reports it.
fn classify(e: &hyper::Error) -> ProxyError {
    if e.is_timeout() {
        ProxyError::GatewayTimeout
    } else {
        ProxyError::BadGateway
    }
}
