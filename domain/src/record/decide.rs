//! `decide`: every rule of a record write, as a pure function.

use serde_json::{Map, Value as Json};

use super::autonumber::format_autonumber;
use super::command::{DecideContext, Decision, RecordCommand};
use super::state::RecordState;
use crate::error::{DomainError, ErrorCode, FieldError};
use crate::event::{EventPayload, FieldChange, RecordCreated, RecordDeleted, RecordUpdated};
use crate::formula::{self, eval, truthy, RecordContext};
use crate::metadata::{DeleteBehavior, FieldDef, FieldType, ObjectDef, RuleEvent, SYSTEM_FIELDS};
use crate::validate::{check_rules, check_value, RuleOutcome};
use crate::value::{Record, Value};

/// Longest record id accepted.
pub const MAX_ID_LENGTH: usize = 255;

/// Decides the events of a record command against the record's current state.
pub fn decide(object: &ObjectDef, state: &RecordState, id: &str, command: &RecordCommand, ctx: &DecideContext) -> Result<Decision, DomainError> {
    match command {
        RecordCommand::Create { data } => create(object, state, id, data, ctx),
        RecordCommand::Update { patch } => update(object, state, id, patch, ctx),
        RecordCommand::Delete => delete(object, state, id, ctx),
    }
}

fn check_id(object: &ObjectDef, id: &str) -> Result<(), DomainError> {
    let problem = if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > MAX_ID_LENGTH {
        Some("is longer than 255 bytes")
    } else if id.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(DomainError::validation(&object.name, vec![FieldError::new("id", ErrorCode::InvalidFormat, format!("id {problem}"))])),
        None => Ok(()),
    }
}

/// Checks the written fields one by one: unknown fields, read-only fields, value rules.
/// Returns the normalised values; collects every error rather than stopping at the first.
fn written_values(
    object: &ObjectDef,
    data: &Map<String, Json>,
    current: Option<&Record>,
    automation: bool,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, Value)> {
    let mut values = Vec::with_capacity(data.len());
    for (name, json) in data {
        if SYSTEM_FIELDS.contains(&name.as_str()) || name == "_id" {
            let key = if name == "_id" { "id" } else { name.as_str() };
            let unchanged = current.and_then(|r| r.get(key)).is_some_and(|v| v.to_json() == *json);
            if !unchanged {
                errors.push(FieldError::new(name, ErrorCode::InvalidField, format!("{name} is a system field and cannot be written")));
            }
            continue;
        }
        let Some(field) = object.field(name) else {
            errors.push(FieldError::new(name, ErrorCode::InvalidField, format!("unknown field '{name}' on object '{}'", object.name)));
            continue;
        };
        if field.readonly && current.is_some() && !automation {
            let unchanged = current.and_then(|r| r.get(name)).is_some_and(|v| v.to_json() == *json);
            if !unchanged {
                errors.push(FieldError::new(name, ErrorCode::InvalidField, format!("{name} is read-only")));
            }
            continue;
        }
        match check_value(field, json) {
            Ok(value) => values.push((name.clone(), value)),
            Err(e) => errors.push(e),
        }
    }
    values
}

