//! Approval processes (`ApprovalProcess`): a record is submitted, goes
//! through steps whose approvers decide, and ends approved or rejected (or
//! recalled by its submitter). Each step's approvers are users, roles, or a
//! field of the record naming a user; a step needs the first answer or every
//! approver's (`unanimous`); a rejection ends the process or goes back a
//! step. Field updates run on submission, on each step's decision and at
//! the end. While a process is pending with `lockRecord`, callers cannot
//! change the record. The decisions are events (`approval.*` on
//! `$approvals/{object}/{id}`); [`ApprovalState`] folds them.

use serde_json::Value as Json;

use super::check::{boolean, invalid, name, properties, text};
use super::workflow::{update, FieldUpdate};
use crate::error::DomainError;
use crate::formula::{self, Expr, RecordContext};
use crate::metadata::{Catalog, ObjectDef, SYSTEM_FIELDS};
use crate::time::Timestamp;
use crate::value::Record;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    User(String),
    Role(String),
    /// A field of the record holding a user's id.
    Field(String),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub entry: Option<Expr>,
    pub approvers: Vec<Approver>,
    pub unanimous: bool,
    /// On rejection, back to the previous step (else the process is rejected).
    pub back_to_previous: bool,
    pub on_approve: Vec<FieldUpdate>,
    pub on_reject: Vec<FieldUpdate>,
}

#[derive(Debug, Clone)]
pub struct ApprovalProcess {
    pub name: String,
    pub object: String,
    pub active: bool,
    pub entry: Option<Expr>,
    pub lock_record: bool,
    pub steps: Vec<Step>,
    pub on_submit: Vec<FieldUpdate>,
    pub on_final_approve: Vec<FieldUpdate>,
    pub on_final_reject: Vec<FieldUpdate>,
    pub on_recall: Vec<FieldUpdate>,
}

const PROPERTIES: [&str; 13] = [
    "name",
    "label",
    "object",
    "active",
    "description",
    "entryCriteria",
    "lockRecord",
    "steps",
    "escalation",
    "onSubmit",
    "onFinalApprove",
    "onFinalReject",
    "onRecall",
];
const STEP_PROPERTIES: [&str; 10] =
    ["name", "label", "description", "entryCriteria", "approvers", "behavior", "rejectionBehavior", "onApprove", "onReject", "escalation"];

impl ApprovalProcess {
    pub fn parse(json: &Json, catalog: &Catalog) -> Result<ApprovalProcess, DomainError> {
        let map = properties("approval process", json, &PROPERTIES)?;
        let process_name = name("approval process", map)?;
        let what = format!("approval process '{process_name}'");
        let object_name = text(&what, map, "object")?.ok_or_else(|| invalid(format!("{what}: 'object' is required")))?;
        let object = catalog.get(object_name).ok_or_else(|| invalid(format!("{what}: unknown object '{object_name}'")))?;
        if map.get("escalation").and_then(|e| e.get("enabled")).and_then(Json::as_bool) == Some(true) {
            return Err(invalid(format!("{what}: escalation is not supported yet")));
        }
        let mut steps = Vec::new();
        for step in map.get("steps").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
            steps.push(parse_step(&what, step, object)?);
        }
        if steps.is_empty() {
            return Err(invalid(format!("{what}: a process needs at least one step")));
        }
        Ok(ApprovalProcess {
            name: process_name.to_string(),
            object: object.name.clone(),
            active: boolean(&what, map, "active", true)?,
            entry: criteria(&what, map.get("entryCriteria"), object)?,
            lock_record: boolean(&what, map, "lockRecord", true)?,
            steps,
            on_submit: actions(&format!("{what} onSubmit"), map.get("onSubmit"), object)?,
            on_final_approve: actions(&format!("{what} onFinalApprove"), map.get("onFinalApprove"), object)?,
            on_final_reject: actions(&format!("{what} onFinalReject"), map.get("onFinalReject"), object)?,
            on_recall: actions(&format!("{what} onRecall"), map.get("onRecall"), object)?,
        })
    }

    /// Whether a record may be submitted (its entry criteria hold).
    pub fn admits(&self, record: &Record, now: Timestamp) -> bool {
        self.active && holds(self.entry.as_ref(), record, now)
    }

    /// The first step at or after `from` whose entry criteria hold.
    pub fn step_from(&self, from: usize, record: &Record, now: Timestamp) -> Option<usize> {
        (from..self.steps.len()).find(|i| holds(self.steps[*i].entry.as_ref(), record, now))
    }
}

