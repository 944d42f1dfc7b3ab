//! Writing a response for the own HTTP/1.1 loop, framed as hyper's server frames it (so a
//! connection answers alike whichever of the two serves it):
//!
//! - no body after `HEAD`, 1xx, 204 and 304; no length header on 1xx, 204 and 304;
//! - a `Content-Length` the handler set is kept; otherwise one is added when the body's size
//!   is known (`0` for an empty body, except after `HEAD`);
//! - an unknown size is sent chunked to HTTP/1.1 clients (trailers only to a client that asked
//!   for them with `TE: trailers`) and delimited by closing to HTTP/1.0 ones;
//! - `Date` is added when missing; `Connection: close` when the connection ends after this
//!   answer; an HTTP/1.0 client keeps its connection only when the response says `keep-alive`.
//!
//! A proxied answer's header lines kept as the upstream sent them
//! ([`RawHeaders`](crate::runtime::raw_headers::RawHeaders)) are copied out first, less the
//! hop-by-hop ones and those the headers set on top of them or the response's map replace;
//! those headers follow, then the map.
//!
//! What is ready is gathered into one write: the head and a body that is already there leave
//! in one system call; large chunks are written from where they are, not copied.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, Response, StatusCode, Version};
use http_body::{Body, Frame};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::runtime::raw_headers::{self, Kind, Overrides, RawHeaders};

/// Body chunks up to this size are copied next to what is waiting to be written; larger ones
/// are written from where they are.
const COPY_MAX: usize = 4 << 10;
/// Gathered bytes are written once they reach this size, even if more is ready.
const GATHER_MAX: usize = 128 << 10;

/// What the request asked that shapes its answer.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// The request was `HEAD`.
    pub head: bool,
    /// The request's HTTP version (the answer's too).
    pub version: Version,
    /// The client sent `TE: trailers`.
    pub trailers: bool,
    /// The connection ends after this answer whatever the response says.
    pub close: bool,
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body is sent.
    Nothing,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes.
    Close,
}

