//! Reads as of a past moment, computed from the log: the query model folded
//! up to a log position (or to the last event at or before a time).

use std::sync::Arc;

use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::Timestamp;

use crate::history::History;
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
    /// Past states of the live model: a fold starts from the latest one before its moment.
    history: Arc<History>,
}

/// As-of folds running at once.
pub const MAX_FOLDS: usize = 2;
/// Finished folds kept.
pub const KEPT_FOLDS: usize = 2;
/// Rows a fold may hold and still be kept (each kept fold is a copy of the data as it was).
pub const MAX_KEPT_ROWS: usize = 200_000;

impl Default for AsOfFolds {
    fn default() -> AsOfFolds {
        AsOfFolds::new(Default::default())
    }
}

impl AsOfFolds {
    /// Folds that start from the snapshots in `history` (the live query model's).
    pub fn new(history: Arc<History>) -> AsOfFolds {
        AsOfFolds { turns: tokio::sync::Semaphore::new(MAX_FOLDS), kept: Default::default(), history }
    }

    /// The history folds start from.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

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
        let (model, reached, past) = fold_as_of(store, &self.history, as_of).await?;
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

/// The fold (from the latest snapshot wholly before the moment, else from the
/// beginning), its position, and whether the log had moved past the moment
/// (so the answer can never change).
async fn fold_as_of(store: &Arc<dyn EventStore>, history: &History, as_of: AsOf) -> Result<(QueryModel, u64, bool), ReadError> {
    let upcasters = domain::event::registry();
    let (mut model, mut after) = match history.latest(|position, max_occurred_at| as_of.includes(position, max_occurred_at)) {
        Some(snapshot) => (QueryModel::from_snapshot(&snapshot), snapshot.position),
        None => (QueryModel::default(), 0),
    };
    // Rows go in without index upkeep; the indexes are built once at the end.
    model.begin_bulk();
    let mut reached = after;
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
            model.apply_owned(envelope, payload);
            reached = envelope.position;
        }
    }
    model.end_bulk();
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
    use domain::event::{EventPayload, RecordCreated};

    async fn append(store: &Arc<dyn EventStore>, stream: String, payload: EventPayload, occurred_at: i64) {
        crate::test_support::append(store, &stream, &payload, occurred_at).await;
    }

    async fn store_with(events: u64) -> (tempfile::TempDir, Arc<dyn EventStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(dir.path()).unwrap());
        for i in 0..events {
            let payload =
                EventPayload::RecordCreated(RecordCreated { object: "note".into(), id: format!("n{i}"), record: Default::default(), automated: Vec::new() });
            append(&store, format!("note/n{i}"), payload, 1_700_000_000_000_000 + i as i64).await;
        }
        (dir, store)
    }

    /// Random creates, updates and deletes over two objects, with a clock
    /// that now and then goes back; the live model that follows them keeps
    /// a snapshot every few events.
    #[tokio::test]
    async fn a_fold_from_a_snapshot_equals_a_fold_from_the_beginning() {
        use domain::event::{FieldChange, RecordDeleted, RecordUpdated};
        use domain::value::{Record, Value};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(dir.path()).unwrap());
        let mut rng = crate::test_support::Rng(0x5eed_a50f);
        let mut alive: Vec<(&str, u64)> = Vec::new();
        let mut clock = 1_000_000i64;
        for n in 0..400u64 {
            // Mostly forward, sometimes a little back (clocks of several nodes).
            clock += rng.below(100) as i64 - 20;
            let object = *rng.pick(&["note", "task"]);
            let payload = match (rng.below(10), alive.is_empty()) {
                (0..=4, _) | (_, true) => {
                    let mut record = Record::default();
                    record.insert("n", Value::Int(n as i64));
                    alive.push((object, n));
                    EventPayload::RecordCreated(RecordCreated { object: object.into(), id: format!("r{n:04}"), record, automated: Vec::new() })
                }
                (5..=7, _) => {
                    let (object, id) = *rng.pick(&alive);
                    let change = FieldChange { field: "n".into(), old: Value::Null, new: Value::Int(rng.below(1000) as i64) };
                    EventPayload::RecordUpdated(RecordUpdated { object: object.into(), id: format!("r{id:04}"), changes: vec![change], automated: Vec::new() })
                }
                _ => {
                    let (object, id) = alive.swap_remove(rng.below(alive.len() as u64) as usize);
                    EventPayload::RecordDeleted(RecordDeleted { object: object.into(), id: format!("r{id:04}"), previous: Record::default(), cause: None })
                }
            };
            let id = match &payload {
                EventPayload::RecordCreated(e) => e.id.clone(),
                EventPayload::RecordUpdated(e) => e.id.clone(),
                EventPayload::RecordDeleted(e) => e.id.clone(),
                _ => unreachable!(),
            };
            append(&store, format!("{}/{id}", payload.object()), payload, clock).await;
        }
        // The live model, as the hub's would: it takes snapshots as it goes.
        let history = Arc::new(History::new(7, 100_000));
        let mut live = QueryModel::default();
        live.set_history(history.clone());
        for envelope in store.read_all(0, 1_000).await.unwrap() {
            live.apply(&envelope, &decode_envelope_payload(&envelope, domain::event::registry()).unwrap());
            // As the hub does after each batch (here every event is one).
            live.keep_history();
        }
        let kept = history.positions();
        assert!(kept.len() > 10, "snapshots were taken: {kept:?}");
        let empty = History::default();
        let rows = |model: &QueryModel| model.snapshot().tables;
        for position in (0..=400).step_by(3).chain(kept.iter().copied()) {
            let (from_snapshot, at, _) = fold_as_of(&store, &history, AsOf::Position(position)).await.unwrap();
            let (from_start, at_start, _) = fold_as_of(&store, &empty, AsOf::Position(position)).await.unwrap();
            assert_eq!((at, rows(&from_snapshot)), (at_start, rows(&from_start)), "as of position {position}");
        }
        for time in (1_000_000..clock + 50).step_by(97) {
            // The last event folded may differ where a clock went back: only the rows are compared.
            let (from_snapshot, _, _) = fold_as_of(&store, &history, AsOf::Time(Timestamp::from_micros(time))).await.unwrap();
            let (from_start, _, _) = fold_as_of(&store, &empty, AsOf::Time(Timestamp::from_micros(time))).await.unwrap();
            assert_eq!(rows(&from_snapshot), rows(&from_start), "as of time {time}");
        }
        // The realtime hub's model keeps them as it applies batches.
        let hub_history = Arc::new(History::new(7, 100_000));
        let mut hub_model = QueryModel::default();
        hub_model.set_history(hub_history.clone());
        let hub = crate::live::Hub::over(Arc::new(std::sync::RwLock::new(hub_model)));
        let events = store.read_all(0, 1_000).await.unwrap();
        for chunk in events.chunks(5) {
            let batch: Vec<_> = chunk.iter().map(|e| (e.clone(), decode_envelope_payload(e, domain::event::registry()).unwrap())).collect();
            hub.apply(&batch, chunk.last().unwrap().position);
        }
        assert!(hub_history.positions().len() > 10, "the hub keeps snapshots: {:?}", hub_history.positions());
        assert!(hub_history.positions().iter().all(|p| p % 5 == 0), "taken after whole batches");
        let (from_hub, _, _) = fold_as_of(&store, &hub_history, AsOf::Position(203)).await.unwrap();
        assert_eq!(rows(&from_hub), rows(&fold_as_of(&store, &empty, AsOf::Position(203)).await.unwrap().0));
        // The model a snapshot becomes answers queries like the live one.
        let (model, _, _) = fold_as_of(&store, &history, AsOf::Position(400)).await.unwrap();
        assert_eq!(model.row_counts(), live.row_counts());
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
