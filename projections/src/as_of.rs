//! Reads as of a past moment, computed from the log: the query model folded
//! up to a log position (or to the last event at or before a time).

use std::sync::Arc;

use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::Timestamp;

use crate::query_model::QueryModel;
use crate::reader::ReadError;

/// A past moment: a log position, or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsOf {
    Position(u64),
    Time(Timestamp),
}

impl AsOf {
    /// `asOf=` as sent: a whole number is a position, anything else an ISO-8601 time.
    pub fn parse(text: &str) -> Option<AsOf> {
        match text.trim().parse::<u64>() {
            Ok(position) => Some(AsOf::Position(position)),
            Err(_) => Timestamp::parse(text.trim()).map(AsOf::Time),
        }
    }

    fn includes(&self, position: u64, occurred_at: i64) -> bool {
        match self {
            AsOf::Position(p) => position <= *p,
            AsOf::Time(t) => occurred_at <= t.micros(),
        }
    }
}

/// Folds of the whole log for as-of lists: at most [`MAX_FOLDS`] at once (a
/// fold costs CPU in proportion to the log; more wait their turn, as long as
/// a read may wait), and the last [`KEPT_FOLDS`] finished ones kept, so the
/// same moment asked again (a console paging through a past list) costs a
/// lookup. A fold is kept only when the log had already moved past its
/// moment, and when it holds at most [`MAX_KEPT_ROWS`] rows.
pub struct AsOfFolds {
    turns: tokio::sync::Semaphore,
    kept: std::sync::Mutex<std::collections::VecDeque<(AsOf, u64, Arc<QueryModel>)>>,
}

/// As-of folds running at once.
pub const MAX_FOLDS: usize = 2;
/// Finished folds kept.
pub const KEPT_FOLDS: usize = 2;
/// Rows a fold may hold and still be kept (each kept fold is a copy of the data as it was).
pub const MAX_KEPT_ROWS: usize = 200_000;

impl Default for AsOfFolds {
    fn default() -> AsOfFolds {
        AsOfFolds { turns: tokio::sync::Semaphore::new(MAX_FOLDS), kept: Default::default() }
    }
}

impl AsOfFolds {
    /// The model at `as_of` and its position; `None` when no turn came within `wait`.
    pub async fn model(&self, store: &Arc<dyn EventStore>, as_of: AsOf, wait: std::time::Duration) -> Result<Option<(Arc<QueryModel>, u64)>, ReadError> {
        if let Some(found) = self.find(as_of) {
            return Ok(Some(found));
        }
        let Ok(Ok(_turn)) = tokio::time::timeout(wait, self.turns.acquire()).await else { return Ok(None) };
        // Someone may have folded the same moment while we waited.
        if let Some(found) = self.find(as_of) {
            return Ok(Some(found));
        }
        let (model, reached, past) = fold_as_of(store, as_of).await?;
        let model = Arc::new(model);
        // A kept fold is a second copy of the data: only small ones are kept.
        let rows: usize = model.row_counts().iter().map(|(_, n)| n).sum();
        if past && rows <= MAX_KEPT_ROWS {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_back((as_of, reached, model.clone()));
            while kept.len() > KEPT_FOLDS {
                kept.pop_front();
            }
        }
        Ok(Some((model, reached)))
    }

    fn find(&self, as_of: AsOf) -> Option<(Arc<QueryModel>, u64)> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().find(|(at, _, _)| *at == as_of).map(|(_, reached, model)| (model.clone(), *reached))
    }
}

/// The fold, its position, and whether the log had moved past the moment
/// (so the answer can never change).
async fn fold_as_of(store: &Arc<dyn EventStore>, as_of: AsOf) -> Result<(QueryModel, u64, bool), ReadError> {
    let upcasters = domain::event::registry();
    let mut model = QueryModel::default();
    let mut after = 0;
    let mut reached = 0;
    let mut past = false;
    'read: loop {
        let batch = store.read_all(after, 10_000).await.map_err(|e| ReadError::Store(e.to_string()))?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for envelope in &batch {
            if !as_of.includes(envelope.position, envelope.occurred_at) {
                past = true;
                // Positions follow commit order; a time bound may see a few out-of-order
                // clocks, so a time bound keeps scanning the batch but a position bound stops.
                if matches!(as_of, AsOf::Position(_)) {
                    break 'read;
                }
                continue;
            }
            let payload = decode_envelope_payload(envelope, upcasters).map_err(|e| ReadError::Store(e.to_string()))?;
            model.apply(envelope, &payload);
            reached = envelope.position;
        }
    }
    Ok((model, reached, past))
}

/// Snapshots of record streams, taken every [`SNAPSHOT_EVERY`] versions while
/// as-of reads fold them. A stream's past never changes, so a snapshot stays
/// valid forever: the first read of a long stream folds it once, later reads
/// start from the nearest snapshot and fold at most `SNAPSHOT_EVERY` events.
#[derive(Default)]
pub struct StreamSnapshots {
    streams: std::sync::Mutex<std::collections::HashMap<String, Vec<Snapshot>>>,
}

/// Versions between two snapshots of a stream.
pub const SNAPSHOT_EVERY: u64 = 64;
/// Streams whose snapshots are kept (the oldest half is dropped beyond).
const MAX_STREAMS: usize = 10_000;

#[derive(Clone)]
struct Snapshot {
    position: u64,
    occurred_at: i64,
    state: Arc<domain::record::RecordState>,
}

