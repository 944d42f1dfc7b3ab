//! Plugin chains, resolved when the snapshot is built: for every route, the plugins that apply
//! to it in priority order, each with the instance Kong's scoping precedence picks — with a
//! per-consumer override where a consumer-scoped instance wins.
//!
//! Precedence, most specific first: consumer+route+service, consumer+route, consumer+service,
//! route+service, consumer, route, service, global. Without a consumer only the non-consumer
//! scopes count; the request path then needs no lookup at all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::registry::Registry;
use super::Plugin;
use crate::router::{Protocol, Protocols, Router};
use crate::store::schema::Doc;

/// One configured plugin instance.
pub struct Entry {
    /// The instance.
    pub plugin: Arc<dyn Plugin>,
    /// Its kind's name.
    pub name: &'static str,
    /// The plugin entity's id.
    pub id: String,
    /// Its priority.
    pub priority: i32,
    /// The protocols it runs on.
    pub protocols: Protocols,
    /// The stored entity, to tell whether a rebuild may reuse the instance.
    source: String,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}

impl Entry {
    /// Whether it runs for a request over `protocol`.
    pub fn runs_on(&self, protocol: Protocol) -> bool {
        self.protocols.contains(protocol)
    }
}

/// One plugin kind's place in a chain.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    base: Option<Arc<Entry>>,
    consumers: HashMap<String, Arc<Entry>>,
}

impl Slot {
    /// The instance that applies for `consumer` (identified so far), if any.
    pub fn resolve(&self, consumer: Option<&str>) -> Option<&Arc<Entry>> {
        if let Some(c) = consumer.filter(|_| !self.consumers.is_empty()) {
            if let Some(e) = self.consumers.get(c) {
                return Some(e);
            }
        }
        self.base.as_ref()
    }

    /// The instance that applies without a consumer.
    pub fn base(&self) -> Option<&Arc<Entry>> {
        self.base.as_ref()
    }
}

/// The plugins of one route (or the global ones), by descending priority.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    slots: Vec<Slot>,
    reads_body: bool,
}

impl Chain {
    /// The slots, in the order plugins run.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Whether no plugin applies.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether some instance reads the request body in `access`.
    pub fn reads_body(&self) -> bool {
        self.reads_body
    }

    /// Whether some instance needs this request's body before `access` (see
    /// [`Plugin::needs_request_body`]). Every instance of a
    /// slot is asked: the consumer is not known yet.
    pub fn needs_body(&self, request: &http::request::Parts) -> bool {
        self.reads_body
            && self.slots.iter().any(|s| {
                s.base
                    .iter()
                    .chain(s.consumers.values())
                    .any(|e| e.plugin.reads_request_body() && e.plugin.needs_request_body(request))
            })
    }

    fn finish(mut self) -> Chain {
        self.reads_body = self.slots.iter().any(|s| {
            s.base
                .iter()
                .chain(s.consumers.values())
                .any(|e| e.plugin.reads_request_body())
        });
        self
    }
}

/// Every chain of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    global: Arc<Chain>,
    routes: Vec<Arc<Chain>>,
    entries: HashMap<String, Arc<Entry>>,
    /// Instances left out because they could not be built, with why.
    pub problems: Vec<String>,
}

/// A plugin entity's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scope<'a> {
    route: Option<&'a str>,
    service: Option<&'a str>,
    consumer: Option<&'a str>,
}

fn foreign<'a>(doc: &'a Doc, field: &str) -> Option<&'a str> {
    doc.get(field)?.get("id")?.as_str()
}

