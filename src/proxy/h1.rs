//! HTTP/1.1 to upstreams, driven by the request's own task: the request head and its buffered
//! body written in one go, the response head parsed with httparse (its header lines kept as
//! they came, not put in a map), the response body read as the client takes it. There is no connection task and no channel between a request and its
//! connection, and a retry writes the same request again from the request head the proxy still
//! holds (nothing is cloned in case one is needed).
//!
//! Requests whose body streams from the client, and protocol upgrades, go through hyper's
//! client instead (see [`super::upstream`]).
//!
//! Response framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; a
//! `Transfer-Encoding` ending in `chunked` is decoded (trailers are read and dropped), any other
//! transfer coding is read until the connection closes; else `Content-Length` (several values
//! must agree); else until close. Interim 1xx answers (`100 Continue`) are skipped. A
//! connection goes back to the pool only when the response said it could (HTTP/1.1 without
//! `Connection: close`, or HTTP/1.0 with `keep-alive`), its body was framed by length or chunks
//! and read to the end, and nothing followed it.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::headers::Overlay;
use crate::runtime::raw_headers::{self, Kind, Line, RawHeaders};
use crate::stream::io::Either;

/// The largest response head accepted (nginx's `proxy_buffer_size` is 4–8 KB; hyper's limit
/// is about 400 KB): larger is the upstream's fault, a 502.
const MAX_HEAD: usize = 64 * 1024;

/// Headers a response head may carry.
const MAX_HEADERS: usize = 100;

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// A connection's transport: plain TCP, or TLS over TCP.
pub(crate) type Io = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// The TCP socket under `io`.
fn tcp(io: &Io) -> &TcpStream {
    match io {
        Either::Left(s) => s,
        Either::Right(s) => s.get_ref().0,
    }
}

/// What went wrong on an upstream HTTP/1.1 connection.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// Reading or writing failed.
    #[error("upstream connection failed: {0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before a whole response head.
    #[error("upstream closed the connection before answering")]
    Closed,
    /// The upstream closed the connection in the middle of a body.
    #[error("upstream closed the connection in the middle of the body")]
    Truncated,
    /// The upstream sent something that is not HTTP/1.x as expected.
    #[error("invalid response from upstream: {0}")]
    Invalid(&'static str),
}

/// The largest encode buffer a connection keeps between requests.
const KEPT_OUT: usize = 64 * 1024;

/// An HTTP/1.1 connection to an upstream and the bytes read from it but not yet used.
#[derive(Debug)]
pub struct H1 {
    io: Io,
    buf: BytesMut,
    /// The request being sent, encoded (kept for the next one).
    out: Vec<u8>,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// This many bytes are left.
    Length(u64),
    /// Chunked, at this point of the chunk syntax.
    Chunked(Chunk),
    /// Until the upstream closes.
    UntilClose,
    /// Read to the end.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data are left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines up to the empty one.
    Trailers,
}

/// A response head, and how its body is read.
#[derive(Debug)]
pub struct Head {
    /// Status and version as the upstream sent them; its header lines are kept as they came,
    /// a [`RawHeaders`] in the extensions (the header map is empty).
    pub parts: http::response::Parts,
    /// How the body is read.
    pub body: BodyState,
}

/// Where the reading of a response body is.
#[derive(Debug)]
pub struct BodyState {
    framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    keep_alive: bool,
}

impl H1 {
    /// A connection over `io`.
    pub(crate) fn new(io: Io) -> H1 {
        H1 {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
        }
    }

