//! The compiled form of one route's attributes and the test of a request against them.
//!
//! Within an attribute, values are alternatives (any one matching is enough); across attributes
//! all must match. Every test here borrows from the request and allocates nothing.

use http::{HeaderMap, HeaderName};
use regex::Regex;

/// The request as the matchers see it, derived once per lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    pub method: &'a str,
    /// The `Host` header without its port; `None` when there is no `Host` header.
    pub host: Option<&'a str>,
    /// The `Host` header's port, else the port the request arrived on.
    pub port: u64,
    pub path: &'a str,
    /// The connection is TLS (`https`), which is when SNIs are checked.
    pub https: bool,
    pub sni: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// Splits `host[:port]` at the first `:` when what follows is a number; anything else (an
/// IPv6 literal, a trailing `:`) is all host, as in Kong.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<u64>) {
    match s.split_once(':') {
        Some((host, port))
            if !port.is_empty() && port.len() <= 10 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (host, port.parse().ok())
        }
        _ => (s, None),
    }
}

/// How a host or SNI value compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// Equal.
    Exact,
    /// Ends with the value (from a leading `*`: `*.example.com` keeps `.example.com`).
    Suffix,
    /// Starts with the value (from a trailing `*`: `example.*` keeps `example.`).
    Prefix,
}

impl NameKind {
    fn test(self, value: &str, name: &str) -> bool {
        match self {
            NameKind::Exact => name == value,
            NameKind::Suffix => name.ends_with(value),
            NameKind::Prefix => name.starts_with(value),
        }
    }
}

/// One `hosts` entry.
#[derive(Debug, Clone)]
pub(crate) struct HostMatcher {
    pub kind: NameKind,
    pub value: Box<str>,
    pub port: Option<u64>,
}

impl HostMatcher {
    pub fn parse(host: &str) -> HostMatcher {
        let (name, port) = split_host_port(host);
        let (kind, value) = if let Some(rest) = name.strip_prefix('*') {
            (NameKind::Suffix, rest)
        } else if let Some(rest) = name.strip_suffix('*') {
            (NameKind::Prefix, rest)
        } else {
            (NameKind::Exact, name)
        };
        HostMatcher {
            kind,
            value: value.into(),
            port,
        }
    }

    fn matches(&self, req: &RequestView<'_>) -> bool {
        let Some(host) = req.host else {
            return false;
        };
        self.kind.test(&self.value, host) && self.port.is_none_or(|p| p == req.port)
    }
}

/// One `snis` entry.
#[derive(Debug, Clone)]
pub(crate) struct SniMatcher {
    kind: NameKind,
    value: Box<str>,
}

impl SniMatcher {
    pub fn parse(sni: &str) -> SniMatcher {
        if let Some(rest) = sni.strip_suffix('*') {
            if !sni.starts_with('*') {
                return SniMatcher {
                    kind: NameKind::Prefix,
                    value: rest.into(),
                };
            }
        }
        // The last dot of a fully qualified name plays no part in routing.
        let trimmed = match sni.strip_suffix('.') {
            Some(t) if sni.len() > 1 => t,
            _ => sni,
        };
        match trimmed.strip_prefix('*') {
            Some(rest) => SniMatcher {
                kind: NameKind::Suffix,
                value: rest.into(),
            },
            None => SniMatcher {
                kind: NameKind::Exact,
                value: trimmed.into(),
            },
        }
    }

    /// Whether the client's server name `sni` matches this entry.
    pub fn matches(&self, sni: &str) -> bool {
        self.kind.test(&self.value, sni)
    }
}

/// One accepted value of a header.
#[derive(Debug, Clone)]
pub(crate) enum HeaderValueMatcher {
    /// Equal once the request value is lower-cased; holds the stored value ASCII-lower-cased.
    Exact(Box<str>),
    /// A `~*` value: the rest, ASCII-lower-cased, as a case-insensitive, unanchored regex.
    Regex(Regex),
}

impl HeaderValueMatcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            HeaderValueMatcher::Exact(lowered) => lower_eq(value, lowered),
            HeaderValueMatcher::Regex(re) => re.is_match(value),
        }
    }
}

/// Whether `value` lower-cased (Unicode rules) equals `lowered`, without allocating.
fn lower_eq(value: &str, lowered: &str) -> bool {
    if value.is_ascii() {
        return value.len() == lowered.len()
            && value
                .bytes()
                .zip(lowered.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b);
    }
    value
        .chars()
        .flat_map(char::to_lowercase)
        .eq(lowered.chars())
}

/// One `headers` entry: a name and its accepted values.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMatcher {
    pub name: HeaderName,
    pub values: Box<[HeaderValueMatcher]>,
}

impl HeaderMatcher {
    fn matches(&self, headers: &HeaderMap) -> bool {
        headers.get_all(&self.name).iter().any(|v| {
            // A value that is not UTF-8 matches nothing.
            std::str::from_utf8(v.as_bytes())
                .is_ok_and(|v| self.values.iter().any(|m| m.matches(v)))
        })
    }
}

/// The attributes shared by all the (split) entries of one route: everything but paths.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteMatchers {
    pub methods: Box<[Box<str>]>,
    pub hosts: Box<[HostMatcher]>,
    pub snis: Box<[SniMatcher]>,
    pub headers: Box<[HeaderMatcher]>,
}

impl RouteMatchers {
    /// Methods, hosts and SNIs: the cheap tests.
    pub fn matches_cheap(&self, req: &RequestView<'_>) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| **m == *req.method))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(req)))
            && self.snis_match(req)
    }

