//! Flows (`Flow`): a graph of nodes joined by edges, run with variables.
//! This server runs `api` flows (started by `POST /api/v1/automation/trigger/{name}`),
//! `autolaunched` flows (by a job, `handler: "flow:<name>"`, or the same
//! route) and `record_change` flows (when a record changes, like a workflow
//! rule; the start node's `config` says `objectName`, `triggerType` and
//! `criteria`). Nodes: `start`, `end`, `decision` (the first outgoing edge
//! whose `condition` holds, else the edge marked `isDefault` or without a
//! condition), `assignment`, `get_record`, `create_record`, `update_record`,
//! `delete_record`, `loop` (over a list, such as `get_record` with `all`),
//! `http_request` (`http://`) and `wait` (the run resumes later from a
//! durable timer). Values and conditions are formulas over the variables
//! (`record.amount > 100`; a value is a formula when it is a string beginning
//! with `=`). A node that fails follows its `fault` edge if it has one, else
//! the flow's `errorHandling` decides (`fail` or `continue`). Other node types
//! (`script`, `screen`, `subflow`, ...) and graphs with a cycle no
//! loop node bounds are refused at load, naming the flow and the node.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use super::check::{boolean, invalid, properties, text};
use super::workflow::{Trigger, UpdateValue};
use crate::error::DomainError;
use crate::formula::{self, Expr, RecordContext};
use crate::metadata::{Catalog, ObjectDef, SYSTEM_FIELDS};
use crate::time::Timestamp;
use crate::value::{Record, Value};

/// How a flow starts.
#[derive(Debug, Clone)]
pub enum FlowStart {
    Api,
    Autolaunched,
    RecordChange { object: String, trigger: Trigger, criteria: Option<Expr> },
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Start,
    End,
    Decision,
    Assignment(Vec<(String, UpdateValue)>),
    /// The first match by id (or, with `all`, every match up to [`MAX_LIST`]).
    GetRecord {
        object: String,
        filter: Vec<(String, UpdateValue)>,
        output: String,
        all: bool,
    },
    CreateRecord {
        object: String,
        fields: Vec<(String, UpdateValue)>,
        output: Option<String>,
    },
    UpdateRecord {
        object: String,
        record_id: UpdateValue,
        fields: Vec<(String, UpdateValue)>,
    },
    DeleteRecord {
        object: String,
        record_id: UpdateValue,
    },
    /// For each item of a list: `item` set, then the body edge; after the
    /// last, the done edge (the one marked `isDefault` or labelled `done`).
    Loop {
        collection: UpdateValue,
        item: String,
    },
    /// The run stops here and resumes (as the system) after `duration_ms`, or
    /// at the time `until` gives: a durable timer holds its state meanwhile.
    Wait {
        duration_ms: Option<u64>,
        until: Option<UpdateValue>,
    },
    /// An HTTP call (`http://` only): `{status, body}` into `output`.
    HttpRequest {
        method: String,
        url: UpdateValue,
        headers: Vec<(String, UpdateValue)>,
        body: Option<UpdateValue>,
        output: Option<String>,
        timeout_ms: u64,
    },
}

/// Most records a `get_record` with `all` reads, and most items a loop walks.
pub const MAX_LIST: usize = 10_000;

#[derive(Debug, Clone)]
pub struct FlowNode {
    pub id: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub struct FlowEdge {
    pub source: usize,
    pub target: usize,
    pub condition: Option<Expr>,
    pub fault: bool,
    pub is_default: bool,
    /// The edge a loop takes after its last item (`isDefault` or label `done`).
    pub done: bool,
}

/// What a failed node does when it has no fault edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Fail,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub start_kind: FlowStart,
    /// `runAs: system` (else the caller who started it, for api flows; record
    /// changes and jobs always run as the system).
    pub run_as_system: bool,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub nodes: Vec<FlowNode>,
    pub edges: Vec<FlowEdge>,
    pub start: usize,
    pub on_error: OnError,
    pub active: bool,
}

const PROPERTIES: [&str; 14] =
    ["name", "label", "description", "version", "status", "template", "type", "variables", "nodes", "edges", "active", "runAs", "errorHandling", "tags"];
