//! A guard between a client's socket and hyper's HTTP/1 parser. It reads each request head whole
//! before hyper sees it and refuses the heads nginx (and so Kong) refuses, with nginx's statuses
//! (on the proxy listener, connections come here from the own loop, [`super::http1`], at the
//! first request that loop does not serve itself):
//!
//! - a request line longer than one `large_client_header_buffers` buffer: 414;
//! - a header line longer than a buffer, a head larger than all the buffers together, or more
//!   headers than `lua_max_req_headers`: 400 (nginx's 494, which Kong sends as 400);
//! - `Content-Length` together with `Transfer-Encoding`, differing or malformed
//!   `Content-Length`s, a `Transfer-Encoding` that does not end in `chunked` or comes with
//!   HTTP/1.0, obs-fold, and any head hyper's parser (the same `httparse`) rejects: 400.
//!
//! Why not leave it to hyper: hyper accepts `Content-Length` with `Transfer-Encoding` (it drops
//! the length, reads chunked and closes afterwards), and it answers head errors itself with bare
//! 400/414/431 responses, in no Kong shape. So a refused head never reaches hyper. The guard
//! hands hyper the bytes before it, then [`STAND_IN`], a request with `Connection: close`, and
//! records in the connection's [`Verdict`] which request on the connection the stand-in is. The
//! listener's service answers that request with the handler's refusal, so requests pipelined
//! before it are answered first, in order, and hyper closes the connection afterwards.
//!
//! To know where each head starts the guard follows the framing: it counts `Content-Length`
//! bodies and walks chunked ones, passing body bytes on as they come (only heads are held).
//! After a request asking for an upgrade (or a CONNECT), for HTTP/2, and when a chunked body is
//! malformed (hyper then fails the request itself) it steps aside and passes bytes unexamined.
//!
//! Closing: when a connection ends after an answer while the client may still be sending (a
//! refused head, a body answered before it was all read: 408, 413, 400), shutting the guard down
//! lingers as nginx does: it sends FIN, then reads and drops what still arrives for a bounded
//! time, so that the client's kernel does not get a reset that would destroy the answer before
//! the client reads it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the guard enforces on request heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line or header line, line end included, in bytes.
    pub line: usize,
    /// Largest head, in bytes.
    pub total: usize,
    /// Most headers in one head.
    pub headers: usize,
}

/// Why a head was refused; each is answered as nginx answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An unparseable or ambiguous head: 400.
    BadRequest,
    /// A header line, the whole head or the header count over the limits: 400.
    HeaderTooLarge,
    /// A request line longer than one buffer: 414.
    UriTooLong,
}

impl Refusal {
    /// The status nginx answers with.
    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::BadRequest | Refusal::HeaderTooLarge => http::StatusCode::BAD_REQUEST,
            Refusal::UriTooLong => http::StatusCode::URI_TOO_LONG,
        }
    }

    /// Kong's message for it.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::BadRequest => "Bad request",
            Refusal::HeaderTooLarge => "Request header or cookie too large",
            Refusal::UriTooLong => "URI too long",
        }
    }
}

/// A refused request, as the listener's service learns of it.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Position of the refused request on its connection, counting from 1.
    pub request: u64,
    /// Why it was refused.
    pub reason: Refusal,
    /// The refused head's `Accept` and `Content-Type`, when the head could be parsed, to pick
    /// the error's format.
    pub negotiation: HeaderMap,
}

/// Where a connection's guard leaves its refusal for the service; set at most once, since the
/// connection closes after a refusal.
pub type Verdict = Arc<OnceLock<Refused>>;

/// What hyper reads in place of a refused head.
pub const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n";

/// Bytes asked of the socket per read while heads are being looked for.
const READ_CHUNK: usize = 8 << 10;
/// Longest chunk-size line (extensions included) the guard follows.
const MAX_CHUNK_LINE: usize = 4 << 10;
/// Lingering close, as nginx's `lingering_timeout`: the longest quiet spell...
const LINGER_IDLE: Duration = Duration::from_secs(5);
/// ... and `lingering_time`: the longest lingering in all.
const LINGER_MAX: Duration = Duration::from_secs(30);

