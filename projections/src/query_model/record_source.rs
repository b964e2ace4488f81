//! The in-process query model as the write model's record source, so each
//! live record is held once by both (see `commands::service::sharing`):
//! the live model ([`RecordsOf`]), or the rows a start decoded from the
//! model's snapshot ([`RowsAt`]), which the write model's start can take
//! from while the query model still folds its tail and builds its indexes.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, RwLock};

use commands::service::sharing::RecordSource;
use domain::value::Record;
use hashbrown::HashTable;

use super::QueryModel;
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

/// The rows of one snapshot of the query model, found by a hash of their id
/// (a table built on the first lookup, by whichever thread asks first: one
/// probe per record instead of a search through sorted ids).
pub struct RowsAt {
    snapshot: Arc<ModelSnapshot>,
    lookup: OnceLock<Lookup>,
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
        RowsAt { snapshot, lookup: OnceLock::new() }
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

    fn record(&self, lookup: &Lookup, table: u32, id: &str) -> Option<Arc<Record>> {
        let rows = &self.snapshot.tables[table as usize].1;
        let &(_, row) = lookup.table.find(lookup.hasher.hash_one(id), |&(t, r)| t == table && &*rows[r as usize].0 == id)?;
        Some(rows[row as usize].1.clone())
    }
}

impl RecordSource for RowsAt {
    fn position(&self) -> u64 {
        self.snapshot.position
    }

    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
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
}