/// The default of a field on create: a literal, a formula such as `TODAY()`, or the default option.
fn default_value(field: &FieldDef, record: &Record, ctx: &DecideContext) -> Option<Value> {
    if let Some(json) = &field.default_value {
        if let Json::String(text) = json {
            let looks_like_call =
                text.ends_with(')') && text.split('(').next().is_some_and(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            if looks_like_call && !field.field_type.is_text() {
                let expr = formula::parse(text).ok()?;
                let value = eval(&expr, &RecordContext { record, previous: None, now: ctx.now });
                return check_value(field, &value.to_json()).ok();
            }
        }
        return check_value(field, json).ok().filter(|v| !v.is_null());
    }
    field.default_option().map(|v| if field.is_list() { Value::List(vec![Value::Text(v.to_string())]) } else { Value::Text(v.to_string()) })
}

/// Required, conditionally required, and references that must exist.
fn check_presence_and_references(
    object: &ObjectDef,
    record: &Record,
    previous: Option<&Record>,
    changed: &dyn Fn(&str) -> bool,
    ctx: &DecideContext,
    errors: &mut Vec<FieldError>,
) {
    for field in &object.fields {
        if field.field_type.is_read_only() {
            continue;
        }
        let value = record.get(&field.name).unwrap_or(&Value::Null);
        let required = field.required
            || field.compiled_conditional_required.as_ref().is_some_and(|expr| truthy(&eval(expr, &RecordContext { record, previous, now: ctx.now })));
        if required && value.is_blank() && !errors.iter().any(|e| e.field == field.name) {
            errors.push(FieldError::new(&field.name, ErrorCode::MissingRequiredField, format!("{} is required", field.name)));
            continue;
        }
        if field.field_type.is_reference() && changed(&field.name) {
            let target = field.reference.as_deref().unwrap_or_default();
            let ids: Vec<&str> = match value {
                Value::Text(id) => vec![id.as_str()],
                Value::List(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let own_id = record.get("id").and_then(Value::as_str).unwrap_or_default();
            for id in ids {
                let self_reference = target == object.name && id == own_id;
                if !self_reference && !ctx.lookups.record_exists(target, id) {
                    errors.push(FieldError::new(&field.name, ErrorCode::InvalidReference, format!("{}: no {target} record with id '{id}'", field.name)));
                }
            }
        }
    }
}

/// `unique: true` fields and unique indexes: no other live record may hold the same values.
fn check_unique_sets(object: &ObjectDef, record: &Record, changed: &dyn Fn(&str) -> bool, ctx: &DecideContext, errors: &mut Vec<FieldError>) {
    let own_id = record.get("id").and_then(Value::as_str).unwrap_or_default();
    for fields in object.unique_sets() {
        if !fields.iter().any(|f| changed(f)) {
            continue;
        }
        let values: Vec<Value> = fields.iter().map(|f| record.get(f).cloned().unwrap_or_default()).collect();
        if values.iter().all(Value::is_blank) {
            continue;
        }
        let case_sensitive = fields.iter().all(|f| object.field(f).and_then(|d| d.case_sensitive).unwrap_or(true));
        if let Some(other) = ctx.lookups.find_duplicate(&object.name, &fields, &values, case_sensitive, own_id) {
            let shown: Vec<String> = values.iter().map(|v| v.to_json().to_string()).collect();
            errors.push(FieldError::new(
                fields.join(","),
                ErrorCode::DuplicateValue,
                format!("{} {} is already used by record {other}", fields.join(", "), shown.join(", ")),
            ));
        }
    }
}

/// The object-level rules, unless the context says to skip them.
fn run_rules(object: &ObjectDef, record: &Record, previous: Option<&Record>, event: RuleEvent, ctx: &DecideContext) -> RuleOutcome {
    if ctx.skip_rules {
        return RuleOutcome::default();
    }
    check_rules(object, record, previous, event, ctx.now, ctx.lookups)
}

fn reject_if_errors(object: &ObjectDef, errors: Vec<FieldError>) -> Result<(), DomainError> {
    if errors.is_empty() {
        return Ok(());
    }
    if errors.iter().all(|e| e.code == ErrorCode::DuplicateValue) {
        let message = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
        return Err(DomainError::Duplicate { message, errors });
    }
    Err(DomainError::validation(&object.name, errors))
}

fn create(object: &ObjectDef, state: &RecordState, id: &str, data: &Map<String, Json>, ctx: &DecideContext) -> Result<Decision, DomainError> {
    if state.exists() {
        return Err(DomainError::RecordExists { object: object.name.clone(), id: id.to_string() });
    }
    check_id(object, id)?;
    let mut errors = Vec::new();
    let mut record = Record::new();
    record.insert("id", Value::Text(id.to_string()));
    for (name, value) in written_values(object, data, None, ctx.automation, &mut errors) {
        if !value.is_null() {
            record.insert(name, value);
        }
    }
    for field in &object.fields {
        if record.contains_key(&field.name) || data.contains_key(&field.name) {
            continue;
        }
        if field.field_type == FieldType::Autonumber {
            let format = field.autonumber_format.as_deref().or(object.autonumber_format.as_deref()).unwrap_or("{0}");
            let seq = ctx.lookups.next_autonumber(&object.name, &field.name) + object.autonumber_start.saturating_sub(1);
            record.insert(field.name.clone(), Value::Text(format_autonumber(format, seq, ctx.now)));
        } else if let Some(value) = default_value(field, &record, ctx) {
            record.insert(field.name.clone(), value);
        }
    }
    let now = Value::Text(ctx.now.to_rfc3339());
    record.insert("created_at", now.clone());
    record.insert("updated_at", now);
    record.insert("created_by", Value::Text(ctx.actor.to_string()));
    record.insert("modified_by", Value::Text(ctx.actor.to_string()));

    check_presence_and_references(object, &record, None, &|_| true, ctx, &mut errors);
    check_unique_sets(object, &record, &|_| true, ctx, &mut errors);
    reject_if_errors(object, errors)?;
    let outcome = run_rules(object, &record, None, RuleEvent::Insert, ctx);
    reject_if_errors(object, outcome.errors)?;
    Ok(Decision {
        events: vec![EventPayload::RecordCreated(RecordCreated { object: object.name.clone(), id: id.to_string(), record, automated: Vec::new() })],
        warnings: outcome.warnings,
    })
}

fn update(object: &ObjectDef, state: &RecordState, id: &str, patch: &Map<String, Json>, ctx: &DecideContext) -> Result<Decision, DomainError> {
    let Some(current) = state.record.as_ref() else {
        return Err(DomainError::RecordNotFound { object: object.name.clone(), id: id.to_string() });
    };
    let mut errors = Vec::new();
    let mut record = current.clone();
    for (name, value) in written_values(object, patch, Some(current), ctx.automation, &mut errors) {
        match value {
            Value::Null => record.remove(&name),
            value => record.insert(name, value),
        };
    }
    let changed_fields: Vec<String> = {
        let mut names: Vec<&crate::name::Name> = record.keys().chain(current.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().filter(|n| record.get(n) != current.get(n)).map(|n| n.to_string()).collect()
    };
    let changed = |name: &str| changed_fields.iter().any(|c| c == name);
    check_presence_and_references(object, &record, Some(current), &changed, ctx, &mut errors);
    check_unique_sets(object, &record, &changed, ctx, &mut errors);
    reject_if_errors(object, errors)?;
    if changed_fields.is_empty() {
        return Ok(Decision::default());
    }
    record.insert("updated_at", Value::Text(ctx.now.to_rfc3339()));
    record.insert("modified_by", Value::Text(ctx.actor.to_string()));
    let outcome = run_rules(object, &record, Some(current), RuleEvent::Update, ctx);
    reject_if_errors(object, outcome.errors)?;

    let mut changes: Vec<FieldChange> = changed_fields
        .iter()
        .map(|f| FieldChange { field: f.clone(), old: current.get(f).cloned().unwrap_or_default(), new: record.get(f).cloned().unwrap_or_default() })
        .collect();
    for system in ["updated_at", "modified_by"] {
        if current.get(system) != record.get(system) {
            changes.push(FieldChange {
                field: system.into(),
                old: current.get(system).cloned().unwrap_or_default(),
                new: record.get(system).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(Decision {
        events: vec![EventPayload::RecordUpdated(RecordUpdated { object: object.name.clone(), id: id.to_string(), changes, automated: Vec::new() })],
        warnings: outcome.warnings,
    })
}

fn delete(object: &ObjectDef, state: &RecordState, id: &str, ctx: &DecideContext) -> Result<Decision, DomainError> {
    let Some(current) = state.record.as_ref() else {
        return Err(DomainError::RecordNotFound { object: object.name.clone(), id: id.to_string() });
    };
    if let Some(referrer) = ctx.lookups.referrers(&object.name, id).into_iter().find(|r| r.behavior == DeleteBehavior::Restrict) {
        return Err(DomainError::DeleteRestricted {
            object: object.name.clone(),
            id: id.to_string(),
            reason: format!("{} {} references it through '{}' (deleteBehavior restrict)", referrer.object, referrer.id, referrer.field),
        });
    }
    let outcome = run_rules(object, current, Some(current), RuleEvent::Delete, ctx);
    reject_if_errors(object, outcome.errors)?;
    Ok(Decision {
        events: vec![EventPayload::RecordDeleted(RecordDeleted { object: object.name.clone(), id: id.to_string(), previous: current.clone(), cause: None })],
        warnings: outcome.warnings,
    })
}
