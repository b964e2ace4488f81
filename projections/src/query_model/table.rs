//! One object's rows ([`super::rows`]) with ordered indexes on the fields
//! worth indexing: each key maps to the slots of its rows
//! ([`super::slots`]), so the planner combines them as bitmaps.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::metadata::{FieldType, ObjectDef};
use domain::value::{Record, Value};
use roaring::RoaringBitmap;

use super::range_cache::RangeCache;
use super::rows::Rows;
use super::slots::{Slot, SlotSet};

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
pub(crate) type KeyRef<'a> = Key<&'a str>;

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

impl IndexKey {
    /// The same key, borrowed (to compare with keys taken from rows).
    pub fn borrowed(&self) -> KeyRef<'_> {
        match self {
            Key::Bool(b) => Key::Bool(*b),
            Key::Num(n) => Key::Num(*n),
            Key::Text(s) => Key::Text(s),
        }
    }
}

impl KeyRef<'_> {
    pub(crate) fn owned(self) -> IndexKey {
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
    pub(crate) fn key_ref(self, value: &Value) -> Option<KeyRef<'_>> {
        match (self, value) {
            (KeyKind::Number, Value::Int(i)) => Some(Key::Num(*i as f64)),
            (KeyKind::Number, Value::Float(f)) => Some(Key::Num(*f)),
            (KeyKind::Number, Value::Text(s)) => s.trim().parse::<f64>().ok().map(Key::Num),
            (KeyKind::Bool, Value::Bool(b)) => Some(Key::Bool(*b)),
            (KeyKind::Text, Value::Text(s)) => Some(Key::Text(s)),
            _ => None,
        }
    }

    /// Whether a value is of this kind itself, not converted to it.
    pub fn is_native(self, value: &Value) -> bool {
        matches!((self, value), (KeyKind::Number, Value::Int(_) | Value::Float(_)) | (KeyKind::Bool, Value::Bool(_)) | (KeyKind::Text, Value::Text(_)))
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

/// The fields of an object its table indexes, and how: every field
/// [`KeyKind::of`] keys, then the system fields worth an index.
pub(crate) fn indexed_fields(object: &ObjectDef) -> Vec<(String, KeyKind)> {
    let mut fields: Vec<String> = object.fields.iter().map(|f| f.name.clone()).collect();
    fields.extend(INDEXED_SYSTEM_FIELDS.map(String::from));
    fields.into_iter().filter_map(|f| KeyKind::of(object, &f).map(|k| (f, k))).collect()
}

/// System fields worth an index (who and when); `id` is the primary key.
const INDEXED_SYSTEM_FIELDS: [&str; 4] = ["created_at", "updated_at", "created_by", "modified_by"];

/// Whether a key lies within two bounds.
pub(crate) fn in_bounds(key: KeyRef, low: &Bound<IndexKey>, high: &Bound<IndexKey>) -> bool {
    let above = match low {
        Bound::Included(low) => key >= low.borrowed(),
        Bound::Excluded(low) => key > low.borrowed(),
        Bound::Unbounded => true,
    };
    above
        && match high {
            Bound::Included(high) => key <= high.borrowed(),
            Bound::Excluded(high) => key < high.borrowed(),
            Bound::Unbounded => true,
        }
}

/// Whether two keys, next to each other in key order, sort the other way
/// round as values (text sorts case-insensitively: `Low` comes after `high`).
fn out_of_sort(a: &IndexKey, b: &IndexKey) -> bool {
    match (a, b) {
        (Key::Text(a), Key::Text(b)) => super::text_order(a, b) != std::cmp::Ordering::Less,
        _ => false,
    }
}

/// One field's ordered index: key -> slots, the slots with a value, and how
/// many keys would sort differently as text.
pub(crate) struct FieldIndex {
    kind: KeyKind,
    keys: BTreeMap<IndexKey, SlotSet>,
    /// Slots with a value for the field (nulls are not indexed).
    present: RoaringBitmap,
    /// Neighbouring keys whose sort order as values is not their key order
    /// (none: walking the keys walks the sort).
    disordered: usize,
    /// Rows whose value is not of the index's own kind (a number given as
    /// text): keyed as their kind, but sorted as values they compare otherwise.
    loose: usize,
    /// Wide ranges kept built, kept right by every add and remove.
    ranges: Mutex<RangeCache>,
}

impl FieldIndex {
    fn add(&mut self, slot: Slot, key: IndexKey, native: bool) {
        self.loose += usize::from(!native);
        self.ranges.get_mut().unwrap_or_else(PoisonError::into_inner).add(slot, &key);
        if let Some(set) = self.keys.get_mut(&key) {
            set.insert(slot);
        } else {
            let (gone, new) = self.pairs_around(&key);
            self.disordered = self.disordered + new - gone;
            self.keys.insert(key, SlotSet::One(slot));
        }
        self.present.insert(slot);
    }

    fn remove(&mut self, slot: Slot, key: &IndexKey, native: bool) {
        self.loose -= usize::from(!native);
        self.ranges.get_mut().unwrap_or_else(PoisonError::into_inner).remove(slot, key);
        if let Some(set) = self.keys.get_mut(key) {
            set.remove(slot);
            if set.is_empty() {
                self.keys.remove(key);
                let (back, gone) = self.pairs_around(key);
                self.disordered = self.disordered + back - gone;
            }
        }
        self.present.remove(slot);
    }

    /// For a key not in the index: how many out-of-sort neighbour pairs its
    /// neighbours form now, and how many it would form with them.
    fn pairs_around(&self, key: &IndexKey) -> (usize, usize) {
        let before = self.keys.range((Bound::Unbounded, Bound::Excluded(key))).next_back().map(|(k, _)| k);
        let after = self.keys.range((Bound::Excluded(key), Bound::Unbounded)).next().map(|(k, _)| k);
        let now = match (before, after) {
            (Some(b), Some(a)) => usize::from(out_of_sort(b, a)),
            _ => 0,
        };
        let with = before.map_or(0, |b| usize::from(out_of_sort(b, key))) + after.map_or(0, |a| usize::from(out_of_sort(key, a)));
        (now, with)
    }

    /// Rows whose value is not of the index's own kind.
    #[cfg(test)]
    pub(super) fn loose(&self) -> usize {
        self.loose
    }

    /// Every key with its slots (tests compare indexes built different ways).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(IndexKey, Vec<Slot>)> {
        self.keys.iter().map(|(k, slots)| (k.clone(), slots.iter().collect())).collect()
    }

    /// An index from keys already grouped (a bulk build).
    pub(super) fn from_groups(kind: KeyKind, keys: BTreeMap<IndexKey, SlotSet>, present: RoaringBitmap, loose: usize) -> FieldIndex {
        let disordered = keys.keys().zip(keys.keys().skip(1)).filter(|(a, b)| out_of_sort(a, b)).count();
        FieldIndex { kind, keys, present, disordered, loose, ranges: Mutex::default() }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The slots with exactly this key.
    pub fn equal(&self, key: &IndexKey) -> Option<&SlotSet> {
        self.keys.get(key)
    }

    /// The slot sets of the keys in a range, in key order.
    pub fn range(&self, low: Bound<IndexKey>, high: Bound<IndexKey>) -> impl DoubleEndedIterator<Item = &SlotSet> {
        let empty = match (&low, &high) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a >= b,
            _ => false,
        };
        let range = if empty { None } else { Some(self.keys.range((low, high)).map(|(_, slots)| slots)) };
        range.into_iter().flatten()
    }

    /// The ranges this index keeps built.
    pub fn kept_ranges(&self) -> MutexGuard<'_, RangeCache> {
        self.ranges.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slots with a value.
    pub fn present(&self) -> &RoaringBitmap {
        &self.present
    }

    /// Whether the key order is the order a sort on the field gives.
    pub fn sorts_like_values(&self) -> bool {
        self.disordered == 0 && self.loose == 0
    }
}

