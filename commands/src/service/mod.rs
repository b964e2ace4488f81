//! Command handling: validate against metadata and current state, stamp system
//! fields, append with expected stream versions and the idempotency key.
//!
//! The flow of [`CommandService::execute`]: a repeated idempotency key returns
//! the first result; otherwise, under the write-model lock, `decide` runs and
//! the unique values of the result are reserved; the append runs without the
//! lock (so concurrent commands share one fsync); the committed events are then
//! applied to the write model. A version conflict on a command without an
//! explicit expected version is retried against the fresh state; such
//! commands on one record take its stream in turn first (`stream_locks`).

mod append_stats;
mod command;
mod follow_log;
mod plan;
pub mod sharing;
mod stream_locks;
pub(crate) mod stream_state;
mod write_model;

use std::sync::{Arc, Mutex};

use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, StreamId, Upcasters};
use domain::metadata::Catalog;
use domain::record::RecordState;
use domain::value::Value;
use domain::DomainError;
use tracing::Instrument;

pub use self::append_stats::{AppendCounts, AppendStats};
pub use self::command::{Command, CommandMeta, Outcome};
use self::write_model::{Reservation, WriteModel};
use crate::error::{CommandError, StoreError};
use crate::snapshot::{SaveError, SnapshotDir};
use crate::store::{AppendRequest, Arrivals, EventStore, Opening, StreamAppend};

/// How often a command without an explicit expected version is re-decided after a conflict.
const MAX_ATTEMPTS: usize = 20;
/// Decisions of one command after another node's claim of a value it took.
const MAX_CLAIM_ATTEMPTS: usize = 8;

/// Events read per batch when folding the log at start.
const CATCH_UP_BATCH: usize = 10_000;

pub struct CommandService {
    store: Arc<dyn EventStore>,
    /// Shared with the append task of each command (see [`CommandService::execute_all`]).
    model: Arc<Mutex<WriteModel>>,
    /// Every reader of the log decodes through the project's upcasters.
    upcasters: &'static Upcasters,
    streams: stream_locks::StreamLocks,
    /// The last log position the write model has applied (`follow_log`).
    applied: tokio::sync::watch::Receiver<u64>,
    /// Appends under way: their tasks outlive a caller that gave up ([`CommandService::settled`]).
    appending: Arc<tokio::sync::watch::Sender<usize>>,
    /// Where commands announce their appends before planning them, when the
    /// store's group commit waits for them (`EventStore::arrivals`).
    arrivals: Option<Arrivals>,
    follower: tokio::task::JoinHandle<()>,
    stats: AppendStats,
    /// The workflow rules whose field updates join the writes they fire on
    /// (`domain::automation::before_save`), set with the app's automation.
    rules: std::sync::RwLock<Arc<Vec<domain::automation::WorkflowRule>>>,
    /// The position the start's fold began after: the write model's snapshot's, or 0.
    started_from: u64,
    /// Whether snapshots save shared records as digests: a start of this
    /// node takes them from a read model it loads first ([`StartSource`]).
    saves_by_digest: bool,
    /// How many live records the write model held alone when it was last
    /// saved or loaded: records shared since then make the snapshot on file
    /// larger than it needs to be ([`CommandService::snapshot_shares_more`]).
    saved_whole: std::sync::atomic::AtomicUsize,
}

/// The in-process read model a start takes the write model's records from
/// (those its snapshot saved as digests), sent once that model is loaded; a
/// sender dropped unsent means there is none, and the whole log is folded.
pub type StartSource = tokio::sync::oneshot::Receiver<Arc<dyn sharing::RecordSource>>;

/// What a save of the write model may assume of writes meanwhile
/// ([`CommandService::save_snapshot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveWhile {
    /// Writes go on: they wait only while the model is captured.
    Serving,
    /// Nothing writes (a stop): encoded under the lock, with no copy.
    Stopped,
}

/// Counts one append task for as long as it runs, however it ends.
struct Appending(Arc<tokio::sync::watch::Sender<usize>>);

impl Appending {
    fn start(counter: &Arc<tokio::sync::watch::Sender<usize>>) -> Appending {
        counter.send_modify(|n| *n += 1);
        Appending(counter.clone())
    }
}

