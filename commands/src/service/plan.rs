//! Turning a command into an append: decide against the write model, cascade
//! deletes, build envelopes, reserve unique values.

use domain::automation::{before_save, WorkflowRule};
use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventId, EventPayload, StreamId};
use domain::metadata::{decide_metadata, DeleteBehavior};
use domain::record::{decide, evolve, DecideContext, Lookups, RecordCommand};
use domain::security::WriteOp;
use domain::{DomainError, Timestamp};
use serde_json::{Map, Value as Json};

use super::command::{Command, CommandMeta, Outcome};
use super::write_model::{Reservation, WriteModel};
use crate::error::CommandError;
use crate::store::{AppendRequest, ExpectedVersion, StreamAppend, UniqueChanges};

/// How deep deletes cascade through master_detail chains.
const MAX_CASCADE_DEPTH: usize = 8;

pub(crate) struct Planned {
    /// `None`: nothing to write (a no-op update, an unchanged definition).
    pub request: Option<AppendRequest>,
    pub reservation: Reservation,
    pub outcome: Outcome,
}

fn expected(version: u64) -> ExpectedVersion {
    ExpectedVersion::Exact(version)
}

pub(crate) use crate::clock::now;

fn new_id() -> EventId {
    uuid::Uuid::now_v7().into_bytes()
}

fn envelope(payload: &EventPayload, meta: &CommandMeta, now: Timestamp, correlation: EventId) -> EventEnvelope {
    let (event_type, schema_version, bytes) = encode_payload(payload);
    EventEnvelope {
        position: 0,
        stream: String::new(),
        stream_version: 0,
        event_id: new_id(),
        event_type: event_type.to_string(),
        schema_version,
        occurred_at: now.micros(),
        actor: meta.actor.clone(),
        tenant: meta.tenant.clone(),
        correlation_id: correlation,
        causation_id: meta.causation_id,
        idempotency_key: None,
        payload: bytes,
    }
}

/// Plans one command; `rules` are the workflow rules whose field updates
/// join a record write (`domain::automation::before_save`).
pub(crate) fn plan(model: &mut WriteModel, command: &Command, meta: &CommandMeta, rules: &[WorkflowRule]) -> Result<Planned, CommandError> {
    let now = now();
    let correlation = meta.correlation_id.unwrap_or_else(new_id);
    match command {
        Command::Metadata(metadata) => {
            let payloads = decide_metadata(&model.catalog, metadata)?;
            let migrations = migrations_of(model, metadata, &payloads, meta, now)?;
            let first_object = payloads.first().map(|p| p.object().to_string()).unwrap_or_default();
            let mut streams: Vec<StreamAppend> = payloads
                .iter()
                .map(|p| StreamAppend {
                    stream: StreamId::metadata(p.object()).0,
                    expected: expected(model.meta_versions.get(p.object()).copied().unwrap_or(0)),
                    events: vec![envelope(p, meta, now, correlation)],
                })
                .collect();
            // The records a change migrates, after the definitions in the same append.
            for update in migrations {
                let stream = StreamId::record(&update.object, &update.id).0;
                let version = model.version(&update.object, &update.id);
                let payload = EventPayload::RecordUpdated(update);
                streams.push(StreamAppend { stream, expected: ExpectedVersion::Exact(version), events: vec![envelope(&payload, meta, now, correlation)] });
            }
            let outcome = Outcome::unplaced(StreamId::metadata(&first_object).0, first_object);
            let request = (!streams.is_empty()).then(|| AppendRequest { streams, idempotency_key: meta.idempotency_key.clone(), unique: Default::default() });
            Ok(Planned { request, reservation: Reservation::default(), outcome })
        }
        Command::SkipParkedEvent { projection, position, reason } => {
            let payload =
                EventPayload::EventSkipped(domain::event::EventSkipped { projection: projection.clone(), position: *position, reason: reason.clone() });
            let stream = StreamId::projection(projection).0;
            let outcome = Outcome::unplaced(stream.clone(), String::new());
            // Operators' decisions need no order among themselves.
            let streams = vec![StreamAppend { stream, expected: ExpectedVersion::Any, events: vec![envelope(&payload, meta, now, correlation)] }];
            Ok(Planned {
                request: Some(AppendRequest { streams, idempotency_key: meta.idempotency_key.clone(), unique: Default::default() }),
                reservation: Reservation::default(),
                outcome,
            })
        }
        Command::Process { stream, expected_version, event } => {
            let payload = EventPayload::Process(event.clone());
            let outcome = Outcome::unplaced(stream.clone(), String::new());
            let expected = expected_version.map_or(ExpectedVersion::Any, ExpectedVersion::Exact);
            let streams = vec![StreamAppend { stream: stream.clone(), expected, events: vec![envelope(&payload, meta, now, correlation)] }];
            Ok(Planned {
                request: Some(AppendRequest { streams, idempotency_key: meta.idempotency_key.clone(), unique: Default::default() }),
                reservation: Reservation::default(),
                outcome,
            })
        }
        Command::Create { object, id, data } => {
            let id = id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            plan_record(model, object, &id, RecordCommand::Create { data: data.clone() }, None, meta, rules, now, correlation)
        }
        Command::Update { object, id, patch, expected_version } => {
            plan_record(model, object, id, RecordCommand::Update { patch: patch.clone() }, *expected_version, meta, rules, now, correlation)
        }
        Command::Delete { object, id, expected_version } => {
            plan_record(model, object, id, RecordCommand::Delete, *expected_version, meta, rules, now, correlation)
        }
    }
}

