//! Rebuilding an in-process read model from the log while it stays live.
//!
//! A fresh copy is folded from position 0 while the live copy keeps serving
//! and following; the copy never folds past the live copy's position. When it
//! has caught up, the swap happens under the live copy's write lock, and only
//! at exactly the live copy's position: readers switch at one position, and
//! the runner goes on from the same event, without a gap or a duplicate (so
//! the realtime hub, fed by that runner on the embedded store, misses nothing).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use commands::store::{EventStore, Opening};
use domain::event::{EventEnvelope, EventPayload};
use tokio::sync::watch;

use crate::audit_model::AuditModel;
use crate::dead_letter::FoldLetters;
use crate::query_model::QueryModel;
use crate::read_ahead::ReadAhead;
use crate::reader::ReadError;
use crate::snapshot::Snapshot;
use commands::snapshot::SnapshotDir;

/// A read model kept in process.
pub trait MemoryModel: Default + Send + Sync + 'static {
    fn checkpoint(&self) -> u64;
    /// Applies an event it may keep (the rebuild path); models that can take
    /// ownership of the payload (no copy of the record) override it.
    fn apply_event(&mut self, envelope: &EventEnvelope, payload: EventPayload) {
        self.apply_ref(envelope, &payload);
    }
    /// Applies an event shared with other projections (the live path).
    fn apply_ref(&mut self, envelope: &EventEnvelope, payload: &EventPayload);
    /// Moves the checkpoint past events that carried nothing for this model.
    fn advance_to(&mut self, position: u64);
    /// A fresh copy is about to be folded from the log: models that can load
    /// faster in bulk (indexes built once at the end) prepare for it.
    fn begin_bulk(&mut self) {}
    /// The bulk load is over: the model must be fully readable again.
    fn end_bulk(&mut self) {}
    /// A summary of the contents, to compare two copies (object -> rows).
    fn summary(&self) -> Vec<(String, usize)>;
    /// An empty copy to fold the log into and replace this one with: models
    /// that keep something beside their data (the query model's history) hand it on.
    fn fresh(&self) -> Self {
        Self::default()
    }
    /// A model opened at a position from its own files (the search index on
    /// disk) names the last event it applied there, position and id: the
    /// start load goes on from it when the log holds that event at that
    /// position, and folds a fresh copy otherwise. `None`: nothing to go on from.
    fn resumes_from(&self) -> Option<(u64, String)> {
        None
    }
}

/// Whether the log holds the event `id` (hex, as a model's own files name it) at `position`.
async fn log_holds(store: &Arc<dyn EventStore>, (position, id): &(u64, String)) -> Result<bool, ReadError> {
    let found = commands::snapshot::event_at(store, *position).await.map_err(|e| ReadError::Store(e.to_string()))?;
    Ok(found.is_some_and(|event_id| domain::hex::encode(&event_id) == *id))
}

impl MemoryModel for QueryModel {
    fn checkpoint(&self) -> u64 {
        QueryModel::checkpoint(self)
    }
    fn apply_event(&mut self, envelope: &EventEnvelope, payload: EventPayload) {
        self.apply_owned(envelope, payload);
    }
    fn apply_ref(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.apply(envelope, payload);
    }
    fn advance_to(&mut self, position: u64) {
        self.advance(position);
    }
    fn begin_bulk(&mut self) {
        QueryModel::begin_bulk(self);
    }
    fn end_bulk(&mut self) {
        QueryModel::end_bulk(self);
    }
    fn summary(&self) -> Vec<(String, usize)> {
        self.row_counts()
    }
    fn fresh(&self) -> Self {
        QueryModel::fresh(self)
    }
}

impl MemoryModel for AuditModel {
    fn checkpoint(&self) -> u64 {
        AuditModel::checkpoint(self)
    }
    fn apply_ref(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.apply(envelope, payload);
    }
    fn advance_to(&mut self, position: u64) {
        self.advance(position);
    }
    fn summary(&self) -> Vec<(String, usize)> {
        vec![("entries".into(), self.len())]
    }
}

impl MemoryModel for crate::search::SearchModel {
    fn checkpoint(&self) -> u64 {
        crate::search::SearchModel::checkpoint(self)
    }
    fn apply_ref(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.apply(envelope, payload);
    }
    fn advance_to(&mut self, position: u64) {
        crate::search::SearchModel::advance_to(self, position);
    }
    fn begin_bulk(&mut self) {
        crate::search::SearchModel::begin_bulk(self);
    }
    fn end_bulk(&mut self) {
        crate::search::SearchModel::end_bulk(self);
    }
    fn summary(&self) -> Vec<(String, usize)> {
        vec![("records".into(), self.len())]
    }
    fn fresh(&self) -> Self {
        crate::search::SearchModel::fresh(self)
    }
    fn resumes_from(&self) -> Option<(u64, String)> {
        crate::search::SearchModel::resumes_from(self)
    }
}

impl MemoryModel for crate::analytics::AnalyticsModel {
    fn checkpoint(&self) -> u64 {
        crate::analytics::AnalyticsModel::checkpoint(self)
    }
    fn apply_ref(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.apply(envelope, payload);
    }
    fn advance_to(&mut self, position: u64) {
        self.advance(position);
    }
    fn summary(&self) -> Vec<(String, usize)> {
        self.row_counts()
    }
}

