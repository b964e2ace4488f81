//! The write model: what commands must know to decide, folded from the log.
//!
//! The catalog, every record stream's state, unique-value indexes, a reverse
//! index of references, and autonumber counters. It answers `domain`'s
//! [`Lookups`]. Unique values of appends in flight are held as reservations
//! so two concurrent writes cannot both claim one value.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use domain::event::codec::decode_envelope_payload;
use domain::event::{EventPayload, ProcessEvent, Upcasters};
use domain::metadata::{evolve_catalog, Catalog, DeleteBehavior, ObjectDef, RuleKind};
use domain::record::{evolve, Lookups, RecordState, Referrer};
use domain::value::{Record, Value};
use domain::DomainError;

use crate::store::{StreamAppend, UniqueChanges, UniqueClaim};

pub(crate) mod snapshot;

/// The store's key of a unique value: a digest of the object, the fields,
/// their case rule and the values' key (bounded in length whatever the values).
fn claim_key(set: &UniqueSet, value_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [set.object.as_str(), &set.fields.join("\u{1f}"), if set.case_sensitive { "cs" } else { "ci" }, value_key] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    domain::hex::encode(&hash.finalize())
}

/// A set of fields whose combined values are unique within an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UniqueSet {
    object: String,
    fields: Vec<String>,
    case_sensitive: bool,
}

/// A record stream as the write model keeps it: its version and live record.
/// The record is shared: with the in-process read model once the two hold
/// equal content (see [`super::sharing`]), so a record is in memory once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Kept {
    pub version: u64,
    pub record: Option<Arc<Record>>,
}

/// Record streams applied and not yet offered for sharing, at most this many
/// (the oldest go first: a source that stopped moving costs nothing more).
const PENDING_MAX: usize = 100_000;

/// One object's record streams, by id: in id order, so a snapshot saves
/// them in the order a start's take walks the read model's rows, and a
/// start builds it from the snapshot's (sorted) entries in one pass into
/// full nodes, about half the memory of a hash table of the same entries.
type Streams = BTreeMap<String, Kept>;

/// A record that references another: `(object, id, field)`.
type ReferringField = (String, String, String);

#[derive(Default)]
pub(crate) struct WriteModel {
    pub catalog: Catalog,
    /// Versions of metadata streams (`$meta/{object}`).
    pub meta_versions: HashMap<String, u64>,
    /// Record streams by object, then id.
    records: HashMap<String, Streams>,
    /// Record streams applied by this node's commands, with their log
    /// positions, for [`super::sharing`] (`None` while nothing shares).
    pub(crate) pending: Option<std::collections::VecDeque<(u64, String)>>,
    /// Creates per object: the autonumber sequence.
    created: HashMap<String, u64>,
    /// The next autonumber to give per object, once one has been given: it
    /// only moves up, so creates decided before the first commits (in flight
    /// at once) never share a number, and a failed one leaves a gap.
    numbers: HashMap<String, u64>,
    /// Unique sets per object, derived from metadata.
    unique_sets: HashMap<String, Vec<UniqueSet>>,
    /// Committed unique values: set -> value key -> record id.
    unique: HashMap<UniqueSet, HashMap<String, String>>,
    /// In-flight unique values: set -> value key -> record id.
    reserved: HashMap<UniqueSet, HashMap<String, String>>,
    /// `(target object, target id)` -> records referencing it.
    referrers: HashMap<(String, String), HashSet<ReferringField>>,
    /// Streams with an event this server could not decode: their state is
    /// unknown, so commands on them are refused (the rest of the log serves).
    pub unreadable: HashSet<String>,
    /// Records (their streams) pending approval with `lockRecord`: the process's name.
    pub locked: HashMap<String, String>,
    /// Versions of the `$approvals/{object}/{id}` streams applied.
    approval_versions: HashMap<String, u64>,
    /// Automation definitions stored through the metadata API: (kind, name) -> JSON (None: removed).
    pub automation: std::collections::BTreeMap<(String, String), Option<String>>,
    /// Moves when `automation` changes.
    pub automation_generation: u64,
    automation_versions: HashMap<String, u64>,
}

/// A reservation of unique values, released when the append is done.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    entries: Vec<(UniqueSet, String)>,
}

