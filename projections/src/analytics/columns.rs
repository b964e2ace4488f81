//! The analytics read model: per object, one column per field, updated in
//! place by each record event (a create fills a row, an update the changed
//! cells, a delete frees the row for reuse).

use std::collections::{BTreeMap, HashMap};

use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog, FieldType, ObjectDef};
use domain::value::{Record, Value};
use domain::Timestamp;

use super::cells::Cells;
use super::dictionary::Dictionary;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Text,
    Bool,
    Time,
}

/// The column kind of a field type (`None`: not analysed, e.g. lists and JSON).
pub fn kind_of(field_type: FieldType) -> Option<Kind> {
    match field_type {
        t if t.is_numeric() => Some(Kind::Number),
        FieldType::Date | FieldType::Datetime => Some(Kind::Time),
        FieldType::Boolean | FieldType::Toggle => Some(Kind::Bool),
        FieldType::Multiselect | FieldType::Checkboxes | FieldType::Tags | FieldType::Vector => None,
        t if t.is_text() || t.is_reference() || t.has_options() => Some(Kind::Text),
        FieldType::Autonumber | FieldType::Time => Some(Kind::Text),
        _ => None,
    }
}

/// The system fields every record has, with their kinds.
pub const SYSTEM: [(&str, Kind); 5] =
    [("created_at", Kind::Time), ("updated_at", Kind::Time), ("created_by", Kind::Text), ("modified_by", Kind::Text), ("id", Kind::Text)];

/// The analysed fields of an object: `(field, kind)`.
pub fn analysed_fields(object: &ObjectDef) -> Vec<(String, Kind)> {
    let mut out: Vec<(String, Kind)> =
        object.fields.iter().filter(|f| !f.is_list()).filter_map(|f| kind_of(f.field_type).map(|k| (f.name.clone(), k))).collect();
    for (name, kind) in SYSTEM {
        if !out.iter().any(|(f, _)| f == name) {
            out.push((name.to_string(), kind));
        }
    }
    out
}

#[derive(Debug)]
pub enum Column {
    Number(Cells<f64>),
    /// Dictionary-coded text.
    Text {
        codes: Cells<u32>,
        dictionary: Dictionary,
    },
    Bool(Cells<bool>),
    /// Microseconds since the epoch.
    Time(Cells<i64>),
}

impl Column {
    fn new(kind: Kind, rows: usize) -> Column {
        match kind {
            Kind::Number => Column::Number(Cells::nulls(rows)),
            Kind::Text => Column::Text { codes: Cells::nulls(rows), dictionary: Dictionary::default() },
            Kind::Bool => Column::Bool(Cells::nulls(rows)),
            Kind::Time => Column::Time(Cells::nulls(rows)),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Column::Number(_) => Kind::Number,
            Column::Text { .. } => Kind::Text,
            Column::Bool(_) => Kind::Bool,
            Column::Time(_) => Kind::Time,
        }
    }

    /// Rows it has values for.
    pub(super) fn len(&self) -> usize {
        match self {
            Column::Number(v) => v.len(),
            Column::Text { codes, .. } => codes.len(),
            Column::Bool(v) => v.len(),
            Column::Time(v) => v.len(),
        }
    }

    /// Whether the row holds a value.
    pub(super) fn is_set(&self, row: usize) -> bool {
        match self {
            Column::Number(v) => v.get(row).is_some(),
            Column::Text { codes, .. } => codes.get(row).is_some(),
            Column::Bool(v) => v.get(row).is_some(),
            Column::Time(v) => v.get(row).is_some(),
        }
    }

    fn grow(&mut self) {
        match self {
            Column::Number(v) => v.push_null(),
            Column::Text { codes, .. } => codes.push_null(),
            Column::Bool(v) => v.push_null(),
            Column::Time(v) => v.push_null(),
        }
    }

    fn set(&mut self, row: usize, value: Option<&Value>) {
        match self {
            Column::Number(v) => v.set(
                row,
                match value {
                    Some(Value::Int(i)) => Some(*i as f64),
                    Some(Value::Float(f)) => Some(*f),
                    _ => None,
                },
            ),
            Column::Text { codes, dictionary } => codes.set(
                row,
                match value {
                    Some(Value::Text(s)) => Some(dictionary.intern(s)),
                    _ => None,
                },
            ),
            Column::Bool(v) => v.set(row, if let Some(Value::Bool(b)) = value { Some(*b) } else { None }),
            Column::Time(v) => v.set(row, if let Some(Value::Text(s)) = value { Timestamp::parse(s).map(Timestamp::micros) } else { None }),
        }
    }
}

