//! Compiling stored routes and services into a [`Router`]: read each entity's JSON once, split
//! routes by path group, give every split entry its priority, sort, and index.

use std::collections::HashMap;

use http::HeaderName;
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use uuid::Uuid;

use super::error::RouterError;
use super::index::{HostKey, Index};
use super::matcher::{
    literal_prefix, HeaderMatcher, HeaderValueMatcher, HostMatcher, NameKind, PathMatchers,
    RegexPath, RouteMatchers, SniMatcher,
};
use super::model::{PathHandling, Protocol, Protocols, RouteInfo, ServiceInfo};
use super::priority::{group_paths, priority, split_id, PriorityInputs};
use super::{Doc, Router};

/// A route with its compiled attributes.
#[derive(Debug)]
pub(crate) struct CompiledRoute {
    pub info: RouteInfo,
    pub matchers: RouteMatchers,
    /// Index into [`Router::services`].
    pub service: Option<usize>,
}

/// One (split) route as ordered and matched: the route's shared attributes plus one path group.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Index into [`Router::routes`].
    pub route: usize,
    pub priority: u64,
    /// The tie-break id: the route's own, or the derived id of a split part.
    pub uuid: Uuid,
    pub paths: PathMatchers,
}

/// Typed access to one stored entity's fields, with errors that name the entity and field.
struct Fields<'d> {
    doc: &'d Doc,
    entity: &'static str,
    id: &'d str,
}

impl<'d> Fields<'d> {
    fn err(&self, field: &'static str, reason: impl Into<String>) -> RouterError {
        if self.entity == "route" {
            RouterError::route_field(self.id, field, reason)
        } else {
            RouterError::service_field(self.id, field, reason)
        }
    }

    /// The value, with JSON `null` read as absent.
    fn get(&self, field: &str) -> Option<&'d Value> {
        self.doc.get(field).filter(|v| !v.is_null())
    }

    fn str_opt(&self, field: &'static str) -> Result<Option<&'d str>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "expected a string")),
        }
    }

    fn bool_or(&self, field: &'static str, default: bool) -> Result<bool, RouterError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(field, "expected a boolean")),
        }
    }

    fn int_opt(&self, field: &'static str) -> Result<Option<i64>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(field, "expected an integer")),
        }
    }

    fn int_in<T: TryFrom<i64>>(&self, field: &'static str, default: T) -> Result<T, RouterError> {
        match self.int_opt(field)? {
            None => Ok(default),
            Some(n) => T::try_from(n).map_err(|_| self.err(field, format!("{n} is out of range"))),
        }
    }

    /// An array of strings; `None` when absent (an empty array is `Some`: it matters to the
    /// priority of `hosts`).
    fn strings(&self, field: &'static str) -> Result<Option<Vec<&'d str>>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| self.err(field, "expected strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.err(field, "expected an array of strings")),
        }
    }

    /// A foreign key `{"id": "..."}`.
    fn foreign_id(&self, field: &'static str) -> Result<Option<&'d str>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(o)) => match o.get("id") {
                Some(Value::String(id)) => Ok(Some(id)),
                _ => Err(self.err(field, "expected {\"id\": \"<uuid>\"}")),
            },
            Some(_) => Err(self.err(field, "expected {\"id\": \"<uuid>\"}")),
        }
    }

    fn is_set(&self, field: &str) -> bool {
        match self.get(field) {
            None => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        }
    }
}

fn entity_id<'d>(doc: &'d Doc, entity: &'static str) -> Result<&'d str, RouterError> {
    match doc.get("id") {
        Some(Value::String(id)) => Ok(id),
        _ => Err(RouterError::Field {
            entity,
            id: "?".into(),
            field: "id",
            reason: "expected a string".into(),
        }),
    }
}

fn parse_service(doc: &Doc) -> Result<ServiceInfo, RouterError> {
    let id = entity_id(doc, "service")?;
    let f = Fields {
        doc,
        entity: "service",
        id,
    };
    let protocol = match f.str_opt("protocol")? {
        None => Protocol::Http,
        Some(p) => Protocol::parse(p)
            .ok_or_else(|| f.err("protocol", format!("unknown protocol '{p}'")))?,
    };
    let host = f
        .str_opt("host")?
        .ok_or_else(|| f.err("host", "required field missing"))?;
    let default_port = if protocol == Protocol::Https { 443 } else { 80 };
    let ca_certificates = f
        .strings("ca_certificates")?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(ServiceInfo {
        id: id.to_owned(),
        name: f.str_opt("name")?.map(str::to_owned),
        protocol,
        host: host.to_owned(),
        port: f.int_in("port", default_port)?,
        path: f.str_opt("path")?.map(str::to_owned),
        connect_timeout: f.int_in("connect_timeout", 60_000)?,
        write_timeout: f.int_in("write_timeout", 60_000)?,
        read_timeout: f.int_in("read_timeout", 60_000)?,
        retries: f.int_in("retries", 5)?,
        tls_verify: match f.get("tls_verify") {
            None => None,
            Some(_) => Some(f.bool_or("tls_verify", false)?),
        },
        tls_verify_depth: match f.int_opt("tls_verify_depth")? {
            None => None,
            Some(_) => Some(f.int_in("tls_verify_depth", 0)?),
        },
        ca_certificates,
        client_certificate: f.foreign_id("client_certificate")?.map(str::to_owned),
    })
}

