//! `multipart/form-data` bodies (RFC 7578 over RFC 2046): each named part is one form field
//! whose value is the part's content.
//!
//! The whole body is in memory (the Admin API reads it before decoding), so this is a plain
//! scan over bytes rather than a streaming parser: find the first delimiter line, then for
//! each part read header lines up to the blank line and the content up to the next delimiter.
//! A delimiter is `--boundary` at the start of a line followed by optional spaces and the line
//! end, or by `--` for the last one; a bare LF is accepted wherever CRLF is expected. Parts
//! without a `name` are skipped; file parts are kept like any other (their content as text).

use std::borrow::Cow;

/// A named part: (field name, content).
pub(super) type Part = (String, String);

/// Why a multipart body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformed {
    /// No opening delimiter line.
    NoDelimiter,
    /// A part's header lines never reach a blank line.
    UnterminatedHeaders,
    /// A part never reaches the next delimiter (a truncated body).
    UnterminatedPart,
}

impl Malformed {
    /// What went wrong, for the client.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Malformed::NoDelimiter => "no boundary delimiter found",
            Malformed::UnterminatedHeaders => "part headers not terminated",
            Malformed::UnterminatedPart => "missing closing boundary",
        }
    }
}

/// The named parts of `body`, in order.
pub(super) fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, Malformed> {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    // The preamble before the first delimiter is ignored.
    let (_, mut pos) = find_delimiter(body, 0, &delimiter).ok_or(Malformed::NoDelimiter)?;
    loop {
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") || rest.is_empty() {
            // The close delimiter; the epilogue after it is ignored.
            return Ok(parts);
        }
        pos = line_end(body, pos).ok_or(Malformed::UnterminatedPart)?;
        let mut name = None;
        loop {
            let nl = find_byte(body, pos, b'\n').ok_or(Malformed::UnterminatedHeaders)?;
            let line = trim_cr(&body[pos..nl]);
            pos = nl + 1;
            if line.is_empty() {
                break;
            }
            if let Some(n) = disposition_name(&String::from_utf8_lossy(line)) {
                name = Some(n);
            }
        }
        let (end, next) =
            find_delimiter(body, pos, &delimiter).ok_or(Malformed::UnterminatedPart)?;
        if let Some(name) = name {
            let content = String::from_utf8_lossy(body.get(pos..end).unwrap_or_default());
            let content = content.into_owned();
            parts.push((name, content));
        }
        pos = next;
    }
}

