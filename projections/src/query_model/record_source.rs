//! The in-process query model as the write model's record source, so each
//! live record is held once by both (see `commands::service::sharing`):
//! the live model ([`RecordsOf`]), or the rows a start decoded from the
//! model's snapshot ([`RowsAt`]), which the write model's start can take
//! from while the query model still folds its tail and builds its indexes,
//! with the digests its load hashed from the rows' stored bytes.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, RwLock};

use commands::service::sharing::{Digest, Digested, RecordSource};
use domain::value::Record;
use hashbrown::HashTable;

use super::{LoadedDigests, QueryModel};
use crate::history::ModelSnapshot;

/// Rows of a shared query model, read under its read lock.
pub struct RecordsOf(pub Arc<RwLock<QueryModel>>);

impl RecordSource for RecordsOf {
    fn position(&self) -> u64 {
        self.0.read().expect("query model lock").checkpoint()
    }

    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
        let model = self.0.read().expect("query model lock");
        keys.iter().map(|(object, id)| model.row(object, id)).collect()
    }
}

/// The rows of one snapshot of the query model: keys of one object in id
/// order are found by walking the object's rows (in id order too), any
/// others by a hash of their id (a table built on the first such lookup, by
/// whichever thread asks first: one probe per record instead of a search
/// through sorted ids).
pub struct RowsAt {
    snapshot: Arc<ModelSnapshot>,
    lookup: OnceLock<Lookup>,
    /// Per table of the snapshot, its rows' digests in row order, where known.
    digests: Vec<Option<Vec<Digest>>>,
}

/// Every row's (table, row) number, by a hash of its id (the table is
/// compared, not hashed: a caller's keys are mostly of one object, whose
/// table is found once).
struct Lookup {
    table: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
}

impl RowsAt {
    /// The rows of `snapshot` (the query model's history may hold the same one).
    pub fn new(snapshot: Arc<ModelSnapshot>) -> RowsAt {
        RowsAt { snapshot, lookup: OnceLock::new(), digests: Vec::new() }
    }

    /// The rows of `snapshot` with their digests, as the load of the model
    /// whose snapshot it is hashed them ([`QueryModel::take_loaded_digests`]):
    /// a table's digests are used only when they are one per row.
    pub fn with_digests(snapshot: Arc<ModelSnapshot>, digests: Option<LoadedDigests>) -> RowsAt {
        let mut digests = digests.unwrap_or_default();
        let digests = snapshot
            .tables
            .iter()
            .map(|(name, rows)| {
                let at = digests.iter().position(|(object, held)| object == name && held.len() == rows.len())?;
                Some(std::mem::take(&mut digests[at].1))
            })
            .collect();
        RowsAt { snapshot, lookup: OnceLock::new(), digests }
    }

    fn lookup(&self) -> &Lookup {
        self.lookup.get_or_init(|| {
            let mut lookup = Lookup { table: HashTable::with_capacity(self.snapshot.rows()), hasher: foldhash::fast::RandomState::default() };
            let tables = &self.snapshot.tables;
            for (at, (_, rows)) in tables.iter().enumerate() {
                for (row, (id, _)) in rows.iter().enumerate() {
                    lookup.table.insert_unique(lookup.hasher.hash_one(&**id), (at as u32, row as u32), |&(t, r)| {
                        lookup.hasher.hash_one(&*tables[t as usize].1[r as usize].0)
                    });
                }
            }
            lookup
        })
    }

    /// The number of `object`'s table.
    fn table_of(&self, object: &str) -> Option<u32> {
        self.snapshot.tables.iter().position(|(name, _)| name == object).map(|at| at as u32)
    }

    /// The digest of a table's row, where known.
    fn digest(&self, table: usize, row: usize) -> Option<Digest> {
        self.digests.get(table).and_then(Option::as_ref).map(|digests| digests[row])
    }

    /// Keys of one object in increasing id order (a write model's snapshot
    /// saves its records so), found by walking that table's rows, which are
    /// in id order too: no hash of any id. `None` for any other keys.
    fn walked(&self, keys: &[(&str, &str)]) -> Option<Vec<Digested>> {
        let &(object, first) = keys.first()?;
        if !keys.iter().all(|&(o, _)| o == object) || !keys.windows(2).all(|pair| pair[0].1 < pair[1].1) {
            return None;
        }
        let Some(table) = self.table_of(object) else { return Some(vec![None; keys.len()]) };
        let rows = &self.snapshot.tables[table as usize].1;
        let mut at = rows.partition_point(|(id, _)| &**id < first);
        let found = keys
            .iter()
            .map(|&(_, id)| {
                // Ahead by doubling steps, then back by halves: the keys may be sparse among the rows.
                let mut step = 1;
                while at + step < rows.len() && &*rows[at + step].0 < id {
                    at += step;
                    step *= 2;
                }
                at += rows[at..(at + step).min(rows.len())].partition_point(|(row, _)| &**row < id);
                let row = rows.get(at).filter(|(row, _)| &**row == id)?;
                Some((row.1.clone(), self.digest(table as usize, at)))
            })
            .collect();
        Some(found)
    }

