//! The analytics read model: per object, one column per field, updated in
//! place by each record event (a create fills a row, an update the changed
//! cells, a delete frees the row for reuse).

use std::collections::{BTreeMap, HashMap};

use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog, FieldType, ObjectDef};
use domain::value::{Record, Value};
use domain::Timestamp;

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
    Number(Vec<Option<f64>>),
    /// Dictionary-coded text.
    Text {
        codes: Vec<Option<u32>>,
        dictionary: Vec<String>,
        lookup: HashMap<String, u32>,
    },
    Bool(Vec<Option<bool>>),
    /// Microseconds since the epoch.
    Time(Vec<Option<i64>>),
}

impl Column {
    fn new(kind: Kind, rows: usize) -> Column {
        match kind {
            Kind::Number => Column::Number(vec![None; rows]),
            Kind::Text => Column::Text { codes: vec![None; rows], dictionary: Vec::new(), lookup: HashMap::new() },
            Kind::Bool => Column::Bool(vec![None; rows]),
            Kind::Time => Column::Time(vec![None; rows]),
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

    fn grow(&mut self) {
        match self {
            Column::Number(v) => v.push(None),
            Column::Text { codes, .. } => codes.push(None),
            Column::Bool(v) => v.push(None),
            Column::Time(v) => v.push(None),
        }
    }

    fn set(&mut self, row: usize, value: Option<&Value>) {
        match self {
            Column::Number(v) => {
                v[row] = match value {
                    Some(Value::Int(i)) => Some(*i as f64),
                    Some(Value::Float(f)) => Some(*f),
                    _ => None,
                }
            }
            Column::Text { codes, dictionary, lookup } => {
                codes[row] = match value {
                    Some(Value::Text(s)) => Some(match lookup.get(s) {
                        Some(code) => *code,
                        None => {
                            dictionary.push(s.clone());
                            let code = (dictionary.len() - 1) as u32;
                            lookup.insert(s.clone(), code);
                            code
                        }
                    }),
                    _ => None,
                }
            }
            Column::Bool(v) => v[row] = if let Some(Value::Bool(b)) = value { Some(*b) } else { None },
            Column::Time(v) => v[row] = if let Some(Value::Text(s)) = value { Timestamp::parse(s).map(Timestamp::micros) } else { None },
        }
    }
}

/// One object's rows, by column.
#[derive(Debug, Default)]
pub struct Table {
    pub(super) slots: HashMap<String, usize>,
    pub(crate) live: Vec<bool>,
    pub(super) free: Vec<usize>,
    pub(crate) columns: BTreeMap<String, Column>,
}

impl Table {
    /// Adds columns for fields that have none yet (existing rows read null).
    fn configure(&mut self, object: &ObjectDef) {
        for (field, kind) in analysed_fields(object) {
            let rows = self.live.len();
            let replace = self.columns.get(&field).is_some_and(|c| c.kind() != kind);
            if replace || !self.columns.contains_key(&field) {
                self.columns.insert(field, Column::new(kind, rows));
            }
        }
    }

    fn put(&mut self, id: &str, record: &Record) {
        let row = match self.slots.get(id) {
            Some(row) => *row,
            None => {
                let row = match self.free.pop() {
                    Some(row) => row,
                    None => {
                        self.live.push(false);
                        self.columns.values_mut().for_each(Column::grow);
                        self.live.len() - 1
                    }
                };
                self.slots.insert(id.to_string(), row);
                row
            }
        };
        self.live[row] = true;
        for (field, column) in self.columns.iter_mut() {
            column.set(row, record.get(field));
        }
    }

    fn update(&mut self, id: &str, changes: &[(String, Value)]) {
        let Some(&row) = self.slots.get(id) else { return };
        for (field, value) in changes {
            if let Some(column) = self.columns.get_mut(field) {
                column.set(row, Some(value));
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(row) = self.slots.remove(id) {
            self.live[row] = false;
            self.columns.values_mut().for_each(|c| c.set(row, None));
            self.free.push(row);
        }
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
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
