//! The text of one record as the search model keeps it (so an update or a
//! changed definition can re-index the whole document): its text values by
//! field, in one vector sorted by field name, with field names shared by
//! every record. It is stored in the record's document (`to_bytes`), and held
//! in memory only while a change to it waits for a commit.

use std::sync::Arc;

use domain::value::{Record, Value};

use crate::names::Names;

/// A record's text values, by field name: every field with text but the
/// system fields (they cannot be declared, so no definition makes them searchable).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct RecordTexts(Vec<(Arc<str>, Box<str>)>);

/// The text of a value (lists joined), if it has any.
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) if !s.is_empty() => Some(s.clone()),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().filter_map(text_of).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => None,
    }
}

/// Whether a field's text is kept: system fields' is not.
fn kept(field: &str) -> bool {
    !domain::metadata::SYSTEM_FIELDS.contains(&field)
}

impl RecordTexts {
    pub(super) fn of(record: &Record, names: &mut Names) -> RecordTexts {
        // The record is in field-name order, so these are too.
        RecordTexts(record.iter().filter(|(k, _)| kept(k)).filter_map(|(k, v)| text_of(v).map(|t| (names.get(k), t.into_boxed_str()))).collect())
    }

    pub(super) fn get(&self, field: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(field)).ok().map(|at| &*self.0[at].1)
    }

    /// Drops the text of fields `keep` refuses (a field that became a password).
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }

    /// The stored form: a JSON array of field and text, alternating.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let flat: Vec<&str> = self.0.iter().flat_map(|(k, v)| [&**k, &**v]).collect();
        serde_json::to_vec(&flat).expect("strings serialize")
    }

    /// Reads the stored form back; `None` when it is not one.
    pub(super) fn from_bytes(bytes: &[u8], names: &mut Names) -> Option<RecordTexts> {
        let flat: Vec<String> = serde_json::from_slice(bytes).ok()?;
        if !flat.len().is_multiple_of(2) {
            return None;
        }
        let mut texts: Vec<(Arc<str>, Box<str>)> = flat.chunks(2).map(|pair| (names.get(&pair[0]), pair[1].clone().into_boxed_str())).collect();
        texts.sort_by(|a, b| a.0.cmp(&b.0));
        Some(RecordTexts(texts))
    }

    /// Sets a field's text (`None` removes it).
    pub(super) fn set(&mut self, field: &str, text: Option<String>, names: &mut Names) {
        if !kept(field) {
            return;
        }
        match (self.0.binary_search_by(|(k, _)| (**k).cmp(field)), text) {
            (Ok(at), Some(text)) => self.0[at].1 = text.into_boxed_str(),
            (Ok(at), None) => {
                self.0.remove(at);
            }
            (Err(at), Some(text)) => self.0.insert(at, (names.get(field), text.into_boxed_str())),
            (Err(_), None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_by_field() {
        let mut names = Names::default();
        let mut record = Record::new();
        record.insert("id", Value::Text("r1".into()));
        record.insert("created_by", Value::Text("ann".into()));
        record.insert("title", Value::Text("Hello".into()));
        record.insert("tags", Value::List(vec![Value::Text("a".into()), Value::Int(3), Value::Text("b".into())]));
        record.insert("amount", Value::Int(3));
        let mut texts = RecordTexts::of(&record, &mut names);
        assert_eq!(
            (texts.get("id"), texts.get("created_by"), texts.get("title"), texts.get("tags"), texts.get("amount")),
            (None, None, Some("Hello"), Some("a b"), None)
        );
        texts.set("body", Some("new".into()), &mut names);
        texts.set("title", None, &mut names);
        texts.set("tags", Some("c".into()), &mut names);
        texts.set("updated_at", Some("2026-11-24T00:00:00Z".into()), &mut names);
        assert_eq!((texts.get("body"), texts.get("title"), texts.get("tags"), texts.get("updated_at")), (Some("new"), None, Some("c"), None));
        let other = RecordTexts::of(&record, &mut names);
        assert!(Arc::ptr_eq(&texts.0[0].0, &names.get("body")) && Arc::ptr_eq(&other.0[0].0, &names.get("tags")), "names are shared");
        let stored = RecordTexts::from_bytes(&texts.to_bytes(), &mut names).expect("its own stored form");
        assert_eq!(stored, texts);
        assert_eq!(RecordTexts::from_bytes(b"[\"odd\"]", &mut names), None);
        assert_eq!(RecordTexts::from_bytes(b"not json", &mut names), None);
    }
}
