//! Records: read one, query many (list, `/query`, aggregates, lookups), as of
//! a moment or now, always through the caller's viewer after the read barrier.
//! Writes are in [`super::writes`].

use std::sync::Arc;

use domain::metadata::ObjectDef;
use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::value::{Record, Value};
use domain::ErrorCode;
use projections::as_of::{record_as_of, AsOf};
pub use projections::QueryOutput;

use super::barrier::{reached, read_barrier};
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// A query's answer, with where it was read.
pub struct Read {
    pub output: QueryOutput,
    /// The position an as-of read was folded to.
    pub as_of: Option<u64>,
    /// The position the read model had reached.
    pub position: u64,
}

/// One record's answer.
pub struct One {
    pub record: Arc<Record>,
    /// The record's stream version (its ETag), for reads of now.
    pub version: Option<u64>,
    pub as_of: Option<u64>,
    pub position: u64,
}

/// An object's definition as the read model knows it (to parse requests against).
pub fn object(system: &System, name: &str) -> Result<Arc<ObjectDef>, ApiError> {
    Ok(system.reader.catalog().require(name)?.clone())
}

/// `asOf` as sent: a log position or an ISO-8601 time.
pub fn parse_as_of(text: &str) -> Result<AsOf, ApiError> {
    AsOf::parse(text).ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, format!("asOf must be a log position or an ISO-8601 time, got '{text}'")))
}

/// Runs a query for the caller: on the read model (after the read barrier and
/// `min`; a `search` clause narrows and ranks), or, with `as_of`, on the model
/// folded from the log up to then.
pub async fn query(system: &System, caller: &Caller, min: Option<u64>, query: Query, as_of: Option<&str>) -> Result<Read, ApiError> {
    read_barrier(system, min).await?;
    run(system, caller, query, as_of).await
}

/// [`query`] after the barrier.
async fn run(system: &System, caller: &Caller, query: Query, as_of: Option<&str>) -> Result<Read, ApiError> {
    let (output, as_of) = match as_of {
        None => (super::search::query_with_search(system, caller, query).await?, None),
        Some(text) => {
            let folded = system.as_of_folds.model(system.commands.store(), parse_as_of(text)?, system.read_wait).await?;
            let Some((model, position)) = folded else {
                return Err(ApiError::new(ErrorCode::ServiceUnavailable, "too many as-of reads at once; retry"));
            };
            (model.execute(&caller.viewer, query)?, Some(position))
        }
    };
    Ok(Read { output, as_of, position: reached(system) })
}

/// How a list query runs for the caller (which indexes answer it, how many
/// rows it touches): an operator's tool, so it needs `manage_projections`
/// (an explanation counts rows per index key, beyond the caller's own rows).
pub async fn explain(system: &System, caller: &Caller, min: Option<u64>, query: Query) -> Result<serde_json::Value, ApiError> {
    caller.require(domain::security::SystemPermission::ManageProjections)?;
    read_barrier(system, min).await?;
    Ok(system.reader.explain(&caller.viewer, query).await?)
}

/// One record for the caller; `shape` selects fields and expands relations.
/// A record the caller may not see is not found.
pub async fn get(system: &System, caller: &Caller, min: Option<u64>, object: &str, id: &str, mut shape: Query, as_of: Option<&str>) -> Result<One, ApiError> {
    read_barrier(system, min).await?;
    let catalog = system.reader.catalog();
    let definition = catalog.require(object)?.clone();
    let grant = caller.access().grant(&catalog, &definition);
    let plain = shape.fields.is_none() && shape.expand.is_empty();
    if let (Some(text), true, true) = (as_of, plain, grant.read_rows.is_none()) {
        // A record as of a moment needs only its own stream (when no row rule needs the rest of the model).
        if !grant.permission.can_read() {
            return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", definition.name)));
        }
        let Some(mut record) = record_as_of(system.commands.store(), &system.snapshots, &definition, id, parse_as_of(text)?).await? else {
            return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object} as of {text}")));
        };
        for hidden in &grant.hidden {
            record.remove(hidden);
        }
        return Ok(One { record: Arc::new(record), version: None, as_of: None, position: reached(system) });
    }
    let by_id = Query::by_id(&definition.name, id);
    shape.object = by_id.object;
    shape.filter = by_id.filter;
    shape.limit = by_id.limit;
    let read = run(system, caller, shape, as_of).await?;
    let Some(record) = read.output.records.into_iter().next() else {
        return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object}")));
    };
    let version = read.as_of.is_none().then(|| system.commands.version_of(&definition.name, id));
    Ok(One { record, version, as_of: read.as_of, position: read.position })
}

/// Records of `object` by id, in one read (GraphQL lookups resolved by id).
pub async fn by_ids(
    system: &System,
    caller: &Caller,
    object: &str,
    ids: &[String],
    expand: std::collections::BTreeMap<String, Query>,
) -> Result<Vec<Arc<Record>>, ApiError> {
    let mut query = Query::new(object);
    query.filter =
        Some(Filter::Cond(Condition { field: "id".into(), op: Op::In, value: Operand::Value(Value::List(ids.iter().cloned().map(Value::Text).collect())) }));
    query.limit = Some(ids.len() as u64);
    query.expand = expand;
    Ok(system.reader.execute(&caller.viewer, query).await?.records)
}
