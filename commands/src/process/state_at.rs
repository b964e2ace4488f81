//! A record as it was right after one of its events (what a rule's criteria
//! and a webhook's body are computed from): the write model's copy when it is
//! still at that version, else a fold of the record's stream up to it.

use domain::event::{registry, EventEnvelope, RecordUpdated};
use domain::value::{Record, Value};

use crate::service::stream_state::stream_state;
use crate::service::CommandService;
use crate::CommandError;

/// The record after `event` (a record event of `object/id`), `None` if it was deleted by then.
pub(crate) async fn record_after(commands: &CommandService, object: &str, id: &str, event: &EventEnvelope) -> Result<Option<Record>, CommandError> {
    let state = commands.record_state(object, id);
    if state.version == event.stream_version {
        return Ok(state.record);
    }
    Ok(stream_state(commands.store(), registry(), &event.stream, event.stream_version).await?.record)
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
