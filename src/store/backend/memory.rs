//! The in-memory backend behind `database = off`: the same indexes as the SQL tables, in maps.
//!
//! Readers take the current [`MemoryDb`] without locking; a writer copies it (rows are shared
//! through `Arc`, so the copy is cheap), changes the copy and swaps it in on commit. A DB-less
//! node replaces its whole configuration at once, so writes are rare and large.
//!
//! Entities are kept as compact JSON text, as the SQL tables keep them, and parsed when read:
//! a parsed document takes several times the memory of its text, and a DB-less node holds
//! every entity of its configuration.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{PageQuery, Row};
use crate::store::schema::Doc;

/// Every row and index of one configuration.
#[derive(Debug, Clone, Default)]
pub struct MemoryDb {
    rows: BTreeMap<(String, String), Arc<Stored>>,
    keys: HashMap<(String, String, String), String>,
    /// (ref_entity, ref_id, entity, field, id)
    refs: BTreeSet<(String, String, String, String, String)>,
}

impl MemoryDb {
    fn get(&self, entity: &str, id: &str) -> Option<&Arc<Stored>> {
        self.rows.get(&(entity.to_owned(), id.to_owned()))
    }
}

/// A row as kept in memory: the entity as JSON text, plus its index entries.
#[derive(Debug)]
struct Stored {
    entity: &'static str,
    id: String,
    data: Box<str>,
    keys: Vec<(String, String)>,
    refs: Vec<super::Ref>,
    tags: Vec<String>,
}

impl Stored {
    fn doc(&self) -> Option<Doc> {
        super::parse_doc(&self.data).ok()
    }
}

/// The shared state: the current configuration plus the writer lock.
#[derive(Debug, Default)]
pub struct MemoryState {
    current: ArcSwap<MemoryDb>,
    writer: Arc<Mutex<()>>,
}

impl MemoryState {
    /// A read-only transaction on the current configuration.
    pub(crate) fn read(&self) -> MemoryTx {
        MemoryTx {
            base: self.current.load_full(),
            copy: None,
            guard: None,
            target: None,
        }
    }

    /// A write transaction; writers queue behind each other.
    pub(crate) async fn write(self: &Arc<Self>) -> MemoryTx {
        let guard = self.writer.clone().lock_owned().await;
        MemoryTx {
            base: self.current.load_full(),
            copy: None,
            guard: Some(guard),
            target: Some(self.clone()),
        }
    }
}

/// A transaction on the in-memory backend.
pub(crate) struct MemoryTx {
    base: Arc<MemoryDb>,
    copy: Option<MemoryDb>,
    guard: Option<OwnedMutexGuard<()>>,
    target: Option<Arc<MemoryState>>,
}

impl MemoryTx {
    fn db(&self) -> &MemoryDb {
        self.copy.as_ref().unwrap_or(&self.base)
    }

    fn db_mut(&mut self) -> &mut MemoryDb {
        let base = &self.base;
        self.copy.get_or_insert_with(|| (**base).clone())
    }

    pub(crate) fn get(&self, entity: &str, id: &str) -> Option<Doc> {
        self.db().get(entity, id).and_then(|r| r.doc())
    }

    pub(crate) fn find_key(&self, entity: &str, key: &str, value: &str) -> Option<String> {
        self.db()
            .keys
            .get(&(entity.to_owned(), key.to_owned(), value.to_owned()))
            .cloned()
    }