impl Drop for Appending {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Drop for CommandService {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl CommandService {
    /// Folds the whole log into the write model, then serves commands.
    pub async fn start(store: Arc<dyn EventStore>) -> Result<CommandService, CommandError> {
        CommandService::start_from(store, None, None).await
    }

    /// [`CommandService::start`], from the write model's snapshot in
    /// `snapshots` when there is one the log agrees with (see
    /// [`crate::snapshot`]): only the log after it is folded.
    /// With `source`, records its snapshot saved as digests are taken from
    /// that read model (and the next snapshots save them so). The store may
    /// still be opening ([`Opening`]): the snapshot is decoded meanwhile.
    pub async fn start_from(store: impl Into<Opening>, snapshots: Option<&SnapshotDir>, source: Option<StartSource>) -> Result<CommandService, CommandError> {
        let started = std::time::Instant::now();
        let upcasters = domain::event::registry();
        let saves_by_digest = source.is_some();
        let store = store.into();
        let (model, mut after) = match snapshots {
            Some(dir) => saved_write_model(&store, dir, source, upcasters).await?.unwrap_or_default(),
            None => Default::default(),
        };
        let store = store.store().await?;
        let from = after;
        let model = Arc::new(Mutex::new(model));
        // One buffer for the whole fold: each read decodes into the envelopes
        // of the batch before (no allocations per event for the envelope).
        let mut batch = Vec::new();
        loop {
            batch = store.read_all_into(after, CATCH_UP_BATCH, batch).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            apply_and_release(&model, upcasters, &batch, Vec::new())?;
        }
        tracing::info!(from, to = after, seconds = started.elapsed().as_secs_f64(), "write model loaded from the log");
        // From here on the write model follows the log (other writers' events included).
        let whole = model.lock().expect("write model lock").unshared_count();
        let (applied_tx, applied) = tokio::sync::watch::channel(after);
        let follower = tokio::spawn(follow_log::follow(store.clone(), model.clone(), upcasters, applied_tx));
        let appending = Arc::new(tokio::sync::watch::channel(0).0);
        let arrivals = store.arrivals();
        Ok(CommandService {
            store,
            model,
            upcasters,
            streams: Default::default(),
            applied,
            appending,
            arrivals,
            follower,
            stats: AppendStats::default(),
            rules: Default::default(),
            started_from: from,
            saves_by_digest,
            saved_whole: std::sync::atomic::AtomicUsize::new(whole),
        })
    }

    /// Saves the write model to `dir` as of the position its follower has
    /// applied (it may hold a few of this node's events past it, which a
    /// fold from there passes by). Writes wait for the model's lock while it
    /// is taken: with [`SaveWhile::Serving`] for a copy of its streams' ids
    /// (records shared) that is encoded once the lock is let go, with
    /// [`SaveWhile::Stopped`] for the whole encoding, which copies nothing.
    /// Returns the position, `None` on an empty log.
    pub async fn save_snapshot(&self, dir: &SnapshotDir, mode: SaveWhile) -> Result<Option<u64>, SaveError> {
        if *self.applied.borrow() == 0 {
            return Ok(None);
        }
        let (model, applied, by_digest) = (self.model.clone(), self.applied.clone(), self.saves_by_digest);
        let (position, whole) = dir
            .save(&self.store, write_model::snapshot::NAME, write_model::snapshot::FORMAT, move |out| match mode {
                SaveWhile::Stopped => {
                    let model = model.lock().expect("write model lock");
                    (*applied.borrow(), model.encode_snapshot(by_digest, out))
                }
                SaveWhile::Serving => {
                    let started = std::time::Instant::now();
                    let (position, captured) = {
                        let model = model.lock().expect("write model lock");
                        (*applied.borrow(), model.capture(by_digest))
                    };
                    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "write model captured for its snapshot");
                    (position, captured.encode(out))
                }
            })
            .await?;
        self.saved_whole.store(whole, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(position))
    }

