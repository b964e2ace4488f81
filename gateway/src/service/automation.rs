//! The app's automation as an administrator sees it (needs
//! `manage_automation`): the workflow rules and the processes running them
//! (position, lag, steps, failures), jobs with their schedules and runs, a
//! run on demand, and webhooks with their deliveries.

use domain::security::SystemPermission;
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// At most this many runs or deliveries per answer.
const MAX_LIMIT: usize = 1000;

fn limit_of(limit: Option<usize>) -> usize {
    limit.unwrap_or(50).clamp(1, MAX_LIMIT)
}

/// The rules, and the status of every process of this node.
pub fn overview(system: &System, caller: &Caller) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    let workflows: Vec<Json> = system
        .automation
        .workflows
        .iter()
        .map(|w| {
            json!({
                "name": w.name, "objectName": w.object, "triggerType": format!("{:?}", w.trigger), "active": w.active,
                "executionOrder": w.order, "reevaluateOnChange": w.reevaluate, "actions": w.actions.iter().map(|a| &a.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({"workflows": workflows, "processes": processes(system)}))
}

/// Every process's status (also in the projections' status and `/metrics`).
pub(crate) fn processes(system: &System) -> Vec<Json> {
    system
        .processes
        .reports()
        .into_iter()
        .map(|r| json!({"name": r.name, "position": r.position, "lag": r.lag, "steps": r.steps, "failures": r.failures, "lastFailure": r.last_failure}))
        .collect()
}

pub fn jobs(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    Ok(system.processes.jobs())
}

pub fn executions(system: &System, caller: &Caller, name: &str, limit: Option<usize>) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    system.processes.job_runs(name, limit_of(limit)).ok_or_else(|| unknown("job", name))
}

/// Runs a job now: the run's id once it is claimed (it runs in the background).
pub async fn trigger(system: &System, caller: &Caller, name: &str) -> Result<String, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    system.processes.trigger(name).await.map_err(|e| match e {
        commands::process::TriggerError::Unknown(_) => unknown("job", name),
        other => ApiError::new(ErrorCode::ServiceUnavailable, other.to_string()),
    })
}

pub fn webhooks(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    Ok(system.processes.webhooks())
}

pub fn deliveries(system: &System, caller: &Caller, name: &str, limit: Option<usize>) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    let deliveries = system.processes.deliveries(name, limit_of(limit)).ok_or_else(|| unknown("active webhook", name))?;
    Ok(deliveries.iter().map(|d| d.to_json()).collect())
}

fn unknown(kind: &str, name: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no {kind} named '{name}'"))
}
