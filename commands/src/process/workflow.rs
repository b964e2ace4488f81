//! The workflow runtime: follows the log and, for each record created or
//! updated, starts the time triggers of the workflow rules that acted on the
//! write, then runs the object's `record_change` flows (as the system; run
//! id: the flow and the event).
//!
//! Rules' immediate field updates are not here: they join the write that
//! fires them, before it is saved (`domain::automation::before_save`, applied
//! by the command service), and the event names the rules (`automated`).
//! Timers are keyed by the rule, the trigger and the event, so an event
//! handled again after a crash sets nothing twice.

use std::sync::Arc;

use domain::automation::{Change, Flow, FlowStart, WorkflowRule};
use domain::event::{registry, EventEnvelope, EventPayload, StreamId};
use domain::time::Timestamp;
use tokio::sync::watch;

use super::flows::{self, Ended, FlowError, SystemHost};
use super::follow::Follower;
use super::pace::pause;
use super::progress;
use super::state_at::{before_update, record_after};
use super::status::ProcessStatus;
use super::timers;
use crate::service::CommandService;
use crate::CommandError;

/// How rules' own updates were keyed when they were events of their own.
const LEGACY_KEY_PREFIX: &str = "$wf/";

/// The process's name (its progress stream is `$process/workflow`).
pub const NAME: &str = "workflow";

pub(crate) async fn run(commands: Arc<CommandService>, rules: Arc<Reactions>, status: Arc<ProcessStatus>, mut stop: watch::Receiver<bool>) {
    let Some((mut progress, start)) = progress::resume_or_start(&commands, NAME, &status, &mut stop).await else { return };
    let mut follower = Follower::new(commands.store().clone(), start);
    status.at(start, follower.head());
    loop {
        let Some(batch) = follower.next_or_stop(256, &status, &mut stop).await else { break };
        // A record's events are handled in their order; different records'
        // side by side, so their writes share the store's commits (one
        // fsync for many) instead of taking one each.
        let mut by_stream: Vec<Vec<&EventEnvelope>> = Vec::new();
        let mut slot: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for event in &batch {
            let index = *slot.entry(event.stream.as_str()).or_insert_with(|| {
                by_stream.push(Vec::new());
                by_stream.len() - 1
            });
            by_stream[index].push(event);
        }
        let streams = by_stream.into_iter().map(|events| {
            let (commands, rules, status, mut stop) = (&commands, &rules, &status, stop.clone());
            async move {
                for event in events {
                    // A store failure is retried (the event is handled again, its
                    // done steps replayed by their keys); a refused step is logged.
                    let mut wait = 100;
                    while let Err(error) = handle(commands, rules, status, event).await {
                        status.failed(format!("position {}: {error}", event.position));
                        if pause(&mut stop, wait).await {
                            return false;
                        }
                        wait = (wait * 2).min(10_000);
                    }
                }
                true
            }
        });
        if !futures_util::future::join_all(streams).await.into_iter().all(|done| done) {
            return;
        }
        status.at(follower.position, follower.head());
        if let Err(error) = progress.save(&commands, follower.position, false).await {
            status.failed(format!("saving its progress: {error}"));
        }
    }
    let _ = progress.save(&commands, follower.position, true).await;
}

/// What reacts to committed record changes: the workflow rules with time
/// triggers (started when a rule acted on a write) and the `record_change` flows.
#[derive(Debug)]
pub(crate) struct Reactions {
    pub rules: Vec<WorkflowRule>,
    pub flows: Vec<Flow>,
    /// What the flows call out with.
    pub outbound: super::http::Outbound,
}

impl Reactions {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.flows.is_empty()
    }

    fn watches(&self, object: &str) -> bool {
        self.rules.iter().any(|r| r.object == object && !r.time_triggers.is_empty())
            || self.flows.iter().any(|f| matches!(&f.start_kind, FlowStart::RecordChange { object: o, .. } if o == object))
    }
}

