//! Durable timers: a `timer.set` event on `$timers/{timer}` says what to do
//! and when; this process follows the log for them, sleeps until the
//! earliest is due, does its action, then appends `timer.fired` at the
//! stream's version 1, so with several nodes one records it (and the
//! action, keyed by the timer, writes once). Its checkpoint is the log
//! position below every pending timer, so after a restart it reads the
//! timers it had not fired again: a timer fires late rather than never.
//!
//! Kinds: a workflow rule's time trigger (`rule_time_trigger`), whose
//! updates apply if the rule's criteria still hold for the record as it is
//! when due, and a flow's wait (`flow_wait`), whose run resumes from the
//! state the timer holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::automation::{Flow, WorkflowRule};
use domain::event::process::{TimerFired, TimerSet};
use domain::event::{registry, EventEnvelope, EventId, EventPayload, ProcessEvent};
use serde_json::{json, Value as Json};
use tokio::sync::watch;

use super::flows::{self, Ended, FlowError, SystemHost};
use super::follow::Follower;
use super::pace::pause;
use super::progress;
use super::status::ProcessStatus;
use crate::service::{Command, CommandMeta, CommandService};
use crate::CommandError;

pub const NAME: &str = "timers";
pub(crate) const RULE_TIME_TRIGGER: &str = "rule_time_trigger";
pub(crate) const FLOW_WAIT: &str = "flow_wait";

/// A timer waiting to fire.
struct Pending {
    set_at: u64,
    set_event: EventId,
    set: TimerSet,
}

