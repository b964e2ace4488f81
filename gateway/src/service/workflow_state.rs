//! The workflow service the client's `workflow` namespace calls (IWorkflowService),
//! over an object's `state_machine` validation rules: the machines an
//! object has (the field, its states and allowed moves), a record's state
//! and the moves open from it, a transition (an update of the field, made
//! as the caller through [`super::writes`], so the rule, the caller's rights
//! and every hook apply), and a record's past transitions from its audit
//! history. Approvals are [`super::approvals`].

use domain::metadata::{ObjectDef, RuleKind};
use domain::query::Query;
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use super::writes::{self, Command};
use crate::app::System;
use crate::error::ApiError;

/// A state machine of an object: its rule's name, the field, and the moves.
struct Machine<'a> {
    name: &'a str,
    field: &'a str,
    transitions: &'a std::collections::BTreeMap<String, Vec<String>>,
}

/// The object's active state machines over fields the caller may read.
fn machines<'a>(system: &System, caller: &Caller, object: &'a ObjectDef) -> Result<Vec<Machine<'a>>, ApiError> {
    let catalog = system.reader.catalog();
    let shown = caller.access().describe(&catalog, object).ok_or_else(|| ApiError::from(domain::DomainError::ObjectNotFound(object.name.clone())))?;
    Ok(object
        .validations
        .iter()
        .filter(|rule| rule.active)
        .filter_map(|rule| match &rule.kind {
            RuleKind::StateMachine { field, transitions } if shown.raw.pointer(&format!("/fields/{field}")).is_some() => {
                Some(Machine { name: &rule.name, field, transitions })
            }
            _ => None,
        })
        .collect())
}

fn definition(system: &System, object: &str) -> Result<std::sync::Arc<ObjectDef>, ApiError> {
    Ok(system.reader.catalog().require(object)?.clone())
}

/// The machine named by `field` (or the object's only one).
fn pick<'a>(object: &str, machines: Vec<Machine<'a>>, field: Option<&str>) -> Result<Machine<'a>, ApiError> {
    let count = machines.len();
    let mut matching = machines.into_iter().filter(|m| field.is_none_or(|f| f == m.field));
    match (matching.next(), count) {
        (Some(machine), 1) => Ok(machine),
        (Some(machine), _) if field.is_some() => Ok(machine),
        (Some(_), _) => Err(ApiError::new(ErrorCode::ValidationError, format!("{object} has {count} state machines: say which field"))),
        (None, _) => {
            Err(ApiError::new(ErrorCode::ResourceNotFound, format!("{object} has no state machine{}", field.map(|f| format!(" on '{f}'")).unwrap_or_default())))
        }
    }
}

/// `GET /workflow/{object}/config`.
pub async fn config(system: &System, caller: &Caller, object: &str) -> Result<Json, ApiError> {
    super::barrier::read_barrier(system, None).await?;
    let definition = definition(system, object)?;
    let machines: Vec<Json> = machines(system, caller, &definition)?
        .iter()
        .map(|m| {
            let mut states: Vec<&String> = m.transitions.keys().chain(m.transitions.values().flatten()).collect();
            states.sort();
            states.dedup();
            json!({"name": m.name, "field": m.field, "states": states, "transitions": m.transitions})
        })
        .collect();
    let approvals: Vec<Json> = system
        .automation()
        .approvals
        .iter()
        .filter(|a| a.object == definition.name && a.active)
        .map(|a| json!({"name": a.name, "lockRecord": a.lock_record, "steps": a.steps.iter().map(|s| &s.name).collect::<Vec<_>>()}))
        .collect();
    Ok(json!({"object": definition.name, "stateMachines": machines, "approvalProcesses": approvals}))
}

/// `GET /workflow/{object}/{id}/state`: the record's state, as the caller reads it.
pub async fn state(system: &System, caller: &Caller, object: &str, id: &str, field: Option<&str>) -> Result<Json, ApiError> {
    let definition = definition(system, object)?;
    let machines = machines(system, caller, &definition)?;
    // An object with approvals but no state machine still has a state: its approval's.
    let machine = if machines.is_empty() && field.is_none() { None } else { Some(pick(object, machines, field)?) };
    let record = super::data::get(system, caller, None, &definition.name, id, Query::new(&definition.name), None).await?.record;
    let current = machine.as_ref().and_then(|m| record.get(m.field)).and_then(|v| v.as_str()).map(str::to_string);
    let available = machine.as_ref().and_then(|m| current.as_ref().and_then(|c| m.transitions.get(c))).cloned().unwrap_or_default();
    let approval = super::approvals::state_of(system, caller, &definition.name, id).await?;
    Ok(json!({
        "recordId": id, "object": definition.name, "field": machine.map(|m| m.field), "currentState": current,
        "availableTransitions": available, "approval": approval,
    }))
}

/// `POST /workflow/{object}/{id}/transition {targetState, field?, comment?}`:
/// the field's update, as the caller; a move the machine does not allow is
/// refused by its rule (400 with the rule's message).
pub async fn transition(
    system: &System,
    caller: &Caller,
    object: &str,
    id: &str,
    target: &str,
    field: Option<&str>,
    idempotency_key: Option<String>,
) -> Result<(u64, Json), ApiError> {
    let definition = definition(system, object)?;
    let field = pick(object, machines(system, caller, &definition)?, field)?.field.to_string();
    let mut patch = Map::new();
    patch.insert(field.clone(), Json::String(target.to_string()));
    let command = Command::Update { object: definition.name.clone(), id: id.to_string(), patch, expected_version: None };
    let outcome = writes::execute(system, caller, idempotency_key, command).await?;
    let current = outcome.record.as_ref().and_then(|r| r.get(&field)).and_then(|v| v.as_str()).map(str::to_string);
    Ok((outcome.position, json!({"success": true, "recordId": id, "object": definition.name, "field": field, "currentState": current})))
}

/// `GET /workflow/{object}/{id}/history`: the moves of the machine's field, newest first.
pub async fn history(system: &System, caller: &Caller, object: &str, id: &str, field: Option<&str>) -> Result<Json, ApiError> {
    let definition = definition(system, object)?;
    let field = pick(object, machines(system, caller, &definition)?, field)?.field.to_string();
    let query = projections::audit_model::AuditQuery { limit: 1000, ..Default::default() };
    let trail = super::audit::history(system, caller, &definition.name, id, query, None).await?;
    let moves: Vec<Json> = trail["entries"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let change = entry["changes"].as_array()?.iter().find(|c| c["field"] == json!(field))?;
            Some(json!({"fromState": change["oldValue"], "toState": change["newValue"], "userId": entry["actor"]["id"], "timestamp": entry["timestamp"]}))
        })
        .collect();
    Ok(json!({"recordId": id, "object": definition.name, "field": field, "transitions": moves}))
}