fn value_key(values: &[Value], case_sensitive: bool) -> String {
    let mut key = String::new();
    for value in values {
        let text = match value {
            Value::Text(s) if !case_sensitive => s.to_lowercase(),
            Value::Text(s) => s.clone(),
            other => other.to_json().to_string(),
        };
        key.push_str(&text);
        key.push('\u{1f}');
    }
    key
}

fn sets_of(object: &ObjectDef) -> Vec<UniqueSet> {
    let mut sets: Vec<UniqueSet> = object
        .unique_sets()
        .into_iter()
        .map(|fields| {
            let case_sensitive = fields.iter().all(|f| object.field(f).and_then(|d| d.case_sensitive).unwrap_or(true));
            UniqueSet { object: object.name.clone(), fields, case_sensitive }
        })
        .collect();
    for rule in &object.validations {
        if let RuleKind::Unique { fields, case_sensitive } = &rule.kind {
            let set = UniqueSet { object: object.name.clone(), fields: fields.clone(), case_sensitive: *case_sensitive };
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
    }
    // Autonumbers are unique by construction on one node; across writer
    // nodes sharing a store, their values are claimed like unique values, so
    // two nodes numbering at once cannot both commit one number.
    for field in object.fields.iter().filter(|f| f.field_type == domain::metadata::FieldType::Autonumber) {
        let set = UniqueSet { object: object.name.clone(), fields: vec![field.name.clone()], case_sensitive: true };
        if !sets.contains(&set) {
            sets.push(set);
        }
    }
    sets
}

impl WriteModel {
    pub fn version(&self, object: &str, id: &str) -> u64 {
        self.records.get(object).and_then(|m| m.get(id)).map_or(0, |s| s.version)
    }

    /// The live records of an object.
    pub fn live_records<'a>(&'a self, object: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.get(object).into_iter().flat_map(|records| records.values()).filter_map(|kept| kept.record.as_deref())
    }

    pub fn record(&self, object: &str, id: &str) -> RecordState {
        self.records
            .get(object)
            .and_then(|m| m.get(id))
            .map(|kept| RecordState { version: kept.version, record: kept.record.as_deref().cloned() })
            .unwrap_or_default()
    }

    /// The record a stream holds now, shared.
    pub(crate) fn kept(&self, object: &str, id: &str) -> Option<&Arc<Record>> {
        self.records.get(object).and_then(|m| m.get(id)).and_then(|kept| kept.record.as_ref())
    }

    /// Takes the place of a record with `theirs` when both hold the same
    /// content and are not one allocation already; says whether it did.
    pub(crate) fn adopt(&mut self, object: &str, id: &str, theirs: Arc<Record>) -> bool {
        let Some(kept) = self.records.get_mut(object).and_then(|m| m.get_mut(id)) else { return false };
        match &kept.record {
            Some(own) if !Arc::ptr_eq(own, &theirs) && **own == *theirs => {
                kept.record = Some(theirs);
                true
            }
            _ => false,
        }
    }

    /// The `(object, id)` of every record stream holding a live record that
    /// is its own alone.
    fn unshared(&self) -> impl Iterator<Item = (&String, &String)> {
        let alone = |kept: &Kept| kept.record.as_ref().is_some_and(|record| Arc::strong_count(record) == 1);
        self.records.iter().flat_map(move |(object, records)| records.iter().filter(move |(_, kept)| alone(kept)).map(move |(id, _)| (object, id)))
    }

    /// How many live records it holds alone (a snapshot saves them whole).
    pub(crate) fn unshared_count(&self) -> usize {
        self.unshared().count()
    }

    /// Every record stream's `(object, id)` holding a live record that is
    /// its own alone (one shared already, as a start from a snapshot takes
    /// them, has nothing to offer).
    pub(crate) fn unshared_keys(&self) -> Vec<(String, String)> {
        self.unshared().map(|(object, id)| (object.clone(), id.clone())).collect()
    }

    /// Notes a record stream applied at `position` for sharing, when sharing is on.
    pub(crate) fn note_applied(&mut self, position: u64, stream: &str) {
        let Some(pending) = self.pending.as_mut() else { return };
        if stream.starts_with('$') || !stream.contains('/') {
            return;
        }
        if pending.len() >= PENDING_MAX {
            pending.pop_front();
        }
        pending.push_back((position, stream.to_string()));
    }

    /// The pending record streams applied at or below `through`, taken out.
    pub(crate) fn take_pending(&mut self, through: u64) -> Vec<(String, String)> {
        let Some(pending) = self.pending.as_mut() else { return Vec::new() };
        let mut out = Vec::new();
        while pending.front().is_some_and(|(position, _)| *position <= through) {
            let (_, stream) = pending.pop_front().expect("a front");
            if let Some((object, id)) = stream.split_once('/') {
                out.push((object.to_string(), id.to_string()));
            }
        }
        out
    }

    /// The id of a live record whose `field` equals `value` (seed data look-ups).
    pub fn find_by_field(&self, object: &str, field: &str, value: &Value) -> Option<String> {
        let records = self.records.get(object)?;
        let mut ids: Vec<&String> =
            records.iter().filter(|(_, s)| s.record.as_deref().and_then(|r| r.get(field)).is_some_and(|v| v.loose_eq(value))).map(|(id, _)| id).collect();
        ids.sort();
        ids.first().map(|id| id.to_string())
    }

    /// Whether the event at `stream_version` of `stream` is applied already
    /// (or is of a stream the write model keeps nothing of).
    pub fn holds(&self, stream: &str, stream_version: u64) -> bool {
        if let Some(object) = stream.strip_prefix("$meta/") {
            return self.meta_versions.get(object).is_some_and(|v| *v >= stream_version);
        }
        if stream.starts_with("$approvals/") {
            return self.approval_versions.get(stream).is_some_and(|v| *v >= stream_version);
        }
        if stream.starts_with("$automation/") {
            return self.automation_versions.get(stream).is_some_and(|v| *v >= stream_version);
        }
        if stream.starts_with('$') {
            return true;
        }
        match stream.split_once('/') {
            Some((object, id)) => self.version(object, id) >= stream_version,
            None => true,
        }
    }

    /// Applies one committed event. Events at or below a stream's version are skipped.
    pub fn apply(&mut self, stream: &str, stream_version: u64, payload: &EventPayload) -> Result<(), DomainError> {
        match payload {
            EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_) => {
                let version = self.meta_versions.entry(payload.object().to_string()).or_default();
                if stream_version <= *version {
                    return Ok(());
                }
                *version = stream_version;
                evolve_catalog(&mut self.catalog, payload)?;
                self.reindex_object(payload.object());
            }
            EventPayload::RecordCreated(_) | EventPayload::RecordUpdated(_) | EventPayload::RecordDeleted(_) => {
                let object = payload.object().to_string();
                let id = stream.split_once('/').map(|(_, id)| id).unwrap_or_default().to_string();
                let kept = self.records.get(&object).and_then(|m| m.get(&id)).cloned().unwrap_or_default();
                if stream_version <= kept.version {
                    return Ok(());
                }
                if matches!(payload, EventPayload::RecordCreated(_)) {
                    *self.created.entry(object.clone()).or_default() += 1;
                }
                // Only an update needs the record before it (a create has none, a delete keeps none).
                let before = match payload {
                    EventPayload::RecordUpdated(_) => kept.record.as_deref().cloned(),
                    _ => None,
                };
                let after = evolve(RecordState { version: kept.version, record: before }, payload);
                self.index_record(&object, &id, kept.record.as_deref(), after.record.as_ref());
                self.records.entry(object).or_default().insert(id, Kept { version: after.version, record: after.record.map(Arc::new) });
            }
            // Operators' decisions about projections: nothing for the write model.
            EventPayload::Process(event) if stream.starts_with("$approvals/") => {
                let version = self.approval_versions.entry(stream.to_string()).or_default();
                if stream_version <= *version {
                    return Ok(());
                }
                *version = stream_version;
                let record = stream.trim_start_matches("$approvals/").to_string();
                match event {
                    ProcessEvent::ApprovalSubmitted(e) if e.lock => {
                        self.locked.insert(record, e.process.clone());
                    }
                    ProcessEvent::ApprovalDecided(e) if e.next_step.is_none() => {
                        self.locked.remove(&record);
                    }
                    ProcessEvent::ApprovalRecalled(_) => {
                        self.locked.remove(&record);
                    }
                    _ => {}
                }
            }
            EventPayload::Process(ProcessEvent::AutomationDefined(defined)) => {
                let version = self.automation_versions.entry(stream.to_string()).or_default();
                if stream_version <= *version {
                    return Ok(());
                }
                *version = stream_version;
                self.automation.insert((defined.kind.clone(), defined.name.clone()), defined.definition.clone());
                self.automation_generation += 1;
            }
            EventPayload::EventSkipped(_) | EventPayload::Process(_) => {}
        }
        Ok(())
    }

    /// Metadata changed: rebuild the unique indexes of the object from its records.
    fn reindex_object(&mut self, object: &str) {
        for set in self.unique_sets.remove(object).unwrap_or_default() {
            self.unique.remove(&set);
        }
        let Some(definition) = self.catalog.get(object).cloned() else {
            return;
        };
        let sets = sets_of(&definition);
        self.unique_sets.insert(object.to_string(), sets.clone());
        let records: Vec<(String, Record)> =
            self.records.get(object).into_iter().flatten().filter_map(|(id, s)| s.record.as_deref().map(|r| (id.clone(), r.clone()))).collect();
        for set in sets {
            let index = self.unique.entry(set.clone()).or_default();
            for (id, record) in &records {
                if let Some(key) = Self::key_of(&set, record) {
                    index.insert(key, id.clone());
                }
            }
        }
    }

    fn key_of(set: &UniqueSet, record: &Record) -> Option<String> {
        let values: Vec<Value> = set.fields.iter().map(|f| record.get(f).cloned().unwrap_or_default()).collect();
        if values.iter().all(Value::is_blank) {
            return None;
        }
        Some(value_key(&values, set.case_sensitive))
    }

    fn references_of(&self, object: &str, record: &Record) -> Vec<(String, String, String)> {
        let Some(definition) = self.catalog.get(object) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for field in definition.fields.iter().filter(|f| f.field_type.is_reference()) {
            let target = field.reference.clone().unwrap_or_default();
            match record.get(&field.name) {
                Some(Value::Text(id)) => out.push((target, id.clone(), field.name.clone())),
                Some(Value::List(ids)) => out.extend(ids.iter().filter_map(Value::as_str).map(|id| (target.clone(), id.to_string(), field.name.clone()))),
                _ => {}
            }
        }
        out
    }

    fn index_record(&mut self, object: &str, id: &str, before: Option<&Record>, after: Option<&Record>) {
        let sets = self.unique_sets.get(object).cloned().unwrap_or_default();
        for set in &sets {
            let index = self.unique.entry(set.clone()).or_default();
            if let Some(key) = before.and_then(|r| Self::key_of(set, r)) {
                if index.get(&key).is_some_and(|owner| owner == id) {
                    index.remove(&key);
                }
            }
            if let Some(key) = after.and_then(|r| Self::key_of(set, r)) {
                index.insert(key, id.to_string());
            }
        }
        for (target, target_id, field) in before.map(|r| self.references_of(object, r)).unwrap_or_default() {
            if let Some(set) = self.referrers.get_mut(&(target, target_id)) {
                set.remove(&(object.to_string(), id.to_string(), field));
            }
        }
        for (target, target_id, field) in after.map(|r| self.references_of(object, r)).unwrap_or_default() {
            self.referrers.entry((target, target_id)).or_default().insert((object.to_string(), id.to_string(), field));
        }
    }

    /// The unique values a record's write takes and gives up (see
    /// [`UniqueChanges`]), from the record before and after it, added to
    /// `out`. Objects without unique fields cost nothing.
    pub fn unique_change(&self, stream: &str, before: Option<&Record>, after: Option<&Record>, out: &mut UniqueChanges) {
        let Some((object, _)) = stream.split_once('/').filter(|_| !stream.starts_with('$')) else { return };
        for set in self.unique_sets.get(object).map(Vec::as_slice).unwrap_or_default() {
            let old = before.and_then(|r| Self::key_of(set, r)).map(|k| claim_key(set, &k));
            let new = after.and_then(|r| Self::key_of(set, r)).map(|k| claim_key(set, &k));
            // A value the record already held is claimed already (or was
            // held before claims existed, which every write model knows).
            if let Some(key) = new.as_ref().filter(|new| old.as_ref() != Some(*new)) {
                out.claims.push(UniqueClaim { key: key.clone(), stream: stream.to_string(), object: set.object.clone(), fields: set.fields.clone() });
            }
            if let Some(key) = old.filter(|old| new.as_ref() != Some(old)) {
                out.releases.push((key, stream.to_string()));
            }
        }
    }

    /// [`WriteModel::unique_change`] of records written by appends whose
    /// decisions are not at hand (a cascade's): their events folded over
    /// this model's record.
    pub fn unique_changes_of(&self, streams: &[StreamAppend], upcasters: &Upcasters, out: &mut UniqueChanges) {
        for append in streams {
            let Some((object, id)) = append.stream.split_once('/').filter(|_| !append.stream.starts_with('$')) else { continue };
            if self.unique_sets.get(object).is_none_or(Vec::is_empty) {
                continue;
            }
            let state = self.record(object, id);
            let before = state.record.clone();
            let after = append.events.iter().filter_map(|e| decode_envelope_payload(e, upcasters).ok()).fold(state, |s, p| evolve(s, &p)).record;
            self.unique_change(&append.stream, before.as_ref(), after.as_ref(), out);
        }
    }

    /// A create of `object` took its next autonumber: the next one is higher.
    pub fn took_autonumber(&mut self, object: &str) {
        let next = self.next_autonumber(object, "") + 1;
        self.numbers.insert(object.to_string(), next);
    }

    /// Reserves the unique values of `record` (after a write) for `id`.
    pub fn reserve(&mut self, object: &str, id: &str, record: &Record) -> Reservation {
        let mut reservation = Reservation::default();
        for set in self.unique_sets.get(object).cloned().unwrap_or_default() {
            if let Some(key) = Self::key_of(&set, record) {
                self.reserved.entry(set.clone()).or_default().insert(key.clone(), id.to_string());
                reservation.entries.push((set, key));
            }
        }
        reservation
    }

    pub fn release(&mut self, reservation: Reservation) {
        for (set, key) in reservation.entries {
            if let Some(index) = self.reserved.get_mut(&set) {
                index.remove(&key);
            }
        }
    }
}

