//! [`Streams`]: which positions each stream of the log has, in version
//! order, kept small: each stream's name once ([`domain::texts::Texts`]: the
//! names end to end in one string behind a hash table of numbers) with its
//! event count and last position, and for each position the one before it in
//! the same stream. A stream's positions are found by walking those links
//! back from its last. Before, a map from an owned name to a list of
//! positions cost about 150 bytes per stream; this costs the name's bytes and
//! about 40 more, and 8 bytes per event.

use domain::texts::Texts;

/// No position (the first event of a stream has none before it).
const NONE: u64 = 0;

#[derive(Default)]
pub(crate) struct Streams {
    names: Texts,
    /// By stream (its name's number): how many events it has, and its last position.
    ends: Vec<(u32, u64)>,
    /// `previous[p - 1]`: the position before `p` in `p`'s stream ([`NONE`]: none).
    previous: Vec<u64>,
}

impl Streams {
    /// How many events the stream has (its version); 0 for a stream with none.
    pub(crate) fn version(&self, name: &str) -> u64 {
        self.names.find(0, name).map_or(0, |at| u64::from(self.ends[at as usize].0))
    }

    /// The stream's positions from version `from` (1 is the first), at most `max`.
    pub(crate) fn positions(&self, name: &str, from: u64, max: usize) -> Vec<u64> {
        let Some(at) = self.names.find(0, name) else { return Vec::new() };
        let (count, last) = self.ends[at as usize];
        let mut all = Vec::with_capacity(count as usize);
        let mut position = last;
        while position != NONE {
            all.push(position);
            position = self.previous[(position - 1) as usize];
        }
        all.reverse();
        let skip = from.saturating_sub(1) as usize;
        all.into_iter().skip(skip).take(max).collect()
    }

    /// How many streams there are, and the bytes of their names.
    pub(crate) fn names(&self) -> (usize, usize) {
        (self.names.len(), self.names.joined().len())
    }

    /// Room for this many more events, streams and bytes of names (a scan
    /// that knows about how many are coming: no rehash of every name as the
    /// table grows).
    pub(crate) fn reserve(&mut self, events: usize, streams: usize, name_bytes: usize) {
        self.previous.reserve(events);
        self.ends.reserve(streams);
        self.names.reserve(streams, name_bytes);
    }

    /// Records the event at `position` (the next after every other) of `name`.
    pub(crate) fn add(&mut self, name: &str, position: u64) {
        debug_assert_eq!(position, self.previous.len() as u64 + 1, "positions are added in order");
        let at = self.names.intern(0, name) as usize;
        if at == self.ends.len() {
            self.ends.push((0, NONE));
        }
        let (count, last) = &mut self.ends[at];
        self.previous.push(*last);
        *last = position;
        *count = count.checked_add(1).expect("fewer than 2^32 events in a stream");
    }
}

#[cfg(test)]
mod tests {
    use super::Streams;

    #[test]
    fn each_stream_gives_its_positions_in_order() {
        let mut streams = Streams::default();
        let names = ["a/1", "b/1", "a/1", "a/2", "b/1", "a/1"];
        for (at, name) in names.iter().enumerate() {
            streams.add(name, at as u64 + 1);
        }
        assert_eq!(streams.positions("a/1", 1, usize::MAX), [1, 3, 6]);
        assert_eq!(streams.positions("a/1", 2, 1), [3]);
        assert_eq!(streams.positions("a/1", 4, 10), Vec::<u64>::new());
        assert_eq!(streams.positions("b/1", 1, usize::MAX), [2, 5]);
        assert_eq!(streams.positions("a/2", 1, usize::MAX), [4]);
        assert_eq!(streams.positions("c", 1, usize::MAX), Vec::<u64>::new());
        assert_eq!((streams.version("a/1"), streams.version("b/1"), streams.version("a/2"), streams.version("c")), (3, 2, 1, 0));
    }
}
