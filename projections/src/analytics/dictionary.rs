//! A text column's dictionary: each distinct text once, numbered in the order
//! first seen, found by text through a hash table of codes that hashes the
//! text where the dictionary holds it. Before, the text was held twice (the
//! list, and a map from text to code), and a table's ids a third time.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Distinct texts by code, and codes by text.
#[derive(Default)]
pub struct Dictionary {
    texts: Vec<Box<str>>,
    lookup: HashTable<u32>,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("texts", &self.texts.len()).finish()
    }
}

impl Dictionary {
    /// A dictionary of these texts, coded in their order; why not, when one repeats.
    pub fn from_texts(texts: Vec<String>) -> Result<Dictionary, String> {
        let mut dictionary = Dictionary { texts: Vec::with_capacity(texts.len()), ..Dictionary::default() };
        dictionary.lookup.reserve(texts.len(), |_| 0);
        for text in texts {
            let before = dictionary.len();
            if dictionary.intern(&text) as usize != before {
                return Err(format!("the text '{text}' is in the dictionary twice"));
            }
        }
        Ok(dictionary)
    }

    /// The code of a text, if the dictionary holds it.
    pub fn code_of(&self, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        self.lookup.find(hash, |code| &*self.texts[*code as usize] == text).copied()
    }

    /// The code of a text, added when new.
    pub fn intern(&mut self, text: &str) -> u32 {
        let Dictionary { texts, lookup, hasher } = self;
        let hash = hasher.hash_one(text);
        if let Some(code) = lookup.find(hash, |code| &*texts[*code as usize] == text) {
            return *code;
        }
        let code = u32::try_from(texts.len()).expect("fewer than 2^32 distinct texts in a column");
        texts.push(text.into());
        lookup.insert_unique(hash, code, |code| hasher.hash_one(&*texts[*code as usize]));
        code
    }

    pub fn text(&self, code: u32) -> &str {
        &self.texts[code as usize]
    }

    /// Every text, by code.
    pub fn texts(&self) -> &[Box<str>] {
        &self.texts
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_coded_once_in_the_order_first_seen() {
        let mut dictionary = Dictionary::default();
        let words: Vec<String> = (0..5000).map(|n| format!("w{}", n % 1000)).collect();
        let codes: Vec<u32> = words.iter().map(|w| dictionary.intern(w)).collect();
        assert_eq!(dictionary.len(), 1000);
        for (word, code) in words.iter().zip(&codes) {
            assert_eq!(dictionary.text(*code), word);
            assert_eq!(dictionary.code_of(word), Some(*code));
        }
        assert_eq!(codes[..3], [0, 1, 2]);
        assert_eq!(dictionary.code_of("nowhere"), None);
        assert_eq!(dictionary.code_of(""), None);
        assert_eq!(dictionary.intern(""), 1000, "the empty text is a text like any other");
        let back = Dictionary::from_texts(dictionary.texts().iter().map(|t| t.to_string()).collect()).unwrap();
        assert_eq!(back.code_of("w999"), Some(999));
        assert_eq!(back.code_of(""), Some(1000));
        assert!(Dictionary::from_texts(vec!["a".into(), "b".into(), "a".into()]).is_err());
    }
}
