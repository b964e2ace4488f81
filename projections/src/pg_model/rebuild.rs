//! Rebuilding the PostgreSQL query model while it serves: a fresh copy is
//! folded from the log into a schema of its own (`{schema}_rebuild`, with
//! its own `rm_objects` and `rm_checkpoints`), then swapped in by one
//! transaction that holds the live checkpoint row's table lock (so the live
//! runner waits), checks that the copy has applied at least everything the
//! live model has, drops the live tables and moves the copy's into place.
//! Readers block for the swap and then see the copy; the live runner finds
//! the checkpoint moved and goes on from there (events the copy already
//! applied are skipped), so nothing is lost or applied twice. Projector
//! nodes' partitions ([`super::partitioned`]) are locked for the swap as
//! well, and all of them, with the metadata, go on from the copy's position.

use std::sync::Arc;
use std::time::Instant;

use commands::store::EventStore;
use deadpool_postgres::Pool;
use tokio::sync::watch;

use super::{store_error, table};
use crate::rebuild::Progress;
use crate::runner::{Projection, ProjectionError};

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The schema the live model is in (the pool's search path).
pub async fn live_schema(pool: &Pool) -> Result<String, ProjectionError> {
    let client = pool.get().await.map_err(store_error)?;
    Ok(client.query_one("SELECT current_schema()", &[]).await.map_err(store_error)?.get(0))
}

/// Where the copy is folded.
pub fn copy_schema(live: &str) -> String {
    format!("{live}_rebuild")
}

/// Rebuilds the live model (in `pool`'s schema) through `copy` (a pool whose
/// search path is [`copy_schema`]). Returns whether the copy had the same row
/// counts as the live model at the swap (`None` when the copy was ahead).
pub async fn rebuild_live(store: Arc<dyn EventStore>, pool: Pool, copy: Pool, progress: watch::Sender<Progress>) -> Result<Option<bool>, ProjectionError> {
    let live = live_schema(&pool).await?;
    let copy_name = copy_schema(&live);
    {
        let client = pool.get().await.map_err(store_error)?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {c} CASCADE; CREATE SCHEMA {c};
                 CREATE TABLE {c}.rm_objects (LIKE {l}.rm_objects INCLUDING ALL);
                 CREATE TABLE {c}.rm_checkpoints (LIKE {l}.rm_checkpoints INCLUDING ALL);",
                c = quote(&copy_name),
                l = quote(&live)
            ))
            .await
            .map_err(store_error)?;
    }
    let (mut projection, _reader) = super::open(copy.clone()).await?;
    let started = Instant::now();
    let mut after = projection.checkpoint().await?;
    loop {
        after = crate::rebuild::fold_to_head(&store, &mut projection, after, started, &progress).await?;
        // The swap, if the copy has everything the live model has.
        let mut client = pool.get().await.map_err(store_error)?;
        let tx = client.transaction().await.map_err(store_error)?;
        // Projector nodes' partitions wait too; the live model has what any of
        // them applied. Partitions first, as their transactions take them
        // before the checkpoints (the other order could deadlock with one).
        tx.batch_execute("LOCK TABLE rm_partitions IN EXCLUSIVE MODE; LOCK TABLE rm_checkpoints IN EXCLUSIVE MODE").await.map_err(store_error)?;
        let live_at: i64 = tx
            .query_one(
                "SELECT greatest(coalesce((SELECT max(position) FROM rm_checkpoints WHERE projection IN ('query', 'query-metadata')), 0),                  coalesce((SELECT max(position) FROM rm_partitions WHERE projection = 'query'), 0))",
                &[],
            )
            .await
            .map_err(store_error)?
            .get(0);
        if (after as i64) < live_at {
            // The live model moved on while we folded: catch up and try again.
            drop(tx);
            continue;
        }
        let matched = if after as i64 == live_at { Some(same_counts(&tx, &live, &copy_name).await?) } else { None };
        let live_objects: Vec<String> = tx.query("SELECT name FROM rm_objects", &[]).await.map_err(store_error)?.iter().map(|r| r.get(0)).collect();
        for name in &live_objects {
            tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", table(name))).await.map_err(store_error)?;
        }
        let copied: Vec<String> =
            tx.query(&format!("SELECT name FROM {}.rm_objects", quote(&copy_name)), &[]).await.map_err(store_error)?.iter().map(|r| r.get(0)).collect();
        for name in &copied {
            tx.batch_execute(&format!("ALTER TABLE {}.{} SET SCHEMA {}", quote(&copy_name), table(name), quote(&live))).await.map_err(store_error)?;
        }
        tx.batch_execute(&format!(
            "DELETE FROM rm_objects; INSERT INTO rm_objects SELECT * FROM {c}.rm_objects;
             UPDATE rm_checkpoints SET position = {after} WHERE projection IN ('query', 'query-metadata');
             UPDATE rm_partitions SET position = {after} WHERE projection = 'query';
             DROP SCHEMA {c} CASCADE;",
            c = quote(&copy_name)
        ))
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        progress.send_modify(|p| {
            p.done = true;
            p.matched_live = matched;
        });
        return Ok(matched);
    }
}

/// Whether the copy has as many rows per object as the live model.
async fn same_counts(tx: &deadpool_postgres::Transaction<'_>, live: &str, copy: &str) -> Result<bool, ProjectionError> {
    let names: Vec<String> = tx.query("SELECT name FROM rm_objects", &[]).await.map_err(store_error)?.iter().map(|r| r.get(0)).collect();
    for name in names {
        let count = |schema: &str| format!("SELECT count(*) FROM {}.{}", quote(schema), table(&name));
        let live_rows: i64 = tx.query_one(&count(live), &[]).await.map_err(store_error)?.get(0);
        let copy_rows: i64 = match tx.query_one(&count(copy), &[]).await {
            Ok(row) => row.get(0),
            Err(_) => return Ok(false),
        };
        if live_rows != copy_rows {
            return Ok(false);
        }
    }
    Ok(true)
}