    /// Whether the idle connection's peer closed it or sent something unasked, as far as the
    /// readiness the runtime already holds tells (no system call).
    pub fn looks_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        tcp(&self.io).poll_read_ready(&mut cx).is_ready()
    }

    /// Whether the idle connection can carry a request: nothing arrived since its last
    /// response (checked with a read only when the runtime saw the socket become readable).
    pub fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        if !self.looks_closed() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 64];
        let mut probe = ReadBuf::new(&mut probe);
        // Pending: only readiness left from the last read (or TLS records without data).
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }

    /// Sends the request `head` with `overlay` and `body` ([`encode`]); on failure, says
    /// whether any byte left.
    pub async fn send(
        &mut self,
        head: &http::request::Parts,
        overlay: &Overlay,
        body: &[u8],
    ) -> Result<(), (H1Error, bool)> {
        encode(head, overlay, body, &mut self.out);
        let sent = write_all(&mut self.io, &self.out).await;
        if self.out.capacity() > KEPT_OUT {
            // A large buffered body is not kept for as long as the connection is pooled.
            self.out = Vec::new();
        }
        sent
    }

    /// The capacity of the encode buffer the connection keeps (for tests).
    #[cfg(test)]
    fn kept_out(&self) -> usize {
        self.out.capacity()
    }

    /// Writes `request` (head and body, encoded); on failure, says whether any byte left
    /// (for tests, which send requests as they are written).
    #[cfg(test)]
    async fn write(&mut self, request: &[u8]) -> Result<(), (H1Error, bool)> {
        write_all(&mut self.io, request).await
    }

    /// Reads the response head (skipping interim 1xx answers) for a request made with
    /// `method`.
    pub async fn read_head(&mut self, method: &Method) -> Result<Head, H1Error> {
        loop {
            if let Some(head) = self.parse_head(method)? {
                return Ok(head);
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(H1Error::Invalid("response head too large"));
            }
            if self.buf.capacity() - self.buf.len() < 2048 {
                self.buf.reserve(8 * 1024);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(match self.buf.is_empty() {
                    true => H1Error::Closed,
                    false => H1Error::Invalid("truncated response head"),
                });
            }
        }
    }

    /// A final response head if the buffer holds a whole one (interim ones are consumed).
    fn parse_head(&mut self, method: &Method) -> Result<Option<Head>, H1Error> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default()
                .allow_spaces_after_header_name_in_responses(true)
                .parse_response_with_uninit_headers(&mut response, &self.buf, &mut slots);
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(H1Error::Invalid("too many headers"))
                }
                Err(_) => return Err(H1Error::Invalid("malformed response head")),
            };
            if len >= MAX_HEAD {
                return Err(H1Error::Invalid("response head too large"));
            }
            let code = response.code.unwrap_or(0);
            let status =
                StatusCode::from_u16(code).map_err(|_| H1Error::Invalid("invalid status code"))?;
            let version = match response.version {
                Some(0) => Version::HTTP_10,
                _ => Version::HTTP_11,
            };
            if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
                let _ = self.buf.split_to(len);
                continue;
            }
            // The header lines stay as they came, found again by their ranges: the client's
            // writer copies them out, and only a path that needs a map builds one.
            let base = self.buf.as_ptr() as usize;
            let at = |p: &[u8]| {
                let start = (p.as_ptr() as usize).wrapping_sub(base);
                start..start.wrapping_add(p.len())
            };
            let lines = response
                .headers
                .iter()
                .map(|h| Line::new(at(h.name.as_bytes()), at(h.value), h.name.as_bytes()))
                .collect();
            let raw = RawHeaders::new(self.buf.split_to(len).freeze(), lines);
            let body = framing(method, status, version, &raw)?;
            let mut parts = http::Response::new(()).into_parts().0;
            parts.status = status;
            parts.version = version;
            parts.extensions = raw_headers::extensions_with(raw);
            return Ok(Some(Head { parts, body }));
        }
    }

    /// Reads more into the buffer, up to about `want` bytes (what the body still lacks, when
    /// known) so that a large body takes few reads; `true` when the upstream closed instead.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: u64) -> Poll<Result<bool, H1Error>> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            let room = usize::try_from(want).unwrap_or(usize::MAX);
            self.buf.reserve(room.clamp(16 * 1024, 64 * 1024));
        }
        let read = self.io.read_buf(&mut self.buf);
        match std::pin::pin!(read).poll(cx) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n == 0)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next piece of the body `state` reads: `None` at its end.
    pub fn poll_body(
        &mut self,
        state: &mut BodyState,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, H1Error>>> {
        loop {
            match state.framing {
                Framing::Empty | Framing::Done | Framing::Length(0) => {
                    state.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Framing::Length(left) => {
                    if let Some(data) = self.take(left) {
                        state.framing = Framing::Length(left - data.len() as u64);
                        return Poll::Ready(Some(Ok(data)));
                    }
                    match ready!(self.poll_fill(cx, left)) {
                        Ok(false) => {}
                        Ok(true) => return Poll::Ready(Some(Err(H1Error::Truncated))),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Framing::UntilClose => {
                    if let Some(data) = self.take(u64::MAX) {
                        return Poll::Ready(Some(Ok(data)));
                    }
                    match ready!(self.poll_fill(cx, 64 * 1024)) {
                        Ok(false) => {}
                        Ok(true) => {
                            state.framing = Framing::Done;
                            return Poll::Ready(None);
                        }
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if let Some(data) = self.take(left) {
                        let left = left - data.len() as u64;
                        state.framing = Framing::Chunked(match left {
                            0 => Chunk::DataEnd,
                            n => Chunk::Data(n),
                        });
                        return Poll::Ready(Some(Ok(data)));
                    }
                    match ready!(self.poll_fill(cx, left)) {
                        Ok(false) => {}
                        Ok(true) => return Poll::Ready(Some(Err(H1Error::Truncated))),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Framing::Chunked(chunk) => match self.line()? {
                    Some(line) => {
                        state.framing = match chunk {
                            Chunk::Size => match chunk_size(&line)? {
                                0 => Framing::Chunked(Chunk::Trailers),
                                n => Framing::Chunked(Chunk::Data(n)),
                            },
                            Chunk::DataEnd if line.is_empty() => Framing::Chunked(Chunk::Size),
                            Chunk::DataEnd => {
                                return Poll::Ready(Some(Err(H1Error::Invalid(
                                    "chunk data longer than its size",
                                ))))
                            }
                            Chunk::Trailers if line.is_empty() => Framing::Done,
                            Chunk::Trailers | Chunk::Data(_) => Framing::Chunked(chunk),
                        };
                    }
                    None => match ready!(self.poll_fill(cx, 0)) {
                        Ok(false) => {}
                        Ok(true) => return Poll::Ready(Some(Err(H1Error::Truncated))),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    },
                },
            }
        }
    }

    /// Whether the body `state` read ended so that the connection can be used again.
    pub fn reusable_after(&self, state: &BodyState) -> bool {
        state.keep_alive && state.is_end() && self.buf.is_empty()
    }

    /// Up to `max` buffered bytes, if any.
    fn take(&mut self, max: u64) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        let n = usize::try_from(max).map_or(self.buf.len(), |m| m.min(self.buf.len()));
        Some(self.buf.split_to(n).freeze())
    }

    /// A whole CRLF-terminated line from the buffer, without its CRLF.
    fn line(&mut self) -> Result<Option<Bytes>, H1Error> {
        match self.buf.iter().position(|b| *b == b'\n') {
            Some(end) => {
                let mut line = self.buf.split_to(end + 1).freeze();
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                Ok(Some(line))
            }
            None if self.buf.len() > MAX_LINE => Err(H1Error::Invalid("chunk line too long")),
            None => Ok(None),
        }
    }
}

impl BodyState {
    /// Whether the body has been read to its end (or has none).
    pub fn is_end(&self) -> bool {
        matches!(
            self.framing,
            Framing::Empty | Framing::Done | Framing::Length(0)
        )
    }

    /// The bytes left, when the length is known.
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Empty | Framing::Done => Some(0),
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }
}

/// How the body of a `status` answer to `method` with `headers` is delimited, and whether the
/// connection may be kept.
fn framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &RawHeaders,
) -> Result<BodyState, H1Error> {
    fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
        value
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
    }
    let (mut says_close, mut says_keep_alive) = (false, false);
    let (mut coded, mut chunked) = (false, false);
    let (mut length, mut bad_length) = (None, None);
    for (_, value, kind) in headers.iter() {
        match kind {
            Kind::Connection => {
                for t in tokens(value) {
                    says_close |= t.eq_ignore_ascii_case(b"close");
                    says_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            Kind::TransferEncoding => {
                coded = true;
                if let Some(last) = tokens(value).last() {
                    chunked = last.eq_ignore_ascii_case(b"chunked");
                }
            }
            Kind::ContentLength => {
                // An empty value counts as a bad one.
                for part in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    let n = std::str::from_utf8(part)
                        .ok()
                        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|t| t.parse::<u64>().ok());
                    match (n, length) {
                        (None, _) => bad_length = Some("invalid Content-Length"),
                        (Some(n), Some(l)) if l != n => {
                            bad_length = Some("conflicting Content-Length values")
                        }
                        (Some(n), _) => length = Some(n),
                    }
                }
            }
            _ => {}
        }
    }
    let has_length = length.is_some() || bad_length.is_some();
    let mut keep_alive = match version {
        Version::HTTP_10 => says_keep_alive,
        _ => !says_close,
    };
    let framing = if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if coded {
        if has_length {
            // Both: the coding wins and the connection is not trusted further.
            keep_alive = false;
        }
        match chunked {
            true => Framing::Chunked(Chunk::Size),
            false => Framing::UntilClose,
        }
    } else if let Some(error) = bad_length {
        return Err(H1Error::Invalid(error));
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(BodyState {
        framing,
        keep_alive,
    })
}

/// The size of a chunk-size line (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let end = line
        .iter()
        .position(|b| *b == b';' || *b == b' ' || *b == b'\t')
        .unwrap_or(line.len());
    let digits = &line[..end];
    if digits.is_empty() || digits.len() > 15 {
        return Err(H1Error::Invalid("invalid chunk size"));
    }
    let text = std::str::from_utf8(digits).map_err(|_| H1Error::Invalid("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| H1Error::Invalid("invalid chunk size"))
}

/// Writes all of `request` to `io`; on failure, says whether any byte left.
async fn write_all(io: &mut Io, request: &[u8]) -> Result<(), (H1Error, bool)> {
    let mut written = 0;
    while written < request.len() {
        match io.write(&request[written..]).await {
            Ok(0) => return Err((H1Error::Closed, written > 0)),
            Ok(n) => written += n,
            Err(e) => return Err((e.into(), written > 0)),
        }
    }
    io.flush().await.map_err(|e| (e.into(), true))
}

/// Encodes the request `head` with its whole `body` into `out`: the request line in origin
/// form, the `overlay`'s headers (`Host` first), the head's other headers as they are, and
/// `Content-Length` as the body says (a `Transfer-Encoding` from the client does not apply to
/// a body read whole).
pub fn encode(head: &http::request::Parts, overlay: &Overlay, body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = if target.is_empty() { "/" } else { target };
    // The overlay is eight headers at most.
    out.reserve(64 + 8 * 48 + target.len() + head.headers.len() * 32 + body.len());
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    let mut lines = overlay.headers().chain(
        head.headers
            .iter()
            .filter(|(name, _)| !overlay.replaces(name)),
    );
    for (name, value) in &mut lines {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            had_length = true;
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let expects_body = matches!(head.method, Method::POST | Method::PUT | Method::PATCH);
    if !body.is_empty() || had_length || expects_body {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A connection to a server that answers each request with the next of `answers`.
    async fn pair(answers: Vec<&'static [u8]>) -> H1 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0; 4096];
            for answer in answers {
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            }
            // Then closes.
        });
        H1::new(Either::Left(
            TcpStream::connect(addr).await.expect("connect"),
        ))
    }

    async fn body(h1: &mut H1, state: &mut BodyState) -> Result<Vec<u8>, H1Error> {
        let mut out = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| h1.poll_body(state, cx)).await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The first value of `name` among the head's kept lines.
    fn header<'a>(head: &'a Head, name: &str) -> Option<&'a [u8]> {
        let raw = head.parts.extensions.get::<RawHeaders>()?;
        raw.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v, _)| v)
    }

    async fn exchange(h1: &mut H1, method: Method) -> Result<(Head, Vec<u8>), H1Error> {
        h1.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .map_err(|(e, _)| e)?;
        let mut head = h1.read_head(&method).await?;
        let data = body(h1, &mut head.body).await?;
        Ok((head, data))
    }

    #[tokio::test]
    async fn the_encode_buffer_is_kept_for_small_requests_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0; 64 * 1024];
            // Reads everything sent, until the client closes.
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let mut h1 = H1::new(Either::Left(
            TcpStream::connect(addr).await.expect("connect"),
        ));
        let (head, ()) = http::Request::new(()).into_parts();
        let overlay = Overlay::host(http::HeaderValue::from_static("h"));
        h1.send(&head, &overlay, b"small")
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
        let kept = h1.kept_out();
        assert!(kept > 0 && kept <= KEPT_OUT, "{kept}");
        let large = vec![b'x'; 4 * KEPT_OUT];
        h1.send(&head, &overlay, &large)
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
        assert_eq!(h1.kept_out(), 0);
    }

    #[tokio::test]
    async fn length_chunked_and_interim_answers() {
        let mut h1 = pair(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\nx-empty:\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let (head, data) = exchange(&mut h1, Method::GET).await.expect("first");
        assert_eq!(head.parts.status, 200);
        assert_eq!(header(&head, "x-a"), Some(&b"1"[..]));
        assert_eq!(header(&head, "x-empty"), Some(&b""[..]));
        assert!(head.parts.headers.is_empty());
        assert_eq!(data, b"hello");
        assert!(h1.reusable_after(&head.body));
        assert!(h1.is_usable());

        let (head, data) = exchange(&mut h1, Method::GET).await.expect("second");
        assert_eq!(head.parts.status, 201);
        assert_eq!(data, b"abcde");
        assert!(h1.reusable_after(&head.body));

        let (head, data) = exchange(&mut h1, Method::GET).await.expect("third");
        assert_eq!(head.parts.status, 204);
        assert!(data.is_empty());
        assert!(head.body.is_end());
    }

    #[tokio::test]
    async fn closing_answers_are_not_kept() {
        let mut h1 = pair(vec![
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        let (head, data) = exchange(&mut h1, Method::GET).await.expect("answer");
        assert_eq!(data, b"ok");
        assert!(!h1.reusable_after(&head.body));

        let mut h1 = pair(vec![b"HTTP/1.0 200 OK\r\n\r\nuntil close"]).await;
        let (head, data) = exchange(&mut h1, Method::GET).await.expect("answer");
        assert_eq!(data, b"until close");
        assert!(!h1.reusable_after(&head.body));

        // Cut short: an error, not a short body.
        let mut h1 = pair(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort"]).await;
        assert!(matches!(
            exchange(&mut h1, Method::GET).await,
            Err(H1Error::Truncated)
        ));
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        for answer in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            Box::leak(
                format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(70_000))
                    .into_bytes()
                    .into_boxed_slice(),
            ),
        ] {
            let mut h1 = pair(vec![answer]).await;
            assert!(
                matches!(
                    exchange(&mut h1, Method::GET).await,
                    Err(H1Error::Invalid(_))
                ),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn a_head_answer_has_no_body() {
        let mut h1 = pair(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"]).await;
        let (head, data) = exchange(&mut h1, Method::HEAD).await.expect("answer");
        assert!(data.is_empty());
        assert_eq!(header(&head, "content-length"), Some(&b"10"[..]));
        assert!(h1.reusable_after(&head.body));
    }

    #[test]
    fn requests_are_encoded_with_their_length() {
        let (mut head, ()) = http::Request::post("http://h/p?q=1")
            .header("host", "client")
            .header("x-a", "1")
            .header("transfer-encoding", "chunked")
            .body(())
            .expect("request")
            .into_parts();
        let mut out = Vec::new();
        let overlay = Overlay::host(http::HeaderValue::from_static("h"));
        encode(&head, &overlay, b"abc", &mut out);
        assert_eq!(
            out,
            b"POST /p?q=1 HTTP/1.1\r\nhost: h\r\nx-a: 1\r\ncontent-length: 3\r\n\r\nabc"
        );
        head.method = Method::GET;
        head.headers.remove("transfer-encoding");
        encode(&head, &overlay, b"", &mut out);
        assert_eq!(out, b"GET /p?q=1 HTTP/1.1\r\nhost: h\r\nx-a: 1\r\n\r\n");
    }
}
