//! Query and mutation resolvers: the same read path and commands as REST.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dynamic::{FieldValue, ResolverContext};
use async_graphql::SelectionField;
use axum::http::HeaderMap;
use commands::service::Command;
use domain::metadata::Catalog;
use domain::query::{AggFunction, Aggregation, Condition, Filter, Op, Operand, Query};
use domain::value::{Record, Value};
use domain::ErrorCode;
use projections::as_of::{record_as_of, AsOf};
use serde_json::{Map, Value as Json};

use super::values::{arg_json, filter_of, paging_of, position_of, sort_of, string_of, Deleted, Group, Page, Row, Written};
use crate::app::System;
use crate::error::ApiError;
use crate::service::Caller;

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

fn id_filter(id: &str) -> Filter {
    Filter::Cond(Condition { field: "id".into(), op: Op::Eq, value: Operand::Value(Value::Text(id.to_string())) })
}

/// `object(id, asOf)`.
pub async fn get_one(ctx: &ResolverContext<'_>, catalog: &Catalog, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    if let Some(text) = string_of(&ctx.args, "asOf").map_err(gql)? {
        let moment = AsOf::parse(&text)
            .ok_or_else(|| gql(ApiError::new(ErrorCode::InvalidQuery, format!("asOf must be a log position or an ISO-8601 time, got '{text}'"))))?;
        let definition = system.reader.catalog().require(object).map_err(gql)?.clone();
        let record = record_as_of(system.commands.store(), &system.snapshots, &definition, &id, moment).await.map_err(gql)?;
        return Ok(record.map(|r| FieldValue::owned_any(Row(Arc::new(r)))));
    }
    let mut query = Query::new(object);
    query.filter = Some(id_filter(&id));
    query.limit = Some(1);
    query.expand = expand_from(ctx.field(), catalog, object);
    let output = system.reader.execute(&request.caller.viewer, query).await.map_err(gql)?;
    Ok(output.records.into_iter().next().map(|r| FieldValue::owned_any(Row(r))))
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
    let output = system.reader.execute(&request.caller.viewer, query).await.map_err(gql)?;
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
    // Only fields the caller may read are measured (the others answer null).
    let catalog = system.reader.catalog();
    let grant = request.caller.access().grant(&catalog, catalog.require(object).map_err(gql)?);
    for field in numeric.iter().filter(|f| grant.can_read_field(f)) {
        for (name, function) in MEASURES {
            query.aggregations.push(Aggregation { function, field: Some(field.clone()), alias: format!("{name}__{field}"), distinct: false, filter: None });
        }
    }
    let (limit, offset) = paging_of(&ctx.args).map_err(gql)?;
    query.limit = Some(limit.unwrap_or(domain::query::MAX_LIMIT));
    query.offset = offset;
    let output = system.reader.execute(&request.caller.viewer, query).await.map_err(gql)?;
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

fn written(system: &System, caller: &Caller, outcome: commands::service::Outcome) -> FieldValue<'static> {
    let record: Option<Record> = crate::routes::written_record_value(system, caller, &outcome);
    FieldValue::owned_any(Written { id: outcome.id, position: outcome.position, version: outcome.version, record: record.map(Arc::new) })
}