/// Writes `response` to `io`; `out` is the connection's reusable write buffer. Returns whether
/// the connection may serve another request: not when it must close, nor when the body failed
/// or did not match its declared length (the client cannot tell where it ended).
pub async fn respond<IO, B>(
    io: &mut IO,
    out: &mut Vec<u8>,
    response: Response<B>,
    asked: Asked,
) -> io::Result<bool>
where
    IO: AsyncWrite + Unpin,
    B: Body<Data = Bytes>,
{
    out.clear();
    let (mut parts, body) = response.into_parts();
    let raw = parts.extensions.remove::<RawHeaders>();
    if raw.is_some() {
        raw_headers::give_back(std::mem::take(&mut parts.extensions));
    }
    let (framing, close) = encode_head(
        out,
        parts.status,
        raw.as_ref(),
        &parts.headers,
        &body,
        asked,
    );
    let mut body = pin!(body);
    let mut left = match framing {
        Framing::Nothing => {
            io.write_all(out).await?;
            io.flush().await?;
            return Ok(!close);
        }
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut gather = Gather {
        small: out,
        queued: Vec::new(),
        size: 0,
    };
    let mut trailers = None;
    let mut intact = true;
    loop {
        // Frames are taken as `Some(Some(frame))`, `Some(None)` for a failed body and `None` at
        // its end; the error itself is not kept (it need not be `Send`).
        let polled = poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx).map(settle))).await;
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // Nothing more is ready: what is gathered goes now, then the body is awaited.
                gather.flush(io).await?;
                poll_fn(|cx| body.as_mut().poll_frame(cx).map(settle)).await
            }
        };
        let data = match frame {
            None => break,
            Some(None) => {
                intact = false;
                break;
            }
            Some(Some(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            },
        };
        if data.is_empty() {
            continue;
        }
        let mut data = data;
        if framing != Framing::Chunked && left == 0 {
            // More than the declared length: the rest cannot be sent.
            intact = false;
            break;
        }
        if let Framing::Length(_) = framing {
            let room = usize::try_from(left).unwrap_or(usize::MAX);
            if data.len() > room {
                data.truncate(room);
                intact = false;
            }
            left -= data.len() as u64;
        }
        if framing == Framing::Chunked {
            push_hex(gather.small, data.len());
            gather.small.extend_from_slice(b"\r\n");
        }
        gather.push(data);
        if framing == Framing::Chunked {
            gather.small.extend_from_slice(b"\r\n");
        }
        if !intact {
            break;
        }
        if gather.size >= GATHER_MAX {
            gather.flush(io).await?;
        }
    }
    let out = &mut *gather.small;
    match framing {
        Framing::Chunked if intact => {
            out.extend_from_slice(b"0\r\n");
            if let (Some(trailers), true) = (trailers, asked.trailers) {
                for (name, value) in trailers.iter() {
                    push_header(out, name.as_str().as_bytes(), value.as_bytes());
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        Framing::Length(_) if left != 0 => intact = false,
        _ => {}
    }
    gather.flush(io).await?;
    Ok(intact && !close && framing != Framing::Close)
}

/// Bytes waiting to be written, in order: large body chunks as they came (not copied), with the
/// small pieces around them (the head, chunk size lines, small chunks) copied together.
struct Gather<'a> {
    /// Small pieces after the last queued chunk (the connection's reusable buffer).
    small: &'a mut Vec<u8>,
    /// What comes before `small`.
    queued: Vec<Bytes>,
    /// Bytes in all.
    size: usize,
}

impl Gather<'_> {
    fn push(&mut self, data: Bytes) {
        self.size += data.len();
        if data.len() <= COPY_MAX {
            self.small.extend_from_slice(&data);
            return;
        }
        if !self.small.is_empty() {
            self.queued.push(Bytes::copy_from_slice(self.small));
            self.small.clear();
        }
        self.queued.push(data);
    }

    /// Writes everything gathered, in as few system calls as the socket takes.
    async fn flush<IO: AsyncWrite + Unpin>(&mut self, io: &mut IO) -> io::Result<()> {
        if self.queued.is_empty() {
            if !self.small.is_empty() {
                io.write_all(self.small).await?;
            }
        } else {
            let mut parts: Vec<&[u8]> = self.queued.iter().map(|b| &b[..]).collect();
            parts.push(self.small);
            write_vectored_all(io, &mut parts).await?;
            self.queued.clear();
        }
        self.small.clear();
        self.size = 0;
        io.flush().await
    }
}

/// A polled frame with its error dropped.
fn settle<E>(frame: Option<Result<Frame<Bytes>, E>>) -> Option<Option<Frame<Bytes>>> {
    frame.map(Result::ok)
}

/// Whether a `Content-Length` line with `value` is written, recording its length in
/// `declared`: one length at most, a valid one, and none where no body may be (`bodiless`).
fn declare(declared: &mut Option<u64>, bodiless: bool, value: &[u8]) -> bool {
    if bodiless || declared.is_some() {
        return false;
    }
    let n = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
    *declared = n;
    n.is_some()
}