/// The record updates that bring existing records in line with the
/// definitions a metadata command alters (`migration::plan`); a change that
/// would leave records impossible to edit, with no migration that mends
/// them, is refused with what breaks and how to say the migration.
fn migrations_of(
    model: &WriteModel,
    command: &domain::metadata::MetadataCommand,
    payloads: &[EventPayload],
    meta: &CommandMeta,
    now: Timestamp,
) -> Result<Vec<domain::event::RecordUpdated>, CommandError> {
    let domain::metadata::MetadataCommand::PutObjects { objects } = command else { return Ok(Vec::new()) };
    let mut updates = Vec::new();
    let now = now.to_rfc3339();
    for payload in payloads {
        let EventPayload::ObjectAltered(altered) = payload else { continue };
        // The definition as given (the event holds the same JSON as text).
        let Some(spec) = objects.iter().find(|spec| spec.definition.get("name").and_then(Json::as_str) == Some(altered.name.as_str())) else { continue };
        let new = domain::metadata::ObjectDef::from_json(&spec.definition)?;
        let migration = spec.migration.as_ref();
        // A reference a migration writes must name a record that exists (checked before any record is looked at).
        for (name, steps) in migration.into_iter().flatten() {
            let Some(target) = new.field(name).filter(|f| f.field_type.is_reference()).and_then(|f| f.reference.as_deref()) else { continue };
            for value in steps.backfill.iter().chain(steps.remap.values()) {
                if let Some(id) = value.as_str().filter(|id| !model.record_exists(target, id)) {
                    return Err(DomainError::InvalidDefinition(format!(
                        "the migration of {}.{name} writes '{id}', which is not a {target} record",
                        altered.name
                    ))
                    .into());
                }
            }
        }
        match domain::metadata::migration::plan(&new, migration, model.live_records(&altered.name), &now, &meta.actor) {
            Ok(mut planned) => updates.append(&mut planned),
            Err(report) => {
                return Err(DomainError::InvalidDefinition(format!(
                    "changing '{}' would break existing records: {}. Say how to migrate them: a value to backfill, or a remap of old values to new ones (the app's \"migrations\" section, or \"migration\" next to \"definition\" in the metadata API's body)",
                    altered.name,
                    report.join("; "),
                ))
                .into())
            }
        }
    }
    Ok(updates)
}