    /// Whether a snapshot saved now would hold fewer records whole than the
    /// last one saved or loaded (records the read model has shared since, as
    /// after a start that folded the log): worth saving again at a stop even
    /// when the log has not moved.
    pub fn snapshot_shares_more(&self) -> bool {
        self.saves_by_digest && self.model.lock().expect("write model lock").unshared_count() < self.saved_whole.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The position the write model's file in `dir` was saved at.
    pub fn snapshot_saved_at(dir: &SnapshotDir) -> Option<u64> {
        dir.saved_at(write_model::snapshot::NAME, write_model::snapshot::FORMAT)
    }

    /// The position the start's fold began after: where the write model's
    /// snapshot was saved, or 0 when the whole log was folded.
    pub fn started_from(&self) -> u64 {
        self.started_from
    }

    /// The position the write model has applied the log up to.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Puts `rules` in effect for the writes decided from now on: the
    /// automation's rules fired by record changes (schedule rules run as jobs).
    pub fn set_workflow_rules(&self, rules: &[domain::automation::WorkflowRule]) {
        let fired: Vec<_> = rules.iter().filter(|r| r.trigger != domain::automation::Trigger::Schedule).cloned().collect();
        *self.rules.write().expect("rules lock") = Arc::new(fired);
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// What this node's commands appended (`/metrics`).
    pub fn append_counts(&self) -> AppendCounts {
        self.stats.read()
    }

    /// Waits until no append is under way: every write whose caller gave up
    /// half way has committed or failed (a shutdown's last step; and what a
    /// test that stops tasks as a crash would waits for before restarting
    /// them, since a crashed process's appends end with it).
    pub async fn settled(&self) {
        let mut appending = self.appending.subscribe();
        let _ = appending.wait_for(|n| *n == 0).await;
    }

    /// Waits (at most `limit`) until the write model has applied the log up
    /// to `position`; false when it has not by then.
    pub async fn wait_applied(&self, position: u64, limit: std::time::Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(limit, applied.wait_for(|p| *p >= position)).await.is_ok_and(|r| r.is_ok())
    }

    /// Automation definitions stored through the metadata API, with the
    /// generation they are at: `(kind, name, definition or None when removed)`.
    pub fn automation_definitions(&self) -> (u64, Vec<(String, String, Option<serde_json::Value>)>) {
        let model = self.model.lock().expect("write model lock");
        let stored = model
            .automation
            .iter()
            .map(|((kind, name), json)| (kind.clone(), name.clone(), json.as_deref().and_then(|j| serde_json::from_str(j).ok())))
            .collect();
        (model.automation_generation, stored)
    }

    /// The generation of the stored automation definitions (it moves when one changes).
    pub fn automation_generation(&self) -> u64 {
        self.model.lock().expect("write model lock").automation_generation
    }

    /// A snapshot of the current metadata.
    pub fn catalog(&self) -> Catalog {
        self.model.lock().expect("write model lock").catalog.clone()
    }

    /// One object's definition, as the write side knows it.
    pub fn object(&self, name: &str) -> Option<std::sync::Arc<domain::metadata::ObjectDef>> {
        self.model.lock().expect("write model lock").catalog.get(name).cloned()
    }

    /// Whether a live record exists (without copying it).
    pub fn exists(&self, object: &str, id: &str) -> bool {
        domain::record::Lookups::record_exists(&*self.model.lock().expect("write model lock"), object, id)
    }

    /// The version of a record stream (0 when it has no events), without copying the record.
    pub fn version_of(&self, object: &str, id: &str) -> u64 {
        self.model.lock().expect("write model lock").version(object, id)
    }

    /// Holds each record once with the in-process read model `source` (see
    /// [`sharing`]): the task ends when this service is dropped; the caller
    /// may abort it sooner.
    pub fn share_records_with(&self, source: Arc<dyn sharing::RecordSource>) -> tokio::task::JoinHandle<()> {
        sharing::spawn(&self.model, source)
    }

    /// Whether the write model holds this record in `allocation` (tests of sharing).
    pub fn holds_record_allocation(&self, object: &str, id: &str, allocation: &Arc<domain::value::Record>) -> bool {
        self.model.lock().expect("write model lock").kept(object, id).is_some_and(|own| Arc::ptr_eq(own, allocation))
    }

    /// The current state of a record stream, as the write side knows it.
    pub fn record_state(&self, object: &str, id: &str) -> RecordState {
        self.model.lock().expect("write model lock").record(object, id)
    }

    /// Copies of the live records of an object that `keep` accepts (only those are copied).
    pub fn live_records_where(&self, object: &str, keep: impl Fn(&domain::value::Record) -> bool) -> Vec<domain::value::Record> {
        self.model.lock().expect("write model lock").live_records(object).filter(|r| keep(r)).cloned().collect()
    }

    /// A copy of every live record of an object (a job's sweep).
    pub fn live_records(&self, object: &str) -> Vec<domain::value::Record> {
        self.model.lock().expect("write model lock").live_records(object).cloned().collect()
    }

    /// The id of a live record whose `field` equals `value`.
    pub fn find_by_field(&self, object: &str, field: &str, value: &Value) -> Option<String> {
        self.model.lock().expect("write model lock").find_by_field(object, field, value)
    }

    /// Executes one command.
    pub async fn execute(&self, command: Command, meta: CommandMeta) -> Result<Outcome, CommandError> {
        let mut outcomes = self.execute_all(vec![command], meta).await.map_err(|(_, e)| e)?;
        Ok(outcomes.pop().expect("one outcome per command"))
    }

    /// Executes commands as one atomic append: all take effect or none does.
    /// Each command is decided against the state before the batch, so one
    /// record may appear only once. On failure, returns the index of the
    /// command at fault (or 0 when the store failed) and the error.
    pub async fn execute_all(&self, commands: Vec<Command>, meta: CommandMeta) -> Result<Vec<Outcome>, (usize, CommandError)> {
        let span = crate::trace::child(|| {
            tracing::debug_span!(
                target: crate::trace::TARGET,
                "command",
                otel.name = %format_args!("command {}", commands.first().map_or("none", Command::kind)),
                object = commands.first().and_then(Command::object).unwrap_or(""),
                commands = commands.len(),
            )
        });
        self.execute_all_traced(commands, meta).instrument(span).await
    }

    async fn execute_all_traced(&self, commands: Vec<Command>, meta: CommandMeta) -> Result<Vec<Outcome>, (usize, CommandError)> {
        if let Some(key) = &meta.idempotency_key {
            if let Some(events) = self.store.read_idempotent(key).await.map_err(|e| (0, e.into()))? {
                return self.replay_checked(events, &meta, commands.len()).await;
            }
        }
        let explicit_version = commands.iter().any(|c| c.expected_version().is_some());
        let _turn = match commands.as_slice() {
            [Command::Update { object, id, expected_version: None, .. } | Command::Delete { object, id, expected_version: None }] => {
                Some(self.streams.hold(StreamId::record(object, id).0).await)
            }
            _ => None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Said before planning, taken back as the append is handed over:
            // the store's group commit waits for appends on their way.
            let arriving = self.arrivals.as_ref().map(Arrivals::announce);
            let planned = match self.plan_all(&commands, &meta) {
                Ok(planned) => planned,
                // A repeat racing its first run (on this node or another)
                // meets that run's unique values: once the first has
                // committed, answer its result instead.
                Err((index, CommandError::Rejected(DomainError::Duplicate { message, errors }))) => {
                    // No append of this command is on its way.
                    drop(arriving);
                    if let Some(events) = self.first_run_of(&meta).await.map_err(|e| (0, e))? {
                        return self.replay_checked(events, &meta, commands.len()).await;
                    }
                    return Err((index, CommandError::Rejected(DomainError::Duplicate { message, errors })));
                }
                Err(other) => return Err(other),
            };
            let (request, reservations, mut outcomes) = planned;
            let Some(request) = request else {
                return Ok(outcomes);
            };
            // The append and its entry into the write model run as a task of their
            // own: a caller dropped half way (a client gone, a request timed out)
            // cannot leave a committed write out of the write model, or a unique
            // value reserved for ever. Committed events enter the write model in
            // the same critical section that drops the reservations: at no moment
            // is a claimed unique value neither reserved nor committed.
            let (store, model, upcasters) = (self.store.clone(), self.model.clone(), self.upcasters);
            let appending = Appending::start(&self.appending);
            let span = crate::trace::child(
                || tracing::debug_span!(target: crate::trace::TARGET, "append", attempt, events = request.streams.iter().map(|s| s.events.len()).sum::<usize>()),
            );
            let traced = !span.is_none();
            let (result, applied) = tokio::spawn(
                async move {
                    let _appending = appending;
                    if traced {
                        crate::trace::appending(request.streams.iter().flat_map(|s| s.events.iter().map(|e| e.event_id)));
                    }
                    drop(arriving);
                    let result = store.append(request).await;
                    let applied = match &result {
                        Ok(committed) => apply_and_release(&model, upcasters, &committed.events, reservations),
                        Err(_) => apply_and_release(&model, upcasters, &[], reservations),
                    };
                    (result, applied)
                }
                .instrument(span),
            )
            .await
            .map_err(|e| (0, CommandError::Store(StoreError::Unavailable(format!("the append task failed: {e}")))))?;
            applied.map_err(|e| (0, e))?;
            match &result {
                Ok(committed) => self.stats.committed(committed.events.len()),
                Err(StoreError::Conflict { .. } | StoreError::Claimed { .. } | StoreError::KeyUsed { .. }) => self.stats.conflicted(),
                Err(_) => self.stats.failed(),
            }
            let committed = match result {
                Ok(committed) => committed,
                // No version named: decide again against the fresh state, after
                // a pause that grows (the winner's events reach the write model).
                Err(StoreError::Conflict { .. }) if !explicit_version && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_micros(200 * attempt as u64)).await;
                    continue;
                }
                Err(StoreError::Conflict { .. }) if !explicit_version => return Err((0, CommandError::Contended)),
                // Another writer node committed a value this one claimed (most
                // often an autonumber both computed): decide again once the write
                // model has moved (it learns the other's write by following the
                // log); a true duplicate is then refused by the decision itself.
                Err(StoreError::Claimed { .. }) if attempt < MAX_CLAIM_ATTEMPTS => {
                    self.model_moved(std::time::Duration::from_millis(250)).await;
                    continue;
                }
                Err(StoreError::KeyUsed { key }) => {
                    let events = self.store.read_idempotent(&key).await.map_err(|e| (0, e.into()))?.unwrap_or_default();
                    return self.replay_checked(events, &meta, commands.len()).await;
                }
                Err(other) => return Err((0, other.into())),
            };
            let position = committed.last_position();
            for outcome in outcomes.iter_mut() {
                // `outcome.record` is the state after the command, as planned (and now applied).
                let own: Vec<_> = committed.events.iter().filter(|e| e.stream == outcome.stream).cloned().collect();
                if let Some(last) = own.last() {
                    outcome.version = last.stream_version;
                }
                outcome.position = position;
                outcome.events = own;
            }
            if outcomes.len() == 1 {
                // A single command owns every event it caused (cascades included).
                outcomes[0].events = committed.events;
            }
            return Ok(outcomes);
        }
    }

