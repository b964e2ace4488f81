//! The server's own processes: server-side logic an app declares
//! (`domain::automation`), run as reactions to the log. A process follows
//! committed events like a projection does, but answers with commands
//! through the [`CommandService`], as the `system` principal with the event
//! that caused them as causation; its own progress (checkpoints, webhook
//! deliveries, job runs) is events too, so it survives a crash and shows in
//! the log. Steps carry idempotency keys derived from what caused them, so a
//! step taken again after a crash is not applied twice.
//!
//! - `workflow`: rules' time triggers and `record_change` flows on record changes.
//! - `flows`: running a flow, through a host (the system, or a caller).
//! - `webhooks`: delivery of changes to webhooks' receivers (`http`).
//! - `jobs`: scheduled jobs (cron, interval, once) and runs on demand.
//! - `timers`: durable timers (workflow rules' time triggers, flows' waits).
//!
//! Entry point: [`Processes::start`]; the caller stops them with [`Processes::stop`].

pub mod flows;
mod follow;
mod http;
pub mod jobs;
mod pace;
mod progress;
mod state_at;
mod status;
mod timers;
pub mod webhooks;
mod workflow;

use std::sync::{Arc, Mutex, RwLock};

use domain::automation::{Automation, Job, JobHandler, Webhook};
use domain::event::process::Delivery;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use http::{signature, Outbound, OutboundError};
pub use jobs::{JobRun, JobState};
pub use status::{ProcessStatus, StatusReport};
pub use webhooks::WebhookState;

use crate::service::CommandService;

/// One of the processes' own streams (`$process/..`, `$webhooks/..`,
/// `$jobs/..`, `$approvals/..`): its events decoded, oldest first (one this
/// server cannot read is passed by), and the stream's version.
pub async fn read_process_stream(
    commands: &CommandService,
    stream: &str,
) -> Result<(Vec<(domain::event::EventEnvelope, domain::event::ProcessEvent)>, u64), crate::CommandError> {
    let events = commands.store().read_stream(stream, 0).await?;
    let version = events.last().map_or(0, |e| e.stream_version);
    let decoded = events
        .into_iter()
        .filter_map(|event| match domain::event::codec::decode_envelope_payload(&event, domain::event::registry()) {
            Ok(domain::event::EventPayload::Process(process)) => Some((event, process)),
            _ => None,
        })
        .collect();
    Ok((decoded, version))
}

struct JobEntry {
    job: Job,
    state: Arc<RwLock<JobState>>,
    trigger: mpsc::Sender<jobs::Trigger>,
}

/// The running processes of one node.
pub struct Processes {
    commands: Arc<CommandService>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    statuses: Vec<Arc<ProcessStatus>>,
    webhooks: Vec<(Webhook, Arc<RwLock<WebhookState>>)>,
    jobs: Vec<JobEntry>,
}

/// Why a job could not be run now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("no job named '{0}'")]
    Unknown(String),
    #[error("job '{0}' could not start: {1}")]
    NotStarted(String, String),
}

impl Processes {
    /// Starts a task per concern the app declares (none when it declares nothing).
    pub fn start(commands: Arc<CommandService>, automation: &Automation, outbound: &Outbound) -> Processes {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut statuses = Vec::new();
        let reactions = workflow::Reactions {
            rules: automation.workflows.iter().filter(|w| w.trigger != domain::automation::Trigger::Schedule && !w.time_triggers.is_empty()).cloned().collect(),
            flows: automation.flows.iter().filter(|f| matches!(f.start_kind, domain::automation::FlowStart::RecordChange { .. })).cloned().collect(),
            outbound: outbound.clone(),
        };
        let timed = timers::Timed {
            rules: reactions.rules.iter().filter(|r| !r.time_triggers.is_empty()).cloned().collect(),
            flows: automation.flows.iter().filter(|f| f.waits()).cloned().collect(),
            outbound: outbound.clone(),
        };
        if !reactions.is_empty() {
            let status = Arc::new(ProcessStatus::new(workflow::NAME));
            statuses.push(status.clone());
            tasks.push(tokio::spawn(workflow::run(commands.clone(), Arc::new(reactions), status, stopped.clone())));
        }
        if !timed.rules.is_empty() || !timed.flows.is_empty() {
            let status = Arc::new(ProcessStatus::new(timers::NAME));
            statuses.push(status.clone());
            tasks.push(tokio::spawn(timers::run(commands.clone(), Arc::new(timed), status, stopped.clone())));
        }
        let mut webhooks = Vec::new();
        for hook in automation.webhooks.iter().filter(|h| h.active) {
            let state = Arc::new(RwLock::new(WebhookState::default()));
            let status = Arc::new(ProcessStatus::new(&format!("webhook:{}", hook.name)));
            statuses.push(status.clone());
            tasks.push(tokio::spawn(webhooks::run(commands.clone(), hook.clone(), state.clone(), status, outbound.clone(), stopped.clone())));
            webhooks.push((hook.clone(), state));
        }
        let mut jobs = Vec::new();
        for job in &automation.jobs {
            let work = match &job.handler {
                JobHandler::Workflow(rule) => jobs::Work::Rule(automation.workflow(rule).expect("a job's rule is checked at load").clone()),
                JobHandler::Flow(flow) => jobs::Work::Flow(Box::new(automation.flow(flow).expect("a job's flow is checked at load").clone()), outbound.clone()),
            };
            let state = Arc::new(RwLock::new(JobState::default()));
            let status = Arc::new(ProcessStatus::new(&format!("job:{}", job.name)));
            statuses.push(status.clone());
            let (trigger, triggers) = mpsc::channel(16);
            tasks.push(tokio::spawn(jobs::run(commands.clone(), job.clone(), work, state.clone(), status, triggers, stopped.clone())));
            jobs.push(JobEntry { job: job.clone(), state, trigger });
        }
        Processes { commands, stop, tasks: Mutex::new(tasks), statuses, webhooks, jobs }
    }

