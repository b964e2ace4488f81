//! A table's indexes as its snapshot saves them, so that a start reads them
//! instead of sorting every indexed field of every row again.
//!
//! The save builds them from the rows it writes (in id order, the order a
//! load puts them in its slots), so they can never be stale, and writes
//! each field's keys in key order, each with its slots: the load adds them
//! to a tree in that order, on every core at once, without a sort. Each
//! field is one blob: its kind, how many keys are not of that kind, the
//! slots with a key (a roaring bitmap as the roaring format writes it), and
//! the keys with their slots. A load checks what it reads (keys strictly
//! increasing, slots strictly increasing and of rows it holds) and refuses
//! the snapshot otherwise, like any other damage.

use std::collections::BTreeMap;

use domain::value::Record;
use roaring::RoaringBitmap;

use super::index_build;
use super::slots::{Slot, SlotSet};
use super::table::{FieldIndex, Key, KeyKind};
use crate::snapshot::codec::{Reader, Writer};

const WHAT: &str = "the query model's snapshot (an index)";

/// A kind's tag in the file.
fn tag(kind: KeyKind) -> u8 {
    match kind {
        KeyKind::Number => 0,
        KeyKind::Bool => 1,
        KeyKind::Text => 2,
    }
}

/// Writes the indexes of `fields` over `rows`, given in the order the file
/// holds them: their count, then each field's name and blob. One field's
/// column is held at a time.
pub(super) fn write(fields: &[(String, KeyKind)], rows: &[(Slot, &Record)], out: &mut Writer) {
    out.put(&(fields.len() as u64));
    let mut keys = Writer::default();
    for (field, kind) in fields {
        keys.bytes.clear();
        let column = index_build::column(field, *kind, rows);
        let mut count = 0u64;
        let (present, loose) = column.for_each_group(|key, slots| {
            count += 1;
            match key {
                Key::Num(n) => keys.put(&n),
                Key::Bool(b) => keys.put(&b),
                Key::Text(s) => keys.put(&s),
            }
            keys.put(&slots);
        });
        let mut head = Writer::default();
        head.put(&tag(*kind));
        head.put(&(loose as u64));
        let mut bitmap = Vec::with_capacity(present.serialized_size());
        present.serialize_into(&mut bitmap).expect("writing into a Vec cannot fail");
        head.put(&bitmap.as_slice());
        head.put(&count);
        // The blob as `&[u8]` is written: its length, then its bytes (the
        // keys copied once, straight into the body).
        out.put(field);
        out.put(&((head.bytes.len() + keys.bytes.len()) as u64));
        out.bytes.extend_from_slice(&head.bytes);
        out.bytes.extend_from_slice(&keys.bytes);
        out.spill_when_full();
    }
}

