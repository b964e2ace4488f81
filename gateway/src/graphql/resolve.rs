//! Query and mutation resolvers: the same read path and commands as REST.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dynamic::{FieldValue, ResolverContext};
use async_graphql::SelectionField;
use axum::http::HeaderMap;
use domain::metadata::Catalog;
use domain::query::{AggFunction, Aggregation, Query};
use domain::value::{Record, Value};
use domain::ErrorCode;
use serde_json::{Map, Value as Json};

use super::values::{arg_json, filter_of, paging_of, position_of, sort_of, string_of, Deleted, Group, Page, Row, Written};
use crate::app::System;
use crate::error::ApiError;
use crate::service::audit::{self, AuditQuery};
use crate::service::search::{self, Search};
use crate::service::writes::{self, Command};
use crate::service::{data, Caller};

/// What a resolver needs from the request (put in the request's data).
pub struct RequestInfo {
    pub headers: HeaderMap,
    /// Who asks: every resolver reads and writes with the caller's rights.
    pub caller: Caller,
}

pub type Result<T> = async_graphql::Result<T>;

pub fn gql(error: impl Into<ApiError>) -> async_graphql::Error {
    error.into().to_graphql()
}

pub fn context<'a>(ctx: &ResolverContext<'a>) -> Result<(&'a Arc<System>, &'a RequestInfo)> {
    Ok((ctx.data::<Arc<System>>()?, ctx.data::<RequestInfo>()?))
}

/// The relations to expand for what the selection reads: one batched look-up
/// per relation and level (a list never costs one read per row).
pub fn expand_from(selection: SelectionField<'_>, catalog: &Catalog, object: &str) -> BTreeMap<String, Query> {
    let mut out = BTreeMap::new();
    let Some(definition) = catalog.get(object) else { return out };
    for child in selection.selection_set() {
        match definition.field(child.name()) {
            // Only a lookup read as an object (with a selection) is expanded; one read as an id is not.
            Some(field) if field.field_type.is_reference() && child.selection_set().next().is_some() => {
                let target = field.reference.clone().unwrap_or_else(|| definition.name.clone());
                let mut sub = Query::new(&target);
                sub.expand = expand_from(child, catalog, &target);
                out.insert(field.name.clone(), sub);
            }
            Some(_) => {}
            // Containers (`records`, `edges`, `node`, `record`...) pass through.
            None => {
                for (relation, sub) in expand_from(child, catalog, object) {
                    out.entry(relation).or_insert(sub);
                }
            }
        }
    }
    out
}

/// `object(id, asOf)`.
pub async fn get_one(ctx: &ResolverContext<'_>, catalog: &Catalog, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    let as_of = string_of(&ctx.args, "asOf").map_err(gql)?;
    let mut shape = Query::new(object);
    shape.expand = expand_from(ctx.field(), catalog, object);
    match data::get(system, &request.caller, None, object, &id, shape, as_of.as_deref()).await {
        Ok(one) => Ok(Some(FieldValue::owned_any(Row(one.record)))),
        Err(error) if error.code == ErrorCode::RecordNotFound => Ok(None),
        Err(error) => Err(gql(error)),
    }
}

/// `objectList(filter, where, sort, limit|first, offset|after)`.
pub async fn list(ctx: &ResolverContext<'_>, catalog: &Catalog, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let mut query = Query::new(object);
    query.filter = filter_of(&ctx.args).map_err(gql)?;
    query.order_by = sort_of(&ctx.args).map_err(gql)?;
    let (limit, offset) = paging_of(&ctx.args).map_err(gql)?;
    query.limit = limit;
    query.offset = offset;
    query.expand = expand_from(ctx.field(), catalog, object);
    let output = data::query(system, &request.caller, None, query, None).await.map_err(gql)?.output;
    Ok(Some(FieldValue::owned_any(Page { records: output.records, total: output.total, has_more: output.has_more, offset })))
}

/// The aggregate functions measured on every numeric field.
pub const MEASURES: [(&str, AggFunction); 4] = [("sum", AggFunction::Sum), ("avg", AggFunction::Avg), ("min", AggFunction::Min), ("max", AggFunction::Max)];