/// A client connection with its request heads checked before they pass.
pub struct Guarded<IO> {
    io: IO,
    scanner: Scanner,
    /// Bytes read from the client that hyper has not had yet.
    pending: BytesMut,
    /// How many bytes at the front of `pending` may go to hyper.
    ready: usize,
    verdict: Verdict,
    /// A head was refused: nothing read after it goes to hyper.
    refused: bool,
    /// The client sent EOF (or its socket failed).
    eof: bool,
    /// The write side was shut down.
    shut: bool,
    linger: Option<Linger>,
}

struct Linger {
    until: Instant,
    quiet: Pin<Box<Sleep>>,
}

impl<IO> Guarded<IO> {
    /// Guards an HTTP/1 connection whose first bytes, already read, are `prefix`.
    pub fn http1(io: IO, prefix: &[u8], limits: HeadLimits, verdict: Verdict) -> Guarded<IO> {
        let mut guarded = Guarded::new(io, Scanner::new(limits), verdict);
        guarded.take_in(prefix);
        guarded
    }

    /// Passes every byte unexamined, `prefix` first (HTTP/2 after its preface was sniffed).
    pub fn open(io: IO, prefix: &[u8]) -> Guarded<IO> {
        let mut scanner = Scanner::new(HeadLimits {
            line: 0,
            total: 0,
            headers: 0,
        });
        scanner.state = State::Open;
        let mut guarded = Guarded::new(io, scanner, Verdict::default());
        guarded.take_in(prefix);
        guarded
    }

    fn new(io: IO, scanner: Scanner, verdict: Verdict) -> Guarded<IO> {
        Guarded {
            io,
            scanner,
            pending: BytesMut::new(),
            ready: 0,
            verdict,
            refused: false,
            eof: false,
            shut: false,
            linger: None,
        }
    }

    /// Adds bytes read from the client and lets the scanner release what it can.
    fn take_in(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.scan();
    }

    fn scan(&mut self) {
        if self.refused {
            return;
        }
        match self.scanner.scan(&self.pending[self.ready..]) {
            Scan::Pass(n) => self.ready += n,
            Scan::Refuse(before, reason, negotiation) => {
                self.pending.truncate(self.ready + before);
                self.refuse(reason, negotiation);
            }
        }
    }

    /// Refuses the head the scanner stopped at (the bytes before it have passed): hyper gets
    /// the stand-in next and nothing after it, and the verdict tells the service.
    fn refuse(&mut self, reason: Refusal, negotiation: HeaderMap) {
        self.pending.extend_from_slice(STAND_IN);
        self.ready = self.pending.len();
        self.refused = true;
        let refused = Refused {
            request: self.scanner.heads + 1,
            reason,
            negotiation,
        };
        tracing::debug!(request = refused.request, reason = ?refused.reason, "request head refused");
        // The verdict is set once: the first refusal ends the connection.
        let _ = self.verdict.set(refused);
    }

    /// Whether closing now may reset an answer away: the client may still be sending a
    /// refused request or a body that was answered before it was read. (A head cut off by the
    /// header timeout gets no answer, so there is nothing to protect.)
    fn needs_linger(&self) -> bool {
        !self.eof && (self.refused || self.scanner.in_body())
    }
}

