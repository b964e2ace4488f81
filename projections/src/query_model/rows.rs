//! A table's rows: each in a slot (a dense number the indexes refer to,
//! [`super::slots`]), and ordered by id so that scans and ties are
//! deterministic, with a fast path for bulk loads.
//!
//! The id order lives in a B-tree from id to slot. While a table loads in
//! bulk, rows whose ids come after every id so far (the usual case: ids are
//! time-ordered) go to a sorted tail instead, with no tree search and no node
//! splits; at the end the tail becomes tree nodes in one pass
//! ([`Rows::settle`]), filled completely instead of half. Any other change
//! that touches the tail first moves it into the tree, so every row moves at
//! most once and a load in any order costs no more than inserting row by row.
//!
//! Slots follow id order as far as they can: a bulk load ends by numbering
//! the rows in id order ([`Rows::renumber`]), and a new row whose id comes
//! after every id so far takes the next slot and stays in order (ids are
//! time-ordered). Below [`Rows::ordered`], slot order is id order and every
//! other row has a greater id, so the first rows by id among any set of slots
//! are its smallest slots there, found without reading an id. A row out of
//! order lowers that bound to where it belongs. A removed row's slot below the
//! bound stays empty (a new row there would break the order) until the next
//! renumbering, which the table asks for when such holes outnumber half its
//! rows.
//!
//! Invariants: every id in the tail is greater than every id in the tree, and
//! the tail is sorted; every slot the tree or the tail names holds a row, and
//! every row's slot is named once; live slots below `ordered` increase with
//! their ids, every live row at or above it has an id greater than
//! `ordered_max`, which is at least every id below; free slots are at or
//! above `ordered`.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::value::Record;
use roaring::RoaringBitmap;

use super::slots::Slot;

/// One row: its id (shared with the id order) and its record (shared with pages).
#[derive(Debug)]
pub(crate) struct Row {
    pub id: Arc<str>,
    pub record: Arc<Record>,
}

#[derive(Default)]
pub(crate) struct Rows {
    tree: BTreeMap<Arc<str>, Slot>,
    tail: Vec<(Arc<str>, Slot)>,
    /// Whether new rows may go to the tail (a bulk load).
    appending: bool,
    slots: Vec<Option<Row>>,
    /// Slots of removed rows, taken again before new ones.
    free: Vec<Slot>,
    /// The slots that hold a row.
    live: RoaringBitmap,
    /// Slots below this are in id order, before every other row.
    ordered: Slot,
    /// At least every id held below `ordered` (kept when its row goes).
    ordered_max: Option<Arc<str>>,
    /// Removed rows' slots below `ordered`, left empty.
    holes: usize,
}

impl Rows {
    /// Lets rows go to the tail until [`Rows::settle`].
    pub fn begin_appending(&mut self) {
        self.appending = true;
    }

    /// Moves the tail into the tree, in one pass when the tree is empty.
    pub fn settle(&mut self) {
        self.appending = false;
        if self.tail.is_empty() {
            return;
        }
        let mut tail = BTreeMap::from_iter(std::mem::take(&mut self.tail));
        if self.tree.is_empty() {
            self.tree = tail;
        } else {
            self.tree.append(&mut tail);
        }
    }

    /// Moves the tail into the tree row by row (a change out of order).
    fn spill(&mut self) {
        for (id, slot) in self.tail.drain(..) {
            self.tree.insert(id, slot);
        }
    }

    /// The tail's index of an id, if the id falls within the tail.
    fn in_tail(&self, id: &str) -> Option<Result<usize, usize>> {
        let first = self.tail.first()?;
        (id >= &*first.0).then(|| self.tail.binary_search_by(|(probe, _)| (**probe).cmp(id)))
    }

