//! Reading a declarative document: bytes → JSON value → checked top level.
//!
//! YAML and JSON are told apart by the file name (`.json`, `.yml`, `.yaml`) or, without one, by
//! the first character (`{` means JSON). Both parsers report where a syntax error sits (line and
//! column, 1-based). YAML is read into its own value first so that anchors, aliases and merge
//! keys (`<<`) work; aliases are expanded within the parser's repetition limit, so a small
//! document cannot expand into a huge one. Documents larger than [`MAX_SIZE`] are refused
//! before any parsing.
//!
//! The top level is checked here: `_format_version` (required; `1.1`, `2.1` or `3.0`),
//! `_transform`, `_comment`, `_ignore`, and one list per entity. Problems found at this level are
//! collected, not fatal, so one run reports them together with the entities' own errors.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Number, Value};

use super::{DeclarativeError, Problem};
use crate::store::entities;

/// The largest document accepted: 64 MiB.
pub const MAX_SIZE: u64 = 64 * 1024 * 1024;

/// The format versions Kong's declarative files use.
pub const FORMAT_VERSIONS: &[&str] = &["1.1", "2.1", "3.0"];

/// The syntax a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (a superset of JSON in practice, but errors read better from the JSON parser).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// Picks the syntax from the file name's extension, else from the first character.
    pub fn detect(text: &str, name: Option<&str>) -> Format {
        let ext = name
            .and_then(|n| Path::new(n).extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => Format::Json,
            Some("yml" | "yaml") => Format::Yaml,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        })
    }
}

/// A document that is not well-formed YAML or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The syntax the document was read as.
    pub format: Format,
    /// 1-based line and column, when the parser knows them.
    pub location: Option<(usize, usize)>,
    /// The parser's explanation, without its own location suffix.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(
                f,
                "{} syntax error at line {line}, column {column}: {}",
                self.format, self.message
            ),
            None => write!(f, "{} syntax error: {}", self.format, self.message),
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Which format version a document declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatVersion {
    /// `1.1`: route paths use the pre-3.0 regex rules.
    V1_1,
    /// `2.1`: as 1.1.
    V2_1,
    /// `3.0`: the current format.
    V3_0,
}

impl FormatVersion {
    /// Whether route paths need migrating to 3.0 rules.
    pub fn is_legacy(self) -> bool {
        self != FormatVersion::V3_0
    }
}

/// A document whose top level has been read.
#[derive(Debug, Clone)]
pub struct Document {
    /// Declared format version (3.0 when missing or invalid; that is reported in `problems`).
    pub version: FormatVersion,
    /// `_transform` (default true): apply write transformations such as password hashing.
    pub transform: bool,
    /// Entity lists by entity name, as written (nested children still nested).
    pub entities: Map<String, Value>,
    /// Top-level problems: a bad `_format_version`, unknown keys, wrong types.
    pub problems: Vec<Problem>,
}

/// Reads a file, refusing one larger than [`MAX_SIZE`] before reading it.
pub fn read_file(path: &Path) -> Result<String, DeclarativeError> {
    let read_error = |source| DeclarativeError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    check_size(size)?;
    let mut bytes = Vec::new();
    // A file growing while we read it is still held to the limit.
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    check_size(bytes.len() as u64)?;
    String::from_utf8(bytes).map_err(|e| {
        DeclarativeError::Syntax(SyntaxError {
            format: Format::detect("", Some(&path.display().to_string())),
            location: None,
            message: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        })
    })
}

/// Refuses sizes over [`MAX_SIZE`].
pub fn check_size(size: u64) -> Result<(), DeclarativeError> {
    if size > MAX_SIZE {
        return Err(DeclarativeError::TooLarge { size });
    }
    Ok(())
}

/// Parses a document's text; `name` (a file name) helps tell YAML from JSON.
pub fn parse_text(text: &str, name: Option<&str>) -> Result<Document, DeclarativeError> {
    check_size(text.len() as u64)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value = match Format::detect(text, name) {
        Format::Json => json(text)?,
        Format::Yaml => yaml(text)?,
    };
    parse_value(value)
}

fn json(text: &str) -> Result<Value, SyntaxError> {
    serde_json::from_str(text).map_err(|e| {
        let location = (e.line() > 0).then(|| (e.line(), e.column()));
        SyntaxError {
            format: Format::Json,
            message: without_location(&e.to_string(), location),
            location,
        }
    })
}