    pub(crate) fn referrers(&self, entity: &str, id: &str) -> Vec<(String, String, String)> {
        let from = (
            entity.to_owned(),
            id.to_owned(),
            String::new(),
            String::new(),
            String::new(),
        );
        let mut out: Vec<(String, String, String)> = self
            .db()
            .refs
            .range(from..)
            .take_while(|r| r.0 == entity && r.1 == id)
            .map(|r| (r.2.clone(), r.4.clone(), r.3.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    pub(crate) fn page(&self, q: &PageQuery<'_>) -> Vec<Doc> {
        let db = self.db();
        let start = (q.entity.to_owned(), q.after.unwrap_or_default().to_owned());
        db.rows
            .range(start..)
            .take_while(|((e, _), _)| e == q.entity)
            .filter(|((_, id), _)| q.after.is_none_or(|a| id.as_str() > a))
            .map(|(_, row)| row)
            .filter(|row| match q.parent {
                None => true,
                Some((field, ref_entity, ref_id)) => row
                    .refs
                    .iter()
                    .any(|r| r.field == field && r.entity == ref_entity && r.id == ref_id),
            })
            .filter(|row| match q.tags {
                None => true,
                Some(f) => {
                    let has = |t: &String| row.tags.contains(t);
                    if f.all {
                        f.tags.iter().all(has)
                    } else {
                        f.tags.iter().any(has)
                    }
                }
            })
            .take(q.limit)
            .filter_map(|row| row.doc())
            .collect()
    }

    pub(crate) fn tags(
        &self,
        tag: Option<&str>,
        after: Option<&(String, String, String)>,
        limit: usize,
    ) -> Vec<(String, String, String)> {
        let mut all: Vec<(String, String, String)> = self
            .db()
            .rows
            .values()
            .flat_map(|r| {
                r.tags
                    .iter()
                    .filter(|t| tag.is_none_or(|want| want == t.as_str()))
                    .map(|t| (t.clone(), r.entity.to_owned(), r.id.clone()))
            })
            .filter(|entry| after.is_none_or(|a| entry > a))
            .collect();
        all.sort();
        all.truncate(limit);
        all
    }

    pub(crate) fn put(&mut self, row: Row) {
        self.remove(row.entity, &row.id);
        let db = self.db_mut();
        for (key, value) in &row.keys {
            db.keys.insert(
                (row.entity.to_owned(), key.clone(), value.clone()),
                row.id.clone(),
            );
        }
        for r in &row.refs {
            db.refs.insert((
                r.entity.to_owned(),
                r.id.clone(),
                row.entity.to_owned(),
                r.field.to_owned(),
                row.id.clone(),
            ));
        }
        let stored = Stored {
            entity: row.entity,
            data: serde_json::Value::Object(row.data)
                .to_string()
                .into_boxed_str(),
            id: row.id,
            keys: row.keys,
            refs: row.refs,
            tags: row.tags,
        };
        db.rows.insert(
            (stored.entity.to_owned(), stored.id.clone()),
            Arc::new(stored),
        );
    }

    pub(crate) fn remove(&mut self, entity: &str, id: &str) {
        if self.db().get(entity, id).is_none() {
            return;
        }
        let db = self.db_mut();
        let Some(row) = db.rows.remove(&(entity.to_owned(), id.to_owned())) else {
            return;
        };
        for (key, value) in &row.keys {
            db.keys
                .remove(&(entity.to_owned(), key.clone(), value.clone()));
        }
        for r in &row.refs {
            db.refs.remove(&(
                r.entity.to_owned(),
                r.id.clone(),
                entity.to_owned(),
                r.field.to_owned(),
                id.to_owned(),
            ));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.db().rows.is_empty()
    }

    /// Every row written in this transaction's copy (the staging area of an import).
    pub(crate) fn into_rows(self) -> Vec<Row> {
        match self.copy {
            Some(db) => db
                .rows
                .into_values()
                .map(|r| Row {
                    entity: r.entity,
                    id: r.id.clone(),
                    data: r.doc().unwrap_or_default(),
                    keys: r.keys.clone(),
                    refs: r.refs.clone(),
                    tags: r.tags.clone(),
                })
                .collect(),
            None => Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.copy = Some(MemoryDb::default());
    }

    pub(crate) fn commit(self) {
        if let (Some(copy), Some(target)) = (self.copy, &self.target) {
            target.current.store(Arc::new(copy));
        }
        drop(self.guard);
    }
}
