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
//! - [`rebuild`]: rebuilding an in-process model from the log while it stays live, then swapping it in.
//! - [`audit_model`]: the audit trail, one entry per change (in process, fed from either store).
//!
//! **Architecture invariant**: projections only read events; nothing here writes the log.
//! Entry points: [`runner::spawn`], [`memory_projection`], [`pg_model::open`].

pub mod as_of;
pub mod audit_model;
pub mod pg_model;
pub mod query_model;
pub mod reader;
pub mod rebuild;
pub mod runner;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use domain::event::{EventEnvelope, EventPayload};

pub use query_model::{QueryModel, QueryOutput, Viewer};
pub use reader::{QueryReader, ReadError};
pub use runner::{Projection, ProjectionError, ProjectionHandle};

/// The in-process query model as a projection, and its reader.
pub fn memory_projection() -> (MemoryProjection, QueryReader) {
    let model = Arc::new(RwLock::new(QueryModel::default()));
    (MemoryProjection { model: model.clone() }, QueryReader::Memory(model))
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

/// Applies batches to the shared in-process model under its write lock.
pub struct MemoryProjection {
    model: Arc<RwLock<QueryModel>>,
}

#[async_trait]
impl Projection for MemoryProjection {
    fn name(&self) -> &str {
        "query"
    }

    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        Ok(self.model.read().expect("query model lock").checkpoint())
    }

    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        let mut model = self.model.write().expect("query model lock");
        for (envelope, payload) in batch {
            if envelope.position > model.checkpoint() {
                model.apply(envelope, payload);
            }
        }
        model.advance(up_to);
        Ok(())
    }
}