/// `createObject(input, id, idempotencyKey)`.
pub async fn create(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let data = input_map(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?;
    let command = Command::Create { object: object.to_string(), id, data };
    let outcome = crate::routes::execute_with_key(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
    Ok(Some(written(system, &request.caller, outcome)))
}

/// `updateObject(id, input, expectedVersion, idempotencyKey)`.
pub async fn update(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let patch = input_map(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    let expected_version = position_of(&ctx.args, "expectedVersion").map_err(gql)?;
    let command = Command::Update { object: object.to_string(), id, patch, expected_version };
    let outcome = crate::routes::execute_with_key(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
    Ok(Some(written(system, &request.caller, outcome)))
}

/// `deleteObject(id, expectedVersion, idempotencyKey)`.
pub async fn delete(ctx: &ResolverContext<'_>, object: &str) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let id = string_of(&ctx.args, "id").map_err(gql)?.unwrap_or_default();
    let expected_version = position_of(&ctx.args, "expectedVersion").map_err(gql)?;
    let command = Command::Delete { object: object.to_string(), id, expected_version };
    let outcome = crate::routes::execute_with_key(system, &request.caller, key_of(ctx)?, command).await.map_err(gql)?;
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
    let mut query = Query::new(target);
    query.filter =
        Some(Filter::Cond(Condition { field: "id".into(), op: Op::In, value: Operand::Value(Value::List(ids.iter().cloned().map(Value::Text).collect())) }));
    query.limit = Some(ids.len() as u64);
    query.expand = expand_from(ctx.field(), catalog, target);
    let output = system.reader.execute(&request.caller.viewer, query).await.map_err(gql)?;
    let by_id: std::collections::HashMap<String, Arc<Record>> =
        output.records.into_iter().filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r.clone()))).collect();
    let rows: Vec<FieldValue<'static>> = ids.iter().filter_map(|id| by_id.get(id)).map(|r| FieldValue::owned_any(Row(r.clone()))).collect();
    if list {
        Ok(Some(FieldValue::list(rows)))
    } else {
        Ok(rows.into_iter().next())
    }
}

/// `audit(object, recordId, actor, eventType, from, to, limit, offset)`: the audit trail, newest first.
pub async fn audit(ctx: &ResolverContext<'_>) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    request.caller.require(domain::security::SystemPermission::ViewAuditTrail).map_err(gql)?;
    crate::routes::support::barrier_on(system, &system.audit, &request.headers, None).await.map_err(gql)?;
    let mut params = Vec::new();
    for key in ["object", "recordId", "actor", "eventType", "from", "to"] {
        if let Some(value) = string_of(&ctx.args, key).map_err(gql)? {
            params.push((key.to_string(), value));
        }
    }
    for key in ["limit", "offset"] {
        if let Some(value) = position_of(&ctx.args, key).map_err(gql)? {
            params.push((key.to_string(), value.to_string()));
        }
    }
    let query = crate::routes::audit::parse(params, false).map_err(gql)?;
    Ok(Some(FieldValue::owned_any(crate::routes::audit::page(system, &request.caller, &query))))
}

/// `search(q, objects, fields, filter, facets, fuzzy, operator, highlight, limit, offset)`: the REST search result as JSON.
pub async fn search(ctx: &ResolverContext<'_>) -> Result<Option<FieldValue<'static>>> {
    let (system, request) = context(ctx)?;
    let mut params = Vec::new();
    for (arg, key) in [("q", "q"), ("operator", "operator")] {
        if let Some(value) = string_of(&ctx.args, arg).map_err(gql)? {
            params.push((key.to_string(), value));
        }
    }
    for (arg, key) in [("objects", "object"), ("fields", "fields"), ("facets", "facets")] {
        if let Some(Json::Array(items)) = arg_json(&ctx.args, arg).map_err(gql)? {
            let list: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
            params.push((key.to_string(), list.join(",")));
        }
    }
    if let Some(filter) = arg_json(&ctx.args, "filter").map_err(gql)? {
        params.push(("filter".to_string(), filter.to_string()));
    }
    for key in ["fuzzy", "highlight"] {
        if let Some(Json::Bool(b)) = arg_json(&ctx.args, key).map_err(gql)? {
            params.push((key.to_string(), b.to_string()));
        }
    }
    for key in ["limit", "offset"] {
        if let Some(value) = position_of(&ctx.args, key).map_err(gql)? {
            params.push((key.to_string(), value.to_string()));
        }
    }
    let result = crate::routes::search::search_result(system, &request.caller, &request.headers, crate::extract::QueryPairs(params)).await.map_err(gql)?;
    Ok(Some(FieldValue::value(super::values::gql_from_json(&result))))
}