/// Encodes the status line and headers (a proxied head's kept lines and the headers set on
/// top of them, then the map) into
/// `out`: how the body is framed, and whether the connection closes after it.
fn encode_head<B: Body>(
    out: &mut Vec<u8>,
    status: StatusCode,
    raw: Option<&RawHeaders>,
    headers: &HeaderMap,
    body: &B,
    asked: Asked,
) -> (Framing, bool) {
    let http10 = asked.version == Version::HTTP_10;
    if !http10 && status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(match http10 {
            true => b"HTTP/1.0 ",
            false => b"HTTP/1.1 ",
        });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut close = asked.close;
    let (mut declared, mut dated, mut says_close, mut says_keep_alive) =
        (None, false, false, false);
    // The kept lines of a proxied head, the headers set on top of them, then the map (whose
    // names replace theirs).
    let mut set = None;
    if let Some(raw) = raw {
        let overrides = Overrides::of(raw.added(), headers);
        for (name, value, kind) in raw.passing(&overrides) {
            match kind {
                Kind::ContentLength if !declare(&mut declared, bodiless_status, value) => continue,
                Kind::Date => dated = true,
                _ => {}
            }
            push_header(out, name, value);
        }
        set = Some(raw.added_before(headers));
    }
    for (name, value) in set.into_iter().flatten().chain(headers.iter()) {
        if *name == CONTENT_LENGTH {
            if !declare(&mut declared, bodiless_status, value.as_bytes()) {
                continue;
            }
        } else if *name == TRANSFER_ENCODING {
            // The framing is this writer's to choose.
            continue;
        } else if *name == CONNECTION {
            for token in value
                .as_bytes()
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
            {
                says_close |= token.eq_ignore_ascii_case(b"close");
                says_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if *name == DATE {
            dated = true;
        }
        push_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    close |= says_close || (http10 && !says_keep_alive);
    let exact = match body.is_end_stream() {
        true => Some(0),
        false => body.size_hint().exact(),
    };
    let framing = if asked.head || bodiless_status {
        if declared.is_none() && !bodiless_status {
            if let Some(n) = exact.filter(|n| *n > 0) {
                push_length(out, n);
            }
        }
        Framing::Nothing
    } else if let Some(n) = declared {
        Framing::Length(exact.unwrap_or(n))
    } else if let Some(n) = exact {
        push_length(out, n);
        Framing::Length(n)
    } else if http10 {
        close = true;
        Framing::Close
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    if close && !http10 && !says_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, close)
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A chunk size line's number.
fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789ABCDEF"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `parts` whole, in order, gathered in as few system calls as the socket takes.
async fn write_vectored_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    parts: &mut [&[u8]],
) -> io::Result<()> {
    /// Slices per system call (well under any `IOV_MAX`).
    const BATCH: usize = 64;
    let mut at = 0;
    while at < parts.len() {
        if parts[at].is_empty() {
            at += 1;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = parts[at..]
            .iter()
            .take(BATCH)
            .map(|p| IoSlice::new(p))
            .collect();
        let mut n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while at < parts.len() && n >= parts[at].len() {
            n -= parts[at].len();
            at += 1;
        }
        if at < parts.len() {
            parts[at] = &parts[at][n..];
        }
    }
    Ok(())
}

thread_local! {
    /// The `Date` value of the current second, made once per second per thread.
    static NOW: RefCell<(u64, Bytes)> = const { RefCell::new((u64::MAX, Bytes::new())) };
}

/// Runs `f` with the current `Date` header value.
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            *cached = (second, Bytes::from(httpdate::fmt_http_date(now)));
        }
        f(cached.1.chunk());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::raw_headers::parsed;
    use http::HeaderName;
    use http_body_util::{Empty, Full};

    fn asked() -> Asked {
        Asked {
            head: false,
            version: Version::HTTP_11,
            trailers: false,
            close: false,
        }
    }

    /// What the client reads, with the `Date` line blanked, and whether the connection stays.
    async fn wire<B: Body<Data = Bytes>>(response: Response<B>, asked: Asked) -> (String, bool) {
        let mut io = Vec::new();
        let mut out = Vec::new();
        let keep = respond(&mut io, &mut out, response, asked)
            .await
            .expect("written");
        let text = String::from_utf8(io).expect("utf-8");
        let text = text
            .lines()
            .map(|l| match l.starts_with("date: ") {
                true => "date: *",
                false => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        (text, keep)
    }

    /// A body of the given frames, each ready when polled, or an error after them.
    struct Frames {
        frames: std::collections::VecDeque<http_body::Frame<Bytes>>,
        fail: bool,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
            match self.frames.pop_front() {
                Some(frame) => Poll::Ready(Some(Ok(frame))),
                None if self.fail => Poll::Ready(Some(Err(io::Error::other("cut")))),
                None => Poll::Ready(None),
            }
        }
    }

    fn streamed(chunks: &[&'static [u8]]) -> Frames {
        Frames {
            frames: chunks
                .iter()
                .map(|c| http_body::Frame::data(Bytes::from_static(c)))
                .collect(),
            fail: false,
        }
    }

    #[tokio::test]
    async fn a_known_body_gets_its_length_and_a_date() {
        let (text, keep) = wire(Response::new(Full::new(Bytes::from_static(b"hi"))), asked()).await;
        assert_eq!(text, "HTTP/1.1 200 OK\ncontent-length: 2\ndate: *\n\nhi");
        assert!(keep);
    }

    #[tokio::test]
    async fn an_empty_body_says_zero_except_after_head_and_bodiless_statuses() {
        let (text, _) = wire(Response::new(Empty::<Bytes>::new()), asked()).await;
        assert_eq!(text, "HTTP/1.1 200 OK\ncontent-length: 0\ndate: *\n");
        let head = Asked {
            head: true,
            ..asked()
        };
        let (text, _) = wire(Response::new(Empty::<Bytes>::new()), head).await;
        assert_eq!(text, "HTTP/1.1 200 OK\ndate: *\n");
        let mut r = Response::new(Full::new(Bytes::from_static(b"x")));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut().insert(CONTENT_LENGTH, 1.into());
        let (text, keep) = wire(r, asked()).await;
        assert_eq!(text, "HTTP/1.1 204 No Content\ndate: *\n");
        assert!(keep);
    }

    #[tokio::test]
    async fn kept_header_lines_go_first_less_hop_by_hop_and_replaced_ones() {
        let head = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nDate: Sun, 29 Nov 2026 07:00:00 GMT\r\nX-Kong-Proxy-Latency: 99\r\n\r\n",
        );
        let mut r = Response::new(Full::new(Bytes::from_static(b"hi")));
        r.extensions_mut().insert(parsed(head.clone()));
        r.headers_mut().insert("x-kong-proxy-latency", 1.into());
        let (text, keep) = wire(r, asked()).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\nServer: up\nContent-Length: 2\nDate: Sun, 29 Nov 2026 07:00:00 GMT\nx-kong-proxy-latency: 1\n\nhi"
        );
        assert!(keep);
        // After HEAD, the upstream's length stays and no body follows.
        let mut r = Response::new(Empty::<Bytes>::new());
        r.extensions_mut().insert(parsed(head.clone()));
        let head = Asked {
            head: true,
            ..asked()
        };
        let (text, _) = wire(r, head).await;
        assert!(text.contains("Content-Length: 2\n"), "{text}");
        assert!(!text.contains("\n\nhi"), "{text}");
    }

    #[tokio::test]
    async fn kept_lines_are_copied_as_they_came_or_rewritten_when_spaced_otherwise() {
        let head = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC :  3 \r\nD:4\nE: 5\r\nConnection: x\r\nF: 6\r\nContent-Length: 2\r\n\r\n",
        );
        let mut r = Response::new(Full::new(Bytes::from_static(b"hi")));
        r.extensions_mut().insert(parsed(head));
        let (text, _) = wire(r, asked()).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\nA: 1\nB: 2\nC: 3\nD: 4\nE: 5\nF: 6\nContent-Length: 2\ndate: *\n\nhi"
        );
    }

    #[tokio::test]
    async fn headers_set_on_kept_lines_replace_theirs_and_follow_them() {
        let head = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nServer: up\r\nX-RateLimit-Limit-Second: 9\r\nContent-Length: 2\r\n\r\n",
        );
        let mut raw = parsed(head);
        raw.set(
            HeaderName::from_static("via"),
            "1.1 kong".parse().expect("value"),
        );
        raw.set(
            HeaderName::from_static("x-ratelimit-limit-second"),
            1.into(),
        );
        raw.set(
            HeaderName::from_static("x-both"),
            "lines".parse().expect("value"),
        );
        let mut r = Response::new(Full::new(Bytes::from_static(b"hi")));
        r.extensions_mut().insert(raw);
        // The map's names replace both the lines' and those set on them.
        r.headers_mut()
            .insert("x-both", "map".parse().expect("value"));
        let (text, keep) = wire(r, asked()).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\nServer: up\nContent-Length: 2\nvia: 1.1 kong\nx-ratelimit-limit-second: 1\nx-both: map\ndate: *\n\nhi"
        );
        assert!(keep);
    }

    #[tokio::test]
    async fn a_head_answer_keeps_the_declared_length_and_sends_no_body() {
        let mut r = Response::new(Empty::<Bytes>::new());
        r.headers_mut().insert(CONTENT_LENGTH, 42.into());
        let head = Asked {
            head: true,
            ..asked()
        };
        let (text, keep) = wire(r, head).await;
        assert_eq!(text, "HTTP/1.1 200 OK\ncontent-length: 42\ndate: *\n");
        assert!(keep);
    }

    #[tokio::test]
    async fn an_unknown_size_is_chunked_with_trailers_only_when_asked() {
        let mut body = streamed(&[b"abc", b"", b"0123456789abcdef"]);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", 0.into());
        body.frames.push_back(http_body::Frame::trailers(trailers));
        let with = Asked {
            trailers: true,
            ..asked()
        };
        let (text, keep) = wire(Response::new(body), with).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\ntransfer-encoding: chunked\ndate: *\n\n3\nabc\n10\n0123456789abcdef\n0\ngrpc-status: 0\n"
        );
        assert!(keep);
        let (text, _) = wire(Response::new(streamed(&[b"abc"])), asked()).await;
        assert!(text.ends_with("\n3\nabc\n0\n"), "{text}");
    }

    #[tokio::test]
    async fn an_http10_client_gets_a_close_delimited_body_and_its_own_version() {
        let v10 = Asked {
            version: Version::HTTP_10,
            ..asked()
        };
        let (text, keep) = wire(Response::new(streamed(&[b"abc"])), v10).await;
        assert_eq!(text, "HTTP/1.0 200 OK\ndate: *\n\nabc");
        assert!(!keep);
        let mut r = Response::new(Full::new(Bytes::from_static(b"x")));
        r.headers_mut()
            .insert(CONNECTION, "keep-alive".parse().expect("value"));
        let (text, keep) = wire(r, v10).await;
        assert!(
            text.starts_with("HTTP/1.0 200 OK\nconnection: keep-alive\n"),
            "{text}"
        );
        assert!(keep);
    }

    #[tokio::test]
    async fn a_closing_connection_says_so() {
        let close = Asked {
            close: true,
            ..asked()
        };
        let (text, keep) = wire(Response::new(Empty::<Bytes>::new()), close).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\ncontent-length: 0\nconnection: close\ndate: *\n"
        );
        assert!(!keep);
        let mut r = Response::new(Empty::<Bytes>::new());
        r.headers_mut()
            .insert(CONNECTION, "close".parse().expect("value"));
        let (text, keep) = wire(r, asked()).await;
        assert_eq!(text.matches("connection").count(), 1, "{text}");
        assert!(!keep);
    }

    #[tokio::test]
    async fn a_body_that_fails_or_breaks_its_length_ends_the_connection() {
        let mut failing = streamed(&[b"abc"]);
        failing.fail = true;
        let (text, keep) = wire(Response::new(failing), asked()).await;
        assert!(text.ends_with("\n3\nabc"), "no last chunk: {text}");
        assert!(!keep);
        let mut long = Response::new(streamed(&[b"abcdef"]));
        long.headers_mut().insert(CONTENT_LENGTH, 3.into());
        let (text, keep) = wire(long, asked()).await;
        assert!(text.ends_with("\n\nabc"), "{text}");
        assert!(!keep);
        let mut short = Response::new(streamed(&[b"ab"]));
        short.headers_mut().insert(CONTENT_LENGTH, 3.into());
        let (_, keep) = wire(short, asked()).await;
        assert!(!keep);
    }

    #[tokio::test]
    async fn a_large_chunk_is_written_whole() {
        static BIG: [u8; 100_000] = [b'z'; 100_000];
        let (text, keep) = wire(Response::new(streamed(&[b"a", &BIG, b"b"])), asked()).await;
        assert!(text.contains("\n1\na\n186A0\nzzzz"), "chunk sizes in hex");
        assert_eq!(text.matches('z').count(), 100_000);
        assert!(text.ends_with("z\n1\nb\n0\n"));
        assert!(keep);
    }
}