impl<IO: AsyncRead + Unpin> Guarded<IO> {
    /// Reads and drops client bytes until the socket has none ready (pending), or until EOF or
    /// the end of lingering (ready).
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 4096];
        while !self.eof {
            let mut sink = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(())) if sink.filled().is_empty() => self.eof = true,
                Poll::Ready(Ok(())) => {
                    if let Some(linger) = &mut self.linger {
                        let now = Instant::now();
                        if now >= linger.until {
                            return Poll::Ready(());
                        }
                        linger
                            .quiet
                            .as_mut()
                            .reset((now + LINGER_IDLE).min(linger.until));
                    }
                }
                Poll::Ready(Err(_)) => self.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // Hyper must not see EOF here: it would drop the refusal's answer. What the
                // client still sends is read and dropped, so closing later does not reset.
                let _ = this.poll_discard(cx);
                return Poll::Pending;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.pending.is_empty() {
                // Read straight into hyper's buffer (no zeroing, no copy); what the scanner
                // does not pass yet (a head still incomplete, a refused one) is taken back.
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                let n = buf.filled().len() - before;
                if n == 0 {
                    this.eof = true;
                    this.scanner.state = State::Open;
                    return Poll::Ready(Ok(()));
                }
                if let Some(unheld) = this.scanner.unheld() {
                    if unheld >= n {
                        // Body bytes that cannot reach past the body (or anything, once the
                        // guard stepped aside) need no look.
                        this.scanner.passed(n);
                        return Poll::Ready(Ok(()));
                    }
                }
                let passed = match this.scanner.scan(&buf.filled()[before..]) {
                    Scan::Pass(k) => k,
                    Scan::Refuse(k, reason, negotiation) => {
                        this.refuse(reason, negotiation);
                        k
                    }
                };
                if passed < n && !this.refused {
                    this.pending
                        .extend_from_slice(&buf.filled()[before + passed..]);
                }
                buf.set_filled(before + passed);
                if passed > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let start = this.pending.len();
            this.pending.resize(start + READ_CHUNK, 0);
            let mut into = ReadBuf::new(&mut this.pending[start..]);
            let read = Pin::new(&mut this.io).poll_read(cx, &mut into);
            let n = into.filled().len();
            this.pending.truncate(start + n);
            ready!(read)?;
            if n == 0 {
                // EOF: whatever was held goes to hyper, which handles a cut-off head itself.
                this.eof = true;
                this.ready = this.pending.len();
                this.scanner.state = State::Open;
                continue;
            }
            this.scan();
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.shut = true;
        }
        if !this.needs_linger() {
            return Poll::Ready(Ok(()));
        }
        if this.linger.is_none() {
            let now = Instant::now();
            this.linger = Some(Linger {
                until: now + LINGER_MAX,
                quiet: Box::pin(tokio::time::sleep(LINGER_IDLE)),
            });
        }
        if this.poll_discard(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        // Polled after discarding, which may have moved the deadline.
        let quiet_over = match &mut this.linger {
            Some(linger) => linger.quiet.as_mut().poll(cx).is_ready(),
            None => true,
        };
        match quiet_over {
            true => Poll::Ready(Ok(())),
            false => Poll::Pending,
        }
    }
}

/// Follows HTTP/1 framing over the bytes a client sends.
struct Scanner {
    limits: HeadLimits,
    state: State,
    /// Heads passed so far.
    heads: u64,
}

enum State {
    /// Reading a head; offsets count from its first byte (the first byte not yet passed).
    Head {
        scanned: usize,
        line_start: usize,
        request_line: bool,
    },
    /// This many body bytes still to pass.
    Body(u64),
    /// Walking a chunked body.
    Chunked(Chunk),
    /// Everything passes unexamined.
    Open,
}

enum Chunk {
    /// On a chunk-size line.
    Size {
        len: usize,
        value: u64,
        digits: bool,
        ext: bool,
    },
    /// This many chunk data bytes still to pass.
    Data(u64),
    /// After a chunk's data, before its line end; true once the CR was seen.
    DataEnd(bool),
    /// In the trailers, with the current line's length (CRs not counted).
    Trailer(usize),
}

enum Scan {
    /// This many bytes may pass.
    Pass(usize),
    /// The head starting after this many bytes is refused.
    Refuse(usize, Refusal, HeaderMap),
}

/// A chunked body the guard cannot follow.
struct Lost;

impl State {
    fn head() -> State {
        State::Head {
            scanned: 0,
            line_start: 0,
            request_line: true,
        }
    }
}

