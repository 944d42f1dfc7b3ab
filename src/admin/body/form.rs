//! The form tree that `application/x-www-form-urlencoded` and `multipart/form-data` bodies
//! decode into, and the urlencoded parser.
//!
//! A form field's name is a path: `a.b`, `a[b]`, `a[]`, `a[1]` and mixes such as
//! `config.headers[1]` (Kong's `kong/api/arguments_decoder.lua`). Each field is inserted into a
//! tree of [`Node`]s whose leaves are still text: whether `"1"` is a number, a string or a
//! one-element array depends on the target schema, which [`super::coerce`] applies later.
//!
//! Key syntax, as parsed by [`split_key`]:
//! * the first character always belongs to the parameter name, which runs to the first `[` or
//!   `.` after it (so `[x]` and `.a` are plain names, as in Kong);
//! * `.name` and `[name]` descend into a named child; a bracket may hold dots (`a[b.c]`);
//! * `[]` appends; `[7]` and `.7` are indexes, which only order the elements (Kong's are Lua
//!   positions; here they need not be dense, and `a[1000000]` is a one-element array);
//! * `%5B`…`%5D` left in a decoded name (double-encoded brackets) count as `[`…`]`;
//! * anything else (`a..b`, `a.`, `a[b`, `a[b]c`, more than [`MAX_DEPTH`] steps) makes the
//!   whole key one literal name, which validation then reports as an unknown field.

use std::borrow::Cow;

use super::BodyError;

/// Most fields a form body may carry; Kong answers 400 "Too many arguments" past 1000.
pub(super) const MAX_FIELDS: usize = 1000;

/// Most steps in one key path; deeper keys are kept as literal names (bounds recursion).
pub(super) const MAX_DEPTH: usize = 32;

/// Longest run of digits read as an index (keeps it within `u64`).
const MAX_INDEX_DIGITS: usize = 18;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// `.name` or `[name]`, and always the first step.
    Name(String),
    /// `[7]` or `.7`: a position among the elements.
    Index(u64),
    /// `[]`, or a repeated key: the next element.
    Append,
}

/// A node of the form tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// A field's value, still text.
    Text(String),
    /// A urlencoded key without `=` (`a&b=1`): nginx, hence Kong, reads it as `true`.
    Flag,
    /// Children in arrival order; a step appears at most once unless it is [`Seg::Append`].
    Branch(Vec<(Seg, Node)>),
}

impl Node {
    /// Adds another value where this one already is: a repeated key makes a list.
    fn push(&mut self, value: Node) {
        if let Some(children) = self.branch_mut() {
            children.push((Seg::Append, value));
        }
    }

    /// This node as a branch; a leaf first becomes the first element of a new branch, so this
    /// is always `Some`.
    fn branch_mut(&mut self) -> Option<&mut Vec<(Seg, Node)>> {
        if !matches!(self, Node::Branch(_)) {
            let leaf = std::mem::replace(self, Node::Branch(Vec::new()));
            *self = Node::Branch(vec![(Seg::Append, leaf)]);
        }
        match self {
            Node::Branch(children) => Some(children),
            Node::Text(_) | Node::Flag => None,
        }
    }
}

/// A decoded form body: top-level names to nodes, values still text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form {
    /// Top-level entries; every step is a [`Seg::Name`].
    pub(super) root: Vec<(Seg, Node)>,
    /// Fields added so far (for [`MAX_FIELDS`]).
    fields: usize,
}

impl Form {
    /// Adds the field `key` (a raw, percent-decoded name) with `value`.
    pub(super) fn add(&mut self, key: &str, value: Node) -> Result<(), BodyError> {
        self.fields += 1;
        if self.fields > MAX_FIELDS {
            return Err(BodyError::TooManyArguments);
        }
        let path = split_key(key);
        insert(&mut self.root, &path, value);
        Ok(())
    }

    /// The text of the top-level field `name`, when it is a single value.
    pub(super) fn text(&self, name: &str) -> Option<&str> {
        self.root.iter().find_map(|(seg, node)| match (seg, node) {
            (Seg::Name(n), Node::Text(t)) if n == name => Some(t.as_str()),
            _ => None,
        })
    }

