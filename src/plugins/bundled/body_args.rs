//! Named arguments in a request body, as Kong's `kong.request.get_body` reads them: URL-encoded
//! forms, JSON objects and `multipart/form-data`, chosen by `Content-Type`. Also writes the
//! body back without one argument (for plugins that hide credentials).

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// What a body holds under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    /// Nothing.
    Absent,
    /// One text value.
    Text(String),
    /// Several values, or a JSON array or object: no single text.
    Many,
    /// A value that is not text (a JSON number, boolean or null).
    Other,
}

/// A parsed body.
#[derive(Debug)]
pub(super) enum BodyArgs<'a> {
    /// `application/x-www-form-urlencoded`.
    Form(&'a [u8]),
    /// `application/json` holding an object.
    Json(serde_json::Map<String, Value>),
    /// `multipart/form-data`.
    Multipart(Multipart<'a>),
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl<'a> BodyArgs<'a> {
    /// Parses `body` per `content_type`; `None` when the type is unsupported or the body does
    /// not parse (Kong then treats the body as empty).
    pub fn parse(content_type: Option<&str>, body: &'a [u8]) -> Option<BodyArgs<'a>> {
        let content_type = content_type?;
        match media_type(content_type).as_str() {
            "application/x-www-form-urlencoded" => Some(BodyArgs::Form(body)),
            "application/json" => match serde_json::from_slice(body).ok()? {
                Value::Object(map) => Some(BodyArgs::Json(map)),
                _ => None,
            },
            "multipart/form-data" => {
                Multipart::parse(boundary(content_type)?.as_bytes(), body).map(BodyArgs::Multipart)
            }
            _ => None,
        }
    }

    /// The argument `name`.
    pub fn get(&self, name: &str) -> Arg {
        match self {
            BodyArgs::Form(body) => {
                let mut found = Arg::Absent;
                for (k, v) in form_urlencoded::parse(body) {
                    if k == name {
                        found = match found {
                            Arg::Absent => Arg::Text(v.into_owned()),
                            _ => return Arg::Many,
                        };
                    }
                }
                found
            }
            BodyArgs::Json(map) => match map.get(name) {
                None => Arg::Absent,
                Some(Value::String(s)) => Arg::Text(s.clone()),
                Some(Value::Array(_) | Value::Object(_)) => Arg::Many,
                Some(_) => Arg::Other,
            },
            BodyArgs::Multipart(m) => {
                let mut values = m.parts.iter().filter(|p| p.name == name.as_bytes());
                match (values.next(), values.next()) {
                    (None, _) => Arg::Absent,
                    (Some(part), None) => {
                        Arg::Text(String::from_utf8_lossy(&m.body[part.value.clone()]).into_owned())
                    }
                    (Some(_), Some(_)) => Arg::Many,
                }
            }
        }
    }

    /// The body without argument `name` (other arguments kept as they were sent where the
    /// format allows).
    pub fn without(&self, name: &str) -> Bytes {
        match self {
            BodyArgs::Form(body) => {
                let kept: Vec<&[u8]> = body
                    .split(|b| *b == b'&')
                    .filter(|pair| {
                        let key = pair.split(|b| *b == b'=').next().unwrap_or_default();
                        form_urlencoded::parse(key)
                            .next()
                            .is_none_or(|(k, _)| k != name)
                    })
                    .collect();
                Bytes::from(kept.join(&b'&'))
            }
            BodyArgs::Json(map) => {
                let mut map = map.clone();
                map.remove(name);
                Bytes::from(Value::Object(map).to_string())
            }
            BodyArgs::Multipart(m) => {
                let mut out = BytesMut::with_capacity(m.body.len());
                let mut at = 0;
                for part in m.parts.iter().filter(|p| p.name == name.as_bytes()) {
                    out.extend_from_slice(&m.body[at..part.whole.start]);
                    at = part.whole.end;
                }
                out.extend_from_slice(&m.body[at..]);
                out.freeze()
            }
        }
    }
}

/// The `boundary` parameter of a multipart `Content-Type`.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// A `multipart/form-data` body split into its parts.
#[derive(Debug)]
pub(super) struct Multipart<'a> {
    body: &'a [u8],
    parts: Vec<Part<'a>>,
}

/// One part: its field name, its value, and the bytes to drop to remove it (its delimiter
/// line through the CRLF that ends its content).
#[derive(Debug)]
struct Part<'a> {
    name: &'a [u8],
    value: Range<usize>,
    whole: Range<usize>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

impl<'a> Multipart<'a> {
    fn parse(boundary: &[u8], body: &'a [u8]) -> Option<Multipart<'a>> {
        let delimiter = [b"--", boundary].concat();
        let mut parts = Vec::new();
        // Each part starts at a delimiter line and runs to the CRLF before the next one.
        let mut start = find(body, &delimiter, 0)?;
        loop {
            let after = start + delimiter.len();
            if body.get(after..after + 2) == Some(b"--") {
                break;
            }
            let headers_start = find(body, b"\r\n", after)? + 2;
            let headers_end = find(body, b"\r\n\r\n", headers_start - 2)?;
            let content_start = headers_end + 4;
            let next = find(body, &[b"\r\n", &delimiter[..]].concat(), content_start - 2)?;
            let headers = body.get(headers_start..headers_end).unwrap_or_default();
            if let Some(name) = field_name(headers) {
                parts.push(Part {
                    name,
                    value: content_start.min(next)..next,
                    // With the CRLF that ends it, so the next delimiter line follows cleanly.
                    whole: start..next + 2,
                });
            }
            start = next + 2;
        }
        Some(Multipart { body, parts })
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="..."`.
fn field_name(headers: &[u8]) -> Option<&[u8]> {
    headers.split(|b| *b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|b| *b == b':')?;
        if !line[..colon].eq_ignore_ascii_case(b"content-disposition") {
            return None;
        }
        line[colon + 1..].split(|b| *b == b';').find_map(|param| {
            let param = param.trim_ascii();
            let value = param
                .strip_prefix(b"name=")
                .or_else(|| param.strip_prefix(b"NAME="))?;
            Some(
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let args = BodyArgs::parse(
            Some("application/x-www-form-urlencoded"),
            b"a=1&apikey=k%201&b=2&dup=1&dup=2",
        )
        .expect("form");
        assert_eq!(args.get("apikey"), Arg::Text("k 1".into()));
        assert_eq!(args.get("dup"), Arg::Many);
        assert_eq!(args.get("nope"), Arg::Absent);
        assert_eq!(&args.without("apikey")[..], b"a=1&b=2&dup=1&dup=2");
    }

    #[test]
    fn json() {
        let body = br#"{"apikey":"k","n":1,"l":[1],"o":{}}"#;
        let args = BodyArgs::parse(Some("application/json; charset=utf-8"), body).expect("json");
        assert_eq!(args.get("apikey"), Arg::Text("k".into()));
        assert_eq!(args.get("n"), Arg::Other);
        assert_eq!(args.get("l"), Arg::Many);
        assert_eq!(args.get("o"), Arg::Many);
        let rest: Value = serde_json::from_slice(&args.without("apikey")).expect("json");
        assert_eq!(rest, serde_json::json!({"n": 1, "l": [1], "o": {}}));
        assert!(BodyArgs::parse(Some("application/json"), b"[1]").is_none());
        assert!(BodyArgs::parse(Some("application/json"), b"{").is_none());
        assert!(BodyArgs::parse(Some("text/plain"), b"apikey=k").is_none());
        assert!(BodyArgs::parse(None, b"apikey=k").is_none());
    }

    #[test]
    fn multipart() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\nsecret\r\n\
--XyZ\r\ncontent-disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\
Content-Type: text/plain\r\n\r\nfile\r\nbody\r\n--XyZ--\r\n";
        let args = BodyArgs::parse(Some("multipart/form-data; boundary=\"XyZ\""), body)
            .expect("multipart");
        assert_eq!(args.get("apikey"), Arg::Text("secret".into()));
        assert_eq!(args.get("a"), Arg::Text("1".into()));
        assert_eq!(args.get("f"), Arg::Text("file\r\nbody".into()));
        let rest = args.without("apikey");
        let again = BodyArgs::parse(Some("multipart/form-data; boundary=XyZ"), &rest)
            .expect("still multipart");
        assert_eq!(again.get("apikey"), Arg::Absent);
        assert_eq!(again.get("a"), Arg::Text("1".into()));
        assert_eq!(again.get("f"), Arg::Text("file\r\nbody".into()));
        assert!(BodyArgs::parse(Some("multipart/form-data"), body).is_none());
        assert!(
            BodyArgs::parse(Some("multipart/form-data; boundary=XyZ"), b"--XyZ\r\ntrunc").is_none()
        );
    }
}
