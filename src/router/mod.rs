//! The router: which route, and so which service, an HTTP request goes to, and the path it is
//! sent upstream with. It implements Kong's default `traditional_compatible` flavor.
//!
//! This module is pure matching. [`Router::build`] compiles stored `routes` and `services`
//! (their JSON documents) into an immutable structure, off the hot path, when the snapshot is
//! rebuilt; [`Router::find`] then answers requests from it with no IO, no locks and no allocation
//! (except the capture groups of a regex path, when the winning route has some). Stream routes
//! (`tcp`, `tls`, `udp`, `tls_passthrough`) are skipped here: the [`StreamRouter`] serves them.
//!
//! # Using it from the proxy
//!
//! 1. Take the request path without its query string and [`normalize_path`] it (escapes of
//!    unreserved and other non-reserved characters decoded, dot segments resolved, slashes
//!    merged). `None` means the decoded path is not UTF-8: answer 404 like a miss.
//! 2. Fill a [`RequestInfo`]: method, `Host` header (with its port, if any), the normalized
//!    path, the connection's scheme, TLS SNI, the listening port (after `port_maps`), the
//!    headers, the HTTP version, and the trusted `X-Forwarded-Proto` if the peer is trusted.
//! 3. [`Router::find`]. `None`: 404 `no Route matched with those values`. `Some(m)`: if
//!    [`Match::protocol_mismatch`] is set, answer as [`ProtocolMismatch`] documents; otherwise
//!    proxy to `m.service` with [`Match::upstream_path`] (percent-escape it with
//!    [`UpstreamPath::write_escaped`], then append the original query string unchanged, a bare
//!    `?` included), set `X-Forwarded-Prefix` from [`Match::stripped_prefix`] (unless it is `/`),
//!    and hand [`Match::captures`] to plugins as the URI captures.
//!
//! # What matches
//!
//! A route matches when every attribute it sets matches; within an attribute any one value is
//! enough.
//!
//! - **methods**: the request method, exactly (methods are stored upper-case).
//! - **hosts**: the `Host` header without its port. `example.com` must be equal (case
//!   matters, as in Kong); `*.example.com` matches any host ending with `.example.com`;
//!   `example.*` any host beginning with `example.`. A host with `:port` also requires the port:
//!   the `Host` header's, or the listening port when the header has none. A host without port
//!   matches any port. The header's port is what follows the first `:` when it is a number
//!   (an IPv6 literal therefore never splits).
//! - **paths**: a prefix path matches when the normalized path starts with it (case matters).
//!   A `~` path is a regex (the `regex` crate's syntax, as Kong's router engine uses) anchored at
//!   the start but not at the end: `^` is put before the pattern as written, so a top-level
//!   alternation anchors only its first branch, as in Kong. Its named and numbered groups become
//!   the URI captures.
//! - **headers**: names are case-insensitive and `_` in a stored name stands for `-`. A value
//!   matches when the request's value, lower-cased, equals the stored value lower-cased; a value
//!   written `~*regex` is a case-insensitive, unanchored regex. Any value of a repeated header
//!   may match.
//! - **snis**: only checked on TLS connections (scheme `https`, which gRPCs also uses): then the
//!   SNI must match, exactly or by the same `*.` / `.*` wildcards as hosts; a trailing dot of a
//!   stored SNI is ignored. On plain connections a route's SNIs are ignored.
//! - **protocols** do not take part in matching. A route that matches but does not accept the
//!   request's protocol still wins, and the proxy answers with [`Match::protocol_mismatch`]
//!   (426, a redirect to https, 415, ...), as Kong does.
//!
//! Routes whose service has `enabled = false` are left out, so requests fall through to other
//! routes or a 404. Routes without a service match normally (`Match::service` is `None`).
//!
//! # Priority: which route wins
//!
//! 1. **Split.** A route whose paths are of different kinds is split first: one part per
//!    distinct prefix length and one part for all its regexes. Each part competes on its own, so
//!    a route's `/` does not drag its `/foo/bar` down, nor does its `/foo/bar` lift its `/`.
//! 2. **Order.** Every part gets a 64-bit priority and parts are tried from the highest. From the
//!    most significant bits down (see `priority.rs` for the layout):
//!    1. *match weight*, the number of attributes set among methods, hosts, headers, snis and
//!       paths: a route that constrains more of the request is more specific, whatever the
//!       attributes are;
//!    2. *plain hosts only*, set when `hosts` is present and has no wildcard: an exact name is
//!       more specific than a pattern (an empty `hosts` list sets it too, as in Kong, which
//!       tests the field's type);
//!    3. *header count* (capped at 255): each header is one more condition;
//!    4. *regex path*: regex parts before prefix parts of equal rank, because regexes are how
//!       exceptions are carved out of prefixes;
//!    5. *`regex_priority`*, for regex parts only: the operator's explicit order among regexes;
//!    6. *prefix length*, for prefix parts: the longest prefix is the most specific.
//! 3. **Ties.** Equal priorities are ordered by id, the larger UUID first (a split part uses an
//!    id derived from its route's id and part number, stable across rebuilds). Unlike the older
//!    `traditional` flavor, `created_at` plays no part: the order is total and deterministic
//!    without it.
//! 4. The first part, in this order, whose attributes all match wins; the path that matched is
//!    the first of that part's paths, in configured order, that matches.
//!
//! # How a lookup runs
//!
//! Parts are sorted once at build time; a part's rank is its position. The index (`index.rs`)
//! files every part by host (exact names in a hash map, `*.x` by suffix, `x.*` by prefix, the
//! rest host-agnostic), then by path key (the prefix path itself, the literal text a regex path
//! must begin with, or the empty key when the part has no paths): keys with a second `/` in a
//! hash map by their first segment, each over a radix tree of the rest, shorter keys in one
//! radix tree. A lookup visits only the buckets the request host selects, one first-segment
//! group, and the tree nodes along the request path; each visited list is sorted by rank, so it
//! stops at its first full match or as soon as ranks pass the best match so far. The cost
//! therefore depends on the request and on the routes sharing its host and path prefixes, not
//! on the total number of routes.
//!
//! Regex searches borrow a matching cache from the `regex` crate's per-regex pool, which only
//! ever try-locks (it never waits: under contention it makes a fresh cache instead).
//!
//! Compiling regexes dominates the build time of regex-heavy configurations, so a snapshot that
//! already has a router rebuilds with [`Router::rebuild`], which reuses the compiled regexes of
//! unchanged patterns.
//!
//! # Upstream path
//!
//! Built by [`upstream_path_v0`] from the service path, the stripped prefix and the request
//! path; `path_handling = v1` is deprecated and, in this flavor, not honoured (the rules of
//! [`upstream_path_v1`] are kept for reference).
//!
//! # Where this differs from Kong
//!
//! - Kong's Lua code computes the priority's match weight and header count with 32-bit LuaJIT
//!   bit operations (shift counts wrap at 32), so its actual numbers do not follow its own
//!   documented layout; they even depend on how LuaJIT converts negative numbers on the CPU at
//!   hand. This router implements the documented layout above.
//! - `regex_priority` is mapped onto 32 bits in an order-preserving way, so negative values sort
//!   below zero instead of wrapping around.
//! - `~*` header values are compiled as case-insensitive regexes over the request value rather
//!   than run over a lower-cased copy of it (the same results save for exotic Unicode case
//!   folding), and a header value that is not UTF-8 simply does not match (Kong fails the
//!   whole lookup).
//! - Bad stored data (wrong JSON types, an unknown service, an invalid regex, an HTTP route with
//!   `sources`, `destinations` or an `expression`) fails [`Router::build`] with a
//!   [`RouterError`], where Kong drops a route whose matcher does not compile and logs it: the
//!   snapshot keeps its previous router and reports the error.

