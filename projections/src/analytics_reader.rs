//! Running analytics, whichever model answers: the columnar model in process
//! on the embedded store ([`AnalyticsModel`]), SQL on the query model's
//! tables on PostgreSQL ([`crate::analytics::pg`]). Both resolve, order and
//! page a query with the same code, so both give the same answer.

use std::sync::{Arc, RwLock};

use deadpool_postgres::Pool;
use domain::metadata::Catalog;
use domain::Timestamp;
use serde_json::Value as Json;

use crate::analytics::{AnalyticsModel, AnalyticsQuery, AnalyticsResult, Cube};
use crate::reader::ReadError;

#[derive(Clone)]
pub enum AnalyticsReader {
    Memory(Arc<RwLock<AnalyticsModel>>),
    Postgres(Pool),
}

impl AnalyticsReader {
    /// The cubes: one per object (of the columnar model's definitions, or on
    /// PostgreSQL of `catalog`, the query model's) and the declared ones.
    pub fn cubes(&self, catalog: &Catalog, declared: &[Json]) -> Vec<Cube> {
        match self {
            AnalyticsReader::Memory(model) => model.read().expect("analytics lock").cubes(declared),
            AnalyticsReader::Postgres(_) => crate::analytics::cube::cubes(catalog, declared),
        }
    }

    pub async fn run(&self, catalog: &Catalog, cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<AnalyticsResult, ReadError> {
        match self {
            AnalyticsReader::Memory(model) => Ok(model.read().expect("analytics lock").run(cube, query, now)?),
            AnalyticsReader::Postgres(pool) => crate::analytics::pg::run(pool, catalog, cube, query, now).await,
        }
    }

    /// The live rows of an object the model reads.
    pub async fn rows_of(&self, object: &str) -> Result<usize, ReadError> {
        match self {
            AnalyticsReader::Memory(model) => {
                Ok(model.read().expect("analytics lock").row_counts().into_iter().find(|(o, _)| o == object).map_or(0, |(_, n)| n))
            }
            AnalyticsReader::Postgres(pool) => crate::analytics::pg::rows(pool, object).await,
        }
    }

    /// The in-process model, when it is the one (to save, load or rebuild it).
    pub fn memory_model(&self) -> Option<Arc<RwLock<AnalyticsModel>>> {
        match self {
            AnalyticsReader::Memory(model) => Some(model.clone()),
            AnalyticsReader::Postgres(_) => None,
        }
    }
}
