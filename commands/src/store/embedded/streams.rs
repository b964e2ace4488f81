//! [`Streams`]: which positions each stream of the log has, in version
//! order, kept small: each stream's name once, end to end with the others
//! in one string behind a hash table of numbers, its event count and last
//! position; and for each position, the one before it in the same stream.
//! A stream's positions are found by walking those links back from its
//! last. Before, a map from an owned name to a list of positions cost about
//! 150 bytes per stream; this costs the name's bytes and about 40 more, and
//! 8 bytes per event.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// No position (the first event of a stream has none before it).
const NONE: u64 = 0;

/// One stream: where its name is, how many events it has, and its last position.
#[derive(Debug, Clone, Copy)]
struct Stream {
    start: u64,
    len: u32,
    count: u32,
    last: u64,
}

#[derive(Default)]
pub(crate) struct Streams {
    names: String,
    streams: Vec<Stream>,
    lookup: HashTable<u32>,
    hasher: foldhash::quality::RandomState,
    /// `previous[p - 1]`: the position before `p` in `p`'s stream ([`NONE`]: none).
    previous: Vec<u64>,
}

impl Streams {
    fn name(&self, stream: &Stream) -> &str {
        &self.names[stream.start as usize..stream.start as usize + stream.len as usize]
    }

    fn find(&self, name: &str) -> Option<&Stream> {
        let hash = self.hasher.hash_one(name);
        self.lookup.find(hash, |at| self.name(&self.streams[*at as usize]) == name).map(|at| &self.streams[*at as usize])
    }

    /// How many events the stream has (its version); 0 for a stream with none.
    pub(crate) fn version(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |s| u64::from(s.count))
    }

    /// The stream's positions from version `from` (1 is the first), at most `max`.
    pub(crate) fn positions(&self, name: &str, from: u64, max: usize) -> Vec<u64> {
        let Some(stream) = self.find(name) else { return Vec::new() };
        let mut all = Vec::with_capacity(stream.count as usize);
        let mut at = stream.last;
        while at != NONE {
            all.push(at);
            at = self.previous[(at - 1) as usize];
        }
        all.reverse();
        let skip = from.saturating_sub(1) as usize;
        all.into_iter().skip(skip).take(max).collect()
    }

    /// Records the event at `position` (the next after every other) of `name`.
    pub(crate) fn add(&mut self, name: &str, position: u64) {
        debug_assert_eq!(position, self.previous.len() as u64 + 1, "positions are added in order");
        let hash = self.hasher.hash_one(name);
        let Streams { names, streams, lookup, hasher, previous } = self;
        let name_of = |s: &Stream| &names[s.start as usize..s.start as usize + s.len as usize];
        match lookup.find(hash, |at| name_of(&streams[*at as usize]) == name) {
            Some(at) => {
                let stream = &mut streams[*at as usize];
                previous.push(stream.last);
                stream.last = position;
                stream.count = stream.count.checked_add(1).expect("fewer than 2^32 events in a stream");
            }
            None => {
                let at = u32::try_from(streams.len()).expect("fewer than 2^32 streams");
                let len = u32::try_from(name.len()).expect("a stream name shorter than 4 GiB");
                streams.push(Stream { start: names.len() as u64, len, count: 1, last: position });
                names.push_str(name);
                previous.push(NONE);
                lookup.insert_unique(hash, at, |n| {
                    let s = &streams[*n as usize];
                    hasher.hash_one(&names[s.start as usize..s.start as usize + s.len as usize])
                });
            }
        }
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
