//! The gateway's own HTTP/1.1 server loop, for listeners whose handler asks for it (the
//! proxy's): plain requests are read, answered and written here, in the connection's task,
//! with no copy of header values, no second parse by the guard and no channel to a body task.
//!
//! ```text
//!            ┌──────────── keep-alive ◄───────────────────────┐
//! bytes ──► head end ──► plain head? ──► body all here? ──► handler ──► response written
//!              │ over a limit    │ no            │ no
//!              └─────────────────┴───────────────┴──► guard + hyper, from this head on
//! ```
//!
//! A request is *plain* when its head is within the limits and needs nothing but reading (see
//! `head`) and its body (a `Content-Length` of at most [`WHOLE_MAX`] bytes) has arrived with
//! it. Everything else (a refused head, chunked or large bodies, `Expect`, upgrades) is left to
//! the guard and hyper, which get the connection from that head on, so their rules stay the
//! only ones for those cases: the own loop is a faster road for the common request, not a
//! second set of rules. Responses are framed as hyper frames them (`write`).
//!
//! As with hyper: the header timeout bounds the wait for a head, idle keep-alive time included
//! (then the connection closes without an answer); a client that closes its side while its
//! request is being answered cancels the request; a draining listener closes idle connections
//! and ends the others after their current answer.

mod head;
mod write;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::TE;
use http::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::body::RequestBody;
use super::guard::HeadLimits;
use super::listener::{ConnInfo, Handler};
use crate::config::ClientLimits;
use head::End;
use write::Asked;

/// Largest body the loop takes whole with its head; a larger one goes to hyper, streamed.
pub const WHOLE_MAX: usize = 64 << 10;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 8 << 10;
/// Least free room in the read buffer before a read; below it the buffer grows.
const READ_MIN: usize = 1 << 10;

/// A connection the loop leaves to the guard and hyper: the socket, and the bytes read from it
/// that were not served (starting with the head the loop did not take).
pub struct Handoff<IO> {
    /// The client's connection.
    pub io: IO,
    /// What was read and not served, to be read again first.
    pub read: BytesMut,
}

/// Serves `io` (whose first bytes, already read, are `first`) until it closes, or until a
/// request the loop leaves to hyper: then the connection is handed back as [`Handoff`].
pub async fn serve<IO, H>(
    mut io: IO,
    first: &[u8],
    conn: &Arc<ConnInfo>,
    handler: &Arc<H>,
    limits: &ClientLimits,
    mut draining: watch::Receiver<bool>,
) -> Result<(), Handoff<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let head_limits = HeadLimits {
        line: limits.header_line,
        total: limits.header_total,
        headers: limits.max_headers,
    };
    let mut buf = BytesMut::with_capacity(READ_SIZE.max(first.len()));
    buf.extend_from_slice(first);
    let mut out = Vec::with_capacity(1024);
    let mut idle = Idle::new(limits.header_timeout);
    let drain = draining.clone();
    // A listener dropped without draining (a fast stop) never asks.
    let drained = async {
        if draining.wait_for(|d| *d).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut drained = pin!(drained);
    loop {
        idle.restart();
        let end = loop {
            match head::end(&buf, &head_limits) {
                End::At(n) => break n,
                End::Over => return Err(Handoff { io, read: buf }),
                End::Partial => {}
            }
            reserve(&mut buf, READ_SIZE);
            let waiting = buf.is_empty();
            let event = tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => Event::Closed,
                    Ok(_) => Event::Read,
                },
                () = idle.expired() => Event::TimedOut,
                () = &mut drained, if waiting => Event::TimedOut,
            };
            match event {
                Event::Read => {}
                // A head cut off by EOF is hyper's to judge, as it was before the loop.
                Event::Closed if !buf.is_empty() => return Err(Handoff { io, read: buf }),
                Event::Closed | Event::TimedOut => return Ok(()),
            }
        };
        let head = buf.split_to(end).freeze();
        let Some(plain) = head::parse(&head) else {
            return Err(handing_back(io, head, buf));
        };
        let declared = usize::try_from(plain.body).unwrap_or(usize::MAX);
        if declared > buf.len() && !read_now(&mut io, &mut buf, declared).await {
            return Err(handing_back(io, head, buf));
        }
        let body = buf.split_to(declared).freeze();
        let request = plain.request.map(|()| RequestBody::whole(body));
        let asked = Asked {
            head: request.method() == Method::HEAD,
            version: request.version(),
            trailers: request.headers().get_all(TE).iter().any(|v| {
                v.as_bytes()
                    .windows(8)
                    .any(|w| w.eq_ignore_ascii_case(b"trailers"))
            }),
            close: !plain.keep_alive,
        };
        // Pinned where it is made: the handler's future is large, and is not moved again.
        let answer = pin!(handler.clone().handle(request, conn.clone()));
        let Some(response) = answered(answer, &mut io, &mut buf).await else {
            // The client left: its request is dropped with the connection.
            return Ok(());
        };
        let asked = Asked {
            close: asked.close || *drain.borrow(),
            ..asked
        };
        match write::respond(&mut io, &mut out, response, asked).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = io.shutdown().await;
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "writing a response failed");
                return Ok(());
            }
        }
        // The write buffer keeps its room for the next answer, up to a bound.
        if out.capacity() > 4 * READ_SIZE {
            out = Vec::with_capacity(1024);
        }
    }
}

