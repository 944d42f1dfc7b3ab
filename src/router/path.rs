//! Upstream path construction: how the service's base path, the route's matched path and the
//! request path combine into the path sent upstream.
//!
//! Names used below: `S` is the service path (`/` when unset), `R` the normalized request path,
//! `P` the stripped prefix (the matched path when `strip_path` is on, else `/`), and `X` the
//! postfix, `R` without `P`'s length, with one leading `./` or `../` (or a whole `.`/`..`)
//! dropped so that stripping can never produce a dot segment.
//!
//! The result is an [`UpstreamPath`]: up to three borrowed pieces rather than a new string, so a
//! lookup allocates nothing and the proxy writes the pieces (escaped) straight into the request
//! line it builds anyway.

use std::fmt;

/// The path sent upstream, as up to three pieces to be concatenated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamPath<'a> {
    parts: [&'a str; 3],
}

impl<'a> UpstreamPath<'a> {
    fn of(parts: &[&'a str]) -> UpstreamPath<'a> {
        let mut out = [""; 3];
        for (slot, part) in out.iter_mut().zip(parts) {
            *slot = part;
        }
        UpstreamPath { parts: out }
    }

    /// The pieces, in order (some may be empty).
    pub fn parts(&self) -> [&'a str; 3] {
        self.parts
    }

    /// Length in bytes once concatenated.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Whether the path is empty (never the case for a well-formed service path).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the path, percent-escaped as it must appear on the upstream request line (see
    /// [`escape_path`]).
    pub fn write_escaped(&self, out: &mut String) {
        for part in self.parts {
            push_escaped(out, part);
        }
    }
}

impl fmt::Display for UpstreamPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts.iter().try_for_each(|p| f.write_str(p))
    }
}

impl PartialEq<str> for UpstreamPath<'_> {
    fn eq(&self, other: &str) -> bool {
        let mut rest = other;
        for part in self.parts {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl PartialEq<&str> for UpstreamPath<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

/// `R` without its first `prefix_len` bytes, sanitized: the postfix `X`.
pub(crate) fn postfix(request: &str, prefix_len: usize) -> &str {
    let rest = request.get(prefix_len..).unwrap_or("");
    match rest {
        "." | ".." => "",
        _ => rest
            .strip_prefix("./")
            .or_else(|| rest.strip_prefix("../"))
            .unwrap_or(rest),
    }
}

/// `R` without its leading `/`.
fn tail(request: &str) -> &str {
    request.get(1..).unwrap_or("")
}

/// The upstream path under `path_handling = v0`, the only behaviour of the
/// `traditional_compatible` router.
///
/// `service_path` is `S`, `request` is `R`, `postfix` is `X` (see the module docs).
///
/// | S ends with `/` | strip | rule |
/// |---|---|---|
/// | yes | yes | X empty: `/` if S is `/`, S if R ends with `/`, else S without its `/`; X starts with `/`: S without its `/` + X; else S + X |
/// | yes | no | S + R without its leading `/` |
/// | no | yes | X empty: S + `/` if R is longer than `/` and ends with `/`, else S; X starts with `/`: S + X; else S + `/` + X |
/// | no | no | S if R is `/`, else S + R |
pub fn upstream_path_v0<'a>(
    service_path: &'a str,
    request: &'a str,
    postfix: &'a str,
    strip_path: bool,
) -> UpstreamPath<'a> {
    let s = service_path;
    let s_trimmed = s.strip_suffix('/');
    match (s_trimmed, strip_path) {
        (Some(trimmed), true) => {
            if postfix.is_empty() {
                if s == "/" {
                    UpstreamPath::of(&["/"])
                } else if request.ends_with('/') {
                    UpstreamPath::of(&[s])
                } else {
                    UpstreamPath::of(&[trimmed])
                }
            } else if postfix.starts_with('/') {
                UpstreamPath::of(&[trimmed, postfix])
            } else {
                UpstreamPath::of(&[s, postfix])
            }
        }
        (Some(_), false) => UpstreamPath::of(&[s, tail(request)]),
        (None, true) => {
            if postfix.is_empty() {
                if request.len() > 1 && request.ends_with('/') {
                    UpstreamPath::of(&[s, "/"])
                } else {
                    UpstreamPath::of(&[s])
                }
            } else if postfix.starts_with('/') {
                UpstreamPath::of(&[s, postfix])
            } else {
                UpstreamPath::of(&[s, "/", postfix])
            }
        }
        (None, false) => {
            if request == "/" {
                UpstreamPath::of(&[s])
            } else {
                UpstreamPath::of(&[s, request])
            }
        }
    }
}

/// The upstream path under the deprecated `path_handling = v1` (honoured only by Kong's
/// `traditional` router; kept here so its rules are written down and tested): with
/// `strip_path`, S + X with a doubled `/` at the seam collapsed; without, S + R without its
/// leading `/`.
pub fn upstream_path_v1<'a>(
    service_path: &'a str,
    request: &'a str,
    postfix: &'a str,
    strip_path: bool,
) -> UpstreamPath<'a> {
    if !strip_path {
        return UpstreamPath::of(&[service_path, tail(request)]);
    }
    match service_path.strip_suffix('/') {
        Some(trimmed) if postfix.starts_with('/') => UpstreamPath::of(&[trimmed, postfix]),
        _ => UpstreamPath::of(&[service_path, postfix]),
    }
}

