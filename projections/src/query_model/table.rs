//! One object's rows, ordered by id so that scans and ties are deterministic,
//! with ordered indexes on the fields worth indexing (equality, ranges, `in`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use domain::metadata::{FieldType, ObjectDef};
use domain::value::{Record, Value};

/// How a field's values are keyed in its index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum KeyKind {
    Number,
    Bool,
    Text,
}

/// An index key; nulls are not indexed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IndexKey {
    Bool(bool),
    Num(f64),
    Text(String),
}

impl Eq for IndexKey {}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IndexKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use IndexKey::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Num(a), Num(b)) => a.total_cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Bool(_), _) => std::cmp::Ordering::Less,
            (_, Bool(_)) => std::cmp::Ordering::Greater,
            (Num(_), _) => std::cmp::Ordering::Less,
            (_, Num(_)) => std::cmp::Ordering::Greater,
        }
    }
}

impl KeyKind {
    /// The key a value has (stored or queried), as the in-process model compares it.
    pub fn key(self, value: &Value) -> Option<IndexKey> {
        match (self, value) {
            (KeyKind::Number, Value::Int(i)) => Some(IndexKey::Num(*i as f64)),
            (KeyKind::Number, Value::Float(f)) => Some(IndexKey::Num(*f)),
            (KeyKind::Number, Value::Text(s)) => s.trim().parse::<f64>().ok().map(IndexKey::Num),
            (KeyKind::Bool, Value::Bool(b)) => Some(IndexKey::Bool(*b)),
            (KeyKind::Text, Value::Text(s)) => Some(IndexKey::Text(s.clone())),
            _ => None,
        }
    }

    /// Which fields are indexed: every single-valued field but long text and composites.
    pub fn of(object: &ObjectDef, field: &str) -> Option<KeyKind> {
        if INDEXED_SYSTEM_FIELDS.contains(&field) {
            return Some(KeyKind::Text);
        }
        let definition = object.field(field)?;
        if definition.is_list() {
            return None;
        }
        match definition.field_type {
            t if t.is_numeric() && t != FieldType::Summary => Some(KeyKind::Number),
            FieldType::Boolean | FieldType::Toggle => Some(KeyKind::Bool),
            FieldType::Text
            | FieldType::Email
            | FieldType::Url
            | FieldType::Phone
            | FieldType::Select
            | FieldType::Radio
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Time
            | FieldType::Lookup
            | FieldType::MasterDetail
            | FieldType::Tree
            | FieldType::Autonumber
            | FieldType::Color
            | FieldType::Qrcode => Some(KeyKind::Text),
            _ => None,
        }
    }
}

/// System fields worth an index (who and when); `id` is the primary key.
const INDEXED_SYSTEM_FIELDS: [&str; 4] = ["created_at", "updated_at", "created_by", "modified_by"];

#[derive(Default)]
pub(crate) struct Table {
    /// Shared so that a page of results is a set of reference counts, not copies.
    rows: BTreeMap<String, Arc<Record>>,
    /// field -> (kind, key -> ids).
    indexes: HashMap<String, (KeyKind, BTreeMap<IndexKey, BTreeSet<String>>)>,
    /// field -> how many rows its index holds (rows with a value for it).
    indexed: HashMap<String, usize>,
}

impl Table {
    /// Sets which fields are indexed (from the object's definition) and rebuilds the indexes.
    pub fn configure(&mut self, object: &ObjectDef) {
        let mut fields: Vec<String> = object.fields.iter().map(|f| f.name.clone()).collect();
        fields.extend(INDEXED_SYSTEM_FIELDS.map(String::from));
        self.indexes = fields.into_iter().filter_map(|f| KeyKind::of(object, &f).map(|k| (f, (k, BTreeMap::new())))).collect();
        self.indexed = self.indexes.keys().map(|f| (f.clone(), 0)).collect();
        let rows: Vec<(String, Arc<Record>)> = self.rows.iter().map(|(id, r)| (id.clone(), r.clone())).collect();
        for (id, record) in rows {
            self.index(&id, &record, true);
        }
    }

    fn index(&mut self, id: &str, record: &Record, add: bool) {
        for (field, (kind, index)) in self.indexes.iter_mut() {
            let Some(key) = record.get(field).and_then(|v| kind.key(v)) else { continue };
            let Some(count) = self.indexed.get_mut(field) else { continue };
            if add {
                if index.entry(key).or_default().insert(id.to_string()) {
                    *count += 1;
                }
            } else if let Some(ids) = index.get_mut(&key) {
                if ids.remove(id) {
                    *count -= 1;
                }
                if ids.is_empty() {
                    index.remove(&key);
                }
            }
        }
    }

    pub fn put(&mut self, id: String, record: Record) {
        if let Some(old) = self.rows.remove(&id) {
            self.index(&id, &old, false);
        }
        self.index(&id, &record, true);
        self.rows.insert(id, Arc::new(record));
    }

    /// Changes some fields of a row (`Null` removes), keeping the indexes right.
    pub fn update(&mut self, id: &str, changes: &[(String, Value)]) {
        let Some(mut record) = self.rows.remove(id) else { return };
        self.index(id, &record, false);
        let fields = Arc::make_mut(&mut record);
        for (field, value) in changes {
            match value {
                Value::Null => fields.remove(field),
                value => fields.insert(field.clone(), value.clone()),
            };
        }
        self.index(id, &record, true);
        self.rows.insert(id.to_string(), record);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.rows.get(id)
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(old) = self.rows.remove(id) {
            self.index(id, &old, false);
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.rows.values()
    }

    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Ids in the order of a field's index (ascending or descending), when
    /// every row has a value for it (nulls are not indexed, and must sort too).
    pub fn ordered_ids(&self, field: &str, descending: bool) -> Option<Box<dyn Iterator<Item = &String> + '_>> {
        let (_, index) = self.indexes.get(field)?;
        if self.indexed.get(field).copied().unwrap_or(0) != self.rows.len() {
            return None;
        }
        Some(if descending { Box::new(index.values().rev().flat_map(|ids| ids.iter())) } else { Box::new(index.values().flat_map(|ids| ids.iter())) })
    }

    /// The index of a field: its key kind and a way to look keys up.
    pub fn kind_of(&self, field: &str) -> Option<KeyKind> {
        self.indexes.get(field).map(|(k, _)| *k)
    }

    /// Ids whose key lies in the range, in key order.
    pub fn range(&self, field: &str, low: Bound<IndexKey>, high: Bound<IndexKey>) -> Vec<&String> {
        let Some((_, index)) = self.indexes.get(field) else { return Vec::new() };
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) = (&low, &high) {
            if a > b {
                return Vec::new();
            }
        }
        index.range((low, high)).flat_map(|(_, ids)| ids.iter()).collect()
    }

    /// Ids with exactly this key, in id order.
    pub fn equal(&self, field: &str, key: &IndexKey) -> Option<&BTreeSet<String>> {
        self.indexes.get(field).and_then(|(_, index)| index.get(key))
    }
}