impl Chunk {
    fn size() -> Chunk {
        Chunk::Size {
            len: 0,
            value: 0,
            digits: false,
            ext: false,
        }
    }
}

impl Scanner {
    fn new(limits: HeadLimits) -> Scanner {
        Scanner {
            limits,
            state: State::head(),
            heads: 0,
        }
    }

    /// Inside a request body.
    fn in_body(&self) -> bool {
        matches!(self.state, State::Body(_) | State::Chunked(_))
    }

    /// How many of the next bytes pass whatever they are, if the framing says so: body bytes
    /// it counts, or all of them once the guard stepped aside.
    fn unheld(&self) -> Option<usize> {
        let left = match self.state {
            State::Open => return Some(usize::MAX),
            State::Body(left) | State::Chunked(Chunk::Data(left)) => left,
            _ => return None,
        };
        Some(usize::try_from(left).unwrap_or(usize::MAX))
    }

    /// Records `n` bytes passed directly (never more than [`Scanner::unheld`] allowed).
    fn passed(&mut self, n: usize) {
        let n = n as u64;
        match &mut self.state {
            State::Body(left) => {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    self.state = State::head();
                }
            }
            State::Chunked(chunk @ Chunk::Data(_)) => {
                if let Chunk::Data(left) = chunk {
                    *left = left.saturating_sub(n);
                    if *left == 0 {
                        *chunk = Chunk::DataEnd(false);
                    }
                }
            }
            _ => {}
        }
    }

    /// Goes over `input`, the bytes not passed yet; a head in progress starts at its first byte.
    fn scan(&mut self, input: &[u8]) -> Scan {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match &mut self.state {
                State::Open => return Scan::Pass(input.len()),
                State::Body(left) => {
                    let take = (*left).min(rest.len() as u64);
                    *left -= take;
                    pos += take as usize;
                    if *left > 0 {
                        return Scan::Pass(pos);
                    }
                    self.state = State::head();
                }
                State::Chunked(chunk) => match walk_chunks(chunk, rest) {
                    Ok((used, false)) => return Scan::Pass(pos + used),
                    Ok((used, true)) => {
                        pos += used;
                        self.state = State::head();
                    }
                    Err(Lost) => {
                        self.state = State::Open;
                        return Scan::Pass(input.len());
                    }
                },
                State::Head { .. } => match self.head(rest) {
                    None => return Scan::Pass(pos),
                    Some(Ok(len)) => pos += len,
                    Some(Err((reason, negotiation))) => {
                        return Scan::Refuse(pos, reason, negotiation)
                    }
                },
            }
        }
    }

    /// Looks for the end of the head at the start of `rest`: `None` while incomplete, else its
    /// length (the state then follows its body) or why it is refused.
    fn head(&mut self, rest: &[u8]) -> Option<Result<usize, (Refusal, HeaderMap)>> {
        let limits = self.limits;
        let State::Head {
            scanned,
            line_start,
            request_line,
        } = &mut self.state
        else {
            return None;
        };
        let too_long = |request_line: bool| {
            let reason = match request_line {
                true => Refusal::UriTooLong,
                false => Refusal::HeaderTooLarge,
            };
            Some(Err((reason, HeaderMap::new())))
        };
        while let Some(at) = rest[*scanned..].iter().position(|b| *b == b'\n') {
            let end = *scanned + at + 1;
            let line = &rest[*line_start..end];
            *scanned = end;
            let blank = matches!(line, b"\n" | b"\r\n");
            if line.len() > limits.line {
                return too_long(*request_line);
            }
            if end > limits.total {
                return Some(Err((Refusal::HeaderTooLarge, HeaderMap::new())));
            }
            *line_start = end;
            match (blank, *request_line) {
                // Empty lines before the request line are ignored, as by hyper.
                (true, true) => {}
                (true, false) => return Some(self.complete(&rest[..end])),
                (false, true) => *request_line = false,
                (false, false) => {}
            }
        }
        *scanned = rest.len();
        if rest.len() - *line_start > limits.line {
            return too_long(*request_line);
        }
        if rest.len() > limits.total {
            return Some(Err((Refusal::HeaderTooLarge, HeaderMap::new())));
        }
        None
    }

    /// Parses a whole head as hyper will and decides: its length and framing, or a refusal.
    fn complete(&mut self, head: &[u8]) -> Result<usize, (Refusal, HeaderMap)> {
        const ON_STACK: usize = 100;
        let mut stack = [httparse::EMPTY_HEADER; ON_STACK];
        let mut heap;
        let slots: &mut [httparse::Header<'_>] = if self.limits.headers <= ON_STACK {
            &mut stack[..self.limits.headers]
        } else {
            heap = vec![httparse::EMPTY_HEADER; self.limits.headers];
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        match req.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err((Refusal::HeaderTooLarge, HeaderMap::new()))
            }
            _ => return Err((Refusal::BadRequest, HeaderMap::new())),
        }
        let mut negotiation = HeaderMap::new();
        let mut length: Option<u64> = None;
        let mut bad_length = false;
        let mut transfer_encoding = false;
        let mut chunked = false;
        let mut upgrade = req.method == Some("CONNECT");
        for h in req.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                match content_length(h.value) {
                    Some(n) if length.is_none_or(|m| m == n) => length = Some(n),
                    _ => bad_length = true,
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
                // As hyper: the last coding of the last line decides.
                chunked = h
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            } else if name.eq_ignore_ascii_case("accept")
                || name.eq_ignore_ascii_case("content-type")
            {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(h.value),
                ) {
                    negotiation.insert(n, v);
                }
            }
        }
        let http10 = req.version == Some(0);
        if bad_length || (transfer_encoding && (length.is_some() || !chunked || http10)) {
            return Err((Refusal::BadRequest, negotiation));
        }
        self.heads += 1;
        self.state = if upgrade {
            // What follows may be another protocol: the guard steps aside.
            State::Open
        } else if chunked {
            State::Chunked(Chunk::size())
        } else {
            match length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::head(),
            }
        };
        Ok(head.len())
    }
}

