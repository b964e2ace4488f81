//! Values crossing the GraphQL boundary: records and results as parent
//! values of resolvers, record values to GraphQL values, and GraphQL
//! arguments to the query AST (filters with the REST semantics, sort, paging).

use std::sync::Arc;

use async_graphql::dynamic::ObjectAccessor;
use async_graphql::{Name, Value as Gql};
use domain::query::{parse_filter, Filter, SortNode, SortOrder};
use domain::value::{Record, Value};
use domain::{DomainError, ErrorCode};
use serde_json::{json, Map, Value as Json};

use super::types::Kind;
use crate::error::ApiError;

/// A record as the parent of its fields' resolvers.
pub struct Row(pub Arc<Record>);

/// A page of a list query.
pub struct Page {
    pub records: Vec<Arc<Record>>,
    pub total: Option<u64>,
    pub has_more: bool,
    pub offset: u64,
}

/// One aggregate row: the group-by values and each measure under `{fn}__{field}`.
pub struct Group {
    pub row: Arc<Record>,
    pub keys: Vec<String>,
}

/// The measures of one function (`sum`, `avg`, `min`, `max`) of a group.
pub struct Numbers {
    pub row: Arc<Record>,
    pub function: &'static str,
}

/// The answer to a create or update.
pub struct Written {
    pub id: String,
    pub position: u64,
    pub version: u64,
    pub record: Option<Arc<Record>>,
}

/// The answer to a delete.
pub struct Deleted {
    pub id: String,
    pub position: u64,
}

/// The cursor of the row at `offset` (opaque to clients).
pub fn cursor(offset: u64) -> String {
    format!("o{offset}")
}

fn parse_cursor(text: &str) -> Result<u64, ApiError> {
    text.strip_prefix('o')
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, format!("'{text}' is not a cursor of this API")))
}

pub fn gql_from_json(json: &Json) -> Gql {
    Gql::from_json(json.clone()).unwrap_or(Gql::Null)
}

/// A stored value as GraphQL sees it (`None` for null).
pub fn to_gql(value: Option<&Value>, kind: &Kind, list: bool) -> Option<Gql> {
    let value = value?;
    if list {
        let items = match value {
            Value::List(items) => items.iter().filter_map(|v| to_gql(Some(v), kind, false)).collect(),
            Value::Null => return None,
            single => vec![to_gql(Some(single), kind, false)?],
        };
        return Some(Gql::List(items));
    }
    match (kind, value) {
        (_, Value::Null) => None,
        (Kind::Json, other) => Some(gql_from_json(&other.to_json())),
        (Kind::Float, Value::Int(i)) => Some(Gql::from(*i as f64)),
        (Kind::Float, Value::Float(f)) => async_graphql::Number::from_f64(*f).map(Gql::Number),
        (Kind::Boolean, Value::Bool(b)) => Some(Gql::Boolean(*b)),
        (Kind::Enum(_), Value::Text(s)) => Some(Gql::Enum(Name::new(s))),
        (Kind::String | Kind::Date | Kind::DateTime | Kind::Time | Kind::Reference(_), Value::Text(s)) => Some(Gql::String(s.clone())),
        (Kind::String | Kind::Date | Kind::DateTime | Kind::Time, Value::Int(i)) => Some(Gql::String(i.to_string())),
        (Kind::String | Kind::Date | Kind::DateTime | Kind::Time, Value::Float(f)) => Some(Gql::String(f.to_string())),
        (Kind::String, Value::Bool(b)) => Some(Gql::String(b.to_string())),
        // A value of the wrong shape (older data) reads as null rather than failing the query.
        _ => None,
    }
}

/// An argument as JSON (enums become their names).
pub fn arg_json(args: &ObjectAccessor<'_>, name: &str) -> Result<Option<Json>, ApiError> {
    match args.get(name) {
        None => Ok(None),
        Some(value) if value.is_null() => Ok(None),
        Some(value) => value.as_value().clone().into_json().map(Some).map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("argument '{name}': {e}"))),
    }
}