    /// What executing `commands` would append now, decided as
    /// [`CommandService::execute_all`] would, without appending anything:
    /// each event's stream and payload (`objectstack migrate --dry-run`).
    pub fn dry_run(&self, commands: &[Command], meta: &CommandMeta) -> Result<Vec<(String, domain::event::EventPayload)>, (usize, CommandError)> {
        let (request, reservations, _) = self.plan_all(commands, meta)?;
        apply_and_release(&self.model, self.upcasters, &[], reservations).map_err(|e| (0, e))?;
        let mut out = Vec::new();
        for stream in request.map(|r| r.streams).unwrap_or_default() {
            for event in &stream.events {
                let payload = decode_envelope_payload(event, self.upcasters).map_err(|e| (0, CommandError::Rejected(e)))?;
                out.push((stream.stream.clone(), payload));
            }
        }
        Ok(out)
    }

    /// The first result of a repeated key, if the request is the same one
    /// (when the caller gave a fingerprint as the correlation id).
    async fn replay_checked(&self, events: Vec<EventEnvelope>, meta: &CommandMeta, count: usize) -> Result<Vec<Outcome>, (usize, CommandError)> {
        if let (Some(fingerprint), Some(first)) = (meta.correlation_id, events.first()) {
            if first.correlation_id != fingerprint {
                return Err((0, CommandError::KeyReused));
            }
        }
        self.replay_outcomes(events, count).await.map_err(|e| (0, e))
    }