#[allow(clippy::too_many_arguments)]
fn plan_record(
    model: &mut WriteModel,
    object_name: &str,
    id: &str,
    command: RecordCommand,
    expected_version: Option<u64>,
    meta: &CommandMeta,
    rules: &[WorkflowRule],
    now: Timestamp,
    correlation: EventId,
) -> Result<Planned, CommandError> {
    let object = model.catalog.require(object_name)?.clone();
    let stream = StreamId::record(&object.name, id).0;
    if model.unreadable.contains(&stream) {
        return Err(DomainError::Unreadable(format!(
            "{} {id} has an event this server cannot read (see the projections' dead letters): it cannot be changed until that is mended",
            object.name
        ))
        .into());
    }
    // A record pending approval with a lock: callers wait for the process
    // to end (or recall it); the server's own processes may still write it.
    if let (Some(process), false, false) = (model.locked.get(&stream), meta.automation, matches!(command, RecordCommand::Create { .. })) {
        return Err(DomainError::Locked(format!(
            "{} {id} is locked while approval process '{process}' is pending; recall the submission to change it",
            object.name
        ))
        .into());
    }
    let state = model.record(&object.name, id);
    // The caller's rights, checked first: a record it cannot see answers as
    // not found, whatever version it names.
    let op = match &command {
        RecordCommand::Create { .. } => WriteOp::Create,
        RecordCommand::Update { .. } => WriteOp::Update,
        RecordCommand::Delete => WriteOp::Delete,
    };
    let fetch = |object: &str, id: &str| model.record(object, id).record;
    if let Some(guard) = meta.guard.as_deref() {
        if guard.object != object.name {
            return Err(DomainError::PermissionDenied(format!("a write to {} checked for {}", object.name, guard.object)).into());
        }
        guard.allow(op)?;
        if let Some(current) = &state.record {
            if op != WriteOp::Create {
                guard.check_before(op, &model.catalog, current, &fetch)?;
            }
        }
        match &command {
            RecordCommand::Create { data } => guard.check_fields(data, None)?,
            RecordCommand::Update { patch } => guard.check_fields(patch, state.record.as_ref())?,
            RecordCommand::Delete => {}
        }
    }
    if let Some(expected_version) = expected_version {
        if !state.exists() {
            return Err(DomainError::RecordNotFound { object: object.name.clone(), id: id.to_string() }.into());
        }
        if expected_version != state.version {
            return Err(CommandError::Conflict { expected: expected_version, actual: state.version });
        }
    }
    let seen = SeenBy { model, guard: meta.guard.as_deref() };
    let ctx = DecideContext { now, actor: &meta.actor, lookups: &seen, skip_rules: meta.skip_rules, automation: meta.automation };
    let mut decision = decide(&object, &state, id, &command, &ctx)?;
    let mut outcome = Outcome {
        position: 0,
        stream: stream.clone(),
        object: object.name.clone(),
        id: id.to_string(),
        version: state.version,
        record: state.record.clone(),
        events: Vec::new(),
        warnings: Vec::new(),
        replayed: false,
    };
    if decision.events.is_empty() {
        outcome.warnings = decision.warnings;
        return Ok(Planned { request: None, reservation: Reservation::default(), outcome });
    }
    let mut after = decision.events.iter().fold(state, evolve);
    // The caller's rights hold for what the caller wrote. The workflow
    // rules' field updates that join the write act for the system (and seed
    // data is loaded as written, as the object's validation rules are
    // skipped for it).
    if let (Some(guard), Some(record)) = (meta.guard.as_deref(), &after.record) {
        guard.check_after(op, &model.catalog, record, &fetch)?;
    }
    if !meta.skip_rules && op != WriteOp::Delete {
        let ctx = DecideContext { now, actor: &meta.actor, lookups: &*model, skip_rules: false, automation: true };
        (decision, after) = before_save::apply(rules, &object, outcome.record.as_ref(), after, id, decision, &ctx);
    }
    outcome.warnings = decision.warnings;
    let mut streams = vec![StreamAppend {
        stream: stream.clone(),
        expected: expected(outcome.version),
        events: decision.events.iter().map(|p| envelope(p, meta, now, correlation)).collect(),
    }];
    if matches!(command, RecordCommand::Delete) {
        let mut visited = vec![stream.clone()];
        cascade(model, &object.name, id, meta, now, correlation, 0, &mut visited, &mut streams)?;
    }
    if matches!(command, RecordCommand::Create { .. }) && object.fields.iter().any(|f| f.field_type == domain::metadata::FieldType::Autonumber) {
        model.took_autonumber(&object.name);
    }
    let reservation = match &after.record {
        Some(record) => model.reserve(&object.name, id, record),
        None => Reservation::default(),
    };
    // The record's own change from the states at hand; a cascade's records
    // from their events.
    let mut unique = UniqueChanges::default();
    model.unique_change(&stream, outcome.record.as_ref(), after.record.as_ref(), &mut unique);
    model.unique_changes_of(&streams[1..], domain::event::registry(), &mut unique);
    outcome.record = after.record;
    Ok(Planned { request: Some(AppendRequest { streams, idempotency_key: meta.idempotency_key.clone(), unique }), reservation, outcome })
}