mod answer;
mod build;
mod compile;
mod entity;
mod error;
mod index;
mod matcher;
mod model;
mod normalize;
mod path;
mod priority;
mod request;
mod stream;
#[cfg(test)]
mod tests;

pub use answer::{Match, ProtocolMismatch, UriCaptures};
pub use error::RouterError;
pub use model::{PathHandling, Protocol, Protocols, RouteInfo, ServiceInfo};
pub use normalize::normalize_path;
pub use path::{escape_path, upstream_path_v0, upstream_path_v1, UpstreamPath};
pub use request::{RequestInfo, Scheme};
pub use stream::{StreamMatch, StreamRequest, StreamRouter};

use answer::protocol_mismatch;
use build::{CompiledRoute, Entry};
use index::Index;
use matcher::{PathMatchers, PathTest, RequestView};

/// A stored entity: the JSON object the store keeps.
pub type Doc = serde_json::Map<String, serde_json::Value>;

/// The compiled routing table. Immutable; share it (in the snapshot) behind an `Arc`.
#[derive(Debug)]
pub struct Router {
    routes: Vec<CompiledRoute>,
    services: Vec<ServiceInfo>,
    /// Split routes, highest priority first: an entry's position is its rank.
    entries: Vec<Entry>,
    index: Index,
    warnings: Vec<String>,
}

impl Router {
    /// Compiles the HTTP routes among `routes` (stored route documents) against `services`
    /// (stored service documents). Fails on the first document the router cannot use.
    pub fn build(routes: &[Doc], services: &[Doc]) -> Result<Router, RouterError> {
        build::build(routes, services, &compile::RegexCache::default())
    }

