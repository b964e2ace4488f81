//! Reading the query read model, whichever store holds it. The one place
//! reads go through (with a [`Viewer`]), so security rules have one seam.

use std::sync::{Arc, RwLock};

use domain::metadata::Catalog;
use domain::query::Query;
use domain::value::Record;
use domain::DomainError;

use crate::pg_model::PgReader;
use crate::query_model::{QueryModel, QueryOutput, Viewer};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The query is wrong (unknown object or field, bad operator...).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The read model's store failed.
    #[error("read model store: {0}")]
    Store(String),
}

impl ReadError {
    /// A store's failure, by its message.
    pub fn store(e: impl std::fmt::Display) -> ReadError {
        ReadError::Store(e.to_string())
    }
}

#[derive(Clone)]
pub enum QueryReader {
    Memory(Arc<RwLock<QueryModel>>),
    Postgres(PgReader),
}

impl QueryReader {
    /// The metadata as the read model knows it.
    pub fn catalog(&self) -> Catalog {
        match self {
            QueryReader::Memory(model) => model.read().expect("query model lock").catalog().clone(),
            QueryReader::Postgres(reader) => reader.catalog(),
        }
    }

    pub async fn execute(&self, viewer: &Viewer, query: Query) -> Result<QueryOutput, ReadError> {
        match self {
            QueryReader::Memory(model) => Ok(model.read().expect("query model lock").execute(viewer, query)?),
            QueryReader::Postgres(reader) => reader.execute(viewer, query).await,
        }
    }

    /// How a list query runs for the viewer on whichever model serves it (it runs).
    pub async fn explain(&self, viewer: &Viewer, query: Query) -> Result<serde_json::Value, ReadError> {
        match self {
            QueryReader::Memory(model) => Ok(model.read().expect("query model lock").explain(viewer, query)?),
            QueryReader::Postgres(reader) => reader.explain(viewer, query).await,
        }
    }

    pub async fn get(&self, viewer: &Viewer, object: &str, id: &str) -> Result<Option<Record>, ReadError> {
        match self {
            QueryReader::Memory(model) => Ok(model.read().expect("query model lock").get(viewer, object, id)?),
            QueryReader::Postgres(reader) => reader.get(viewer, object, id).await,
        }
    }
}