/// Applies `deleteBehavior` of the records referencing a deleted record:
/// cascade deletes them (recursively), set_null clears the reference.
#[allow(clippy::too_many_arguments)]
fn cascade(
    model: &WriteModel,
    object: &str,
    id: &str,
    meta: &CommandMeta,
    now: Timestamp,
    correlation: EventId,
    depth: usize,
    visited: &mut Vec<String>,
    streams: &mut Vec<StreamAppend>,
) -> Result<(), CommandError> {
    if depth >= MAX_CASCADE_DEPTH {
        return Err(DomainError::DeleteRestricted { object: object.into(), id: id.into(), reason: "the cascade is deeper than 8 levels".into() }.into());
    }
    for referrer in model.referrers(object, id) {
        let child_stream = StreamId::record(&referrer.object, &referrer.id).0;
        if visited.contains(&child_stream) {
            continue;
        }
        let child = model.catalog.require(&referrer.object)?.clone();
        let state = model.record(&referrer.object, &referrer.id);
        let command = match referrer.behavior {
            DeleteBehavior::Cascade => RecordCommand::Delete,
            DeleteBehavior::SetNull => {
                let mut patch = Map::new();
                patch.insert(referrer.field.clone(), Json::Null);
                RecordCommand::Update { patch }
            }
            DeleteBehavior::Restrict => {
                unreachable!("decide refuses deletes with restricting referrers")
            }
        };
        let ctx = DecideContext { now, actor: &meta.actor, lookups: model, skip_rules: meta.skip_rules, automation: meta.automation };
        let decision = decide(&child, &state, &referrer.id, &command, &ctx).map_err(|e| DomainError::DeleteRestricted {
            object: object.into(),
            id: id.into(),
            reason: format!("{} {} could not follow ({:?}): {e}", referrer.object, referrer.id, referrer.behavior),
        })?;
        visited.push(child_stream.clone());
        let cause = StreamId::record(object, id).0;
        let events: Vec<EventPayload> = decision
            .events
            .into_iter()
            .map(|payload| match payload {
                // A cascaded delete names the delete that caused it.
                EventPayload::RecordDeleted(mut e) => {
                    e.cause = Some(cause.clone());
                    EventPayload::RecordDeleted(e)
                }
                other => other,
            })
            .collect();
        if !events.is_empty() {
            streams.push(StreamAppend {
                stream: child_stream,
                expected: expected(state.version),
                events: events.iter().map(|p| envelope(p, meta, now, correlation)).collect(),
            });
        }
        if referrer.behavior == DeleteBehavior::Cascade {
            cascade(model, &referrer.object, &referrer.id, meta, now, correlation, depth + 1, visited, streams)?;
        }
    }
    Ok(())
}

/// The write model's facts as the writer may know them: a referenced record
/// the caller cannot see does not exist for its write (the same error as a
/// missing one, so a write cannot probe for records it may not read).
struct SeenBy<'a> {
    model: &'a WriteModel,
    guard: Option<&'a domain::security::WriteGuard>,
}

impl Lookups for SeenBy<'_> {
    fn record_exists(&self, object: &str, id: &str) -> bool {
        if !self.model.record_exists(object, id) {
            return false;
        }
        let Some(guard) = self.guard else { return true };
        let Some(record) = self.model.record(object, id).record else { return false };
        let fetch = |object: &str, id: &str| self.model.record(object, id).record;
        guard.may_reference(&self.model.catalog, object, &record, &fetch)
    }
    fn find_duplicate(&self, object: &str, fields: &[String], values: &[domain::value::Value], case_sensitive: bool, except_id: &str) -> Option<String> {
        self.model.find_duplicate(object, fields, values, case_sensitive, except_id)
    }
    fn next_autonumber(&self, object: &str, field: &str) -> u64 {
        self.model.next_autonumber(object, field)
    }
    fn referrers(&self, object: &str, id: &str) -> Vec<domain::record::Referrer> {
        self.model.referrers(object, id)
    }
}
