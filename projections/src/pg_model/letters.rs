//! Dead letters of the PostgreSQL models (`rm_dead_letters`, keyed by
//! projection and position), written in the transaction that moves the
//! projection's checkpoint past them.

use deadpool_postgres::{Pool, Transaction};

use super::{db_error, store_error};
use crate::dead_letter::DeadLetter;
use crate::runner::ProjectionError;

/// Text as PostgreSQL can store it (a dead letter must park whatever the event held).
pub(crate) fn clean(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// Keeps `letter` as one of `projection`'s (a second time: nothing).
pub(crate) async fn insert(tx: &Transaction<'_>, projection: &str, letter: &DeadLetter) -> Result<(), ProjectionError> {
    tx.execute(
        "INSERT INTO rm_dead_letters (projection, position, event_id, stream, event_type, error) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[&projection, &(letter.position as i64), &clean(&letter.event_id), &clean(&letter.stream), &clean(&letter.event_type), &clean(&letter.error)],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// `projection`'s letters, in position order.
pub(crate) async fn list(pool: &Pool, projection: &str) -> Result<Vec<DeadLetter>, ProjectionError> {
    let client = pool.get().await.map_err(store_error)?;
    let rows = client
        .query("SELECT position, event_id, stream, event_type, error FROM rm_dead_letters WHERE projection = $1 ORDER BY position", &[&projection])
        .await
        .map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| DeadLetter { position: r.get::<_, i64>(0) as u64, event_id: r.get(1), stream: r.get(2), event_type: r.get(3), error: r.get(4) })
        .collect())
}

/// Forgets `projection`'s letters at `positions` (applied again, or skipped);
/// none: no statement.
pub(crate) async fn forget(tx: &Transaction<'_>, projection: &str, positions: &[i64]) -> Result<(), ProjectionError> {
    if positions.is_empty() {
        return Ok(());
    }
    tx.execute("DELETE FROM rm_dead_letters WHERE projection = $1 AND position = ANY($2)", &[&projection, &positions]).await.map_err(db_error)?;
    Ok(())
}
