//! Compiling stored routes and services into a [`Router`]: read each entity's JSON once, split
//! routes by path group, give every split part its priority, sort, and index.

use std::collections::HashSet;

use uuid::Uuid;

use super::compile::{parse_route, RegexCache};
use super::entity::{entity_id, Services};
use super::error::RouterError;
use super::index::{HostKey, Index};
use super::matcher::{HostMatcher, NameKind, PathMatchers, RouteMatchers};
use super::model::RouteInfo;
use super::priority::priority;
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

/// Compiles `routes` against `services`, taking already compiled regexes from `cache`.
pub(crate) fn build(
    routes: &[Doc],
    services: &[Doc],
    cache: &RegexCache<'_>,
) -> Result<Router, RouterError> {
    let mut services = Services::new(services)?;
    let mut warnings = Vec::new();
    let mut compiled: Vec<CompiledRoute> = Vec::with_capacity(routes.len());
    let mut entries: Vec<(Entry, Vec<String>)> = Vec::with_capacity(routes.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(routes.len());

    for doc in routes {
        let id = entity_id(doc, "route")?;
        if !seen.insert(id) {
            return Err(RouterError::DuplicateRoute(id.to_owned()));
        }
        let Some(parsed) = parse_route(doc, &mut services, cache, &mut warnings)? else {
            continue;
        };
        let route = compiled.len();
        compiled.push(parsed.compiled);
        for part in parsed.parts {
            entries.push((
                Entry {
                    route,
                    priority: priority(&part.inputs),
                    uuid: part.uuid,
                    paths: part.paths,
                },
                part.keys,
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
