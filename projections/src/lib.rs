//! The read side: projections fold the event log into read models.
//!
//! - [`runner`]: follows the log from a projection's checkpoint, hands it
//!   batches in position order, and publishes the checkpoint so readers can
//!   wait for their own writes. It catches up at start, then is woken by the
//!   store's head watch: no polling.
//! - [`query_model`]: the in-process query read model (the embedded default).
//! - [`pg_model`]: the query read model in PostgreSQL tables (one per object,
//!   indexes generated from metadata), checkpoint committed with the data.
//! - [`reader`]: [`QueryReader`], the one read path over either model.
//! - [`as_of`]: the query model as of a past position or time, folded from the log.
//! - [`history`]: past states of the query model kept in memory, where as-of folds start.
//! - `shared_decode`: one read and decode of each batch for every projection following a store.
//! - `read_ahead`: the log read and decoded ahead of a fold, its buffers reused.
//! - [`rebuild`]: rebuilding an in-process model from the log while it stays live, then swapping it in.
//! - [`analytics`]: the columnar analytics model and cube queries.
//! - [`search`]: full-text search (tantivy, in memory or on disk), fed from either store.
//! - `hashing`: the hash maps folds use per event (foldhash).
//! - [`live`]: realtime fan-out of committed changes and live queries.
//! - [`audit_model`]: the audit trail, one entry per change, in process (the embedded store).
//! - [`pg_audit`]: the audit trail in PostgreSQL tables (the PostgreSQL store).
//! - [`audit_reader`]: [`AuditReader`], the one read path over either audit model.
//! - [`analytics_reader`]: [`AnalyticsReader`], analytics from the columnar model or by SQL on PostgreSQL.
//! - [`snapshot`]: the in-process models saved with their position, so a start folds only what came after.
//!
//! **Architecture invariant**: projections only read events; nothing here writes the log.
//! Entry points: [`runner::spawn`], [`memory_projection`], [`pg_model::open`].

pub mod analytics;
pub mod analytics_reader;
pub mod as_of;
pub mod audit_model;
pub mod audit_reader;
pub mod dead_letter;
mod hashing;
pub mod history;
pub mod live;
mod names;
pub mod pg_audit;
pub mod pg_model;
pub mod query_model;
mod read_ahead;
pub mod reader;
pub mod rebuild;
pub mod runner;
pub mod search;
mod shared_decode;
pub mod snapshot;
#[cfg(test)]
mod test_rng;
#[cfg(test)]
mod test_support;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use domain::event::{EventEnvelope, EventPayload};

pub use analytics_reader::AnalyticsReader;
pub use audit_reader::AuditReader;
pub use dead_letter::DeadLetter;
pub use query_model::{QueryModel, QueryOutput, RecordFilter, Viewer};
pub use reader::{QueryReader, ReadError};
pub use rebuild::MemoryModel;
pub use runner::{Projection, ProjectionError, ProjectionHandle};

/// The in-process query model as a projection, and its reader.
pub fn memory_projection() -> (InProcess<QueryModel>, QueryReader) {
    let (projection, model) = InProcess::new("query");
    (projection, QueryReader::Memory(model))
}

impl QueryReader {
    /// The shared in-process model, when this reader has one (for rebuilds).
    pub fn memory_model(&self) -> Option<Arc<RwLock<QueryModel>>> {
        match self {
            QueryReader::Memory(model) => Some(model.clone()),
            QueryReader::Postgres(_) => None,
        }
    }
}

/// An in-process model as a projection: batches are applied under the
/// model's write lock, which readers share.
pub struct InProcess<M> {
    name: &'static str,
    model: Arc<RwLock<M>>,
}

impl<M: MemoryModel> InProcess<M> {
    /// A new, empty model and the projection that feeds it.
    pub fn new(name: &'static str) -> (InProcess<M>, Arc<RwLock<M>>) {
        InProcess::over(name, M::default())
    }

    /// `model` (one opened from its own files) and the projection that feeds it.
    pub fn over(name: &'static str, model: M) -> (InProcess<M>, Arc<RwLock<M>>) {
        let model = Arc::new(RwLock::new(model));
        (InProcess { name, model: model.clone() }, model)
    }
}

#[async_trait]
impl<M: MemoryModel> Projection for InProcess<M> {
    fn name(&self) -> &str {
        self.name
    }

    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        Ok(self.model.read().expect("model lock").checkpoint())
    }

    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        let mut model = self.model.write().expect("model lock");
        for (envelope, payload) in batch {
            if envelope.position > model.checkpoint() {
                model.apply_ref(envelope, payload);
            }
        }
        model.advance_to(up_to);
        Ok(())
    }
}