#[derive(Default)]
pub(crate) struct Table {
    /// Shared so that a page of results is a set of reference counts, not
    /// copies; ids are shared with the id order.
    pub(super) rows: Rows,
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
        self.fields = indexed_fields(object);
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

    /// Numbers the rows in id order and builds every index from them at once
    /// ([`super::index_build`]), and resumes upkeep.
    pub fn build_indexes(&mut self) {
        self.deferred = false;
        self.rows.renumber();
        self.indexes = super::index_build::build_all(&self.fields, &self.rows).into_iter().collect();
    }

    /// Whether the indexes are kept (not deferred).
    #[cfg(test)]
    pub fn keeps_indexes(&self) -> bool {
        !self.deferred
    }

    /// Ends a bulk load: builds the indexes unless they are kept already
    /// (taken from a snapshot, [`Table::adopt_saved`]).
    pub fn end_bulk(&mut self) {
        if self.deferred {
            self.build_indexes();
        }
    }

    /// The fields this table indexes, and how.
    pub fn indexed(&self) -> &[(String, KeyKind)] {
        &self.fields
    }

    /// Takes indexes a snapshot saved for the rows just loaded, instead of
    /// building them, and resumes upkeep at once (so what the load folds
    /// after the snapshot keeps them right, and the bulk load's end leaves
    /// them be). The caller vouches that the rows were loaded into an empty
    /// table in strictly increasing id order: the slots the indexes name,
    /// the rows' places in the file, are then the slots the rows hold once
    /// numbered in id order. Taken only while deferred and when they are
    /// exactly the indexes this table keeps (fields and kinds, in order);
    /// returns whether they were.
    pub fn adopt_saved(&mut self, saved: Vec<(String, FieldIndex)>) -> bool {
        let same =
            saved.len() == self.fields.len() && saved.iter().zip(&self.fields).all(|((field, index), (name, kind))| field == name && index.kind == *kind);
        if !self.deferred || !same {
            return false;
        }
        self.deferred = false;
        self.rows.renumber();
        self.indexes = saved.into_iter().collect();
        true
    }

