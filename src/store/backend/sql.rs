//! The SQL backends: SQLite and PostgreSQL run the same statements (`$n` placeholders work on
//! both); only bulk inserts and timestamps differ.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Postgres, Sqlite, Transaction};

use super::{parse_doc, PageQuery, Row};
use crate::store::error::DbError;
use crate::store::schema::Doc;

/// A transaction on either SQL database.
pub(crate) enum SqlTx {
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same expression against whichever database the transaction is on.
macro_rules! on {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            SqlTx::Sqlite($c) => $body,
            SqlTx::Postgres($c) => $body,
        }
    };
}

const INSERT_ROW: &str = "INSERT INTO entities (entity, id, data) VALUES ($1, $2, $3)";
const INSERT_KEY: &str = "INSERT INTO entity_keys (entity, key, value, id) VALUES ($1, $2, $3, $4)";
const INSERT_REF: &str =
    "INSERT INTO entity_refs (entity, id, field, ref_entity, ref_id) VALUES ($1, $2, $3, $4, $5)";
const INSERT_TAG: &str = "INSERT INTO entity_tags (entity, id, tag) VALUES ($1, $2, $3)";

impl SqlTx {
    pub(crate) async fn get(&mut self, entity: &str, id: &str) -> Result<Option<Doc>, DbError> {
        let sql = "SELECT data FROM entities WHERE entity = $1 AND id = $2";
        let text: Option<String> = on!(self, c => sqlx::query_scalar(sql)
            .bind(entity)
            .bind(id)
            .fetch_optional(&mut **c)
            .await)?;
        text.as_deref().map(parse_doc).transpose()
    }

