//! Config values with `$(...)` expressions, as Kong renders them with Penlight templates, minus
//! Lua: an expression is a chain of `or`-ed terms, each a lookup or a literal.
//!
//! ```text
//! expr   = term ("or" term)*
//! term   = source ("." name | "[" (string | integer) "]") | string | number
//! source = "headers" | "query_params" | "uri_captures"
//! ```
//!
//! A lookup that finds nothing is Lua's `nil`, so `or` moves to the next term (an empty string
//! is a value); an expression that ends with `nil` renders as nothing. `headers.x_y` also finds
//! `x-y`, as `ngx.req.get_headers()` does. Text without a balanced `$(...)` stays as it is.
//! Anything beyond this grammar (function calls, `shared`, operators) is refused when the
//! config is validated, rather than failing every request.

use std::borrow::Cow;

use http::HeaderMap;

use super::args::Args;
use crate::plugins::ctx::UriCaptures;

/// Where a lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The request's headers (as the client sent them).
    Headers,
    /// The query arguments.
    Query,
    /// The route's regex captures.
    Captures,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Lookup(Source, Key),
    Literal(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Expr(Vec<Term>),
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// What lookups read while rendering.
#[derive(Debug, Default, Clone, Copy)]
pub struct Env<'a> {
    /// Request headers.
    pub headers: Option<&'a HeaderMap>,
    /// Query arguments.
    pub query: Option<&'a Args>,
    /// Regex captures of the route.
    pub captures: Option<&'a UriCaptures>,
}