    /// A slot for a new row.
    fn take_slot(&mut self, id: Arc<str>, record: Arc<Record>) -> Slot {
        let row = Some(Row { id, record });
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = row;
                slot
            }
            None => {
                let slot = Slot::try_from(self.slots.len()).expect("fewer than 2^32 rows in a table");
                self.slots.push(row);
                slot
            }
        };
        self.live.insert(slot);
        slot
    }

    /// Sets a row; returns its slot and the record it replaced.
    pub fn put(&mut self, id: impl AsRef<str> + Into<Arc<str>>, record: Arc<Record>) -> (Slot, Option<Arc<Record>>) {
        // A bulk load's usual row: after every id so far, so new, and in order.
        if self.appending {
            let after_all = match self.tail.last() {
                Some((last, _)) => *id.as_ref() > **last,
                None => self.tree.last_key_value().is_none_or(|(last, _)| *id.as_ref() > **last),
            };
            if after_all {
                let key: Arc<str> = id.into();
                let slot = self.take_slot(key.clone(), record);
                self.place(slot, &key);
                self.tail.push((key, slot));
                return (slot, None);
            }
        }
        if let Some(slot) = self.slot_of(id.as_ref()) {
            let row = self.slots[slot as usize].as_mut().expect("a named slot holds a row");
            return (slot, Some(std::mem::replace(&mut row.record, record)));
        }
        let key: Arc<str> = id.into();
        let slot = self.take_slot(key.clone(), record);
        if self.appending {
            // Out of order in a bulk load: the load ends by renumbering anyway.
            self.ordered = 0;
            self.ordered_max = None;
        }
        if self.in_tail(&key).is_some() {
            self.spill();
        }
        self.tree.insert(key.clone(), slot);
        if !self.appending {
            self.place(slot, &key);
        }
        (slot, None)
    }

    /// Keeps the order bound right for a new row (already in the id order).
    fn place(&mut self, slot: Slot, id: &Arc<str>) {
        let last = slot as usize + 1 == self.slots.len();
        if slot == self.ordered && last && self.ordered_max.as_deref().is_none_or(|max| **id > *max) {
            self.ordered += 1;
            self.ordered_max = Some(id.clone());
            return;
        }
        if self.ordered_max.as_deref().is_none_or(|max| **id > *max) {
            return;
        }
        // The row belongs among the ordered ones: the bound drops to the next
        // greater id's slot, and what lies below it is below this id.
        use std::ops::Bound::{Excluded, Unbounded};
        let next = self.tree.range::<str, _>((Excluded(&**id), Unbounded)).next().map(|(_, slot)| *slot);
        if let Some(next) = next.filter(|next| *next < self.ordered) {
            self.ordered = next;
        }
        self.ordered_max = self.tree.range::<str, _>((Unbounded, Excluded(&**id))).next_back().map(|(id, _)| id.clone());
    }

    /// Numbers the rows in id order (after a bulk load, or when holes pile up):
    /// every slot changes, so the caller rebuilds what refers to slots.
    pub fn renumber(&mut self) {
        self.settle();
        let mut slots = Vec::with_capacity(self.tree.len());
        for slot in self.tree.values_mut() {
            slots.push(self.slots[*slot as usize].take());
            *slot = Slot::try_from(slots.len() - 1).expect("fewer than 2^32 rows in a table");
        }
        self.slots = slots;
        self.free.clear();
        self.holes = 0;
        self.live = RoaringBitmap::new();
        self.live.insert_range(0..self.slots.len() as Slot);
        self.ordered = self.slots.len() as Slot;
        self.ordered_max = self.tree.last_key_value().map(|(id, _)| id.clone());
    }

    /// Whether empty slots below the order bound outnumber half the rows.
    pub fn wants_renumber(&self) -> bool {
        self.holes > 4096 && self.holes > self.len() / 2
    }

    /// Slots below this hold rows in id order, before every other row.
    pub fn ordered(&self) -> Slot {
        self.ordered
    }

    /// Removes a row; returns its (now free) slot and its record.
    pub fn remove(&mut self, id: &str) -> Option<(Slot, Arc<Record>)> {
        if self.in_tail(id).is_some() {
            self.spill();
        }
        let (_, slot) = self.tree.remove_entry(id)?;
        let row = self.slots[slot as usize].take().expect("a named slot holds a row");
        if slot < self.ordered {
            self.holes += 1;
        } else {
            self.free.push(slot);
        }
        self.live.remove(slot);
        Some((slot, row.record))
    }

    /// The slot of an id.
    pub fn slot_of(&self, id: &str) -> Option<Slot> {
        match self.in_tail(id) {
            Some(Ok(at)) => Some(self.tail[at].1),
            Some(Err(_)) => None,
            None => self.tree.get(id).copied(),
        }
    }

    /// The row in a slot.
    pub fn row(&self, slot: Slot) -> Option<&Row> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The record in a slot, to change it (the indexes are the caller's to keep right).
    pub fn record_mut(&mut self, slot: Slot) -> Option<&mut Arc<Record>> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut).map(|row| &mut row.record)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.slot_of(id).and_then(|slot| self.row(slot)).map(|row| &row.record)
    }

    /// The slots in id order.
    pub fn slots_by_id(&self) -> impl Iterator<Item = Slot> + '_ {
        self.tree.values().chain(self.tail.iter().map(|(_, slot)| slot)).copied()
    }

    /// The rows in id order.
    #[cfg(test)]
    pub fn values(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.slots_by_id().filter_map(|slot| self.row(slot)).map(|row| &row.record)
    }

    /// Every row with its slot, in slot order (for index builds: no order needed).
    pub fn by_slot(&self) -> impl Iterator<Item = (Slot, &Row)> {
        self.slots.iter().enumerate().filter_map(|(slot, row)| row.as_ref().map(|row| (slot as Slot, row)))
    }

    /// The slots that hold a row.
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    pub fn len(&self) -> usize {
        self.tree.len() + self.tail.len()
    }

    /// Rows waiting in the tail (tests check bulk loads use it).
    #[cfg(test)]
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::value::Value;

    fn row(n: i64) -> Arc<Record> {
        Arc::new([("n".to_string(), Value::Int(n))].into_iter().collect())
    }

    /// Bulk loads in any order, with replacements, removals and updates mixed
    /// in, end with the same rows as plain inserts into a map.
    #[test]
    fn appending_ends_as_row_by_row_inserts() {
        let orders: [Vec<u32>; 3] = [(0..300).collect(), (0..300).rev().collect(), (0..300).map(|i| i * 7919 % 301).collect()];
        for order in orders {
            let mut rows = Rows::default();
            rows.put("m050", row(-1));
            rows.begin_appending();
            let mut expected: BTreeMap<String, i64> = BTreeMap::from([("m050".to_string(), -1)]);
            for (step, i) in order.into_iter().enumerate() {
                let id = format!("m{i:03}");
                rows.put(id.clone(), row(i64::from(i)));
                expected.insert(id.clone(), i64::from(i));
                match step % 5 {
                    1 => {
                        rows.put(id.clone(), row(1000));
                        expected.insert(id.clone(), 1000);
                    }
                    2 => {
                        let slot = rows.slot_of(&id).expect("just put");
                        *rows.record_mut(slot).expect("a row") = Arc::new([("n".to_string(), Value::Int(2000))].into_iter().collect());
                        expected.insert(id.clone(), 2000);
                    }
                    3 => {
                        assert!(rows.remove(&id).is_some());
                        expected.remove(&id);
                    }
                    _ => {}
                }
                assert_eq!(rows.len(), expected.len());
                assert_eq!(rows.get(&id).map(|r| r["n"].clone()), expected.get(&id).map(|n| Value::Int(*n)));
            }
            let during: Vec<Value> = rows.values().map(|r| r["n"].clone()).collect();
            rows.settle();
            let after: Vec<(String, Value)> =
                rows.slots_by_id().map(|slot| rows.row(slot).expect("a row")).map(|row| (row.id.to_string(), row.record["n"].clone())).collect();
            assert_eq!(rows.by_slot().count(), after.len(), "every slot named once");
            let want: Vec<(String, Value)> = expected.into_iter().map(|(k, n)| (k, Value::Int(n))).collect();
            assert_eq!(after, want);
            assert_eq!(during, want.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
        }
    }

    /// The order bound holds through rows in order, out of order, removals
    /// and renumbering: slots below it increase with their ids, every other
    /// row's id is greater, and no free slot lies below it.
    #[test]
    fn slots_below_the_bound_follow_id_order() {
        let check = |rows: &Rows| {
            let bound = rows.ordered();
            let below: Vec<&str> = rows.by_slot().filter(|(slot, _)| *slot < bound).map(|(_, row)| &*row.id).collect();
            assert!(below.windows(2).all(|w| w[0] < w[1]), "ids increase with slots below {bound}");
            let top = below.last().copied().unwrap_or("");
            assert!(rows.by_slot().filter(|(slot, _)| *slot >= bound).all(|(_, row)| &*row.id > top), "rows above the bound come after");
            assert!(rows.free.iter().all(|slot| *slot >= bound), "no free slot below the bound");
        };
        let mut rows = Rows::default();
        let mut rng = crate::test_support::Rng(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.below(n);
        let mut counter = 1_000u64;
        let (mut grew, mut dropped) = (false, false);
        for step in 0..3_000 {
            let before = rows.ordered();
            match next(10) {
                // Mostly ids after every other (time-ordered), sometimes one a little behind or anywhere.
                0..=5 => {
                    counter += 1 + next(3);
                    rows.put(format!("k{counter:06}"), row(0));
                }
                6 => {
                    rows.put(format!("k{:06}", counter.saturating_sub(next(20))), row(1));
                }
                7 => {
                    rows.put(format!("k{:06}", next(counter)), row(2));
                }
                _ => {
                    let id = format!("k{:06}", next(counter + 1));
                    rows.remove(&id);
                }
            }
            check(&rows);
            grew |= rows.ordered() > before;
            dropped |= rows.ordered() < before;
            if step % 1_000 == 999 {
                rows.renumber();
                assert_eq!(rows.ordered() as usize, rows.len());
                check(&rows);
            }
        }
        assert!(grew && dropped, "the bound moved both ways");
    }
}
