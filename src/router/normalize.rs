//! Request path normalization, done by the proxy before it asks the router: routes are matched,
//! captures taken and upstream paths built on the normalized path, never on the raw one.
//!
//! The rules, in order:
//!
//! 1. percent-escapes are decoded, except those of reserved characters
//!    (`!*'();:@&=+$,/?%#[]`), which stay escaped with upper-case hex digits: `%6a` → `j`,
//!    `%20` → space, `%2f` → `%2F`;
//! 2. dot segments are resolved (`/a/./b/../c` → `/a/c`; `%2e` counts as `.` since it was
//!    decoded in step 1), never climbing above the root;
//! 3. runs of `/` are merged (`//a///b` → `/a/b`).
//!
//! Decoding can produce bytes that are not UTF-8 (`%FF`); such a path matches no route, and the
//! proxy answers 404, as Kong does.
//!
//! The datastore's `typedefs::normalize_path` is a different, stricter function (it checks that
//! stored route paths are already normal and decodes only unreserved characters); requests go
//! through this one.

use std::borrow::Cow;

/// Characters whose escapes are kept, since decoding them would change the path's meaning.
const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (
                path.get(i + 1).copied().and_then(hex),
                path.get(i + 2).copied().and_then(hex),
            ) {
                let v = hi << 4 | lo;
                if RESERVED.contains(&v) {
                    out.push(b'%');
                    out.push(path[i + 1].to_ascii_uppercase());
                    out.push(path[i + 2].to_ascii_uppercase());
                } else {
                    out.push(v);
                }
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn contains_double_slash(b: &[u8]) -> bool {
    b.windows(2).any(|w| w == b"//")
}

/// Resolves dot segments and merges slashes.
fn resolve(mut input: &[u8]) -> Vec<u8> {
    fn pop(out: &mut Vec<u8>, starts: &mut Vec<usize>) {
        if let Some(s) = starts.pop() {
            out.truncate(s);
        }
    }
    let mut out = Vec::with_capacity(input.len());
    // Where each output segment starts, so `..` can drop the last one.
    let mut starts: Vec<usize> = Vec::new();
    while !input.is_empty() {
        if input == b"/." {
            input = b"/";
        } else if input == b"/.." {
            input = b"/";
            pop(&mut out, &mut starts);
        } else if input == b"." || input == b".." {
            input = b"";
        } else if let Some(rest) = input.strip_prefix(b"../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix(b"./") {
            input = rest;
        } else if input.starts_with(b"/./") {
            input = &input[2..];
        } else if input.starts_with(b"/../") {
            input = &input[3..];
            pop(&mut out, &mut starts);
        } else if input.starts_with(b"//") {
            input = &input[1..];
        } else {
            let end = input
                .iter()
                .skip(1)
                .position(|&b| b == b'/')
                .map_or(input.len(), |p| p + 1);
            starts.push(out.len());
            out.extend_from_slice(&input[..end]);
            input = &input[end..];
        }
    }
    out
}

/// Normalizes a request path (without its query string) for routing; see the module docs for
/// the rules. Borrows when nothing changes, which is the common case. `None` when decoding
/// produced bytes that are not UTF-8.
pub fn normalize_path(path: &str) -> Option<Cow<'_, str>> {
    if path.is_empty() || path == "/" {
        return Some(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let decoded: Cow<'_, [u8]> = if bytes.contains(&b'%') {
        Cow::Owned(decode(bytes))
    } else {
        Cow::Borrowed(bytes)
    };
    let needs_resolving = decoded.contains(&b'.') || contains_double_slash(&decoded);
    let out: Cow<'_, [u8]> = if needs_resolving {
        Cow::Owned(resolve(&decoded))
    } else {
        decoded
    };
    match out {
        Cow::Borrowed(_) => Some(Cow::Borrowed(path)),
        Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    fn n(p: &str) -> Option<String> {
        normalize_path(p).map(|c| c.into_owned())
    }

    #[test]
    fn normalize_decodes_unreserved_and_other_characters() {
        assert_eq!(
            n("/users/%6aohn%20doe/profile").as_deref(),
            Some("/users/john doe/profile")
        );
        assert_eq!(n("/%7euser").as_deref(), Some("/~user"));
        assert_eq!(n("/caf%C3%A9").as_deref(), Some("/café"));
    }

    #[test]
    fn normalize_keeps_reserved_escapes_upper_cased() {
        assert_eq!(n("/a%2fb").as_deref(), Some("/a%2Fb"));
        assert_eq!(n("/a%3Fb%25").as_deref(), Some("/a%3Fb%25"));
        assert_eq!(n("/a%zz").as_deref(), Some("/a%zz"));
        assert_eq!(n("/a%4").as_deref(), Some("/a%4"));
    }

    #[test]
    fn normalize_resolves_dot_segments_and_merges_slashes() {
        assert_eq!(n("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(n("/a/..").as_deref(), Some("/"));
        assert_eq!(n("/../../a").as_deref(), Some("/a"));
        assert_eq!(n("//a///b//").as_deref(), Some("/a/b/"));
        assert_eq!(n("/a/%2e%2E/b").as_deref(), Some("/b"));
        assert_eq!(n("/route./req").as_deref(), Some("/route./req"));
        assert_eq!(n("/route%2E/req").as_deref(), Some("/route./req"));
        assert_eq!(n("/a/.").as_deref(), Some("/a/"));
    }

    #[test]
    fn normalize_borrows_when_nothing_changes() {
        assert!(matches!(
            normalize_path("/a/b/c"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        assert!(matches!(
            normalize_path("/"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn normalize_refuses_decoded_invalid_utf8() {
        assert_eq!(n("/%FF"), None);
        assert_eq!(n("/%C3"), None);
    }
}