    pub(crate) async fn find_key(
        &mut self,
        entity: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<String>, DbError> {
        let sql = "SELECT id FROM entity_keys WHERE entity = $1 AND key = $2 AND value = $3";
        Ok(on!(self, c => sqlx::query_scalar(sql)
            .bind(entity)
            .bind(key)
            .bind(value)
            .fetch_optional(&mut **c)
            .await)?)
    }

    pub(crate) async fn referrers(
        &mut self,
        entity: &str,
        id: &str,
    ) -> Result<Vec<(String, String, String)>, DbError> {
        let sql = "SELECT entity, id, field FROM entity_refs WHERE ref_entity = $1 AND ref_id = $2 ORDER BY entity, id";
        Ok(on!(self, c => sqlx::query_as(sql)
            .bind(entity)
            .bind(id)
            .fetch_all(&mut **c)
            .await)?)
    }

    pub(crate) async fn page(&mut self, q: &PageQuery<'_>) -> Result<Vec<Doc>, DbError> {
        let mut params: Vec<&str> = vec![q.entity];
        let mut sql = String::from("SELECT e.data FROM entities e");
        if let Some((field, ref_entity, ref_id)) = q.parent {
            params.extend([field, ref_entity, ref_id]);
            sql.push_str(" JOIN entity_refs r ON r.entity = e.entity AND r.id = e.id AND r.field = $2 AND r.ref_entity = $3 AND r.ref_id = $4");
        }
        sql.push_str(" WHERE e.entity = $1");
        if let Some(after) = q.after {
            params.push(after);
            sql.push_str(&format!(" AND e.id > ${}", params.len()));
        }
        if let Some(filter) = q.tags {
            let first = params.len() + 1;
            params.extend(filter.tags.iter().map(String::as_str));
            let list: Vec<String> = (first..=params.len()).map(|i| format!("${i}")).collect();
            let need = if filter.all { filter.tags.len() } else { 1 };
            sql.push_str(&format!(
                " AND (SELECT COUNT(*) FROM entity_tags t WHERE t.entity = e.entity AND t.id = e.id AND t.tag IN ({})) >= {need}",
                list.join(", ")
            ));
        }
        sql.push_str(&format!(" ORDER BY e.id LIMIT {}", q.limit));
        let texts: Vec<String> = on!(self, c => {
            let mut query = sqlx::query_scalar(&sql);
            for p in &params {
                query = query.bind(*p);
            }
            query.fetch_all(&mut **c).await
        })?;
        texts.iter().map(|t| parse_doc(t)).collect()
    }

    pub(crate) async fn tags(
        &mut self,
        tag: Option<&str>,
        after: Option<&(String, String, String)>,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, DbError> {
        let mut params: Vec<&str> = Vec::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(t) = tag {
            params.push(t);
            clauses.push(format!("tag = ${}", params.len()));
        }
        if let Some((t, e, i)) = after {
            params.extend([t.as_str(), e.as_str(), i.as_str()]);
            let n = params.len();
            clauses.push(format!(
                "(tag, entity, id) > (${}, ${}, ${})",
                n - 2,
                n - 1,
                n
            ));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!("SELECT tag, entity, id FROM entity_tags{filter} ORDER BY tag, entity, id LIMIT {limit}");
        Ok(on!(self, c => {
            let mut query = sqlx::query_as(&sql);
            for p in &params {
                query = query.bind(*p);
            }
            query.fetch_all(&mut **c).await
        })?)
    }

    pub(crate) async fn put(&mut self, row: &Row) -> Result<(), DbError> {
        self.remove(row.entity, &row.id).await?;
        self.insert(row).await
    }

    async fn insert(&mut self, row: &Row) -> Result<(), DbError> {
        let data = serde_json::Value::Object(row.data.clone()).to_string();
        let (entity, id) = (row.entity, row.id.as_str());
        on!(self, c => {
            sqlx::query(INSERT_ROW).bind(entity).bind(id).bind(&data).execute(&mut **c).await?;
            for (key, value) in &row.keys {
                sqlx::query(INSERT_KEY).bind(entity).bind(key).bind(value).bind(id).execute(&mut **c).await?;
            }
            for r in &row.refs {
                sqlx::query(INSERT_REF).bind(entity).bind(id).bind(r.field).bind(r.entity).bind(&r.id).execute(&mut **c).await?;
            }
            for tag in &row.tags {
                sqlx::query(INSERT_TAG).bind(entity).bind(id).bind(tag).execute(&mut **c).await?;
            }
        });
        Ok(())
    }

    /// Inserts rows known to be new, a column batch at a time (bulk imports): PostgreSQL gets
    /// whole columns as arrays, SQLite multi-row `VALUES` lists, so neither pays a statement
    /// per row.
    pub(crate) async fn insert_many(&mut self, rows: &[Row]) -> Result<(), DbError> {
        for chunk in rows.chunks(5000) {
            let mut e = Columns::<3>::default();
            let mut k = Columns::<4>::default();
            let mut r = Columns::<5>::default();
            let mut t = Columns::<3>::default();
            for row in chunk {
                let data = serde_json::Value::Object(row.data.clone()).to_string();
                e.push([row.entity.into(), row.id.clone(), data]);
                for (key, value) in &row.keys {
                    k.push([
                        row.entity.into(),
                        key.clone(),
                        value.clone(),
                        row.id.clone(),
                    ]);
                }
                for x in &row.refs {
                    r.push([
                        row.entity.into(),
                        row.id.clone(),
                        x.field.into(),
                        x.entity.into(),
                        x.id.clone(),
                    ]);
                }
                for tag in &row.tags {
                    t.push([row.entity.into(), row.id.clone(), tag.clone()]);
                }
            }
            e.insert(self, "entities (entity, id, data)").await?;
            k.insert(self, "entity_keys (entity, key, value, id)")
                .await?;
            r.insert(self, "entity_refs (entity, id, field, ref_entity, ref_id)")
                .await?;
            t.insert(self, "entity_tags (entity, id, tag)").await?;
        }
        Ok(())
    }

    pub(crate) async fn remove(&mut self, entity: &str, id: &str) -> Result<(), DbError> {
        on!(self, c => {
            for table in ["entities", "entity_keys", "entity_refs", "entity_tags"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE entity = $1 AND id = $2"))
                    .bind(entity)
                    .bind(id)
                    .execute(&mut **c)
                    .await?;
            }
        });
        Ok(())
    }

    pub(crate) async fn is_empty(&mut self) -> Result<bool, DbError> {
        let sql = "SELECT id FROM entities LIMIT 1";
        let any: Option<String> =
            on!(self, c => sqlx::query_scalar(sql).fetch_optional(&mut **c).await)?;
        Ok(any.is_none())
    }

    pub(crate) async fn clear(&mut self) -> Result<(), DbError> {
        on!(self, c => {
            for table in ["entities", "entity_keys", "entity_refs", "entity_tags"] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut **c).await?;
            }
        });
        Ok(())
    }

    pub(crate) async fn record(&mut self, node: &str, data: &str) -> Result<(), DbError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        // Changes are kept for an hour: long enough for every node to catch up.
        let expire = now + 3600.0;
        match self {
            SqlTx::Sqlite(c) => {
                sqlx::query("INSERT INTO cluster_events (id, node_id, at, expire_at, channel, data) VALUES ($1, $2, $3, $4, 'invalidations', $5)")
                    .bind(&id).bind(node).bind(now).bind(expire).bind(data)
                    .execute(&mut **c).await?;
            }
            SqlTx::Postgres(c) => {
                sqlx::query("INSERT INTO cluster_events (id, node_id, at, expire_at, channel, data) VALUES ($1::uuid, $2::uuid, to_timestamp($3), to_timestamp($4), 'invalidations', $5)")
                    .bind(&id).bind(node).bind(now).bind(expire).bind(data)
                    .execute(&mut **c).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), DbError> {
        on!(self, c => c.commit().await)?;
        Ok(())
    }
}

/// Columns of text values collected for one `INSERT ... SELECT * FROM UNNEST(...)`.
struct Columns<const N: usize> {
    cols: [Vec<String>; N],
}

impl<const N: usize> Default for Columns<N> {
    fn default() -> Self {
        Columns {
            cols: std::array::from_fn(|_| Vec::new()),
        }
    }
}

impl<const N: usize> Columns<N> {
    fn push(&mut self, values: [String; N]) {
        for (col, v) in self.cols.iter_mut().zip(values) {
            col.push(v);
        }
    }

    async fn insert(self, tx: &mut SqlTx, target: &str) -> Result<(), DbError> {
        if self.cols[0].is_empty() {
            return Ok(());
        }
        match tx {
            SqlTx::Postgres(c) => {
                let args: Vec<String> = (1..=N).map(|i| format!("${i}::text[]")).collect();
                let sql = format!(
                    "INSERT INTO {target} SELECT * FROM UNNEST({})",
                    args.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for col in self.cols {
                    q = q.bind(col);
                }
                q.execute(&mut **c).await?;
            }
            SqlTx::Sqlite(c) => {
                // Well under SQLite's limit of 32766 bound parameters per statement.
                const ROWS: usize = 500;
                let total = self.cols[0].len();
                let mut start = 0;
                while start < total {
                    let end = (start + ROWS).min(total);
                    let tuples: Vec<String> = (0..end - start)
                        .map(|r| {
                            let ps: Vec<String> =
                                (1..=N).map(|c| format!("${}", r * N + c)).collect();
                            format!("({})", ps.join(", "))
                        })
                        .collect();
                    let sql = format!("INSERT INTO {target} VALUES {}", tuples.join(", "));
                    let mut q = sqlx::query(&sql);
                    for row in start..end {
                        for col in &self.cols {
                            q = q.bind(col[row].as_str());
                        }
                    }
                    q.execute(&mut **c).await?;
                    start = end;
                }
            }
        }
        Ok(())
    }
}
