//! Running a flow (`domain::automation::Flow`): from its start node, each
//! node in turn, the next one chosen by the edges, with the variables as the
//! formulas' record. Records are read and written through a [`FlowHost`]:
//! as the system ([`SystemHost`], for record changes and jobs) or, for api
//! flows that run as the user, through the gateway's service layer with the
//! caller's rights. Every write carries the key `{run}/{node}`, so a run
//! started again with the same run id (after a crash, or a retried request
//! with the same idempotency key) writes nothing twice.

use std::sync::Arc;

use std::collections::HashMap;

use domain::automation::flow::{evaluate, OnError, MAX_LIST};
use domain::automation::{Flow, NodeKind};
use domain::event::EventId;
use domain::time::Timestamp;
use domain::value::{record_to_json, Record, Value};
use serde_json::{json, Map, Value as Json};

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

/// Where a flow reads and writes records, and what it calls out with.
#[async_trait::async_trait]
pub trait FlowHost: Send + Sync {
    /// The client `http_request` nodes use.
    fn outbound(&self) -> &super::http::Outbound;
    /// The first `limit` records of `object` (by id) whose fields equal `filter`, as JSON.
    async fn find(&self, object: &str, filter: &Map<String, Json>, limit: usize) -> Result<Vec<Json>, HostError>;
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

/// Most node visits one run makes (loops included).
pub const MAX_STEPS: usize = 100_000;

/// How a run ended for now.
#[derive(Debug, Clone)]
pub enum Ended {
    /// At an end node (or a node without a way on): the output variables.
    Finished(Map<String, Json>),
    /// At a wait node: the run resumes at `until` from `state` ([`resume`]).
    Waiting { until: Timestamp, state: Json },
}

/// Where a run is: its next node, variables, visits per node and loops' lists.
struct Position {
    node: usize,
    variables: Record,
    visits: HashMap<usize, usize>,
    /// Each loop node's list and the next item's index.
    loops: HashMap<usize, (Vec<Json>, usize)>,
    /// Waits so far (each resume's timer is told apart by it).
    waits: u64,
}

impl Position {
    fn to_json(&self, flow: &Flow) -> Json {
        let id = |i: &usize| flow.nodes[*i].id.clone();
        json!({
            "node": id(&self.node),
            "variables": record_to_json(&self.variables),
            "visits": self.visits.iter().map(|(n, v)| (id(n), json!(v))).collect::<Map<String, Json>>(),
            "loops": self.loops.iter().map(|(n, (items, index))| (id(n), json!({"items": items, "index": index}))).collect::<Map<String, Json>>(),
            "waits": self.waits,
        })
    }

