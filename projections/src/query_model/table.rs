//! One object's rows, ordered by id so that scans and ties are deterministic,
//! with ordered indexes on the fields worth indexing (equality, ranges, `in`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use domain::metadata::{FieldType, ObjectDef};
use domain::value::{Record, Value};

use super::rows::Rows;

/// How a field's values are keyed in its index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum KeyKind {
    Number,
    Bool,
    Text,
}

/// An index key over some text type; nulls are not indexed. Equality is the
/// order's (numbers by `total_cmp`), so a key always equals itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<T> {
    Bool(bool),
    Num(f64),
    Text(T),
}

/// A key kept in an index.
pub(crate) type IndexKey = Key<String>;

/// A key borrowed from a row, to sort a whole column without copies.
pub(super) type KeyRef<'a> = Key<&'a str>;

impl<T: Ord> PartialEq for Key<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl<T: Ord> Eq for Key<T> {}

impl<T: Ord> PartialOrd for Key<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Key<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use Key::*;
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

impl KeyRef<'_> {
    fn owned(self) -> IndexKey {
        match self {
            Key::Bool(b) => Key::Bool(b),
            Key::Num(n) => Key::Num(n),
            Key::Text(s) => Key::Text(s.to_string()),
        }
    }
}

impl KeyKind {
    /// The key a value has (stored or queried), as the in-process model compares it.
    pub fn key(self, value: &Value) -> Option<IndexKey> {
        self.key_ref(value).map(KeyRef::owned)
    }

