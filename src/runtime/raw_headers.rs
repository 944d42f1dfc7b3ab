//! Response header lines kept as an upstream sent them, so that a proxied answer can be written
//! to its client without building a header map and encoding it again.
//!
//! A response carries them in its extensions, with the short list of headers the gateway adds
//! on top ([`RawHeaders::set`]; `Via`, `X-Kong-*`, plugins' headers), beside the response's
//! header map (empty on the proxy's own path). Writing such a response means: the kept lines
//! first, less the hop-by-hop ones and those whose name the gateway's headers or the map also
//! hold (their values replace them), then the gateway's headers, then the map. The gateway's
//! own HTTP/1.1 writer does that as it writes; every other path (hyper's HTTP/1.1 and HTTP/2
//! servers, plugins that edit response headers) turns the lines into map entries first with
//! [`RawHeaders::merge_into`], to the same effect. [`Adding`] sets a header on whichever of
//! the two a response has.

use std::cell::RefCell;
use std::ops::Range;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// What a header name is to the writers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any other header.
    Other,
    /// `Content-Length`.
    ContentLength,
    /// `Date`.
    Date,
    /// `Via`.
    Via,
    /// `Server`.
    Server,
    /// `Connection` (hop-by-hop, and it may name more).
    Connection,
    /// `Transfer-Encoding` (hop-by-hop).
    TransferEncoding,
    /// One of the other fixed hop-by-hop names: `Keep-Alive`, `Proxy-Connection`, `TE`,
    /// `Upgrade`, `Proxy`.
    HopByHop,
}

impl Kind {
    /// The kind of the header `name` (any case).
    pub fn of(name: &[u8]) -> Kind {
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        match name.len() {
            2 if is(b"te") => Kind::HopByHop,
            3 if is(b"via") => Kind::Via,
            4 if is(b"date") => Kind::Date,
            5 if is(b"proxy") => Kind::HopByHop,
            6 if is(b"server") => Kind::Server,
            7 if is(b"upgrade") => Kind::HopByHop,
            10 if is(b"connection") => Kind::Connection,
            10 if is(b"keep-alive") => Kind::HopByHop,
            14 if is(b"content-length") => Kind::ContentLength,
            16 if is(b"proxy-connection") => Kind::HopByHop,
            17 if is(b"transfer-encoding") => Kind::TransferEncoding,
            _ => Kind::Other,
        }
    }

    /// Whether headers of this kind are never passed on from one connection to the next (the
    /// `Connection` header's own list of more such names is not read here: heads that have
    /// one stay in a map).
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Kind::Connection | Kind::TransferEncoding | Kind::HopByHop
        )
    }
}

/// One header line: where its name and value are in the head, and what the name is.
#[derive(Debug, Clone)]
pub struct Line {
    name: Range<u32>,
    value: Range<u32>,
    kind: Kind,
}

impl Line {
    /// The line whose `name` and `value` are at these ranges of the head; `name_bytes` are the
    /// name's bytes, to tell its kind.
    pub fn new(name: Range<usize>, value: Range<usize>, name_bytes: &[u8]) -> Line {
        let narrow = |r: Range<usize>| match (u32::try_from(r.start), u32::try_from(r.end)) {
            (Ok(start), Ok(end)) => start..end,
            _ => 0..0,
        };
        Line {
            name: narrow(name),
            value: narrow(value),
            kind: Kind::of(name_bytes),
        }
    }
}

/// The header lines of a response head, as received, and the headers set on top of them.
#[derive(Clone, Debug)]
pub struct RawHeaders {
    head: Bytes,
    lines: Vec<Line>,
    /// Set on top of the lines, each name once, in the order first set.
    added: Vec<(HeaderName, HeaderValue)>,
}

