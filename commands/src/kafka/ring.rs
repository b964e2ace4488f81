//! The events a node has received from the topic, put back in log order.
//!
//! The topic is partitioned by stream, so events reach a node in stream order
//! but not in log order, and the relay may send one twice. The ring keeps the
//! received events by position: the contiguous run from `base` up to the
//! watermark (every position at or below it is held, or was read long ago) is
//! what followers may read; events above a gap wait in `pending` until the gap
//! is filled (from the topic, or from the log when the topic is late).

use std::collections::{BTreeMap, VecDeque};

use domain::event::EventEnvelope;

/// Events by position, with the highest position below which none is missing.
#[derive(Debug)]
pub struct Ring {
    /// Position of `contiguous[0]`.
    base: u64,
    /// Events `base ..= watermark`, in order.
    contiguous: VecDeque<EventEnvelope>,
    /// Events above `watermark + 1`, waiting for the gap below them.
    pending: BTreeMap<u64, EventEnvelope>,
    /// Events kept for readers at most (the oldest are dropped first; a
    /// reader behind them reads the log).
    capacity: usize,
}

/// What an insert did, for the feed's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inserted {
    /// Events new to the ring.
    pub added: usize,
    /// Events it held already, or below its window (a relay's repeat).
    pub duplicates: usize,
}

impl Ring {
    /// An empty ring whose next expected position is `watermark + 1`.
    pub fn new(watermark: u64, capacity: usize) -> Ring {
        Ring { base: watermark + 1, contiguous: VecDeque::new(), pending: BTreeMap::new(), capacity: capacity.max(1) }
    }

    /// Every position at or below this is held or was dropped as old.
    pub fn watermark(&self) -> u64 {
        self.base + self.contiguous.len() as u64 - 1
    }

    /// The lowest position still held for readers.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Events waiting above a gap.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The highest position received, held or pending.
    pub fn highest(&self) -> u64 {
        self.pending.keys().next_back().copied().unwrap_or(0).max(self.watermark())
    }

    /// Adds events in any order; repeats and events at or below the
    /// watermark are dropped. Pending events are bounded by the capacity:
    /// beyond it the highest are dropped (the log fills them in later).
    pub fn insert(&mut self, events: impl IntoIterator<Item = EventEnvelope>) -> Inserted {
        let mut done = Inserted::default();
        for event in events {
            let watermark = self.watermark();
            if event.position <= watermark || self.pending.contains_key(&event.position) {
                done.duplicates += 1;
                continue;
            }
            done.added += 1;
            if event.position == watermark + 1 {
                self.contiguous.push_back(event);
                while let Some(next) = self.pending.remove(&(self.watermark() + 1)) {
                    self.contiguous.push_back(next);
                }
            } else {
                self.pending.insert(event.position, event);
                if self.pending.len() > self.capacity {
                    self.pending.pop_last();
                }
            }
        }
        while self.contiguous.len() > self.capacity {
            self.contiguous.pop_front();
            self.base += 1;
        }
        done
    }

    /// Up to `max` events after `after`, when the ring holds `after + 1`
    /// (`None`: older than the ring, read the log). Empty at the watermark.
    pub fn read_after(&self, after: u64, max: usize) -> Option<Vec<EventEnvelope>> {
        if after + 1 < self.base {
            return None;
        }
        let from = (after + 1 - self.base) as usize;
        Some(self.contiguous.iter().skip(from).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64) -> EventEnvelope {
        EventEnvelope {
            position,
            stream: format!("s/{}", position % 3),
            stream_version: 1,
            event_id: [0; 16],
            event_type: "record.created".into(),
            schema_version: 1,
            occurred_at: 0,
            actor: "system".into(),
            tenant: "default".into(),
            correlation_id: [0; 16],
            causation_id: None,
            idempotency_key: None,
            payload: Vec::new(),
        }
    }

    fn positions(events: &[EventEnvelope]) -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    }

    #[test]
    fn out_of_order_events_wait_for_the_gap_below_them() {
        let mut ring = Ring::new(10, 100);
        ring.insert([event(12), event(14)]);
        assert_eq!(ring.watermark(), 10);
        assert_eq!(ring.read_after(10, 10).map(|e| positions(&e)), Some(vec![]));
        ring.insert([event(11)]);
        assert_eq!(ring.watermark(), 12);
        ring.insert([event(13)]);
        assert_eq!(ring.watermark(), 14);
        assert_eq!(ring.pending(), 0);
        assert_eq!(positions(&ring.read_after(10, 10).unwrap()), vec![11, 12, 13, 14]);
        assert_eq!(positions(&ring.read_after(12, 1).unwrap()), vec![13]);
    }

    #[test]
    fn repeats_and_old_events_are_dropped() {
        let mut ring = Ring::new(10, 100);
        assert_eq!(ring.insert([event(11), event(13)]), Inserted { added: 2, duplicates: 0 });
        assert_eq!(ring.insert([event(11), event(13), event(9), event(12)]), Inserted { added: 1, duplicates: 3 });
        assert_eq!(positions(&ring.read_after(10, 10).unwrap()), vec![11, 12, 13]);
    }

    #[test]
    fn the_oldest_events_leave_first_and_older_reads_go_to_the_log() {
        let mut ring = Ring::new(0, 4);
        ring.insert((1..=10).map(event));
        assert_eq!(ring.watermark(), 10);
        assert_eq!(ring.base(), 7);
        assert!(ring.read_after(5, 10).is_none());
        assert_eq!(positions(&ring.read_after(6, 10).unwrap()), vec![7, 8, 9, 10]);
    }

    #[test]
    fn pending_events_beyond_the_capacity_drop_the_highest() {
        let mut ring = Ring::new(0, 3);
        ring.insert([event(5), event(3), event(4), event(2)]);
        assert_eq!(ring.pending(), 3);
        assert_eq!(ring.highest(), 4);
        ring.insert([event(1)]);
        assert_eq!(ring.watermark(), 4);
    }
}
