//! The audit read model: one entry per change, in the spec's audit shape
//! (`eventType`, actor, target, `changes: [{field, oldValue, newValue}]`,
//! timestamp), plus the log position and event id. Queried by object, record,
//! actor, event type and time range, newest first. An entry holds what those
//! queries filter on; what it shows beyond that is read from the log by the
//! caller, by position (`EventStore::read_positions`), and given to
//! [`AuditEntry::to_json`].

use std::sync::{Arc, RwLock};

use domain::event::codec::decode_payload;
use domain::event::{EventEnvelope, EventPayload};
use domain::value::{Record, Value};
use domain::Timestamp;
use serde_json::{json, Value as Json};

use crate::hashing::Map;
use crate::names::Names;
use crate::InProcess;

mod snapshot;

/// One audited change: what queries filter on. The rest (the event's id,
/// stream version and causes, and the changes themselves) is the event's,
/// read from the log when the entry is shown ([`AuditEntry::to_json`]): a
/// model that held the payload's bytes and those fields beside each entry
/// took about three times the memory.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub position: u64,
    /// `data.create`, `data.update`, `data.delete`, or `system.config_changed` for metadata.
    pub event_type: &'static str,
    pub occurred_at: i64,
    pub actor: Arc<str>,
    pub tenant: Arc<str>,
    /// The object (or `object` for metadata changes) and the record id (or the object name).
    pub target_type: Arc<str>,
    pub target_id: Arc<str>,
}

impl AuditEntry {
    /// The event's payload, decoded (upcast from older schema versions).
    fn decoded(&self, event: &EventEnvelope) -> Option<EventPayload> {
        match decode_payload(&event.event_type, event.schema_version, &event.payload, domain::event::registry()) {
            Ok(payload) => Some(payload),
            Err(error) => {
                // It decoded when it was applied; this cannot happen short of a bug.
                tracing::error!(position = self.position, %error, "cannot decode an audited event");
                None
            }
        }
    }

    /// The spec's audit event as JSON, from the entry and its event as the
    /// log holds it (`None`: the log did not give it, which cannot happen
    /// short of a bug; the entry is shown without what the event holds).
    pub fn to_json(&self, event: Option<&EventEnvelope>) -> Json {
        let event = event.filter(|e| e.position == self.position);
        if event.is_none() {
            tracing::error!(position = self.position, "the log did not give an audited event");
        }
        let id: Option<String> = event.map(|e| domain::hex::encode(&e.event_id));
        let verb = match self.event_type {
            "data.create" => "created",
            "data.update" => "updated",
            "data.delete" => "deleted",
            _ => "changed",
        };
        let payload = event.and_then(|e| self.decoded(e));
        let automated = match &payload {
            Some(EventPayload::RecordCreated(e)) => e.automated.clone(),
            Some(EventPayload::RecordUpdated(e)) => e.automated.clone(),
            _ => Vec::new(),
        };
        let cause = match &payload {
            Some(EventPayload::RecordDeleted(e)) => e.cause.clone(),
            _ => None,
        };
        // A change a workflow rule made within the write names the rule (the last to set it).
        let set_by = |field: &str| automated.iter().rev().find(|a| a.fields.iter().any(|f| f == field)).map(|a| a.rule.as_str());
        let changes: Vec<Json> = payload
            .map(changes_of)
            .unwrap_or_default()
            .into_iter()
            .map(|(f, old, new)| {
                let mut change = json!({"field": f, "oldValue": old.to_json(), "newValue": new.to_json()});
                if let Some(rule) = set_by(&f) {
                    change["automatedBy"] = json!(rule);
                }
                change
            })
            .collect();
        let mut entry = json!({
            "id": id,
            "eventType": self.event_type,
            "severity": "info",
            "timestamp": Timestamp::from_micros(self.occurred_at).to_rfc3339(),
            "actor": {"type": if &*self.actor == "system" { "system" } else { "user" }, "id": &*self.actor},
            "target": {"type": &*self.target_type, "id": &*self.target_id},
            "description": format!("{} {} {verb}", self.target_type, self.target_id),
            "changes": changes,
            "result": "success",
            "tenantId": &*self.tenant,
            "metadata": {
                "position": self.position, "eventId": id, "version": event.map(|e| e.stream_version), "cause": cause,
                "causedBy": event.and_then(|e| e.causation_id).map(|c| domain::hex::encode(&c)),
            },
        });
        if !automated.is_empty() {
            entry["metadata"]["automated"] = domain::event::automated_to_json(&automated);
        }
        entry
    }
}

/// Which entries a query wants.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub object: Option<String>,
    pub record_id: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    /// Inclusive bounds on the entry's time, in microseconds.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Default)]
pub struct AuditModel {
    entries: Vec<AuditEntry>,
    /// target type -> target id -> entry indexes.
    by_target: Map<Arc<str>, Map<Arc<str>, Vec<usize>>>,
    by_object: Map<Arc<str>, Vec<usize>>,
    /// One copy of each actor, tenant and object name.
    names: Names,
    checkpoint: u64,
}

