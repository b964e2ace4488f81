//! Rebuilding the PostgreSQL audit model while it serves: a fresh copy is
//! folded from the log into `rm_audit_rebuild` (made like `rm_audit`, with
//! its own checkpoint `audit-rebuild`), then swapped in by one transaction
//! that holds the checkpoint table's lock (so the live runner waits), checks
//! that the copy has applied at least everything the live model has, drops
//! the live table and renames the copy and its indexes into place (and its
//! counts to the live model's). Readers
//! wait for the swap and then see the copy; the live runner finds the
//! checkpoint moved and goes on from there.

use std::sync::Arc;
use std::time::Instant;

use commands::store::EventStore;
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::watch;

use super::{PgAudit, Tables, LIVE};
use crate::pg_model::{db_error, store_error};
use crate::rebuild::Progress;
use crate::runner::{Projection, ProjectionError};

/// Where the copy is folded.
const COPY: Tables = Tables { table: "rm_audit_rebuild", checkpoint: "audit-rebuild" };

/// Rebuilds the live model through a copy in the same schema. Returns
/// whether the copy had as many entries as the live model at the swap
/// (`None` when the copy was ahead).
pub async fn rebuild_live(store: Arc<dyn EventStore>, pool: Pool, progress: watch::Sender<Progress>) -> Result<Option<bool>, ProjectionError> {
    {
        let client = pool.get().await.map_err(store_error)?;
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {c}; CREATE TABLE {c} (LIKE {l} INCLUDING ALL);
                 DELETE FROM rm_audit_counts WHERE model = '{cp}';
                 DELETE FROM rm_dead_letters WHERE projection = '{cp}';
                 INSERT INTO rm_checkpoints (projection, position) VALUES ('{cp}', 0) ON CONFLICT (projection) DO UPDATE SET position = 0",
                c = COPY.table,
                l = LIVE.table,
                cp = COPY.checkpoint,
            ))
            .await
            .map_err(db_error)?;
    }
    let mut copy = PgAudit::new(pool.clone(), COPY);
    let started = Instant::now();
    let mut after = copy.checkpoint().await?;
    loop {
        after = crate::rebuild::fold_to_head(&store, &mut copy, after, started, &progress).await?;
        let mut client = pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(store_error)?;
        tx.batch_execute("LOCK TABLE rm_checkpoints IN EXCLUSIVE MODE").await.map_err(db_error)?;
        let live_at: i64 = tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&LIVE.checkpoint]).await.map_err(db_error)?.get(0);
        if (after as i64) < live_at {
            // The live model moved on while we folded: catch up and try again.
            drop(tx);
            continue;
        }
        let matched = if after as i64 == live_at { Some(count(&tx, LIVE.table).await? == count(&tx, COPY.table).await?) } else { None };
        swap(&tx, after).await?;
        tx.commit().await.map_err(store_error)?;
        progress.send_modify(|p| {
            p.done = true;
            p.matched_live = matched;
        });
        return Ok(matched);
    }
}

async fn count(tx: &Transaction<'_>, table: &str) -> Result<i64, ProjectionError> {
    Ok(tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map_err(db_error)?.get(0))
}

/// The copy, its indexes, position and letters in the live model's place.
async fn swap(tx: &Transaction<'_>, at: u64) -> Result<(), ProjectionError> {
    tx.batch_execute(&format!("DROP TABLE {l}; ALTER TABLE {c} RENAME TO {l}", c = COPY.table, l = LIVE.table)).await.map_err(db_error)?;
    // The copy's indexes were named after it (PostgreSQL's defaults, as the live ones are).
    let indexes: Vec<String> = tx
        .query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", &[&LIVE.table])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for index in indexes {
        if let Some(rest) = index.strip_prefix(COPY.table) {
            tx.batch_execute(&format!("ALTER INDEX \"{index}\" RENAME TO \"{}{rest}\"", LIVE.table)).await.map_err(db_error)?;
        }
    }
    // The copy's counts and letters are what a fold of the log gives now.
    tx.execute("DELETE FROM rm_audit_counts WHERE model = $1", &[&LIVE.checkpoint]).await.map_err(db_error)?;
    tx.execute("UPDATE rm_audit_counts SET model = $1 WHERE model = $2", &[&LIVE.checkpoint, &COPY.checkpoint]).await.map_err(db_error)?;
    tx.execute("DELETE FROM rm_dead_letters WHERE projection = $1", &[&LIVE.checkpoint]).await.map_err(db_error)?;
    tx.execute("UPDATE rm_dead_letters SET projection = $1 WHERE projection = $2", &[&LIVE.checkpoint, &COPY.checkpoint]).await.map_err(db_error)?;
    tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&LIVE.checkpoint, &(at as i64)]).await.map_err(db_error)?;
    tx.execute("DELETE FROM rm_checkpoints WHERE projection = $1", &[&COPY.checkpoint]).await.map_err(db_error)?;
    Ok(())
}