impl StreamSnapshots {
    /// Snapshots kept for a stream.
    pub fn count(&self, stream: &str) -> usize {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).get(stream).map_or(0, Vec::len)
    }

    /// The latest snapshot at or before `as_of`.
    fn latest(&self, stream: &str, as_of: AsOf) -> Option<Snapshot> {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.get(stream)?.iter().rev().find(|s| as_of.includes(s.position, s.occurred_at)).cloned()
    }

    fn keep(&self, stream: &str, snapshot: Snapshot) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.len() >= MAX_STREAMS && !streams.contains_key(stream) {
            let drop: Vec<String> = streams.keys().take(MAX_STREAMS / 2).cloned().collect();
            drop.iter().for_each(|k| {
                streams.remove(k);
            });
        }
        let list = streams.entry(stream.to_string()).or_default();
        // Snapshots are kept in version order, each `SNAPSHOT_EVERY` after the last.
        let next = list.last().map_or(SNAPSHOT_EVERY, |s| s.state.version + SNAPSHOT_EVERY);
        if snapshot.state.version == next {
            list.push(snapshot);
        }
    }
}

/// One record as it was at `as_of`, folded from its own stream only (fast
/// for any log size), from the nearest snapshot when one is kept, with its
/// formula fields computed. `None` when it did not exist then.
pub async fn record_as_of(
    store: &Arc<dyn EventStore>,
    snapshots: &StreamSnapshots,
    object: &domain::metadata::ObjectDef,
    id: &str,
    as_of: AsOf,
) -> Result<Option<domain::value::Record>, ReadError> {
    let upcasters = domain::event::registry();
    let stream = domain::event::StreamId::record(&object.name, id);
    let (mut state, mut at) = match snapshots.latest(stream.as_str(), as_of) {
        Some(snapshot) => ((*snapshot.state).clone(), snapshot.occurred_at),
        None => (domain::record::RecordState::default(), 0),
    };
    'fold: loop {
        let chunk = store.read_stream_range(stream.as_str(), state.version + 1, SNAPSHOT_EVERY as usize).await.map_err(|e| ReadError::Store(e.to_string()))?;
        let full = chunk.len() == SNAPSHOT_EVERY as usize;
        for envelope in chunk {
            // A stream's events are in commit order: the first one past the moment ends the fold.
            if !as_of.includes(envelope.position, envelope.occurred_at) {
                break 'fold;
            }
            let payload = decode_envelope_payload(&envelope, upcasters).map_err(|e| ReadError::Store(e.to_string()))?;
            state = domain::record::evolve(state, &payload);
            at = envelope.occurred_at;
            if state.version % SNAPSHOT_EVERY == 0 {
                let snapshot = Snapshot { position: envelope.position, occurred_at: envelope.occurred_at, state: Arc::new(state.clone()) };
                snapshots.keep(stream.as_str(), snapshot);
            }
        }
        if !full {
            break;
        }
    }
    Ok(state.record.map(|r| domain::formula::with_formula_fields(object, &r, Timestamp::from_micros(at))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::store::{AppendRequest, ExpectedVersion, StreamAppend};
    use domain::event::codec::encode_payload;
    use domain::event::{EventEnvelope, EventPayload, RecordCreated};

    async fn store_with(events: u64) -> (tempfile::TempDir, Arc<dyn EventStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(dir.path()).unwrap());
        for i in 0..events {
            let payload =
                EventPayload::RecordCreated(RecordCreated { object: "note".into(), id: format!("n{i}"), record: Default::default(), automated: Vec::new() });
            let (event_type, schema_version, bytes) = encode_payload(&payload);
            let envelope = EventEnvelope {
                position: 0,
                stream: format!("note/n{i}"),
                stream_version: 0,
                event_id: [i as u8; 16],
                event_type: event_type.into(),
                schema_version,
                occurred_at: 1_700_000_000_000_000 + i as i64,
                actor: "t".into(),
                tenant: "default".into(),
                correlation_id: [0; 16],
                causation_id: None,
                idempotency_key: None,
                payload: bytes,
            };
            let request = AppendRequest {
                streams: vec![StreamAppend { stream: envelope.stream.clone(), expected: ExpectedVersion::Exact(0), events: vec![envelope] }],
                idempotency_key: None,
                unique: Default::default(),
            };
            store.append(request).await.unwrap();
        }
        (dir, store)
    }

    #[tokio::test]
    async fn a_past_moment_is_folded_once_and_folds_wait_their_turn() {
        let (_dir, store) = store_with(5).await;
        let folds = AsOfFolds::default();
        let wait = std::time::Duration::from_millis(50);
        let (first, reached) = folds.model(&store, AsOf::Position(3), wait).await.unwrap().unwrap();
        assert_eq!(reached, 3);
        let (again, _) = folds.model(&store, AsOf::Position(3), wait).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the past does not change: kept");
        // A moment at the head may still change: folded each time.
        let (head, _) = folds.model(&store, AsOf::Position(99), wait).await.unwrap().unwrap();
        let (head_again, _) = folds.model(&store, AsOf::Position(99), wait).await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&head, &head_again));
        // Every turn taken: a fold that is not kept waits, then gives up.
        let _turns = folds.turns.acquire_many(MAX_FOLDS as u32).await.unwrap();
        assert!(folds.model(&store, AsOf::Position(2), wait).await.unwrap().is_none());
        assert!(folds.model(&store, AsOf::Position(3), wait).await.unwrap().is_some(), "a kept one needs no turn");
    }
}
