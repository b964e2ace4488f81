//! [`Name`]: a field name in a [`crate::fields::Record`], shared when it
//! comes from the log.
//!
//! A read model keeps millions of records, and each would own a copy of each
//! of its field names: a few dozen distinct names repeated millions of times,
//! one allocation each. Names decoded from stored events are interned
//! instead: one copy per distinct name for the life of the process, looked up
//! in a small cache per thread, so decoding a record allocates nothing for
//! its names and a record holds only a pointer to each.
//!
//! Only the decoding of a stored payload's record interns: stored events
//! passed validation, so those names are declared fields. Keys of maps nested
//! in values are data and stay owned (erasing a person's data must not leave
//! a copy here), and so do names built from input (`From<String>`), so a
//! client sending made-up field names cannot grow the intern table. The table
//! stops taking names at [`MAX_INTERNED`], and never takes one longer than
//! [`MAX_INTERNED_LEN`] bytes.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Mutex;

/// A field name: interned (`&'static str`, shared) or owned.
#[derive(Clone)]
pub enum Name {
    Interned(&'static str),
    Owned(Box<str>),
}

/// Distinct names the process interns at most (beyond, names are owned).
pub const MAX_INTERNED: usize = 65_536;

/// Longer names are owned (field names are identifiers of a few dozen
/// bytes; this bounds the table at a few megabytes whatever it is fed).
pub const MAX_INTERNED_LEN: usize = 64;

/// Every interned name, leaked once (bounded by [`MAX_INTERNED`]).
static INTERNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

thread_local! {
    /// This thread's view of the interned names (no lock on a hit).
    static CACHE: std::cell::RefCell<HashSet<&'static str>> = std::cell::RefCell::new(HashSet::new());
    /// The names this thread met last, by a cheap hash of their bytes: a
    /// record's names come again in the next record, and a hit here costs a
    /// byte comparison instead of hashing.
    static RECENT: [Cell<Option<&'static str>>; RECENT_SLOTS] = const { [const { Cell::new(None) }; RECENT_SLOTS] };
}

const RECENT_SLOTS: usize = 64;

/// A slot for a name from its length and its first and last bytes.
fn slot(name: &str) -> usize {
    let bytes = name.as_bytes();
    let (first, last) = (bytes.first().copied().unwrap_or(0), bytes.last().copied().unwrap_or(0));
    (bytes.len().wrapping_mul(31) ^ usize::from(first).wrapping_mul(7) ^ usize::from(last)) % RECENT_SLOTS
}

impl Name {
    /// The interned copy of `name` (made on first use), or an owned one once
    /// the table is full.
    pub fn interned(name: &str) -> Name {
        if name.len() > MAX_INTERNED_LEN {
            return Name::from(name);
        }
        let at = slot(name);
        if let Some(known) = RECENT.with(|recent| recent[at].get()).filter(|known| *known == name) {
            return Name::Interned(known);
        }
        if let Some(known) = CACHE.with_borrow(|cache| cache.get(name).copied()) {
            RECENT.with(|recent| recent[at].set(Some(known)));
            return Name::Interned(known);
        }
        let mut table = INTERNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let table = table.get_or_insert_with(HashSet::new);
        let known = match table.get(name) {
            Some(known) => *known,
            None if table.len() < MAX_INTERNED => {
                let leaked: &'static str = Box::leak(name.into());
                table.insert(leaked);
                leaked
            }
            None => return Name::from(name),
        };
        CACHE.with_borrow_mut(|cache| cache.insert(known));
        RECENT.with(|recent| recent[at].set(Some(known)));
        Name::Interned(known)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Name::Interned(name) => name,
            Name::Owned(name) => name,
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Name {
    fn from(name: String) -> Name {
        Name::Owned(name.into_boxed_str())
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Name {
        Name::Owned(name.into())
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        match name {
            Name::Interned(name) => name.to_string(),
            Name::Owned(name) => name.into_string(),
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_are_one_copy_and_compare_by_text() {
        let (a, b) = (Name::interned("title"), Name::interned(&String::from("title")));
        match (&a, &b) {
            (Name::Interned(x), Name::Interned(y)) => assert!(std::ptr::eq(*x, *y), "one copy"),
            _ => panic!("decoded names are interned"),
        }
        let other_thread = std::thread::spawn(|| Name::interned("title")).join().unwrap();
        assert_eq!(a, Name::from("title"));
        assert_eq!(a, other_thread);
        let (owned, interned) = (Name::from("a"), Name::interned("b"));
        assert!(owned < interned);
        assert_eq!(String::from(a), "title");
        assert!(matches!(Name::interned(&"x".repeat(MAX_INTERNED_LEN + 1)), Name::Owned(_)), "long names are owned");
    }
}
