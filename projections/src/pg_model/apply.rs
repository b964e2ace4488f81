//! Applying batches of events to the PostgreSQL read model.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog};
use domain::value::{Record, Value};
use serde_json::{Map, Value as Json};

use super::{db_error, ddl, letters, store_error, table};
use crate::dead_letter::DeadLetter;
use crate::runner::{Projection, ProjectionError};

pub struct PgProjection {
    pool: Pool,
    catalog: Arc<RwLock<Catalog>>,
    /// The last metadata event reflected in `catalog`.
    applied_metadata: u64,
    /// Projector nodes keep the tables ([`super::partitioned`]): this node
    /// only waits for them and follows the metadata.
    observe: bool,
}

/// How long an observing node waits for projector nodes in one try (then
/// the runner shows the projection as stalled and tries again).
const OBSERVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const NAME: &str = "query";

impl PgProjection {
    pub(crate) fn new(pool: Pool, catalog: Arc<RwLock<Catalog>>) -> Self {
        PgProjection { pool, catalog, applied_metadata: 0, observe: false }
    }

    /// A projection that applies nothing: projector nodes keep the tables,
    /// and its checkpoint moves as theirs does (so this node's read barrier
    /// waits for them).
    pub fn observing(mut self) -> Self {
        self.observe = true;
        self
    }

    async fn observe(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let client = self.pool.get().await.map_err(store_error)?;
            let at: i64 = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&NAME]).await.map_err(db_error)?.get(0);
            drop(client);
            if at as u64 >= up_to {
                break;
            }
            if started.elapsed() > OBSERVE_WAIT {
                return Err(ProjectionError::Store(format!("the projector nodes are at position {at}, not yet at {up_to}")));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(20));
        }
        let mut catalog = self.catalog.read().expect("catalog lock").clone();
        for (envelope, payload) in batch {
            if envelope.position > self.applied_metadata
                && matches!(payload, EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_))
            {
                let _ = evolve_catalog(&mut catalog, payload);
            }
        }
        *self.catalog.write().expect("catalog lock") = catalog;
        self.applied_metadata = self.applied_metadata.max(up_to);
        Ok(())
    }
}

#[async_trait]
impl Projection for PgProjection {
    fn name(&self) -> &str {
        NAME
    }

    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        let client = self.pool.get().await.map_err(store_error)?;
        client
            .execute("INSERT INTO rm_checkpoints (projection, position) VALUES ($1, 0) ON CONFLICT (projection) DO NOTHING", &[&NAME])
            .await
            .map_err(db_error)?;
        let row = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&NAME]).await.map_err(db_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        if self.observe {
            return self.observe(batch, up_to).await;
        }
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        // The read model is derived: a crash may lose its last few commits
        // (data and checkpoint together), which are then applied again from
        // the log. So it need not wait for the WAL flush.
        tx.batch_execute("SET LOCAL synchronous_commit = off").await.map_err(db_error)?;
        let from: i64 = tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR UPDATE", &[&NAME]).await.map_err(db_error)?.get(0);
        let mut catalog = self.catalog.read().expect("catalog lock").clone();
        let mut metadata_at = self.applied_metadata;
        // Consecutive creates of one object go in one multi-row insert (a rebuild is mostly creates).
        let mut creates = Creates::default();
        for (envelope, payload) in batch {
            if envelope.position as i64 <= from {
                // Already in the tables (another runner, or a rebuilt copy swapped in):
                // only the in-memory metadata may still need it.
                if matches!(payload, EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_))
                    && self.applied_metadata < envelope.position
                {
                    let _ = evolve_catalog(&mut catalog, payload);
                }
                continue;
            }
            if let EventPayload::RecordCreated(e) = payload {
                creates.add(&tx, e).await?;
                continue;
            }
            creates.flush(&tx).await?;
            apply_one(&tx, &mut catalog, payload).await?;
            if matches!(payload, EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_)) {
                metadata_at = envelope.position;
            }
        }
        creates.flush(&tx).await?;
        if (up_to as i64) > from {
            tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&NAME, &(up_to as i64)]).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        *self.catalog.write().expect("catalog lock") = catalog;
        self.applied_metadata = metadata_at.max(batch.last().map_or(0, |(e, _)| e.position));
        if (up_to as i64) <= from {
            return Err(ProjectionError::Moved(from as u64));
        }
        Ok(())
    }

    async fn park(&mut self, letter: &DeadLetter) -> Result<(), ProjectionError> {
        if self.observe {
            // The projector nodes park what they cannot take themselves.
            return Ok(());
        }
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        let from: i64 = tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR UPDATE", &[&NAME]).await.map_err(db_error)?.get(0);
        if letter.position as i64 <= from {
            return Ok(());
        }
        letters::insert(&tx, NAME, letter).await?;
        tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&NAME, &(letter.position as i64)]).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn parked(&mut self) -> Result<Option<Vec<DeadLetter>>, ProjectionError> {
        Ok(Some(letters::list(&self.pool, NAME).await?))
    }

    async fn reapply(&mut self, events: &[(EventEnvelope, EventPayload)]) -> Result<(), ProjectionError> {
        let mut client = self.pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        // Serialised with the runners (they take this row first too), and
        // with projector nodes (they take their partition's row first).
        tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR UPDATE", &[&NAME]).await.map_err(db_error)?;
        tx.query("SELECT partition FROM rm_partitions WHERE projection = $1 ORDER BY topic, partition FOR UPDATE", &[&NAME]).await.map_err(db_error)?;
        let mut catalog = self.catalog.read().expect("catalog lock").clone();
        for (_, payload) in events {
            apply_one(&tx, &mut catalog, payload).await?;
        }
        let positions: Vec<i64> = events.iter().map(|(e, _)| e.position as i64).collect();
        letters::forget(&tx, NAME, &positions).await?;
        tx.commit().await.map_err(db_error)?;
        *self.catalog.write().expect("catalog lock") = catalog;
        Ok(())
    }
}