impl Step {
    /// Whether a user (with these roles) is one of the step's approvers for `record`.
    pub fn may_decide(&self, user: &str, roles: &[String], record: &Record) -> bool {
        self.approvers.iter().any(|a| match a {
            Approver::User(id) => id == user,
            Approver::Role(role) => roles.iter().any(|r| r == role),
            Approver::Field(field) => record.get(field).and_then(|v| v.as_str()) == Some(user),
        })
    }
}

fn holds(expr: Option<&Expr>, record: &Record, now: Timestamp) -> bool {
    expr.is_none_or(|c| formula::truthy(&formula::eval(c, &RecordContext { record, previous: None, now })))
}

fn criteria(what: &str, json: Option<&Json>, object: &ObjectDef) -> Result<Option<Expr>, DomainError> {
    let Some(source) = json.and_then(Json::as_str).filter(|s| !s.trim().is_empty()) else { return Ok(None) };
    let expr = formula::parse(source).map_err(|e| invalid(format!("{what}: entryCriteria: {e}")))?;
    for path in expr.fields() {
        let first = path.split('.').next().unwrap_or(&path);
        if !SYSTEM_FIELDS.contains(&first) && object.field(first).is_none() {
            return Err(invalid(format!("{what}: entryCriteria: unknown field '{path}' of '{}'", object.name)));
        }
    }
    Ok(Some(expr))
}

/// `[{type: field_update, name, config: {field, value}}]`, checked as a
/// workflow rule's field updates are; other action types are refused.
fn actions(what: &str, json: Option<&Json>, object: &ObjectDef) -> Result<Vec<FieldUpdate>, DomainError> {
    let mut out = Vec::new();
    for action in json.and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
        let action_name = action.get("name").and_then(Json::as_str).unwrap_or_default();
        let kind = action.get("type").and_then(Json::as_str).unwrap_or_default();
        let at = format!("{what} action '{action_name}'");
        if kind != "field_update" {
            return Err(invalid(format!("{at}: type '{kind}' is not supported (field_update)")));
        }
        let config = action.get("config");
        let field = config.and_then(|c| c.get("field")).and_then(Json::as_str).ok_or_else(|| invalid(format!("{at}: config needs 'field'")))?;
        out.push(update(&at, action_name, field, config.and_then(|c| c.get("value")), object)?);
    }
    Ok(out)
}

fn parse_step(what: &str, json: &Json, object: &ObjectDef) -> Result<Step, DomainError> {
    let map = properties(&format!("{what} step"), json, &STEP_PROPERTIES)?;
    let step_name = name("step", map)?;
    let what = format!("{what} step '{step_name}'");
    let mut approvers = Vec::new();
    for approver in map.get("approvers").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
        let value = approver.get("value").and_then(Json::as_str).unwrap_or_default().to_string();
        approvers.push(match approver.get("type").and_then(Json::as_str).unwrap_or_default() {
            "user" => Approver::User(value),
            "role" => Approver::Role(value),
            "field" => {
                if object.field(&value).is_none() && !SYSTEM_FIELDS.contains(&value.as_str()) {
                    return Err(invalid(format!("{what}: approver field '{value}' is not a field of '{}'", object.name)));
                }
                Approver::Field(value)
            }
            other => return Err(invalid(format!("{what}: approver type '{other}' is not supported (user, role, field)"))),
        });
    }
    if approvers.is_empty() {
        return Err(invalid(format!("{what}: a step needs approvers")));
    }
    let unanimous = match text(&what, map, "behavior")?.unwrap_or("first_response") {
        "first_response" => false,
        "unanimous" => true,
        other => return Err(invalid(format!("{what}: unknown behavior '{other}'"))),
    };
    let back_to_previous = match text(&what, map, "rejectionBehavior")?.unwrap_or("reject_process") {
        "reject_process" => false,
        "back_to_previous" => true,
        other => return Err(invalid(format!("{what}: unknown rejectionBehavior '{other}'"))),
    };
    Ok(Step {
        name: step_name.to_string(),
        entry: criteria(&what, map.get("entryCriteria"), object)?,
        approvers,
        unanimous,
        back_to_previous,
        on_approve: actions(&format!("{what} onApprove"), map.get("onApprove"), object)?,
        on_reject: actions(&format!("{what} onReject"), map.get("onReject"), object)?,
    })
}

