//! The guard over request streams cut at every possible place.

use super::*;

/// A client sending `data` in pieces of `step` bytes, then EOF; what it is sent is dropped.
struct Client {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .step
            .min(self.data.len() - self.pos)
            .min(buf.remaining());
        buf.put_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Client {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const LIMITS: HeadLimits = HeadLimits {
    line: 64,
    total: 256,
    headers: 8,
};

/// What hyper reads from a guarded client sending `input` in `step`-byte pieces, read five
/// bytes at a time, and the guard's verdict.
fn through(input: &[u8], step: usize) -> (Vec<u8>, Option<(u64, Refusal)>, bool) {
    let verdict = Verdict::default();
    let client = Client {
        data: input.to_vec(),
        pos: 0,
        step,
    };
    let mut guarded = Guarded::http1(client, b"", LIMITS, verdict.clone());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    loop {
        let mut space = [0u8; 5];
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(&mut guarded).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            Poll::Ready(Err(e)) => panic!("read failed: {e}"),
            // Only after a refusal: the guard keeps EOF from hyper.
            Poll::Pending => break,
        }
    }
    let verdict = verdict.get().map(|r| (r.request, r.reason));
    (out, verdict, guarded.refused)
}

/// Runs `input` cut in every possible way; all must agree. Returns what hyper read and the
/// verdict.
fn guard(input: &[u8]) -> (Vec<u8>, Option<(u64, Refusal)>) {
    let (out, verdict, refused) = through(input, input.len().max(1));
    assert_eq!(refused, verdict.is_some());
    for step in 1..input.len() {
        let (o, v, _) = through(input, step);
        assert_eq!(o, out, "pieces of {step} bytes");
        assert_eq!(v, verdict, "pieces of {step} bytes");
    }
    (out, verdict)
}

fn refused(input: &[u8]) -> (u64, Refusal) {
    let (out, verdict) = guard(input);
    assert!(out.ends_with(STAND_IN), "{}", String::from_utf8_lossy(&out));
    verdict.expect("a refusal")
}

fn passes(input: &[u8]) {
    let (out, verdict) = guard(input);
    assert_eq!(verdict, None, "{}", String::from_utf8_lossy(input));
    assert_eq!(out, input);
}

#[test]
fn pipelined_messages_pass_unchanged() {
    passes(
        b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
          POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
          5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n\
          GET /d HTTP/1.0\n\n",
    );
    passes(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
}

#[test]
fn length_with_transfer_encoding_is_refused_after_the_requests_before_it() {
    let first = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".as_slice();
    let smuggler = b"POST /b HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
    let input = [first, smuggler].concat();
    let (out, verdict) = guard(&input);
    assert_eq!(out, [first, STAND_IN].concat());
    assert_eq!(verdict, Some((2, Refusal::BadRequest)));
}

#[test]
fn ambiguous_or_malformed_heads_are_bad_requests() {
    for head in [
        "GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "G\x01T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    ] {
        assert_eq!(
            refused(head.as_bytes()),
            (1, Refusal::BadRequest),
            "{head:?}"
        );
    }
}

#[test]
fn heads_over_the_buffers_are_refused_like_nginx() {
    let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(60));
    assert_eq!(refused(long_uri.as_bytes()), (1, Refusal::UriTooLong));
    let long_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "h".repeat(60));
    assert_eq!(
        refused(long_header.as_bytes()),
        (1, Refusal::HeaderTooLarge)
    );
    let line = format!("X-Header: {}\r\n", "0123456789".repeat(4));
    let big_head = format!("GET / HTTP/1.1\r\n{}\r\n", line.repeat(5));
    assert!(big_head.len() > LIMITS.total);
    assert_eq!(refused(big_head.as_bytes()), (1, Refusal::HeaderTooLarge));
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: 1\r\n".repeat(9));
    assert_eq!(refused(many.as_bytes()), (1, Refusal::HeaderTooLarge));
    let enough = format!("GET / HTTP/1.1\r\n{}\r\n", "A: 1\r\n".repeat(8));
    passes(enough.as_bytes());
    // A line that never ends is refused once it is too long, without waiting for its end.
    let (_, verdict, _) = through(format!("GET /{}", "u".repeat(100)).as_bytes(), 7);
    assert_eq!(verdict, Some((1, Refusal::UriTooLong)));
}

#[test]
fn refusals_keep_the_format_the_client_asked_for() {
    let verdict = Verdict::default();
    let client = Client {
        data: b"POST / HTTP/1.1\r\nAccept: text/html\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        pos: 0,
        step: 1000,
    };
    let mut guarded = Guarded::http1(client, b"", LIMITS, verdict.clone());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut space = [0u8; 64];
    let mut buf = ReadBuf::new(&mut space);
    assert!(Pin::new(&mut guarded)
        .poll_read(&mut cx, &mut buf)
        .is_ready());
    let refused = verdict.get().expect("refused");
    assert_eq!(refused.negotiation["accept"], "text/html");
    assert!(guarded.needs_linger(), "the client may still be sending");
}

#[test]
fn after_an_upgrade_or_a_broken_chunk_bytes_pass_unexamined() {
    passes(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x00\x01 not http \r\n\r\n");
    passes(b"CONNECT example.test:443 HTTP/1.1\r\n\r\nanything");
    passes(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
}

#[test]
fn a_head_cut_by_eof_goes_to_hyper_as_it_is() {
    passes(b"GET / HTTP/1.1\r\nHost: exa");
    passes(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
}

#[test]
fn only_a_connection_closed_mid_body_lingers() {
    let linger_after = |data: &[u8]| {
        // The client does not send EOF: it may still be sending.
        let client = Client {
            data: data.to_vec(),
            pos: 0,
            step: 1000,
        };
        let mut guarded = Guarded::http1(NoEof(client), b"", LIMITS, Verdict::default());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut space = [0u8; 256];
        let mut buf = ReadBuf::new(&mut space);
        let _ = Pin::new(&mut guarded).poll_read(&mut cx, &mut buf);
        guarded.needs_linger()
    };
    assert!(!linger_after(b"GET / HTTP/1.1\r\n\r\n"), "at rest");
    assert!(!linger_after(b"GET / HTTP/1.1\r\nX-Slow"), "a head cut off");
    assert!(linger_after(
        b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"
    ));
}

/// A client that never sends EOF: reads past its data stay pending.
struct NoEof(Client);

impl AsyncRead for NoEof {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.0.pos == self.0.data.len() {
            return Poll::Pending;
        }
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for NoEof {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn http2_and_a_prefix_pass_through() {
    let client = Client {
        data: b"rest".to_vec(),
        pos: 0,
        step: 2,
    };
    let mut guarded = Guarded::open(client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    loop {
        let mut space = [0u8; 9];
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(&mut guarded).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(out, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest");
}
