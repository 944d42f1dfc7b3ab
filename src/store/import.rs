//! Bulk writes: loading many entities at once, all or nothing, and reading everything back.
//!
//! An import runs every entity through the same write logic as single Admin API writes (so
//! validation, references and unique keys behave identically), then commits once. When the
//! target holds no entities yet, the logic runs against an in-memory staging copy and the
//! result is written with batched inserts: the fast path for `db_import` into a fresh database
//! and for DB-less loads.

use serde_json::Value;

use super::backend::memory::MemoryState;
use super::backend::{Change, Tx};
use super::dao::{find, insert_in, upsert_in, EntityKey, WriteOptions};
use super::error::DbError;
use super::schema::{Doc, Schema};
use super::{entities, Store};
use std::sync::Arc;

/// One entity to import.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// Its schema.
    pub schema: &'static Schema,
    /// The entity; foreign keys as `{"id": ...}` (or by a unique field of the target).
    pub doc: Doc,
    /// Where it came from, for errors (e.g. `services[2].routes[0]`).
    pub origin: String,
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Replace everything stored (DB-less loads) instead of adding to it (`db_import`).
    pub replace: bool,
    /// Skip write transformations (`_transform: false`).
    pub no_transform: bool,
}

/// One entity that could not be imported.
#[derive(Debug)]
pub struct ImportError {
    /// Where the entity came from.
    pub origin: String,
    /// Entity name.
    pub entity: &'static str,
    /// Why.
    pub error: DbError,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.error)
    }
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// Entities were invalid; every one is listed.
    #[error("{} invalid entit{}: {}", .0.len(), if .0.len() == 1 { "y" } else { "ies" }, .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ImportError>),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What an import wrote, per entity.
pub type ImportSummary = Vec<(&'static str, usize)>;

fn order(schema: &Schema) -> usize {
    entities::all()
        .iter()
        .position(|s| s.name == schema.name)
        .unwrap_or(usize::MAX)
}

impl Store {
    /// Writes every item in one transaction, or nothing when any item fails.
    pub async fn import(
        &self,
        mut items: Vec<ImportItem>,
        opts: ImportOptions,
    ) -> Result<ImportSummary, ImportFailure> {
        // Referenced entities first, so references always point at something already written.
        items.sort_by_key(|i| order(i.schema));
        let write_opts = WriteOptions {
            transform: !opts.no_transform,
        };
        let ctx = super::schema::Context {
            plugins: self.plugins(),
        };
        let mut tx = self.write().await?;
        if opts.replace {
            tx.clear().await?;
        }
        let staged = matches!(tx, Tx::Sql(_)) && tx.is_empty().await?;
        let mut summary: ImportSummary = Vec::new();
        let mut errors = Vec::new();
        {
            let staging_state = Arc::new(MemoryState::default());
            let mut staging = if staged {
                Some(Tx::Memory(staging_state.write().await))
            } else {
                None
            };
            let target = staging.as_mut().unwrap_or(&mut tx);
            for mut item in items {
                let id = match item.doc.get("id").and_then(Value::as_str) {
                    Some(id) if uuid::Uuid::parse_str(id).is_ok() => Some(id.to_ascii_lowercase()),
                    _ => None,
                };
                let result = match id {
                    Some(id) => {
                        let key = EntityKey::Id(id.clone());
                        match find(target, item.schema, &key).await {
                            Ok(Some(_)) => {
                                upsert_in(target, item.schema, &key, item.doc, write_opts, &ctx)
                                    .await
                                    .map(|_| ())
                            }
                            // New entities keep the timestamps the document gives (an export
                            // imported elsewhere exports the same again).
                            Ok(None) => {
                                item.doc.insert("id".into(), Value::from(id));
                                insert_in(target, item.schema, item.doc, write_opts, &ctx)
                                    .await
                                    .map(|_| ())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    None => insert_in(target, item.schema, item.doc, write_opts, &ctx)
                        .await
                        .map(|_| ()),
                };
                match result {
                    Ok(()) => match summary.last_mut() {
                        Some((name, n)) if *name == item.schema.name => *n += 1,
                        _ => summary.push((item.schema.name, 1)),
                    },
                    Err(error) => errors.push(ImportError {
                        origin: item.origin,
                        entity: item.schema.name,
                        error,
                    }),
                }
            }
            if !errors.is_empty() {
                return Err(ImportFailure::Invalid(errors));
            }
            if let Some(Tx::Memory(staging)) = staging {
                let rows = staging.into_rows();
                tx.insert_many(&rows).await?;
            }
        }
        let change = Change {
            op: "reload".into(),
            entity: None,
            id: None,
        };
        tx.record(self.node_id(), &change).await?;
        tx.commit().await?;
        self.notify(change);
        Ok(summary)
    }

    /// Every stored entity, grouped per entity in dependency order, each group ordered by id.
    pub async fn export(&self) -> Result<Vec<(&'static str, Vec<Doc>)>, DbError> {
        let mut out: Vec<(&'static str, Vec<Doc>)> = Vec::new();
        self.scan(|name, page| match out.last_mut() {
            Some((last, docs)) if *last == name => docs.extend(page),
            _ => out.push((name, page)),
        })
        .await?;
        Ok(out)
    }

    /// Reads every stored entity in one consistent transaction, handing them to `each` a page
    /// (up to 1,000 entities of one type) at a time, in the order of [`Store::export`]; every
    /// entity type is visited, with an empty page when it has none. Memory stays bounded by
    /// the page, whatever the configuration's size.
    pub async fn scan(&self, mut each: impl FnMut(&'static str, Vec<Doc>)) -> Result<(), DbError> {
        let mut tx = self.read().await?;
        for schema in entities::all() {
            let mut after: Option<String> = None;
            loop {
                let q = super::backend::PageQuery {
                    entity: schema.name,
                    after: after.as_deref(),
                    limit: 1000,
                    parent: None,
                    tags: None,
                };
                let page = tx.page(&q).await?;
                let done = page.len() < 1000;
                after = page
                    .last()
                    .and_then(|d| d.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if !page.is_empty() || after.is_none() {
                    each(schema.name, page);
                }
                if done {
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[tokio::test]
    async fn scan_pages_are_bounded() {
        let store = Store::memory();
        let schema = entities::entity("services").expect("schema");
        let items = (0..2500)
            .map(|i| {
                let mut doc = Doc::new();
                doc.insert("name".into(), Value::from(format!("s{i}")));
                doc.insert("host".into(), Value::from("h"));
                ImportItem {
                    schema,
                    doc,
                    origin: String::new(),
                }
            })
            .collect();
        store
            .import(items, ImportOptions::default())
            .await
            .expect("import");
        let mut pages = Vec::new();
        store
            .scan(|name, docs| {
                if name == "services" {
                    pages.push(docs.len())
                }
            })
            .await
            .expect("scan");
        assert_eq!(pages, [1000, 1000, 500]);
    }
}
