//! [`Texts`]: distinct texts numbered in the order first seen, each under a
//! scope (a number the caller gives: an object's name code, or 0 when there
//! is one scope), so the same text in two scopes is two texts. The texts are
//! kept end to end in one string, and found through a hash table of numbers
//! that hashes a text where that string holds it: a text costs its bytes and
//! about 21 more (its place, length and scope, and its slot in the table),
//! where an owned string per text in a map cost about a hundred. Read models
//! and the embedded log's index keep millions of ids and names this way.

use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// Where one text is, and its scope.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    len: u32,
    scope: u32,
}

/// Texts by number, and numbers by scope and text.
#[derive(Default)]
pub struct Texts {
    bytes: String,
    spans: Vec<Span>,
    lookup: HashTable<u32>,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts").field("texts", &self.spans.len()).finish()
    }
}

/// The text a span names in `bytes`.
fn text_at<'a>(bytes: &'a str, span: &Span) -> &'a str {
    &bytes[span.start as usize..span.start as usize + span.len as usize]
}

impl Texts {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The scope and text numbered `code`.
    pub fn get(&self, code: u32) -> (u32, &str) {
        let span = &self.spans[code as usize];
        (span.scope, text_at(&self.bytes, span))
    }

    /// The text numbered `code`.
    pub fn text(&self, code: u32) -> &str {
        self.get(code).1
    }

    /// Every text, by number.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> {
        self.spans.iter().map(|span| text_at(&self.bytes, span))
    }

    /// Every text end to end, by number (what [`Texts::texts`] gives, joined):
    /// the string they are kept in.
    pub fn joined(&self) -> &str {
        &self.bytes
    }

    /// The number of a text in a scope, if it is there.
    pub fn find(&self, scope: u32, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one((scope, text));
        self.lookup.find(hash, |code| self.get(*code) == (scope, text)).copied()
    }

    /// The number of a text in a scope, added when new.
    pub fn intern(&mut self, scope: u32, text: &str) -> u32 {
        self.find_or_push(scope, text).0
    }

    /// Adds a text not there yet; `Err` when it is (a saved list that names one twice).
    pub fn add_new(&mut self, scope: u32, text: &str) -> Result<u32, String> {
        match self.find_or_push(scope, text) {
            (_, false) => Err(format!("the text '{text}' is listed twice")),
            (code, true) => Ok(code),
        }
    }

    /// Room for this many more texts and bytes (a snapshot's load).
    pub fn reserve(&mut self, texts: usize, bytes: usize) {
        self.spans.reserve(texts);
        self.bytes.reserve(bytes);
        let Texts { bytes, spans, lookup, hasher } = self;
        lookup.reserve(texts, |code| {
            let span = &spans[*code as usize];
            hasher.hash_one((span.scope, text_at(bytes, span)))
        });
    }

    /// The number of a text in a scope, and whether it was added now: one
    /// probe of the table whether the text is there or not (a start interns
    /// millions of ids, each a likely cache miss).
    fn find_or_push(&mut self, scope: u32, text: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one((scope, text));
        let Texts { bytes, spans, lookup, hasher } = self;
        let entry = lookup.entry(
            hash,
            |code| {
                let span = &spans[*code as usize];
                span.scope == scope && text_at(bytes, span) == text
            },
            |code| {
                let span = &spans[*code as usize];
                hasher.hash_one((span.scope, text_at(bytes, span)))
            },
        );
        match entry {
            Entry::Occupied(found) => (*found.get(), false),
            Entry::Vacant(vacant) => {
                let code = u32::try_from(spans.len()).ok().filter(|code| *code != u32::MAX).expect("fewer than 2^32 - 1 texts");
                let len = u32::try_from(text.len()).expect("a text shorter than 4 GiB");
                spans.push(Span { start: bytes.len() as u64, len, scope });
                bytes.push_str(text);
                vacant.insert(code);
                (code, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Texts;

    #[test]
    fn texts_are_numbered_once_per_scope_in_the_order_first_seen() {
        let mut texts = Texts::default();
        let words: Vec<String> = (0..5000).map(|n| format!("w{}", n % 1000)).collect();
        let codes: Vec<u32> = words.iter().map(|w| texts.intern(0, w)).collect();
        assert_eq!(texts.len(), 1000);
        assert_eq!(texts.joined(), texts.texts().collect::<String>());
        for (word, code) in words.iter().zip(&codes) {
            assert_eq!(texts.get(*code), (0, word.as_str()));
            assert_eq!(texts.find(0, word), Some(*code));
        }
        assert_eq!(codes[..3], [0, 1, 2]);
        assert_eq!(texts.find(0, "nowhere"), None);
        assert_eq!(texts.find(1, "w1"), None, "another scope holds other texts");
        assert_eq!(texts.intern(1, "w1"), 1000);
        assert_eq!(texts.get(1000), (1, "w1"));
        assert_eq!(texts.intern(0, ""), 1001, "the empty text is a text like any other");
        assert!(texts.add_new(0, "w5").is_err());
        assert_eq!(texts.add_new(2, "w5"), Ok(1002));
        assert_eq!(texts.texts().nth(1002), Some("w5"));
    }
}
