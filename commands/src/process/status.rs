//! What a process reports: how far it is in the log, the head it follows,
//! steps done and failures (with the last one), for `/metrics` and the
//! projections' status.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct ProcessStatus {
    pub name: String,
    position: AtomicU64,
    head: AtomicU64,
    steps: AtomicU64,
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

/// A copy of a status at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub name: String,
    pub position: u64,
    pub lag: u64,
    pub steps: u64,
    pub failures: u64,
    pub last_failure: Option<String>,
}

impl ProcessStatus {
    pub fn new(name: &str) -> ProcessStatus {
        ProcessStatus { name: name.to_string(), ..Default::default() }
    }

    pub(crate) fn at(&self, position: u64, head: u64) {
        self.position.store(position, Ordering::Relaxed);
        self.head.fetch_max(head, Ordering::Relaxed);
    }

    pub(crate) fn step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, message: String) {
        tracing::warn!(process = %self.name, %message, "process step failed");
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().expect("status lock") = Some(message);
    }

    pub fn report(&self) -> StatusReport {
        let position = self.position.load(Ordering::Relaxed);
        StatusReport {
            name: self.name.clone(),
            position,
            lag: self.head.load(Ordering::Relaxed).saturating_sub(position),
            steps: self.steps.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_failure: self.last_failure.lock().expect("status lock").clone(),
        }
    }
}