/// The typed filter input as the REST filter it means: `{AND, OR, NOT, field: {op: value}}`
/// becomes `{$and, $or, $not, field: {$op: value}}`.
fn typed_filter(json: &Json) -> Result<Json, ApiError> {
    let Json::Object(map) = json else {
        return Err(ApiError::new(ErrorCode::InvalidFilter, "a filter must be an object"));
    };
    let mut parts = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "AND" | "OR" => {
                let items = value.as_array().map(|a| a.iter().map(typed_filter).collect::<Result<Vec<_>, _>>()).transpose()?.unwrap_or_default();
                parts.push(json!({ if key == "AND" { "$and" } else { "$or" }: items }));
            }
            "NOT" => parts.push(json!({"$not": typed_filter(value)?})),
            field => {
                let Json::Object(ops) = value else { continue };
                let condition: Map<String, Json> = ops.iter().map(|(op, operand)| (format!("${op}"), operand.clone())).collect();
                if !condition.is_empty() {
                    parts.push(json!({ field: condition }));
                }
            }
        }
    }
    Ok(json!({"$and": parts}))
}

/// The filter of a list, aggregate or subscription: the typed `filter` and the raw `where` (any REST form), both applying.
pub fn filter_of(args: &ObjectAccessor<'_>) -> Result<Option<Filter>, ApiError> {
    let mut parts = Vec::new();
    if let Some(typed) = arg_json(args, "filter")? {
        parts.push(parse_filter(&typed_filter(&typed)?)?);
    }
    if let Some(raw) = arg_json(args, "where")? {
        parts.push(parse_filter(&raw)?);
    }
    let parts: Vec<Filter> = parts.into_iter().filter(|f| !matches!(f, Filter::And(list) if list.is_empty())).collect();
    Ok(if parts.is_empty() { None } else { Some(Filter::and(parts)) })
}

/// `sort: [{field, order}]`.
pub fn sort_of(args: &ObjectAccessor<'_>) -> Result<Vec<SortNode>, ApiError> {
    let Some(Json::Array(items)) = arg_json(args, "sort")? else { return Ok(Vec::new()) };
    items
        .iter()
        .map(|item| {
            let field = item.get("field").and_then(Json::as_str).ok_or_else(|| ApiError::new(ErrorCode::InvalidSort, "a sort needs a field"))?;
            let order = if item.get("order").and_then(Json::as_str) == Some("DESC") { SortOrder::Desc } else { SortOrder::Asc };
            Ok(SortNode { field: field.to_string(), order })
        })
        .collect()
}

fn whole(args: &ObjectAccessor<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    match arg_json(args, name)? {
        None => Ok(None),
        Some(Json::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(ApiError::from(DomainError::InvalidQuery(format!("'{name}' must be a whole number of at least 0, got {other}")))),
    }
}

/// `limit` (or `first`) and `offset` (or the row after the `after` cursor).
pub fn paging_of(args: &ObjectAccessor<'_>) -> Result<(Option<u64>, u64), ApiError> {
    let limit = match whole(args, "limit")? {
        Some(limit) => Some(limit),
        None => whole(args, "first")?,
    };
    let offset = match arg_json(args, "after")? {
        Some(Json::String(cursor)) => parse_cursor(&cursor)? + 1,
        Some(other) => return Err(ApiError::new(ErrorCode::InvalidQuery, format!("'after' must be a cursor, got {other}"))),
        None => whole(args, "offset")?.unwrap_or(0),
    };
    Ok((limit, offset))
}

/// A log position argument (`after`, `expectedVersion`).
pub fn position_of(args: &ObjectAccessor<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    whole(args, name)
}

pub fn string_of(args: &ObjectAccessor<'_>, name: &str) -> Result<Option<String>, ApiError> {
    match arg_json(args, name)? {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::new(ErrorCode::ValidationError, format!("'{name}' must be a string, got {other}"))),
    }
}
