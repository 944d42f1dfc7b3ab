//! `cors` (priority 2000): Cross-Origin Resource Sharing.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by
//! the gateway with `200` and the allow headers, unless `preflight_continue` hands it to the
//! upstream (then no CORS header is added at all). Other requests get
//! `Access-Control-Allow-Origin`, `-Allow-Credentials` and `-Expose-Headers` added to whatever
//! answers them, in `header_filter`; with `allow_origin_absent = false` a request without
//! `Origin` gets none.
//!
//! The allowed origin, as Kong decides it:
//! - no `origins`, or just `*`: `*`; with `credentials`, the request's origin is echoed instead
//!   (a `*` origin cannot carry credentials) and `Vary: Origin` added;
//! - one origin that looks literal (only `A-Za-z0-9.:/-`): that value, whatever the request;
//! - otherwise the request's origin, normalized to `scheme://host[:port]` without a default
//!   port, is compared with each entry: literal entries (normalized the same way) by equality,
//!   regex entries anchored at both ends, against the host alone when the entry has no `:`. A
//!   match echoes the normalized origin; no match removes the header. A `*` among several
//!   entries allows every origin.
//!
//! `Vary: Origin` accompanies every answer whose origin is not the plain `*`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderMap, Method, StatusCode};
use regex::Regex;
use serde_json::{json, Value};