/// Where a record's approval stands, folded from its `approval.*` events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalState {
    /// The process pending, if one is.
    pub pending: Option<Pending>,
    /// The last process's end: `approved`, `rejected` or `recalled`.
    pub last_outcome: Option<String>,
    /// Every submission, answer and recall, oldest first.
    pub history: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub process: String,
    pub step: usize,
    pub submitter: String,
    /// Who approved the current step so far.
    pub approved_by: Vec<String>,
    pub lock: bool,
}

impl ApprovalState {
    pub fn apply(&mut self, event: &crate::event::ProcessEvent, at: Timestamp) {
        use crate::event::ProcessEvent;
        let when = at.to_rfc3339();
        match event {
            ProcessEvent::ApprovalSubmitted(e) => {
                self.pending =
                    Some(Pending { process: e.process.clone(), step: e.step as usize, submitter: e.submitter.clone(), approved_by: Vec::new(), lock: e.lock });
                self.history.push(serde_json::json!({"action": "submitted", "process": e.process, "by": e.submitter, "step": e.step, "at": when}));
            }
            ProcessEvent::ApprovalDecided(e) => {
                let action = if e.approved { "approved" } else { "rejected" };
                self.history
                    .push(serde_json::json!({"action": action, "process": e.process, "by": e.approver, "step": e.step, "comment": e.comment, "at": when}));
                match (&mut self.pending, e.next_step) {
                    (Some(pending), Some(next)) if next as usize == pending.step && e.approved => pending.approved_by.push(e.approver.clone()),
                    (Some(pending), Some(next)) => {
                        pending.step = next as usize;
                        pending.approved_by.clear();
                    }
                    (_, None) => {
                        self.pending = None;
                        self.last_outcome = e.outcome.clone();
                    }
                    // An answer with nothing pending: a log this fold cannot place; keep it in the history only.
                    (None, Some(_)) => {}
                }
            }
            ProcessEvent::ApprovalRecalled(e) => {
                self.history.push(serde_json::json!({"action": "recalled", "process": e.process, "by": e.by, "at": when}));
                self.pending = None;
                self.last_outcome = Some("recalled".into());
            }
            _ => {}
        }
    }
}

/// What an answer does to a pending step: stay (more approvals needed),
/// move to another step, or end the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Stay,
    Step(usize),
    End(&'static str),
}

impl ApprovalProcess {
    /// The effect of `approver` answering `approved` at the pending step.
    /// `matches(entry)` says whether an approver entry is satisfied by someone
    /// who approved (so far, and this answer included).
    pub fn decide(&self, pending: &Pending, approved: bool, satisfied: impl Fn(&Approver) -> bool, record: &Record, now: Timestamp) -> Decision {
        let step = &self.steps[pending.step];
        if !approved {
            return match (step.back_to_previous, pending.step.checked_sub(1)) {
                (true, Some(previous)) => Decision::Step(previous),
                _ => Decision::End("rejected"),
            };
        }
        if step.unanimous && !step.approvers.iter().all(satisfied) {
            return Decision::Stay;
        }
        match self.step_from(pending.step + 1, record, now) {
            Some(next) => Decision::Step(next),
            None => Decision::End("approved"),
        }
    }
}