impl RawHeaders {
    /// The headers `lines` finds in `head` (a range outside it is taken as empty). The head
    /// must have been checked by an HTTP/1 parser: names are tokens, values hold no CR or LF.
    pub fn new(head: Bytes, mut lines: Vec<Line>) -> RawHeaders {
        let len = head.len() as u64;
        for line in &mut lines {
            for r in [&mut line.name, &mut line.value] {
                if r.start > r.end || u64::from(r.end) > len {
                    *r = 0..0;
                }
            }
        }
        RawHeaders {
            head,
            lines,
            added: Vec::new(),
        }
    }

    /// Sets `name` on top of the lines: written after them, in place of any line of that
    /// name; a second value for a name replaces the first.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.added.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => {
                if self.added.capacity() == 0 {
                    // The gateway's own and a rate limiter's headers without growing.
                    self.added.reserve(10);
                }
                self.added.push((name, value));
            }
        }
    }

    /// Sets each of `headers`, whose names differ from one another (they are compared only
    /// with the names set before).
    pub fn set_all(&mut self, headers: Vec<(HeaderName, HeaderValue)>) {
        if self.added.is_empty() {
            self.added = headers;
            return;
        }
        let before = self.added.len();
        self.added.reserve(headers.len());
        for (name, value) in headers {
            match self.added[..before].iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v = value,
                None => self.added.push((name, value)),
            }
        }
    }

    /// The headers set on top of the lines, in order.
    pub fn added(&self) -> &[(HeaderName, HeaderValue)] {
        &self.added
    }

    /// The bytes of `range`.
    fn bytes(&self, range: &Range<u32>) -> &[u8] {
        &self.head[range.start as usize..range.end as usize]
    }

    /// Each header as `(name, value, kind)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Kind)> + '_ {
        self.lines
            .iter()
            .map(|l| (self.bytes(&l.name), self.bytes(&l.value), l.kind))
    }

    /// The lines written before `overrides` ([`Overrides::passes`]): `(name, value, kind)`.
    pub fn passing<'a>(
        &'a self,
        overrides: &'a Overrides<'a>,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8], Kind)> + 'a {
        self.iter()
            .filter(|(name, _, kind)| overrides.passes(name, *kind))
    }

    /// The size of what is written before a header map `map`: the lines that pass and the
    /// headers set on top, as they travel (`name: value` and CRLF).
    pub fn written_size(&self, map: &HeaderMap) -> usize {
        let overrides = Overrides::of(&self.added, map);
        let size = |name: &[u8], value: &[u8]| name.len() + 2 + value.len() + 2;
        let lines: usize = self
            .passing(&overrides)
            .map(|(name, value, _)| size(name, value))
            .sum();
        let added: usize = self
            .added_before(map)
            .map(|(n, v)| size(n.as_str().as_bytes(), v.as_bytes()))
            .sum();
        lines + added
    }

    /// The headers set on top that are written before `map` (those it does not replace).
    pub fn added_before<'a>(
        &'a self,
        map: &'a HeaderMap,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
        self.added
            .iter()
            .filter(move |(n, _)| map.is_empty() || !map.contains_key(n))
            .map(|(n, v)| (n, v))
    }

    /// Makes `map` what writing these lines and headers before it would send: the lines that
    /// pass first, then the headers set on top, then `map`'s own entries. A line that is not
    /// a valid header is left out.
    pub fn merge_into(&self, map: &mut HeaderMap) {
        let mut merged = HeaderMap::with_capacity(self.lines.len() + self.added.len() + map.len());
        let overrides = Overrides::of(&self.added, map);
        for (name, value, _) in self.passing(&overrides) {
            if let Some((name, value)) = self.entry(name, value) {
                merged.append(name, value);
            }
        }
        for (name, value) in &self.added {
            merged.insert(name.clone(), value.clone());
        }
        merged.extend(std::mem::take(map));
        *map = merged;
    }

    /// Every line (hop-by-hop ones too), then the headers set on top, as a header map with
    /// room for `room` more entries.
    pub fn to_map(&self, room: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.lines.len() + self.added.len() + room);
        for (name, value, _) in self.iter() {
            if let Some((name, value)) = self.entry(name, value) {
                map.append(name, value);
            }
        }
        for (name, value) in &self.added {
            map.insert(name.clone(), value.clone());
        }
        map
    }

    /// A map entry for a line (its value shares the head's bytes).
    fn entry(&self, name: &[u8], value: &[u8]) -> Option<(HeaderName, HeaderValue)> {
        let name = HeaderName::from_bytes(name).ok()?;
        let value = HeaderValue::from_maybe_shared(self.head.slice_ref(value)).ok()?;
        Some((name, value))
    }
}

