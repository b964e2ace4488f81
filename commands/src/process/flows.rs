//! Running a flow (`domain::automation::Flow`): from its start node, each
//! node in turn, the next one chosen by the edges, with the variables as the
//! formulas' record. Records are read and written through a [`FlowHost`]:
//! as the system ([`SystemHost`], for record changes and jobs) or, for api
//! flows that run as the user, through the gateway's service layer with the
//! caller's rights. Every write carries the key `{run}/{node}`, so a run
//! started again with the same run id (after a crash, or a retried request
//! with the same idempotency key) writes nothing twice.

use std::sync::Arc;

use domain::automation::flow::{evaluate, OnError};
use domain::automation::{Flow, NodeKind};
use domain::event::EventId;
use domain::time::Timestamp;
use domain::value::{record_to_json, Record, Value};
use serde_json::{Map, Value as Json};

use crate::service::{Command, CommandMeta, CommandService};
use crate::CommandError;

/// Why a host could not do a step.
#[derive(Debug, Clone)]
pub enum HostError {
    /// The step was refused (a rule, a permission, a missing record): the
    /// node failed; its fault edge or the flow's error handling decides.
    Refused(String),
    /// The store could not be reached: the run stops, to be started again.
    Unavailable(String),
}

/// Where a flow reads and writes records.
#[async_trait::async_trait]
pub trait FlowHost: Send + Sync {
    /// The first record of `object` (by id) whose fields equal `filter`, as JSON, or null.
    async fn get(&self, object: &str, filter: &Map<String, Json>) -> Result<Json, HostError>;
    /// Creates a record: its id.
    async fn create(&self, object: &str, data: Map<String, Json>, key: String) -> Result<String, HostError>;
    async fn update(&self, object: &str, id: &str, patch: Map<String, Json>, key: String) -> Result<(), HostError>;
    async fn delete(&self, object: &str, id: &str, key: String) -> Result<(), HostError>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FlowError {
    #[error("flow '{flow}' node '{node}': {message}")]
    Failed { flow: String, node: String, message: String },
    #[error("flow '{0}': the store is unavailable ({1}); start it again")]
    Unavailable(String, String),
}

/// Runs `flow` from its start with `variables`; its output variables.
pub async fn run(flow: &Flow, mut variables: Record, run_id: &str, host: &dyn FlowHost, now: Timestamp) -> Result<Map<String, Json>, FlowError> {
    let mut node = flow.start;
    // No graph with a cycle is loaded, so a run visits each node at most once.
    for _ in 0..=flow.nodes.len() {
        let step = step(flow, node, &mut variables, run_id, host, now).await;
        let failed = match step {
            Ok(()) => false,
            Err(HostError::Unavailable(message)) => return Err(FlowError::Unavailable(flow.name.clone(), message)),
            Err(HostError::Refused(message)) => {
                let has_fault = flow.edges.iter().any(|e| e.source == node && e.fault);
                if !has_fault && flow.on_error == OnError::Fail {
                    return Err(FlowError::Failed { flow: flow.name.clone(), node: flow.nodes[node].id.clone(), message });
                }
                tracing::warn!(flow = %flow.name, node = %flow.nodes[node].id, %message, "a flow node failed");
                has_fault
            }
        };
        if matches!(flow.nodes[node].kind, NodeKind::End) {
            break;
        }
        match flow.next(node, failed, &variables, now) {
            Some(next) => node = next,
            None => break,
        }
    }
    let mut outputs = Map::new();
    for name in &flow.outputs {
        outputs.insert(name.clone(), variables.get(name).map(Value::to_json).unwrap_or(Json::Null));
    }
    Ok(outputs)
}

async fn step(flow: &Flow, node: usize, variables: &mut Record, run_id: &str, host: &dyn FlowHost, now: Timestamp) -> Result<(), HostError> {
    let key = format!("{run_id}/{}", flow.nodes[node].id);
    let values = |pairs: &[(String, domain::automation::UpdateValue)], variables: &Record| -> Map<String, Json> {
        pairs.iter().map(|(field, value)| (field.clone(), evaluate(value, variables, now))).collect()
    };
    let id_of = |value: &domain::automation::UpdateValue, variables: &Record| -> Result<String, HostError> {
        match evaluate(value, variables, now) {
            Json::String(id) if !id.is_empty() => Ok(id),
            other => Err(HostError::Refused(format!("the record id is {other}, not an id"))),
        }
    };
    match &flow.nodes[node].kind {
        NodeKind::Start | NodeKind::End | NodeKind::Decision => {}
        NodeKind::Assignment(assignments) => {
            for (variable, value) in assignments {
                let json = evaluate(value, variables, now);
                variables.insert(variable.clone(), Value::from_json(&json));
            }
        }
        NodeKind::GetRecord { object, filter, output } => {
            let found = host.get(object, &values(filter, variables)).await?;
            variables.insert(output.clone(), Value::from_json(&found));
        }
        NodeKind::CreateRecord { object, fields, output } => {
            let id = host.create(object, values(fields, variables), key).await?;
            if let Some(output) = output {
                variables.insert(output.clone(), Value::Text(id));
            }
        }
        NodeKind::UpdateRecord { object, record_id, fields } => {
            let id = id_of(record_id, variables)?;
            host.update(object, &id, values(fields, variables), key).await?;
        }
        NodeKind::DeleteRecord { object, record_id } => {
            let id = id_of(record_id, variables)?;
            host.delete(object, &id, key).await?;
        }
    }
    Ok(())
}

/// Reads the write model and writes through the command service as `system`.
pub struct SystemHost {
    pub commands: Arc<CommandService>,
    /// The event the run answers (a record change, a job's tick).
    pub causation: Option<EventId>,
}

impl SystemHost {
    fn meta(&self, key: String) -> CommandMeta {
        let mut meta = CommandMeta::system().with_key(format!("$flow/{key}"));
        meta.causation_id = self.causation;
        meta.automation = true;
        meta
    }
}

fn host_error(error: CommandError) -> HostError {
    match error {
        CommandError::Store(e) => HostError::Unavailable(e.to_string()),
        CommandError::Contended => HostError::Unavailable(error.to_string()),
        other => HostError::Refused(other.to_string()),
    }
}

#[async_trait::async_trait]
impl FlowHost for SystemHost {
    async fn get(&self, object: &str, filter: &Map<String, Json>) -> Result<Json, HostError> {
        let mut found: Vec<Record> = self
            .commands
            .live_records(object)
            .into_iter()
            .filter(|r| filter.iter().all(|(field, value)| r.get(field).map(Value::to_json).unwrap_or(Json::Null) == *value))
            .collect();
        found.sort_by(|a, b| a.get("id").and_then(Value::as_str).cmp(&b.get("id").and_then(Value::as_str)));
        Ok(found.first().map(record_to_json).unwrap_or(Json::Null))
    }

    async fn create(&self, object: &str, data: Map<String, Json>, key: String) -> Result<String, HostError> {
        let command = Command::Create { object: object.to_string(), id: None, data };
        let outcome = self.commands.execute(command, self.meta(key)).await.map_err(host_error)?;
        Ok(outcome.id)
    }

    async fn update(&self, object: &str, id: &str, patch: Map<String, Json>, key: String) -> Result<(), HostError> {
        let command = Command::Update { object: object.to_string(), id: id.to_string(), patch, expected_version: None };
        self.commands.execute(command, self.meta(key)).await.map(|_| ()).map_err(host_error)
    }

    async fn delete(&self, object: &str, id: &str, key: String) -> Result<(), HostError> {
        let command = Command::Delete { object: object.to_string(), id: id.to_string(), expected_version: None };
        self.commands.execute(command, self.meta(key)).await.map(|_| ()).map_err(host_error)
    }
}
