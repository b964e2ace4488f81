//! The PostgreSQL writer task: group commit of queued appends, one transaction each round.

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::Pool;
use domain::event::EventEnvelope;
use futures_util::pin_mut;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::claims::Claims;
use super::pg_error;
use crate::error::StoreError;
use crate::store::plan::BatchPlanner;
use crate::store::{AppendRequest, Committed};

/// Most appends committed by one transaction.
const MAX_BATCH: usize = 4096;

pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<Committed, StoreError>>,
}

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

pub(crate) async fn run(
    pool: Pool,
    mut jobs_rx: mpsc::Receiver<Job>,
    head_tx: watch::Sender<u64>,
    lock_key: i64,
    channel: String,
    commit_delay: Option<Duration>,
) {
    while let Some(first) = jobs_rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match jobs_rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<AppendRequest>, Vec<Reply>) = jobs.into_iter().map(|j| (j.request, j.reply)).unzip();
        match commit_batch(&pool, requests, lock_key, &channel, commit_delay).await {
            Ok((outcomes, head)) => {
                head_tx.send_modify(|h| *h = (*h).max(head));
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome.map(|events| Committed { events }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "event append transaction failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for a batch. Returns each request's outcome and the new head.
async fn commit_batch(
    pool: &Pool,
    requests: Vec<AppendRequest>,
    lock_key: i64,
    channel: &str,
    commit_delay: Option<Duration>,
) -> Result<(Vec<Result<Vec<EventEnvelope>, StoreError>>, u64), StoreError> {
    let mut client = pool.get().await.map_err(pg_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key]).await.map_err(pg_error)?;
    let head: i64 = tx.query_one("SELECT coalesce(max(position), 0) FROM events", &[]).await.map_err(pg_error)?.get(0);

    let streams: Vec<&str> = requests.iter().flat_map(|r| r.streams.iter().map(|s| s.stream.as_str())).collect();
    let keys: Vec<&str> = requests.iter().filter_map(|r| r.idempotency_key.as_deref()).collect();
    // One index lookup per stream (the last entry of `events_stream_version`
    // under it), whatever the planner believes of the table: `stream =
    // ANY($1) GROUP BY stream` was planned as a parallel scan of the whole
    // log once the table had grown past its statistics (209 ms against
    // 0.13 ms for 32 streams at 900,000 events).
    let versions: HashMap<String, u64> = tx
        .query(
            "SELECT s, v FROM unnest($1::text[]) AS s, LATERAL (SELECT max(stream_version) AS v FROM events WHERE stream = s) AS last WHERE v IS NOT NULL",
            &[&streams],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect();
    let used: Vec<String> = if keys.is_empty() {
        Vec::new()
    } else {
        tx.query("SELECT key FROM idempotency_keys WHERE key = ANY($1)", &[&keys]).await.map_err(pg_error)?.iter().map(|r| r.get(0)).collect()
    };

    let mut claims = Claims::load(&tx, &requests).await?;
    let (outcomes, new_head) = {
        let version = |stream: &str| versions.get(stream).copied().unwrap_or(0);
        let key_used = |key: &str| used.iter().any(|k| k == key);
        let mut planner = BatchPlanner::new(head as u64, &version, &key_used);
        let outcomes: Vec<Result<Vec<EventEnvelope>, StoreError>> = requests
            .into_iter()
            .map(|mut r| {
                // A repeat of a committed key answers as a repeat (the
                // planner's KeyUsed), not as a claim its first run made.
                if !r.idempotency_key.as_deref().is_some_and(key_used) {
                    claims.check(&r.unique)?;
                }
                let unique = std::mem::take(&mut r.unique);
                let planned = planner.plan(r)?;
                claims.apply(unique);
                Ok(planned)
            })
            .collect();
        (outcomes, planner.head())
    };

    let accepted: Vec<&EventEnvelope> = outcomes.iter().filter_map(|o| o.as_ref().ok()).flatten().collect();
    if accepted.is_empty() {
        tx.rollback().await.map_err(pg_error)?;
        return Ok((outcomes, head as u64));
    }
    copy_events(&tx, &accepted).await?;
    claims.save(&tx).await?;
    let (mut key_names, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
    for events in outcomes.iter().filter_map(|o| o.as_ref().ok()) {
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            if let Some(key) = &first.idempotency_key {
                key_names.push(key.as_str());
                firsts.push(first.position as i64);
                lasts.push(last.position as i64);
            }
        }
    }
    if !key_names.is_empty() {
        tx.execute(
            "INSERT INTO idempotency_keys (key, first_position, last_position) SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[])",
            &[&key_names, &firsts, &lasts],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.execute("SELECT pg_notify($1, $2)", &[&channel, &new_head.to_string()]).await.map_err(pg_error)?;
    if let Some(delay) = commit_delay {
        tokio::time::sleep(delay).await;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok((outcomes, new_head))
}

async fn copy_events(tx: &tokio_postgres::Transaction<'_>, events: &[&EventEnvelope]) -> Result<(), StoreError> {
    copy_into(tx, "events", events).await
}

/// Binary COPY of envelopes into a table shaped like `events` (also the
/// benchmark's raw-COPY baseline, so both measure the same encoding).
pub async fn copy_into(tx: &tokio_postgres::Transaction<'_>, table: &str, events: &[&EventEnvelope]) -> Result<(), StoreError> {
    let sql = format!("COPY {table} (position, stream, stream_version, event_id, event_type, schema_version, occurred_at, actor, tenant, correlation_id, causation_id, idempotency_key, payload) FROM STDIN BINARY");
    let sink = tx.copy_in(&sql).await.map_err(pg_error)?;
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::BYTEA,
        Type::TEXT,
        Type::INT2,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::BYTEA,
        Type::TEXT,
        Type::BYTEA,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for e in events {
        let position = e.position as i64;
        let version = e.stream_version as i64;
        let schema_version = e.schema_version as i16;
        let event_id: &[u8] = &e.event_id;
        let correlation: &[u8] = &e.correlation_id;
        let causation: Option<&[u8]> = e.causation_id.as_ref().map(|c| &c[..]);
        let payload: &[u8] = &e.payload;
        let row: [&(dyn ToSql + Sync); 13] = [
            &position,
            &e.stream,
            &version,
            &event_id,
            &e.event_type,
            &schema_version,
            &e.occurred_at,
            &e.actor,
            &e.tenant,
            &correlation,
            &causation,
            &e.idempotency_key,
            &payload,
        ];
        writer.as_mut().write(&row).await.map_err(pg_error)?;
    }
    writer.finish().await.map_err(pg_error)?;
    Ok(())
}