/// Services by id, parsed the first time a route refers to them.
struct Services<'d> {
    docs: HashMap<&'d str, &'d Doc>,
    parsed: HashMap<&'d str, Option<usize>>,
    list: Vec<ServiceInfo>,
    /// Whether each parsed service is enabled, by index into `list`.
    enabled: Vec<bool>,
}

impl<'d> Services<'d> {
    fn new(services: &'d [Doc]) -> Result<Services<'d>, RouterError> {
        let mut docs = HashMap::with_capacity(services.len());
        for doc in services {
            docs.insert(entity_id(doc, "service")?, doc);
        }
        Ok(Services {
            docs,
            parsed: HashMap::new(),
            list: Vec::new(),
            enabled: Vec::new(),
        })
    }

    /// The service `id` (index, enabled), or `None` when it cannot serve HTTP routes.
    fn resolve(
        &mut self,
        route: &str,
        id: &'d str,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(usize, bool)>, RouterError> {
        if let Some(known) = self.parsed.get(id) {
            return Ok(known.map(|i| (i, self.enabled[i])));
        }
        let doc = self
            .docs
            .get(id)
            .copied()
            .ok_or_else(|| RouterError::ServiceNotFound {
                route: route.to_owned(),
                service: id.to_owned(),
            })?;
        let service = parse_service(doc)?;
        let slot = if service.protocol.is_http() {
            let enabled = Fields {
                doc,
                entity: "service",
                id,
            }
            .bool_or("enabled", true)?;
            self.list.push(service);
            self.enabled.push(enabled);
            Some(self.list.len() - 1)
        } else {
            // Kong routes such a route as if it had no service, with a warning.
            warnings.push(format!(
                "service {id} with protocol '{}' cannot serve HTTP route {route}; the route is \
                 routed without a service",
                service.protocol.as_str()
            ));
            None
        };
        self.parsed.insert(id, slot);
        Ok(slot.map(|i| (i, self.enabled[i])))
    }
}

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

/// Parses one route; `None` for routes the HTTP router does not serve.
struct ParsedRoute {
    compiled: CompiledRoute,
    /// One per path group: the paths, their index keys and the priority inputs.
    groups: Vec<(PathMatchers, Vec<String>, PriorityInputs, Uuid)>,
}

fn parse_route<'d>(
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
        compiled_groups.push((PathMatchers::Any, vec![String::new()], base, uuid));
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
        compiled_groups.push((paths, keys, inputs, entry_id));
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
        groups: compiled_groups,
    }))
}

/// Where a host matcher is indexed.
fn host_key(h: &HostMatcher) -> HostKey<'_> {
    match h.kind {
        NameKind::Exact => HostKey::Exact(&h.value),
        // The lookup tries the request host's suffixes and prefixes at its dots, so only values
        // with the dot at the seam can be found that way; others go in the host-agnostic bucket
        // (they are still tested in full).
        NameKind::Suffix if h.value.starts_with('.') => HostKey::Suffix(&h.value),
        NameKind::Prefix if h.value.ends_with('.') => HostKey::Prefix(&h.value),
        NameKind::Suffix | NameKind::Prefix => HostKey::Any,
    }
}

pub(crate) fn build(
    routes: &[Doc],
    services: &[Doc],
    cache: &RegexCache<'_>,
) -> Result<Router, RouterError> {
    let mut services = Services::new(services)?;
    let mut warnings = Vec::new();
    let mut compiled: Vec<CompiledRoute> = Vec::with_capacity(routes.len());
    let mut entries: Vec<(Entry, Vec<String>)> = Vec::with_capacity(routes.len());
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(routes.len());

    for doc in routes {
        let id = entity_id(doc, "route")?;
        if seen.insert(id, ()).is_some() {
            return Err(RouterError::DuplicateRoute(id.to_owned()));
        }
        let Some(parsed) = parse_route(doc, &mut services, cache, &mut warnings)? else {
            continue;
        };
        let route = compiled.len();
        compiled.push(parsed.compiled);
        for (paths, keys, inputs, uuid) in parsed.groups {
            entries.push((
                Entry {
                    route,
                    priority: priority(&inputs),
                    uuid,
                    paths,
                },
                keys,
            ));
        }
    }

    // Highest priority first; equal priorities: the larger id first.
    entries.sort_by(|(a, _), (b, _)| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| b.uuid.cmp(&a.uuid))
    });

    let mut index = Index::default();
    for (rank, (entry, keys)) in entries.iter().enumerate() {
        let rank = u32::try_from(rank).map_err(|_| RouterError::Field {
            entity: "route",
            id: compiled[entry.route].info.id.clone(),
            field: "paths",
            reason: "too many routes".into(),
        })?;
        let hosts = &compiled[entry.route].matchers.hosts;
        for key in keys {
            if hosts.is_empty() {
                index.insert(HostKey::Any, key, rank);
            }
            for h in hosts.iter() {
                index.insert(host_key(h), key, rank);
            }
        }
    }

    Ok(Router {
        routes: compiled,
        services: services.list,
        entries: entries.into_iter().map(|(e, _)| e).collect(),
        index,
        warnings,
    })
}