    /// The same key, borrowed from the value.
    pub(super) fn key_ref(self, value: &Value) -> Option<KeyRef<'_>> {
        match (self, value) {
            (KeyKind::Number, Value::Int(i)) => Some(Key::Num(*i as f64)),
            (KeyKind::Number, Value::Float(f)) => Some(Key::Num(*f)),
            (KeyKind::Number, Value::Text(s)) => s.trim().parse::<f64>().ok().map(Key::Num),
            (KeyKind::Bool, Value::Bool(b)) => Some(Key::Bool(*b)),
            (KeyKind::Text, Value::Text(s)) => Some(Key::Text(s)),
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

/// The ids that share one key, in id order: one inline (every key of a
/// unique field), a sorted vector while few, a B-tree once many.
#[derive(Debug, Clone)]
pub(crate) enum IdSet {
    One(Arc<str>),
    Few(Vec<Arc<str>>),
    Many(BTreeSet<Arc<str>>),
}

/// Above this many ids a key's set becomes a B-tree.
const FEW: usize = 32;

impl Default for IdSet {
    fn default() -> Self {
        IdSet::Few(Vec::new())
    }
}

impl IdSet {
    pub(super) fn from_sorted(mut ids: Vec<Arc<str>>) -> IdSet {
        if ids.len() == 1 {
            IdSet::One(ids.pop().expect("one id"))
        } else if ids.len() <= FEW {
            IdSet::Few(ids)
        } else {
            IdSet::Many(ids.into_iter().collect())
        }
    }

    /// Adds an id; false when it was there.
    fn insert(&mut self, id: &Arc<str>) -> bool {
        match self {
            IdSet::One(own) if **own == **id => false,
            IdSet::One(own) => {
                let own = own.clone();
                *self = IdSet::Few(if *own < **id { vec![own, id.clone()] } else { vec![id.clone(), own] });
                true
            }
            IdSet::Few(ids) if ids.is_empty() => {
                *self = IdSet::One(id.clone());
                true
            }
            IdSet::Few(ids) => match ids.binary_search_by(|probe| (**probe).cmp(id)) {
                Ok(_) => false,
                Err(at) => {
                    ids.insert(at, id.clone());
                    if ids.len() > FEW {
                        *self = IdSet::Many(std::mem::take(ids).into_iter().collect());
                    }
                    true
                }
            },
            IdSet::Many(ids) => ids.insert(id.clone()),
        }
    }

    /// Removes an id; false when it was not there.
    fn remove(&mut self, id: &str) -> bool {
        match self {
            IdSet::One(own) if **own == *id => {
                *self = IdSet::default();
                true
            }
            IdSet::One(_) => false,
            IdSet::Few(ids) => match ids.binary_search_by(|probe| (**probe).cmp(id)) {
                Ok(at) => {
                    ids.remove(at);
                    true
                }
                Err(_) => false,
            },
            IdSet::Many(ids) => ids.remove(id),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            IdSet::One(_) => 1,
            IdSet::Few(ids) => ids.len(),
            IdSet::Many(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        match self {
            IdSet::One(own) => **own == *id,
            IdSet::Few(ids) => ids.binary_search_by(|probe| (**probe).cmp(id)).is_ok(),
            IdSet::Many(ids) => ids.contains(id),
        }
    }

    /// The ids in id order.
    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = &str> + '_> {
        match self {
            IdSet::One(id) => Box::new(std::iter::once(&**id)),
            IdSet::Few(ids) => Box::new(ids.iter().map(|id| &**id)),
            IdSet::Many(ids) => Box::new(ids.iter().map(|id| &**id)),
        }
    }
}

/// One field's ordered index: key -> ids, and how many rows it holds.
pub(super) struct FieldIndex {
    kind: KeyKind,
    keys: BTreeMap<IndexKey, IdSet>,
    /// Rows with a value for the field (nulls are not indexed).
    count: usize,
}

impl FieldIndex {
    fn add(&mut self, id: &Arc<str>, key: IndexKey) {
        if self.keys.entry(key).or_default().insert(id) {
            self.count += 1;
        }
    }

    fn remove(&mut self, id: &str, key: &IndexKey) {
        if let Some(ids) = self.keys.get_mut(key) {
            if ids.remove(id) {
                self.count -= 1;
            }
            if ids.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// Every key with its ids (tests compare indexes built different ways).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(IndexKey, Vec<String>)> {
        self.keys.iter().map(|(k, ids)| (k.clone(), ids.iter().map(String::from).collect())).collect()
    }

    /// An index from keys already grouped (a bulk build).
    pub(super) fn from_groups(kind: KeyKind, keys: BTreeMap<IndexKey, IdSet>, count: usize) -> FieldIndex {
        FieldIndex { kind, keys, count }
    }
}

#[derive(Default)]
pub(crate) struct Table {
    /// Shared so that a page of results is a set of reference counts, not
    /// copies; ids are shared with the indexes.
    rows: Rows,
    /// The indexed fields and their kinds (from the definition).
    fields: Vec<(String, KeyKind)>,
    /// field -> its index; empty while the indexes are deferred.
    indexes: HashMap<String, FieldIndex>,
    /// Rows are loaded without index upkeep; [`Table::build_indexes`] builds them at the end.
    deferred: bool,
}

impl Table {
    /// An empty table; `deferred` while the model is bulk loading.
    pub fn new(deferred: bool) -> Table {
        let mut table = Table::default();
        if deferred {
            table.defer_indexes();
        }
        table
    }

    /// Sets which fields are indexed (from the object's definition) and rebuilds the indexes.
    pub fn configure(&mut self, object: &ObjectDef) {
        let mut fields: Vec<String> = object.fields.iter().map(|f| f.name.clone()).collect();
        fields.extend(INDEXED_SYSTEM_FIELDS.map(String::from));
        self.fields = fields.into_iter().filter_map(|f| KeyKind::of(object, &f).map(|k| (f, k))).collect();
        self.indexes.clear();
        if !self.deferred {
            self.build_indexes();
        }
    }

    /// Stops index upkeep until [`Table::build_indexes`] (bulk loading).
    pub fn defer_indexes(&mut self) {
        self.deferred = true;
        self.indexes.clear();
        self.rows.begin_appending();
    }

    /// Builds every index from the rows at once ([`super::index_build`]) and resumes upkeep.
    pub fn build_indexes(&mut self) {
        self.deferred = false;
        self.rows.settle();
        self.indexes = super::index_build::build_all(&self.fields, self.rows.settled()).into_iter().collect();
    }

    fn index(&mut self, id: &Arc<str>, record: &Record) {
        for (field, index) in self.indexes.iter_mut() {
            if let Some(key) = record.get(field).and_then(|v| index.kind.key(v)) {
                index.add(id, key);
            }
        }
    }

    fn unindex(&mut self, id: &str, record: &Record) {
        for (field, index) in self.indexes.iter_mut() {
            if let Some(key) = record.get(field).and_then(|v| index.kind.key(v)) {
                index.remove(id, &key);
            }
        }
    }

    pub fn put(&mut self, id: String, record: Record) {
        let record = Arc::new(record);
        let (key, old) = self.rows.put(id, record.clone());
        if !self.deferred {
            if let Some(old) = old {
                self.unindex(&key, &old);
            }
            self.index(&key, &record);
        }
    }

    /// Changes some fields of a row (`Null` removes), keeping the indexes right.
    pub fn update(&mut self, id: &str, changes: &[(String, Value)]) {
        let Some((key, mut record)) = self.rows.remove_entry(id) else { return };
        if !self.deferred {
            self.unindex(&key, &record);
        }
        let fields = Arc::make_mut(&mut record);
        for (field, value) in changes {
            match value {
                Value::Null => fields.remove(field),
                value => fields.insert(field.clone(), value.clone()),
            };
        }
        if !self.deferred {
            self.index(&key, &record);
        }
        self.rows.insert(key, record);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.rows.get(id)
    }

    pub fn remove(&mut self, id: &str) {
        if let Some((key, old)) = self.rows.remove_entry(id) {
            if !self.deferred {
                self.unindex(&key, &old);
            }
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
    pub fn ordered_ids(&self, field: &str, descending: bool) -> Option<Box<dyn Iterator<Item = &str> + '_>> {
        let index = self.indexes.get(field)?;
        if index.count != self.rows.len() {
            return None;
        }
        let keys = index.keys.values();
        Some(if descending { Box::new(keys.rev().flat_map(IdSet::iter)) } else { Box::new(keys.flat_map(IdSet::iter)) })
    }

    /// The index of a field: its key kind and a way to look keys up.
    pub fn kind_of(&self, field: &str) -> Option<KeyKind> {
        self.indexes.get(field).map(|index| index.kind)
    }

    /// Ids whose key lies in the range, in key order.
    pub fn range(&self, field: &str, low: Bound<IndexKey>, high: Bound<IndexKey>) -> Vec<&str> {
        let Some(index) = self.indexes.get(field) else { return Vec::new() };
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) = (&low, &high) {
            if a > b {
                return Vec::new();
            }
        }
        index.keys.range((low, high)).flat_map(|(_, ids)| ids.iter()).collect()
    }

    /// Ids with exactly this key, in id order.
    pub fn equal(&self, field: &str, key: &IndexKey) -> Option<&IdSet> {
        self.indexes.get(field).and_then(|index| index.keys.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table first seen during a bulk load (its object defined in the same
    /// log) appends its rows too, not only tables that existed before.
    #[test]
    fn a_table_made_during_a_bulk_load_appends_its_rows() {
        let mut table = Table::new(true);
        for i in 0..10 {
            table.put(format!("r{i:02}"), Record::new());
        }
        assert_eq!(table.rows.tail_len(), 10);
        table.build_indexes();
        assert_eq!((table.rows.tail_len(), table.row_count()), (0, 10));
    }
}