    /// The row of `id` in `table`, and its digest where known.
    fn record(&self, lookup: &Lookup, table: u32, id: &str) -> Digested {
        let rows = &self.snapshot.tables[table as usize].1;
        let &(_, row) = lookup.table.find(lookup.hasher.hash_one(id), |&(t, r)| t == table && &*rows[r as usize].0 == id)?;
        Some((rows[row as usize].1.clone(), self.digest(table as usize, row as usize)))
    }
}

impl RecordSource for RowsAt {
    fn position(&self) -> u64 {
        self.snapshot.position
    }

    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
        self.records_digested(keys).into_iter().map(|found| found.map(|(record, _)| record)).collect()
    }

    fn records_digested(&self, keys: &[(&str, &str)]) -> Vec<Digested> {
        if let Some(found) = self.walked(keys) {
            return found;
        }
        let lookup = self.lookup();
        let mut last: Option<(&str, Option<u32>)> = None;
        keys.iter()
            .map(|&(object, id)| {
                let table = match last {
                    Some((name, table)) if std::ptr::eq(name, object) || name == object => table,
                    _ => last.insert((object, self.table_of(object))).1,
                };
                self.record(lookup, table?, id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ModelSnapshot;

    fn record(n: usize) -> Arc<Record> {
        Arc::new(Record::from_iter([("n", domain::value::Value::Int(n as i64))]))
    }

    #[test]
    fn finds_every_row_of_every_table_and_nothing_else() {
        let rows = |object: &str, count: usize| -> (String, crate::history::SharedRows) {
            (object.to_string(), (0..count).map(|n| (Arc::from(format!("{object}-{n:05}")), record(n))).collect())
        };
        // Table "d" holds the ids of "a", with other records: a row is found in its own table only.
        let same_ids = ("d".to_string(), (0..3).map(|n| (Arc::from(format!("a-{n:05}")), record(1000 + n))).collect());
        let snapshot = ModelSnapshot { position: 7, max_occurred_at: 0, catalog: Default::default(), tables: vec![rows("a", 300), rows("b", 5), same_ids] };
        let source = RowsAt::new(Arc::new(snapshot));
        assert_eq!(source.position(), 7);
        let keys = [
            ("a", "a-00000"),
            ("a", "a-00299"),
            ("b", "b-00004"),
            ("b", "a-00001"),
            ("a", "a-00300"),
            ("c", "a-00001"),
            ("d", "a-00002"),
            ("a", "a-00002"),
            ("d", "a-00003"),
        ];
        let found = source.records(&keys);
        let numbers: Vec<Option<i64>> = found
            .iter()
            .map(|r| {
                r.as_ref().map(|r| match r.get("n") {
                    Some(domain::value::Value::Int(n)) => *n,
                    _ => -1,
                })
            })
            .collect();
        assert_eq!(numbers, vec![Some(0), Some(299), Some(4), None, None, None, Some(1002), Some(2), None]);
        // The record is the snapshot's allocation, not a copy.
        assert!(Arc::ptr_eq(found[0].as_ref().unwrap(), &source.snapshot.tables[0].1[0].1));
    }

    #[test]
    fn keys_in_id_order_find_what_a_lookup_of_each_finds() {
        let ids: Vec<String> = (0..5000).map(|n| format!("r{:05}", n * 3)).collect();
        let rows: crate::history::SharedRows = ids.iter().enumerate().map(|(n, id)| (Arc::from(id.as_str()), record(n))).collect();
        let snapshot = ModelSnapshot { position: 1, max_occurred_at: 0, catalog: Default::default(), tables: vec![("a".into(), rows)] };
        let source = RowsAt::new(Arc::new(snapshot));
        let mut rng = crate::test_rng::Rng(7);
        for round in 0..40 {
            // Ids held and not held (between, before and after every row), sparse or dense.
            let spread = 1 + rng.below(if round % 2 == 0 { 4 } else { 3000 });
            let mut wanted: Vec<String> = (0..16_000).filter(|_| rng.below(spread) == 0).map(|n| format!("r{:05}", n)).collect();
            wanted.dedup();
            if wanted.is_empty() {
                continue;
            }
            let keys: Vec<(&str, &str)> = wanted.iter().map(|id| ("a", id.as_str())).collect();
            assert!(source.walked(&keys).is_some(), "keys in order are walked");
            let walked = source.records(&keys);
            // The same keys backwards go through the hash lookup.
            let backwards: Vec<(&str, &str)> = keys.iter().rev().copied().collect();
            assert!(source.walked(&backwards).is_none());
            let mut looked_up = source.records(&backwards);
            looked_up.reverse();
            let numbers = |found: &[Option<Arc<Record>>]| -> Vec<Option<i64>> {
                found
                    .iter()
                    .map(|r| {
                        r.as_ref().map(|r| match r.get("n") {
                            Some(domain::value::Value::Int(n)) => *n,
                            _ => -1,
                        })
                    })
                    .collect()
            };
            assert_eq!(numbers(&walked), numbers(&looked_up), "round {round}");
            let held = wanted.iter().map(|id| id[1..].parse::<usize>().unwrap()).filter(|n| n % 3 == 0 && n / 3 < ids.len()).count();
            assert_eq!(walked.iter().flatten().count(), held);
        }
        // Another object's keys, or an object with no table: nothing found.
        assert_eq!(source.records(&[("b", "r00000"), ("b", "r00003")]), vec![None, None]);
        assert!(source.walked(&[("a", "r00000"), ("b", "r00003")]).is_none(), "keys of two objects are looked up");
    }
}
