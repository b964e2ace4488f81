//! The read side: projections fold the event log into read models.
//!
//! - [`runner`]: follows the log from a projection's checkpoint, applies
//!   events idempotently (an event at or below the checkpoint is skipped), and
//!   publishes the checkpoint so readers can wait for their own writes. It
//!   catches up at start, then is woken by the store's head watch: no polling.
//! - [`query_model`]: the in-process query read model (every object of the
//!   catalog, live schema from metadata events), answering the query AST.
//!
//! **Architecture invariant**: projections only read events; nothing here writes the log.
//! Entry points: [`runner::spawn`], [`query_model::QueryModel::execute`].

pub mod query_model;
pub mod runner;

pub use query_model::{QueryModel, QueryOutput, Viewer};
pub use runner::{Projection, ProjectionHandle};
