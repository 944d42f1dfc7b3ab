//! Storage primitives under the entity logic: rows with their key, reference and tag indexes.
//!
//! The entity layer ([`crate::store::dao`]) decides *what* to read and write: validation,
//! uniqueness, references, cascades. The backends only store rows and answer indexed lookups,
//! so every backend behaves the same by construction. A [`Tx`] is one transaction: on SQL
//! backends a database transaction; in memory a private copy swapped in on commit.

pub(crate) mod memory;
pub(crate) mod sql;

use serde_json::Value;

use super::error::DbError;
use super::schema::Doc;

/// A reference from a row to another entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Referencing field, e.g. `service`.
    pub field: &'static str,
    /// Referenced entity.
    pub entity: &'static str,
    /// Referenced id.
    pub id: String,
}

/// One stored entity with what it is indexed by.
#[derive(Debug, Clone)]
pub struct Row {
    /// Entity name.
    pub entity: &'static str,
    /// Primary key.
    pub id: String,
    /// The whole entity.
    pub data: Doc,
    /// Unique keys: (key name, value).
    pub keys: Vec<(String, String)>,
    /// Outgoing references.
    pub refs: Vec<Ref>,
    /// Tags.
    pub tags: Vec<String>,
}

/// A tag filter: all of the tags, or any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// The tags (at most five).
    pub tags: Vec<String>,
    /// `a,b` (all) or `a/b` (any).
    pub all: bool,
}

/// Which rows a page lists.
#[derive(Debug, Clone)]
pub struct PageQuery<'a> {
    /// Entity.
    pub entity: &'static str,
    /// Only ids after this one.
    pub after: Option<&'a str>,
    /// Rows to return.
    pub limit: usize,
    /// Only rows whose `field` references this entity id: (field, entity, id).
    pub parent: Option<(&'a str, &'static str, &'a str)>,
    /// Only rows with these tags.
    pub tags: Option<&'a TagFilter>,
}

/// A stored change, consumed by the node's configuration rebuild and (later) other nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// `create`, `update`, `delete`, or `reload` after a bulk import.
    pub op: String,
    /// Entity, absent for `reload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Entity id, absent for `reload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One transaction on some backend.
pub(crate) enum Tx {
    /// SQLite or PostgreSQL.
    Sql(sql::SqlTx),
    /// DB-less.
    Memory(memory::MemoryTx),
}

impl Tx {
    pub(crate) async fn get(&mut self, entity: &str, id: &str) -> Result<Option<Doc>, DbError> {
        match self {
            Tx::Sql(t) => t.get(entity, id).await,
            Tx::Memory(t) => Ok(t.get(entity, id)),
        }
    }

    pub(crate) async fn find_key(
        &mut self,
        entity: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<String>, DbError> {
        match self {
            Tx::Sql(t) => t.find_key(entity, key, value).await,
            Tx::Memory(t) => Ok(t.find_key(entity, key, value)),
        }
    }

    /// Rows referencing `entity`/`id`: (entity, id, field).
    pub(crate) async fn referrers(
        &mut self,
        entity: &str,
        id: &str,
    ) -> Result<Vec<(String, String, String)>, DbError> {
        match self {
            Tx::Sql(t) => t.referrers(entity, id).await,
            Tx::Memory(t) => Ok(t.referrers(entity, id)),
        }
    }

    pub(crate) async fn page(&mut self, q: &PageQuery<'_>) -> Result<Vec<Doc>, DbError> {
        match self {
            Tx::Sql(t) => t.page(q).await,
            Tx::Memory(t) => Ok(t.page(q)),
        }
    }

    /// Tag index entries (tag, entity, id) in that order, after `after`, optionally one tag.
    pub(crate) async fn tags(
        &mut self,
        tag: Option<&str>,
        after: Option<&(String, String, String)>,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, DbError> {
        match self {
            Tx::Sql(t) => t.tags(tag, after, limit).await,
            Tx::Memory(t) => Ok(t.tags(tag, after, limit)),
        }
    }

    pub(crate) async fn put(&mut self, row: Row) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => t.put(&row).await,
            Tx::Memory(t) => {
                t.put(row);
                Ok(())
            }
        }
    }

    /// Inserts rows known to be new (bulk import).
    pub(crate) async fn insert_many(&mut self, rows: &[Row]) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => t.insert_many(rows).await,
            Tx::Memory(t) => {
                for row in rows {
                    t.put(row.clone());
                }
                Ok(())
            }
        }
    }

    pub(crate) async fn remove(&mut self, entity: &str, id: &str) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => t.remove(entity, id).await,
            Tx::Memory(t) => {
                t.remove(entity, id);
                Ok(())
            }
        }
    }

    /// Removes every entity (a DB-less reload, `db_import` never does this).
    pub(crate) async fn clear(&mut self) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => t.clear().await,
            Tx::Memory(t) => {
                t.clear();
                Ok(())
            }
        }
    }

    /// Whether no entity is stored at all.
    pub(crate) async fn is_empty(&mut self) -> Result<bool, DbError> {
        match self {
            Tx::Sql(t) => t.is_empty().await,
            Tx::Memory(t) => Ok(t.is_empty()),
        }
    }

    pub(crate) async fn record(&mut self, node: &str, change: &Change) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => {
                let data =
                    serde_json::to_string(change).map_err(|e| DbError::Database(e.to_string()))?;
                t.record(node, &data).await
            }
            Tx::Memory(_) => Ok(()),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sql(t) => t.commit().await,
            Tx::Memory(t) => {
                t.commit();
                Ok(())
            }
        }
    }
}

/// Parses a stored document.
pub(crate) fn parse_doc(text: &str) -> Result<Doc, DbError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(DbError::Database(format!(
            "stored entity is not a JSON object: {}",
            text.chars().take(80).collect::<String>()
        ))),
    }
}