    fn from_json(flow: &Flow, state: &Json) -> Option<Position> {
        let index = |id: &str| flow.node_index(id);
        let node = index(state.get("node")?.as_str()?)?;
        let variables = match Value::from_json(state.get("variables")?) {
            Value::Map(map) => map.into_iter().fold(Record::new(), |mut record, (k, v)| {
                record.insert(k, v);
                record
            }),
            _ => Record::new(),
        };
        let mut visits = HashMap::new();
        for (id, count) in state.get("visits")?.as_object()? {
            visits.insert(index(id)?, count.as_u64()? as usize);
        }
        let mut loops = HashMap::new();
        for (id, entry) in state.get("loops")?.as_object()? {
            loops.insert(index(id)?, (entry.get("items")?.as_array()?.clone(), entry.get("index")?.as_u64()? as usize));
        }
        Some(Position { node, variables, visits, loops, waits: state.get("waits")?.as_u64()? })
    }
}

/// Runs `flow` from its start with `variables`.
pub async fn run(flow: &Flow, variables: Record, run_id: &str, host: &dyn FlowHost, now: Timestamp) -> Result<Ended, FlowError> {
    let at = Position { node: flow.start, variables, visits: HashMap::new(), loops: HashMap::new(), waits: 0 };
    drive(flow, at, run_id, host, now).await
}

/// Resumes a run that waited, from the state [`Ended::Waiting`] gave.
pub async fn resume(flow: &Flow, state: &Json, run_id: &str, host: &dyn FlowHost, now: Timestamp) -> Result<Ended, FlowError> {
    let Some(at) = Position::from_json(flow, state) else {
        return Err(FlowError::Failed { flow: flow.name.clone(), node: String::new(), message: "its saved state no longer fits the flow's definition".into() });
    };
    drive(flow, at, run_id, host, now).await
}

async fn drive(flow: &Flow, mut at: Position, run_id: &str, host: &dyn FlowHost, now: Timestamp) -> Result<Ended, FlowError> {
    for steps in 0.. {
        let node = at.node;
        if steps == MAX_STEPS {
            return Err(FlowError::Failed {
                flow: flow.name.clone(),
                node: flow.nodes[node].id.clone(),
                message: format!("the run took more than {MAX_STEPS} steps"),
            });
        }
        let visit = at.visits.entry(node).or_default();
        *visit += 1;
        let key = if *visit == 1 { format!("{run_id}/{}", flow.nodes[node].id) } else { format!("{run_id}/{}/{visit}", flow.nodes[node].id) };
        match &flow.nodes[node].kind {
            NodeKind::Loop { collection, item } => {
                let (items, index) = at.loops.entry(node).or_insert_with(|| (list_of(evaluate(collection, &at.variables, now)), 0));
                let (body, done) = flow.loop_edges(node);
                if *index < items.len() {
                    at.variables.insert(item.clone(), Value::from_json(&items[*index]));
                    *index += 1;
                    at.node = body.expect("a loop has a body edge (checked at load)");
                    continue;
                }
                at.loops.remove(&node);
                match done {
                    Some(next) => {
                        at.node = next;
                        continue;
                    }
                    None => break,
                }
            }
            NodeKind::Wait { duration_ms, until } => {
                let until = match (duration_ms, until) {
                    (Some(ms), _) => Timestamp::from_micros(now.micros().saturating_add((*ms as i64).saturating_mul(1000))),
                    (_, Some(value)) => match evaluate(value, &at.variables, now) {
                        Json::String(text) => Timestamp::parse(&text).unwrap_or(now),
                        _ => now,
                    },
                    _ => now,
                };
                let Some(next) = flow.next(node, false, &at.variables, now) else { break };
                at.node = next;
                at.waits += 1;
                return Ok(Ended::Waiting { until, state: at.to_json(flow) });
            }
            _ => {}
        }
        let step = step(flow, node, &mut at.variables, &key, host, now).await;
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
        match flow.next(node, failed, &at.variables, now) {
            Some(next) => at.node = next,
            None => break,
        }
    }
    let mut outputs = Map::new();
    for name in &flow.outputs {
        outputs.insert(name.clone(), at.variables.get(name).map(Value::to_json).unwrap_or(Json::Null));
    }
    Ok(Ended::Finished(outputs))
}

/// Records a run that waits: a durable timer resumes it (as the system) when due.
pub async fn suspend(commands: &CommandService, flow: &Flow, run_id: &str, until: Timestamp, state: Json, cause: Option<EventId>) -> Result<(), FlowError> {
    let waits = state.get("waits").and_then(Json::as_u64).unwrap_or(0);
    let timer = format!("flow.{run_id}.{waits}");
    let data = json!({"flow": flow.name, "run": run_id, "state": state});
    super::timers::set(commands, timer, until.micros(), super::timers::FLOW_WAIT, data, cause)
        .await
        .map_err(|e| FlowError::Unavailable(flow.name.clone(), e.to_string()))
}

/// A loop's list: an array as given (at most [`MAX_LIST`] items), nothing for null, one item otherwise.
fn list_of(value: Json) -> Vec<Json> {
    match value {
        Json::Array(mut items) => {
            items.truncate(MAX_LIST);
            items
        }
        Json::Null => Vec::new(),
        other => vec![other],
    }
}

async fn step(flow: &Flow, node: usize, variables: &mut Record, key: &str, host: &dyn FlowHost, now: Timestamp) -> Result<(), HostError> {
    let key = key.to_string();
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
        NodeKind::Start | NodeKind::End | NodeKind::Decision | NodeKind::Loop { .. } | NodeKind::Wait { .. } => {}
        NodeKind::Assignment(assignments) => {
            for (variable, value) in assignments {
                let json = evaluate(value, variables, now);
                variables.insert(variable.clone(), Value::from_json(&json));
            }
        }
        NodeKind::GetRecord { object, filter, output, all } => {
            let mut found = host.find(object, &values(filter, variables), if *all { MAX_LIST } else { 1 }).await?;
            let value = if *all { Json::Array(found) } else { found.drain(..).next().unwrap_or(Json::Null) };
            variables.insert(output.clone(), Value::from_json(&value));
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
        NodeKind::HttpRequest { method, url, headers, body, output, timeout_ms } => {
            let url = match evaluate(url, variables, now) {
                Json::String(url) if domain::automation::is_http_url(&url) => url,
                other => return Err(HostError::Refused(format!("the URL is {other}, not an http:// or https:// URL"))),
            };
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(name, value)| match evaluate(value, variables, now) {
                    Json::String(text) => (name.clone(), text),
                    other => (name.clone(), other.to_string()),
                })
                .collect();
            let body = body.as_ref().map(|b| evaluate(b, variables, now));
            let (status, answer) = super::http::call(host.outbound(), method, &url, &headers, body.as_ref(), *timeout_ms).await.map_err(HostError::Refused)?;
            if let Some(output) = output {
                variables.insert(output.clone(), Value::from_json(&serde_json::json!({"status": status, "body": answer})));
            }
            if status >= 400 {
                return Err(HostError::Refused(format!("{url} answered {status}")));
            }
        }
    }
    Ok(())
}