/// One field's index from its blob, for a table of `rows` rows.
pub(super) fn read(kind: KeyKind, blob: &[u8], rows: usize) -> Result<FieldIndex, String> {
    let mut input = Reader::new(blob, WHAT);
    if input.take::<u8>()? != tag(kind) {
        return Err(format!("{WHAT}: of another kind"));
    }
    let loose = input.count()?;
    let present = RoaringBitmap::deserialize_from(input.bytes()?).map_err(|e| format!("{WHAT}: {e}"))?;
    let count = input.count()?;
    let mut grouped = Vec::with_capacity(count.min(rows));
    for _ in 0..count {
        let key = match kind {
            KeyKind::Number => Key::Num(input.take()?),
            KeyKind::Bool => Key::Bool(input.take()?),
            KeyKind::Text => Key::Text(input.take()?),
        };
        if grouped.last().is_some_and(|(last, _)| *last >= key) {
            return Err(format!("{WHAT}: keys out of order"));
        }
        // Written as a slice: its length, then the slots. A key of one row
        // (every key of a unique field) takes no vector.
        let set = match input.count()? {
            1 => {
                let slot: Slot = input.take()?;
                if slot as usize >= rows {
                    return Err(format!("{WHAT}: a slot of no row"));
                }
                SlotSet::One(slot)
            }
            n => {
                let mut slots = Vec::with_capacity(n.min(rows));
                for _ in 0..n {
                    slots.push(input.take::<Slot>()?);
                }
                let ordered = slots.windows(2).all(|pair| pair[0] < pair[1]);
                if !ordered || slots.last().is_none_or(|last| *last as usize >= rows) {
                    return Err(format!("{WHAT}: slots out of order or of no row"));
                }
                SlotSet::from_sorted(slots)
            }
        };
        grouped.push((key, set));
    }
    input.finish()?;
    if present.max().is_some_and(|max| max as usize >= rows) {
        return Err(format!("{WHAT}: slots of no row"));
    }
    Ok(FieldIndex::from_groups(kind, BTreeMap::from_iter(grouped), present, loose))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::value::Value;

    fn rows() -> Vec<Record> {
        (0..300)
            .map(|i: i64| {
                let mut record = Record::new();
                // Every seventh number given as text: a loose key.
                record.insert("n", if i % 7 == 0 { Value::Text(format!("{}", i % 5)) } else { Value::Int(i % 11) });
                record.insert("t", Value::Text(format!("k{}", i * 7919 % 97)));
                if i % 3 != 0 {
                    record.insert("b", Value::Bool(i % 2 == 0));
                }
                record.insert("u", Value::Text(format!("unique {i}")));
                record
            })
            .collect()
    }

    fn fields() -> Vec<(String, KeyKind)> {
        [("n", KeyKind::Number), ("t", KeyKind::Text), ("b", KeyKind::Bool), ("u", KeyKind::Text), ("absent", KeyKind::Text)]
            .map(|(field, kind)| (field.to_string(), kind))
            .to_vec()
    }

    /// The blobs `write` wrote, by field.
    fn blobs(records: &[Record]) -> Vec<(String, Vec<u8>)> {
        let slots: Vec<(Slot, &Record)> = records.iter().enumerate().map(|(slot, record)| (slot as Slot, record)).collect();
        let mut out = Writer::default();
        write(&fields(), &slots, &mut out);
        let mut input = Reader::new(&out.bytes, WHAT);
        let blobs = (0..input.count().unwrap()).map(|_| (input.take::<String>().unwrap(), input.bytes().unwrap().to_vec())).collect();
        input.finish().unwrap();
        blobs
    }

    #[test]
    fn an_index_read_back_is_the_index_built_from_the_rows() {
        let records = rows();
        let slots: Vec<(Slot, &Record)> = records.iter().enumerate().map(|(slot, record)| (slot as Slot, record)).collect();
        for ((field, kind), (name, blob)) in fields().iter().zip(blobs(&records)) {
            assert_eq!(*field, name);
            let read = read(*kind, &blob, records.len()).unwrap();
            let built = index_build::column(field, *kind, &slots).into_index(*kind);
            assert_eq!(read.entries(), built.entries(), "{field}");
            assert_eq!(read.present(), built.present(), "{field}");
            assert_eq!((read.loose(), read.sorts_like_values()), (built.loose(), built.sorts_like_values()), "{field}");
        }
        let numbers = read(KeyKind::Number, &blobs(&records)[0].1, records.len()).unwrap();
        assert!(numbers.loose() > 0, "numbers given as text are counted");
        assert_eq!(read(KeyKind::Text, &blobs(&records)[3].1, records.len()).unwrap().entries().len(), 300);
    }

    /// The error a blob is refused with.
    fn refusal(kind: KeyKind, blob: &[u8], rows: usize) -> String {
        read(kind, blob, rows).err().expect("refused")
    }

    #[test]
    fn a_blob_that_does_not_fit_the_table_is_refused() {
        let records = rows();
        let all = blobs(&records);
        // Of another kind, or naming rows the table does not hold.
        assert!(refusal(KeyKind::Text, &all[0].1, records.len()).contains("another kind"));
        assert!(refusal(KeyKind::Text, &all[3].1, 299).contains("no row"));
        assert!(refusal(KeyKind::Text, &all[1].1, 250).contains("no row"));
        // Keys out of order, slots out of order.
        let blob = |keys: &[(&str, &[Slot])]| {
            let mut blob = Writer::default();
            blob.put(&tag(KeyKind::Text));
            blob.put(&0u64);
            let mut bitmap = Vec::new();
            RoaringBitmap::from_iter(keys.iter().flat_map(|(_, slots)| slots.iter().copied())).serialize_into(&mut bitmap).unwrap();
            blob.put(&bitmap.as_slice());
            blob.put(&(keys.len() as u64));
            for (key, slots) in keys {
                blob.put(key);
                blob.put(slots);
            }
            blob.bytes
        };
        assert!(read(KeyKind::Text, &blob(&[("a", &[1]), ("b", &[0, 2])]), 3).is_ok());
        assert!(refusal(KeyKind::Text, &blob(&[("b", &[1]), ("a", &[0])]), 3).contains("keys out of order"));
        assert!(refusal(KeyKind::Text, &blob(&[("a", &[1]), ("a", &[0])]), 3).contains("keys out of order"));
        assert!(refusal(KeyKind::Text, &blob(&[("a", &[2, 0])]), 3).contains("slots out of order"));
        assert!(refusal(KeyKind::Text, &blob(&[("a", &[0, 0])]), 3).contains("slots out of order"));
        // Trailing bytes.
        let mut long = blob(&[("a", &[1])]);
        long.push(0);
        assert!(read(KeyKind::Text, &long, 3).is_err());
    }
}
