//! The candidate index: which entries a request could possibly match, found without looking at
//! the others.
//!
//! Three levels, each chosen so its cost does not grow with the number of routes:
//!
//! 1. **Host.** Entries whose hosts are exact names sit in a hash map under each name,
//!    `*.example.com` entries under the suffix `.example.com`, `example.*` entries under the
//!    prefix `example.`, and entries without hosts (or with hosts that cannot be indexed) in one
//!    host-agnostic bucket. A request visits the bucket of its host, the wildcard buckets of its
//!    host's suffixes and prefixes at each dot, and the host-agnostic bucket.
//! 2. **First path segment.** Inside a bucket, a path key (a prefix path, the literal text a regex
//!    path must begin with, or the empty key of an entry without paths) that contains a second
//!    `/` is filed under its first segment (`/svc12` for `/svc12/v1`) in a hash map: a request
//!    can only start with such a key if its own first segment is the same, so one hash lookup
//!    finds the only relevant group however many there are. Shorter keys (`/`, `/api`, the
//!    empty key) go to a separate tree.
//! 3. **Rest of the path.** Each group is a radix tree over the rest of the key; a lookup walks
//!    the nodes along the request path and visits every node whose key is a prefix of it.
//!
//! Each visited list holds entry ranks in ascending order (rank 0 is the highest priority), so
//! the visitor stops at its first full match, or as soon as ranks pass the best match so far.

use std::collections::HashMap;

type FastMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// A radix tree from byte strings to rank lists, its edge labels kept in one arena.
#[derive(Debug)]
pub(crate) struct PathTree {
    nodes: Vec<Node>,
    labels: Vec<u8>,
}

#[derive(Debug, Default)]
struct Node {
    /// The first byte of each edge's label, sorted: scanned without touching the labels.
    firsts: Vec<u8>,
    /// Outgoing edges, in the order of `firsts`.
    edges: Vec<Edge>,
    /// Entries keyed exactly here, ascending.
    ranks: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The label, `labels[start..start + len]`; never empty.
    start: u32,
    len: u32,
    child: u32,
}

impl Default for PathTree {
    fn default() -> Self {
        PathTree {
            nodes: vec![Node::default()],
            labels: Vec::new(),
        }
    }
}