/// Progress of a rebuild, published while it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub applied: u64,
    pub head: u64,
    pub events_per_second: f64,
    pub done: bool,
    /// Whether the rebuilt copy had the same contents as the live one at the
    /// swap (`None` when the copy was ahead, so the two were not comparable).
    pub matched_live: Option<bool>,
}

/// Folds the log from `after` up to the store's head as it is now into a
/// rebuild's copy, publishing the head and the copy's progress (its rate
/// since `started`). Returns the last position.
pub async fn fold_to_head<P: crate::runner::Projection>(
    store: &Arc<dyn EventStore>,
    copy: &mut P,
    after: u64,
    started: Instant,
    progress: &watch::Sender<Progress>,
) -> Result<u64, crate::runner::ProjectionError> {
    let head = *store.head().borrow();
    progress.send_modify(|p| p.head = head);
    fold_projection(store, copy, after, head, |at| {
        let rate = at as f64 / started.elapsed().as_secs_f64().max(1e-6);
        progress.send_modify(|p| {
            p.applied = at;
            p.events_per_second = rate;
        });
    })
    .await
}

/// Folds the log from `after` up to `target` into a projection (one whose
/// model is not served yet, such as a rebuild's copy), reading ahead of it;
/// `on_batch` hears the position after each batch. Returns the last position.
pub async fn fold_projection<P: crate::runner::Projection>(
    store: &Arc<dyn EventStore>,
    projection: &mut P,
    mut after: u64,
    target: u64,
    mut on_batch: impl FnMut(u64),
) -> Result<u64, crate::runner::ProjectionError> {
    if after >= target {
        return Ok(after);
    }
    let mut batches = ReadAhead::start(store.clone(), after, target);
    let mut decoded: Vec<(EventEnvelope, EventPayload)> = Vec::new();
    while let Some(batch) = batches.next().await {
        let mut batch = batch.map_err(|e| crate::runner::ProjectionError::Store(e.to_string()))?;
        let Some(last) = batch.last() else { continue };
        let failures = batch.failures();
        decoded.clear();
        decoded.extend(batch.take());
        batches.recycle(batch);
        crate::runner::apply_or_park(projection, &decoded, &failures, last).await?;
        tokio::task::yield_now().await;
        after = last;
        on_batch(after);
    }
    Ok(after)
}

/// Folds the log into `copy` up to `target` (never past it), publishing
/// progress. Returns the letters of the events that could not be decoded,
/// and the skips it met.
pub async fn fold_until<M: MemoryModel>(
    store: &Arc<dyn EventStore>,
    copy: &mut M,
    target: u64,
    started: Instant,
    progress: &watch::Sender<Progress>,
) -> Result<FoldLetters, ReadError> {
    let mut parked = FoldLetters::default();
    if copy.checkpoint() >= target {
        return Ok(parked);
    }
    let mut batches = ReadAhead::start(store.clone(), copy.checkpoint(), target);
    while let Some(batch) = batches.next().await {
        let mut batch = batch?;
        let Some(last) = batch.last() else { continue };
        parked.letters.extend(batch.failures());
        for (envelope, payload) in batch.events() {
            if let EventPayload::EventSkipped(skip) = &payload {
                parked.skipped.push((skip.projection.clone(), skip.position));
            }
            copy.apply_event(envelope, payload);
        }
        batches.recycle(batch);
        copy.advance_to(last.min(target));
        // A fold is long CPU work on the runtime that serves requests: let them in between batches.
        tokio::task::yield_now().await;
        let applied = copy.checkpoint();
        let rate = applied as f64 / started.elapsed().as_secs_f64().max(1e-6);
        progress.send_modify(|p| {
            p.applied = applied;
            p.events_per_second = rate;
        });
    }
    Ok(parked)
}

/// Loads a model that nobody reads yet (at start) from the log, in bulk, up
/// to the head as it is now; its runner then follows from there
/// ([`crate::runner::spawn_with`] the letters returned).
pub async fn load<M: MemoryModel>(store: Arc<dyn EventStore>, model: Arc<RwLock<M>>) -> Result<FoldLetters, ReadError> {
    let (resume, checkpoint) = {
        let model = model.read().expect("model lock");
        (model.resumes_from(), model.checkpoint())
    };
    // A model opened at a position goes on from there when the log agrees
    // with it; an empty one is folded as it is; anything else is folded afresh.
    let go_on = match &resume {
        Some(at) => log_holds(&store, at).await?,
        None => checkpoint == 0,
    };
    if let (Some((position, _)), false) = (&resume, go_on) {
        tracing::warn!(position, "the log does not hold the event a model's files were committed after: the model is folded afresh");
    }
    fold_on(store, model, go_on, resume.is_some()).await
}