/// What waiting for a head ended with.
enum Event {
    Read,
    Closed,
    TimedOut,
}

/// The connection handed back from the head the loop did not take: `head` then the bytes
/// after it.
fn handing_back<IO>(io: IO, head: Bytes, rest: BytesMut) -> Handoff<IO> {
    let mut read = BytesMut::with_capacity(head.len() + rest.len());
    read.extend_from_slice(&head);
    read.extend_from_slice(&rest);
    Handoff { io, read }
}

/// Makes room for a read of at least `want` bytes.
fn reserve(buf: &mut BytesMut, want: usize) {
    if buf.capacity() - buf.len() < READ_MIN {
        buf.reserve(want);
    }
}

/// Reads what the socket already holds until `buf` has `len` bytes: whether it has them now.
/// Only a body of at most [`WHOLE_MAX`] bytes is waited for this way, and never for more than
/// what has arrived: a body still on its way goes to hyper, streamed.
async fn read_now<IO: AsyncRead + Unpin>(io: &mut IO, buf: &mut BytesMut, len: usize) -> bool {
    if len > WHOLE_MAX {
        return false;
    }
    buf.reserve(len - buf.len());
    while buf.len() < len {
        let read = poll_fn(|cx| {
            let read = pin!(io.read_buf(&mut *buf));
            Poll::Ready(read.poll(cx))
        })
        .await;
        match read {
            Poll::Ready(Ok(n)) if n > 0 => {}
            _ => return false,
        }
    }
    true
}

/// Runs the handler's `answer` to its end, watching the client meanwhile: `None` when it
/// closed its side (or its socket failed) before the answer, as hyper cancels such requests.
/// Bytes it sends ahead (a pipelined request) are kept in `buf`; once some are there the
/// socket is not read again until they are served.
async fn answered<IO, F>(
    mut answer: Pin<&mut F>,
    io: &mut IO,
    buf: &mut BytesMut,
) -> Option<F::Output>
where
    IO: AsyncRead + Unpin,
    F: Future,
{
    loop {
        let watching = buf.is_empty();
        if watching {
            reserve(buf, READ_SIZE);
        }
        tokio::select! {
            biased;
            response = &mut answer => return Some(response),
            read = io.read_buf(buf), if watching => match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
        }
    }
}

/// The header timeout, restarted per request at the cost of reading the clock: its timer is
/// only moved when it fires early.
struct Idle {
    limit: Duration,
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    fn new(limit: Duration) -> Idle {
        let deadline = Instant::now() + limit;
        Idle {
            limit,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Starts the wait over.
    fn restart(&mut self) {
        self.deadline = Instant::now() + self.limit;
    }

    /// Completes once the wait has lasted the limit.
    async fn expired(&mut self) {
        loop {
            self.timer.as_mut().await;
            if Instant::now() >= self.deadline {
                return;
            }
            self.timer.as_mut().reset(self.deadline);
        }
    }
}
