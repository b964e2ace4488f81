//! Approval processes for callers: submit a record (it must be visible to
//! the caller, who must be allowed to edit it, and meet the process's entry
//! criteria), approve or reject the pending step (as one of its approvers,
//! or with `modify_all_data`), recall a submission (its submitter, or
//! `modify_all_data`), and where a record stands. Each is an `approval.*`
//! event appended with the version the caller's decision was made on, so
//! racing answers serialize; the process's field updates then run as the
//! system, keyed by the event that caused them. While a process is pending
//! with `lockRecord`, the write model refuses callers' changes to the record.

use domain::automation::approval::{ApprovalState, Approver, Decision};
use domain::automation::{ApprovalProcess, FieldUpdate};
use domain::event::process::{ApprovalDecided, ApprovalRecalled, ApprovalSubmitted};
use domain::event::ProcessEvent;
use domain::query::Query;
use domain::security::SystemPermission;
use domain::value::Record;
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

fn stream(object: &str, id: &str) -> String {
    format!("$approvals/{object}/{id}")
}

/// The record's approval state and its stream's version.
async fn load(system: &System, object: &str, id: &str) -> Result<(ApprovalState, u64), ApiError> {
    let (events, version) = commands::process::read_process_stream(&system.commands, &stream(object, id)).await?;
    let mut state = ApprovalState::default();
    for (event, process) in &events {
        state.apply(process, domain::Timestamp::from_micros(event.occurred_at));
    }
    Ok((state, version))
}

/// The record as the caller sees it (refused as not found when it cannot).
async fn visible(system: &System, caller: &Caller, object: &str, id: &str) -> Result<Record, ApiError> {
    let one = super::data::get(system, caller, None, object, id, Query::new(object), None).await?;
    Ok((*one.record).clone())
}

fn process_of(system: &System, object: &str, name: Option<&str>) -> Result<ApprovalProcess, ApiError> {
    let automation = system.automation();
    let mut candidates = automation.approvals.iter().filter(|p| p.object == object && p.active && name.is_none_or(|n| n == p.name));
    match (candidates.next(), candidates.next()) {
        (Some(process), None) => Ok(process.clone()),
        (Some(_), Some(_)) => {
            Err(ApiError::new(ErrorCode::ValidationError, format!("{object} has several approval processes: say which ({{\"process\": ...}})")))
        }
        (None, _) => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("{object} has no active approval process{}", name.map(|n| format!(" named '{n}'")).unwrap_or_default()),
        )),
    }
}

/// The process's field updates, as the system, keyed by the event that caused them.
async fn run_actions(
    system: &System,
    object: &str,
    id: &str,
    actions: &[FieldUpdate],
    cause: &domain::event::EventEnvelope,
    what: &str,
) -> Result<(), ApiError> {
    if actions.is_empty() {
        return Ok(());
    }
    let record = system.commands.record_state(object, id).record.unwrap_or_default();
    let now = commands::clock::now();
    let patch: Map<String, Json> = actions.iter().map(|action| (action.field.clone(), action.value.evaluate(&record, None, now))).collect();
    let event_id: String = domain::hex::encode(&cause.event_id);
    let mut meta = commands::service::CommandMeta::system().with_key(format!("$approval/{event_id}/{what}"));
    meta.causation_id = Some(cause.event_id);
    meta.automation = true;
    let command = commands::service::Command::Update { object: object.to_string(), id: id.to_string(), patch, expected_version: None };
    system.commands.execute(command, meta).await?;
    Ok(())
}