const SUPPORTED: [&str; 11] =
    ["start", "end", "decision", "assignment", "get_record", "create_record", "update_record", "delete_record", "loop", "http_request", "wait"];

impl Flow {
    pub fn parse(json: &Json, catalog: &Catalog) -> Result<Flow, DomainError> {
        let map = properties("flow", json, &PROPERTIES)?;
        let flow_name = map.get("name").and_then(Json::as_str).ok_or_else(|| invalid("a flow needs a 'name'".into()))?;
        if flow_name.is_empty() || !flow_name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(invalid(format!("flow '{flow_name}': a name is lowercase snake_case")));
        }
        let what = format!("flow '{flow_name}'");
        let kind = text(&what, map, "type")?.ok_or_else(|| invalid(format!("{what}: 'type' is required")))?;
        if !["api", "autolaunched", "record_change"].contains(&kind) {
            return Err(invalid(format!("{what}: type '{kind}' cannot run here (api, autolaunched and record_change flows do)")));
        }
        let mut known: BTreeSet<String> = BTreeSet::new();
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for variable in map.get("variables").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
            let variable = properties(&format!("{what} variable"), variable, &["name", "type", "isInput", "isOutput"])?;
            let name = variable.get("name").and_then(Json::as_str).ok_or_else(|| invalid(format!("{what}: a variable needs a 'name'")))?;
            known.insert(name.to_string());
            if boolean(&what, variable, "isInput", false)? {
                inputs.push(name.to_string());
            }
            if boolean(&what, variable, "isOutput", false)? {
                outputs.push(name.to_string());
            }
        }
        if kind == "record_change" {
            known.extend(["record".to_string(), "previous".to_string()]);
        }
        let list = |key: &str| map.get(key).and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default();
        // Output variables of nodes are variables too.
        for node in list("nodes") {
            for key in ["/config/outputVariable", "/config/itemVariable"] {
                if let Some(output) = node.pointer(key).and_then(Json::as_str) {
                    known.insert(output.to_string());
                }
            }
        }
        let mut nodes = Vec::new();
        let mut start_kind = match kind {
            "api" => FlowStart::Api,
            _ => FlowStart::Autolaunched,
        };
        for node in list("nodes") {
            let id = node.get("id").and_then(Json::as_str).unwrap_or_default().to_string();
            let node_type = node.get("type").and_then(Json::as_str).unwrap_or_default();
            let at = format!("{what} node '{id}'");
            if id.is_empty() {
                return Err(invalid(format!("{what}: every node needs an 'id'")));
            }
            if nodes.iter().any(|n: &FlowNode| n.id == id) {
                return Err(invalid(format!("{at}: the id is used twice")));
            }
            if !SUPPORTED.contains(&node_type) {
                return Err(invalid(format!(
                    "{at}: node type '{node_type}' is not supported by this server (start, end, decision, assignment, get_record, create_record, update_record, delete_record)"
                )));
            }
            let config = node.get("config").and_then(Json::as_object).cloned().unwrap_or_default();
            let object = |key: &str| -> Result<std::sync::Arc<ObjectDef>, DomainError> {
                let name = config.get(key).and_then(Json::as_str).ok_or_else(|| invalid(format!("{at}: config needs '{key}'")))?;
                catalog.get(name).cloned().ok_or_else(|| invalid(format!("{at}: unknown object '{name}'")))
            };
            let kind = match node_type {
                "start" => {
                    if kind == "record_change" {
                        let target = object("objectName")?;
                        let trigger = match config.get("triggerType").and_then(Json::as_str).unwrap_or("on_create_or_update") {
                            "on_create" => Trigger::Create,
                            "on_update" => Trigger::Update,
                            "on_create_or_update" => Trigger::CreateOrUpdate,
                            other => return Err(invalid(format!("{at}: triggerType '{other}' (on_create, on_update, on_create_or_update)"))),
                        };
                        let criteria = match config.get("criteria").and_then(Json::as_str) {
                            Some(source) if !source.trim().is_empty() => Some(compile(&at, source, &["record", "previous"].map(String::from).into())?),
                            _ => None,
                        };
                        start_kind = FlowStart::RecordChange { object: target.name.clone(), trigger, criteria };
                    }
                    NodeKind::Start
                }
                "end" => NodeKind::End,
                "decision" => NodeKind::Decision,
                "assignment" => {
                    let mut assignments = Vec::new();
                    for item in config.get("assignments").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
                        let variable = item.get("variable").and_then(Json::as_str).ok_or_else(|| invalid(format!("{at}: an assignment needs 'variable'")))?;
                        if !known.contains(variable) {
                            return Err(invalid(format!("{at}: unknown variable '{variable}'")));
                        }
                        assignments.push((variable.to_string(), value(&at, item.get("value").unwrap_or(&Json::Null), &known)?));
                    }
                    NodeKind::Assignment(assignments)
                }
                "get_record" => {
                    let target = object("objectName")?;
                    let output = config.get("outputVariable").and_then(Json::as_str).ok_or_else(|| invalid(format!("{at}: config needs 'outputVariable'")))?;
                    NodeKind::GetRecord {
                        object: target.name.clone(),
                        filter: fields(&at, &config, "filter", &target, &known)?,
                        output: output.to_string(),
                        all: config.get("all").and_then(Json::as_bool).unwrap_or(false),
                    }
                }
                "create_record" => {
                    let target = object("objectName")?;
                    let output = config.get("outputVariable").and_then(Json::as_str).map(str::to_string);
                    NodeKind::CreateRecord { object: target.name.clone(), fields: fields(&at, &config, "fields", &target, &known)?, output }
                }
                "update_record" => {
                    let target = object("objectName")?;
                    let record_id = value(&at, config.get("recordId").ok_or_else(|| invalid(format!("{at}: config needs 'recordId'")))?, &known)?;
                    NodeKind::UpdateRecord { object: target.name.clone(), record_id, fields: fields(&at, &config, "fields", &target, &known)? }
                }
                "delete_record" => {
                    let target = object("objectName")?;
                    let record_id = value(&at, config.get("recordId").ok_or_else(|| invalid(format!("{at}: config needs 'recordId'")))?, &known)?;
                    NodeKind::DeleteRecord { object: target.name.clone(), record_id }
                }
                "wait" => {
                    if kind == "api" && text(&what, map, "runAs")? != Some("system") {
                        return Err(invalid(format!(
                            "{at}: a flow that waits runs as the system (runAs: system): no caller's session is sure to last until it resumes"
                        )));
                    }
                    let duration_ms = config.get("durationMs").and_then(Json::as_u64);
                    let until = config.get("until").map(|u| value(&at, u, &known)).transpose()?;
                    if duration_ms.is_none() == until.is_none() {
                        return Err(invalid(format!("{at}: a wait needs 'durationMs' or 'until' (a datetime formula), one of them")));
                    }
                    NodeKind::Wait { duration_ms, until }
                }
                "loop" => {
                    let collection = value(&at, config.get("collection").ok_or_else(|| invalid(format!("{at}: config needs 'collection' (a list)")))?, &known)?;
                    let item = config.get("itemVariable").and_then(Json::as_str).ok_or_else(|| invalid(format!("{at}: config needs 'itemVariable'")))?;
                    NodeKind::Loop { collection, item: item.to_string() }
                }
                _ => {
                    let url = value(&at, config.get("url").ok_or_else(|| invalid(format!("{at}: config needs 'url'")))?, &known)?;
                    if let UpdateValue::Literal(Json::String(literal)) = &url {
                        if !super::is_http_url(literal) {
                            return Err(invalid(format!("{at}: 'url' must be an http:// or https:// URL")));
                        }
                    }
                    let method = config.get("method").and_then(Json::as_str).unwrap_or("GET").to_ascii_uppercase();
                    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                        return Err(invalid(format!("{at}: unknown method '{method}'")));
                    }
                    let mut headers = Vec::new();
                    for (name, header) in config.get("headers").and_then(Json::as_object).into_iter().flatten() {
                        headers.push((name.clone(), value(&at, header, &known)?));
                    }
                    let body = config.get("body").map(|b| value(&at, b, &known)).transpose()?;
                    let output = config.get("outputVariable").and_then(Json::as_str).map(str::to_string);
                    let timeout_ms = node.get("timeoutMs").or_else(|| config.get("timeoutMs")).and_then(Json::as_u64).unwrap_or(10_000).clamp(100, 300_000);
                    NodeKind::HttpRequest { method, url, headers, body, output, timeout_ms }
                }
            };
            nodes.push(FlowNode { id, kind });
        }
        let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        let mut edges = Vec::new();
        for edge in list("edges") {
            let edge = properties(&format!("{what} edge"), edge, &["id", "source", "target", "condition", "type", "label", "isDefault"])?;
            let end = |key: &str| -> Result<usize, DomainError> {
                let id = edge.get(key).and_then(Json::as_str).unwrap_or_default();
                index.get(id).copied().ok_or_else(|| invalid(format!("{what}: an edge's {key} names unknown node '{id}'")))
            };
            let (source, target) = (end("source")?, end("target")?);
            let condition = match edge.get("condition").and_then(Json::as_str) {
                Some(source_text) if !source_text.trim().is_empty() => Some(compile(&format!("{what} edge from '{}'", nodes[source].id), source_text, &known)?),
                _ => None,
            };
            let fault = edge.get("type").and_then(Json::as_str) == Some("fault");
            let is_default = boolean(&what, edge, "isDefault", false)?;
            let done = matches!(nodes[source].kind, NodeKind::Loop { .. }) && (is_default || edge.get("label").and_then(Json::as_str) == Some("done"));
            edges.push(FlowEdge { source, target, condition, fault, is_default, done });
        }
        for (i, node) in nodes.iter().enumerate() {
            if matches!(node.kind, NodeKind::Loop { .. }) {
                let body = edges.iter().filter(|e| e.source == i && !e.fault && !e.done).count();
                if body != 1 {
                    return Err(invalid(format!(
                        "{what} node '{}': a loop needs one body edge and may have one done edge (isDefault or label 'done'); it has {body} body edges",
                        node.id
                    )));
                }
            }
        }
        let starts: Vec<usize> = nodes.iter().enumerate().filter(|(_, n)| matches!(n.kind, NodeKind::Start)).map(|(i, _)| i).collect();
        let [start] = starts[..] else {
            return Err(invalid(format!("{what}: a flow needs exactly one start node (it has {})", starts.len())));
        };
        // Edges back into a loop node close its body: the loop's list bounds them.
        let forward: Vec<FlowEdge> = edges.iter().filter(|e| !matches!(nodes[e.target].kind, NodeKind::Loop { .. })).cloned().collect();
        if let Some(node) = find_cycle(nodes.len(), &forward) {
            return Err(invalid(format!("{what} node '{}': the graph has a cycle through it that no loop node bounds, so it might never end", nodes[node].id)));
        }
        let on_error = match map.get("errorHandling").and_then(|e| e.get("strategy")).and_then(Json::as_str).unwrap_or("fail") {
            "fail" => OnError::Fail,
            "continue" => OnError::Continue,
            other => return Err(invalid(format!("{what}: errorHandling strategy '{other}' is not supported (fail, continue)"))),
        };
        let status_active = map.get("status").and_then(Json::as_str).is_none_or(|s| s == "active");
        Ok(Flow {
            name: flow_name.to_string(),
            start_kind,
            run_as_system: text(&what, map, "runAs")? == Some("system"),
            inputs,
            outputs,
            nodes,
            edges,
            start,
            on_error,
            active: status_active && boolean(&what, map, "active", true)?,
        })
    }

    /// The node after `node`: on success the first edge whose condition
    /// holds (conditions in order), else the default edge; after a failure,
    /// its fault edge. `None` ends the flow.
    pub fn next(&self, node: usize, failed: bool, variables: &Record, now: Timestamp) -> Option<usize> {
        let out: Vec<&FlowEdge> = self.edges.iter().filter(|e| e.source == node && e.fault == failed).collect();
        let holds = |e: &&&FlowEdge| {
            e.condition.as_ref().is_some_and(|c| formula::truthy(&formula::eval(c, &RecordContext { record: variables, previous: None, now })))
        };
        out.iter().find(holds).or_else(|| out.iter().find(|e| e.is_default)).or_else(|| out.iter().find(|e| e.condition.is_none())).map(|e| e.target)
    }

    /// Whether a run may stop at a wait node.
    pub fn waits(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n.kind, NodeKind::Wait { .. }))
    }

    /// A node's index by its id.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// A loop node's body edge and done edge.
    pub fn loop_edges(&self, node: usize) -> (Option<usize>, Option<usize>) {
        let body = self.edges.iter().find(|e| e.source == node && !e.fault && !e.done).map(|e| e.target);
        let done = self.edges.iter().find(|e| e.source == node && e.done).map(|e| e.target);
        (body, done)
    }

    /// Whether this flow reacts to a change of `object`, and its criteria hold.
    pub fn reacts_to(&self, object: &str, change: super::Change, record: &Record, previous: Option<&Record>, now: Timestamp) -> bool {
        let FlowStart::RecordChange { object: target, trigger, criteria } = &self.start_kind else { return false };
        if !self.active || target != object || !trigger.fires_on(change) {
            return false;
        }
        let variables = Self::change_variables(record, previous);
        criteria.as_ref().is_none_or(|c| formula::truthy(&formula::eval(c, &RecordContext { record: &variables, previous: None, now })))
    }

    /// The variables a record change starts with: `record` and `previous`.
    pub fn change_variables(record: &Record, previous: Option<&Record>) -> Record {
        let mut variables = Record::new();
        variables.insert("record".to_string(), Value::from_json(&crate::value::record_to_json(record)));
        variables.insert("previous".to_string(), previous.map(|p| Value::from_json(&crate::value::record_to_json(p))).unwrap_or(Value::Null));
        variables
    }
}

