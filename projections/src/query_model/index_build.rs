//! Building every index of a table from its rows at once (after a bulk load).
//!
//! One field at a time, a pass over the rows, in slot order, takes its keys,
//! borrowed, into a column, which is then sorted and grouped into one owned
//! key per distinct value. Sorts break ties by slot, so the slots of a key
//! come in order (and need no scratch copy of the column, as a stable sort
//! would). In tables of [`PARALLEL_BUILD_FROM`]
//! rows or more, two threads take the keys of either half of the rows.
//!
//! Sort keys are cheap to compare: a number is its total-order bits, a text
//! its first eight bytes as an integer, with the whole text compared only
//! when those tie (and only when either is longer than eight bytes).

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use domain::value::Record;

use super::rows::Rows;
use super::slots::{Slot, SlotSet};
use super::table::{FieldIndex, Key, KeyKind, KeyRef};

/// Below this many rows, a table's indexes are built on the calling thread.
pub(super) const PARALLEL_BUILD_FROM: usize = 50_000;

/// One field's keys as taken from the rows, ready to sort.
pub(super) enum Column<'a> {
    /// Numbers, and how many were given as text.
    Num(Vec<(u64, f64, Slot)>, usize),
    Bool(Vec<(bool, Slot)>),
    Text(Vec<(u64, &'a str, Slot)>),
}

/// The bits of a number whose unsigned order is `f64::total_cmp`'s.
fn order_bits(n: f64) -> u64 {
    let bits = n.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The first eight bytes of a text, zero-padded, as a big-endian integer:
/// when two differ, the texts compare the same way.
fn prefix(text: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = text.len().min(8);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// Text order, given the prefixes: when they tie and both texts fit in
/// eight bytes, the padding hid only the end, so the shorter comes first.
fn text_order(a: &(u64, &str, Slot), b: &(u64, &str, Slot)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| if a.1.len() <= 8 && b.1.len() <= 8 { a.1.len().cmp(&b.1.len()) } else { a.1.cmp(b.1) })
}

impl<'a> Column<'a> {
    fn new(kind: KeyKind, capacity: usize) -> Column<'a> {
        match kind {
            KeyKind::Number => Column::Num(Vec::with_capacity(capacity), 0),
            KeyKind::Bool => Column::Bool(Vec::with_capacity(capacity)),
            KeyKind::Text => Column::Text(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, kind: KeyKind, value: &'a domain::value::Value, id: Slot) {
        match (self, kind.key_ref(value)) {
            (Column::Num(keys, loose), Some(Key::Num(n))) => {
                keys.push((order_bits(n), n, id));
                *loose += usize::from(!kind.is_native(value));
            }
            (Column::Bool(keys), Some(Key::Bool(b))) => keys.push((b, id)),
            (Column::Text(keys), Some(Key::Text(s))) => keys.push((prefix(s), s, id)),
            _ => {}
        }
    }

    /// Adds the keys of later rows.
    fn append(&mut self, later: Column<'a>) {
        match (self, later) {
            (Column::Num(keys, loose), Column::Num(mut more, more_loose)) => {
                keys.append(&mut more);
                *loose += more_loose;
            }
            (Column::Bool(keys), Column::Bool(mut more)) => keys.append(&mut more),
            (Column::Text(keys), Column::Text(mut more)) => keys.append(&mut more),
            _ => unreachable!("columns of one field have one kind"),
        }
    }

    /// The slots with a key, in order (rows were taken in slot order).
    fn present(&self) -> RoaringBitmap {
        let slots: Box<dyn Iterator<Item = Slot>> = match self {
            Column::Num(keys, _) => Box::new(keys.iter().map(|k| k.2)),
            Column::Bool(keys) => Box::new(keys.iter().map(|k| k.1)),
            Column::Text(keys) => Box::new(keys.iter().map(|k| k.2)),
        };
        RoaringBitmap::from_sorted_iter(slots).expect("rows taken in slot order")
    }

    /// Sorts the keys, then visits each distinct key, borrowed, with its
    /// slots (in order), in key order. Returns the slots with a key and how
    /// many keys were not of the field's own kind.
    pub(super) fn for_each_group(self, mut each: impl FnMut(KeyRef<'_>, &[Slot])) -> (RoaringBitmap, usize) {
        fn group<T, K: PartialEq>(sorted: &[T], key: impl Fn(&T) -> K, id: impl Fn(&T) -> Slot, mut each: impl FnMut(&T, &[Slot])) {
            let mut ids = Vec::new();
            let mut items = sorted.iter().peekable();
            while let Some(first) = items.next() {
                let k = key(first);
                ids.clear();
                ids.push(id(first));
                while let Some(next) = items.next_if(|next| key(next) == k) {
                    ids.push(id(next));
                }
                each(first, &ids);
            }
        }
        let present = self.present();
        match self {
            // Ties broken by slot, which no two keys share: the order a
            // stable sort gives, without the scratch copy of the column it takes.
            Column::Num(mut keys, loose) => {
                keys.sort_unstable_by_key(|k| (k.0, k.2));
                group(&keys, |k| k.0, |k| k.2, |k, ids| each(Key::Num(k.1), ids));
                (present, loose)
            }
            Column::Bool(mut keys) => {
                keys.sort_unstable_by_key(|k| (k.0, k.1));
                group(&keys, |k| k.0, |k| k.1, |k, ids| each(Key::Bool(k.0), ids));
                (present, 0)
            }
            Column::Text(mut keys) => {
                keys.sort_unstable_by(|a, b| text_order(a, b).then(a.2.cmp(&b.2)));
                group(&keys, |k| (k.0, k.1), |k| k.2, |k, ids| each(Key::Text(k.1), ids));
                (present, 0)
            }
        }
    }

    /// Sorts the keys and groups them: one owned key per distinct value.
    pub(super) fn into_index(self, kind: KeyKind) -> FieldIndex {
        // Sized for the worst case (every key distinct): pages never
        // written are never backed, and the vector never moves.
        let mut grouped = Vec::with_capacity(self.len());
        let (present, loose) = self.for_each_group(|key, ids| {
            let ids = match ids {
                // A unique key (every key of a unique field): no vector.
                [one] => SlotSet::One(*one),
                // In order already: the sort broke ties by slot.
                many => SlotSet::from_unsorted(many.to_vec()),
            };
            grouped.push((key.owned(), ids));
        });
        FieldIndex::from_groups(kind, BTreeMap::from_iter(grouped), present, loose)
    }

    fn len(&self) -> usize {
        match self {
            Column::Num(keys, _) => keys.len(),
            Column::Bool(keys) => keys.len(),
            Column::Text(keys) => keys.len(),
        }
    }
}

/// Every index of `fields` over `rows`, built at once.
pub(super) fn build_all(fields: &[(String, KeyKind)], rows: &Rows) -> Vec<(String, FieldIndex)> {
    let rows: Vec<(Slot, &Record)> = rows.by_slot().map(|(slot, row)| (slot, &*row.record)).collect();
    let parallel = rows.len() >= PARALLEL_BUILD_FROM;
    build(fields, &rows, parallel)
}

/// One field's keys from some rows, in the rows' order.
fn extract<'a>(field: &str, kind: KeyKind, rows: &[(Slot, &'a Record)], capacity: usize) -> Column<'a> {
    let mut column = Column::new(kind, capacity);
    let mut at = 0;
    for (slot, record) in rows {
        let (value, found) = record.get_hinted(field, at);
        at = found;
        if let Some(value) = value {
            column.push(kind, value, *slot);
        }
    }
    column
}

