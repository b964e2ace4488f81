//! Scheduled jobs: one task per job computes the job's next tick, and at the
//! tick claims it by appending `job.started` to `$jobs/{name}` with the
//! version it last saw there. Every node computes the same ticks, so with
//! several nodes on one store each tick has exactly one winner; the others
//! find the tick claimed and wait for the next.
//!
//! A run applies its schedule rule to every record of the rule's object;
//! each record's update is keyed by the run and the record, so a run resumed
//! after a crash (a `job.started` without its `job.finished`) writes no
//! record twice. A node that was down runs the last tick it missed once,
//! late rather than never. Failed runs are retried with the job's backoff.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::automation::{Flow, Job, Schedule, WorkflowRule};
use domain::event::process::{JobFinished, JobStarted};
use domain::event::{registry, EventId, EventPayload, ProcessEvent};
use domain::time::Timestamp;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};

use super::pace::{pause, retrying};
use super::status::ProcessStatus;
use crate::service::{Command, CommandMeta, CommandService};
use crate::CommandError;

/// What a job's run does.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// A schedule rule over every record of its object.
    Rule(WorkflowRule),
    /// An autolaunched flow, once, calling out with this client.
    Flow(Box<Flow>, super::http::Outbound),
}

/// Runs kept in memory per job for the API (the log keeps them all).
const KEPT_RUNS: usize = 200;

/// One run of a job.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub run_id: String,
    pub tick: i64,
    pub manual: bool,
    pub started_at: i64,
    /// The `job.started` event (the causation of the run's writes).
    started_event: EventId,
    pub finished: Option<(JobFinished, i64)>,
}

impl JobRun {
    /// The protocol's `JobExecution`, with the run's tick and what it changed.
    pub fn to_json(&self, job: &str) -> Json {
        let time = |micros: i64| Timestamp::from_micros(micros).to_rfc3339();
        let (status, finished) = match &self.finished {
            Some((finished, at)) => (finished.status.as_str(), Some((finished, *at))),
            None => ("running", None),
        };
        json!({
            "jobId": job,
            "runId": self.run_id,
            "status": status,
            "manual": self.manual,
            "scheduledAt": time(self.tick),
            "startedAt": time(self.started_at),
            "completedAt": finished.map(|(_, at)| time(at)),
            "durationMs": finished.map(|(f, _)| f.duration_ms),
            "attempts": finished.map(|(f, _)| f.attempts),
            "changed": finished.map(|(f, _)| f.changed),
            "error": finished.and_then(|(f, _)| f.error.clone()),
        })
    }
}

/// One job's runs, folded from its stream.
#[derive(Debug, Default)]
pub struct JobState {
    version: u64,
    /// The latest scheduled tick claimed (manual runs are not ticks).
    pub last_tick: Option<i64>,
    /// Newest last.
    pub runs: VecDeque<JobRun>,
    pub next_tick: Option<i64>,
}