/// A value or formula as the node's config gives it, evaluated over the variables.
pub fn evaluate(value: &UpdateValue, variables: &Record, now: Timestamp) -> Json {
    value.evaluate(variables, None, now)
}

fn compile(what: &str, source: &str, known: &BTreeSet<String>) -> Result<Expr, DomainError> {
    let expr = formula::parse(source).map_err(|e| invalid(format!("{what}: {e}")))?;
    for path in expr.fields() {
        let first = path.split('.').next().unwrap_or(&path);
        if !known.contains(first) {
            return Err(invalid(format!("{what}: unknown variable '{first}'")));
        }
    }
    Ok(expr)
}

fn value(what: &str, json: &Json, known: &BTreeSet<String>) -> Result<UpdateValue, DomainError> {
    Ok(match json {
        Json::String(s) if s.starts_with('=') => UpdateValue::Formula(compile(what, &s[1..], known)?),
        other => UpdateValue::Literal(other.clone()),
    })
}

fn fields(what: &str, config: &Map<String, Json>, key: &str, object: &ObjectDef, known: &BTreeSet<String>) -> Result<Vec<(String, UpdateValue)>, DomainError> {
    let mut out = Vec::new();
    if let Some(given) = config.get(key) {
        let given = given.as_object().ok_or_else(|| invalid(format!("{what}: '{key}' must be an object of field: value")))?;
        for (field, json) in given {
            if object.field(field).is_none() && !SYSTEM_FIELDS.contains(&field.as_str()) {
                return Err(invalid(format!("{what}: unknown field '{field}' of '{}'", object.name)));
            }
            out.push((field.clone(), value(what, json, known)?));
        }
    }
    Ok(out)
}

/// A node on a cycle, if the graph has one (depth-first, colours).
fn find_cycle(nodes: usize, edges: &[FlowEdge]) -> Option<usize> {
    fn visit(node: usize, edges: &[FlowEdge], colour: &mut [u8]) -> Option<usize> {
        colour[node] = 1;
        for edge in edges.iter().filter(|e| e.source == node) {
            match colour[edge.target] {
                1 => return Some(edge.target),
                0 => {
                    if let Some(found) = visit(edge.target, edges, colour) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        colour[node] = 2;
        None
    }
    let mut colour = vec![0u8; nodes];
    (0..nodes).find_map(|n| if colour[n] == 0 { visit(n, edges, &mut colour) } else { None })
}