impl Lookups for WriteModel {
    fn record_exists(&self, object: &str, id: &str) -> bool {
        self.records.get(object).and_then(|m| m.get(id)).is_some_and(|kept| kept.record.is_some())
    }

    fn find_duplicate(&self, object: &str, fields: &[String], values: &[Value], case_sensitive: bool, except_id: &str) -> Option<String> {
        let set = UniqueSet { object: object.to_string(), fields: fields.to_vec(), case_sensitive };
        let key = value_key(values, case_sensitive);
        let committed = self.unique.get(&set).and_then(|index| index.get(&key));
        let reserved = self.reserved.get(&set).and_then(|index| index.get(&key));
        committed.or(reserved).filter(|owner| owner.as_str() != except_id).cloned()
    }

    fn next_autonumber(&self, object: &str, _field: &str) -> u64 {
        let counted = self.created.get(object).copied().unwrap_or(0) + 1;
        self.numbers.get(object).copied().unwrap_or(0).max(counted)
    }

    fn referrers(&self, object: &str, id: &str) -> Vec<Referrer> {
        let Some(set) = self.referrers.get(&(object.to_string(), id.to_string())) else {
            return Vec::new();
        };
        let mut out: Vec<Referrer> = set
            .iter()
            .map(|(other, other_id, field)| {
                let behavior = self.catalog.get(other).and_then(|o| o.field(field).map(|f| f.on_delete())).unwrap_or(DeleteBehavior::SetNull);
                Referrer { object: other.clone(), id: other_id.clone(), field: field.clone(), behavior }
            })
            .collect();
        out.sort_by(|a, b| (&a.object, &a.id, &a.field).cmp(&(&b.object, &b.id, &b.field)));
        out
    }
}