impl JobState {
    /// Folds one event of the stream in. The state's version moves only to
    /// the version right after it: an event appended without an expected
    /// version (a run's end) may land after another node's claim this state
    /// has not seen, and taking its version would let the next claim append
    /// at a version that skips that claim, claiming its tick again.
    fn apply(&mut self, version: u64, event_id: EventId, occurred_at: i64, payload: &ProcessEvent) {
        if version == self.version + 1 {
            self.version = version;
        }
        match payload {
            ProcessEvent::JobStarted(started) => {
                if !started.manual {
                    self.last_tick = Some(self.last_tick.unwrap_or(i64::MIN).max(started.tick));
                }
                self.runs.push_back(JobRun {
                    run_id: started.run_id.clone(),
                    tick: started.tick,
                    manual: started.manual,
                    started_at: occurred_at,
                    started_event: event_id,
                    finished: None,
                });
                if self.runs.len() > KEPT_RUNS {
                    self.runs.pop_front();
                }
            }
            ProcessEvent::JobFinished(finished) => {
                if let Some(run) = self.runs.iter_mut().rev().find(|r| r.run_id == finished.run_id) {
                    run.finished = Some((finished.clone(), occurred_at));
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn stream(name: &str) -> String {
    format!("$jobs/{name}")
}

async fn load(commands: &CommandService, name: &str) -> Result<JobState, CommandError> {
    let (events, version) = super::read_process_stream(commands, &stream(name)).await?;
    let mut state = JobState::default();
    for (event, process) in &events {
        state.apply(event.stream_version, event.event_id, event.occurred_at, process);
    }
    state.version = version;
    Ok(state)
}

/// A request to run a job now: answered with the run's id once it is claimed.
pub(crate) type Trigger = oneshot::Sender<Result<String, String>>;

pub(crate) async fn run(
    commands: Arc<CommandService>,
    job: Job,
    rule: Work,
    shared: Arc<RwLock<JobState>>,
    status: Arc<ProcessStatus>,
    mut triggers: mpsc::Receiver<Trigger>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(state) = retrying(&mut stop, &status, "reading its runs", || load(&commands, &job.name)).await else { return };
    // Runs left unfinished (a node died during them) are finished first.
    let unfinished: Vec<JobRun> = state.runs.iter().filter(|r| r.finished.is_none()).cloned().collect();
    let mut since = match (&job.schedule, state.last_tick) {
        (_, Some(tick)) => Timestamp::from_micros(tick),
        // A one-off moment never claimed runs even when it is past.
        (Schedule::Once { .. }, None) => Timestamp::from_micros(i64::MIN),
        // A new schedule starts from now (no ticks before it existed).
        (_, None) => crate::clock::now(),
    };
    *shared.write().expect("job state lock") = state;
    for run in unfinished {
        if finish(&commands, &job, &rule, &shared, &status, &run, &mut stop).await.is_err() {
            return;
        }
    }
    loop {
        let now = crate::clock::now();
        if job.enabled {
            if let Some(tick) = job.schedule.last_due(now, since) {
                match claim(&commands, &job, &shared, tick.micros(), false).await {
                    Ok(Some(run)) => {
                        if finish(&commands, &job, &rule, &shared, &status, &run, &mut stop).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        status.failed(format!("claiming a tick: {error}"));
                        if pause(&mut stop, 1000).await {
                            return;
                        }
                        continue;
                    }
                }
                since = tick;
                continue;
            }
        }
        let next = job.schedule.next_after(if now > since { now } else { since }).filter(|_| job.enabled);
        shared.write().expect("job state lock").next_tick = next.map(|t| t.micros());
        let sleep = match next {
            Some(next) => Duration::from_micros((next.micros() - now.micros()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
            asked = triggers.recv() => {
                let Some(answer) = asked else { return };
                match claim(&commands, &job, &shared, crate::clock::now().micros(), true).await {
                    Ok(Some(run)) => {
                        let _ = answer.send(Ok(run.run_id.clone()));
                        if finish(&commands, &job, &rule, &shared, &status, &run, &mut stop).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => { let _ = answer.send(Err("the run could not be claimed".into())); }
                    Err(error) => { let _ = answer.send(Err(error.to_string())); }
                }
            }
        }
    }
}

/// Claims a tick (or a manual run) in the log; `None` when another node has it.
async fn claim(commands: &CommandService, job: &Job, shared: &RwLock<JobState>, tick: i64, manual: bool) -> Result<Option<JobRun>, CommandError> {
    loop {
        let version = {
            let state = shared.read().expect("job state lock");
            if !manual && state.last_tick.is_some_and(|last| last >= tick) {
                return Ok(None);
            }
            state.version
        };
        let started = JobStarted { job: job.name.clone(), run_id: uuid::Uuid::now_v7().to_string(), tick, manual };
        let command = Command::Process { stream: stream(&job.name), expected_version: Some(version), event: ProcessEvent::JobStarted(started) };
        match commands.execute(command, CommandMeta::system()).await {
            Ok(outcome) => {
                let event = outcome.events.last().expect("the claim's event");
                let payload = domain::event::codec::decode_envelope_payload(event, registry())?;
                let EventPayload::Process(process) = payload else { unreachable!("a job stream holds job events") };
                let mut state = shared.write().expect("job state lock");
                state.apply(outcome.version, event.event_id, event.occurred_at, &process);
                return Ok(state.runs.back().cloned());
            }
            // Another node claimed something: see what, then decide again.
            Err(CommandError::Conflict { .. }) => {
                let fresh = load(commands, &job.name).await?;
                let next_tick = shared.read().expect("job state lock").next_tick;
                *shared.write().expect("job state lock") = JobState { next_tick, ..fresh };
            }
            Err(other) => return Err(other),
        }
    }
}

struct Stopped;

/// Runs a claimed run to its end (with retries) and records how it ended.
async fn finish(
    commands: &Arc<CommandService>,
    job: &Job,
    rule: &Work,
    shared: &RwLock<JobState>,
    status: &ProcessStatus,
    run: &JobRun,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stopped> {
    let started = std::time::Instant::now();
    let mut attempts = 0;
    let (outcome, changed) = loop {
        attempts += 1;
        let sweep = work(commands, rule, run);
        let result = match job.timeout_ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), sweep).await.unwrap_or(Err(Failure::Timeout(ms))),
            None => sweep.await,
        };
        match result {
            Ok(changed) => break (Ok(()), changed),
            Err(failure) if attempts > job.retry.max_retries => break (Err(failure), 0),
            Err(failure) => {
                status.failed(format!("job '{}' run {} attempt {attempts}: {failure}", job.name, run.run_id));
                if pause(stop, job.retry.delay_ms(attempts)).await {
                    return Err(Stopped);
                }
            }
        }
    };
    let (state, error) = match &outcome {
        Ok(()) => ("success", None),
        Err(Failure::Timeout(_)) => ("timeout", outcome.as_ref().err().map(|f| f.to_string())),
        Err(failure) => ("failed", Some(failure.to_string())),
    };
    if let Some(error) = &error {
        status.failed(format!("job '{}' run {}: {error}", job.name, run.run_id));
    }
    let finished = JobFinished {
        job: job.name.clone(),
        run_id: run.run_id.clone(),
        status: state.to_string(),
        attempts,
        duration_ms: started.elapsed().as_millis() as u64,
        error,
        changed,
    };
    loop {
        // Finishing needs no order, but a run ends once: a node that started
        // resumes what another left unfinished, which may be a live node still
        // at work. Their writes are keyed by the run; the end is keyed too, so
        // the first to record it wins and the other's is answered with it.
        let command = Command::Process { stream: stream(&job.name), expected_version: None, event: ProcessEvent::JobFinished(finished.clone()) };
        let meta = CommandMeta::system().with_key(format!("$job-end/{}/{}", job.name, run.run_id));
        match commands.execute(command, meta).await {
            Ok(outcome) => {
                if finished.error.is_none() && !outcome.replayed {
                    status.step();
                }
                let event = outcome.events.last().expect("the run's end");
                // A replay answers with the end another node recorded: that one is the run's.
                let recorded = match domain::event::codec::decode_envelope_payload(event, registry()) {
                    Ok(EventPayload::Process(recorded @ ProcessEvent::JobFinished(_))) => recorded,
                    _ => ProcessEvent::JobFinished(finished),
                };
                shared.write().expect("job state lock").apply(outcome.version, event.event_id, event.occurred_at, &recorded);
                return Ok(());
            }
            Err(error) => status.failed(format!("recording the end of job '{}' run {}: {error}", job.name, run.run_id)),
        }
        if pause(stop, 1000).await {
            return Err(Stopped);
        }
    }
}

#[derive(Debug)]
enum Failure {
    Timeout(u64),
    Refused { failed: usize, first: String },
    Store(CommandError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout(ms) => write!(f, "the run took longer than its timeout ({ms} ms)"),
            Failure::Refused { failed, first } => write!(f, "{failed} records could not be updated; the first: {first}"),
            Failure::Store(error) => write!(f, "{error}"),
        }
    }
}

/// Does a run's work: the records it changed (for a flow, the nodes it ran through are not counted).
async fn work(commands: &Arc<CommandService>, work: &Work, run: &JobRun) -> Result<u64, Failure> {
    match work {
        Work::Rule(rule) => sweep(commands, rule, run).await,
        Work::Flow(flow, outbound) => {
            let host = super::flows::SystemHost { commands: commands.clone(), causation: Some(run.started_event), outbound: outbound.clone() };
            let run_id = format!("{}/{}", flow.name, run.run_id);
            match super::flows::run(flow, domain::value::Record::new(), &run_id, &host, crate::clock::now()).await {
                Ok(super::flows::Ended::Finished(_)) => Ok(0),
                Ok(super::flows::Ended::Waiting { until, state }) => super::flows::suspend(commands, flow, &run_id, until, state, Some(run.started_event))
                    .await
                    .map(|()| 0)
                    .map_err(|e| Failure::Store(CommandError::Store(crate::StoreError::Unavailable(e.to_string())))),
                Err(super::flows::FlowError::Unavailable(_, message)) => Err(Failure::Store(CommandError::Store(crate::StoreError::Unavailable(message)))),
                Err(failed) => Err(Failure::Refused { failed: 1, first: failed.to_string() }),
            }
        }
    }
}

/// Applies the run's rule to every record of its object; the records changed.
async fn sweep(commands: &CommandService, rule: &WorkflowRule, run: &JobRun) -> Result<u64, Failure> {
    let now = crate::clock::now();
    let due: Vec<(String, serde_json::Map<String, Json>)> = commands
        .live_records(&rule.object)
        .into_iter()
        .filter(|record| rule.holds(record, None, now))
        .filter_map(|record| {
            let patch = rule.patch(&record, None, now);
            let id = record.get("id").and_then(|v| v.as_str()).map(str::to_string)?;
            (!patch.is_empty()).then_some((id, patch))
        })
        .collect();
    // Many records' updates at once share the store's commits.
    let updates = futures_util::stream::iter(due.into_iter().map(|(id, patch)| async move {
        let mut meta = CommandMeta::system().with_key(format!("$job/{}/{id}", run.run_id));
        meta.causation_id = Some(run.started_event);
        meta.automation = true;
        let command = Command::Update { object: rule.object.clone(), id: id.clone(), patch, expected_version: None };
        (id, commands.execute(command, meta).await)
    }));
    let results: Vec<_> = futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(updates, 64)).await;
    let mut changed = 0;
    let mut refused: Option<(usize, String)> = None;
    for (id, result) in results {
        match result {
            Ok(outcome) => {
                super::log_warnings(&outcome, "job");
                changed += u64::from(!outcome.events.is_empty());
            }
            Err(error @ (CommandError::Store(_) | CommandError::Contended)) => return Err(Failure::Store(error)),
            Err(error) => {
                let entry = refused.get_or_insert((0, format!("{} {id}: {error}", rule.object)));
                entry.0 += 1;
            }
        }
    }
    match refused {
        Some((failed, first)) => Err(Failure::Refused { failed, first }),
        None => Ok(changed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(run: &str, tick: i64) -> ProcessEvent {
        ProcessEvent::JobStarted(JobStarted { job: "j".into(), run_id: run.into(), tick, manual: false })
    }

    fn finished(run: &str) -> ProcessEvent {
        let end = JobFinished { job: "j".into(), run_id: run.into(), status: "success".into(), attempts: 1, duration_ms: 5, error: None, changed: 0 };
        ProcessEvent::JobFinished(end)
    }

    /// Node b claimed tick 10 (version 1) and runs it; node a claims tick 20
    /// (version 2, unseen by b); b's end lands at version 3. b must not take
    /// version 3, or its claim of tick 20 at version 3 would be accepted by
    /// the store and the tick would run on both nodes.
    #[test]
    fn a_runs_end_after_an_unseen_claim_leaves_the_version_where_the_state_is_whole() {
        let mut b = JobState::default();
        b.apply(1, [1; 16], 0, &started("b1", 10));
        b.apply(3, [3; 16], 0, &finished("b1"));
        assert_eq!(b.version, 1, "the claim at version 2 is not folded in, so the next claim must conflict");
        assert_eq!(b.last_tick, Some(10));
        assert!(b.runs.back().unwrap().finished.is_some(), "the run's end is still taken");

        // With nothing in between, an end moves the version on.
        let mut a = JobState::default();
        a.apply(1, [1; 16], 0, &started("a1", 10));
        a.apply(2, [2; 16], 0, &finished("a1"));
        assert_eq!(a.version, 2);
    }
}
