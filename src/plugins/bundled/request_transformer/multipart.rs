//! `multipart/form-data` bodies, enough to rename, remove, replace and add fields: parts keep
//! their own headers and bytes (file parts included); a field set by the plugin is a simple
//! part (`Content-Disposition: form-data; name="..."`). The boundary is kept.

use bytes::{BufMut, Bytes, BytesMut};

/// One part.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: String,
    /// The header block as received (without the blank line).
    head: Vec<u8>,
    body: Vec<u8>,
}

/// A parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

/// The `boundary` parameter of a `Content-Type`.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The `name` of a part's `Content-Disposition`.
fn part_name(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    let line = head
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    line.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("name")).then(|| v.trim().trim_matches('"').to_owned())
    })
}

impl Multipart {
    /// Parses `body` with `boundary`; an empty body has no part.
    pub fn parse(body: &[u8], boundary: &str) -> Option<Multipart> {
        let delimiter = format!("--{boundary}").into_bytes();
        let mut parts = Vec::new();
        let mut at = match find(body, &delimiter, 0) {
            Some(i) => i + delimiter.len(),
            None if body.is_empty() => {
                return Some(Multipart {
                    boundary: boundary.to_owned(),
                    parts,
                })
            }
            None => return None,
        };
        loop {
            // `--` after a delimiter closes the body.
            if body[at..].starts_with(b"--") {
                break;
            }
            let start = if body[at..].starts_with(b"\r\n") {
                at + 2
            } else {
                at
            };
            let next = find(body, &delimiter, start)?;
            // The part ends with CRLF before the next delimiter.
            let end = if next >= 2 && &body[next - 2..next] == b"\r\n" {
                next - 2
            } else {
                next
            };
            let raw = &body[start..end.max(start)];
            let (head, content) = match find(raw, b"\r\n\r\n", 0) {
                Some(i) => (&raw[..i], &raw[i + 4..]),
                None => (raw, &raw[raw.len()..]),
            };
            parts.push(Part {
                name: part_name(head).unwrap_or_default(),
                head: head.to_vec(),
                body: content.to_vec(),
            });
            at = next + delimiter.len();
            if at >= body.len() {
                break;
            }
        }
        Some(Multipart {
            boundary: boundary.to_owned(),
            parts,
        })
    }

    /// Whether a part is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.parts.iter().any(|p| p.name == name)
    }

    /// The body of the first part called `name`.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.body.as_slice())
    }

    /// Removes every part called `name`.
    pub fn delete(&mut self, name: &str) {
        self.parts.retain(|p| p.name != name);
    }

    /// Sets `name` to a simple field: the first part of that name gets the value, or a new part
    /// is added at the end.
    pub fn set_simple(&mut self, name: &str, value: &[u8]) {
        if let Some(p) = self.parts.iter_mut().find(|p| p.name == name) {
            p.body = value.to_vec();
            return;
        }
        let escaped = name.replace('"', "\\\"");
        self.parts.push(Part {
            name: name.to_owned(),
            head: format!("Content-Disposition: form-data; name=\"{escaped}\"").into_bytes(),
            body: value.to_vec(),
        });
    }

    /// The body, encoded again.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        for p in &self.parts {
            out.put_slice(b"--");
            out.put_slice(self.boundary.as_bytes());
            out.put_slice(b"\r\n");
            out.put_slice(&p.head);
            out.put_slice(b"\r\n\r\n");
            out.put_slice(&p.body);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"--\r\n");
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XyZ--\r\n";

    #[test]
    fn parse_change_and_encode() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        let mut m = Multipart::parse(BODY, "XyZ").expect("parses");
        assert_eq!(m.value("a"), Some(&b"1"[..]));
        assert_eq!(m.value("f"), Some(&b"\x00\x01"[..]));
        assert_eq!(m.encode().as_ref(), BODY, "round trip");
        m.set_simple("a", b"2");
        m.set_simple("new", b"n");
        m.delete("f");
        let again = Multipart::parse(&m.encode(), "XyZ").expect("parses");
        assert_eq!(again.value("a"), Some(&b"2"[..]));
        assert_eq!(again.value("new"), Some(&b"n"[..]));
        assert!(!again.contains("f"));
        assert!(Multipart::parse(b"", "XyZ").is_some_and(|m| m.parts.is_empty()));
        assert!(Multipart::parse(b"garbage", "XyZ").is_none());
    }
}
