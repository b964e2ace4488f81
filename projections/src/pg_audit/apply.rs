//! Applying batches of events to the PostgreSQL audit model: one multi-row
//! insert per batch, with the checkpoint, in one transaction.

use async_trait::async_trait;
use deadpool_postgres::{Pool, Transaction};
use domain::event::{EventEnvelope, EventPayload};

use super::Tables;
use crate::audit_model::audited;
use crate::dead_letter::DeadLetter;
use crate::pg_model::{db_error, letters, store_error};
use crate::runner::{Projection, ProjectionError};

pub struct PgAudit {
    pool: Pool,
    at: Tables,
}

impl PgAudit {
    pub(crate) fn new(pool: Pool, at: Tables) -> Self {
        PgAudit { pool, at }
    }

    /// The checkpoint, its row locked until `tx` ends (runners, a reapply and a swap take it first).
    async fn lock_checkpoint(&self, tx: &Transaction<'_>) -> Result<i64, ProjectionError> {
        let row = tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR UPDATE", &[&self.at.checkpoint]).await.map_err(db_error)?;
        Ok(row.get(0))
    }
}

/// The rows of a batch, a column each (what `unnest` takes).
#[derive(Default)]
struct Rows {
    position: Vec<i64>,
    kind: Vec<i16>,
    occurred_at: Vec<i64>,
    actor: Vec<String>,
    tenant: Vec<String>,
    object: Vec<String>,
    target: Vec<String>,
}

impl Rows {
    /// Adds the event's entry, if it is audited.
    fn add(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        let Some((kind, object, target)) = audited(payload) else { return };
        self.position.push(envelope.position as i64);
        self.kind.push(i16::from(kind));
        self.occurred_at.push(envelope.occurred_at);
        self.actor.push(envelope.actor.to_string());
        self.tenant.push(envelope.tenant.to_string());
        self.object.push(object.to_string());
        self.target.push(target.to_string());
    }

    /// Inserts them (an entry already there stays: the same event's), and
    /// adds what was inserted to the model's counts per object.
    async fn insert(&self, tx: &Transaction<'_>, at: Tables) -> Result<(), ProjectionError> {
        if self.position.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "WITH inserted AS (
                 INSERT INTO {table} (position, kind, occurred_at, actor, tenant, object, target)
                 SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                 ON CONFLICT (position) DO NOTHING
                 RETURNING object)
             INSERT INTO rm_audit_counts (model, object, entries)
             SELECT $8, object, count(*) FROM inserted GROUP BY object
             ON CONFLICT (model, object) DO UPDATE SET entries = rm_audit_counts.entries + excluded.entries",
            table = at.table
        );
        let statement = tx.prepare_cached(&sql).await.map_err(db_error)?;
        tx.execute(&statement, &[&self.position, &self.kind, &self.occurred_at, &self.actor, &self.tenant, &self.object, &self.target, &at.checkpoint])
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// The positions of the letters that skips in `events` give up on for `projection`.
fn skipped<'a>(events: impl Iterator<Item = &'a (EventEnvelope, EventPayload)>, projection: &str) -> Vec<i64> {
    events
        .filter_map(|(_, payload)| match payload {
            EventPayload::EventSkipped(e) if e.projection == projection => Some(e.position as i64),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Projection for PgAudit {
    fn name(&self) -> &str {
        self.at.checkpoint
    }

    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        let client = self.pool.get().await.map_err(store_error)?;
        client
            .execute("INSERT INTO rm_checkpoints (projection, position) VALUES ($1, 0) ON CONFLICT (projection) DO NOTHING", &[&self.at.checkpoint])
            .await
            .map_err(db_error)?;
        let row = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&self.at.checkpoint]).await.map_err(db_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        // Derived from the log: a crash may lose the last commits, rows and
        // checkpoint together, which are applied again.
        tx.batch_execute("SET LOCAL synchronous_commit = off").await.map_err(db_error)?;
        let from = self.lock_checkpoint(&tx).await?;
        if (up_to as i64) <= from {
            // Another runner, or a rebuilt copy swapped in, has applied it.
            return Err(ProjectionError::Moved(from as u64));
        }
        let fresh = || batch.iter().filter(|(envelope, _)| envelope.position as i64 > from);
        let mut rows = Rows::default();
        for (envelope, payload) in fresh() {
            rows.add(envelope, payload);
        }
        rows.insert(&tx, self.at).await?;
        letters::forget(&tx, self.at.checkpoint, &skipped(fresh(), super::LIVE.checkpoint)).await?;
        tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&self.at.checkpoint, &(up_to as i64)]).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn park(&mut self, letter: &DeadLetter) -> Result<(), ProjectionError> {
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        if letter.position as i64 <= self.lock_checkpoint(&tx).await? {
            return Ok(());
        }
        letters::insert(&tx, self.at.checkpoint, letter).await?;
        tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&self.at.checkpoint, &(letter.position as i64)])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn parked(&mut self) -> Result<Option<Vec<DeadLetter>>, ProjectionError> {
        Ok(Some(letters::list(&self.pool, self.at.checkpoint).await?))
    }

    async fn reapply(&mut self, events: &[(EventEnvelope, EventPayload)]) -> Result<(), ProjectionError> {
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        self.lock_checkpoint(&tx).await?;
        let mut rows = Rows::default();
        for (envelope, payload) in events {
            rows.add(envelope, payload);
        }
        rows.insert(&tx, self.at).await?;
        let positions: Vec<i64> = events.iter().map(|(e, _)| e.position as i64).collect();
        letters::forget(&tx, self.at.checkpoint, &positions).await?;
        tx.commit().await.map_err(db_error)
    }
}