/// The names of the headers written after kept lines (those set on top, and a header map),
/// which those lines then leave out.
#[derive(Debug)]
pub struct Overrides<'a> {
    added: &'a [(HeaderName, HeaderValue)],
    map: &'a HeaderMap,
    /// Bit `n` (63 for longer names): some name is `n` bytes long. Most lines are told apart
    /// by their length alone; the others are compared with each name.
    lengths: u64,
}

/// The bit of a name's length in [`Overrides::lengths`].
fn length_bit(name: &[u8]) -> u64 {
    1 << name.len().min(63)
}

impl<'a> Overrides<'a> {
    /// The names of `added` and `map`.
    pub fn of(added: &'a [(HeaderName, HeaderValue)], map: &'a HeaderMap) -> Overrides<'a> {
        let lengths = Overrides::names(added, map)
            .fold(0, |bits, name| bits | length_bit(name.as_str().as_bytes()));
        Overrides {
            added,
            map,
            lengths,
        }
    }

    fn names(
        added: &'a [(HeaderName, HeaderValue)],
        map: &'a HeaderMap,
    ) -> impl Iterator<Item = &'a HeaderName> {
        added.iter().map(|(n, _)| n).chain(map.keys())
    }

    /// Whether a line named `name`, of `kind`, is written: not hop-by-hop, and not one of the
    /// names.
    pub fn passes(&self, name: &[u8], kind: Kind) -> bool {
        if kind.is_hop_by_hop() {
            return false;
        }
        if self.lengths & length_bit(name) == 0 {
            return true;
        }
        !Overrides::names(self.added, self.map)
            .any(|k| k.as_str().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// A response's headers, to set some on: on top of its kept lines when it has them, else in
/// its header map. Either way a name set replaces what the response held under it.
pub struct Adding<'a> {
    lines: Option<&'a mut RawHeaders>,
    map: &'a mut HeaderMap,
}

impl<'a> Adding<'a> {
    /// The headers of the response whose head is `parts`.
    pub fn to(parts: &'a mut http::response::Parts) -> Adding<'a> {
        Adding {
            lines: parts.extensions.get_mut::<RawHeaders>(),
            map: &mut parts.headers,
        }
    }

    /// Sets `name` to `value`.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        match &mut self.lines {
            Some(lines) => lines.set(name, value),
            None => {
                self.map.insert(name, value);
            }
        }
    }

    /// Sets each of `headers`, whose names differ from one another.
    pub fn insert_all(&mut self, headers: Vec<(HeaderName, HeaderValue)>) {
        if headers.is_empty() {
            return;
        }
        match &mut self.lines {
            Some(lines) => lines.set_all(headers),
            None => {
                for (name, value) in headers {
                    self.map.insert(name, value);
                }
            }
        }
    }
}

/// Extensions maps a thread keeps for reuse (see [`extensions_with`]).
const SPARES: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<http::Extensions>> = const { RefCell::new(Vec::new()) };
}

/// Response extensions holding `lines`. The map comes from those the thread's writer gave
/// back ([`give_back`]) when there is one: a proxied response then costs one allocation (the
/// lines' box) instead of three.
pub fn extensions_with(lines: RawHeaders) -> http::Extensions {
    let mut extensions = SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default();
    extensions.insert(lines);
    extensions
}

/// Keeps a response's extensions for [`extensions_with`] once its lines are taken out (only
/// an empty map is kept, and only a few).
pub fn give_back(extensions: http::Extensions) {
    if extensions.is_empty() {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARES {
                spare.push(extensions);
            }
        });
    }
}

