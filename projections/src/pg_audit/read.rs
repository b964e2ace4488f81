//! Audit queries on PostgreSQL: the page and its total from one snapshot of
//! the table, newest first, as the in-process model answers them. The total
//! of the whole trail or of one object's is read from `rm_audit_counts`
//! (moved with the rows); any other filter counts the matching rows.

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::LIVE;
use crate::audit_model::{AuditEntry, AuditQuery, KINDS};
use crate::reader::ReadError;

#[derive(Clone)]
pub struct PgAuditReader {
    pool: Pool,
}

/// A query's conditions as SQL and their parameters.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    fn add(&mut self, column: &str, op: &str, value: impl ToSql + Sync + Send + 'static) {
        self.params.push(Box::new(value));
        self.sql.push(format!("{column} {op} ${}", self.params.len()));
    }

    fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
    }
}

impl PgAuditReader {
    pub(crate) fn new(pool: Pool) -> Self {
        PgAuditReader { pool }
    }

    /// The database it reads (a live rebuild folds its copy there).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Matching entries, newest first, and how many match in all.
    pub async fn query(&self, query: &AuditQuery) -> Result<(Vec<AuditEntry>, usize), ReadError> {
        let mut conditions = Conditions::default();
        if let Some(kind) = &query.event_type {
            match KINDS.iter().position(|k| k == kind) {
                Some(code) => conditions.add("kind", "=", code as i16),
                None => return Ok((Vec::new(), 0)),
            }
        }
        if let Some(object) = &query.object {
            conditions.add("object", "=", object.clone());
        }
        if let Some(id) = &query.record_id {
            conditions.add("target", "=", id.clone());
        }
        if let Some(actor) = &query.actor {
            conditions.add("actor", "=", actor.clone());
        }
        if let Some(from) = query.from {
            conditions.add("occurred_at", ">=", from);
        }
        if let Some(to) = query.to {
            conditions.add("occurred_at", "<=", to);
        }
        let filter = conditions.where_clause();
        let (limit, offset) = (i64::try_from(query.limit).unwrap_or(i64::MAX), i64::try_from(query.offset).unwrap_or(i64::MAX));
        let mut client = self.pool.get().await.map_err(ReadError::store)?;
        // The page and the total from one snapshot, so they agree.
        let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(ReadError::store)?;
        let params = conditions.params();
        let total: i64 = if only_object(query) {
            // Kept per object with the rows: a few rows read, not every entry counted.
            let sum = "SELECT coalesce(sum(entries), 0)::bigint FROM rm_audit_counts WHERE model = $1";
            let row = match &query.object {
                Some(object) => tx.query_one(&format!("{sum} AND object = $2"), &[&LIVE.checkpoint, object]).await,
                None => tx.query_one(sum, &[&LIVE.checkpoint]).await,
            };
            row.map_err(ReadError::store)?.get(0)
        } else {
            tx.query_one(&format!("SELECT count(*) FROM rm_audit{filter}"), &params).await.map_err(ReadError::store)?.get(0)
        };
        let page = if query.limit == 0 || query.offset as i64 >= total {
            Vec::new()
        } else {
            let sql = format!(
                "SELECT position, kind, occurred_at, actor, tenant, object, target FROM rm_audit{filter} ORDER BY position DESC LIMIT {limit} OFFSET {offset}"
            );
            tx.query(&sql, &params).await.map_err(ReadError::store)?
        };
        tx.commit().await.map_err(ReadError::store)?;
        let entries = page
            .iter()
            .map(|row| AuditEntry {
                position: row.get::<_, i64>(0) as u64,
                event_type: KINDS.get(row.get::<_, i16>(1) as usize).copied().unwrap_or(KINDS[3]),
                occurred_at: row.get(2),
                actor: row.get(3),
                tenant: row.get(4),
                target_type: row.get(5),
                target_id: row.get(6),
            })
            .collect();
        Ok((entries, total as usize))
    }
}

/// Whether the query filters on nothing but (at most) the object, whose
/// totals `rm_audit_counts` keeps.
fn only_object(query: &AuditQuery) -> bool {
    let AuditQuery { object: _, record_id, actor, event_type, from, to, limit: _, offset: _ } = query;
    record_id.is_none() && actor.is_none() && event_type.is_none() && from.is_none() && to.is_none()
}
