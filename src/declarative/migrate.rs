//! Formats 1.1 and 2.1 brought to 3.0.
//!
//! The only difference that matters here is route paths: before 3.0 any path could be a regex,
//! since 3.0 a regex path starts with `~`. A path made only of `[A-Za-z0-9._~/%-]` cannot be
//! meant as a regex: it is normalized (unreserved characters percent-decoded, other escapes
//! upper-cased, dot segments resolved, repeated slashes merged). Any other path is taken as the
//! regex it was, with `~` in front. Routes are migrated at the top level and inside services.

use serde_json::{Map, Value};

/// Migrates every route path in the document's entity lists.
pub fn route_paths(entities: &mut Map<String, Value>) {
    if let Some(Value::Array(routes)) = entities.get_mut("routes") {
        routes.iter_mut().for_each(route);
    }
    if let Some(Value::Array(services)) = entities.get_mut("services") {
        for service in services {
            if let Some(Value::Array(routes)) = service.get_mut("routes") {
                routes.iter_mut().for_each(route);
            }
        }
    }
}

fn route(route: &mut Value) {
    if let Some(Value::Array(paths)) = route.get_mut("paths") {
        for path in paths {
            if let Value::String(p) = path {
                *p = migrate_path(p);
            }
        }
    }
}

/// One path, 1.1/2.1 rules → 3.0 rules.
pub fn migrate_path(path: &str) -> String {
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~/%-".contains(&b));
    if plain {
        normalize(path)
    } else {
        format!("~{}", decode_unreserved(path))
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes unreserved characters and upper-cases the hex digits of other escapes.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match escape {
            Some(c) if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                out.push(c);
                i += 3;
            }
            Some(_) => {
                out.push(b'%');
                out.extend(bytes[i + 1..i + 3].iter().map(u8::to_ascii_uppercase));
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were rewritten, so the text stays valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// Normalizes a plain path (RFC 3986 §6.2.2 plus merged slashes).
fn normalize(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    if !decoded.starts_with('/') {
        // Not a path at all: leave it for validation to name.
        return decoded;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_normalized() {
        assert_eq!(migrate_path("/api"), "/api");
        assert_eq!(migrate_path("/"), "/");
        assert_eq!(migrate_path("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(migrate_path("/%7euser/%2f"), "/~user/%2F");
        assert_eq!(migrate_path("api"), "api");
    }

    #[test]
    fn anything_else_is_a_regex() {
        assert_eq!(migrate_path("/users/\\d+"), "~/users/\\d+");
        assert_eq!(migrate_path("/v(1|2)/%61"), "~/v(1|2)/a");
        assert_eq!(migrate_path("/é"), "~/é");
    }

    #[test]
    fn broken_escapes_are_kept() {
        assert_eq!(migrate_path("/a%"), "/a%");
        assert_eq!(migrate_path("/a%zz"), "/a%zz");
        assert_eq!(migrate_path("/é%4"), "~/é%4");
    }
}
