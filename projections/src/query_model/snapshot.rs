//! The query model as a snapshot: the catalog, the latest event time, and
//! each table's rows (ids and records) in id order. Indexes are not saved:
//! they are built once, in one sort per field, when the load ends.

use std::sync::Arc;

use domain::event::ObjectDefined;
use domain::fields::KeptRecord;

use super::QueryModel;
use crate::history::ModelSnapshot;
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

impl Snapshot for QueryModel {
    const NAME: &'static str = "query";
    const FORMAT: u32 = 1;
    /// The rows, shared with the model (a record changed later is copied by the model).
    type Captured = ModelSnapshot;

    fn capture(&self) -> ModelSnapshot {
        self.snapshot()
    }

    fn encode(captured: ModelSnapshot) -> Vec<u8> {
        let mut out = Writer::default();
        out.put(&captured.max_occurred_at);
        out.put(&definitions(&captured.catalog));
        out.put(&(captured.tables.len() as u64));
        for (object, rows) in &captured.tables {
            out.put(object);
            out.put(&(rows.len() as u64));
            for (id, record) in rows {
                out.put(&(&**id, &**record));
            }
        }
        out.bytes
    }

    fn decode(template: QueryModel, position: u64, body: &[u8]) -> Result<QueryModel, String> {
        let mut input = Reader::new(body, "the query model's snapshot");
        let max_occurred_at: i64 = input.take()?;
        let catalog = from_definitions(input.take::<Vec<ObjectDefined>>()?)?;
        let mut model = QueryModel { catalog, deferred: true, history: template.history, max_occurred_at, ..QueryModel::default() };
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let table = model.table(&object);
            for _ in 0..input.count()? {
                let (id, KeptRecord(record)): (String, KeptRecord) = input.take()?;
                table.put_shared(id, Arc::new(record));
            }
        }
        input.finish()?;
        model.checkpoint = position;
        // As-of reads of moments from here on fold from this state, not from the beginning.
        if let Some(history) = &model.history {
            history.keep(model.snapshot());
        }
        Ok(model)
    }
}
