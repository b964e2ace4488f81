//! A record as it was right after one of its events (what a rule's criteria
//! and a webhook's body are computed from): the write model's copy when it is
//! still at that version, else a fold of the record's stream up to it.

use domain::event::{registry, EventEnvelope, RecordUpdated};
use domain::record::{evolve, RecordState};
use domain::value::{Record, Value};

use crate::service::CommandService;
use crate::CommandError;

/// The record after `event` (a record event of `object/id`), `None` if it was deleted by then.
pub(crate) async fn record_after(commands: &CommandService, object: &str, id: &str, event: &EventEnvelope) -> Result<Option<Record>, CommandError> {
    let state = commands.record_state(object, id);
    if state.version == event.stream_version {
        return Ok(state.record);
    }
    let events = commands.store().read_stream_range(&event.stream, 0, event.stream_version as usize).await?;
    let mut state = RecordState::default();
    for stored in &events {
        let payload = domain::event::codec::decode_envelope_payload(stored, registry())?;
        state = evolve(state, &payload);
    }
    Ok(state.record)
}

/// The record before an update, from the record after it and the update's changes.
pub(crate) fn before_update(after: &Record, update: &RecordUpdated) -> Record {
    let mut before = after.clone();
    for change in &update.changes {
        match &change.old {
            Value::Null => {
                before.remove(&change.field);
            }
            old => {
                before.insert(change.field.clone(), old.clone());
            }
        }
    }
    before
}