    fn index(&mut self, slot: Slot, record: &Record) {
        for (field, index) in self.indexes.iter_mut() {
            if let Some(value) = record.get(field) {
                if let Some(key) = index.kind.key(value) {
                    index.add(slot, key, index.kind.is_native(value));
                }
            }
        }
    }

    fn unindex(&mut self, slot: Slot, record: &Record) {
        for (field, index) in self.indexes.iter_mut() {
            if let Some(value) = record.get(field) {
                if let Some(key) = index.kind.key(value) {
                    index.remove(slot, &key, index.kind.is_native(value));
                }
            }
        }
    }

    pub fn put(&mut self, id: String, record: Record) {
        self.put_shared(id, Arc::new(record));
    }

    /// [`Table::put`] with a record (and an id) shared with someone else.
    pub fn put_shared(&mut self, id: impl AsRef<str> + Into<Arc<str>>, record: Arc<Record>) {
        let (slot, old) = self.rows.put(id, record.clone());
        if !self.deferred {
            if let Some(old) = old {
                self.unindex(slot, &old);
            }
            self.index(slot, &record);
        }
    }

    /// Changes some fields of a row (`Null` removes), keeping the indexes right.
    pub fn update(&mut self, id: &str, changes: &[(String, Value)]) {
        let Some(slot) = self.rows.slot_of(id) else { return };
        let Some(current) = self.rows.row(slot).map(|row| row.record.clone()) else { return };
        if !self.deferred {
            self.unindex(slot, &current);
        }
        drop(current);
        let record = self.rows.record_mut(slot).expect("the slot of a row");
        let fields = Arc::make_mut(record);
        for (field, value) in changes {
            match value {
                Value::Null => fields.remove(field),
                value => fields.insert(field.clone(), value.clone()),
            };
        }
        if !self.deferred {
            let record = record.clone();
            self.index(slot, &record);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.rows.get(id)
    }

    pub fn remove(&mut self, id: &str) {
        if let Some((slot, old)) = self.rows.remove(id) {
            if !self.deferred {
                self.unindex(slot, &old);
                if self.rows.wants_renumber() {
                    self.build_indexes();
                }
            }
        }
    }

    /// Every row's id and record, shared, in id order.
    pub fn shared_rows(&self) -> crate::history::SharedRows {
        self.rows.slots_by_id().filter_map(|slot| self.rows.row(slot)).map(|row| (row.id.clone(), row.record.clone())).collect()
    }

    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// A field's index.
    pub fn index_of(&self, field: &str) -> Option<&FieldIndex> {
        self.indexes.get(field)
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
