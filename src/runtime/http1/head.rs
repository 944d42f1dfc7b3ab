//! Request heads for the own HTTP/1.1 loop: where a head ends, and the request it makes when it
//! is a plain one.
//!
//! "Plain" means nothing the loop leaves to hyper and the guard: within the head limits, parsed
//! by httparse, no `Transfer-Encoding`, one valid `Content-Length` at most, no upgrade, no
//! `CONNECT`, no `Expect`. Anything else is [`Plain`]'s absence, not an error: the connection
//! then goes to the guard and hyper from this head on, which refuse or serve it as before.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use super::super::guard::{content_length, HeadLimits};

/// Most headers parsed on the stack; a head with more goes to hyper.
const MAX_HEADERS: usize = 100;
/// Header slots reserved past the request's own: room for an authenticated consumer's
/// headers (`X-Consumer-*`, `X-Credential-Identifier`) without growing. The forwarding
/// headers the proxy adds are not in the map (see `proxy::headers::Overlay`), and a small map
/// keeps its allocation on the allocator's small-object path.
const ROOM: usize = 6;

/// Where the head at the start of a buffer ends.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// After this many bytes (the blank line included).
    At(usize),
    /// Not yet: more bytes are needed.
    Partial,
    /// Over a limit: for the guard to refuse.
    Over,
}

/// Finds the end of the head at the start of `buf`, checking the line, size and count limits
/// on the way (blank lines before the request line are skipped, as hyper skips them).
pub fn end(buf: &[u8], limits: &HeadLimits) -> End {
    let mut line_start = 0;
    let mut lines = 0usize;
    let max_lines = limits.headers.min(MAX_HEADERS) + 1;
    for at in memchr::memchr_iter(b'\n', buf) {
        let len = at + 1 - line_start;
        if len > limits.line {
            return End::Over;
        }
        let blank = len == 1 || (len == 2 && buf[line_start] == b'\r');
        line_start = at + 1;
        if blank {
            if lines == 0 {
                continue;
            }
            return match line_start > limits.total {
                true => End::Over,
                false => End::At(line_start),
            };
        }
        lines += 1;
        if lines > max_lines {
            return End::Over;
        }
    }
    if buf.len() - line_start > limits.line || buf.len() > limits.total {
        return End::Over;
    }
    End::Partial
}

/// A plain request head, ready to be served.
#[derive(Debug)]
pub struct Plain {
    /// The request, with an empty body for now.
    pub request: Request<()>,
    /// The body's declared length.
    pub body: u64,
    /// Whether the client lets the connection stay open after the answer.
    pub keep_alive: bool,
}

/// Parses `head` (a whole head, as [`end`] delimited it) into a plain request; `None` when it
/// is not one. Header values and the URI are views of `head`, not copies.
pub fn parse(head: &Bytes) -> Option<Plain> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(head, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return None,
    }
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let uri = Uri::from_maybe_shared(view(head, parsed.path?.as_bytes())?).ok()?;
    let version = match parsed.version? {
        1 => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let (mut close, mut keep_alive_asked) = (false, false);
    let mut body = None;
    // Room for what plugins add upstream, so the map does not grow on the way.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + ROOM);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == CONTENT_LENGTH {
            if body.is_some() {
                return None;
            }
            body = Some(content_length(h.value)?);
        } else if name == TRANSFER_ENCODING || name == UPGRADE || name == EXPECT {
            return None;
        } else if name == CONNECTION {
            for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_asked = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        }
        headers.append(
            name,
            HeaderValue::from_maybe_shared(view(head, h.value)?).ok()?,
        );
    }
    // `close` wins over `keep-alive` whatever their order; HTTP/1.0 must ask to keep alive.
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_asked);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Some(Plain {
        request,
        body: body.unwrap_or(0),
        keep_alive,
    })
}

/// `part` (a slice httparse returned from `whole`) as a view of `whole`; `None` if it is not
/// inside it, which httparse never does (an empty part needs no view).
fn view(whole: &Bytes, part: &[u8]) -> Option<Bytes> {
    if part.is_empty() {
        return Some(Bytes::new());
    }
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then(|| whole.slice(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        line: 64,
        total: 256,
        headers: 4,
    };

    fn plain(head: &'static [u8]) -> Option<Plain> {
        parse(&Bytes::from_static(head))
    }

    #[test]
    fn a_head_ends_at_its_blank_line_with_crlf_or_bare_lf() {
        assert_eq!(
            end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", &LIMITS),
            End::At(27)
        );
        assert_eq!(
            end(b"GET / HTTP/1.1\nHost: a\n\nrest", &LIMITS),
            End::At(24)
        );
        assert_eq!(end(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", &LIMITS), End::At(22));
        assert_eq!(end(b"GET / HTTP/1.1\r\nHost: a\r\n", &LIMITS), End::Partial);
        assert_eq!(end(b"", &LIMITS), End::Partial);
    }

    #[test]
    fn heads_over_a_limit_are_left_to_the_guard() {
        let long_line = [b'a'; 70];
        assert_eq!(end(&long_line, &LIMITS), End::Over);
        let mut long_header = b"GET / HTTP/1.1\r\nx: ".to_vec();
        long_header.extend_from_slice(&[b'v'; 60]);
        long_header.extend_from_slice(b"\r\n\r\n");
        assert_eq!(end(&long_header, &LIMITS), End::Over);
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
        assert_eq!(end(many, &LIMITS), End::Over);
        let big = b"GET / HTTP/1.1\r\n".repeat(20);
        assert_eq!(end(&big, &LIMITS), End::Over);
    }

    #[test]
    fn a_plain_request_keeps_its_parts_as_views() {
        let p = plain(b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-E:\r\n\r\n")
            .expect("plain");
        assert_eq!(p.request.method(), Method::POST);
        assert_eq!(p.request.uri(), "/a?b=c");
        assert_eq!(p.request.version(), Version::HTTP_11);
        assert_eq!(p.request.headers()["host"], "x");
        assert_eq!(p.request.headers()["x-e"], "");
        assert_eq!(p.body, 5);
        assert!(p.keep_alive);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let ka = |h| plain(h).expect("plain").keep_alive;
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn anything_but_a_plain_head_goes_to_hyper() {
        for head in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nobs: a\r\n fold\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\nextra",
        ] {
            assert!(plain(head).is_none(), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn absolute_and_asterisk_forms_are_plain() {
        let p = plain(b"GET http://h:8/p HTTP/1.1\r\n\r\n").expect("plain");
        assert_eq!(p.request.uri().authority().map(|a| a.as_str()), Some("h:8"));
        assert!(plain(b"OPTIONS * HTTP/1.1\r\n\r\n").is_some());
    }
}
