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

use domain::texts::Texts;

use crate::analytics::dictionary::Dictionary;
use crate::InProcess;

mod snapshot;

/// One audited change as a query shows it: what queries filter on. The rest
/// (the event's id, stream version and causes, and the changes themselves)
/// is the event's, read from the log when the entry is shown
/// ([`AuditEntry::to_json`]). The model keeps entries smaller still (an
/// [`Entry`]) and makes this for the entries a page shows.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub position: u64,
    /// `data.create`, `data.update`, `data.delete`, or `system.config_changed` for metadata.
    pub event_type: &'static str,
    pub occurred_at: i64,
    pub actor: String,
    pub tenant: String,
    /// The object (or `object` for metadata changes) and the record id (or the object name).
    pub target_type: String,
    pub target_id: String,
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

/// What an entry's kind is kept as (its code is its place here).
pub(crate) const KINDS: [&str; 4] = ["data.create", "data.update", "data.delete", "system.config_changed"];

/// What an event is audited as: its kind's code in [`KINDS`], the target's
/// type (its object, or `object` or `projection` for configuration) and id;
/// `None` for what is not audited. The processes' own bookkeeping (progress,
/// deliveries, job runs) is shown by the automation routes; what they change
/// is audited as records. Both audit models (this one, and
/// [`crate::pg_audit`] on PostgreSQL) keep what this says.
pub(crate) fn audited(payload: &EventPayload) -> Option<(u8, &str, &str)> {
    Some(match payload {
        EventPayload::RecordCreated(e) => (0, e.object.as_str(), e.id.as_str()),
        EventPayload::RecordUpdated(e) => (1, e.object.as_str(), e.id.as_str()),
        EventPayload::RecordDeleted(e) => (2, e.object.as_str(), e.id.as_str()),
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => (3, "object", e.name.as_str()),
        EventPayload::ObjectRemoved(e) => (3, "object", e.name.as_str()),
        EventPayload::EventSkipped(e) => (3, "projection", e.projection.as_str()),
        EventPayload::Process(_) => return None,
    })
}

/// One entry as the model keeps it: numbers only (40 bytes). Names are codes
/// in the model's names, the target a number in its targets, and each entry
/// links to the one before it of the same target and of the same object, so
/// a record's or an object's entries are walked newest first without a list
/// of them.
#[derive(Debug, Clone, Copy)]
struct Entry {
    position: u64,
    occurred_at: i64,
    actor: u32,
    tenant: u32,
    target: u32,
    /// The entry before this one of the same target ([`NONE`]: none).
    older_of_target: u32,
    /// The entry before this one of the same object ([`NONE`]: none).
    older_of_object: u32,
    kind: u8,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 40, "an audit entry is 40 bytes");

/// No entry: the end of a chain of entries.
const NONE: u32 = u32::MAX;

#[derive(Default)]
pub struct AuditModel {
    entries: Vec<Entry>,
    /// Each target once: its id, in the scope of its object's name code.
    targets: Texts,
    /// By target: its newest entry.
    newest_of_target: Vec<u32>,
    /// Each actor, tenant and object name once.
    names: Dictionary,
    /// By an object name's code: its newest entry ([`NONE`]: none).
    newest_of_object: Vec<u32>,
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
        let Some((kind, object, id)) = audited(payload) else { return };
        let object = self.names.intern(object);
        let target = self.targets.intern(object, id);
        if target as usize == self.newest_of_target.len() {
            self.newest_of_target.push(NONE);
        }
        let (actor, tenant) = (self.names.intern(&envelope.actor), self.names.intern(&envelope.tenant));
        self.insert(envelope.position, kind, envelope.occurred_at, actor, tenant, target);
    }

    /// Adds an entry after every other, newest of its target and object.
    fn insert(&mut self, position: u64, kind: u8, occurred_at: i64, actor: u32, tenant: u32, target: u32) {
        let index = u32::try_from(self.entries.len()).ok().filter(|at| *at != NONE).expect("fewer than 2^32 - 1 audit entries");
        let object = self.targets.get(target).0 as usize;
        if self.newest_of_object.len() <= object {
            self.newest_of_object.resize(object + 1, NONE);
        }
        let entry = Entry {
            position,
            occurred_at,
            actor,
            tenant,
            target,
            older_of_target: self.newest_of_target[target as usize],
            older_of_object: self.newest_of_object[object],
            kind,
        };
        self.newest_of_target[target as usize] = index;
        self.newest_of_object[object] = index;
        self.entries.push(entry);
    }

    /// The entries from `newest` back along one of their links.
    fn chain(&self, newest: u32, older: fn(&Entry) -> u32) -> impl Iterator<Item = &Entry> {
        std::iter::successors((newest != NONE).then(|| &self.entries[newest as usize]), move |e| {
            let next = older(e);
            (next != NONE).then(|| &self.entries[next as usize])
        })
    }

    /// An entry as a query shows it.
    fn view(&self, e: &Entry) -> AuditEntry {
        let (object, id) = self.targets.get(e.target);
        AuditEntry {
            position: e.position,
            event_type: KINDS[e.kind as usize],
            occurred_at: e.occurred_at,
            actor: self.names.text(e.actor).to_string(),
            tenant: self.names.text(e.tenant).to_string(),
            target_type: self.names.text(object).to_string(),
            target_id: id.to_string(),
        }
    }

    /// Matching entries, newest first, and how many match in all.
    pub fn query(&self, query: &AuditQuery) -> (Vec<AuditEntry>, usize) {
        /// The code a filter names: `Ok(None)` for no filter, `Err` for one nothing matches.
        fn code(filter: &Option<String>, find: impl Fn(&str) -> Option<u32>) -> Result<Option<u32>, ()> {
            filter.as_deref().map(|name| find(name).ok_or(())).transpose()
        }
        let codes = (
            code(&query.object, |o| self.names.code_of(o)),
            code(&query.actor, |a| self.names.code_of(a)),
            code(&query.event_type, |t| KINDS.iter().position(|k| *k == t).map(|k| k as u32)),
        );
        let (Ok(object), Ok(actor), Ok(kind)) = codes else {
            return (Vec::new(), 0);
        };
        let candidates: Box<dyn Iterator<Item = &Entry>> = match (object, &query.record_id) {
            (Some(object), Some(id)) => match self.targets.find(object, id) {
                Some(target) => Box::new(self.chain(self.newest_of_target[target as usize], |e| e.older_of_target)),
                None => return (Vec::new(), 0),
            },
            (Some(object), None) => Box::new(self.chain(self.newest_of_object.get(object as usize).copied().unwrap_or(NONE), |e| e.older_of_object)),
            (None, _) => Box::new(self.entries.iter().rev()),
        };
        let matching = candidates
            .filter(|e| query.record_id.as_ref().is_none_or(|id| self.targets.get(e.target).1 == id))
            .filter(|e| actor.is_none_or(|a| e.actor == a))
            .filter(|e| kind.is_none_or(|k| u32::from(e.kind) == k))
            .filter(|e| query.from.is_none_or(|from| e.occurred_at >= from))
            .filter(|e| query.to.is_none_or(|to| e.occurred_at <= to));
        let (mut page, mut total) = (Vec::new(), 0);
        for entry in matching {
            if total >= query.offset && page.len() < query.limit {
                page.push(self.view(entry));
            }
            total += 1;
        }
        (page, total)
    }
}

/// A new audit projection and the shared model its readers query.
pub fn audit_projection() -> (InProcess<AuditModel>, Arc<RwLock<AuditModel>>) {
    InProcess::new("audit")
}

#[cfg(test)]
mod tests;