    /// Whether the body carried no field.
    pub(super) fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

/// Parses an `application/x-www-form-urlencoded` body.
///
/// Pairs are split on `&`; `+` is a space; invalid UTF-8 after percent-decoding is replaced.
/// As in nginx, a pair with an empty name is dropped and a name without `=` is a flag.
pub(super) fn urlencoded(body: &[u8]) -> Result<Form, BodyError> {
    let mut form = Form::default();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], Some(&pair[i + 1..])),
            None => (pair, None),
        };
        let key = unescape(key);
        if key.is_empty() {
            continue;
        }
        let value = value.map_or(Node::Flag, |v| Node::Text(unescape(v)));
        form.add(&key, value)?;
    }
    Ok(form)
}

/// Decodes one urlencoded component: `+` → space, then `%XX`.
fn unescape(raw: &[u8]) -> String {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    percent_encoding::percent_decode(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a field name into its path; the first step is always a name.
pub(super) fn split_key(raw: &str) -> Vec<Seg> {
    let key = unescape_brackets(raw);
    parse_path(&key).unwrap_or_else(|| vec![Seg::Name(key.into_owned())])
}

/// The path of a well-formed key, or `None` to keep the key literal.
fn parse_path(key: &str) -> Option<Vec<Seg>> {
    let first = key.chars().next()?.len_utf8();
    let name_end = key[first..]
        .find(['[', '.'])
        .map_or(key.len(), |i| i + first);
    let mut path = vec![Seg::Name(key[..name_end].to_owned())];
    let mut rest = &key[name_end..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['[', '.']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            path.push(step(&after[..end]));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            path.push(match &after[..end] {
                "" => Seg::Append,
                inner => step(inner),
            });
            rest = &after[end + 1..];
        } else {
            // Text after a `]` that opens no new step, e.g. `a[b]c`.
            return None;
        }
        if path.len() > MAX_DEPTH {
            return None;
        }
    }
    Some(path)
}

/// A non-empty step: digits are an index, anything else a name.
fn step(s: &str) -> Seg {
    if s.len() <= MAX_INDEX_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.parse() {
            return Seg::Index(n);
        }
    }
    Seg::Name(s.to_owned())
}

