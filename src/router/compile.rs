//! Compiling one stored route: its matchers, its path groups (one per split part) with their
//! priority inputs and index keys, and the data a match hands to the proxy.

use std::collections::HashMap;

use http::HeaderName;
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use uuid::Uuid;

use super::build::CompiledRoute;
use super::entity::{entity_id, Fields, Services};
use super::error::RouterError;
use super::matcher::{
    literal_prefix, HeaderMatcher, HeaderValueMatcher, HostMatcher, PathMatchers, RegexPath,
    RouteMatchers, SniMatcher,
};
use super::model::{PathHandling, Protocol, Protocols, RouteInfo};
use super::priority::{group_paths, split_id, PriorityInputs};
use super::{Doc, Router};

/// Compiled regexes of a previous router, by pattern, so a rebuild compiles only new patterns
/// (compiling dominates the build time of regex-heavy configurations).
#[derive(Default)]
pub(crate) struct RegexCache<'p> {
    /// Path regexes by anchored pattern.
    paths: HashMap<&'p str, &'p Regex>,
    /// `~*` header regexes by lower-cased pattern (all compiled case-insensitive).
    headers: HashMap<&'p str, &'p Regex>,
}

impl<'p> RegexCache<'p> {
    pub fn of(router: &'p Router) -> RegexCache<'p> {
        let mut cache = RegexCache::default();
        for entry in &router.entries {
            if let PathMatchers::Regex(regexes) = &entry.paths {
                for r in regexes.iter() {
                    cache.paths.insert(r.regex.as_str(), &r.regex);
                }
            }
        }
        for route in &router.routes {
            for h in route.matchers.headers.iter() {
                for v in h.values.iter() {
                    if let HeaderValueMatcher::Regex(re) = v {
                        cache.headers.insert(re.as_str(), re);
                    }
                }
            }
        }
        cache
    }
}

fn regex_error(route: &str, pattern: &str, e: regex::Error) -> RouterError {
    RouterError::Regex {
        route: route.to_owned(),
        pattern: pattern.to_owned(),
        source: Box::new(e),
    }
}

fn compile_headers(
    f: &Fields<'_>,
    cache: &RegexCache<'_>,
) -> Result<Vec<HeaderMatcher>, RouterError> {
    let map = match f.get("headers") {
        None => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(f.err("headers", "expected an object")),
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, values) in map {
        // Header names compare case-insensitively, and `_` stands for `-` (`x_foo` finds
        // `X-Foo`), as request headers are looked up in Kong.
        let normalized: String = name
            .chars()
            .map(|c| {
                if c == '_' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        let name_ok = HeaderName::from_bytes(normalized.as_bytes())
            .map_err(|_| f.err("headers", format!("invalid header name '{name}'")))?;
        let values = match values {
            Value::Array(a) if !a.is_empty() => a,
            _ => {
                return Err(f.err(
                    "headers",
                    format!("'{name}': expected a non-empty array of strings"),
                ))
            }
        };
        let mut matchers = Vec::with_capacity(values.len());
        for v in values {
            let v = v
                .as_str()
                .ok_or_else(|| f.err("headers", format!("'{name}': expected strings")))?;
            matchers.push(match v.strip_prefix("~*") {
                Some(pattern) => {
                    let lowered = pattern.to_ascii_lowercase();
                    let re = match cache.headers.get(lowered.as_str()) {
                        Some(re) => (*re).clone(),
                        None => RegexBuilder::new(&lowered)
                            .case_insensitive(true)
                            .build()
                            .map_err(|e| regex_error(f.id, v, e))?,
                    };
                    HeaderValueMatcher::Regex(re)
                }
                None => HeaderValueMatcher::Exact(v.to_ascii_lowercase().into()),
            });
        }
        out.push(HeaderMatcher {
            name: name_ok,
            values: matchers.into(),
        });
    }
    Ok(out)
}

/// A route's compiled paths for one group, with the path keys it is indexed under.
fn compile_group(
    route: &str,
    group: &[&str],
    cache: &RegexCache<'_>,
) -> Result<(PathMatchers, Vec<String>), RouterError> {
    if group.first().is_some_and(|p| p.starts_with('~')) {
        let mut regexes = Vec::with_capacity(group.len());
        let mut keys = Vec::with_capacity(group.len());
        for p in group {
            let pattern = p.get(1..).unwrap_or("");
            // Regex paths are anchored at the start of the path, never at its end.
            let anchored = format!("^{pattern}");
            let re = match cache.paths.get(anchored.as_str()) {
                Some(re) => (*re).clone(),
                None => Regex::new(&anchored).map_err(|e| regex_error(route, p, e))?,
            };
            keys.push(literal_prefix(pattern).to_owned());
            regexes.push(RegexPath {
                has_groups: re.captures_len() > 1,
                regex: re,
            });
        }
        Ok((PathMatchers::Regex(regexes.into()), keys))
    } else {
        let prefixes: Vec<Box<str>> = group.iter().map(|p| Box::from(*p)).collect();
        let keys = group.iter().map(|p| p.to_string()).collect();
        Ok((PathMatchers::Prefix(prefixes.into()), keys))
    }
}

/// One route compiled: what it shares, and its parts.
pub(crate) struct ParsedRoute {
    pub compiled: CompiledRoute,
    /// One per path group (one, with no paths, when the route has none).
    pub parts: Vec<Part>,
}

/// One path group of a route: what it is ordered, matched and indexed by.
pub(crate) struct Part {
    pub paths: PathMatchers,
    /// The path keys it is indexed under.
    pub keys: Vec<String>,
    pub inputs: PriorityInputs,
    /// The tie-break id.
    pub uuid: Uuid,
}

/// Compiles one route; `None` for routes the HTTP router does not serve (stream routes, and
/// routes of a disabled service).
pub(crate) fn parse_route<'d>(
    doc: &'d Doc,
    services: &mut Services<'d>,
    cache: &RegexCache<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<ParsedRoute>, RouterError> {
    let id = entity_id(doc, "route")?;
    let f = Fields {
        doc,
        entity: "route",
        id,
    };
    let protocols: Protocols = match f.strings("protocols")? {
        None => [Protocol::Http, Protocol::Https].into_iter().collect(),
        Some(list) => list
            .iter()
            .map(|p| {
                Protocol::parse(p)
                    .ok_or_else(|| f.err("protocols", format!("unknown protocol '{p}'")))
            })
            .collect::<Result<Protocols, _>>()?,
    };
    if !protocols.any_http() {
        return Ok(None);
    }
    let uuid = Uuid::parse_str(id).map_err(|_| f.err("id", "expected a UUID"))?;
    if f.get("expression").is_some() {
        return Err(f.err(
            "expression",
            "expression routes need the 'expressions' router flavor",
        ));
    }
    for field in ["sources", "destinations"] {
        if f.is_set(field) {
            return Err(f.err(field, "not supported on HTTP routes"));
        }
    }

    let service = match f.foreign_id("service")? {
        None => None,
        Some(sid) => match services.resolve(id, sid, warnings)? {
            // Routes of a disabled service are not routable at all.
            Some((_, false)) => return Ok(None),
            Some((i, true)) => Some(i),
            None => None,
        },
    };

    let methods = f.strings("methods")?;
    let hosts = f.strings("hosts")?;
    let snis = f.strings("snis")?;
    let paths: Vec<String> = f
        .strings("paths")?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let headers = compile_headers(&f, cache)?;

    let matchers = RouteMatchers {
        methods: methods.iter().flatten().map(|m| Box::from(*m)).collect(),
        hosts: hosts
            .iter()
            .flatten()
            .map(|h| HostMatcher::parse(h))
            .collect(),
        snis: snis
            .iter()
            .flatten()
            .map(|s| SniMatcher::parse(s))
            .collect(),
        headers: headers.into(),
    };

    let match_weight = [
        !matchers.methods.is_empty(),
        !matchers.hosts.is_empty(),
        !matchers.headers.is_empty(),
        !matchers.snis.is_empty(),
        !paths.is_empty(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if match_weight == 0 {
        return Err(RouterError::NoMatchers(id.to_owned()));
    }
    let regex_priority = f.int_opt("regex_priority")?.unwrap_or(0);
    let base = PriorityInputs {
        match_weight: u8::try_from(match_weight).unwrap_or(7),
        // An empty `hosts` array still counts as "plain hosts only" (Kong tests the field's
        // type, not its length).
        plain_hosts_only: hosts
            .as_ref()
            .is_some_and(|hs| hs.iter().all(|h| !h.contains('*'))),
        headers: matchers.headers.len(),
        regex: false,
        regex_priority,
        prefix_len: 0,
    };

    let groups = group_paths(&paths);
    let split = groups.len() > 1;
    let mut compiled_groups = Vec::with_capacity(groups.len().max(1));
    if groups.is_empty() {
        compiled_groups.push(Part {
            paths: PathMatchers::Any,
            keys: vec![String::new()],
            inputs: base,
            uuid,
        });
    }
    for (n, group) in groups.iter().enumerate() {
        let (paths, keys) = compile_group(id, group, cache)?;
        let inputs = PriorityInputs {
            regex: paths.is_regex(),
            prefix_len: if paths.is_regex() {
                0
            } else {
                group.first().map_or(0, |p| p.len())
            },
            ..base
        };
        let entry_id = if split { split_id(id, n + 1) } else { uuid };
        compiled_groups.push(Part {
            paths,
            keys,
            inputs,
            uuid: entry_id,
        });
    }

    let path_handling = match f.str_opt("path_handling")? {
        None | Some("v0") => PathHandling::V0,
        Some("v1") => PathHandling::V1,
        Some(other) => {
            return Err(f.err("path_handling", format!("expected v0 or v1, got '{other}'")))
        }
    };
    let https_redirect_status_code: u16 = f.int_in("https_redirect_status_code", 426)?;
    if ![426, 301, 302, 307, 308].contains(&https_redirect_status_code) {
        return Err(f.err(
            "https_redirect_status_code",
            format!("expected one of 426, 301, 302, 307, 308, got {https_redirect_status_code}"),
        ));
    }
    let grpc_only = !protocols.contains(Protocol::Http) && !protocols.contains(Protocol::Https);
    let info = RouteInfo {
        id: id.to_owned(),
        uuid,
        name: f.str_opt("name")?.map(str::to_owned),
        protocols,
        // gRPC routes default to not stripping.
        strip_path: f.bool_or("strip_path", !grpc_only)?,
        preserve_host: f.bool_or("preserve_host", false)?,
        path_handling,
        https_redirect_status_code,
        request_buffering: f.bool_or("request_buffering", true)?,
        response_buffering: f.bool_or("response_buffering", true)?,
        regex_priority,
        created_at: f.int_opt("created_at")?,
        service_id: service.map(|i| services.list[i].id.clone()),
    };
    Ok(Some(ParsedRoute {
        compiled: CompiledRoute {
            info,
            matchers,
            service,
        },
        parts: compiled_groups,
    }))
}
