//! Keep-alive connections to upstream peers, pooled per peer the way Kong keys its pools: the
//! address, and for TLS also the server name and the TLS profile (verification, depth, trusted
//! CAs, client certificate).
//!
//! An HTTP/1.1 connection is checked out for one request and comes back when its response body
//! has been read to the end ([`PooledBody`]); one whose body was abandoned is closed. An HTTP/2
//! connection (gRPC) stays in the pool while in use and is shared by concurrent requests.
//! HTTP/1.1 connections come in two kinds, pooled apart: the proxy's own client
//! ([`super::h1`], requests with a buffered body) and hyper's (streamed bodies, upgrades).
//!
//! The pool is split into shards, each behind its own short-lived lock (one push or pop), so
//! requests to different peers rarely meet; no lock is held across an await.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};

use super::h1::{BodyState, H1Error, H1};
use super::upstream::Keepalive;

const SHARDS: usize = 16;

/// Where an upstream connection goes, borrowed from the request being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRef<'a> {
    /// Host name or IP address connected to.
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// TLS: the profile's identity and the server name sent; `None` for plain TCP.
    pub tls: Option<(u64, &'a str)>,
    /// Whether the connection speaks HTTP/2.
    pub h2: bool,
    /// Whether an HTTP/1.1 connection is hyper's (for streamed bodies and upgrades) rather than
    /// the proxy's own.
    pub streamed: bool,
}

/// An owned [`PeerRef`], kept with each pooled connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    host: Box<str>,
    port: u16,
    tls: Option<(u64, Box<str>)>,
    h2: bool,
    streamed: bool,
    /// Its [`peer_hash`], made once for all the connection's returns to the pool.
    hash: u64,
}

/// Where `peer`'s connections are kept in the pool.
fn peer_hash(peer: &PeerRef<'_>) -> u64 {
    foldhash::fast::FixedState::default().hash_one(peer)
}

impl Peer {
    /// Owns `peer`.
    pub fn of(peer: PeerRef<'_>) -> Peer {
        Peer {
            host: peer.host.into(),
            port: peer.port,
            tls: peer.tls.map(|(id, sni)| (id, sni.into())),
            h2: peer.h2,
            streamed: peer.streamed,
            hash: peer_hash(&peer),
        }
    }

    /// Borrows it back.
    pub fn as_ref(&self) -> PeerRef<'_> {
        PeerRef {
            host: &self.host,
            port: self.port,
            tls: self.tls.as_ref().map(|(id, sni)| (*id, &**sni)),
            h2: self.h2,
            streamed: self.streamed,
        }
    }
}