/// Turns each `%5B…%5D` pair (any case, shortest match) into `[…]`.
fn unescape_brackets(key: &str) -> Cow<'_, str> {
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` index `key`.
    let lower = key.to_ascii_lowercase();
    let Some(mut open) = lower.find("%5b") else {
        return Cow::Borrowed(key);
    };
    let mut out = String::with_capacity(key.len());
    let mut done = 0;
    while let Some(close) = lower[open + 3..].find("%5d").map(|i| i + open + 3) {
        out.push_str(&key[done..open]);
        out.push('[');
        out.push_str(&key[open + 3..close]);
        out.push(']');
        done = close + 3;
        match lower[done..].find("%5b") {
            Some(i) => open = done + i,
            None => break,
        }
    }
    out.push_str(&key[done..]);
    Cow::Owned(out)
}

/// Inserts `value` at `path` below `branch`.
fn insert(branch: &mut Vec<(Seg, Node)>, path: &[Seg], value: Node) {
    let Some((seg, rest)) = path.split_first() else {
        return;
    };
    let found = match seg {
        Seg::Append => None,
        _ => branch.iter().position(|(s, _)| s == seg),
    };
    if rest.is_empty() {
        match found {
            Some(i) => branch[i].1.push(value),
            None => branch.push((seg.clone(), value)),
        }
        return;
    }
    let i = match found {
        Some(i) => i,
        None => {
            branch.push((seg.clone(), Node::Branch(Vec::new())));
            branch.len() - 1
        }
    };
    if let Some(children) = branch[i].1.branch_mut() {
        insert(children, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Seg {
        Seg::Name(s.to_owned())
    }
    fn text(s: &str) -> Node {
        Node::Text(s.to_owned())
    }

    #[test]
    fn keys_split_on_dots_and_brackets() {
        assert_eq!(split_key("a"), vec![name("a")]);
        assert_eq!(split_key("a.b"), vec![name("a"), name("b")]);
        assert_eq!(split_key("a[b]"), vec![name("a"), name("b")]);
        assert_eq!(split_key("a[]"), vec![name("a"), Seg::Append]);
        assert_eq!(split_key("a[1]"), vec![name("a"), Seg::Index(1)]);
        assert_eq!(split_key("a.2"), vec![name("a"), Seg::Index(2)]);
        assert_eq!(
            split_key("config.headers[1]"),
            vec![name("config"), name("headers"), Seg::Index(1)]
        );
        assert_eq!(
            split_key("a[b.c].d[][e]"),
            vec![name("a"), name("b.c"), name("d"), Seg::Append, name("e")]
        );
    }

    #[test]
    fn double_encoded_brackets_are_understood() {
        assert_eq!(split_key("a%5Bb%5D"), vec![name("a"), name("b")]);
        assert_eq!(split_key("a%5b%5d"), vec![name("a"), Seg::Append]);
        assert_eq!(
            split_key("a%5B1%5D%5Bx%5D"),
            vec![name("a"), Seg::Index(1), name("x")]
        );
        // An unpaired one stays as it is.
        assert_eq!(split_key("a%5Bb"), vec![name("a%5Bb")]);
    }

    #[test]
    fn malformed_keys_stay_literal() {
        for key in ["a..b", "a.", "a[b", "a[b]c", ".", "a.[b]"] {
            assert_eq!(split_key(key), vec![name(key)], "{key}");
        }
        // The first character never starts a step.
        assert_eq!(split_key(".a"), vec![name(".a")]);
        assert_eq!(split_key("[x]"), vec![name("[x]")]);
        assert_eq!(split_key("[x][y]"), vec![name("[x]"), name("y")]);
        let deep = format!("a{}", "[b]".repeat(MAX_DEPTH));
        assert_eq!(split_key(&deep), vec![name(&deep)]);
    }

    #[test]
    fn long_digit_runs_are_names() {
        let digits = "1".repeat(MAX_INDEX_DIGITS + 1);
        assert_eq!(
            split_key(&format!("a[{digits}]")),
            vec![name("a"), name(&digits)]
        );
    }

    #[test]
    fn urlencoded_decodes_plus_percent_and_flags() {
        let form = urlencoded(b"a=x+y%21&b&=dropped&&c=%E2%82%AC&d=").expect("form");
        assert_eq!(
            form.root,
            vec![
                (name("a"), text("x y!")),
                (name("b"), Node::Flag),
                (name("c"), text("€")),
                (name("d"), text("")),
            ]
        );
        assert_eq!(form.text("a"), Some("x y!"));
        assert_eq!(form.text("b"), None);
    }

    #[test]
    fn repeated_keys_and_appends_make_lists() {
        let form = urlencoded(b"a=x&a=y&b[]=1&b[]=2").expect("form");
        assert_eq!(
            form.root,
            vec![
                (
                    name("a"),
                    Node::Branch(vec![(Seg::Append, text("x")), (Seg::Append, text("y"))])
                ),
                (
                    name("b"),
                    Node::Branch(vec![(Seg::Append, text("1")), (Seg::Append, text("2"))])
                ),
            ]
        );
    }

    #[test]
    fn a_leaf_under_a_branch_becomes_an_element() {
        let form = urlencoded(b"a=1&a.b=2").expect("form");
        assert_eq!(
            form.root,
            vec![(
                name("a"),
                Node::Branch(vec![(Seg::Append, text("1")), (name("b"), text("2"))])
            )]
        );
    }

    #[test]
    fn too_many_fields_is_an_error() {
        let ok = "a=1&".repeat(MAX_FIELDS);
        assert!(urlencoded(ok.as_bytes()).is_ok());
        let over = "a=1&".repeat(MAX_FIELDS + 1);
        assert!(matches!(
            urlencoded(over.as_bytes()),
            Err(BodyError::TooManyArguments)
        ));
    }
}