    /// SNIs count only on TLS connections; there, a connection without SNI matches no route
    /// that lists SNIs.
    fn snis_match(&self, req: &RequestView<'_>) -> bool {
        if self.snis.is_empty() || !req.https {
            return true;
        }
        req.sni
            .is_some_and(|sni| self.snis.iter().any(|s| s.kind.test(&s.value, sni)))
    }

    /// Every header name must have one matching value.
    pub fn headers_match(&self, req: &RequestView<'_>) -> bool {
        self.headers.iter().all(|h| h.matches(req.headers))
    }
}

/// A regex path: the compiled regex (anchored at the start) and its pattern as stored.
#[derive(Debug, Clone)]
pub(crate) struct RegexPath {
    pub regex: Regex,
    /// Whether it has capture groups besides the whole match (captures are reported only then).
    pub has_groups: bool,
}

/// The paths of one entry: after splitting, either prefixes of one length or regexes.
#[derive(Debug, Clone)]
pub(crate) enum PathMatchers {
    /// The route has no paths: any path matches.
    Any,
    /// Prefixes, in configured order.
    Prefix(Box<[Box<str>]>),
    /// Regexes, in configured order.
    Regex(Box<[RegexPath]>),
}

/// Which path matched and what part of the request path it covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathHit {
    pub start: usize,
    pub end: usize,
    /// The index of the regex that matched, for regex paths.
    pub regex: Option<usize>,
}

/// The outcome of testing an entry's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathTest {
    /// No path matches.
    Miss,
    /// The entry has no paths, so any path does.
    NoPaths,
    /// This path matched.
    Hit(PathHit),
}

impl PathMatchers {
    /// The first path, in configured order, that matches.
    pub fn test(&self, path: &str) -> PathTest {
        let hit = match self {
            PathMatchers::Any => return PathTest::NoPaths,
            PathMatchers::Prefix(prefixes) => prefixes
                .iter()
                .find(|p| path.starts_with(&***p))
                .map(|p| PathHit {
                    start: 0,
                    end: p.len(),
                    regex: None,
                }),
            PathMatchers::Regex(regexes) => regexes.iter().enumerate().find_map(|(i, r)| {
                r.regex.find(path).map(|m| PathHit {
                    start: m.start(),
                    end: m.end(),
                    regex: Some(i),
                })
            }),
        };
        hit.map_or(PathTest::Miss, PathTest::Hit)
    }

    pub fn is_regex(&self) -> bool {
        matches!(self, PathMatchers::Regex(_))
    }
}

/// The literal text every match of `pattern` (a regex path without its `~`, anchored at the
/// start) must begin with, used to index regex routes by path like prefix routes. Conservative:
/// it stops at the first metacharacter, drops a last character a quantifier may remove, and is
/// empty when the pattern has an alternation anywhere (a top-level `|` would unanchor the
/// branches after the first).
pub(crate) fn literal_prefix(pattern: &str) -> &str {
    if pattern.contains('|') {
        return "";
    }
    let meta = |c: char| "\\.+*?()[]{}^$#".contains(c) || c.is_whitespace();
    let end = pattern.find(meta).unwrap_or(pattern.len());
    let literal = &pattern[..end];
    match pattern[end..].chars().next() {
        // `a?`, `a*`, `a{0,1}`: the last literal character may be absent.
        Some('?' | '*' | '{') => {
            let cut = literal.char_indices().last().map_or(0, |(i, _)| i);
            &literal[..cut]
        }
        _ => literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_host_port_takes_a_numeric_port_after_the_first_colon() {
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(
            split_host_port("example.com:8000"),
            ("example.com", Some(8000))
        );
        assert_eq!(split_host_port("example.com:"), ("example.com:", None));
        assert_eq!(split_host_port("example.com:8x"), ("example.com:8x", None));
        assert_eq!(split_host_port("[::1]:80"), ("[::1]:80", None));
        assert_eq!(
            split_host_port("*.example.com:81"),
            ("*.example.com", Some(81))
        );
    }

    #[test]
    fn literal_prefix_stops_at_metacharacters_and_quantifiers() {
        assert_eq!(literal_prefix(r"/users/(?<id>\d+)$"), "/users/");
        assert_eq!(literal_prefix(r"/users/\d+"), "/users/");
        assert_eq!(literal_prefix("/abc?"), "/ab");
        assert_eq!(literal_prefix("/abc*"), "/ab");
        assert_eq!(literal_prefix("/abc{0,2}"), "/ab");
        assert_eq!(literal_prefix("/abc+"), "/abc");
        assert_eq!(literal_prefix("/a|/b"), "");
        assert_eq!(literal_prefix("/(a|b)"), "");
        assert_eq!(literal_prefix("/plain"), "/plain");
        assert_eq!(literal_prefix("/é?"), "/");
        assert_eq!(literal_prefix("/a.b"), "/a");
    }

    #[test]
    fn lower_eq_lowercases_the_request_value_only() {
        assert!(lower_eq("Quote", "quote"));
        assert!(lower_eq("QUOTE", "quote"));
        assert!(!lower_eq("quote", "Quote"));
        assert!(lower_eq("ÉTÉ", "été"));
        assert!(!lower_eq("quotes", "quote"));
    }

    #[test]
    fn sni_values_drop_the_trailing_dot_and_wildcard() {
        let s = SniMatcher::parse("example.com.");
        assert_eq!((s.kind, &*s.value), (NameKind::Exact, "example.com"));
        let s = SniMatcher::parse("*.example.com");
        assert_eq!((s.kind, &*s.value), (NameKind::Suffix, ".example.com"));
        let s = SniMatcher::parse("example.*");
        assert_eq!((s.kind, &*s.value), (NameKind::Prefix, "example."));
    }
}