/// A row's `data`: the record written straight to JSON text (no JSON tree in between).
pub(super) fn row_json(record: &Record) -> Result<String, ProjectionError> {
    serde_json::to_string(record).map_err(|e| ProjectionError::Rejected(e.to_string()))
}

/// Consecutive creates of one object, gathered into one multi-row insert
/// (a rebuild, or a partition catching up, is mostly creates).
#[derive(Default)]
pub(super) struct Creates(Option<(String, Vec<String>, Vec<String>)>);

impl Creates {
    /// Adds a create; what was gathered for another object is inserted first.
    pub(super) async fn add(&mut self, tx: &deadpool_postgres::Transaction<'_>, e: &domain::event::RecordCreated) -> Result<(), ProjectionError> {
        match self.0.as_mut() {
            Some((object, ids, rows)) if *object == e.object => {
                ids.push(e.id.clone());
                rows.push(row_json(&e.record)?);
            }
            _ => {
                self.flush(tx).await?;
                self.0 = Some((e.object.clone(), vec![e.id.clone()], vec![row_json(&e.record)?]));
            }
        }
        Ok(())
    }

    /// Inserts what was gathered.
    pub(super) async fn flush(&mut self, tx: &deadpool_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        flush_creates(tx, self.0.take()).await
    }
}

async fn flush_creates(tx: &deadpool_postgres::Transaction<'_>, creates: Option<(String, Vec<String>, Vec<String>)>) -> Result<(), ProjectionError> {
    let Some((object, ids, rows)) = creates else { return Ok(()) };
    let sql = format!(
        "INSERT INTO {} (id, data) SELECT id, data::jsonb FROM unnest($1::text[], $2::text[]) AS t(id, data) ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data",
        table(&object)
    );
    let statement = tx.prepare_cached(&sql).await.map_err(db_error)?;
    tx.execute(&statement, &[&ids, &rows]).await.map_err(db_error)?;
    Ok(())
}

pub(super) async fn apply_one(tx: &deadpool_postgres::Transaction<'_>, catalog: &mut Catalog, payload: &EventPayload) -> Result<(), ProjectionError> {
    match payload {
        EventPayload::RecordCreated(e) => {
            flush_creates(tx, Some((e.object.clone(), vec![e.id.clone()], vec![row_json(&e.record)?]))).await?;
        }
        EventPayload::RecordUpdated(e) => {
            let mut set = Map::new();
            let mut removed: Vec<String> = Vec::new();
            for change in &e.changes {
                match &change.new {
                    Value::Null => removed.push(change.field.clone()),
                    value => {
                        set.insert(change.field.clone(), value.to_json());
                    }
                }
            }
            let sql = format!("UPDATE {} SET data = (data || ($2::text)::jsonb) - ($3::text[]) WHERE id = $1", table(&e.object));
            let statement = tx.prepare_cached(&sql).await.map_err(db_error)?;
            tx.execute(&statement, &[&e.id, &Json::Object(set).to_string(), &removed]).await.map_err(db_error)?;
        }
        EventPayload::RecordDeleted(e) => {
            let statement = tx.prepare_cached(&format!("DELETE FROM {} WHERE id = $1", table(&e.object))).await.map_err(db_error)?;
            tx.execute(&statement, &[&e.id]).await.map_err(db_error)?;
        }
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
            evolve_catalog(catalog, payload).map_err(|e| ProjectionError::Rejected(e.to_string()))?;
            let object = catalog.get(&e.name).cloned().ok_or_else(|| ProjectionError::Rejected(format!("object {} vanished", e.name)))?;
            for statement in ddl::statements(&object) {
                tx.batch_execute(&statement).await.map_err(db_error)?;
            }
            tx.execute(
                "INSERT INTO rm_objects (name, namespace, definition) VALUES ($1, $2, ($3::text)::jsonb) ON CONFLICT (name) DO UPDATE SET namespace = EXCLUDED.namespace, definition = EXCLUDED.definition",
                &[&e.name, &e.namespace, &e.definition],
            )
            .await
            .map_err(db_error)?;
        }
        EventPayload::ObjectRemoved(e) => {
            evolve_catalog(catalog, payload).map_err(|e| ProjectionError::Rejected(e.to_string()))?;
            tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", table(&e.name))).await.map_err(db_error)?;
            tx.execute("DELETE FROM rm_objects WHERE name = $1", &[&e.name]).await.map_err(db_error)?;
        }
        EventPayload::EventSkipped(e) => {
            if e.projection == NAME {
                letters::forget(tx, NAME, &[e.position as i64]).await?;
            }
        }
        EventPayload::Process(_) => {}
    }
    Ok(())
}
