//! Appends on their way to a store's group commit: a command announces
//! itself before it is planned and takes the announcement back as its
//! append is handed to the store, so a writer holding appends to commit
//! knows whether more are about to arrive.
//!
//! The embedded log's writer uses it to wait (at most
//! [`COMMIT_DELAY`](crate::store::embedded)) for announced appends before its
//! `fdatasync`, the way PostgreSQL's `commit_delay` waits when
//! `commit_siblings` transactions are active: under concurrent writes one
//! sync then commits several of them (fewer syncs, and fewer wake-ups of
//! every follower per write), and a lone writer, with nobody announced, never
//! waits. An announcement that is never followed by an append (a command
//! refused while planned) costs a batch waiting at most that delay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The count of announced appends of one store, shared by its writers and
/// the store.
#[derive(Clone, Debug, Default)]
pub struct Arrivals(Arc<AtomicUsize>);

/// One announced append, counted until dropped.
#[derive(Debug)]
#[must_use = "an announcement counts only while it is held"]
pub struct Arriving(Arc<AtomicUsize>);

impl Arrivals {
    /// Announces an append that is about to be planned and made.
    pub fn announce(&self) -> Arriving {
        self.0.fetch_add(1, Ordering::AcqRel);
        Arriving(self.0.clone())
    }

    /// How many announced appends have not reached the store yet.
    pub fn pending(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_announcements_while_held() {
        let arrivals = Arrivals::default();
        let first = arrivals.announce();
        let second = arrivals.clone().announce();
        assert_eq!(arrivals.pending(), 2);
        drop(first);
        assert_eq!(arrivals.pending(), 1);
        drop(second);
        assert_eq!(arrivals.pending(), 0);
    }
}
