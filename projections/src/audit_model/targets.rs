//! [`Targets`]: each audited target (an object's name and a record's id, or
//! `object` and an object's name) once, numbered in the order first seen.
//! The ids are kept end to end in one string, found through a hash table of
//! numbers that hashes the id where the string holds it: a target costs its
//! id's bytes and about 30 more, where a shared string per id and a list of
//! entries per target cost about 200.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// No entry: the end of a chain of entries.
pub(super) const NONE: u32 = u32::MAX;

/// One target: its object's name (a code in the model's names), where its id
/// is in the string of ids, and its newest entry.
#[derive(Debug, Clone, Copy)]
struct Target {
    start: u64,
    len: u32,
    object: u32,
    newest: u32,
}

/// Targets by number, and numbers by target.
#[derive(Default)]
pub(super) struct Targets {
    ids: String,
    targets: Vec<Target>,
    lookup: HashTable<u32>,
    hasher: foldhash::quality::RandomState,
}

impl Targets {
    pub(super) fn len(&self) -> usize {
        self.targets.len()
    }

    /// The target's object (a name's code) and id.
    pub(super) fn get(&self, target: u32) -> (u32, &str) {
        let t = &self.targets[target as usize];
        (t.object, &self.ids[t.start as usize..t.start as usize + t.len as usize])
    }

    /// The target's newest entry ([`NONE`] before its first).
    pub(super) fn newest(&self, target: u32) -> u32 {
        self.targets[target as usize].newest
    }

    pub(super) fn set_newest(&mut self, target: u32, entry: u32) {
        self.targets[target as usize].newest = entry;
    }

    /// The number of a target, if it is known.
    pub(super) fn find(&self, object: u32, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one((object, id));
        self.lookup.find(hash, |at| self.get(*at) == (object, id)).copied()
    }

    /// The number of a target, added when new.
    pub(super) fn intern(&mut self, object: u32, id: &str) -> u32 {
        if let Some(known) = self.find(object, id) {
            return known;
        }
        self.push(object, id)
    }

    /// Adds a target not known yet; `Err` when it is (a saved list that names one twice).
    pub(super) fn add_new(&mut self, object: u32, id: &str) -> Result<u32, String> {
        match self.find(object, id) {
            Some(_) => Err(format!("the audit target {object}/{id} is listed twice")),
            None => Ok(self.push(object, id)),
        }
    }

    fn push(&mut self, object: u32, id: &str) -> u32 {
        let at = u32::try_from(self.targets.len()).ok().filter(|at| *at != NONE).expect("fewer than 2^32 - 1 audited targets");
        let len = u32::try_from(id.len()).expect("a record id shorter than 4 GiB");
        self.targets.push(Target { start: self.ids.len() as u64, len, object, newest: NONE });
        self.ids.push_str(id);
        let Targets { ids, targets, lookup, hasher } = self;
        let hash = hasher.hash_one((object, id));
        lookup.insert_unique(hash, at, |n| {
            let t = &targets[*n as usize];
            hasher.hash_one((t.object, &ids[t.start as usize..t.start as usize + t.len as usize]))
        });
        at
    }

    /// Room for this many more targets and id bytes (a snapshot's load).
    pub(super) fn reserve(&mut self, targets: usize, id_bytes: usize) {
        self.targets.reserve(targets);
        self.ids.reserve(id_bytes);
        let Targets { ids, targets: known, lookup, hasher } = self;
        lookup.reserve(targets, |n| {
            let t = &known[*n as usize];
            hasher.hash_one((t.object, &ids[t.start as usize..t.start as usize + t.len as usize]))
        });
    }
}