    /// Plans every command under one lock; merges their appends.
    #[allow(clippy::type_complexity)]
    fn plan_all(&self, commands: &[Command], meta: &CommandMeta) -> Result<(Option<AppendRequest>, Vec<Reservation>, Vec<Outcome>), (usize, CommandError)> {
        let rules = self.rules.read().expect("rules lock").clone();
        let mut model = self.model.lock().expect("write model lock");
        let mut streams: Vec<StreamAppend> = Vec::new();
        let mut unique = crate::store::UniqueChanges::default();
        let mut reservations = Vec::new();
        let mut outcomes = Vec::with_capacity(commands.len());
        for (index, command) in commands.iter().enumerate() {
            match plan::plan(&mut model, command, meta, &rules) {
                Ok(planned) => {
                    reservations.push(planned.reservation);
                    let request = planned.request.unwrap_or_default();
                    unique.extend(request.unique);
                    for stream in request.streams {
                        if streams.iter().any(|s| s.stream == stream.stream) {
                            for reservation in reservations.drain(..) {
                                model.release(reservation);
                            }
                            let message = format!("{} is changed twice in one atomic batch", stream.stream);
                            return Err((index, DomainError::InvalidQuery(message).into()));
                        }
                        streams.push(stream);
                    }
                    outcomes.push(planned.outcome);
                }
                Err(error) => {
                    for reservation in reservations.drain(..) {
                        model.release(reservation);
                    }
                    return Err((index, error));
                }
            }
        }
        let request = (!streams.is_empty()).then(|| AppendRequest { streams, idempotency_key: meta.idempotency_key.clone(), unique });
        Ok((request, reservations, outcomes))
    }