/// `objectAggregate(filter, where, groupBy, limit)`: count and sum/avg/min/max of every numeric field, per group.
pub async fn aggregate(ctx: &ResolverContext<'_>, numeric: &[String], object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let mut query = Query::new(object);
    query.filter = filter_of(&ctx.args).map_err(gql)?;
    let keys: Vec<String> = match arg_json(&ctx.args, "groupBy").map_err(gql)? {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    query.group_by = keys.clone();
    query.aggregations.push(Aggregation { function: AggFunction::Count, field: None, alias: "count".into(), distinct: false, filter: None });
    // The schema is the caller's view: `numeric` holds only fields it may read.
    for field in numeric {
        for (name, function) in MEASURES {
            query.aggregations.push(Aggregation { function, field: Some(field.clone()), alias: format!("{name}__{field}"), distinct: false, filter: None });
        }
    }
    let (limit, offset) = paging_of(&ctx.args).map_err(gql)?;
    query.limit = Some(limit.unwrap_or(domain::query::MAX_LIMIT));
    query.offset = offset;
    let output = data::query(system, &request.caller, None, query, None).await.map_err(gql)?.output;
    Ok(Some(FieldValue::list(output.records.into_iter().map(|row| FieldValue::owned_any(Group { row, keys: keys.clone() })))))
}

fn input_map(ctx: &ResolverContext<'_>) -> Result<Map<String, Json>> {
    match arg_json(&ctx.args, "input").map_err(gql)? {
        Some(Json::Object(map)) => Ok(map),
        Some(_) | None => Ok(Map::new()),
    }
}

fn key_of(ctx: &ResolverContext<'_>) -> Result<Option<String>> {
    let key = string_of(&ctx.args, "idempotencyKey").map_err(gql)?;
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 255) {
        return Err(gql(ApiError::new(ErrorCode::InvalidField, "idempotencyKey must have 1 to 255 characters")));
    }
    Ok(key)
}

fn written(system: &System, caller: &Caller, outcome: writes::Outcome) -> FieldValue<'static> {
    let record: Option<Record> = writes::written_record(system, caller, &outcome);
    FieldValue::owned_any(Written { id: outcome.id, position: outcome.position, version: outcome.version, record: record.map(Arc::new) })
}

