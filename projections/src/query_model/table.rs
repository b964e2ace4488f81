//! One object's rows, ordered by id so that scans and ties are deterministic.

use std::collections::BTreeMap;

use domain::value::Record;

#[derive(Default)]
pub(crate) struct Table {
    rows: BTreeMap<String, Record>,
}

impl Table {
    pub fn put(&mut self, id: String, record: Record) {
        self.rows.insert(id, record);
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.rows.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.rows.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) {
        self.rows.remove(id);
    }

    pub fn rows(&self) -> impl Iterator<Item = &Record> {
        self.rows.values()
    }
}