/// One field's keys over `rows` (in slot order), taken in one pass, ready
/// to sort. In a table of [`PARALLEL_BUILD_FROM`] rows or more, either half
/// of the rows is taken on a thread of its own; the sort is not split,
/// since a start builds indexes while the write model takes its records on
/// every core.
pub(super) fn column<'a>(field: &str, kind: KeyKind, rows: &[(Slot, &'a Record)]) -> Column<'a> {
    column_split(field, kind, rows, rows.len() >= PARALLEL_BUILD_FROM)
}

/// [`column`], the rows' halves on two threads or not.
fn column_split<'a>(field: &str, kind: KeyKind, rows: &[(Slot, &'a Record)], parallel: bool) -> Column<'a> {
    if !parallel {
        return extract(field, kind, rows, rows.len());
    }
    // The two halves of the rows on two threads, the first half's keys first.
    let (low, high) = rows.split_at(rows.len() / 2);
    let (mut first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| extract(field, kind, low, rows.len()));
        let second = extract(field, kind, high, high.len());
        (first.join().expect("key extractor"), second)
    });
    first.append(second);
    first
}

/// The indexes of `fields`, one field at a time: its column taken, then
/// sorted and grouped. So one column is all that is held at once beside
/// the model, never one per indexed field of a table of a million rows.
fn build(fields: &[(String, KeyKind)], rows: &[(Slot, &Record)], parallel: bool) -> Vec<(String, FieldIndex)> {
    fields.iter().map(|(field, kind)| (field.clone(), column_split(field, *kind, rows, parallel).into_index(*kind))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_model::table::IndexKey;
    use domain::value::{Record, Value};

    #[test]
    fn builders_on_threads_build_what_one_thread_builds() {
        let fields: Vec<(String, KeyKind)> =
            vec![("n".into(), KeyKind::Number), ("t".into(), KeyKind::Text), ("b".into(), KeyKind::Bool), ("absent".into(), KeyKind::Text)];
        let rows: Vec<Record> = (0..500)
            .map(|i: i64| {
                let mut record = Record::new();
                record.insert("n", if i % 7 == 0 { Value::Text("NaN".into()) } else { Value::Int(i % 13 - 6) });
                record.insert("t", Value::Text(format!("{}", i * 7919 % 61)));
                if i % 3 != 0 {
                    record.insert("b", Value::Bool(i % 2 == 0));
                }
                record
            })
            .collect();
        let rows: Vec<(Slot, &Record)> = rows.iter().enumerate().map(|(slot, record)| (slot as Slot, record)).collect();
        type Entries = Vec<(IndexKey, Vec<Slot>)>;
        let sorted = |built: Vec<(String, FieldIndex)>| {
            let mut out: Vec<(String, Entries)> = built.into_iter().map(|(f, index)| (f, index.entries())).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        };
        let one = sorted(build(&fields, &rows, false));
        let many = sorted(build(&fields, &rows, true));
        assert_eq!(one.len(), 4);
        assert_eq!(one, many);
        // Each key's slots are the rows whose value gives that key (the
        // rows' fields sit at different places: some have no `b`).
        for (field, entries) in &one {
            let kind = fields.iter().find(|(name, _)| name == field).expect("a field asked for").1;
            let mut expected: BTreeMap<IndexKey, Vec<Slot>> = BTreeMap::new();
            for (slot, row) in &rows {
                if let Some(key) = row.get(field).and_then(|value| kind.key(value)) {
                    expected.entry(key).or_default().push(*slot);
                }
            }
            assert_eq!(*entries, expected.into_iter().collect::<Entries>(), "{field}");
        }
        let numbers = &one.iter().find(|(f, _)| f == "n").expect("n").1;
        assert_eq!(numbers.len(), 14, "13 numbers and NaN");
        assert!(numbers.iter().all(|(_, slots)| slots.windows(2).all(|w| w[0] < w[1])), "slots in order");
    }

    #[test]
    fn sort_keys_order_like_the_index_keys() {
        let numbers = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1.0, 3.5, f64::INFINITY, f64::NAN];
        for a in numbers {
            for b in numbers {
                assert_eq!(order_bits(a).cmp(&order_bits(b)), a.total_cmp(&b), "{a} vs {b}");
            }
        }
        let id: Slot = 0;
        let texts = ["", "a", "a\0", "a\0b", "ab", "abcdefgh", "abcdefgh\0", "abcdefghi", "abcdefgi", "b", "é", "\u{7f}"];
        for a in texts {
            for b in texts {
                let order = text_order(&(prefix(a), a, id), &(prefix(b), b, id));
                assert_eq!(order, a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
