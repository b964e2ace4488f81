//! Counts of what this node's commands appended, for `/metrics`: committed
//! appends and their events, appends that met a concurrent writer (decided
//! again or refused), and appends the store failed.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct AppendStats {
    commits: AtomicU64,
    events: AtomicU64,
    conflicts: AtomicU64,
    failures: AtomicU64,
}

/// A reading of [`AppendStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendCounts {
    /// Appends committed (one per command or batch).
    pub commits: u64,
    /// Events those appends committed.
    pub events: u64,
    /// Appends that lost a race on a stream version or a unique value.
    pub conflicts: u64,
    /// Appends the store could not commit.
    pub failures: u64,
}

impl AppendStats {
    pub(crate) fn committed(&self, events: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
    }

    pub(crate) fn conflicted(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> AppendCounts {
        AppendCounts {
            commits: self.commits.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}