/// Turns a response's kept lines, if it has any, into entries of its header map (see the
/// module docs): for every writer but the gateway's own.
pub fn merge(extensions: &mut http::Extensions, headers: &mut HeaderMap) {
    if let Some(raw) = extensions.remove::<RawHeaders>() {
        raw.merge_into(headers);
    }
}

/// The header lines of the whole response head `head` as the proxy's client keeps them (for
/// tests).
#[cfg(test)]
pub(crate) fn parsed(head: Bytes) -> RawHeaders {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response(&mut response, &head)
        .expect("a head");
    let at = |p: &[u8]| {
        let start = p.as_ptr() as usize - head.as_ptr() as usize;
        start..start + p.len()
    };
    let lines = response
        .headers
        .iter()
        .map(|h| Line::new(at(h.name.as_bytes()), at(h.value), h.name.as_bytes()))
        .collect();
    RawHeaders::new(head.clone(), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    static HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\nx-empty:\r\nConnection: keep-alive\r\nX-Spaced :  v w \r\nx-kong-proxy-latency: 9\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbody";

    /// The lines of `HEAD` as the proxy's client keeps them.
    fn raw() -> RawHeaders {
        parsed(Bytes::from_static(HEAD))
    }

    #[test]
    fn lines_are_read_in_order_with_their_kinds() {
        let raw = raw();
        let lines: Vec<_> = raw.iter().collect();
        assert_eq!(
            lines,
            vec![
                (&b"Server"[..], &b"up"[..], Kind::Server),
                (b"Content-Length", b"5", Kind::ContentLength),
                (b"x-empty", b"", Kind::Other),
                (b"Connection", b"keep-alive", Kind::Connection),
                (b"X-Spaced", b"v w", Kind::Other),
                (b"x-kong-proxy-latency", b"9", Kind::Other),
                (b"Set-Cookie", b"a=1", Kind::Other),
                (b"Set-Cookie", b"b=2", Kind::Other),
            ]
        );
        let passing = lines.iter().filter(|(n, _, _)| *n != b"Connection");
        assert_eq!(
            raw.written_size(&HeaderMap::new()),
            passing
                .map(|(n, v, _)| n.len() + v.len() + 4)
                .sum::<usize>()
        );
    }

    #[test]
    fn names_are_classified_in_any_case() {
        for (name, kind) in [
            (&b"TE"[..], Kind::HopByHop),
            (b"Keep-Alive", Kind::HopByHop),
            (b"upgrade", Kind::HopByHop),
            (b"PROXY-CONNECTION", Kind::HopByHop),
            (b"Transfer-Encoding", Kind::TransferEncoding),
            (b"date", Kind::Date),
            (b"VIA", Kind::Via),
            (b"x-via", Kind::Other),
        ] {
            assert_eq!(Kind::of(name), kind, "{}", String::from_utf8_lossy(name));
        }
        assert!(Kind::Connection.is_hop_by_hop() && !Kind::Date.is_hop_by_hop());
    }

    #[test]
    fn merging_drops_hop_by_hop_and_replaced_lines_and_keeps_repeats() {
        let mut map = HeaderMap::new();
        map.insert("x-kong-proxy-latency", HeaderValue::from_static("1"));
        map.insert("via", HeaderValue::from_static("1.1 kong"));
        raw().merge_into(&mut map);
        let names: Vec<_> = map.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "server",
                "content-length",
                "x-empty",
                "x-spaced",
                "set-cookie",
                "x-kong-proxy-latency",
                "via"
            ]
        );
        assert_eq!(map["x-kong-proxy-latency"], "1");
        assert_eq!(map["x-spaced"], "v w");
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn many_overrides_of_any_length_are_all_compared() {
        let mut map = HeaderMap::new();
        for i in 0..20 {
            map.insert(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).expect("name"),
                HeaderValue::from_static("v"),
            );
        }
        map.insert("server", HeaderValue::from_static("mine"));
        raw().merge_into(&mut map);
        assert_eq!(map.get_all("server").iter().collect::<Vec<_>>(), ["mine"]);
        assert_eq!(map["x-spaced"], "v w");
    }

    #[test]
    fn the_whole_map_keeps_every_line() {
        let map = raw().to_map(4);
        assert_eq!(map.len(), 8);
        assert_eq!(map["connection"], "keep-alive");
        assert!(map.capacity() >= 12);
    }

    #[test]
    fn headers_set_on_top_replace_lines_and_one_another() {
        let mut raw = raw();
        raw.set(
            HeaderName::from_static("server"),
            HeaderValue::from_static("kong"),
        );
        raw.set(
            HeaderName::from_static("x-n"),
            HeaderValue::from_static("1"),
        );
        raw.set(
            HeaderName::from_static("x-n"),
            HeaderValue::from_static("2"),
        );
        let added: Vec<_> = raw
            .added()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("?")))
            .collect();
        assert_eq!(added, [("server", "kong"), ("x-n", "2")]);
        // Written: every line but `Connection` and the replaced `Server`, then those set.
        let lines: usize = raw
            .iter()
            .filter(|(n, _, _)| *n != b"Connection" && *n != b"Server")
            .map(|(n, v, _)| n.len() + v.len() + 4)
            .sum();
        raw.set_all(vec![
            (
                HeaderName::from_static("x-n"),
                HeaderValue::from_static("2"),
            ),
            (
                HeaderName::from_static("x-m"),
                HeaderValue::from_static("4"),
            ),
        ]);
        let set = "server: kong\r\nx-n: 2\r\nx-m: 4\r\n".len();
        assert_eq!(raw.written_size(&HeaderMap::new()), lines + set);
        // A map's name replaces one set on top.
        let mut map = HeaderMap::new();
        map.insert("x-n", HeaderValue::from_static("3"));
        assert_eq!(
            raw.written_size(&map),
            lines + "server: kong\r\nx-m: 4\r\n".len()
        );
        raw.merge_into(&mut map);
        assert_eq!(map.get_all("server").iter().collect::<Vec<_>>(), ["kong"]);
        assert_eq!(map.get_all("x-n").iter().collect::<Vec<_>>(), ["3"]);
        assert_eq!(map["x-spaced"], "v w");
        assert_eq!(raw.to_map(0)["server"], "kong");
    }

    #[test]
    fn adding_sets_on_the_lines_when_there_are_some_else_in_the_map() {
        let (mut parts, ()) = http::Response::new(()).into_parts();
        Adding::to(&mut parts).insert(
            HeaderName::from_static("via"),
            HeaderValue::from_static("a"),
        );
        assert_eq!(parts.headers["via"], "a");
        parts.headers.clear();
        parts.extensions.insert(raw());
        Adding::to(&mut parts).insert(
            HeaderName::from_static("via"),
            HeaderValue::from_static("b"),
        );
        assert!(parts.headers.is_empty());
        let raw = parts.extensions.get::<RawHeaders>().expect("lines");
        assert_eq!(raw.added().len(), 1);
        merge(&mut parts.extensions, &mut parts.headers);
        assert_eq!(parts.headers["via"], "b");
        assert_eq!(parts.headers["server"], "up");
    }

    #[test]
    fn only_emptied_extensions_are_kept_for_reuse() {
        // A map still holding something is not kept: the next one holds the lines alone.
        let mut full = http::Extensions::new();
        full.insert(7u8);
        give_back(full);
        let mut ext = extensions_with(raw());
        assert_eq!(ext.len(), 1);
        assert!(ext.get::<u8>().is_none());
        ext.remove::<RawHeaders>();
        give_back(ext);
        let ext = extensions_with(raw());
        assert_eq!(ext.len(), 1);
        assert!(ext.get::<RawHeaders>().is_some());
    }

    #[test]
    fn merge_takes_the_lines_out_of_the_extensions() {
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.extensions.insert(raw());
        merge(&mut parts.extensions, &mut parts.headers);
        assert!(parts.extensions.get::<RawHeaders>().is_none());
        assert_eq!(parts.headers["server"], "up");
        assert!(parts.headers.get("connection").is_none());
    }
}