/// Sets a timer (once: a second set of the same timer is a no-op).
pub(crate) async fn set(commands: &CommandService, timer: String, due: i64, kind: &str, data: Json, cause: Option<EventId>) -> Result<(), CommandError> {
    let event = ProcessEvent::TimerSet(TimerSet { timer: timer.clone(), due, kind: kind.into(), data: data.to_string() });
    let mut meta = CommandMeta::system();
    meta.causation_id = cause;
    match commands.execute(Command::Process { stream: format!("$timers/{timer}"), expected_version: Some(0), event }, meta).await {
        Ok(_) | Err(CommandError::Conflict { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// What timers act on: rules with time triggers, flows that wait.
pub(crate) struct Timed {
    pub rules: Vec<WorkflowRule>,
    pub flows: Vec<Flow>,
    /// What the resumed flows call out with.
    pub outbound: super::http::Outbound,
}

pub(crate) async fn run(commands: Arc<CommandService>, timed: Arc<Timed>, status: Arc<ProcessStatus>, mut stop: watch::Receiver<bool>) {
    let Some((mut progress, start)) = progress::resume_or_start(&commands, NAME, &status, &mut stop).await else { return };
    let mut follower = Follower::new(commands.store().clone(), start);
    let mut pending: BTreeMap<(i64, String), Pending> = BTreeMap::new();
    loop {
        let next_due = pending.keys().next().map(|(due, _)| *due);
        let wait = next_due.map(|due| Duration::from_micros((due - crate::clock::now().micros()).max(0) as u64)).unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            batch = follower.next(256) => match batch {
                Ok(batch) => {
                    for event in &batch {
                        take(event, &mut pending);
                    }
                }
                Err(error) => {
                    status.failed(format!("reading the log: {error}"));
                    if pause(&mut stop, 1000).await {
                        return;
                    }
                }
            },
            _ = tokio::time::sleep(wait), if next_due.is_some() => {
                let key = pending.keys().next().cloned().expect("a due timer");
                let timer = pending.remove(&key).expect("a due timer");
                match fire(&commands, &timed, &timer).await {
                    Ok(()) => status.step(),
                    Err(error) => {
                        // The store failed: try again in a second (its action is keyed).
                        status.failed(format!("timer {}: {error}", timer.set.timer));
                        pending.insert((crate::clock::now().micros() + 1_000_000, key.1), timer);
                    }
                }
            }
            _ = stop.changed() => return,
        }
        // Everything below the oldest pending timer is done with.
        let low = pending.values().map(|p| p.set_at - 1).min().unwrap_or(follower.position);
        status.at(low, follower.head());
        if let Err(error) = progress.save(&commands, low, false).await {
            status.failed(format!("saving its progress: {error}"));
        }
    }
}

/// Notes a timer set or fired (a timer's set comes before its fired in the log).
fn take(event: &EventEnvelope, pending: &mut BTreeMap<(i64, String), Pending>) {
    if !event.stream.starts_with("$timers/") {
        return;
    }
    match domain::event::codec::decode_envelope_payload(event, registry()) {
        Ok(EventPayload::Process(ProcessEvent::TimerSet(set))) => {
            pending.insert((set.due, set.timer.clone()), Pending { set_at: event.position, set_event: event.event_id, set });
        }
        Ok(EventPayload::Process(ProcessEvent::TimerFired(done))) => pending.retain(|(_, timer), _| *timer != done.timer),
        _ => {}
    }
}

/// Does a due timer's action, then records it fired. Errors are the store's.
async fn fire(commands: &Arc<CommandService>, timed: &Timed, timer: &Pending) -> Result<(), CommandError> {
    let acted = match timer.set.kind.as_str() {
        FLOW_WAIT => resume(commands, timed, timer).await,
        _ => act(commands, &timed.rules, timer).await,
    };
    let outcome = match acted {
        Ok(outcome) => outcome,
        Err(error @ (CommandError::Store(_) | CommandError::Contended)) => return Err(error),
        Err(refused) => format!("failed: {refused}"),
    };
    let event = ProcessEvent::TimerFired(TimerFired { timer: timer.set.timer.clone(), outcome });
    let mut meta = CommandMeta::system();
    meta.causation_id = Some(timer.set_event);
    match commands.execute(Command::Process { stream: format!("$timers/{}", timer.set.timer), expected_version: Some(1), event }, meta).await {
        // Another node recorded it first.
        Ok(_) | Err(CommandError::Conflict { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// A rule's time trigger: its updates, if the record still exists and the criteria still hold.
async fn act(commands: &CommandService, rules: &[WorkflowRule], timer: &Pending) -> Result<String, CommandError> {
    let data: Json = serde_json::from_str(&timer.set.data).unwrap_or(Json::Null);
    let text = |key: &str| data.get(key).and_then(Json::as_str).unwrap_or_default().to_string();
    let (rule_name, trigger_id, object, id) = (text("rule"), text("trigger"), text("object"), text("id"));
    let Some(rule) = rules.iter().find(|r| r.name == rule_name) else { return Ok(format!("skipped: no rule '{rule_name}' now")) };
    let Some(trigger) = rule.time_triggers.iter().find(|t| t.id == trigger_id) else {
        return Ok(format!("skipped: rule '{rule_name}' has no time trigger '{trigger_id}' now"));
    };
    commands.wait_applied(timer.set_at, Duration::from_secs(10)).await;
    let Some(record) = commands.record_state(&object, &id).record else { return Ok("skipped: the record is gone".into()) };
    let now = crate::clock::now();
    if !rule.active || !rule.holds(&record, None, now) {
        return Ok("skipped: the criteria no longer hold".into());
    }
    let patch = rule.trigger_patch(trigger, &record, now);
    if patch.is_empty() {
        return Ok("done: nothing to change".into());
    }
    let mut meta = CommandMeta::system().with_key(format!("$tt/{}", timer.set.timer));
    meta.causation_id = Some(timer.set_event);
    meta.automation = true;
    let outcome = commands.execute(Command::Update { object, id, patch, expected_version: None }, meta).await?;
    super::log_warnings(&outcome, "workflow time trigger");
    Ok("done".into())
}

/// A flow's run resumed after its wait (as the system); a later wait sets the next timer.
async fn resume(commands: &Arc<CommandService>, timed: &Timed, timer: &Pending) -> Result<String, CommandError> {
    let data: Json = serde_json::from_str(&timer.set.data).unwrap_or(Json::Null);
    let name = data.get("flow").and_then(Json::as_str).unwrap_or_default();
    let run = data.get("run").and_then(Json::as_str).unwrap_or_default();
    let Some(flow) = timed.flows.iter().find(|f| f.name == name) else { return Ok(format!("skipped: no flow '{name}' that waits now")) };
    commands.wait_applied(timer.set_at, Duration::from_secs(10)).await;
    let host = SystemHost { commands: commands.clone(), causation: Some(timer.set_event), outbound: timed.outbound.clone() };
    let unavailable = |message: String| CommandError::Store(crate::StoreError::Unavailable(message));
    match flows::resume(flow, &data["state"], run, &host, crate::clock::now()).await {
        Ok(Ended::Finished(_)) => Ok("done".into()),
        Ok(Ended::Waiting { until, state }) => {
            flows::suspend(commands, flow, run, until, state, Some(timer.set_event)).await.map_err(|e| unavailable(e.to_string()))?;
            Ok("done: waits again".into())
        }
        Err(FlowError::Unavailable(_, message)) => Err(unavailable(message)),
        Err(failed) => Ok(format!("failed: {failed}")),
    }
}

/// The timer's id and its data for a rule's time trigger fired by `event` on a record.
pub(crate) fn rule_timer(rule: &str, trigger: &str, object: &str, id: &str, event_id: &str) -> (String, Json) {
    (format!("{rule}.{trigger}.{event_id}"), json!({"rule": rule, "trigger": trigger, "object": object, "id": id}))
}