use crate::plugins::{BuildEnv, Ctx, Exit, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

static ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
static REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

/// [`Ctx::shared`] key of what `access` leaves for `header_filter`.
const STATE: &str = "cors";

const METHODS: &[&str] = &[
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The kind.
pub struct Cors;

/// One entry of a multi-origin list.
#[derive(Debug)]
enum Rule {
    /// `*`: every origin.
    Any,
    /// A literal origin, normalized.
    Literal(String),
    /// A regex, anchored; `by_host` matches the origin's host only.
    Regex { re: Regex, by_host: bool },
}

/// How the allowed origin is found.
#[derive(Debug)]
enum Origins {
    /// `*`.
    All,
    /// One literal origin, sent as configured.
    Fixed(HeaderValue),
    /// Matched against the request's origin.
    Match(Vec<Rule>),
}

/// One configured instance, its header values rendered once.
struct Instance {
    origins: Origins,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    methods: HeaderValue,
    max_age: Option<HeaderValue>,
    credentials: bool,
    private_network: bool,
    preflight_continue: bool,
    allow_origin_absent: bool,
}

/// What `access` saw, for `header_filter` (the request head has gone upstream by then).
struct State {
    origin: Option<String>,
    /// A preflight: answered by the gateway, or left to the upstream; no headers to add.
    preflight: bool,
}

/// An origin taken apart as Kong's `normalize_origin` does (with LuaSocket's URL parser).
#[derive(Debug, PartialEq, Eq)]
struct Normalized {
    /// `scheme://host[:port]` without a default port; the input when it has no host.
    domain: String,
    /// The host (IPv6 without brackets); the input when it has none.
    host: String,
}

fn normalize(origin: &str) -> Normalized {
    let raw = || Normalized {
        domain: origin.to_owned(),
        host: origin.to_owned(),
    };
    let url = origin.split('#').next().unwrap_or_default();
    let scheme_end = url.find(':').filter(|&i| {
        let s = &url[..i];
        s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let (scheme, rest) = match scheme_end {
        Some(i) => (Some(&url[..i]), &url[i + 1..]),
        None => (None, url),
    };
    let Some(authority) = rest.strip_prefix("//") else {
        return raw();
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    // A port is whatever follows the last `:` when no `]` comes after it.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i + 1..].contains(']') => {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return raw();
    }
    let port =
        port.filter(|p| !matches!((scheme, *p), (Some("http"), "80") | (Some("https"), "443")));
    let mut domain = String::with_capacity(origin.len());
    if let Some(s) = scheme {
        domain.push_str(s);
        domain.push_str("://");
    }
    domain.push_str(host);
    if let Some(p) = port {
        domain.push(':');
        domain.push_str(p);
    }
    Normalized {
        domain,
        host: host.to_owned(),
    }
}

/// Whether an entry holds only characters of a literal origin.
fn looks_literal(entry: &str) -> bool {
    !entry.is_empty()
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/-".contains(&b))
}

/// Kong anchors regex entries: a leading `^` is dropped, a `$` added when missing, and the
/// match is anchored at the start.
fn anchored(entry: &str) -> Result<Regex, regex::Error> {
    let body = entry.strip_prefix('^').unwrap_or(entry);
    let dollar = if body.ends_with('$') { "" } else { "$" };
    Regex::new(&format!("^(?:{body}{dollar})"))
}

fn origin_entry(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s == "*" || Regex::new(s).is_ok() {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid regex"))
    }
}

fn strings(config: &Doc, field: &str) -> Option<Vec<String>> {
    config.get(field).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

fn joined(list: Option<Vec<String>>) -> Result<Option<HeaderValue>, String> {
    match list.filter(|l| !l.is_empty()) {
        None => Ok(None),
        Some(l) => HeaderValue::from_str(&l.join(","))
            .map(Some)
            .map_err(|_| format!("not a header value: {}", l.join(","))),
    }
}

fn compile_origins(list: Vec<String>) -> Result<Origins, String> {
    if list.is_empty() || (list.len() == 1 && list[0] == "*") {
        return Ok(Origins::All);
    }
    if list.len() == 1 && looks_literal(&list[0]) {
        return HeaderValue::from_str(&list[0])
            .map(Origins::Fixed)
            .map_err(|_| format!("not a header value: {}", list[0]));
    }
    let mut rules = Vec::with_capacity(list.len());
    for entry in list {
        let rule = if entry == "*" {
            Rule::Any
        } else if looks_literal(&entry) {
            Rule::Literal(normalize(&entry).domain)
        } else {
            Rule::Regex {
                re: anchored(&entry).map_err(|e| format!("origin '{entry}': {e}"))?,
                by_host: !entry.contains(':'),
            }
        };
        rules.push(rule);
    }
    Ok(Origins::Match(rules))
}

impl Kind for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn priority(&self) -> i32 {
        2000
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "origins",
                Field::array(Field::string().custom("origin", origin_entry)),
            ),
            ("headers", Field::array(Field::string())),
            ("exposed_headers", Field::array(Field::string())),
            (
                "methods",
                Field::array(Field::string().one_of(METHODS)).default(json!(METHODS)),
            ),
            ("max_age", Field::number()),
            (
                "credentials",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "private_network",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "preflight_continue",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "allow_origin_absent",
                Field::boolean().required().default(json!(true)),
            ),
        ]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: true,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let flag = |f: &str| config.get(f).and_then(Value::as_bool);
        let methods = match strings(config, "methods") {
            Some(m) => m.join(","),
            None => METHODS.join(","),
        };
        let max_age = match config.get("max_age").and_then(Value::as_f64) {
            // Lua prints integral numbers without a fraction.
            Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", n as i64)),
            Some(n) => Some(n.to_string()),
            None => None,
        };
        Ok(Arc::new(Instance {
            origins: compile_origins(strings(config, "origins").unwrap_or_default())?,
            allow_headers: joined(strings(config, "headers"))?,
            expose_headers: joined(strings(config, "exposed_headers"))?,
            methods: HeaderValue::from_str(&methods).map_err(|e| e.to_string())?,
            max_age: max_age.and_then(|m| HeaderValue::from_str(&m).ok()),
            credentials: flag("credentials").unwrap_or(false),
            private_network: flag("private_network").unwrap_or(false),
            preflight_continue: flag("preflight_continue").unwrap_or(false),
            allow_origin_absent: flag("allow_origin_absent").unwrap_or(true),
        }))
    }
}

/// `Vary: Origin`: appended to the upstream's `Vary` in `header_filter`, set on a preflight.
fn vary(headers: &mut HeaderMap, appending: bool) {
    let origin = HeaderValue::from_static("Origin");
    if appending {
        headers.append(VARY, origin);
    } else {
        headers.insert(VARY, origin);
    }
}

impl Instance {
    /// Sets `Access-Control-Allow-Origin`; true when it is `*` (every origin allowed).
    fn allow_origin(&self, headers: &mut HeaderMap, appending: bool, origin: Option<&str>) -> bool {
        let rules = match &self.origins {
            Origins::All => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                return true;
            }
            Origins::Fixed(value) => {
                vary(headers, appending);
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value.clone());
                return false;
            }
            Origins::Match(rules) => rules,
        };
        vary(headers, appending);
        if let Some(origin) = origin {
            if rules.iter().any(|r| matches!(r, Rule::Any)) {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                return true;
            }
            let n = normalize(origin);
            let found = rules.iter().any(|rule| match rule {
                Rule::Any => false,
                Rule::Literal(domain) => *domain == n.domain,
                Rule::Regex { re, by_host } => {
                    re.is_match(if *by_host { &n.host } else { &n.domain })
                }
            });
            if found {
                if let Ok(v) = HeaderValue::from_str(&n.domain) {
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
                    return false;
                }
            }
        }
        headers.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
        false
    }

    /// `Access-Control-Allow-Credentials`; with a `*` origin the request's origin replaces it.
    fn allow_credentials(
        &self,
        headers: &mut HeaderMap,
        all: bool,
        appending: bool,
        origin: Option<&str>,
    ) {
        if !self.credentials {
            return;
        }
        let yes = HeaderValue::from_static("true");
        if !all {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, yes);
            return;
        }
        if let Some(v) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
            vary(headers, appending);
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, yes);
        }
    }

    fn preflight(&self, ctx: &Ctx, origin: &str) -> Exit {
        let mut headers = HeaderMap::new();
        let all = self.allow_origin(&mut headers, false, Some(origin));
        self.allow_credentials(&mut headers, all, false, Some(origin));
        let requested = ctx.request.headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
        match (&self.allow_headers, requested) {
            (Some(v), _) | (None, Some(v)) => {
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
            }
            (None, None) => {}
        }
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        if let Some(v) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        if self.private_network
            && ctx
                .request
                .headers
                .get(&REQUEST_PRIVATE_NETWORK)
                .is_some_and(|v| v == "true")
        {
            headers.insert(
                ALLOW_PRIVATE_NETWORK.clone(),
                HeaderValue::from_static("true"),
            );
        }
        Exit {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
        }
    }
}