fn yaml(text: &str) -> Result<Value, SyntaxError> {
    let error = |e: serde_norway::Error| {
        let location = e.location().map(|l| (l.line(), l.column()));
        SyntaxError {
            format: Format::Yaml,
            message: without_location(&e.to_string(), location),
            location,
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    // Fast path: straight into JSON values, without first building the YAML tree (which takes
    // several times the memory of the result). Documents that need the YAML tree (merge keys,
    // non-finite numbers, non-string keys) or that fail take the careful path below, which
    // also gives the precise error.
    let lower = text.to_ascii_lowercase();
    let special = text.contains("<<") || lower.contains(".inf") || lower.contains(".nan");
    drop(lower);
    if !special {
        if let Ok(value) = serde_norway::from_str::<Value>(text) {
            return Ok(value);
        }
    }
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(error)?;
    value.apply_merge().map_err(error)?;
    yaml_to_json(value).map_err(|message| SyntaxError {
        format: Format::Yaml,
        location: None,
        message,
    })
}

/// Drops the parser's own ` at line L column C` from its message (we print the location first).
fn without_location(message: &str, location: Option<(usize, usize)>) -> String {
    match location {
        Some((line, column)) => message
            .replacen(&format!(" at line {line} column {column}"), "", 1)
            .trim()
            .to_owned(),
        None => message.trim().to_owned(),
    }
}

/// Converts a YAML value to JSON: tags are dropped, scalar keys become strings, numbers that
/// JSON cannot hold (`.inf`, `.nan`) become strings so validation names them.
fn yaml_to_json(value: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_owned(),
                    Y::Tagged(t) => match yaml_to_json(t.value)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    Y::Sequence(_) | Y::Mapping(_) => {
                        return Err("a list or a mapping cannot be a key".to_owned())
                    }
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

/// Reads the top level of an already parsed document (e.g. a JSON body).
pub fn parse_value(value: Value) -> Result<Document, DeclarativeError> {
    let Value::Object(top) = value else {
        return Err(DeclarativeError::NotAnObject);
    };
    let mut doc = Document {
        version: FormatVersion::V3_0,
        transform: true,
        entities: Map::new(),
        problems: Vec::new(),
    };
    let mut problem = |path: &str, message: &str| {
        doc.problems.push(Problem::new(path, message));
    };
    match top.get("_format_version") {
        None | Some(Value::Null) => problem("_format_version", "required field missing"),
        Some(Value::String(v)) => match v.as_str() {
            "1.1" => doc.version = FormatVersion::V1_1,
            "2.1" => doc.version = FormatVersion::V2_1,
            "3.0" => {}
            _ => problem(
                "_format_version",
                &format!("expected one of: {}", FORMAT_VERSIONS.join(", ")),
            ),
        },
        Some(_) => problem("_format_version", "expected a string"),
    }
    for (key, value) in top {
        match key.as_str() {
            "_format_version" => {}
            "_transform" => match value {
                Value::Bool(b) => doc.transform = b,
                Value::Null => {}
                _ => problem("_transform", "expected a boolean"),
            },
            "_comment" => {
                if !matches!(value, Value::String(_) | Value::Null) {
                    problem("_comment", "expected a string");
                }
            }
            "_ignore" => {
                if !matches!(value, Value::Array(_) | Value::Null) {
                    problem("_ignore", "expected an array");
                }
            }
            name if entities::entity(name).is_some() => {
                doc.entities.insert(key, value);
            }
            _ => problem(&key, "unknown field"),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(text: &str, name: Option<&str>) -> SyntaxError {
        match parse_text(text, name) {
            Err(DeclarativeError::Syntax(e)) => e,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let e = syntax(
            "_format_version: \"3.0\"\nservices:\n  - name: a\n   host: b\n",
            None,
        );
        assert_eq!(e.format, Format::Yaml);
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        assert!(!e.message.contains("at line 4 column"), "{e}");
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let e = syntax(
            "{\n  \"_format_version\": \"3.0\",\n  \"services\": [,]\n}",
            None,
        );
        assert_eq!(e.format, Format::Json);
        assert_eq!(e.location, Some((3, 16)), "{e}");
    }

    #[test]
    fn the_extension_decides_before_the_content() {
        assert_eq!(Format::detect("a: 1", Some("x.json")), Format::Json);
        assert_eq!(Format::detect("{}", Some("x.yml")), Format::Yaml);
        assert_eq!(Format::detect("  {}", None), Format::Json);
        assert_eq!(Format::detect("a: {}", None), Format::Yaml);
    }

    #[test]
    fn top_level_problems_are_collected() {
        let doc =
            parse_text("_format_version: '4.0'\n_transform: 1\nfoo: []\n", None).expect("parsed");
        let lines: Vec<String> = doc.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "_format_version: expected one of: 1.1, 2.1, 3.0",
                "_transform: expected a boolean",
                "foo: unknown field"
            ]
        );
    }

    #[test]
    fn odd_yaml_never_panics() {
        for text in [
            "",
            "~",
            "[1, 2]",
            "? [a]\n: b\n",
            "1: a\ntrue: b\n~: c\n",
            "a: !!binary aGVsbG8=\n",
            "a: .inf\nb: .nan\n",
            "a: &x [1]\nb: *x\n<<: {c: 1}\n",
            "a: 1\na: 2\n",
            "--- a\n--- b\n",
            "a: *nope\n",
            "\u{feff}_format_version: '3.0'",
            &"[".repeat(10_000),
            &"{\"a\":".repeat(10_000),
        ] {
            let _ = parse_text(text, None);
        }
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(parse_text(&text, None).is_err());
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        assert!(matches!(
            check_size(MAX_SIZE + 1),
            Err(DeclarativeError::TooLarge { .. })
        ));
    }
}