async fn append(system: &System, caller: &Caller, object: &str, id: &str, version: u64, event: ProcessEvent) -> Result<domain::event::EventEnvelope, ApiError> {
    let meta = commands::service::CommandMeta::actor(caller.actor());
    let command = commands::service::Command::Process { stream: stream(object, id), expected_version: Some(version), event };
    match system.commands.execute(command, meta).await {
        Ok(outcome) => Ok(outcome.events.last().cloned().expect("the appended event")),
        Err(commands::CommandError::Conflict { .. }) => {
            Err(ApiError::new(ErrorCode::ConcurrentModification, "the record's approval changed meanwhile; read its state and try again"))
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /workflow/{object}/{id}/submit {process?, comment?}`.
pub async fn submit(system: &System, caller: &Caller, object: &str, id: &str, name: Option<&str>) -> Result<Json, ApiError> {
    let definition = system.reader.catalog().require(object)?.clone();
    let record = visible(system, caller, &definition.name, id).await?;
    if !caller.access().grant(&system.commands.catalog(), &definition).permission.edit {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not edit {}: you may not submit it for approval", definition.name)));
    }
    let process = process_of(system, &definition.name, name)?;
    let (state, version) = load(system, &definition.name, id).await?;
    if let Some(pending) = &state.pending {
        return Err(ApiError::new(ErrorCode::ResourceConflict, format!("{} {id} is already pending approval ('{}')", definition.name, pending.process)));
    }
    let now = commands::clock::now();
    if !process.admits(&record, now) {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("{} {id} does not meet the entry criteria of '{}'", definition.name, process.name)));
    }
    let Some(step) = process.step_from(0, &record, now) else {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("no step of '{}' admits {} {id}", process.name, definition.name)));
    };
    let event = ProcessEvent::ApprovalSubmitted(ApprovalSubmitted {
        process: process.name.clone(),
        object: definition.name.clone(),
        record_id: id.to_string(),
        submitter: caller.actor().to_string(),
        step: step as u32,
        lock: process.lock_record,
    });
    let appended = append(system, caller, &definition.name, id, version, event).await?;
    run_actions(system, &definition.name, id, &process.on_submit, &appended, "submit").await?;
    state_of(system, caller, &definition.name, id).await
}

/// `POST /workflow/{object}/{id}/approve|reject {comment?}`.
pub async fn decide(system: &System, caller: &Caller, object: &str, id: &str, approved: bool, comment: Option<String>) -> Result<Json, ApiError> {
    let definition = system.reader.catalog().require(object)?.clone();
    visible(system, caller, &definition.name, id).await?;
    let (state, version) = load(system, &definition.name, id).await?;
    let Some(pending) = state.pending else {
        return Err(ApiError::new(ErrorCode::ResourceConflict, format!("{} {id} is not pending approval", definition.name)));
    };
    let process = process_of(system, &definition.name, Some(&pending.process))?;
    let step = &process.steps[pending.step.min(process.steps.len() - 1)];
    let record = system.commands.record_state(&definition.name, id).record.unwrap_or_default();
    let principal = caller.principal();
    let admin = caller.access().has(SystemPermission::ModifyAllData);
    if !admin && !step.may_decide(&principal.user_id, &principal.roles, &record) {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you are not an approver of step '{}' of '{}'", step.name, process.name)));
    }
    if pending.approved_by.contains(&principal.user_id) {
        return Err(ApiError::new(ErrorCode::ResourceConflict, format!("you approved step '{}' already", step.name)));
    }
    let mut approvers: Vec<String> = pending.approved_by.clone();
    approvers.push(principal.user_id.clone());
    // An entry is satisfied by an approval from someone it names (a role's member counts only as this caller).
    let satisfied = |entry: &Approver| match entry {
        Approver::User(user) => approvers.iter().any(|a| a == user),
        Approver::Role(role) => principal.roles.iter().any(|r| r == role) || admin,
        Approver::Field(field) => record.get(field).and_then(|v| v.as_str()).is_some_and(|user| approvers.iter().any(|a| a == user)),
    };
    let decision = process.decide(&pending, approved, satisfied, &record, commands::clock::now());
    let (next_step, outcome) = match decision {
        Decision::Stay => (Some(pending.step as u32), None),
        Decision::Step(next) => (Some(next as u32), None),
        Decision::End(outcome) => (None, Some(outcome.to_string())),
    };
    let event = ProcessEvent::ApprovalDecided(ApprovalDecided {
        process: process.name.clone(),
        step: pending.step as u32,
        approver: principal.user_id.clone(),
        approved,
        comment,
        next_step,
        outcome: outcome.clone(),
    });
    let appended = append(system, caller, &definition.name, id, version, event).await?;
    let step_done = decision != Decision::Stay;
    if step_done {
        let actions = if approved { &step.on_approve } else { &step.on_reject };
        run_actions(system, &definition.name, id, actions, &appended, "step").await?;
    }
    match outcome.as_deref() {
        Some("approved") => run_actions(system, &definition.name, id, &process.on_final_approve, &appended, "final").await?,
        Some("rejected") => run_actions(system, &definition.name, id, &process.on_final_reject, &appended, "final").await?,
        _ => {}
    }
    state_of(system, caller, &definition.name, id).await
}

/// `POST /workflow/{object}/{id}/recall`.
pub async fn recall(system: &System, caller: &Caller, object: &str, id: &str) -> Result<Json, ApiError> {
    let definition = system.reader.catalog().require(object)?.clone();
    visible(system, caller, &definition.name, id).await?;
    let (state, version) = load(system, &definition.name, id).await?;
    let Some(pending) = state.pending else {
        return Err(ApiError::new(ErrorCode::ResourceConflict, format!("{} {id} is not pending approval", definition.name)));
    };
    if pending.submitter != caller.actor() && !caller.access().has(SystemPermission::ModifyAllData) {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "only the submitter (or an administrator) recalls a submission"));
    }
    let process = process_of(system, &definition.name, Some(&pending.process))?;
    let event = ProcessEvent::ApprovalRecalled(ApprovalRecalled { process: process.name.clone(), by: caller.actor().to_string() });
    let appended = append(system, caller, &definition.name, id, version, event).await?;
    run_actions(system, &definition.name, id, &process.on_recall, &appended, "recall").await?;
    state_of(system, caller, &definition.name, id).await
}

/// Where the record's approval stands (for a caller who sees the record).
pub async fn state_of(system: &System, caller: &Caller, object: &str, id: &str) -> Result<Json, ApiError> {
    visible(system, caller, object, id).await?;
    let (state, _) = load(system, object, id).await?;
    let pending = state.pending.as_ref().map(|p| {
        let step = system.automation().approvals.iter().find(|a| a.name == p.process).and_then(|a| a.steps.get(p.step)).map(|s| s.name.clone());
        json!({"process": p.process, "step": step, "submitter": p.submitter, "approvedBy": p.approved_by, "locked": p.lock})
    });
    Ok(json!({
        "recordId": id, "object": object,
        "status": if state.pending.is_some() { "pending" } else { state.last_outcome.as_deref().unwrap_or("none") },
        "pending": pending,
        "history": state.history,
    }))
}