/// The request's `Origin`, when it has a non-empty one.
fn request_origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|o| !o.is_empty())
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let origin = request_origin(&ctx.request.headers);
        let preflight = ctx.request.method == Method::OPTIONS
            && origin.is_some()
            && ctx
                .request
                .headers
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if preflight && !self.preflight_continue {
            let exit = self.preflight(ctx, origin.as_deref().unwrap_or_default());
            ctx.exit(exit);
        }
        if preflight || origin.is_some() {
            ctx.set_shared(STATE, State { origin, preflight });
        }
        Ok(Step::Done)
    }

    fn filters_headers(&self) -> bool {
        true
    }

    fn header_filter(
        &self,
        ctx: &mut Ctx,
        response: &mut http::response::Parts,
    ) -> Result<(), PluginError> {
        // When `access` did not run (an earlier plugin answered, no route matched) the request
        // head is still in the context.
        let (origin, preflight) = match ctx.shared::<State>(STATE) {
            Some(state) => (state.origin.clone(), state.preflight),
            None => (request_origin(&ctx.request.headers), false),
        };
        if preflight || (origin.is_none() && !self.allow_origin_absent) {
            return Ok(());
        }
        let headers = &mut response.headers;
        let all = self.allow_origin(headers, true, origin.as_deref());
        self.allow_credentials(headers, all, true, origin.as_deref());
        if let Some(v) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(domain: &str, host: &str) -> Normalized {
        Normalized {
            domain: domain.into(),
            host: host.into(),
        }
    }

    #[test]
    fn origins_normalize_as_kong_does() {
        assert_eq!(
            normalize("http://example.com:80"),
            n("http://example.com", "example.com")
        );
        assert_eq!(
            normalize("https://example.com:443/x"),
            n("https://example.com", "example.com")
        );
        assert_eq!(
            normalize("https://example.com:8443"),
            n("https://example.com:8443", "example.com")
        );
        assert_eq!(normalize("http://[::1]:8080"), n("http://::1:8080", "::1"));
        assert_eq!(normalize("null"), n("null", "null"));
        assert_eq!(normalize("example.com"), n("example.com", "example.com"));
    }

    #[test]
    fn regex_entries_are_anchored() {
        let re = anchored(r"(.*)\.example\.com").expect("regex");
        assert!(re.is_match("a.example.com"));
        assert!(!re.is_match("a.example.com.evil.org"));
        assert!(!anchored(r"example\.com")
            .expect("regex")
            .is_match("notexample.com"));
        assert!(anchored(r"^example\.com$")
            .expect("regex")
            .is_match("example.com"));
        assert!(looks_literal("http://example.com:8080"));
        assert!(!looks_literal(r"(.*)\.example\.com"));
    }
}