/// Whether `b` may appear unescaped on the upstream request line: letters, digits, the
/// unreserved marks `-._~`, the reserved characters, and `%` (escapes already in the path
/// stay as they are).
fn is_path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@[]-_.~%".contains(&b)
}

fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !is_path_safe(b) {
            out.push_str(s.get(start..i).unwrap_or(""));
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
            start = i + 1;
        }
    }
    out.push_str(s.get(start..).unwrap_or(""));
}

/// Percent-escapes what a normalized path may hold but a request line may not (spaces, controls,
/// non-ASCII bytes, `"`, `<`, ...), leaving reserved characters and existing escapes alone. The
/// proxy applies this to the upstream path before appending the query string unchanged.
pub fn escape_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.bytes().all(is_path_safe) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    push_escaped(&mut out, path);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row of the reference's table: service path (None = unset), route prefix, request,
    /// strip, expected v0, expected v1.
    type Row = (
        Option<&'static str>,
        &'static str,
        &'static str,
        bool,
        &'static str,
        &'static str,
    );

    const TABLE: &[Row] = &[
        (Some("/s"), "/fv0", "/fv0req", true, "/s/req", "/sreq"),
        (
            Some("/s"),
            "/fv0",
            "/fv0req",
            false,
            "/s/fv0req",
            "/sfv0req",
        ),
        (Some("/s"), "/fv0", "/fv0/req", true, "/s/req", "/s/req"),
        (
            Some("/s"),
            "/fv0",
            "/fv0/req",
            false,
            "/s/fv0/req",
            "/sfv0/req",
        ),
        (Some("/s"), "/fv0", "/fv0", true, "/s", "/s"),
        (Some("/s"), "/fv0", "/fv0/", true, "/s/", "/s/"),
        (Some("/s"), "/fv0/", "/fv0/", true, "/s/", "/s"),
        (
            Some("/fv0/"),
            "/fv0",
            "/fv0req",
            true,
            "/fv0/req",
            "/fv0/req",
        ),
        (Some("/fv0/"), "/fv0", "/fv0", true, "/fv0", "/fv0/"),
        (
            Some("/fv0/"),
            "/fv0",
            "/fv0/req",
            false,
            "/fv0/fv0/req",
            "/fv0/fv0/req",
        ),
        (Some("/"), "/fv0", "/fv0req", true, "/req", "/req"),
        (Some("/"), "/fv0", "/fv0", true, "/", "/"),
        (Some("/"), "/fv0", "/fv0/req", false, "/fv0/req", "/fv0/req"),
        (None, "/fv0", "/fv0/", false, "/fv0/", "/fv0/"),
    ];

    fn build(
        f: for<'a> fn(&'a str, &'a str, &'a str, bool) -> UpstreamPath<'a>,
        service: Option<&str>,
        prefix: &str,
        request: &str,
        strip: bool,
    ) -> String {
        let s = service.unwrap_or("/");
        let p = if strip { prefix.len() } else { 1 };
        f(s, request, postfix(request, p), strip).to_string()
    }

    #[test]
    fn reference_table_v0() {
        for &(s, p, r, strip, v0, _) in TABLE {
            let got = build(upstream_path_v0, s, p, r, strip);
            assert_eq!(got, v0, "S={s:?} P={p} R={r} strip={strip}");
        }
    }

    #[test]
    fn reference_table_v1() {
        for &(s, p, r, strip, _, v1) in TABLE {
            let got = build(upstream_path_v1, s, p, r, strip);
            assert_eq!(got, v1, "S={s:?} P={p} R={r} strip={strip}");
        }
    }

    #[test]
    fn postfix_drops_one_leading_dot_segment() {
        assert_eq!(postfix("/route./req", 6), "req");
        assert_eq!(postfix("/route../req", 6), "req");
        assert_eq!(postfix("/route.", 6), "");
        assert_eq!(postfix("/route..", 6), "");
        assert_eq!(postfix("/routereq", 6), "req");
        assert_eq!(postfix("/r", 6), "");
    }

    #[test]
    fn upstream_path_compares_and_measures_without_joining() {
        let p = upstream_path_v0("/svc", "/a/b", "/b", true);
        assert_eq!(p, "/svc/b");
        assert_ne!(p, "/svc/bc");
        assert_ne!(p, "/svc");
        assert_eq!(p.len(), 6);
        assert_eq!(p.parts(), ["/svc", "/b", ""]);
    }

    #[test]
    fn escape_leaves_reserved_and_escapes_alone() {
        assert_eq!(escape_path("/a/b%2Fc;d=e"), "/a/b%2Fc;d=e");
        assert!(matches!(
            escape_path("/plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_path("/john doe"), "/john%20doe");
        assert_eq!(escape_path("/é\"<"), "/%C3%A9%22%3C");
        let mut out = String::new();
        upstream_path_v0("/s p", "/x y", "x y", true).write_escaped(&mut out);
        assert_eq!(out, "/s%20p/x%20y");
    }
}