/// The changes an event made, `(field, old value, new value)`.
fn changes_of(payload: EventPayload) -> Vec<(String, Value, Value)> {
    fn all(record: Record, created: bool) -> Vec<(String, Value, Value)> {
        record.into_iter().map(|(f, v)| if created { (f.into(), Value::Null, v) } else { (f.into(), v, Value::Null) }).collect()
    }
    match payload {
        EventPayload::RecordCreated(e) => all(e.record, true),
        EventPayload::RecordUpdated(e) => e.changes.into_iter().map(|c| (c.field, c.old, c.new)).collect(),
        EventPayload::RecordDeleted(e) => all(e.previous, false),
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => vec![("definition".into(), Value::Null, Value::Text(e.definition))],
        EventPayload::ObjectRemoved(_) => Vec::new(),
        EventPayload::EventSkipped(e) => {
            vec![("position".into(), Value::Null, Value::Int(e.position as i64)), ("reason".into(), Value::Null, Value::Text(e.reason))]
        }
        EventPayload::Process(_) => Vec::new(),
    }
}

impl AuditModel {
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn advance(&mut self, position: u64) {
        self.checkpoint = self.checkpoint.max(position);
    }

    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.checkpoint = self.checkpoint.max(envelope.position);
        // The processes' own bookkeeping (progress, deliveries, job runs) is
        // shown by the automation routes; what they change is audited as records.
        if matches!(payload, EventPayload::Process(_)) {
            return;
        }
        let (event_type, target_type, target_id) = match payload {
            EventPayload::RecordCreated(e) => ("data.create", self.names.get(&e.object), &e.id),
            EventPayload::RecordUpdated(e) => ("data.update", self.names.get(&e.object), &e.id),
            EventPayload::RecordDeleted(e) => ("data.delete", self.names.get(&e.object), &e.id),
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => ("system.config_changed", self.names.get("object"), &e.name),
            EventPayload::ObjectRemoved(e) => ("system.config_changed", self.names.get("object"), &e.name),
            EventPayload::EventSkipped(e) => ("system.config_changed", self.names.get("projection"), &e.projection),
            EventPayload::Process(_) => return,
        };
        let target_id = self.shared_target(&target_type, target_id);
        let (actor, tenant) = (self.names.get(&envelope.actor), self.names.get(&envelope.tenant));
        self.insert(AuditEntry { position: envelope.position, event_type, occurred_at: envelope.occurred_at, actor, tenant, target_type, target_id });
    }

    /// The copy of a target's id its earlier entries share (a new one for its first).
    fn shared_target(&mut self, target_type: &Arc<str>, id: &str) -> Arc<str> {
        match self.by_target.get(target_type).and_then(|ids| ids.get_key_value(id)) {
            Some((known, _)) => known.clone(),
            None => Arc::from(id),
        }
    }

    /// Adds an entry after every other, under its target and object.
    fn insert(&mut self, entry: AuditEntry) {
        let index = self.entries.len();
        self.by_target.entry(entry.target_type.clone()).or_default().entry(entry.target_id.clone()).or_default().push(index);
        self.by_object.entry(entry.target_type.clone()).or_default().push(index);
        self.entries.push(entry);
    }

    /// Matching entries, newest first, and how many match in all.
    pub fn query(&self, query: &AuditQuery) -> (Vec<&AuditEntry>, usize) {
        let candidates: Box<dyn DoubleEndedIterator<Item = &usize>> = match (&query.object, &query.record_id) {
            (Some(object), Some(id)) => Box::new(self.by_target.get(object.as_str()).and_then(|ids| ids.get(id.as_str())).into_iter().flatten()),
            (Some(object), None) => Box::new(self.by_object.get(object.as_str()).into_iter().flatten()),
            _ => Box::new([].iter()),
        };
        let all: Box<dyn DoubleEndedIterator<Item = &AuditEntry>> =
            if query.object.is_some() { Box::new(candidates.map(|i| &self.entries[*i])) } else { Box::new(self.entries.iter()) };
        let matching: Vec<&AuditEntry> = all
            .rev()
            .filter(|e| query.record_id.as_ref().is_none_or(|id| *e.target_id == **id))
            .filter(|e| query.actor.as_ref().is_none_or(|a| *e.actor == **a))
            .filter(|e| query.event_type.as_ref().is_none_or(|t| e.event_type == t))
            .filter(|e| query.from.is_none_or(|from| e.occurred_at >= from))
            .filter(|e| query.to.is_none_or(|to| e.occurred_at <= to))
            .collect();
        let total = matching.len();
        (matching.into_iter().skip(query.offset).take(query.limit).collect(), total)
    }
}

/// A new audit projection and the shared model its readers query.
pub fn audit_projection() -> (InProcess<AuditModel>, Arc<RwLock<AuditModel>>) {
    InProcess::new("audit")
}