/// [`load`], starting from the model's snapshot in `snapshots` when there
/// is one the log agrees with (see [`crate::snapshot`]). The store may still
/// be opening ([`Opening`]): the snapshot is decoded meanwhile.
pub async fn load_snapshotted<M: Snapshot>(store: impl Into<Opening>, model: Arc<RwLock<M>>, snapshots: Option<SnapshotDir>) -> Result<FoldLetters, ReadError> {
    load_snapshotted_then(store, model, snapshots, |_: &mut M| {}).await
}

/// [`load_snapshotted`], calling `on_opened` with the model its snapshot holds
/// once the log agrees with it, before the events after it are folded (the
/// write model's start takes its records from the query model's then).
pub async fn load_snapshotted_then<M: Snapshot>(
    store: impl Into<Opening>,
    model: Arc<RwLock<M>>,
    snapshots: Option<SnapshotDir>,
    on_opened: impl FnOnce(&mut M) + Send,
) -> Result<FoldLetters, ReadError> {
    let store = store.into();
    let opened = |store: Opening| async move { store.store().await.map_err(|e| ReadError::Store(e.to_string())) };
    let Some(snapshots) = snapshots else { return load(opened(store).await?, model).await };
    let started = Instant::now();
    let template = model.read().expect("model lock").fresh();
    let decoded = crate::snapshot::open(&snapshots, template).await;
    if let Some(opened) = &decoded {
        tracing::info!(model = M::NAME, position = opened.position, seconds = started.elapsed().as_secs_f64(), "read model opened from its snapshot");
    }
    let store = opened(store).await?;
    if let Some(opened) = decoded {
        let holds = commands::snapshot::log_holds(&store, opened.position, &opened.event_id).await;
        if holds.map_err(|e| ReadError::Store(e.to_string()))? {
            let mut opened = opened;
            on_opened(&mut opened.model);
            *model.write().expect("model lock") = opened.model;
            return fold_on(store, model, true, true).await;
        }
        tracing::warn!(
            model = M::NAME,
            position = opened.position,
            "the log does not hold the event a model's snapshot was saved after: it is removed and the model folded from the log"
        );
        let _ = snapshots.forget(M::NAME);
    }
    load(store, model).await
}

/// Folds the log into the model from where it is (`go_on`) or into a fresh
/// copy, up to the head as it is now; `opened` says the model came from its
/// own files, so the result replaces it even when it holds nothing new.
async fn fold_on<M: MemoryModel>(store: Arc<dyn EventStore>, model: Arc<RwLock<M>>, go_on: bool, opened: bool) -> Result<FoldLetters, ReadError> {
    let started = Instant::now();
    let mut copy = if go_on { std::mem::take(&mut *model.write().expect("model lock")) } else { model.read().expect("model lock").fresh() };
    let from = copy.checkpoint();
    copy.begin_bulk();
    let head = *store.head().borrow();
    let (progress, _) = watch::channel(Progress::default());
    let parked = fold_until(&store, &mut copy, head, started, &progress).await?;
    let copy = end_bulk_apart(copy).await;
    let model_name = std::any::type_name::<M>().rsplit("::").next().unwrap_or("model");
    tracing::info!(model = model_name, from, to = copy.checkpoint(), seconds = started.elapsed().as_secs_f64(), "read model loaded from the log");
    let mut guard = model.write().expect("model lock");
    if go_on || opened || guard.checkpoint() < copy.checkpoint() {
        *guard = copy;
    }
    Ok(parked)
}

/// Ends a bulk load on a thread that ends with it: building the indexes of
/// a large model takes seconds, which would hold a runtime worker, and
/// allocates and frees hundreds of megabytes in passing, which go back to
/// the system when that thread ends (see `on_own_thread`).
async fn end_bulk_apart<M: MemoryModel>(mut copy: M) -> M {
    commands::snapshot::on_own_thread::on_own_thread("index-build", move || {
        copy.end_bulk();
        copy
    })
    .await
}

/// Rebuilds `live` from the log and swaps the copy in. Returns whether the
/// copy matched the live model at the swap (see [`Progress::matched_live`]).
pub async fn rebuild<M: MemoryModel>(store: Arc<dyn EventStore>, live: Arc<RwLock<M>>, progress: watch::Sender<Progress>) -> Result<Option<bool>, ReadError> {
    let started = Instant::now();
    let mut copy = live.read().expect("model lock").fresh();
    copy.begin_bulk();
    let mut bulk = true;
    loop {
        // Fold up to where the live copy is (never past it), then swap only at
        // exactly its position: readers switch at one position, and the live
        // runner (and the realtime hub fed by it) goes on from the same event.
        let target = live.read().expect("model lock").checkpoint();
        progress.send_modify(|p| p.head = (*store.head().borrow()).max(target));
        fold_until(&store, &mut copy, target, started, &progress).await?;
        if std::mem::take(&mut bulk) {
            copy = end_bulk_apart(copy).await;
        }
        let mut guard = live.write().expect("model lock");
        if copy.checkpoint() != guard.checkpoint() {
            // The live copy moved on while we folded: catch up and try again.
            continue;
        }
        let matched = Some(copy.summary() == guard.summary());
        *guard = std::mem::take(&mut copy);
        drop(guard);
        progress.send_modify(|p| {
            p.done = true;
            p.matched_live = matched;
        });
        return Ok(matched);
    }
}