/// Sizes in the tree stay far below `u32::MAX` (they are bounded by the total length of the
/// configured paths); saturate rather than wrap if they ever did not.
fn small(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl PathTree {
    fn label(&self, e: Edge) -> &[u8] {
        let start = e.start as usize;
        self.labels
            .get(start..start + e.len as usize)
            .unwrap_or_default()
    }

    fn push_node(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        small(self.nodes.len() - 1)
    }

    /// Files `rank` under `key`. Ranks must be inserted in ascending order.
    pub fn insert(&mut self, mut key: &[u8], rank: u32) {
        let mut at = 0usize;
        loop {
            let Some(&first) = key.first() else {
                let ranks = &mut self.nodes[at].ranks;
                if ranks.last() != Some(&rank) {
                    ranks.push(rank);
                }
                return;
            };
            match self.nodes[at].firsts.binary_search(&first) {
                Err(pos) => {
                    let start = small(self.labels.len());
                    self.labels.extend_from_slice(key);
                    let child = self.push_node(Node {
                        ranks: vec![rank],
                        ..Node::default()
                    });
                    let node = &mut self.nodes[at];
                    node.firsts.insert(pos, first);
                    let len = small(key.len());
                    node.edges.insert(pos, Edge { start, len, child });
                    return;
                }
                Ok(i) => {
                    let edge = self.nodes[at].edges[i];
                    let common = self
                        .label(edge)
                        .iter()
                        .zip(key)
                        .take_while(|(a, b)| a == b)
                        .count();
                    let common_u32 = small(common);
                    if common_u32 < edge.len {
                        // Split the edge at the common prefix; both halves keep their bytes in
                        // the arena where they are.
                        let tail = Edge {
                            start: edge.start + common_u32,
                            len: edge.len - common_u32,
                            child: edge.child,
                        };
                        let tail_first = self.label(tail).first().copied().unwrap_or_default();
                        let mid = self.push_node(Node {
                            firsts: vec![tail_first],
                            edges: vec![tail],
                            ranks: Vec::new(),
                        });
                        self.nodes[at].edges[i] = Edge {
                            start: edge.start,
                            len: common_u32,
                            child: mid,
                        };
                        at = mid as usize;
                    } else {
                        at = edge.child as usize;
                    }
                    key = &key[common..];
                }
            }
        }
    }

    /// Calls `visit` with the rank list of every node whose key is a prefix of `path`, shortest
    /// key first.
    pub fn walk(&self, path: &[u8], visit: &mut impl FnMut(&[u32])) {
        let mut node = &self.nodes[0];
        let mut rest = path;
        loop {
            if !node.ranks.is_empty() {
                visit(&node.ranks);
            }
            let Some(&first) = rest.first() else {
                return;
            };
            let Some(i) = node.firsts.iter().position(|&b| b == first) else {
                return;
            };
            let edge = node.edges[i];
            match rest.strip_prefix(self.label(edge)) {
                Some(r) => {
                    rest = r;
                    node = &self.nodes[edge.child as usize];
                }
                None => return,
            }
        }
    }
}

/// Splits `/first/rest` into `/first` and `/rest`; `None` when there is no second `/`.
fn first_segment(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix('/')?;
    let end = after.find('/')? + 1;
    Some((&path[..end], &path[end..]))
}

/// The path levels of one host bucket.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    /// Keys without a second `/`.
    short: PathTree,
    /// Keys with one, by first segment, over the rest.
    long: FastMap<PathTree>,
}

impl PathIndex {
    fn insert(&mut self, key: &str, rank: u32) {
        match first_segment(key) {
            Some((first, rest)) => self
                .long
                .entry(first.into())
                .or_default()
                .insert(rest.as_bytes(), rank),
            None => self.short.insert(key.as_bytes(), rank),
        }
    }

    fn candidates(&self, path: &str, visit: &mut impl FnMut(&[u32])) {
        self.short.walk(path.as_bytes(), visit);
        if self.long.is_empty() {
            return;
        }
        if let Some((first, rest)) = first_segment(path) {
            if let Some(tree) = self.long.get(first) {
                tree.walk(rest.as_bytes(), visit);
            }
        }
    }
}

