//! The audit read model in PostgreSQL: what the in-process
//! [`crate::audit_model`] keeps, as rows of `rm_audit` (one per audited
//! change: position, kind, time, actor, tenant, object, target; indexed by
//! object and target, by object, and by actor, each in position order), so a
//! gateway on PostgreSQL holds no audit entry in memory. What an entry shows
//! beyond that is the event's, read from the log by position, as in process.
//!
//! - [`PgAudit`] (`apply.rs`): the projection; a batch's rows and its
//!   checkpoint (`rm_checkpoints.audit`) commit in one transaction, guarded
//!   by the previous checkpoint, so two runners (two nodes on one database)
//!   never apply a batch twice.
//! - [`PgAuditReader`] (`read.rs`): the queries, newest first, with a true
//!   total; the whole trail's and one object's from `rm_audit_counts`, which
//!   a batch moves with its rows (the other filters count matching rows).
//! - [`rebuild::rebuild_live`]: a fresh copy folded into `rm_audit_rebuild`
//!   and swapped in while the live one serves.

mod apply;
mod read;
pub mod rebuild;

use deadpool_postgres::Pool;

pub use apply::PgAudit;
pub use read::PgAuditReader;

use crate::pg_model::store_error;
use crate::runner::ProjectionError;

/// The live table and checkpoint.
pub(crate) const LIVE: Tables = Tables { table: "rm_audit", checkpoint: "audit" };

/// Where a model's rows and checkpoint are kept: the live ones, or a rebuild's copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub table: &'static str,
    /// Its row in `rm_checkpoints`, and its letters' in `rm_dead_letters`.
    pub checkpoint: &'static str,
}

/// The projection (to hand to the runner) and its reader, over the event
/// store's database (the table is made by the store's migrations).
pub fn open(pool: Pool) -> (PgAudit, PgAuditReader) {
    (PgAudit::new(pool.clone(), LIVE), PgAuditReader::new(pool))
}

/// Empties the model and sets its checkpoint to 0, in one transaction: the
/// next fold rebuilds it from the log (offline rebuild).
pub async fn reset(pool: &Pool) -> Result<(), ProjectionError> {
    let mut client = pool.get().await.map_err(store_error)?;
    let tx = client.transaction().await.map_err(store_error)?;
    tx.batch_execute(
        "TRUNCATE rm_audit; DELETE FROM rm_audit_counts WHERE model = 'audit';
         DELETE FROM rm_dead_letters WHERE projection = 'audit';
         UPDATE rm_checkpoints SET position = 0 WHERE projection = 'audit'",
    )
    .await
    .map_err(store_error)?;
    tx.commit().await.map_err(store_error)
}
