//! The query read model in PostgreSQL.
//!
//! One table per object, `obj_{object} (id text primary key, data jsonb)` ([`naming`]),
//! with expression indexes generated from metadata (declared indexes, unique
//! and `index: true` fields, lookups). Metadata is kept in `rm_objects` and the
//! checkpoint in `rm_checkpoints`; a batch of events, its metadata changes and
//! the checkpoint move commit in one transaction, guarded by the previous
//! checkpoint so that two runners never apply a batch twice.
//!
//! Queries compile to SQL ([`sql`]): filters, sort, paging with a true count,
//! group-by aggregates; select and expand (one batched look-up per relation)
//! run on the fetched page. Formula fields are computed on read, and cannot
//! be filtered or sorted on here (they are in the in-process model).

mod apply;
mod ddl;
pub(crate) mod letters;
pub mod naming;
pub mod partitioned;
mod read;
pub mod rebuild;
mod sql;

use std::sync::{Arc, RwLock};

use deadpool_postgres::Pool;
use domain::event::{EventPayload, ObjectDefined};
use domain::metadata::{evolve_catalog, Catalog};

pub use apply::PgProjection;
pub use naming::table;
pub use read::PgReader;

use crate::runner::ProjectionError;

pub(crate) fn store_error(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Store(e.to_string())
}

/// A PostgreSQL error, classified: the data or the statement refused
/// (SQLSTATE classes 22 data exception, 23 integrity, 42 syntax or access,
/// 54 a limit) is `Rejected`, so the event is parked; anything else
/// (connection, resources, serialisation) is retried. Only the server's
/// message and code are kept: its detail may quote values.
pub(crate) fn db_error(e: tokio_postgres::Error) -> ProjectionError {
    match e.as_db_error() {
        Some(db) if matches!(&db.code().code()[..2], "22" | "23" | "42" | "54") => {
            ProjectionError::Rejected(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
        }
        Some(db) => ProjectionError::Store(format!("{} (SQLSTATE {})", db.message(), db.code().code())),
        None => ProjectionError::Store(e.to_string()),
    }
}

/// Opens the read model in the event store's database: loads the stored
/// metadata and returns the projection (to hand to the runner) and its reader.
pub async fn open(pool: Pool) -> Result<(PgProjection, PgReader), ProjectionError> {
    let client = pool.get().await.map_err(store_error)?;
    let rows = client.query("SELECT name, namespace, definition::text FROM rm_objects ORDER BY name", &[]).await.map_err(store_error)?;
    let mut catalog = Catalog::default();
    for row in rows {
        let payload = EventPayload::ObjectDefined(ObjectDefined { name: row.get(0), namespace: row.get(1), definition: row.get(2) });
        evolve_catalog(&mut catalog, &payload).map_err(store_error)?;
    }
    drop(client);
    let catalog = Arc::new(RwLock::new(catalog));
    Ok((PgProjection::new(pool.clone(), catalog.clone()), PgReader::new(pool, catalog)))
}

/// Drops the read model's tables and metadata and sets its checkpoint to 0,
/// in one transaction: the next fold rebuilds it from the log (offline rebuild).
pub async fn reset(pool: &Pool) -> Result<(), ProjectionError> {
    let mut client = pool.get().await.map_err(store_error)?;
    let tx = client.transaction().await.map_err(store_error)?;
    let names: Vec<String> = tx.query("SELECT name FROM rm_objects", &[]).await.map_err(store_error)?.iter().map(|r| r.get(0)).collect();
    for name in names {
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", table(&name))).await.map_err(store_error)?;
    }
    tx.execute("DELETE FROM rm_objects", &[]).await.map_err(store_error)?;
    tx.execute("DELETE FROM rm_dead_letters WHERE projection = 'query'", &[]).await.map_err(store_error)?;
    tx.execute("UPDATE rm_checkpoints SET position = 0 WHERE projection IN ('query', 'query-metadata')", &[]).await.map_err(store_error)?;
    tx.execute("DELETE FROM rm_partitions WHERE projection = 'query'", &[]).await.map_err(store_error)?;
    tx.commit().await.map_err(store_error)
}