    /// Waits (at most `limit`) until the write model applies another event:
    /// another node's write it must know before deciding again.
    async fn model_moved(&self, limit: std::time::Duration) {
        let mut applied = self.applied.clone();
        applied.borrow_and_update();
        let _ = tokio::time::timeout(limit, applied.changed()).await;
    }

    /// The events of a run under the command's idempotency key, waiting (a
    /// few times, while the write model moves) for one in flight to commit;
    /// `None` without a key or when no run commits under it.
    async fn first_run_of(&self, meta: &CommandMeta) -> Result<Option<Vec<EventEnvelope>>, CommandError> {
        let Some(key) = &meta.idempotency_key else { return Ok(None) };
        for _ in 0..4 {
            if let Some(events) = self.store.read_idempotent(key).await? {
                return Ok(Some(events));
            }
            self.model_moved(std::time::Duration::from_millis(100)).await;
        }
        Ok(self.store.read_idempotent(key).await?)
    }

    /// Checks commands without writing anything (batch `validateOnly`).
    pub fn validate_only(&self, commands: &[Command], meta: &CommandMeta) -> Result<(), (usize, CommandError)> {
        let (_, reservations, _) = self.plan_all(commands, meta)?;
        let mut model = self.model.lock().expect("write model lock");
        for reservation in reservations {
            model.release(reservation);
        }
        Ok(())
    }

    async fn replay_outcomes(&self, events: Vec<EventEnvelope>, expected: usize) -> Result<Vec<Outcome>, CommandError> {
        if expected == 1 {
            return Ok(vec![self.replay_outcome(events).await?]);
        }
        let mut streams: Vec<String> = Vec::new();
        for e in &events {
            if !streams.contains(&e.stream) {
                streams.push(e.stream.clone());
            }
        }
        let mut outcomes = Vec::new();
        for stream in streams {
            let own: Vec<EventEnvelope> = events.iter().filter(|e| e.stream == stream).cloned().collect();
            outcomes.push(self.replay_outcome(own).await?);
        }
        Ok(outcomes)
    }