/// Starts the time triggers of the rules that acted on one event, and runs
/// its object's `record_change` flows. Errors are the store's (retry).
async fn handle(commands: &Arc<CommandService>, reactions: &Reactions, status: &ProcessStatus, event: &EventEnvelope) -> Result<(), CommandError> {
    let stream = StreamId(event.stream.clone());
    let Some((object, id)) = stream.record_parts() else { return Ok(()) };
    if !reactions.watches(object) || !matches!(event.event_type.as_str(), "record.created" | "record.updated") {
        return Ok(());
    }
    // A rule's own write, from a log written before rules joined the write
    // that fires them: what it caused was handled then.
    if caused_by_rule(event) {
        return Ok(());
    }
    let payload = domain::event::codec::decode_envelope_payload(event, registry())?;
    // A create carries its record; an update's record is the write model's
    // once it holds the event (or a fold of the record's stream).
    let (change, record, previous, automated) = match payload {
        EventPayload::RecordCreated(created) => (Change::Created, created.record, None, created.automated),
        EventPayload::RecordUpdated(update) => {
            written(commands, event).await?;
            let Some(record) = record_after(commands, object, id, event).await? else { return Ok(()) };
            let previous = before_update(&record, &update);
            (Change::Updated, record, Some(previous), update.automated)
        }
        _ => return Ok(()),
    };
    let mut waited = change == Change::Updated;
    let now = Timestamp::from_micros(event.occurred_at);
    let event_id = domain::hex::encode(&event.event_id);
    // The rules that acted on the write (their field updates are in it).
    for applied in &automated {
        let Some(rule) = reactions.rules.iter().find(|r| r.name == applied.rule) else { continue };
        for trigger in &rule.time_triggers {
            if let Some(due) = trigger.due(&record, now) {
                let (timer, data) = timers::rule_timer(&rule.name, &trigger.id, object, id, &event_id);
                timers::set(commands, timer, due.micros(), timers::RULE_TIME_TRIGGER, data, Some(event.event_id)).await?;
                status.step();
            }
        }
    }
    for flow in reactions.flows.iter().filter(|f| f.reacts_to(object, change, &record, previous.as_ref(), now)) {
        if !waited {
            written(commands, event).await?;
            waited = true;
        }
        let host = SystemHost { commands: commands.clone(), causation: Some(event.event_id), outbound: reactions.outbound.clone() };
        let variables = Flow::change_variables(&record, previous.as_ref());
        let run_id = format!("{}/{event_id}", flow.name);
        match flows::run(flow, variables, &run_id, &host, now).await {
            Ok(Ended::Finished(_)) => status.step(),
            Ok(Ended::Waiting { until, state }) => match flows::suspend(commands, flow, &run_id, until, state, Some(event.event_id)).await {
                Ok(()) => status.step(),
                Err(error) => return Err(CommandError::Store(crate::StoreError::Unavailable(error.to_string()))),
            },
            Err(FlowError::Unavailable(_, message)) => return Err(CommandError::Store(crate::StoreError::Unavailable(message))),
            Err(failed) => status.failed(failed.to_string()),
        }
    }
    Ok(())
}

/// Waits until the write model the commands are decided on holds `event`:
/// it is committed, and the write model applies it a moment later (or, on
/// PostgreSQL, after another node wrote it).
async fn written(commands: &CommandService, event: &EventEnvelope) -> Result<(), CommandError> {
    if commands.wait_applied(event.position, std::time::Duration::from_secs(10)).await {
        Ok(())
    } else {
        Err(CommandError::Store(crate::StoreError::Unavailable(format!("the write model has not reached position {}", event.position))))
    }
}

/// Whether the event is a workflow rule's own update, written as an event
/// of its own (keyed `$wf/{depth}/{rule}/{event id}`) by servers before rules
/// joined the write that fires them.
fn caused_by_rule(event: &EventEnvelope) -> bool {
    event.idempotency_key.as_deref().is_some_and(|k| k.starts_with(LEGACY_KEY_PREFIX))
}
