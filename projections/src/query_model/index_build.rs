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

use super::rows::{Row, Rows};
use super::slots::{Slot, SlotSet};
use super::table::{FieldIndex, IndexKey, Key, KeyKind};

/// Below this many rows, a table's indexes are built on the calling thread.
pub(super) const PARALLEL_BUILD_FROM: usize = 50_000;

/// One field's keys as taken from the rows, ready to sort.
enum Column<'a> {
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

    /// Sorts the keys and groups them: one owned key per distinct value.
    fn into_index(self, kind: KeyKind) -> FieldIndex {
        fn group<T, K: PartialEq>(sorted: Vec<T>, key: impl Fn(&T) -> K, owned: impl Fn(&T) -> IndexKey, id: impl Fn(&T) -> Slot) -> Vec<(IndexKey, SlotSet)> {
            // Sized for the worst case (every key distinct): pages never
            // written are never backed, and the vector never moves.
            let mut grouped = Vec::with_capacity(sorted.len());
            let mut items = sorted.iter().peekable();
            while let Some(first) = items.next() {
                let k = key(first);
                let ids = match items.next_if(|next| key(next) == k) {
                    // A unique key (every key of a unique field): no vector.
                    None => SlotSet::One(id(first)),
                    Some(second) => {
                        let mut ids = vec![id(first), id(second)];
                        while let Some(next) = items.next_if(|next| key(next) == k) {
                            ids.push(id(next));
                        }
                        SlotSet::from_unsorted(ids)
                    }
                };
                grouped.push((owned(first), ids));
            }
            grouped
        }
        let present = self.present();
        let loose = match &self {
            Column::Num(_, loose) => *loose,
            _ => 0,
        };
        let grouped = match self {
            // Ties broken by slot, which no two keys share: the order a
            // stable sort gives, without the scratch copy of the column it takes.
            Column::Num(mut keys, _) => {
                keys.sort_unstable_by_key(|k| (k.0, k.2));
                group(keys, |k| k.0, |k| Key::Num(k.1), |k| k.2)
            }
            Column::Bool(mut keys) => {
                keys.sort_unstable_by_key(|k| (k.0, k.1));
                group(keys, |k| k.0, |k| Key::Bool(k.0), |k| k.1)
            }
            Column::Text(mut keys) => {
                keys.sort_unstable_by(|a, b| text_order(a, b).then(a.2.cmp(&b.2)));
                group(keys, |k| (k.0, k.1), |k| Key::Text(k.1.to_string()), |k| k.2)
            }
        };
        FieldIndex::from_groups(kind, BTreeMap::from_iter(grouped), present, loose)
    }
}

/// Every index of `fields` over `rows`, built at once.
pub(super) fn build_all(fields: &[(String, KeyKind)], rows: &Rows) -> Vec<(String, FieldIndex)> {
    let rows: Vec<(Slot, &Row)> = rows.by_slot().collect();
    build(fields, &rows, rows.len() >= PARALLEL_BUILD_FROM)
}

/// One field's keys from some rows, in the rows' order.
fn extract<'a>(field: &str, kind: KeyKind, rows: &[(Slot, &'a Row)], capacity: usize) -> Column<'a> {
    let mut column = Column::new(kind, capacity);
    let mut at = 0;
    for (slot, row) in rows {
        let (value, found) = row.record.get_hinted(field, at);
        at = found;
        if let Some(value) = value {
            column.push(kind, value, *slot);
        }
    }
    column
}

/// The indexes of `fields`, one field at a time: its keys taken in one pass
/// over the rows, then sorted and grouped. So one column is all that is
/// held at once beside the model, never one per indexed field of a table of
/// a million rows. In a large table, either half of the rows is taken on a
/// thread of its own; the sort is not split, since a start builds indexes
/// while the write model takes its records on every core.
fn build(fields: &[(String, KeyKind)], rows: &[(Slot, &Row)], parallel: bool) -> Vec<(String, FieldIndex)> {
    let column = |field: &str, kind: KeyKind| {
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
    };
    fields.iter().map(|(field, kind)| (field.clone(), column(field, *kind).into_index(*kind))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::value::{Record, Value};
    use std::sync::Arc;

    #[test]
    fn builders_on_threads_build_what_one_thread_builds() {
        let fields: Vec<(String, KeyKind)> =
            vec![("n".into(), KeyKind::Number), ("t".into(), KeyKind::Text), ("b".into(), KeyKind::Bool), ("absent".into(), KeyKind::Text)];
        let rows: Vec<Row> = (0..500)
            .map(|i: i64| {
                let mut record = Record::new();
                record.insert("n", if i % 7 == 0 { Value::Text("NaN".into()) } else { Value::Int(i % 13 - 6) });
                record.insert("t", Value::Text(format!("{}", i * 7919 % 61)));
                if i % 3 != 0 {
                    record.insert("b", Value::Bool(i % 2 == 0));
                }
                Row { id: Arc::from(format!("r{i:04}")), record: Arc::new(record) }
            })
            .collect();
        let rows: Vec<(Slot, &Row)> = rows.iter().enumerate().map(|(slot, row)| (slot as Slot, row)).collect();
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
                if let Some(key) = row.record.get(field).and_then(|value| kind.key(value)) {
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
