//! Event payloads: one struct per event type, each with its own schema version.

use bincode::{Decode, Encode};

use crate::value::{Record, Value};

/// One changed field of an update, with the value before and after.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordCreated {
    pub object: String,
    pub id: String,
    /// The whole record, system fields included.
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordUpdated {
    pub object: String,
    pub id: String,
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordDeleted {
    pub object: String,
    pub id: String,
    /// The record as it was, so consumers need no lookup to show what went.
    pub previous: Record,
}

/// An object was defined or altered: the definition JSON as given.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ObjectDefined {
    pub name: String,
    pub namespace: Option<String>,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ObjectRemoved {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    RecordCreated(RecordCreated),
    RecordUpdated(RecordUpdated),
    RecordDeleted(RecordDeleted),
    ObjectDefined(ObjectDefined),
    ObjectAltered(ObjectDefined),
    ObjectRemoved(ObjectRemoved),
}

impl EventPayload {
    /// The stable event type name stored with the event.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventPayload::RecordCreated(_) => "record.created",
            EventPayload::RecordUpdated(_) => "record.updated",
            EventPayload::RecordDeleted(_) => "record.deleted",
            EventPayload::ObjectDefined(_) => "object.defined",
            EventPayload::ObjectAltered(_) => "object.altered",
            EventPayload::ObjectRemoved(_) => "object.removed",
        }
    }

    /// The object the event is about.
    pub fn object(&self) -> &str {
        match self {
            EventPayload::RecordCreated(e) => &e.object,
            EventPayload::RecordUpdated(e) => &e.object,
            EventPayload::RecordDeleted(e) => &e.object,
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => &e.name,
            EventPayload::ObjectRemoved(e) => &e.name,
        }
    }
}
