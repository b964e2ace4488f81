//! A table's rows ordered by id, with a fast path for bulk loads.
//!
//! Rows live in a B-tree keyed by id. While a table loads in bulk, rows whose
//! ids come after every id so far (the usual case: ids are time-ordered) go
//! to a sorted tail instead, with no tree search and no node splits; at the
//! end the tail becomes tree nodes in one pass ([`Rows::settle`]), filled
//! completely instead of half. Any other change that touches the tail first
//! moves it into the tree, so every row moves at most once and a load in any
//! order costs no more than inserting row by row.
//!
//! Invariant: every id in the tail is greater than every id in the tree, and
//! the tail is sorted.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::value::Record;

#[derive(Default)]
pub(crate) struct Rows {
    tree: BTreeMap<Arc<str>, Arc<Record>>,
    tail: Vec<(Arc<str>, Arc<Record>)>,
    /// Whether new rows may go to the tail (a bulk load).
    appending: bool,
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
        for (id, record) in self.tail.drain(..) {
            self.tree.insert(id, record);
        }
    }

    /// The tail's slot of an id, if the id falls within the tail.
    fn in_tail(&self, id: &str) -> Option<Result<usize, usize>> {
        let first = self.tail.first()?;
        (id >= &*first.0).then(|| self.tail.binary_search_by(|(probe, _)| (**probe).cmp(id)))
    }

    /// Sets a row; returns its shared id and the row it replaced.
    pub fn put(&mut self, id: String, record: Arc<Record>) -> (Arc<str>, Option<Arc<Record>>) {
        if self.appending {
            let after_all = match self.tail.last() {
                Some((last, _)) => *id > **last,
                None => self.tree.last_key_value().is_none_or(|(last, _)| *id > **last),
            };
            if after_all {
                let key: Arc<str> = Arc::from(id);
                self.tail.push((key.clone(), record));
                return (key, None);
            }
            match self.in_tail(&id) {
                Some(Ok(at)) => {
                    let key = self.tail[at].0.clone();
                    return (key, Some(std::mem::replace(&mut self.tail[at].1, record)));
                }
                Some(Err(_)) => self.spill(),
                None => {}
            }
        }
        match self.tree.entry(Arc::from(id)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                let key = slot.key().clone();
                slot.insert(record);
                (key, None)
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                let key = slot.key().clone();
                (key, Some(slot.insert(record)))
            }
        }
    }

    /// Puts back a row taken with [`Rows::remove_entry`].
    pub fn insert(&mut self, id: Arc<str>, record: Arc<Record>) {
        if self.in_tail(&id).is_some() {
            self.spill();
        }
        self.tree.insert(id, record);
    }

    pub fn remove_entry(&mut self, id: &str) -> Option<(Arc<str>, Arc<Record>)> {
        if self.in_tail(id).is_some() {
            self.spill();
        }
        self.tree.remove_entry(id)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        match self.in_tail(id) {
            Some(Ok(at)) => Some(&self.tail[at].1),
            Some(Err(_)) => None,
            None => self.tree.get(id),
        }
    }

    /// The rows in id order.
    pub fn values(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.tree.values().chain(self.tail.iter().map(|(_, record)| record))
    }

    pub fn len(&self) -> usize {
        self.tree.len() + self.tail.len()
    }

    /// Rows waiting in the tail (tests check bulk loads use it).
    #[cfg(test)]
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// The tree, for a bulk index build; call [`Rows::settle`] first.
    pub fn settled(&self) -> &BTreeMap<Arc<str>, Arc<Record>> {
        debug_assert!(self.tail.is_empty(), "rows settled before an index build");
        &self.tree
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
            rows.put("m050".into(), row(-1));
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
                        let (key, record) = rows.remove_entry(&id).expect("just put");
                        rows.insert(key, Arc::new([("n".to_string(), Value::Int(2000))].into_iter().collect()));
                        drop(record);
                        expected.insert(id.clone(), 2000);
                    }
                    3 => {
                        assert!(rows.remove_entry(&id).is_some());
                        expected.remove(&id);
                    }
                    _ => {}
                }
                assert_eq!(rows.len(), expected.len());
                assert_eq!(rows.get(&id).map(|r| r["n"].clone()), expected.get(&id).map(|n| Value::Int(*n)));
            }
            let during: Vec<Value> = rows.values().map(|r| r["n"].clone()).collect();
            rows.settle();
            let after: Vec<(String, Value)> = rows.settled().iter().map(|(k, r)| (k.to_string(), r["n"].clone())).collect();
            let want: Vec<(String, Value)> = expected.into_iter().map(|(k, n)| (k, Value::Int(n))).collect();
            assert_eq!(after, want);
            assert_eq!(during, want.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
        }
    }
}
