//! The in-process query model as the write model's record source, so each
//! live record is held once by both (see `commands::service::sharing`).

use std::sync::{Arc, RwLock};

use commands::service::sharing::RecordSource;
use domain::value::Record;

use super::QueryModel;

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
