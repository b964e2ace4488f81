//! Events of the server's own processes (the workflow runtime, webhook
//! dispatch, scheduled jobs). Their progress is in the log like everything
//! else, so it survives a crash, every node sees it, and two nodes racing for
//! the same step meet at an append with an expected version: one wins.
//! Streams: `$process/{name}`, `$webhooks/{name}`, `$jobs/{name}`, `$timers/{timer}`, `$approvals/{object}/{id}`, `$automation/{kind}/{name}`.

use bincode::{Decode, Encode};

/// How far a process has handled the log: everything at or below `position`
/// is done (its commands carry idempotency keys, so a step seen again after
/// a crash is not applied twice).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ProcessProgress {
    pub process: String,
    pub position: u64,
}

/// One delivery of a change to a webhook's receiver, after its last attempt.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct Delivery {
    /// What the receiver deduplicates on: the same for every attempt, on every node.
    pub delivery_id: String,
    /// The log position of the change delivered.
    pub position: u64,
    /// `create`, `update` or `delete`.
    pub trigger: String,
    pub object: String,
    pub record_id: String,
    /// The receiver's last HTTP status (0: no answer).
    pub status: u16,
    pub attempts: u32,
    pub delivered: bool,
    pub error: Option<String>,
    /// When the last attempt ended, in microseconds since the epoch.
    pub at: i64,
    pub duration_ms: u64,
}

/// Deliveries a webhook finished, and the log position it has handled through.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct WebhookDeliveries {
    pub webhook: String,
    pub deliveries: Vec<Delivery>,
    pub through: u64,
}

/// A node claimed one run of a job (a scheduled tick, or a manual trigger).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct JobStarted {
    pub job: String,
    pub run_id: String,
    /// The tick's scheduled time (microseconds); for a manual run, when it was asked for.
    pub tick: i64,
    pub manual: bool,
}

/// A job run ended.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct JobFinished {
    pub job: String,
    pub run_id: String,
    /// `success`, `failed` or `timeout`.
    pub status: String,
    pub attempts: u32,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Records the run changed.
    pub changed: u64,
}

/// A durable timer was set (stream `$timers/{timer}`, its first event).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct TimerSet {
    pub timer: String,
    /// When it is due, in microseconds since the epoch.
    pub due: i64,
    /// What it does when due (`rule_time_trigger`).
    pub kind: String,
    /// Its arguments, as JSON.
    pub data: String,
}

/// A timer's action was done (its stream's second event: one node wins it).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct TimerFired {
    pub timer: String,
    /// What came of it (for the log): `done`, `skipped: ...` or `failed: ...`.
    pub outcome: String,
}

/// A record was submitted for approval (stream `$approvals/{object}/{id}`).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ApprovalSubmitted {
    pub process: String,
    pub object: String,
    pub record_id: String,
    pub submitter: String,
    /// The first step whose entry criteria held.
    pub step: u32,
    /// Callers cannot change the record until the process ends.
    pub lock: bool,
}

/// An approver answered the current step.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ApprovalDecided {
    pub process: String,
    pub step: u32,
    pub approver: String,
    pub approved: bool,
    pub comment: Option<String>,
    /// The step the process is at after this answer (`None`: it ended).
    pub next_step: Option<u32>,
    /// How it ended: `approved` or `rejected` (with `next_step` none).
    pub outcome: Option<String>,
}

/// The submitter (or an administrator) took the record back.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ApprovalRecalled {
    pub process: String,
    pub by: String,
}

/// An automation definition was stored, changed or removed through the
/// metadata API (stream `$automation/{kind}/{name}`); it overrides the app
/// file's definition of the same kind and name.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct AutomationDefined {
    /// `workflow`, `flow`, `webhook`, `job` or `approval`.
    pub kind: String,
    pub name: String,
    /// The definition's JSON (`None`: removed).
    pub definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    Progress(ProcessProgress),
    Deliveries(WebhookDeliveries),
    JobStarted(JobStarted),
    JobFinished(JobFinished),
    TimerSet(TimerSet),
    TimerFired(TimerFired),
    ApprovalSubmitted(ApprovalSubmitted),
    ApprovalDecided(ApprovalDecided),
    ApprovalRecalled(ApprovalRecalled),
    AutomationDefined(AutomationDefined),
}

impl ProcessEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            ProcessEvent::Progress(_) => "process.progress",
            ProcessEvent::Deliveries(_) => "webhook.deliveries",
            ProcessEvent::JobStarted(_) => "job.started",
            ProcessEvent::JobFinished(_) => "job.finished",
            ProcessEvent::TimerSet(_) => "timer.set",
            ProcessEvent::TimerFired(_) => "timer.fired",
            ProcessEvent::ApprovalSubmitted(_) => "approval.submitted",
            ProcessEvent::ApprovalDecided(_) => "approval.decided",
            ProcessEvent::ApprovalRecalled(_) => "approval.recalled",
            ProcessEvent::AutomationDefined(_) => "automation.defined",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ProcessEvent::Progress(e) => json!({"process": e.process, "position": e.position}),
            ProcessEvent::Deliveries(e) => json!({
                "webhook": e.webhook,
                "through": e.through,
                "deliveries": e.deliveries.iter().map(Delivery::to_json).collect::<Vec<_>>(),
            }),
            ProcessEvent::JobStarted(e) => json!({"job": e.job, "runId": e.run_id, "tick": e.tick, "manual": e.manual}),
            ProcessEvent::JobFinished(e) => json!({
                "job": e.job, "runId": e.run_id, "status": e.status, "attempts": e.attempts,
                "durationMs": e.duration_ms, "error": e.error, "changed": e.changed,
            }),
            ProcessEvent::TimerSet(e) => json!({"timer": e.timer, "due": e.due, "kind": e.kind, "data": e.data}),
            ProcessEvent::TimerFired(e) => json!({"timer": e.timer, "outcome": e.outcome}),
            ProcessEvent::ApprovalSubmitted(e) => json!({
                "process": e.process, "object": e.object, "recordId": e.record_id, "submitter": e.submitter, "step": e.step, "lock": e.lock,
            }),
            ProcessEvent::ApprovalDecided(e) => json!({
                "process": e.process, "step": e.step, "approver": e.approver, "approved": e.approved, "comment": e.comment,
                "nextStep": e.next_step, "outcome": e.outcome,
            }),
            ProcessEvent::ApprovalRecalled(e) => json!({"process": e.process, "by": e.by}),
            ProcessEvent::AutomationDefined(e) => json!({
                "kind": e.kind, "name": e.name,
                "definition": e.definition.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
            }),
        }
    }
}

impl Delivery {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "deliveryId": self.delivery_id,
            "position": self.position,
            "trigger": self.trigger,
            "object": self.object,
            "recordId": self.record_id,
            "status": self.status,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "error": self.error,
            "at": crate::time::Timestamp::from_micros(self.at).to_rfc3339(),
            "durationMs": self.duration_ms,
        })
    }
}
