//! The candidate index: which entries a request could possibly match, found without looking at
//! the others.
//!
//! Two levels. First the `Host`: entries whose hosts are exact names sit in a hash map under each
//! name, `*.example.com` entries under the suffix `.example.com`, `example.*` entries under the
//! prefix `example.`, and entries without hosts (or with hosts that cannot be indexed) in one
//! host-agnostic bucket. Each bucket then holds a radix tree keyed by path: a prefix path under
//! itself, a regex path under the literal text all its matches begin with, and an entry without
//! paths at the root. A lookup visits the buckets the request's host selects and, in each, the
//! tree nodes along the request path: the visited lists are exactly the entries whose host and
//! path keys are prefixes of (or equal to) the request's, whatever the number of routes.
//!
//! Each list holds entry ranks in ascending order (rank 0 is the highest priority), so a visitor
//! can stop at the first entry that matches, or as soon as ranks pass the best match so far.

use std::collections::HashMap;

/// A radix tree from byte strings to rank lists.
#[derive(Debug)]
pub(crate) struct PathTree {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// Outgoing edges, sorted by their label's first byte (unique per node).
    edges: Vec<Edge>,
    /// Entries keyed exactly here, ascending.
    ranks: Vec<u32>,
}

#[derive(Debug)]
struct Edge {
    /// Never empty.
    label: Box<[u8]>,
    child: u32,
}

impl Default for PathTree {
    fn default() -> Self {
        PathTree {
            nodes: vec![Node::default()],
        }
    }
}

impl PathTree {
    fn push_node(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        // Node counts stay far below u32::MAX (one per distinct key byte run).
        u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
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
            let edges = &self.nodes[at].edges;
            match edges.binary_search_by_key(&first, |e| e.label[0]) {
                Err(pos) => {
                    let child = self.push_node(Node {
                        edges: Vec::new(),
                        ranks: vec![rank],
                    });
                    self.nodes[at].edges.insert(
                        pos,
                        Edge {
                            label: key.into(),
                            child,
                        },
                    );
                    return;
                }
                Ok(i) => {
                    let label = &edges[i].label;
                    let common = label.iter().zip(key).take_while(|(a, b)| a == b).count();
                    let child = edges[i].child;
                    if common < label.len() {
                        // Split the edge: a new middle node at the common prefix.
                        let (head, tail) = label.split_at(common);
                        let (head, tail): (Box<[u8]>, Box<[u8]>) = (head.into(), tail.into());
                        let mid = self.push_node(Node {
                            edges: vec![Edge { label: tail, child }],
                            ranks: Vec::new(),
                        });
                        self.nodes[at].edges[i] = Edge {
                            label: head,
                            child: mid,
                        };
                        at = mid as usize;
                    } else {
                        at = child as usize;
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
            let Ok(i) = node.edges.binary_search_by_key(&first, |e| e.label[0]) else {
                return;
            };
            let edge = &node.edges[i];
            match rest.strip_prefix(&*edge.label) {
                Some(r) => {
                    rest = r;
                    node = &self.nodes[edge.child as usize];
                }
                None => return,
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

/// The two-level index; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Index {
    exact: HashMap<Box<str>, PathTree>,
    suffix: HashMap<Box<str>, PathTree>,
    prefix: HashMap<Box<str>, PathTree>,
    any: PathTree,
}

impl Index {
    /// Files `rank` under a host key and a path key. Ranks must come in ascending order.
    pub fn insert(&mut self, host: HostKey<'_>, path: &str, rank: u32) {
        let tree = match host {
            HostKey::Exact(h) => self.exact.entry(h.into()).or_default(),
            HostKey::Suffix(h) => self.suffix.entry(h.into()).or_default(),
            HostKey::Prefix(h) => self.prefix.entry(h.into()).or_default(),
            HostKey::Any => &mut self.any,
        };
        tree.insert(path.as_bytes(), rank);
    }

    /// Calls `visit` with every rank list a request for `host` (without port) and `path` could
    /// find its route in.
    pub fn candidates(&self, host: Option<&str>, path: &str, visit: &mut impl FnMut(&[u32])) {
        let path = path.as_bytes();
        if let Some(host) = host {
            if !self.exact.is_empty() {
                if let Some(tree) = self.exact.get(host) {
                    tree.walk(path, visit);
                }
            }
            if !self.suffix.is_empty() || !self.prefix.is_empty() {
                for (i, b) in host.bytes().enumerate() {
                    if b != b'.' {
                        continue;
                    }
                    if let Some(tree) = host.get(i..).and_then(|s| self.suffix.get(s)) {
                        tree.walk(path, visit);
                    }
                    if let Some(tree) = host.get(..=i).and_then(|s| self.prefix.get(s)) {
                        tree.walk(path, visit);
                    }
                }
            }
        }
        self.any.walk(path, visit);
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