/// The field whose column finds a table's rows by id.
const ID: &str = "id";
/// No row (in [`Table`]'s rows by id code).
const NO_ROW: u32 = u32::MAX;

/// One object's rows, by column. A row is found by its id through the `id`
/// column's dictionary (every id the table has held, once) and the row each
/// id's code has now, so the ids are held once for both.
#[derive(Debug, Default)]
pub struct Table {
    /// The row of each id code ([`NO_ROW`]: none now).
    pub(super) row_of_code: Vec<u32>,
    pub(crate) live: Vec<bool>,
    pub(super) free: Vec<usize>,
    pub(crate) columns: BTreeMap<String, Column>,
}

impl Table {
    /// A table as a snapshot held it: the rows by id are taken from the `id`
    /// column's codes of the live rows; why not, when those do not add up.
    pub(super) fn restored(live: Vec<bool>, free: Vec<usize>, columns: BTreeMap<String, Column>) -> Result<Table, String> {
        let mut table = Table { row_of_code: Vec::new(), live, free, columns };
        let rows = table.live.len();
        let Some(Column::Text { codes, dictionary }) = table.columns.get(ID) else {
            return if table.live.iter().any(|l| *l) { Err("live rows but no id column".into()) } else { Ok(table) };
        };
        let mut row_of_code = vec![NO_ROW; dictionary.len()];
        for row in (0..rows).filter(|r| table.live[*r]) {
            let code = codes.get(row).ok_or_else(|| format!("live row {row} has no id"))?;
            let slot = row_of_code.get_mut(code as usize).ok_or_else(|| format!("row {row}'s id code {code} is not in the dictionary"))?;
            if *slot != NO_ROW {
                return Err(format!("rows {slot} and {row} have the same id"));
            }
            *slot = row as u32;
        }
        // Every row is live or free, once: the table's length is read from that.
        let mut free = table.free.clone();
        free.sort_unstable();
        free.dedup();
        let dead = table.live.iter().filter(|l| !**l).count();
        if free.len() != table.free.len() || free.len() != dead || free.iter().any(|row| table.live[*row]) {
            return Err(format!("{} free rows listed for {dead} rows that are not live", table.free.len()));
        }
        table.row_of_code = row_of_code;
        Ok(table)
    }

    /// Adds columns for fields that have none yet (existing rows read null).
    fn configure(&mut self, object: &ObjectDef) {
        for (field, kind) in analysed_fields(object) {
            let rows = self.live.len();
            // The id column is never replaced: it finds the rows.
            let replace = field != ID && self.columns.get(&field).is_some_and(|c| c.kind() != kind);
            if replace || !self.columns.contains_key(&field) {
                self.columns.insert(field, Column::new(kind, rows));
            }
        }
    }

    /// The row of an id, if it has one now.
    pub(super) fn row_of(&self, id: &str) -> Option<usize> {
        let Some(Column::Text { dictionary, .. }) = self.columns.get(ID) else { return None };
        let code = dictionary.code_of(id)?;
        self.row_of_code.get(code as usize).filter(|row| **row != NO_ROW).map(|row| *row as usize)
    }

    /// The id column's codes and dictionary (made when the table has none).
    fn ids(&mut self) -> (&mut Cells<u32>, &mut Dictionary) {
        let rows = self.live.len();
        let column = self.columns.entry(ID.to_string()).or_insert_with(|| Column::new(Kind::Text, rows));
        if column.kind() != Kind::Text {
            *column = Column::new(Kind::Text, rows);
        }
        let Column::Text { codes, dictionary } = column else { unreachable!("made a text column above") };
        (codes, dictionary)
    }

    fn put(&mut self, id: &str, record: &Record) {
        let row = match self.row_of(id) {
            Some(row) => row,
            None => {
                let row = match self.free.pop() {
                    Some(row) => row,
                    None => {
                        self.live.push(false);
                        self.columns.values_mut().for_each(Column::grow);
                        self.live.len() - 1
                    }
                };
                let (codes, dictionary) = self.ids();
                let code = dictionary.intern(id);
                codes.set(row, Some(code));
                if self.row_of_code.len() <= code as usize {
                    self.row_of_code.resize(code as usize + 1, NO_ROW);
                }
                self.row_of_code[code as usize] = row as u32;
                row
            }
        };
        self.live[row] = true;
        for (field, column) in self.columns.iter_mut() {
            if field != ID {
                column.set(row, record.get(field));
            }
        }
    }