/// A `Content-Length` value: digits only, as hyper reads it.
pub(super) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Follows a chunked body over `rest`: how many bytes it walked, and whether the body ended.
fn walk_chunks(chunk: &mut Chunk, rest: &[u8]) -> Result<(usize, bool), Lost> {
    let mut i = 0;
    while i < rest.len() {
        if let Chunk::Data(left) = chunk {
            let take = (*left).min((rest.len() - i) as u64);
            *left -= take;
            i += take as usize;
            if *left == 0 {
                *chunk = Chunk::DataEnd(false);
            }
            continue;
        }
        let b = rest[i];
        i += 1;
        match chunk {
            Chunk::Size {
                len,
                value,
                digits,
                ext,
            } => {
                *len += 1;
                if *len > MAX_CHUNK_LINE {
                    return Err(Lost);
                }
                match b {
                    b'\n' if *digits => {
                        *chunk = match *value {
                            0 => Chunk::Trailer(0),
                            n => Chunk::Data(n),
                        }
                    }
                    b'\n' => return Err(Lost),
                    _ if *ext => {}
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                        *value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(digit))
                            .ok_or(Lost)?;
                        *digits = true;
                    }
                    b';' | b' ' | b'\t' | b'\r' if *digits => *ext = true,
                    _ => return Err(Lost),
                }
            }
            Chunk::DataEnd(cr) => match b {
                b'\n' => *chunk = Chunk::size(),
                b'\r' if !*cr => *cr = true,
                _ => return Err(Lost),
            },
            Chunk::Trailer(len) => match b {
                b'\n' if *len == 0 => return Ok((i, true)),
                b'\n' => *len = 0,
                b'\r' => {}
                _ => *len += 1,
            },
            Chunk::Data(_) => {}
        }
    }
    Ok((i, false))
}

#[cfg(test)]
mod tests;