/// Where an entry is filed by host.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostKey<'a> {
    /// An exact host name.
    Exact(&'a str),
    /// A wildcard suffix beginning with `.` (from `*.example.com`).
    Suffix(&'a str),
    /// A wildcard prefix ending with `.` (from `example.*`).
    Prefix(&'a str),
    /// No usable host: the host-agnostic bucket.
    Any,
}

/// The whole index; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Index {
    exact: FastMap<PathIndex>,
    suffix: FastMap<PathIndex>,
    prefix: FastMap<PathIndex>,
    any: PathIndex,
}

impl Index {
    /// Files `rank` under a host key and a path key. Ranks must come in ascending order.
    pub fn insert(&mut self, host: HostKey<'_>, path: &str, rank: u32) {
        let bucket = match host {
            HostKey::Exact(h) => self.exact.entry(h.into()).or_default(),
            HostKey::Suffix(h) => self.suffix.entry(h.into()).or_default(),
            HostKey::Prefix(h) => self.prefix.entry(h.into()).or_default(),
            HostKey::Any => &mut self.any,
        };
        bucket.insert(path, rank);
    }

    /// Calls `visit` with every rank list a request for `host` (without port) and `path` could
    /// find its route in.
    pub fn candidates(&self, host: Option<&str>, path: &str, visit: &mut impl FnMut(&[u32])) {
        if let Some(host) = host {
            if !self.exact.is_empty() {
                if let Some(bucket) = self.exact.get(host) {
                    bucket.candidates(path, visit);
                }
            }
            if !self.suffix.is_empty() || !self.prefix.is_empty() {
                for (i, b) in host.bytes().enumerate() {
                    if b != b'.' {
                        continue;
                    }
                    if let Some(bucket) = host.get(i..).and_then(|s| self.suffix.get(s)) {
                        bucket.candidates(path, visit);
                    }
                    if let Some(bucket) = host.get(..=i).and_then(|s| self.prefix.get(s)) {
                        bucket.candidates(path, visit);
                    }
                }
            }
        }
        self.any.candidates(path, visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visited(tree: &PathTree, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        tree.walk(path.as_bytes(), &mut |r: &[u32]| out.extend_from_slice(r));
        out
    }

    #[test]
    fn path_tree_visits_every_key_that_prefixes_the_path() {
        let mut t = PathTree::default();
        for (rank, key) in ["/api/v1", "/api", "/", "/apix", "", "/api/v1/users", "/b"]
            .iter()
            .enumerate()
        {
            t.insert(key.as_bytes(), rank as u32);
        }
        assert_eq!(visited(&t, "/api/v1/users/7"), vec![4, 2, 1, 0, 5]);
        assert_eq!(visited(&t, "/apix"), vec![4, 2, 1, 3]);
        assert_eq!(visited(&t, "/ap"), vec![4, 2]);
        assert_eq!(visited(&t, "/b"), vec![4, 2, 6]);
        assert_eq!(visited(&t, ""), vec![4]);
    }

    #[test]
    fn path_tree_keeps_ranks_ascending_without_duplicates() {
        let mut t = PathTree::default();
        t.insert(b"/a", 1);
        t.insert(b"/a", 1);
        t.insert(b"/a", 3);
        assert_eq!(visited(&t, "/a"), vec![1, 3]);
    }

    #[test]
    fn first_segment_splits_at_the_second_slash() {
        assert_eq!(first_segment("/svc1/v1"), Some(("/svc1", "/v1")));
        assert_eq!(first_segment("/users/"), Some(("/users", "/")));
        assert_eq!(first_segment("//x"), Some(("/", "/x")));
        assert_eq!(first_segment("/svc1"), None);
        assert_eq!(first_segment(""), None);
        assert_eq!(first_segment("svc/x"), None);
    }

    #[test]
    fn path_index_finds_short_and_long_keys() {
        let mut ix = PathIndex::default();
        for (rank, key) in [
            "",
            "/",
            "/svc1",
            "/svc1/",
            "/svc1/v1",
            "/svc2/v1",
            "/svc10/v1",
        ]
        .iter()
        .enumerate()
        {
            ix.insert(key, rank as u32);
        }
        let mut seen = Vec::new();
        ix.candidates("/svc1/v1/x", &mut |r: &[u32]| seen.extend_from_slice(r));
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        let mut seen = Vec::new();
        ix.candidates("/svc10", &mut |r: &[u32]| seen.extend_from_slice(r));
        assert_eq!(seen, vec![0, 1, 2]);
    }

    #[test]
    fn index_selects_buckets_by_exact_and_wildcard_host() {
        let mut ix = Index::default();
        ix.insert(HostKey::Exact("a.example.com"), "/", 0);
        ix.insert(HostKey::Suffix(".example.com"), "/", 1);
        ix.insert(HostKey::Prefix("a."), "/", 2);
        ix.insert(HostKey::Any, "", 3);
        ix.insert(HostKey::Exact("b.example.com"), "/", 4);
        let mut seen = Vec::new();
        ix.candidates(Some("a.example.com"), "/x", &mut |r: &[u32]| {
            seen.extend_from_slice(r)
        });
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3]);
        let mut seen = Vec::new();
        ix.candidates(None, "/x", &mut |r: &[u32]| seen.extend_from_slice(r));
        assert_eq!(seen, vec![3]);
    }
}
