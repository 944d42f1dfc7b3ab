//! Router tests: one file per concern, each test named after the rule it pins. Routes are
//! written as the store keeps them (JSON documents); requests through [`Req`].

mod build_errors;
mod captures;
mod equivalence;
mod matching;
mod priority_rules;
mod protocols;
mod stream;
mod upstream_paths;

use http::{HeaderMap, HeaderName, HeaderValue, Version};
use serde_json::{json, Value};

use super::{Doc, Match, RequestInfo, Router, Scheme};

/// The service every helper route points at unless told otherwise.
pub const SVC: &str = "5a9b1d3e-0000-4000-8000-000000000001";

/// A route id whose last digits are `n`: larger `n`, larger UUID.
pub fn rid(n: u32) -> String {
    format!("e8fb37f1-102d-461e-9c51-{n:012}")
}

/// A stored route: `fields` over an id from `n`, default protocols and the default service.
pub fn route(n: u32, fields: Value) -> Doc {
    let mut doc = json!({
        "id": rid(n),
        "protocols": ["http", "https"],
        "service": {"id": SVC},
        "strip_path": true,
        "preserve_host": false,
        "regex_priority": 0,
        "path_handling": "v0",
        "https_redirect_status_code": 426,
        "request_buffering": true,
        "response_buffering": true,
        "created_at": 1_700_000_000,
    });
    if let (Some(d), Value::Object(f)) = (doc.as_object_mut(), fields) {
        d.extend(f);
    }
    match doc {
        Value::Object(d) => d,
        _ => Doc::new(),
    }
}

/// A stored service with `fields` over defaults.
pub fn service(id: &str, fields: Value) -> Doc {
    let mut doc = json!({
        "id": id,
        "protocol": "http",
        "host": "upstream.test",
        "port": 80,
        "path": null,
        "connect_timeout": 60000,
        "write_timeout": 60000,
        "read_timeout": 60000,
        "retries": 5,
        "enabled": true,
    });
    if let (Some(d), Value::Object(f)) = (doc.as_object_mut(), fields) {
        d.extend(f);
    }
    match doc {
        Value::Object(d) => d,
        _ => Doc::new(),
    }
}

/// A router over `routes` and the default service.
pub fn router(routes: Vec<Doc>) -> Router {
    match Router::build(&routes, &[service(SVC, json!({}))]) {
        Ok(r) => r,
        Err(e) => panic!("router did not build: {e}"),
    }
}

/// A request under construction.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub host: Option<String>,
    pub path: String,
    pub scheme: Scheme,
    pub forwarded_proto: Option<&'static str>,
    pub port: u16,
    pub sni: Option<String>,
    pub headers: HeaderMap,
    pub version: Version,
}

/// `GET path` with `Host: host`.
pub fn get(host: &str, path: &str) -> Req {
    Req {
        method: "GET",
        host: Some(host.to_owned()),
        path: path.to_owned(),
        scheme: Scheme::Http,
        forwarded_proto: None,
        port: 80,
        sni: None,
        headers: HeaderMap::new(),
        version: Version::HTTP_11,
    }
}

impl Req {
    pub fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }

    pub fn no_host(mut self) -> Req {
        self.host = None;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Req {
        let v = HeaderValue::from_bytes(value.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        self.headers.append(HeaderName::from_static(name), v);
        self
    }

    pub fn https(mut self, sni: Option<&str>) -> Req {
        self.scheme = Scheme::Https;
        self.port = 443;
        self.sni = sni.map(str::to_owned);
        self
    }

    pub fn port(mut self, port: u16) -> Req {
        self.port = port;
        self
    }

    pub fn forwarded_proto(mut self, proto: &'static str) -> Req {
        self.forwarded_proto = Some(proto);
        self
    }

    pub fn http2(mut self) -> Req {
        self.version = Version::HTTP_2;
        self
    }

    pub fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: self.method,
            host: self.host.as_deref(),
            path: &self.path,
            scheme: self.scheme,
            forwarded_proto: self.forwarded_proto,
            port: self.port,
            sni: self.sni.as_deref(),
            headers: &self.headers,
            version: self.version,
        }
    }
}

/// The id of the route `req` matches, or `None`.
pub fn matched(r: &Router, req: &Req) -> Option<String> {
    r.find(&req.info()).map(|m: Match<'_>| m.route.id.clone())
}

/// Asserts `req` matches route `n`.
#[track_caller]
pub fn assert_routes_to(r: &Router, req: &Req, n: u32) {
    assert_eq!(matched(r, req), Some(rid(n)), "request {req:?}");
}

/// Asserts `req` matches nothing.
#[track_caller]
pub fn assert_no_match(r: &Router, req: &Req) {
    assert_eq!(matched(r, req), None, "request {req:?}");
}
