//! Keep-alive connections to upstream peers, pooled per peer the way Kong keys its pools: the
//! address, and for TLS also the server name and the TLS profile (verification, depth, trusted
//! CAs, client certificate).
//!
//! An HTTP/1.1 connection is checked out for one request and comes back when its response body
//! has been read to the end ([`PooledBody`]); one whose body was abandoned is closed. An HTTP/2
//! connection (gRPC) stays in the pool while in use and is shared by concurrent requests.
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
}

/// An owned [`PeerRef`], kept with each pooled connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    host: Box<str>,
    port: u16,
    tls: Option<(u64, Box<str>)>,
    h2: bool,
}

impl Peer {
    /// Owns `peer`.
    pub fn of(peer: PeerRef<'_>) -> Peer {
        Peer {
            host: peer.host.into(),
            port: peer.port,
            tls: peer.tls.map(|(id, sni)| (id, sni.into())),
            h2: peer.h2,
        }
    }

    /// Borrows it back.
    pub fn as_ref(&self) -> PeerRef<'_> {
        PeerRef {
            host: &self.host,
            port: self.port,
            tls: self.tls.as_ref().map(|(id, sni)| (*id, &**sni)),
            h2: self.h2,
        }
    }
}

/// A connection's request sender.
#[derive(Debug)]
pub enum Sender {
    /// HTTP/1.1: one request at a time.
    H1(http1::SendRequest<super::upstream::UpstreamBody>),
    /// HTTP/2: multiplexed, cloned per request.
    H2(http2::SendRequest<super::upstream::UpstreamBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
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
    hasher: foldhash::fast::FixedState,
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
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool::default())
    }

    fn hash(&self, peer: &PeerRef<'_>) -> u64 {
        self.hasher.hash_one(peer)
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Idle>>> {
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        // A panic while holding the lock cannot leave the map inconsistent (single push/pop).
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live idle connection to `peer`, if the pool has one younger than the idle timeout.
    pub fn checkout(&self, peer: PeerRef<'_>, keepalive: &Keepalive) -> Option<Conn> {
        let hash = self.hash(&peer);
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
            let idle = list.swap_remove(pos);
            if idle.sender.is_closed() || idle.since.elapsed() >= max_idle {
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
        let hash = self.hash(&conn.peer.as_ref());
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
        if keepalive.pool_size == 0
            || (keepalive.max_requests > 0 && used >= keepalive.max_requests)
            || conn.sender.is_closed()
        {
            return;
        }
        let hash = self.hash(&conn.peer.as_ref());
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
                list.retain(|c| {
                    !c.sender.is_closed()
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
    /// An upstream response body: passed through frame by frame, with the service's read
    /// timeout between two frames, giving its connection back to the pool once read to the end.
    pub struct PooledBody {
        #[pin]
        inner: Incoming,
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
    /// The connection failed.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The upstream went silent.
    #[error(transparent)]
    Timeout(#[from] ReadTimeout),
}

impl PooledBody {
    /// Wraps `inner`; `returning` is the connection to give back at the end (HTTP/1.1).
    pub fn new(inner: Incoming, read_timeout: Duration, returning: Option<Returning>) -> Self {
        let mut body = PooledBody {
            inner,
            deadline: None,
            waiting: false,
            read_timeout,
            returning,
        };
        if body.inner.is_end_stream() {
            body.give_back();
        }
        body
    }

    fn give_back(&mut self) {
        if let Some(r) = self.returning.take() {
            r.pool.put(r.conn, &r.keepalive);
        }
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
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    if let Some(r) = this.returning.take() {
                        r.pool.put(r.conn, &r.keepalive);
                    }
                }
                *this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if let Some(r) = this.returning.take() {
                    r.pool.put(r.conn, &r.keepalive);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // The connection is broken: it is dropped, never pooled.
                this.returning.take();
                Poll::Ready(Some(Err(e.into())))
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
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