impl Plugins {
    /// Chains for every route of `router`, from the stored `plugins` documents; instances whose
    /// stored entity did not change are taken from `previous`.
    pub fn build(
        docs: &[Doc],
        router: &Router,
        registry: &Registry,
        previous: Option<&Plugins>,
    ) -> Plugins {
        let mut problems = Vec::new();
        let mut entries: HashMap<String, Arc<Entry>> = HashMap::new();
        // (kind priority, name) → instances with their scopes.
        let mut by_kind: HashMap<&'static str, Vec<(Scope<'_>, Arc<Entry>)>> = HashMap::new();
        for doc in docs {
            if doc.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let (Some(id), Some(name)) = (
                doc.get("id").and_then(Value::as_str),
                doc.get("name").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(kind) = registry.kind(name) else {
                problems.push(format!("plugin {id}: '{name}' is not enabled on this node"));
                continue;
            };
            let source = serde_json::to_string(doc).unwrap_or_default();
            let reused = previous
                .and_then(|p| p.entries.get(id))
                .filter(|e| e.source == source)
                .cloned();
            let entry = match reused {
                Some(e) => e,
                None => {
                    let config = match doc.get("config") {
                        Some(Value::Object(c)) => c.clone(),
                        _ => Doc::new(),
                    };
                    let plugin = match kind.build_entity(doc, &config, registry.env()) {
                        Ok(p) => p,
                        Err(e) => {
                            problems.push(format!("plugin {id} ({name}): {e}"));
                            continue;
                        }
                    };
                    let protocols = match doc.get("protocols").and_then(Value::as_array) {
                        Some(list) => list
                            .iter()
                            .filter_map(Value::as_str)
                            .filter_map(Protocol::parse)
                            .collect(),
                        None => [
                            Protocol::Http,
                            Protocol::Https,
                            Protocol::Grpc,
                            Protocol::Grpcs,
                        ]
                        .into_iter()
                        .collect(),
                    };
                    Arc::new(Entry {
                        plugin,
                        name: kind.name(),
                        id: id.to_owned(),
                        priority: kind.priority(),
                        protocols,
                        source,
                    })
                }
            };
            entries.insert(id.to_owned(), entry.clone());
            let scope = Scope {
                route: foreign(doc, "route"),
                service: foreign(doc, "service"),
                consumer: foreign(doc, "consumer"),
            };
            by_kind.entry(kind.name()).or_default().push((scope, entry));
        }
        let mut kinds: Vec<(&'static str, i32)> = by_kind
            .iter()
            .filter_map(|(name, list)| list.first().map(|(_, e)| (*name, e.priority)))
            .collect();
        // Descending priority; equal priorities by name, so the order is stable.
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

        let specific: HashSet<&str> = by_kind
            .values()
            .flatten()
            .flat_map(|(s, _)| s.route.into_iter().chain(s.service))
            .collect();
        let global = Arc::new(chain_for(&kinds, &by_kind, None, None));
        let routes = router
            .routes()
            .map(|route| {
                let service = route.service_id.as_deref();
                let touched = specific.contains(route.id.as_str())
                    || service.is_some_and(|s| specific.contains(s));
                if touched {
                    Arc::new(chain_for(&kinds, &by_kind, Some(&route.id), service))
                } else {
                    global.clone()
                }
            })
            .collect();
        Plugins {
            global,
            routes,
            entries,
            problems,
        }
    }

    /// The global chain: `rewrite`, and everything when no route matched.
    pub fn global(&self) -> &Arc<Chain> {
        &self.global
    }

    /// The chain of the route at `index` (see [`crate::router::Match::route_index`]).
    pub fn for_route(&self, index: usize) -> &Arc<Chain> {
        self.routes.get(index).unwrap_or(&self.global)
    }

    /// The names of the plugins configured (enabled instances), sorted.
    pub fn names(&self) -> std::collections::BTreeSet<&'static str> {
        self.entries.values().map(|e| e.name).collect()
    }