    /// The result of a command that already ran under the same idempotency key:
    /// the record as of its last event.
    async fn replay_outcome(&self, events: Vec<EventEnvelope>) -> Result<Outcome, CommandError> {
        let Some(first) = events.first() else {
            return Err(CommandError::Store(StoreError::Corrupt("an idempotency key without events".into())));
        };
        let stream = StreamId(first.stream.clone());
        let last_version = events.iter().filter(|e| e.stream == first.stream).map(|e| e.stream_version).max().unwrap_or(0);
        let (object, id) = match stream.record_parts() {
            Some((object, id)) => (object.to_string(), id.to_string()),
            None => (first.stream.trim_start_matches("$meta/").to_string(), String::new()),
        };
        let state =
            if id.is_empty() { RecordState::default() } else { stream_state::stream_state(&self.store, self.upcasters, &first.stream, last_version).await? };
        Ok(Outcome {
            position: events.last().map(|e| e.position).unwrap_or(0),
            stream: first.stream.clone(),
            object,
            id,
            version: last_version,
            record: state.record,
            events,
            warnings: Vec::new(),
            replayed: true,
        })
    }
}

/// The write model saved in `dir` and its position, when the file is whole
/// and the log holds the event it names there (the file is decoded while
/// the store may still be opening).
async fn saved_write_model(
    store: &Opening,
    dir: &SnapshotDir,
    source: Option<StartSource>,
    upcasters: &'static Upcasters,
) -> Result<Option<(WriteModel, u64)>, CommandError> {
    use write_model::snapshot::{FORMAT, NAME};
    let (header, mut opened) = match dir.open(NAME, FORMAT, |_, body| WriteModel::decode_snapshot(body)).await {
        Some(opened) => opened,
        None => return Ok(None),
    };
    tracing::info!(position = header.position, "write model opened from its snapshot");
    let store = &store.store().await?;
    if !crate::snapshot::log_holds(store, header.position, &header.event_id).await? {
        tracing::warn!(
            position = header.position,
            "the log does not hold the event the write model's snapshot was saved after: it is removed and the whole log folded"
        );
        let _ = dir.forget(NAME);
        return Ok(None);
    }
    let by_digest = opened.by_digest();
    if by_digest > 0 {
        let started = std::time::Instant::now();
        let source = match source {
            Some(loaded) => loaded.await.ok(),
            None => None,
        };
        let Some(source) = source else {
            tracing::warn!("the write model's snapshot saved records as digests and no read model was loaded to take them from: the whole log is folded");
            return Ok(None);
        };
        let waited = started.elapsed().as_secs_f64();
        let (taken, missing) = crate::snapshot::on_own_thread::on_own_thread("snapshot-take", move || {
            let missing = opened.take_from(source.as_ref());
            (opened, missing)
        })
        .await;
        opened = taken;
        for missed in &missing {
            // A stream that does not reach the saved version, or holds an
            // event that does not decode, is left to the whole log's fold
            // (which refuses such a stream to commands).
            let (stream, version) = opened.stream_of(missed);
            match stream_state::stream_state(store, upcasters, &stream, version).await {
                Ok(RecordState { version: reached, record: Some(record) }) if reached == version => opened.put(missed, record),
                _ => {
                    tracing::warn!(%stream, version, "the log does not hold a record the write model's snapshot saved: it is removed and the whole log folded");
                    let _ = dir.forget(NAME);
                    return Ok(None);
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(taken = by_digest - missing.len(), folded = missing.len(), waited, seconds, "write model's records taken from the read model");
    }
    match crate::snapshot::on_own_thread::on_own_thread("snapshot-finish", move || opened.finish()).await {
        Ok(model) => Ok(Some((model, header.position))),
        Err(error) => {
            tracing::warn!(%error, "the write model's snapshot is removed: the whole log is folded");
            let _ = dir.forget(NAME);
            Ok(None)
        }
    }
}

/// Applies committed events to the write model and drops the reservations of
/// their command, under one lock. An event that cannot be decoded marks its
/// stream unreadable instead of stopping the service.
fn apply_and_release(model: &Mutex<WriteModel>, upcasters: &Upcasters, events: &[EventEnvelope], reservations: Vec<Reservation>) -> Result<(), CommandError> {
    let mut decoded = Vec::with_capacity(events.len());
    let mut unreadable = Vec::new();
    for envelope in events {
        match decode_envelope_payload(envelope, upcasters) {
            Ok(payload) => decoded.push((envelope, payload)),
            Err(error) => {
                tracing::error!(position = envelope.position, stream = %envelope.stream, %error, "cannot decode an event: its stream is refused to commands");
                unreadable.push(envelope.stream.clone());
            }
        }
    }
    let mut model = model.lock().expect("write model lock");
    model.unreadable.extend(unreadable);
    let mut outcome = Ok(());
    for (envelope, payload) in decoded {
        if let Err(e) = model.apply(&envelope.stream, envelope.stream_version, &payload) {
            outcome = Err(e.into());
            break;
        }
        model.note_applied(envelope.position, &envelope.stream);
    }
    for reservation in reservations {
        model.release(reservation);
    }
    outcome
}