/// Index of the `)` closing the `(` at `open`, skipping quoted strings.
fn closing(s: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < s.len() {
        let c = s[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

struct Lexer<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn skip_space(&mut self) {
        let rest = &self.s[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn done(&mut self) -> bool {
        self.skip_space();
        self.at >= self.s.len()
    }

    fn ident(&mut self) -> Option<&'a str> {
        let rest = &self.s[self.at..];
        let first = rest.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += len;
        Some(&rest[..len])
    }

    fn string(&mut self) -> Result<String, String> {
        let rest = &self.s[self.at..];
        let mut chars = rest.char_indices();
        let Some((_, quote)) = chars.next() else {
            return Err("unfinished string".into());
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => break,
                },
                c if c == quote => {
                    self.at += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err("unfinished string".into())
    }

    fn number(&mut self) -> Option<&'a str> {
        let rest = &self.s[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        (len > 0).then(|| {
            self.at += len;
            &rest[..len]
        })
    }

    fn term(&mut self) -> Result<Term, String> {
        self.skip_space();
        match self.peek() {
            Some('\'' | '"') => return self.string().map(Term::Literal),
            Some(c) if c.is_ascii_digit() => {
                let n = self.number().unwrap_or_default();
                return Ok(Term::Literal(n.to_owned()));
            }
            _ => {}
        }
        let Some(word) = self.ident() else {
            return Err(format!("unexpected '{}'", &self.s[self.at..]));
        };
        let source = match word {
            "headers" => Source::Headers,
            "query_params" => Source::Query,
            "uri_captures" => Source::Captures,
            other => {
                return Err(format!(
                "'{other}' is not supported (only headers, query_params and uri_captures lookups)"
            ))
            }
        };
        self.skip_space();
        let key = match self.peek() {
            Some('.') => {
                self.at += 1;
                self.skip_space();
                let name = self
                    .ident()
                    .ok_or_else(|| format!("a name must follow '{word}.'"))?;
                Key::Name(name.to_owned())
            }
            Some('[') => {
                self.at += 1;
                self.skip_space();
                let key = match self.peek() {
                    Some('\'' | '"') => Key::Name(self.string()?),
                    _ => {
                        let n = self
                            .number()
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(|| format!("a string or index must follow '{word}['"))?;
                        Key::Index(n)
                    }
                };
                self.skip_space();
                if self.peek() != Some(']') {
                    return Err("']' expected".into());
                }
                self.at += 1;
                key
            }
            _ => return Err(format!("'{word}' must be followed by a field")),
        };
        Ok(Term::Lookup(source, key))
    }

    fn expr(&mut self) -> Result<Vec<Term>, String> {
        let mut terms = vec![self.term()?];
        while !self.done() {
            if self.ident() != Some("or") {
                return Err(format!("unexpected '{}'", &self.s[self.at..]));
            }
            terms.push(self.term()?);
        }
        Ok(terms)
    }
}

impl Template {
    /// Parses `value`.
    pub fn parse(value: &str) -> Result<Template, String> {
        let bytes = value.as_bytes();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < value.len() {
            if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'(') {
                if let Some(close) = closing(bytes, i + 1) {
                    let inner = &value[i + 2..close];
                    let terms = Lexer { s: inner, at: 0 }.expr()?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Expr(terms));
                    i = close + 1;
                    continue;
                }
            }
            let c = value[i..].chars().next().unwrap_or_default();
            text.push(c);
            i += c.len_utf8().max(1);
        }
        if !text.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// Whether some lookup reads `source`.
    pub fn uses(&self, source: Source) -> bool {
        self.pieces.iter().any(|p| match p {
            Piece::Text(_) => false,
            Piece::Expr(terms) => terms
                .iter()
                .any(|t| matches!(t, Term::Lookup(s, _) if *s == source)),
        })
    }

    /// The value for a request.
    pub fn render<'t>(&'t self, env: &Env<'_>) -> Cow<'t, str> {
        if let [Piece::Text(text)] = self.pieces.as_slice() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Expr(terms) => {
                    if let Some(v) = terms.iter().find_map(|t| lookup(t, env)) {
                        out.push_str(&v);
                    }
                }
            }
        }
        Cow::Owned(out)
    }
}

fn lookup<'e>(term: &'e Term, env: &Env<'e>) -> Option<Cow<'e, str>> {
    let (source, key) = match term {
        Term::Literal(text) => return Some(Cow::Borrowed(text)),
        Term::Lookup(source, key) => (*source, key),
    };
    match (source, key) {
        (Source::Headers, Key::Name(name)) => {
            let headers = env.headers?;
            let lower = name.to_ascii_lowercase();
            let value = headers
                .get(lower.as_str())
                .or_else(|| headers.get(lower.replace('_', "-").as_str()))?;
            Some(String::from_utf8_lossy(value.as_bytes()))
        }
        (Source::Query, Key::Name(name)) => env.query?.first(name).map(|v| match v {
            Some(v) => Cow::Borrowed(v),
            // A bare `?flag` is Lua's `true`.
            None => Cow::Borrowed("true"),
        }),
        (Source::Captures, Key::Name(name)) => env.captures?.name(name).map(Cow::Borrowed),
        (Source::Captures, Key::Index(i)) => env.captures?.get(*i).map(Cow::Borrowed),
        (Source::Headers | Source::Query, Key::Index(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn renders_lookups_literals_and_fallbacks() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("ann"));
        let query = Args::parse("q=1&flag&empty=");
        let captures = UriCaptures {
            numbered: vec![Some("/users/7".into()), Some("7".into())],
            named: vec![("id".into(), "7".into())],
        };
        let env = Env {
            headers: Some(&headers),
            query: Some(&query),
            captures: Some(&captures),
        };
        let render = |s: &str| Template::parse(s).expect(s).render(&env).into_owned();
        assert_eq!(render("plain"), "plain");
        assert_eq!(render("$(headers.x_user)-$(headers['X-User'])"), "ann-ann");
        assert_eq!(render("$(query_params.q)$(query_params.flag)"), "1true");
        assert_eq!(render("/u/$(uri_captures.id)/$(uri_captures[1])"), "/u/7/7");
        assert_eq!(render("$(uri_captures[0])"), "/users/7");
        assert_eq!(render("$(headers.none or 'dflt')"), "dflt");
        assert_eq!(render("$(query_params.empty or 'dflt')"), "");
        assert_eq!(render("[$(headers.none)]"), "[]");
        assert_eq!(render("$('$(uri_captures.id)')"), "$(uri_captures.id)");
        assert_eq!(render("cost $(5"), "cost $(5");
        assert!(!Template::parse("x").expect("x").uses(Source::Headers));
        assert!(Template::parse("$(headers.a or query_params.b)")
            .expect("parse")
            .uses(Source::Query));
    }

    #[test]
    fn refuses_what_needs_lua() {
        for bad in [
            "$(ERROR())",
            "$(shared.x)",
            "$(10 * uri_captures.user1)",
            "$(headers)",
            "$(headers.a .. 'x')",
            "$(type(headers.a))",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
