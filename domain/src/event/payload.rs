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

/// A workflow rule that acted on a write before it was saved
/// (`domain::automation::before_save`): its criteria held, and it set these
/// fields (none when its updates were already in place, or when it only
/// starts time triggers).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RuleApplied {
    pub rule: String,
    pub fields: Vec<String>,
}

/// Schema version 2: `automated` was added (version 1 payloads are upcast
/// with it empty: rules then wrote events of their own).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordCreated {
    pub object: String,
    pub id: String,
    /// The whole record, system fields included (workflow rules' fields too).
    pub record: Record,
    /// The workflow rules that acted on the write, in the order they ran.
    pub automated: Vec<RuleApplied>,
}

/// Schema version 2: `automated` was added, as for [`RecordCreated`].
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordUpdated {
    pub object: String,
    pub id: String,
    pub changes: Vec<FieldChange>,
    /// The workflow rules that acted on the write, in the order they ran.
    pub automated: Vec<RuleApplied>,
}

/// Schema version 2: `cause` was added (version 1 payloads are upcast with `cause: None`).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordDeleted {
    pub object: String,
    pub id: String,
    /// The record as it was, so consumers need no lookup to show what went.
    pub previous: Record,
    /// For a delete that cascaded from another (master-detail), that record's stream.
    pub cause: Option<String>,
}

/// `record.deleted` as written at schema version 1 (kept to read old logs).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct RecordDeletedV1 {
    pub object: String,
    pub id: String,
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

/// An operator gave up on an event a projection had parked (a dead letter):
/// the projection forgets it at this point of the log, on every node and in
/// every rebuild. The stream is `$projections/{projection}`.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct EventSkipped {
    pub projection: String,
    /// The log position of the parked event.
    pub position: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    RecordCreated(RecordCreated),
    RecordUpdated(RecordUpdated),
    RecordDeleted(RecordDeleted),
    ObjectDefined(ObjectDefined),
    ObjectAltered(ObjectDefined),
    ObjectRemoved(ObjectRemoved),
    EventSkipped(EventSkipped),
    /// The server's own processes (workflow runtime, webhooks, jobs): about no object.
    Process(super::process::ProcessEvent),
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
            EventPayload::EventSkipped(_) => "projection.event_skipped",
            EventPayload::Process(e) => e.event_type(),
        }
    }

    /// The payload as JSON (for replay exports and diagnostics).
    pub fn to_json(&self) -> serde_json::Value {
        use crate::value::record_to_json;
        use serde_json::json;
        match self {
            EventPayload::RecordCreated(e) => with_automated(json!({"object": e.object, "id": e.id, "record": record_to_json(&e.record)}), &e.automated),
            EventPayload::RecordUpdated(e) => with_automated(
                json!({"object": e.object, "id": e.id, "changes": e.changes.iter().map(|c| json!({"field": c.field, "oldValue": c.old.to_json(), "newValue": c.new.to_json()})).collect::<Vec<_>>()}),
                &e.automated,
            ),
            EventPayload::RecordDeleted(e) => json!({"object": e.object, "id": e.id, "previous": record_to_json(&e.previous), "cause": e.cause}),
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => json!({
                "name": e.name,
                "namespace": e.namespace,
                "definition": serde_json::from_str::<serde_json::Value>(&e.definition).unwrap_or(serde_json::Value::Null),
            }),
            EventPayload::ObjectRemoved(e) => json!({"name": e.name}),
            EventPayload::EventSkipped(e) => json!({"projection": e.projection, "position": e.position, "reason": e.reason}),
            EventPayload::Process(e) => e.to_json(),
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
            // About no object: consumers of records and definitions pass it by.
            EventPayload::EventSkipped(_) | EventPayload::Process(_) => "",
        }
    }
}

/// The rules that acted on a write, as JSON (`[{"rule", "fields"}]`).
pub fn automated_to_json(automated: &[RuleApplied]) -> serde_json::Value {
    automated.iter().map(|a| serde_json::json!({"rule": a.rule, "fields": a.fields})).collect()
}

/// Adds `automated` to a record event's JSON when rules acted on it.
fn with_automated(mut json: serde_json::Value, automated: &[RuleApplied]) -> serde_json::Value {
    if !automated.is_empty() {
        json["automated"] = automated_to_json(automated);
    }
    json
}