    fn update(&mut self, id: &str, changes: &[(String, Value)]) {
        let Some(row) = self.row_of(id) else { return };
        for (field, value) in changes {
            if field == ID {
                continue;
            }
            if let Some(column) = self.columns.get_mut(field) {
                column.set(row, Some(value));
            }
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(row) = self.row_of(id) else { return };
        let (codes, _) = self.ids();
        if let Some(code) = codes.get(row) {
            self.row_of_code[code as usize] = NO_ROW;
        }
        self.live[row] = false;
        self.columns.values_mut().for_each(|c| c.set(row, None));
        self.free.push(row);
    }

    /// Live rows: every row is live or free.
    pub fn len(&self) -> usize {
        self.live.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Default)]
pub struct AnalyticsModel {
    pub(crate) catalog: Catalog,
    pub(crate) tables: HashMap<String, Table>,
    checkpoint: u64,
}

impl AnalyticsModel {
    /// A model as a snapshot held it, current as of `checkpoint`.
    pub(super) fn restored(catalog: Catalog, tables: HashMap<String, Table>, checkpoint: u64) -> AnalyticsModel {
        AnalyticsModel { catalog, tables, checkpoint }
    }

    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Live rows per object.
    pub fn row_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self.tables.iter().map(|(o, t)| (o.clone(), t.len())).collect();
        counts.sort();
        counts
    }

    pub fn advance(&mut self, position: u64) {
        self.checkpoint = self.checkpoint.max(position);
    }

    fn table(&mut self, object: &str) -> &mut Table {
        if !self.tables.contains_key(object) {
            let mut table = Table::default();
            if let Some(definition) = self.catalog.get(object) {
                table.configure(definition);
            }
            self.tables.insert(object.to_string(), table);
        }
        self.tables.get_mut(object).expect("inserted above")
    }

    /// Applies one event (the caller skips events at or below the checkpoint).
    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.checkpoint = envelope.position;
        match payload {
            EventPayload::RecordCreated(e) => self.table(&e.object).put(&e.id, &e.record),
            EventPayload::RecordUpdated(e) => {
                let changes: Vec<(String, Value)> = e.changes.iter().map(|c| (c.field.clone(), c.new.clone())).collect();
                self.table(&e.object).update(&e.id, &changes);
            }
            EventPayload::RecordDeleted(e) => self.table(&e.object).remove(&e.id),
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
                if let Err(error) = evolve_catalog(&mut self.catalog, payload) {
                    tracing::error!(%error, "analytics model cannot apply a definition");
                }
                if let Some(definition) = self.catalog.get(&e.name).cloned() {
                    self.table(&e.name).configure(&definition);
                }
            }
            EventPayload::ObjectRemoved(e) => {
                let _ = evolve_catalog(&mut self.catalog, payload);
                self.tables.remove(&e.name);
            }
            EventPayload::EventSkipped(_) | EventPayload::Process(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(title: &str) -> Record {
        let mut record = Record::default();
        record.insert("title", Value::Text(title.into()));
        record
    }

    #[test]
    fn rows_are_found_by_id_and_reused_after_a_delete() {
        let mut table = Table::default();
        table.put("a", &record("one"));
        table.put("b", &record("two"));
        table.remove("a");
        assert_eq!((table.len(), table.row_of("a"), table.row_of("b")), (1, None, Some(1)));
        table.put("c", &record("three"));
        assert_eq!((table.len(), table.row_of("c")), (2, Some(0)), "the freed row is taken again");
        table.put("a", &record("back"));
        assert_eq!((table.len(), table.row_of("a")), (3, Some(2)), "an id deleted and created again gets a row");
        table.put("a", &record("again"));
        assert_eq!(table.len(), 3, "a put of a live id changes its row");
    }

    #[test]
    fn a_restored_table_must_list_every_row_that_is_not_live_as_free_once() {
        let mut table = Table::default();
        for id in ["a", "b", "c"] {
            table.put(id, &record(id));
        }
        table.remove("b");
        let columns = |table: &Table| {
            let Some(Column::Text { codes, dictionary }) = table.columns.get(ID) else { panic!("an id column") };
            let (values, present) = codes.parts();
            let dictionary = Dictionary::from_texts(dictionary.texts().map(str::to_string).collect()).unwrap();
            BTreeMap::from([(ID.to_string(), Column::Text { codes: Cells::from_parts(values.clone(), present.clone()).unwrap(), dictionary })])
        };
        let restored = Table::restored(table.live.clone(), vec![1], columns(&table)).unwrap();
        assert_eq!((restored.len(), restored.row_of("c"), restored.row_of("b")), (2, Some(2), None));
        assert!(Table::restored(table.live.clone(), vec![], columns(&table)).is_err(), "a dead row not listed as free");
        assert!(Table::restored(table.live.clone(), vec![1, 1], columns(&table)).is_err(), "a free row listed twice");
        assert!(Table::restored(table.live.clone(), vec![0], columns(&table)).is_err(), "a live row listed as free");
    }
}
