//! The state of one record stream and `evolve`, which applies events without logic.

use crate::event::EventPayload;
use crate::value::{Record, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    /// Number of events in the stream (0 for a new stream).
    pub version: u64,
    /// The live record; `None` before creation and after deletion.
    pub record: Option<Record>,
}

impl RecordState {
    pub fn exists(&self) -> bool {
        self.record.is_some()
    }
}

/// Applies one event of this stream.
pub fn evolve(mut state: RecordState, event: &EventPayload) -> RecordState {
    state.version += 1;
    match event {
        EventPayload::RecordCreated(e) => state.record = Some(e.record.clone()),
        EventPayload::RecordUpdated(e) => {
            if let Some(record) = state.record.as_mut() {
                for change in &e.changes {
                    match &change.new {
                        Value::Null => record.remove(&change.field),
                        value => record.insert(change.field.clone(), value.clone()),
                    };
                }
            }
        }
        EventPayload::RecordDeleted(_) => state.record = None,
        EventPayload::ObjectDefined(_)
        | EventPayload::ObjectAltered(_)
        | EventPayload::ObjectRemoved(_)
        | EventPayload::EventSkipped(_)
        | EventPayload::Process(_) => {}
    }
    state
}