/// A connection's request sender.
#[derive(Debug)]
pub enum Sender {
    /// HTTP/1.1 through the proxy's own client: the connection itself.
    Own(H1),
    /// HTTP/1.1 through hyper: one request at a time.
    HyperH1(http1::SendRequest<super::upstream::UpstreamBody>),
    /// HTTP/2: multiplexed, cloned per request.
    H2(http2::SendRequest<super::upstream::UpstreamBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Own(c) => c.looks_closed(),
            Sender::HyperH1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Whether an idle connection can carry a request.
    fn is_usable(&mut self) -> bool {
        match self {
            Sender::Own(c) => c.is_usable(),
            other => !other.is_closed(),
        }
    }
}

/// A connection checked out for one request.
#[derive(Debug)]
pub struct Conn {
    /// Its peer.
    pub peer: Peer,
    /// Its sender.
    pub sender: Sender,
    /// Requests sent on it before this one.
    pub used: u32,
    /// Whether it came from the pool (a reused connection may have been closed by the peer
    /// in the meantime, which makes a failure to send worth one more try on a new one).
    pub reused: bool,
}

struct Idle {
    peer: Peer,
    sender: Sender,
    used: u32,
    since: Instant,
}

type Shard = Mutex<HashMap<u64, Vec<Idle>>>;

/// The node's upstream connection pool.
pub struct Pool {
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle", &self.idle()).finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool::default())
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Idle>>> {
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        // A panic while holding the lock cannot leave the map inconsistent (single push/pop).
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live idle connection to `peer`, if the pool has one younger than the idle timeout.
    pub fn checkout(&self, peer: PeerRef<'_>, keepalive: &Keepalive) -> Option<Conn> {
        let hash = peer_hash(&peer);
        let mut shard = self.shard(hash);
        let list = shard.get_mut(&hash)?;
        let max_idle = Duration::from_secs(keepalive.idle_timeout);
        if peer.h2 {
            // Shared: stays in the pool, each request gets a clone of the sender.
            list.retain(|c| !c.sender.is_closed());
            let found = list.iter().find(|c| c.peer.as_ref() == peer)?;
            if let Sender::H2(s) = &found.sender {
                return Some(Conn {
                    peer: found.peer.clone(),
                    sender: Sender::H2(s.clone()),
                    used: found.used,
                    reused: true,
                });
            }
            return None;
        }
        // Most recently returned first: the warmest connection, the least likely closed.
        while let Some(pos) = list.iter().rposition(|c| c.peer.as_ref() == peer) {
            let mut idle = list.swap_remove(pos);
            if !idle.sender.is_usable() || idle.since.elapsed() >= max_idle {
                continue;
            }
            return Some(Conn {
                peer: idle.peer,
                sender: idle.sender,
                used: idle.used,
                reused: true,
            });
        }
        None
    }

    /// Keeps an HTTP/2 connection for sharing.
    pub fn share(&self, conn: &Conn, keepalive: &Keepalive) {
        let Sender::H2(s) = &conn.sender else {
            return;
        };
        if keepalive.pool_size == 0 {
            return;
        }
        let hash = conn.peer.hash;
        let mut shard = self.shard(hash);
        let list = shard.entry(hash).or_default();
        list.retain(|c| !c.sender.is_closed());
        if !list.iter().any(|c| c.peer == conn.peer) {
            list.push(Idle {
                peer: conn.peer.clone(),
                sender: Sender::H2(s.clone()),
                used: 0,
                since: Instant::now(),
            });
        }
    }

    /// Returns an HTTP/1.1 connection whose exchange completed, unless it served its
    /// `max_requests` or the pool for its peer is full (then it closes).
    pub fn put(&self, conn: Conn, keepalive: &Keepalive) {
        let used = conn.used + 1;
        // The own client's connection was just found reusable by its exchange.
        let closed = !matches!(conn.sender, Sender::Own(_)) && conn.sender.is_closed();
        if keepalive.pool_size == 0
            || (keepalive.max_requests > 0 && used >= keepalive.max_requests)
            || closed
        {
            return;
        }
        let hash = conn.peer.hash;
        let mut shard = self.shard(hash);
        let list = shard.entry(hash).or_default();
        if list.len() >= keepalive.pool_size {
            // Drop the oldest: the one most likely closed by the peer soon.
            list.remove(0);
        }
        list.push(Idle {
            peer: conn.peer,
            sender: conn.sender,
            used,
            since: Instant::now(),
        });
    }

    /// Closes idle connections older than `idle_timeout` or closed by their peer, and forgets
    /// peers with nothing left.
    pub fn sweep(&self, idle_timeout: Duration) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, list| {
                list.retain_mut(|c| {
                    c.sender.is_usable()
                        && (matches!(c.sender, Sender::H2(_)) || c.since.elapsed() < idle_timeout)
                });
                !list.is_empty()
            });
        }
    }

    /// Idle (and shared HTTP/2) connections in the pool.
    pub fn idle(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

/// Where a finished HTTP/1.1 exchange gives its connection back.
pub struct Returning {
    /// The pool.
    pub pool: Arc<Pool>,
    /// The connection.
    pub conn: Conn,
    /// The keep-alive settings in force.
    pub keepalive: Keepalive,
}

pin_project_lite::pin_project! {
    /// Where a response body comes from.
    #[project = SourceProj]
    enum Source {
        /// hyper's client.
        Hyper { #[pin] body: Incoming },
        /// The proxy's own client, reading from the connection held in `returning`.
        Own { state: BodyState },
    }
}

pin_project_lite::pin_project! {
    /// An upstream response body: passed through frame by frame, with the service's read
    /// timeout between two frames, giving its connection back to the pool once read to the end.
    pub struct PooledBody {
        #[pin]
        source: Source,
        // Armed when a read has to wait (most small answers never do, and need no timer).
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        // Whether the deadline is set for the wait in progress.
        waiting: bool,
        read_timeout: Duration,
        returning: Option<Returning>,
    }
}

/// The upstream stopped sending for longer than the service's read timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream read timed out")]
pub struct ReadTimeout;

/// Errors while streaming an upstream body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed (hyper's client).
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The connection failed (the proxy's own client).
    #[error(transparent)]
    Own(#[from] H1Error),
    /// The upstream went silent.
    #[error(transparent)]
    Timeout(#[from] ReadTimeout),
}

impl PooledBody {
    /// Wraps hyper's `inner`; `returning` is the connection to give back at the end (HTTP/1.1).
    pub fn new(inner: Incoming, read_timeout: Duration, returning: Option<Returning>) -> Self {
        let end = inner.is_end_stream();
        Self::with(Source::Hyper { body: inner }, read_timeout, returning, end)
    }

    /// A body the proxy's own client reads per `state` from the connection in `returning`.
    pub fn own(state: BodyState, read_timeout: Duration, returning: Returning) -> Self {
        let end = state.is_end();
        Self::with(Source::Own { state }, read_timeout, Some(returning), end)
    }

    fn with(
        source: Source,
        read_timeout: Duration,
        returning: Option<Returning>,
        end: bool,
    ) -> Self {
        let mut body = PooledBody {
            source,
            deadline: None,
            waiting: false,
            read_timeout,
            returning,
        };
        if end {
            give_back(&body.source, &mut body.returning);
        }
        body
    }
}

/// Gives the connection back to the pool, if the body read from it allows.
fn give_back(source: &Source, returning: &mut Option<Returning>) {
    let Some(r) = returning.take() else {
        return;
    };
    let reusable = match (source, &r.conn.sender) {
        (Source::Own { state }, Sender::Own(conn)) => conn.reusable_after(state),
        (Source::Own { .. }, _) => false,
        (Source::Hyper { .. }, _) => true,
    };
    if reusable {
        r.pool.put(r.conn, &r.keepalive);
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        let polled = match this.source.as_mut().project() {
            SourceProj::Hyper { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::from(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            SourceProj::Own { state } => match this.returning.as_mut() {
                Some(Returning {
                    conn:
                        Conn {
                            sender: Sender::Own(conn),
                            ..
                        },
                    ..
                }) => match conn.poll_body(state, cx) {
                    Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::from(e)))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                },
                _ => Poll::Ready(None),
            },
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if this.source.is_end_stream() {
                    give_back(&this.source, this.returning);
                }
                *this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                give_back(&this.source, this.returning);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // The connection is broken: it is dropped, never pooled.
                this.returning.take();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                let timeout = *this.read_timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if !*this.waiting {
                    *this.waiting = true;
                    deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + timeout);
                }
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.returning.take();
                        Poll::Ready(Some(Err(ReadTimeout.into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.source.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Hyper { body } => body.size_hint(),
            Source::Own { state } => match state.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

impl Source {
    fn is_end_stream(&self) -> bool {
        match self {
            Source::Hyper { body } => body.is_end_stream(),
            Source::Own { state } => state.is_end(),
        }
    }
}
