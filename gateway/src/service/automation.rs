//! The app's automation as an administrator sees it (needs
//! `manage_automation`): the workflow rules and the processes running them
//! (position, lag, steps, failures), jobs with their schedules and runs, a
//! run on demand, and webhooks with their deliveries.

use commands::process::flows::{self, Ended, FlowError, FlowHost, SystemHost};
use domain::automation::FlowStart;
use domain::security::{PrincipalKind, SystemPermission};
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

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
    let automation = system.automation();
    let workflows: Vec<Json> = automation
        .workflows
        .iter()
        .map(|w| {
            json!({
                "name": w.name, "objectName": w.object, "triggerType": format!("{:?}", w.trigger), "active": w.active,
                "executionOrder": w.order, "reevaluateOnChange": w.reevaluate, "actions": w.actions.iter().map(|a| &a.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    let flows: Vec<Json> = automation
        .flows
        .iter()
        .map(|f| {
            let kind = match &f.start_kind {
                FlowStart::Api => "api".to_string(),
                FlowStart::Autolaunched => "autolaunched".to_string(),
                FlowStart::RecordChange { object, .. } => format!("record_change:{object}"),
            };
            json!({"name": f.name, "type": kind, "active": f.active, "runAs": if f.run_as_system { "system" } else { "user" }, "inputs": f.inputs, "outputs": f.outputs})
        })
        .collect();
    Ok(json!({"workflows": workflows, "flows": flows, "processes": processes(system)}))
}

/// Every process's status (also in the projections' status and `/metrics`).
pub(crate) fn processes(system: &System) -> Vec<Json> {
    system
        .processes()
        .reports()
        .into_iter()
        .map(|r| json!({"name": r.name, "position": r.position, "lag": r.lag, "steps": r.steps, "failures": r.failures, "lastFailure": r.last_failure}))
        .collect()
}

pub fn jobs(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    Ok(system.processes().jobs())
}

pub fn executions(system: &System, caller: &Caller, name: &str, limit: Option<usize>) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    system.processes().job_runs(name, limit_of(limit)).ok_or_else(|| unknown("job", name))
}

/// Runs a job now: the run's id once it is claimed (it runs in the background).
pub async fn trigger(system: &System, caller: &Caller, name: &str) -> Result<String, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    system.processes().trigger(name).await.map_err(|e| match e {
        commands::process::TriggerError::Unknown(_) => unknown("job", name),
        other => ApiError::new(ErrorCode::ServiceUnavailable, other.to_string()),
    })
}

pub fn webhooks(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    Ok(system.processes().webhooks())
}

pub fn deliveries(system: &System, caller: &Caller, name: &str, limit: Option<usize>) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    let deliveries = system.processes().deliveries(name, limit_of(limit)).ok_or_else(|| unknown("active webhook", name))?;
    Ok(deliveries.iter().map(|d| d.to_json()).collect())
}

fn unknown(kind: &str, name: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("no {kind} named '{name}'"))
}

/// Runs a flow now with `input` as its input variables: an `api` flow for
/// any signed-in caller (as the caller, whose rights every step keeps, or as
/// the system when the flow says `runAs: system`), an `autolaunched` one for
/// `manage_automation`. The run id is the request's idempotency key when it
/// has one (a repeat writes nothing twice), else a new one. Answers the run
/// id and the flow's output variables.
pub async fn trigger_flow(
    system: &System,
    caller: &Caller,
    name: &str,
    input: Map<String, Json>,
    idempotency_key: Option<String>,
) -> Result<(String, Map<String, Json>), ApiError> {
    let flow = system.automation().flow(name).cloned().filter(|f| f.active).ok_or_else(|| unknown("active flow", name))?;
    match &flow.start_kind {
        FlowStart::Api => {
            if caller.principal().kind == PrincipalKind::Guest && system.policy.declared {
                return Err(ApiError::new(ErrorCode::Unauthenticated, "sign in to run a flow"));
            }
        }
        FlowStart::Autolaunched => caller.require(SystemPermission::ManageAutomation)?,
        FlowStart::RecordChange { object, .. } => {
            return Err(ApiError::new(ErrorCode::ValidationError, format!("flow '{name}' runs when a {object} record changes; it cannot be triggered")));
        }
    }
    if let Some(unknown) = input.keys().find(|k| !flow.inputs.contains(k)) {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("flow '{name}' has no input '{unknown}' (inputs: {})", flow.inputs.join(", "))));
    }
    let mut variables = domain::value::Record::new();
    for (key, value) in &input {
        variables.insert(key.clone(), domain::value::Value::from_json(value));
    }
    let run_id = match idempotency_key {
        Some(key) => format!("{name}/{}/{key}", caller.actor()),
        None => format!("{name}/{}", uuid::Uuid::now_v7()),
    };
    let system_host;
    let caller_host;
    let host: &dyn FlowHost = if flow.run_as_system {
        system_host = SystemHost { commands: system.commands.clone(), causation: None, outbound: system.outbound.clone() };
        &system_host
    } else {
        caller_host = super::flow_host::CallerHost { system, caller };
        &caller_host
    };
    match flows::run(&flow, variables, &run_id, host, commands::clock::now()).await {
        Ok(Ended::Finished(output)) => Ok((run_id, output)),
        Ok(Ended::Waiting { until, state }) => {
            flows::suspend(&system.commands, &flow, &run_id, until, state, None)
                .await
                .map_err(|e| ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()))?;
            let mut waiting = Map::new();
            waiting.insert("status".into(), json!("waiting"));
            waiting.insert("resumesAt".into(), json!(until.to_rfc3339()));
            Ok((run_id, waiting))
        }
        Err(FlowError::Unavailable(_, message)) => Err(ApiError::new(ErrorCode::ServiceUnavailable, message)),
        Err(failed @ FlowError::Failed { .. }) => Err(ApiError::new(ErrorCode::ValidationError, failed.to_string())),
    }
}