    /// How many instances are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no instance is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The chain for a request on `route` of `service` (both `None`: the global chain).
fn chain_for(
    kinds: &[(&'static str, i32)],
    by_kind: &HashMap<&'static str, Vec<(Scope<'_>, Arc<Entry>)>>,
    route: Option<&str>,
    service: Option<&str>,
) -> Chain {
    let mut slots = Vec::new();
    for (name, _) in kinds {
        let Some(list) = by_kind.get(name) else {
            continue;
        };
        // Instances that can apply here: their route and service, when set, must be ours.
        let fits = |s: &Scope<'_>| {
            s.route.is_none_or(|r| Some(r) == route) && s.service.is_none_or(|x| Some(x) == service)
        };
        let find = |r: bool, s: bool, c: Option<&str>| {
            list.iter()
                .find(|(scope, _)| {
                    fits(scope)
                        && scope.route.is_some() == r
                        && scope.service.is_some() == s
                        && scope.consumer == c
                })
                .map(|(_, e)| e.clone())
        };
        let route_and_service = find(true, true, None);
        let base = route_and_service
            .clone()
            .or_else(|| find(true, false, None))
            .or_else(|| find(false, true, None))
            .or_else(|| find(false, false, None));
        let mut consumers = HashMap::new();
        let named: HashSet<&str> = list
            .iter()
            .filter(|(s, _)| fits(s))
            .filter_map(|(s, _)| s.consumer)
            .collect();
        for c in named {
            let effective = find(true, true, Some(c))
                .or_else(|| find(true, false, Some(c)))
                .or_else(|| find(false, true, Some(c)))
                .or_else(|| route_and_service.clone())
                .or_else(|| find(false, false, Some(c)))
                .or_else(|| base.clone());
            if let Some(e) = effective {
                if !base.as_ref().is_some_and(|b| Arc::ptr_eq(b, &e)) {
                    consumers.insert(c.to_owned(), e);
                }
            }
        }
        if base.is_some() || !consumers.is_empty() {
            slots.push(Slot { base, consumers });
        }
    }
    Chain {
        slots,
        reads_body: false,
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{BuildEnv, Kind};
    use crate::store::schema::{PluginSchema, Record};
    use serde_json::json;

    /// A plugin that does nothing; instances are told apart by their ids.
    struct Tagged;
    impl Plugin for Tagged {}

    struct TagKind;
    impl Kind for TagKind {
        fn name(&self) -> &'static str {
            "tag"
        }
        fn priority(&self) -> i32 {
            1
        }
        fn schema(&self) -> PluginSchema {
            PluginSchema {
                name: "tag".into(),
                config: Record::new(vec![]),
                protocols: None,
                no_consumer: false,
                no_route: false,
                no_service: false,
            }
        }
        fn build(&self, _: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
            Ok(Arc::new(Tagged))
        }
    }

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("object literal"),
        }
    }

    fn plugin(
        tag: &str,
        route: Option<&str>,
        service: Option<&str>,
        consumer: Option<&str>,
    ) -> Doc {
        let id = |x: Option<&str>| x.map_or(Value::Null, |i| json!({ "id": i }));
        doc(json!({
            "id": format!("p-{tag}"), "name": "tag", "config": {"tag": tag},
            "route": id(route), "service": id(service), "consumer": id(consumer),
        }))
    }

    fn tag_of(e: Option<&Arc<Entry>>) -> Option<String> {
        e.map(|e| e.id.trim_start_matches("p-").to_owned())
    }

    #[test]
    fn precedence_follows_kong_with_and_without_consumer() {
        const R: &str = "00000000-0000-4000-8000-00000000000a";
        const S: &str = "00000000-0000-4000-8000-00000000000b";
        const OTHER: &str = "00000000-0000-4000-8000-00000000000c";
        let services = [doc(
            json!({"id": S, "protocol": "http", "host": "h", "port": 80}),
        )];
        let routes = [
            doc(json!({"id": R, "paths": ["/r"], "service": {"id": S}})),
            doc(json!({"id": OTHER, "paths": ["/o"]})),
        ];
        let router = Router::build(&routes, &services).expect("router");
        let registry = Registry::new(
            &["tag".to_owned()],
            vec![Arc::new(TagKind) as Arc<dyn Kind>],
            BuildEnv::default(),
        )
        .expect("registry");
        let index = router.routes().position(|r| r.id == R).expect("route");
        let resolve = |docs: &[Doc], consumer: Option<&str>| {
            let plugins = Plugins::build(docs, &router, &registry, None);
            let chain = plugins.for_route(index);
            tag_of(chain.slots().first().and_then(|s| s.resolve(consumer)))
        };
        let mut docs = vec![plugin("global", None, None, None)];
        assert_eq!(resolve(&docs, None).as_deref(), Some("global"));
        docs.push(plugin("service", None, Some(S), None));
        assert_eq!(resolve(&docs, None).as_deref(), Some("service"));
        docs.push(plugin("consumer", None, None, Some("c1")));
        assert_eq!(resolve(&docs, Some("c1")).as_deref(), Some("consumer"));
        assert_eq!(resolve(&docs, Some("c2")).as_deref(), Some("service"));
        docs.push(plugin("route", Some(R), None, None));
        assert_eq!(resolve(&docs, None).as_deref(), Some("route"));
        assert_eq!(
            resolve(&docs, Some("c1")).as_deref(),
            Some("consumer"),
            "consumer alone beats route alone"
        );
        docs.push(plugin("route+service", Some(R), Some(S), None));
        assert_eq!(
            resolve(&docs, Some("c1")).as_deref(),
            Some("route+service"),
            "route+service beats consumer alone"
        );
        docs.push(plugin("consumer+service", None, Some(S), Some("c1")));
        assert_eq!(
            resolve(&docs, Some("c1")).as_deref(),
            Some("consumer+service")
        );
        docs.push(plugin("consumer+route", Some(R), None, Some("c1")));
        assert_eq!(
            resolve(&docs, Some("c1")).as_deref(),
            Some("consumer+route")
        );
        docs.push(plugin("all", Some(R), Some(S), Some("c1")));
        assert_eq!(resolve(&docs, Some("c1")).as_deref(), Some("all"));
        assert_eq!(resolve(&docs, None).as_deref(), Some("route+service"));
        // A route-scoped instance elsewhere does not leak onto other routes.
        let plugins = Plugins::build(&docs, &router, &registry, None);
        let other = router.routes().position(|r| r.id == OTHER).expect("route");
        let chain = plugins.for_route(other);
        assert_eq!(
            tag_of(chain.slots().first().and_then(|s| s.resolve(None))).as_deref(),
            Some("global")
        );
    }

    #[test]
    fn unchanged_instances_are_reused_by_a_rebuild() {
        let router = Router::empty();
        let registry = Registry::new(
            &["tag".to_owned()],
            vec![Arc::new(TagKind) as Arc<dyn Kind>],
            BuildEnv::default(),
        )
        .expect("registry");
        let docs = vec![plugin("a", None, None, None)];
        let first = Plugins::build(&docs, &router, &registry, None);
        let second = Plugins::build(&docs, &router, &registry, Some(&first));
        let a = first.global().slots()[0].base().expect("a");
        let b = second.global().slots()[0].base().expect("b");
        assert!(Arc::ptr_eq(a, b));
    }
}
