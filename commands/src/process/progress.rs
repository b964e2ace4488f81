//! A process's checkpoint, kept in the log (`process.progress` events on
//! `$process/{name}`): how far it has handled the log. Saved at most every
//! few seconds; after a crash the process handles again what came after the
//! last save, and its commands' idempotency keys make that a no-op.

use std::time::{Duration, Instant};

use domain::event::process::ProcessProgress;
use domain::event::ProcessEvent;

use crate::service::{Command, CommandMeta, CommandService};
use crate::CommandError;

/// How often a moving process records its position.
const SAVE_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct Progress {
    name: String,
    stream: String,
    /// The stream's version as this node last saw it.
    version: u64,
    saved: u64,
    saved_at: Instant,
}

impl Progress {
    /// The last recorded position, or `None` when the process never ran.
    pub async fn load(commands: &CommandService, name: &str) -> Result<(Progress, Option<u64>), CommandError> {
        let stream = format!("$process/{name}");
        let (events, version) = super::read_process_stream(commands, &stream).await?;
        let position = events
            .iter()
            .filter_map(|(_, process)| match process {
                ProcessEvent::Progress(p) => Some(p.position),
                _ => None,
            })
            .max();
        Ok((Progress { name: name.to_string(), stream, version, saved: position.unwrap_or(0), saved_at: Instant::now() }, position))
    }

    /// Records `position` when it moved and the last save is old enough (or `now`).
    pub async fn save(&mut self, commands: &CommandService, position: u64, now: bool) -> Result<(), CommandError> {
        if position <= self.saved || (!now && self.saved_at.elapsed() < SAVE_EVERY) {
            return Ok(());
        }
        let event = ProcessEvent::Progress(ProcessProgress { process: self.name.clone(), position });
        let command = Command::Process { stream: self.stream.clone(), expected_version: Some(self.version), event };
        match commands.execute(command, CommandMeta::system()).await {
            Ok(outcome) => self.version = outcome.version,
            // Another node recorded its own position: take its version and save next time.
            Err(CommandError::Conflict { actual, .. }) => {
                self.version = actual;
                return Ok(());
            }
            Err(other) => return Err(other),
        }
        self.saved = position;
        self.saved_at = Instant::now();
        Ok(())
    }
}

/// A process's progress and where it goes on from: the recorded position,
/// or, the first time, the log's head, recorded before anything is handled
/// (so a crash before the first save cannot move it past changes nobody
/// handled: a process acts on changes from the moment it exists, it does
/// not rewrite history). `None` when asked to stop first.
pub(crate) async fn resume_or_start(
    commands: &CommandService,
    name: &str,
    status: &super::status::ProcessStatus,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(Progress, u64)> {
    let (mut progress, recorded) = super::pace::retrying(stop, status, "reading its progress", || Progress::load(commands, name)).await?;
    if let Some(position) = recorded {
        return Some((progress, position));
    }
    let head = *commands.store().head().borrow();
    while let Err(error) = progress.save(commands, head, true).await {
        status.failed(format!("recording where it starts: {error}"));
        if super::pace::pause(stop, 1000).await {
            return None;
        }
    }
    Some((progress, head))
}
