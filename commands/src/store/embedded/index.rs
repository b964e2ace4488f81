//! The in-memory index of the log file: where each position is, which
//! positions each stream has, and which positions each idempotency key wrote.

use std::collections::{HashMap, VecDeque};

use domain::event::{copy_envelope_into, EventEnvelope};

use super::streams::Streams;

#[derive(Default)]
pub(crate) struct Index {
    /// `offsets[p - 1]` is the file offset of the frame at position `p`.
    pub offsets: Vec<u64>,
    /// Length of the committed (fsynced) part of the file.
    pub end: u64,
    /// Positions of each stream, in stream-version order.
    pub streams: Streams,
    /// Positions written under each idempotency key.
    pub keys: HashMap<String, Vec<u64>>,
    /// The most recently committed events, so followers near the head (the
    /// projections of this process) read them without touching the file.
    pub recent: VecDeque<EventEnvelope>,
}

/// How many recent events are kept in memory.
pub(crate) const RECENT: usize = 16_384;

impl Index {
    pub fn head(&self) -> u64 {
        self.offsets.len() as u64
    }

    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.version(stream)
    }

    /// Room for about as many more events as the rest of a log holds, from
    /// the events indexed so far (a sample of its start): `left` bytes of
    /// log after `offset`, at the bytes per event, streams per event and
    /// bytes per stream name seen so far. A guess that is off costs a
    /// rehash or a little unused room, nothing else.
    pub fn reserve_like_so_far(&mut self, offset: u64, left: u64) {
        let seen = self.head();
        if seen == 0 || offset == 0 {
            return;
        }
        let (streams, name_bytes) = self.streams.names();
        // At most 2^28 events more: a hint, never an allocation a damaged length could inflate.
        let events = ((left as f64 * seen as f64 / offset as f64 * 1.05) as usize).min(1 << 28);
        let new_streams = (events as f64 * streams as f64 / seen as f64) as usize;
        let bytes = (new_streams as f64 * name_bytes as f64 / streams.max(1) as f64) as usize;
        self.offsets.reserve(events);
        self.streams.reserve(events, new_streams, bytes);
    }

    /// Records one committed event at `offset`.
    pub fn add(&mut self, envelope: &EventEnvelope, offset: u64) {
        self.add_parts(envelope.position, &envelope.stream, envelope.idempotency_key.as_deref(), offset);
    }

    /// [`Index::add`] from the parts of an envelope it keeps.
    pub fn add_parts(&mut self, position: u64, stream: &str, idempotency_key: Option<&str>, offset: u64) {
        self.offsets.push(offset);
        self.streams.add(stream, position);
        if let Some(key) = idempotency_key {
            match self.keys.get_mut(key) {
                Some(positions) => positions.push(position),
                None => {
                    self.keys.insert(key.to_string(), vec![position]);
                }
            }
        }
    }

    /// Keeps a committed event in the in-memory tail.
    pub fn remember(&mut self, envelope: EventEnvelope) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(envelope);
    }

    /// Up to `max` events after `after` from the in-memory tail into `out`
    /// (overwriting the envelopes it holds, reusing their buffers), when the
    /// tail reaches back that far (returns whether it did; `out` is untouched
    /// when not).
    pub fn recent_into(&self, after: u64, max: usize, out: &mut Vec<EventEnvelope>) -> bool {
        let Some(first) = self.recent.front().map(|e| e.position) else { return false };
        if after + 1 < first {
            return false;
        }
        let skip = (after + 1 - first) as usize;
        let mut next = 0;
        for event in self.recent.iter().skip(skip).take(max) {
            match out.get_mut(next) {
                Some(used) => copy_envelope_into(event, used),
                None => out.push(event.clone()),
            }
            next += 1;
        }
        out.truncate(next);
        true
    }

    /// `(start, end)` byte range of positions `first..=last`.
    pub fn range(&self, first: u64, last: u64) -> (u64, u64) {
        let start = self.offsets[(first - 1) as usize];
        let end = if (last as usize) < self.offsets.len() { self.offsets[last as usize] } else { self.end };
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_makes_room_for_the_rest_of_the_log_at_the_rate_of_its_start() {
        let mut index = Index::default();
        // 100 events of 200 bytes each, two per stream.
        for position in 1..=100u64 {
            index.add_parts(position, &format!("task/{}", position.div_ceil(2)), None, (position - 1) * 200);
        }
        // 180,000 bytes left: about 900 events more, in about 450 streams.
        index.reserve_like_so_far(100 * 200, 180_000);
        assert!((1000..1100).contains(&index.offsets.capacity()), "{}", index.offsets.capacity());
        // What it holds is unchanged, and more go in.
        assert_eq!((index.head(), index.stream_version("task/50")), (100, 2));
        index.add_parts(101, "task/50", None, 20_000);
        assert_eq!(index.stream_version("task/50"), 3);
        // An empty index, or one at offset 0, guesses nothing.
        let mut empty = Index::default();
        empty.reserve_like_so_far(0, 1 << 40);
        assert_eq!(empty.offsets.capacity(), 0);
    }
}