/// `createObject(input, id, idempotencyKey)`.
pub async fn create(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let data = input_map(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?;
    let command = Command::Create { object: object.to_string(), id, data };
    let outcome = writes::execute(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
    Ok(Some(written(system, &request.caller, outcome)))
}

/// `updateObject(id, input, expectedVersion, idempotencyKey)`.
pub async fn update(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let patch = input_map(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    let expected_version = position_of(&ctx.args, "expectedVersion").map_err(gql)?;
    let command = Command::Update { object: object.to_string(), id, patch, expected_version };
    let outcome = writes::execute(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
    Ok(Some(written(system, &request.caller, outcome)))
}

/// `deleteObject(id, expectedVersion, idempotencyKey)`.
pub async fn delete(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    let expected_version = position_of(&ctx.args, "expectedVersion").map_err(gql)?;
    let command = Command::Delete { object: object.to_string(), id, expected_version };
    let outcome = writes::execute(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
    Ok(Some(FieldValue::owned_any(Deleted { id: outcome.id, position: outcome.position })))
}

/// A lookup field: the related record(s), expanded by the parent's read when
/// the selection asked for them, read by id otherwise (a single record from a
/// mutation or a subscription).
pub async fn related(ctx: &ResolverContext<'_>, field: &str, target: &str, catalog: &Catalog) -> Result<Option<FieldValue<'static>>> {
    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
    let (ids, list) = match row.0.get(field) {
        Some(Value::Map(map)) => return Ok(Some(FieldValue::owned_any(Row(Arc::new(map.clone()))))),
        Some(Value::List(items)) if items.iter().all(|v| matches!(v, Value::Map(_))) => {
            let rows = items.iter().filter_map(|v| match v {
                Value::Map(m) => Some(FieldValue::owned_any(Row(Arc::new(m.clone())))),
                _ => None,
            });
            return Ok(Some(FieldValue::list(rows.collect::<Vec<_>>())));
        }
        Some(Value::List(items)) => (items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>(), true),
        Some(Value::Text(id)) => (vec![id.clone()], false),
        _ => return Ok(None),
    };
    let (system, request) = context(ctx)?;
    let records = data::by_ids(system, &request.caller, target, &ids, expand_from(ctx.field(), catalog, target)).await.map_err(gql)?;
    let by_id: std::collections::HashMap<String, Arc<Record>> =
        records.into_iter().filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r.clone()))).collect();
    let rows: Vec<FieldValue<'static>> = ids.iter().filter_map(|id| by_id.get(id)).map(|r| FieldValue::owned_any(Row(r.clone()))).collect();
    if list {
        Ok(Some(FieldValue::list(rows)))
    } else {
        Ok(rows.into_iter().next())
    }
}

fn time_arg(ctx: &ResolverContext<'_>, key: &str) -> Result<Option<i64>> {
    match string_of(&ctx.args, key).map_err(gql)? {
        None => Ok(None),
        Some(text) => domain::Timestamp::parse(&text)
            .map(|t| Some(t.micros()))
            .ok_or_else(|| gql(ApiError::new(ErrorCode::InvalidQuery, format!("{key} must be an ISO-8601 datetime, got '{text}'")))),
    }
}

/// `audit(object, recordId, actor, eventType, from, to, limit, offset)`: the audit trail, newest first.
pub async fn audit(ctx: &ResolverContext<'_>) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let limit = position_of(&ctx.args, "limit").map_err(gql)?.unwrap_or(50) as usize;
    if limit > audit::MAX_LIMIT {
        return Err(gql(ApiError::new(ErrorCode::InvalidQuery, format!("limit {limit} is above the maximum of {}", audit::MAX_LIMIT))));
    }
    let query = AuditQuery {
        object: string_of(&ctx.args, "object").map_err(gql)?,
        record_id: string_of(&ctx.args, "recordId").map_err(gql)?,
        actor: string_of(&ctx.args, "actor").map_err(gql)?,
        event_type: string_of(&ctx.args, "eventType").map_err(gql)?,
        from: time_arg(ctx, "from")?,
        to: time_arg(ctx, "to")?,
        limit,
        offset: position_of(&ctx.args, "offset").map_err(gql)?.unwrap_or(0) as usize,
    };
    if query.record_id.is_some() && query.object.is_none() {
        return Err(gql(ApiError::new(ErrorCode::InvalidQuery, "recordId needs object")));
    }
    Ok(Some(FieldValue::owned_any(audit::trail(system, &request.caller, &query, None).await.map_err(gql)?)))
}

fn strings(ctx: &ResolverContext<'_>, key: &str) -> Result<Vec<String>> {
    Ok(match arg_json(&ctx.args, key).map_err(gql)? {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    })
}

/// `search(q, objects, fields, filter, facets, fuzzy, operator, highlight, limit, offset)`: the REST search result as JSON.
pub async fn search(ctx: &ResolverContext<'_>) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let flag = |key: &str| -> Result<Option<bool>> {
        Ok(match arg_json(&ctx.args, key).map_err(gql)? {
            Some(Json::Bool(b)) => Some(b),
            _ => None,
        })
    };
    let match_all = match string_of(&ctx.args, "operator").map_err(gql)?.as_deref() {
        None | Some("or") => false,
        Some("and") => true,
        Some(other) => return Err(gql(ApiError::new(ErrorCode::InvalidQuery, format!("operator must be 'and' or 'or', got '{other}'")))),
    };
    let request_search = Search {
        text: string_of(&ctx.args, "q").map_err(gql)?.unwrap_or_default(),
        objects: strings(ctx, "objects")?,
        fields: strings(ctx, "fields")?,
        facets: strings(ctx, "facets")?,
        filter: arg_json(&ctx.args, "filter").map_err(gql)?.map(|f| domain::query::parse_filter(&f)).transpose().map_err(gql)?,
        boost: Default::default(),
        highlight: flag("highlight")?.unwrap_or(false),
        fuzzy: flag("fuzzy")?.unwrap_or(true),
        match_all,
        min_score: None,
        limit: position_of(&ctx.args, "limit").map_err(gql)?.unwrap_or(20) as usize,
        offset: position_of(&ctx.args, "offset").map_err(gql)?.unwrap_or(0) as usize,
        min_position: None,
    };
    let result = search::search(system, &request.caller, request_search).await.map_err(gql)?;
    Ok(Some(FieldValue::value(super::values::gql_from_json(&result))))
}
