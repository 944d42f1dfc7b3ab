//! Reading the `kong.conf` text format into raw `key = value` pairs.
//!
//! The format: one `key = value` per line; `#` starts a comment unless escaped as `\#`; blank
//! lines are skipped; keys are case-insensitive and stored lower-case; an empty value means
//! "unset". Values stay strings here: typing and validation happen in `config::typed`.

use std::path::Path;

/// Where a raw value came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A configuration file and the 1-based line number.
    File {
        /// The file's path as given.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Cli(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Cli(flag) => write!(f, "command-line flag {flag}"),
        }
    }
}

/// One `key = value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-case key.
    pub key: String,
    /// The value with comments removed, `\#` unescaped and surrounding blanks trimmed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// A line that is not `key = value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: syntax error: {reason}: '{text}'")]
pub struct SyntaxError {
    /// File path.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
    /// The offending line, trimmed.
    pub text: String,
}

/// Parses configuration text; `path` is only used in error messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<Entry>, Vec<SyntaxError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = strip_comment(raw);
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        let error = |reason| SyntaxError {
            path: path.to_string(),
            line,
            reason,
            text: raw.trim().to_string(),
        };
        let Some((key, value)) = content.split_once('=') else {
            errors.push(error("expected 'key = value'"));
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            errors.push(error("missing key before '='"));
            continue;
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push(error("keys may only contain letters, digits and '_'"));
            continue;
        }
        entries.push(Entry {
            key,
            value: value.trim().to_string(),
            line,
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// Reads and parses a configuration file.
pub fn parse_file(path: &Path) -> Result<Vec<Entry>, super::ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| super::ConfigError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(&text, &path.display().to_string()).map_err(|errors| super::ConfigError::Invalid {
        errors: errors.into_iter().map(|e| e.to_string()).collect(),
    })
}

/// Removes an unescaped `#` comment and unescapes `\#`.
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for writing back in `kong.conf` format.
pub fn escape(value: &str) -> String {
    value.replace('#', "\\#")
}

/// Escapes a value for `.kong_env`, which must also carry multi-line values (inline PEM keys,
/// declarative configuration strings) on one line: `\` → `\\`, newline → `\n`, CR → `\r`.
pub fn escape_env_value(value: &str) -> String {
    escape(
        &value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r"),
    )
}

/// Reverses [`escape_env_value`] (after comment stripping has already unescaped `\#`).
pub fn unescape_env_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_comments_and_escapes() {
        let text = "# header\n\nlog_level = debug   # trailing\nPG_PASSWORD = a\\#b\nplugins = bundled, key-auth\nempty =\n";
        let entries = parse(text, "k.conf").expect("valid");
        let pairs: Vec<_> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("log_level", "debug", 3),
                ("pg_password", "a#b", 4),
                ("plugins", "bundled, key-auth", 5),
                ("empty", "", 6),
            ]
        );
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let errors =
            parse("ok = 1\nnot a pair\n= 3\nbad-key = 1\n", "k.conf").expect_err("invalid");
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert_eq!(
            errors[0].to_string(),
            "k.conf:2: syntax error: expected 'key = value': 'not a pair'"
        );
    }

    #[test]
    fn escape_round_trips() {
        let entries = parse(&format!("k = {}", escape("a#b")), "x").expect("valid");
        assert_eq!(entries[0].value, "a#b");
    }
}
