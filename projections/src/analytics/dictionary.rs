//! A text column's dictionary: each distinct text once, numbered in the order
//! first seen ([`domain::texts::Texts`] in one scope: the texts end to end in
//! one string, found through a hash table of numbers). Before, the text was
//! held twice (the list, and a map from text to code), and a table's ids a
//! third time.

use domain::texts::Texts;

/// Distinct texts by code, and codes by text.
#[derive(Default, Debug)]
pub struct Dictionary(Texts);

impl Dictionary {
    /// A dictionary of these texts, coded in their order; why not, when one repeats.
    pub fn from_texts(texts: Vec<String>) -> Result<Dictionary, String> {
        let mut dictionary = Dictionary::default();
        dictionary.0.reserve(texts.len(), texts.iter().map(String::len).sum());
        for text in texts {
            dictionary.0.add_new(0, &text).map_err(|_| format!("the text '{text}' is in the dictionary twice"))?;
        }
        Ok(dictionary)
    }

    /// The code of a text, if the dictionary holds it.
    pub fn code_of(&self, text: &str) -> Option<u32> {
        self.0.find(0, text)
    }

    /// The code of a text, added when new.
    pub fn intern(&mut self, text: &str) -> u32 {
        self.0.intern(0, text)
    }

    pub fn text(&self, code: u32) -> &str {
        self.0.text(code)
    }

    /// Every text, by code.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.texts()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        let back = Dictionary::from_texts(dictionary.texts().map(str::to_string).collect()).unwrap();
        assert_eq!(back.code_of("w999"), Some(999));
        assert_eq!(back.code_of(""), Some(1000));
        assert!(Dictionary::from_texts(vec!["a".into(), "b".into(), "a".into()]).is_err());
    }
}