    /// Like [`Router::build`], reusing this router's compiled regexes for patterns that did not
    /// change: the snapshot rebuilds with this after a configuration change, so a change costs
    /// little even with thousands of regex routes.
    pub fn rebuild(&self, routes: &[Doc], services: &[Doc]) -> Result<Router, RouterError> {
        build::build(routes, services, &compile::RegexCache::of(self))
    }

    /// A router without routes (every request is unmatched).
    pub fn empty() -> Router {
        Router {
            routes: Vec::new(),
            services: Vec::new(),
            entries: Vec::new(),
            index: Index::default(),
            warnings: Vec::new(),
        }
    }

    /// The services the routes lead to.
    pub fn services(&self) -> impl Iterator<Item = &ServiceInfo> {
        self.services.iter()
    }

    /// The route at `index` (see [`Match::route_index`]).
    pub fn route_at(&self, index: usize) -> Option<&RouteInfo> {
        self.routes.get(index).map(|r| &r.info)
    }

    /// The service at `index` (see [`Match::service_index`]).
    pub fn service_at(&self, index: usize) -> Option<&ServiceInfo> {
        self.services.get(index)
    }

    /// The best route for `req`, per the priority rules in the module docs.
    pub fn find<'a>(&'a self, req: &RequestInfo<'a>) -> Option<Match<'a>> {
        let view = RequestView::of(req);
        let mut best: Option<(u32, PathTest)> = None;
        self.index
            .candidates(view.host, req.path, &mut |ranks: &[u32]| {
                for &rank in ranks {
                    if best.is_some_and(|(b, _)| rank >= b) {
                        return;
                    }
                    if let Some(t) = self.test(rank, &view) {
                        best = Some((rank, t));
                        return;
                    }
                }
            });
        let (rank, test) = best?;
        self.answer(rank, test, req)
    }

    /// Whether entry `rank` matches; how its paths matched if so.
    fn test(&self, rank: u32, req: &RequestView<'_>) -> Option<PathTest> {
        let entry = self.entries.get(rank as usize)?;
        let route = self.routes.get(entry.route)?;
        if !route.matchers.matches_cheap(req) {
            return None;
        }
        // Regexes are the dearest test, so they come last.
        let regex = entry.paths.is_regex();
        if regex && !route.matchers.headers_match(req) {
            return None;
        }
        let t = entry.paths.test(req.path);
        if t == PathTest::Miss || (!regex && !route.matchers.headers_match(req)) {
            return None;
        }
        Some(t)
    }

    fn answer<'a>(&'a self, rank: u32, test: PathTest, req: &RequestInfo<'a>) -> Option<Match<'a>> {
        let entry = self.entries.get(rank as usize)?;
        let route = self.routes.get(entry.route)?;
        let service = route.service.and_then(|i| self.services.get(i));
        let hit = match test {
            PathTest::Hit(h) => Some(h),
            PathTest::Miss | PathTest::NoPaths => None,
        };
        let matched_path = hit.and_then(|h| req.path.get(h.start..h.end));
        let captures = match (&entry.paths, hit.and_then(|h| h.regex)) {
            (PathMatchers::Regex(regexes), Some(i)) => regexes
                .get(i)
                .filter(|r| r.has_groups)
                .and_then(|r| UriCaptures::new(&r.regex, req.path)),
            _ => None,
        };
        let strip = route.info.strip_path;
        let stripped_prefix = if strip { matched_path } else { None };
        // Without a stripped prefix the postfix is the path after its leading `/`.
        let prefix_len = stripped_prefix.map_or(1, str::len);
        let base = service.map_or("/", ServiceInfo::base_path);
        let postfix = path::postfix(req.path, prefix_len);
        Some(Match {
            route: &route.info,
            route_index: entry.route,
            service_index: route.service.filter(|_| service.is_some()),
            service,
            matched_path,
            stripped_prefix,
            captures,
            upstream_path: upstream_path_v0(base, req.path, postfix, strip),
            protocol_mismatch: protocol_mismatch(&route.info, req),
        })
    }

    /// The number of routes the router serves (disabled services' and stream routes left out).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the router serves no route at all.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes served, in the order they were given.
    pub fn routes(&self) -> impl Iterator<Item = &RouteInfo> {
        self.routes.iter().map(|r| &r.info)
    }

    /// Things worth logging that did not stop the build (a route whose service cannot serve
    /// HTTP and is routed without it).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
impl Router {
    /// The reference the index is checked against: every entry in rank order, no index.
    pub(crate) fn find_linear<'a>(&'a self, req: &RequestInfo<'a>) -> Option<Match<'a>> {
        let view = RequestView::of(req);
        let (rank, test) = (0..self.entries.len()).find_map(|rank| {
            let rank = u32::try_from(rank).ok()?;
            self.test(rank, &view).map(|t| (rank, t))
        })?;
        self.answer(rank, test, req)
    }
}