/// The definitions of one kind as they run (app file and stored), secrets masked.
pub fn definitions(system: &System, caller: &Caller, kind: &str) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    let key = domain::automation::list_key(kind).ok_or_else(|| unknown("automation kind", kind))?;
    let (_, stored) = system.commands.automation_definitions();
    let mut items: Vec<Json> = system.app_json.get(key).and_then(Json::as_array).cloned().unwrap_or_default();
    for (stored_kind, name, definition) in stored {
        if domain::automation::list_key(&stored_kind) == Some(key) {
            items.retain(|item| item.get("name").and_then(Json::as_str) != Some(name.as_str()));
            items.extend(definition);
        }
    }
    Ok(items.into_iter().map(masked).collect())
}

/// A definition without what may be secret: a webhook's `secret`,
/// credentials and header values, a flow's HTTP header values.
fn masked(mut definition: Json) -> Json {
    fn hide_values(object: Option<&mut Json>) {
        if let Some(map) = object.and_then(Json::as_object_mut) {
            for value in map.values_mut() {
                *value = json!("********");
            }
        }
    }
    if let Some(map) = definition.as_object_mut() {
        if map.contains_key("secret") {
            map.insert("secret".into(), json!("********"));
        }
        hide_values(map.get_mut("authentication").and_then(|a| a.get_mut("credentials")));
        hide_values(map.get_mut("headers"));
        for node in map.get_mut("nodes").and_then(Json::as_array_mut).into_iter().flatten() {
            hide_values(node.get_mut("config").and_then(|c| c.get_mut("headers")));
        }
    }
    definition
}

/// Whether a definition carries what may be secret (see [`masked`]).
fn carries_secrets(definition: &Json) -> bool {
    let present = |value: Option<&Json>| value.is_some_and(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
    present(definition.get("secret"))
        || present(definition.pointer("/authentication/credentials"))
        || present(definition.get("headers"))
        || definition.get("nodes").and_then(Json::as_array).is_some_and(|nodes| nodes.iter().any(|n| present(n.pointer("/config/headers"))))
}

/// Stores (or, with `None`, removes) a definition through the metadata API:
/// checked with every other definition first, then an `automation.defined`
/// event; the automation is rebuilt on this node before answering (and on
/// other nodes as they follow the log). A definition with a secret,
/// credentials or HTTP headers belongs in the app file: secrets never enter the log.
pub async fn put_definition(system: &System, caller: &Caller, kind: &str, name: &str, definition: Option<Json>) -> Result<u64, ApiError> {
    caller.require(SystemPermission::ManageAutomation)?;
    let key = domain::automation::list_key(kind).ok_or_else(|| unknown("automation kind", kind))?;
    let kind = key.trim_end_matches('s').to_string();
    if let Some(definition) = &definition {
        if definition.get("name").and_then(Json::as_str) != Some(name) {
            return Err(ApiError::new(ErrorCode::InvalidField, format!("the definition's name must be '{name}', as the path says")));
        }
        if carries_secrets(definition) {
            return Err(ApiError::new(
                ErrorCode::ValidationError,
                format!("a {kind} with a secret, credentials or HTTP headers is declared in the app file: secrets never enter the log"),
            ));
        }
    }
    let (_, mut stored) = system.commands.automation_definitions();
    stored.retain(|(k, n, _)| !(domain::automation::list_key(k) == Some(key) && n == name));
    stored.push((kind.clone(), name.to_string(), definition.clone()));
    domain::automation::Automation::from_app_and_stored(&system.app_json, &stored, &system.commands.catalog()).map_err(ApiError::from)?;
    let event = domain::event::ProcessEvent::AutomationDefined(domain::event::process::AutomationDefined {
        kind: kind.clone(),
        name: name.to_string(),
        definition: definition.map(|d| d.to_string()),
    });
    let command = commands::service::Command::Process { stream: format!("$automation/{kind}/{name}"), expected_version: None, event };
    let outcome = system.commands.execute(command, commands::service::CommandMeta::actor(caller.actor())).await?;
    system.commands.wait_applied(outcome.position, std::time::Duration::from_secs(5)).await;
    system.reload_automation().await?;
    Ok(outcome.position)
}