/// Reads the write model and writes through the command service as `system`.
pub struct SystemHost {
    pub commands: Arc<CommandService>,
    /// The event the run answers (a record change, a job's tick).
    pub causation: Option<EventId>,
    pub outbound: super::http::Outbound,
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
    fn outbound(&self) -> &super::http::Outbound {
        &self.outbound
    }

    async fn find(&self, object: &str, filter: &Map<String, Json>, limit: usize) -> Result<Vec<Json>, HostError> {
        // Only the matches are copied out of the write model.
        let mut found =
            self.commands.live_records_where(object, |r| filter.iter().all(|(field, value)| r.get(field).map(Value::to_json).unwrap_or(Json::Null) == *value));
        found.sort_by(|a, b| a.get("id").and_then(Value::as_str).cmp(&b.get("id").and_then(Value::as_str)));
        Ok(found.iter().take(limit).map(record_to_json).collect())
    }

    async fn create(&self, object: &str, data: Map<String, Json>, key: String) -> Result<String, HostError> {
        let command = Command::Create { object: object.to_string(), id: None, data };
        let outcome = self.commands.execute(command, self.meta(key)).await.map_err(host_error)?;
        super::log_warnings(&outcome, "flow");
        Ok(outcome.id)
    }

    async fn update(&self, object: &str, id: &str, patch: Map<String, Json>, key: String) -> Result<(), HostError> {
        let command = Command::Update { object: object.to_string(), id: id.to_string(), patch, expected_version: None };
        let outcome = self.commands.execute(command, self.meta(key)).await.map_err(host_error)?;
        super::log_warnings(&outcome, "flow");
        Ok(())
    }

    async fn delete(&self, object: &str, id: &str, key: String) -> Result<(), HostError> {
        let command = Command::Delete { object: object.to_string(), id: id.to_string(), expected_version: None };
        self.commands.execute(command, self.meta(key)).await.map(|_| ()).map_err(host_error)
    }
}
