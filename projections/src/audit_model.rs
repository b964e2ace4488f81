//! The audit read model: one entry per change, in the spec's audit shape
//! (`eventType`, actor, target, `changes: [{field, oldValue, newValue}]`,
//! timestamp), plus the log position and event id. Queried by object, record,
//! actor, event type and time range, newest first.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use domain::event::{EventEnvelope, EventPayload};
use domain::value::{Record, Value};
use domain::Timestamp;
use serde_json::{json, Value as Json};

use crate::InProcess;

/// One audited change.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub position: u64,
    pub event_id: [u8; 16],
    /// `data.create`, `data.update`, `data.delete`, or `system.config_changed` for metadata.
    pub event_type: &'static str,
    pub occurred_at: i64,
    pub actor: String,
    pub tenant: String,
    /// The object (or `object` for metadata changes) and the record id (or the object name).
    pub target_type: String,
    pub target_id: String,
    pub stream_version: u64,
    pub changes: Vec<(String, Value, Value)>,
    /// For a cascaded delete: the stream of the delete that caused it.
    pub cause: Option<String>,
}

impl AuditEntry {
    /// The spec's audit event as JSON.
    pub fn to_json(&self) -> Json {
        let id: String = self.event_id.iter().map(|b| format!("{b:02x}")).collect();
        let verb = match self.event_type {
            "data.create" => "created",
            "data.update" => "updated",
            "data.delete" => "deleted",
            _ => "changed",
        };
        let changes: Vec<Json> = self.changes.iter().map(|(f, old, new)| json!({"field": f, "oldValue": old.to_json(), "newValue": new.to_json()})).collect();
        json!({
            "id": id,
            "eventType": self.event_type,
            "severity": "info",
            "timestamp": Timestamp::from_micros(self.occurred_at).to_rfc3339(),
            "actor": {"type": if self.actor == "system" { "system" } else { "user" }, "id": self.actor},
            "target": {"type": self.target_type, "id": self.target_id},
            "description": format!("{} {} {verb}", self.target_type, self.target_id),
            "changes": changes,
            "result": "success",
            "tenantId": self.tenant,
            "metadata": {"position": self.position, "eventId": id, "version": self.stream_version, "cause": self.cause},
        })
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
    /// `(target type, target id)` -> entry indexes.
    by_target: HashMap<(String, String), Vec<usize>>,
    by_object: HashMap<String, Vec<usize>>,
    checkpoint: u64,
}

fn changes_of(record: &Record, created: bool) -> Vec<(String, Value, Value)> {
    record.iter().map(|(f, v)| if created { (f.clone(), Value::Null, v.clone()) } else { (f.clone(), v.clone(), Value::Null) }).collect()
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
        let cause = match payload {
            EventPayload::RecordDeleted(e) => e.cause.clone(),
            _ => None,
        };
        let (event_type, target_type, target_id, changes) = match payload {
            EventPayload::RecordCreated(e) => ("data.create", e.object.clone(), e.id.clone(), changes_of(&e.record, true)),
            EventPayload::RecordUpdated(e) => {
                ("data.update", e.object.clone(), e.id.clone(), e.changes.iter().map(|c| (c.field.clone(), c.old.clone(), c.new.clone())).collect())
            }
            EventPayload::RecordDeleted(e) => ("data.delete", e.object.clone(), e.id.clone(), changes_of(&e.previous, false)),
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
                ("system.config_changed", "object".to_string(), e.name.clone(), vec![("definition".into(), Value::Null, Value::Text(e.definition.clone()))])
            }
            EventPayload::ObjectRemoved(e) => ("system.config_changed", "object".to_string(), e.name.clone(), Vec::new()),
        };
        let index = self.entries.len();
        self.by_target.entry((target_type.clone(), target_id.clone())).or_default().push(index);
        self.by_object.entry(target_type.clone()).or_default().push(index);
        self.entries.push(AuditEntry {
            position: envelope.position,
            event_id: envelope.event_id,
            event_type,
            occurred_at: envelope.occurred_at,
            actor: envelope.actor.clone(),
            tenant: envelope.tenant.clone(),
            target_type,
            target_id,
            stream_version: envelope.stream_version,
            changes,
            cause,
        });
    }

    /// Matching entries, newest first, and how many match in all.
    pub fn query(&self, query: &AuditQuery) -> (Vec<&AuditEntry>, usize) {
        let candidates: Box<dyn DoubleEndedIterator<Item = &usize>> = match (&query.object, &query.record_id) {
            (Some(object), Some(id)) => Box::new(self.by_target.get(&(object.clone(), id.clone())).into_iter().flatten()),
            (Some(object), None) => Box::new(self.by_object.get(object).into_iter().flatten()),
            _ => Box::new([].iter()),
        };
        let all: Box<dyn DoubleEndedIterator<Item = &AuditEntry>> =
            if query.object.is_some() { Box::new(candidates.map(|i| &self.entries[*i])) } else { Box::new(self.entries.iter()) };
        let matching: Vec<&AuditEntry> = all
            .rev()
            .filter(|e| query.record_id.as_ref().is_none_or(|id| &e.target_id == id))
            .filter(|e| query.actor.as_ref().is_none_or(|a| &e.actor == a))
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