    /// Stops every process and waits for them (each records where it got).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("process tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Stops every task wherever it is, recording nothing, as a crash would
    /// (what a process does next time must not depend on a clean stop).
    /// Returns once the tasks are gone and the appends they left under way
    /// have ended, as a crashed node's appends end with it: processes started
    /// again then read a log that no dead task still writes to.
    pub async fn abort(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("process tasks lock"));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        self.commands.settled().await;
    }

    pub fn reports(&self) -> Vec<StatusReport> {
        self.statuses.iter().map(|s| s.report()).collect()
    }

    /// Every job with its schedule, next tick and last run.
    pub fn jobs(&self) -> Vec<serde_json::Value> {
        self.jobs
            .iter()
            .map(|entry| {
                let state = entry.state.read().expect("job state lock");
                let handler = match &entry.job.handler {
                    JobHandler::Workflow(rule) => format!("workflow:{rule}"),
                    JobHandler::Flow(flow) => format!("flow:{flow}"),
                };
                serde_json::json!({
                    "name": entry.job.name,
                    "schedule": entry.job.schedule.to_json(),
                    "handler": handler,
                    "enabled": entry.job.enabled,
                    "nextRunAt": state.next_tick.map(|t| domain::Timestamp::from_micros(t).to_rfc3339()),
                    "lastRun": state.runs.back().map(|r| r.to_json(&entry.job.name)),
                })
            })
            .collect()
    }

    /// A job's runs, newest first.
    pub fn job_runs(&self, name: &str, limit: usize) -> Option<Vec<serde_json::Value>> {
        let entry = self.jobs.iter().find(|e| e.job.name == name)?;
        let state = entry.state.read().expect("job state lock");
        Some(state.runs.iter().rev().take(limit).map(|r| r.to_json(name)).collect())
    }

    /// Runs a job now (a run of its own, besides its schedule): the run's id once claimed.
    pub async fn trigger(&self, name: &str) -> Result<String, TriggerError> {
        let entry = self.jobs.iter().find(|e| e.job.name == name).ok_or_else(|| TriggerError::Unknown(name.to_string()))?;
        let (answer, answered) = oneshot::channel();
        let not_started = |why: &str| TriggerError::NotStarted(name.to_string(), why.to_string());
        entry.trigger.send(answer).await.map_err(|_| not_started("the server is stopping"))?;
        answered.await.map_err(|_| not_started("the server is stopping"))?.map_err(|e| not_started(&e))
    }

    /// The webhooks that send, with what they delivered and failed.
    pub fn webhooks(&self) -> Vec<serde_json::Value> {
        self.webhooks
            .iter()
            .map(|(hook, state)| {
                let state = state.read().expect("webhook state lock");
                serde_json::json!({
                    "name": hook.name,
                    "object": hook.object,
                    "triggers": hook.triggers.iter().map(|t| t.name()).collect::<Vec<_>>(),
                    "url": hook.url,
                    "delivered": state.delivered,
                    "failed": state.failed,
                    "through": state.through,
                })
            })
            .collect()
    }

    /// A webhook's recent deliveries, newest first.
    pub fn deliveries(&self, name: &str, limit: usize) -> Option<Vec<Delivery>> {
        let (_, state) = self.webhooks.iter().find(|(hook, _)| hook.name == name)?;
        let state = state.read().expect("webhook state lock");
        Some(state.recent.iter().rev().take(limit).cloned().collect())
    }
}

/// Warnings of a record write a process made (a validation rule of severity
/// warning, a workflow rule's update passed by) go to the log, since no
/// caller sees the answer: the record, the field and the code, not the
/// message, which may quote a value (a state machine's `from -> to`).
pub(crate) fn log_warnings(outcome: &crate::service::Outcome, process: &str) {
    for warning in &outcome.warnings {
        tracing::warn!(process, object = %outcome.object, id = %outcome.id, field = %warning.field, code = warning.code.as_str(), "a process's write warned");
    }
}