/// Finds the next delimiter line at or after `from`: returns (where the content before it
/// ends, the position just after `--boundary`). The line break before a delimiter belongs to
/// it; a delimiter right at `from` also counts (the first one without a preamble, or one that
/// follows a part's blank line without the line break it should have).
fn find_delimiter(body: &[u8], from: usize, delimiter: &[u8]) -> Option<(usize, usize)> {
    if is_delimiter(body, from, delimiter) {
        return Some((from, from + delimiter.len()));
    }
    let mut at = from;
    while let Some(nl) = find_byte(body, at, b'\n') {
        if is_delimiter(body, nl + 1, delimiter) {
            let end = if nl > from && body[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            return Some((end, nl + 1 + delimiter.len()));
        }
        at = nl + 1;
    }
    None
}

/// Whether a delimiter starts at `at`: `--boundary`, then `--`, or spaces and a line end, or
/// the end of the body (tolerated as a close delimiter without its `--`).
fn is_delimiter(body: &[u8], at: usize, delimiter: &[u8]) -> bool {
    let Some(rest) = body.get(at..) else {
        return false;
    };
    let Some(after) = rest.strip_prefix(delimiter) else {
        return false;
    };
    after.starts_with(b"--") || after.is_empty() || line_end(after, 0).is_some()
}

/// The position after optional transport padding (spaces, tabs) and one line break at `at`;
/// the end of the body also counts.
fn line_end(body: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    while matches!(body.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match body.get(i..) {
        Some([]) => Some(i),
        Some([b'\n', ..]) => Some(i + 1),
        Some([b'\r', b'\n', ..]) => Some(i + 2),
        _ => None,
    }
}

fn find_byte(body: &[u8], from: usize, byte: u8) -> Option<usize> {
    body.get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| i + from)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The field name of a `Content-Disposition` header line, if that is what `line` is.
fn disposition_name(line: &str) -> Option<String> {
    let (header, value) = line.split_once(':')?;
    if !header.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    let mut name = None;
    // The first item is the disposition type (`form-data`); the rest are parameters.
    for (key, value) in params(value).skip(1) {
        if key.eq_ignore_ascii_case("name*") {
            // RFC 5987 `charset'lang'pct-encoded`; it wins over a plain `name`.
            if let Some(v) = extended_value(&value) {
                return Some(v);
            }
        } else if key.eq_ignore_ascii_case("name") && name.is_none() {
            name = Some(value.into_owned());
        }
    }
    name
}

/// Decodes an RFC 5987 extended value in UTF-8 (or US-ASCII).
fn extended_value(value: &str) -> Option<String> {
    let mut it = value.splitn(3, '\'');
    let charset = it.next()?;
    let _language = it.next()?;
    let encoded = it.next()?;
    if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii")) {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Splits a header value into `;`-separated items `(key, value)`, honouring quoted strings
/// (with `\` escapes). An item without `=` has an empty value; keys are trimmed.
pub(super) fn params(header: &str) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    split_items(header).into_iter().map(|item| {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        (key.trim(), unquote(value.trim()))
    })
}

/// Splits on `;` outside quoted strings.
fn split_items(header: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                items.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&header[start..]);
    items
}

/// The content of a quoted string (escapes removed), or the token as it is.
fn unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, content: &str) -> Part {
        (name.to_owned(), content.to_owned())
    }

    #[test]
    fn reads_named_parts_in_order() {
        let body = "--XyZ\r\n\
            Content-Disposition: form-data; name=\"name\"\r\n\
            \r\n\
            my-service\r\n\
            --XyZ\r\n\
            content-disposition: form-data; name=\"url\"\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            http://example.com\r\n\
            --XyZ--\r\n";
        assert_eq!(
            parts(body.as_bytes(), "XyZ"),
            Ok(vec![
                part("name", "my-service"),
                part("url", "http://example.com")
            ])
        );
    }

    #[test]
    fn keeps_content_bytes_lines_and_empty_values() {
        let body = "preamble\r\n--b\r\n\
            Content-Disposition: form-data; name=\"cert\"; filename=\"c.pem\"\r\n\r\n\
            line1\r\nline2\r\n--bx not a delimiter\r\n\r\n\
            --b \t\r\n\
            Content-Disposition: form-data; name=empty\r\n\r\n\
            \r\n\
            --b--\r\nepilogue";
        assert_eq!(
            parts(body.as_bytes(), "b"),
            Ok(vec![
                part("cert", "line1\r\nline2\r\n--bx not a delimiter\r\n"),
                part("empty", ""),
            ])
        );
    }

    #[test]
    fn accepts_bare_lf_and_skips_unnamed_parts() {
        let body = "--b\nContent-Type: text/plain\n\nanonymous\n--b\n\
            Content-Disposition: form-data; name=\"a\"\n\n1\n--b--";
        assert_eq!(parts(body.as_bytes(), "b"), Ok(vec![part("a", "1")]));
    }

    #[test]
    fn quoted_and_extended_names() {
        assert_eq!(
            disposition_name(r#"Content-Disposition: form-data; name="a;b \"c\"""#),
            Some("a;b \"c\"".to_owned())
        );
        assert_eq!(
            disposition_name("Content-Disposition: form-data; name=x; name*=UTF-8''%E2%82%AC"),
            Some("€".to_owned())
        );
        assert_eq!(disposition_name("Content-Type: form-data; name=x"), None);
        assert_eq!(disposition_name("Content-Disposition: form-data"), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(parts(b"", "b"), Err(Malformed::NoDelimiter));
        assert_eq!(
            parts(b"--a\r\n\r\nx\r\n--a--", "b"),
            Err(Malformed::NoDelimiter)
        );
        assert_eq!(
            parts(b"--b\r\nContent-Disposition: form-data; name=a", "b"),
            Err(Malformed::UnterminatedHeaders)
        );
        assert_eq!(
            parts(
                b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue",
                "b"
            ),
            Err(Malformed::UnterminatedPart)
        );
        assert_eq!(parts(b"--bgarbage", "b"), Err(Malformed::NoDelimiter));
    }

    #[test]
    fn an_empty_multipart_body_has_no_parts() {
        assert_eq!(parts(b"--b--\r\n", "b"), Ok(vec![]));
        // A close delimiter without its trailing `--` at the very end is tolerated.
        assert_eq!(
            parts(
                b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b",
                "b"
            ),
            Ok(vec![part("a", "1")])
        );
    }

    #[test]
    fn params_split_outside_quotes() {
        let got: Vec<_> = params(r#"multipart/form-data; boundary="a;b"; charset=utf-8"#)
            .map(|(k, v)| (k.to_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("multipart/form-data".to_owned(), String::new()),
                ("boundary".to_owned(), "a;b".to_owned()),
                ("charset".to_owned(), "utf-8".to_owned()),
            ]
        );
    }
}
