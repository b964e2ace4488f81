//! Past states of the query model, kept in memory so that an as-of list read
//! folds the log from the nearest one instead of from the beginning.
//!
//! A [`ModelSnapshot`] is the model's rows at one position: the shared ids and
//! records of every table (reference counts, not copies: a record changed
//! later is copied by the live model, and the snapshot keeps the old one), the
//! catalog, and the latest event time up to there. The model that serves the
//! realtime hub takes one whenever it has applied at least half as many events
//! since the last one as it holds rows (and at least [`EVERY`]): the
//! work of taking it is a few reference counts per event on average, and the
//! fold after it is never much longer than loading it, so an as-of read costs
//! in proportion to the data at that moment (plus at most `every` events), not
//! to the length of the log. A log of creates only is its data: there the
//! snapshots fall at doubling positions.
//!
//! What is kept is bounded by [`History::max_rows`] rows over all snapshots:
//! past it, the snapshot whose neighbours are closest goes (never the newest),
//! so the kept ones stay spread over the whole history and a gap only widens
//! as the log grows past what the budget covers. A snapshot larger than the
//! whole budget is not taken; reads of such moments fold from the beginning.
//! Snapshots are taken again by every fold at start (the start load takes
//! them as it goes), so a restart loses nothing but time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use domain::metadata::Catalog;
use domain::value::Record;

/// A table's rows, shared: ids and records in id order.
pub type SharedRows = Vec<(Arc<str>, Arc<Record>)>;

/// The query model's rows at one position.
pub struct ModelSnapshot {
    /// The last event applied.
    pub position: u64,
    /// The latest `occurred_at` of every event up to `position` (a time bound
    /// may use the snapshot only when it is at or after this).
    pub max_occurred_at: i64,
    pub catalog: Catalog,
    /// Per object, its rows in id order.
    pub tables: Vec<(String, SharedRows)>,
}

impl ModelSnapshot {
    /// Rows over all tables.
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|(_, rows)| rows.len()).sum()
    }
}

/// The kept snapshots, in position order, and when the next one is due.
pub struct History {
    every: u64,
    max_rows: usize,
    kept: Mutex<Vec<Arc<ModelSnapshot>>>,
    /// The position of the newest snapshot (0 when none).
    newest: AtomicU64,
}

/// Fewest events between two snapshots.
pub const EVERY: u64 = 50_000;
/// Rows kept over all snapshots (a row is two pointers, plus the old record it may keep alive).
pub const MAX_ROWS: usize = 2_000_000;

impl Default for History {
    fn default() -> History {
        History::new(EVERY, MAX_ROWS)
    }
}

impl History {
    /// A history taking a snapshot at least `every` events apart, keeping at most `max_rows` rows.
    pub fn new(every: u64, max_rows: usize) -> History {
        History { every: every.max(1), max_rows, kept: Mutex::new(Vec::new()), newest: AtomicU64::new(0) }
    }

    /// Whether a model at `position` holding `rows` rows should take a
    /// snapshot now (`rows` is only asked for when enough events have passed).
    pub fn due(&self, position: u64, rows: impl FnOnce() -> usize) -> bool {
        let since = position.saturating_sub(self.newest.load(Ordering::Acquire));
        since >= self.every && since.saturating_mul(2) >= rows() as u64 && position > 0
    }

    /// Keeps a snapshot taken after the newest (one at or before it, as a
    /// rebuild's copy folding the log again would take, is dropped), then
    /// thins the kept ones to the budget.
    pub fn keep(&self, snapshot: ModelSnapshot) {
        let rows = snapshot.rows();
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.last().is_some_and(|newest| newest.position >= snapshot.position) {
            return;
        }
        // Even one too large to keep moves the schedule on, so it is not taken again at once.
        self.newest.store(snapshot.position, Ordering::Release);
        if rows > self.max_rows {
            return;
        }
        kept.push(Arc::new(snapshot));
        let mut total: usize = kept.iter().map(|s| s.rows()).sum();
        while total > self.max_rows && kept.len() > 1 {
            // The one whose neighbours are closest (the newest always stays).
            let gap = |i: usize| kept[i + 1].position - if i == 0 { 0 } else { kept[i - 1].position };
            let drop = (0..kept.len() - 1).min_by_key(|&i| gap(i)).expect("at least two kept");
            total -= kept.remove(drop).rows();
        }
    }

    /// The latest snapshot that lies wholly at or before a moment:
    /// `included(position, max_occurred_at)` says whether one does.
    pub fn latest(&self, included: impl Fn(u64, i64) -> bool) -> Option<Arc<ModelSnapshot>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().find(|s| included(s.position, s.max_occurred_at)).cloned()
    }

    /// How many snapshots are kept, and the rows they hold together.
    pub fn kept(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        (kept.len(), kept.iter().map(|s| s.rows()).sum())
    }

    /// Positions of the kept snapshots (for tests and status).
    pub fn positions(&self) -> Vec<u64> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.position).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(position: u64, rows: usize) -> ModelSnapshot {
        let row = (Arc::<str>::from("x"), Arc::new(Record::default()));
        ModelSnapshot { position, max_occurred_at: position as i64, catalog: Catalog::default(), tables: vec![("t".into(), vec![row; rows])] }
    }

    #[test]
    fn kept_snapshots_stay_spread_over_the_history_within_the_budget() {
        let history = History::new(10, 100);
        for p in 1..=40 {
            history.keep(snapshot(p * 10, 10));
        }
        let kept = history.positions();
        assert!(kept.len() <= 10, "{kept:?}");
        assert_eq!(history.kept(), (kept.len(), kept.len() * 10));
        assert_eq!(kept.last(), Some(&400), "the newest stays");
        // Spread: no gap is more than four times the budget's even share.
        let gaps: Vec<u64> = std::iter::once(0).chain(kept.iter().copied()).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g <= 4 * 400 / 10), "{gaps:?}");
        // Older or equal positions (a rebuild folding again) are dropped.
        history.keep(snapshot(400, 1));
        history.keep(snapshot(250, 1));
        assert_eq!(history.positions(), kept);
        // Too large for the budget: not kept, but the schedule moves on.
        history.keep(snapshot(500, 101));
        assert_eq!(history.positions(), kept);
        assert!(!history.due(505, || 0));
        assert!(history.due(510, || 20));
        assert!(!history.due(510, || 21), "never more often than every half the model's rows");
    }

    #[test]
    fn a_moment_takes_the_latest_snapshot_wholly_before_it() {
        let history = History::new(1, 100);
        for p in [10, 20, 30] {
            history.keep(snapshot(p, 1));
        }
        assert_eq!(history.latest(|p, _| p <= 25).map(|s| s.position), Some(20));
        assert_eq!(history.latest(|p, _| p <= 30).map(|s| s.position), Some(30));
        assert!(history.latest(|p, _| p <= 9).is_none());
        assert_eq!(history.latest(|_, at| at <= 10).map(|s| s.position), Some(10));
    }
}
