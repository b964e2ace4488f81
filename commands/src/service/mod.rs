//! Command handling: validate against metadata and current state, stamp system
//! fields, append with expected stream versions and the idempotency key.
//!
//! The flow of [`CommandService::execute`]: a repeated idempotency key returns
//! the first result; otherwise, under the write-model lock, `decide` runs and
//! the unique values of the result are reserved; the append runs without the
//! lock (so concurrent commands share one fsync); the committed events are then
//! applied to the write model. A version conflict on a command without an
//! explicit expected version is retried against the fresh state.

mod command;
mod plan;
mod write_model;

use std::sync::{Arc, Mutex};

use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, StreamId, Upcasters};
use domain::metadata::Catalog;
use domain::record::{evolve, RecordState};
use domain::value::Value;

pub use self::command::{Command, CommandMeta, Outcome};
use self::write_model::WriteModel;
use crate::error::{CommandError, StoreError};
use crate::store::EventStore;

/// How often a command without an explicit expected version is re-decided after a conflict.
const MAX_ATTEMPTS: usize = 5;

/// Events read per batch when folding the log at start.
const CATCH_UP_BATCH: usize = 10_000;

pub struct CommandService {
    store: Arc<dyn EventStore>,
    model: Mutex<WriteModel>,
    upcasters: Upcasters,
}

impl CommandService {
    /// Folds the whole log into the write model, then serves commands.
    pub async fn start(store: Arc<dyn EventStore>) -> Result<CommandService, CommandError> {
        let service = CommandService {
            store,
            model: Mutex::new(WriteModel::default()),
            upcasters: Upcasters::default(),
        };
        let mut after = 0;
        loop {
            let batch = service.store.read_all(after, CATCH_UP_BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            service.apply(&batch)?;
        }
        Ok(service)
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// A snapshot of the current metadata.
    pub fn catalog(&self) -> Catalog {
        self.model.lock().expect("write model lock").catalog.clone()
    }

    /// The current state of a record stream, as the write side knows it.
    pub fn record_state(&self, object: &str, id: &str) -> RecordState {
        self.model
            .lock()
            .expect("write model lock")
            .record(object, id)
    }

    /// The id of a live record whose `field` equals `value`.
    pub fn find_by_field(&self, object: &str, field: &str, value: &Value) -> Option<String> {
        self.model
            .lock()
            .expect("write model lock")
            .find_by_field(object, field, value)
    }

    fn apply(&self, events: &[EventEnvelope]) -> Result<(), CommandError> {
        let mut model = self.model.lock().expect("write model lock");
        for envelope in events {
            let payload = decode_envelope_payload(envelope, &self.upcasters)?;
            model.apply(&envelope.stream, envelope.stream_version, &payload)?;
        }
        Ok(())
    }

    /// Executes one command.
    pub async fn execute(
        &self,
        command: Command,
        meta: CommandMeta,
    ) -> Result<Outcome, CommandError> {
        if let Some(key) = &meta.idempotency_key {
            if let Some(events) = self.store.read_idempotent(key).await? {
                return self.replay_outcome(events).await;
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let planned = {
                let mut model = self.model.lock().expect("write model lock");
                plan::plan(&mut model, &command, &meta)?
            };
            let Some(request) = planned.request else {
                return Ok(planned.outcome);
            };
            let explicit_version = command.expected_version().is_some();
            let result = self.store.append(request).await;
            let committed = match result {
                Ok(committed) => committed,
                Err(error) => {
                    self.model
                        .lock()
                        .expect("write model lock")
                        .release(planned.reservation);
                    match error {
                        StoreError::Conflict { .. }
                            if !explicit_version && attempt < MAX_ATTEMPTS =>
                        {
                            continue
                        }
                        StoreError::KeyUsed { key } => {
                            let events =
                                self.store.read_idempotent(&key).await?.unwrap_or_default();
                            return self.replay_outcome(events).await;
                        }
                        other => return Err(other.into()),
                    }
                }
            };
            let mut model = self.model.lock().expect("write model lock");
            model.release(planned.reservation);
            drop(model);
            self.apply(&committed.events)?;
            let mut outcome = planned.outcome;
            let state = self.record_state(&outcome.object, &outcome.id);
            outcome.position = committed.last_position();
            outcome.version = committed
                .events
                .iter()
                .rev()
                .find(|e| e.stream == outcome.stream)
                .map(|e| e.stream_version)
                .unwrap_or(state.version);
            outcome.record = state.record;
            outcome.events = committed.events;
            return Ok(outcome);
        }
    }

    /// The result of a command that already ran under the same idempotency key:
    /// the record as of its last event.
    async fn replay_outcome(&self, events: Vec<EventEnvelope>) -> Result<Outcome, CommandError> {
        let Some(first) = events.first() else {
            return Err(CommandError::Store(StoreError::Corrupt(
                "an idempotency key without events".into(),
            )));
        };
        let stream = StreamId(first.stream.clone());
        let last_version = events
            .iter()
            .filter(|e| e.stream == first.stream)
            .map(|e| e.stream_version)
            .max()
            .unwrap_or(0);
        let (object, id) = match stream.record_parts() {
            Some((object, id)) => (object.to_string(), id.to_string()),
            None => (
                first.stream.trim_start_matches("$meta/").to_string(),
                String::new(),
            ),
        };
        let mut state = RecordState::default();
        if !id.is_empty() {
            for envelope in self.store.read_stream(&first.stream, 1).await? {
                if envelope.stream_version > last_version {
                    break;
                }
                state = evolve(state, &decode_envelope_payload(&envelope, &self.upcasters)?);
            }
        }
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
