//! The SQL an analytics query is on the PostgreSQL read model
//! (`obj_{object}` tables of `id` and `data jsonb`): a dry run for
//! `POST /analytics/sql` and `/explain`.

use domain::{DomainError, Timestamp};
use serde_json::Value as Json;

use domain::query::AggFunction;

use super::cube::{Cube, DimensionType};
use super::query::{AnalyticsQuery, FilterOp};
use super::time::date_range;

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn expression(field: &str, kind: DimensionType) -> String {
    let raw = format!("data->>{}", quote_literal(field));
    match kind {
        DimensionType::String => raw,
        DimensionType::Number => format!("({raw})::numeric"),
        DimensionType::Boolean => format!("({raw})::boolean"),
        DimensionType::Time => format!("({raw})::timestamptz"),
    }
}

/// `(sql, params)` for a query on a cube.
pub fn generate(cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<(String, Vec<Json>), DomainError> {
    let invalid = |m: String| DomainError::InvalidQuery(m);
    let mut select = Vec::new();
    let mut group = Vec::new();
    for member in &query.dimensions {
        let d = cube.dimension(member).ok_or_else(|| invalid(format!("cube '{}' has no dimension '{member}'", cube.name)))?;
        select.push(format!("{} AS {}", expression(&d.field, d.kind), quote_ident(member)));
        group.push(select.len());
    }
    let mut params: Vec<Json> = Vec::new();
    let param = |value: Json, params: &mut Vec<Json>| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut conditions = Vec::new();
    for td in &query.time_dimensions {
        let d = cube.dimension(&td.dimension).ok_or_else(|| invalid(format!("cube '{}' has no dimension '{}'", cube.name, td.dimension)))?;
        let expr = expression(&d.field, DimensionType::Time);
        if let Some(g) = td.granularity {
            select.push(format!("date_trunc('{}', {expr} AT TIME ZONE 'UTC') AS {}", g.sql_unit(), quote_ident(&format!("{}.{}", td.dimension, g.name()))));
            group.push(select.len());
        }
        if let Some(range) = &td.date_range {
            let (from, to) = date_range(range, now).map_err(invalid)?;
            let from = param(Json::String(Timestamp::from_micros(from).to_rfc3339()), &mut params);
            let to = param(Json::String(Timestamp::from_micros(to).to_rfc3339()), &mut params);
            conditions.push(format!("{expr} >= {from}::timestamptz AND {expr} < {to}::timestamptz"));
        }
    }
    for filter in &query.filters {
        let d = cube.dimension(&filter.member).ok_or_else(|| invalid(format!("cube '{}' has no dimension '{}'", cube.name, filter.member)))?;
        let expr = expression(&d.field, d.kind);
        let values: Vec<Json> = filter.values.clone();
        let first = || values.first().cloned().unwrap_or(Json::Null);
        let condition = match filter.op {
            FilterOp::Set => format!("{expr} IS NOT NULL"),
            FilterOp::NotSet => format!("{expr} IS NULL"),
            FilterOp::Equals => format!("{expr} = ANY({})", param(Json::Array(values.clone()), &mut params)),
            FilterOp::NotEquals => format!("({expr} IS NULL OR NOT {expr} = ANY({}))", param(Json::Array(values.clone()), &mut params)),
            FilterOp::Contains => format!("{expr} ILIKE '%' || {} || '%'", param(first(), &mut params)),
            FilterOp::NotContains => format!("({expr} IS NULL OR {expr} NOT ILIKE '%' || {} || '%')", param(first(), &mut params)),
            FilterOp::StartsWith => format!("{expr} ILIKE {} || '%'", param(first(), &mut params)),
            FilterOp::EndsWith => format!("{expr} ILIKE '%' || {}", param(first(), &mut params)),
            FilterOp::Gt | FilterOp::AfterDate => format!("{expr} > {}", param(first(), &mut params)),
            FilterOp::Gte => format!("{expr} >= {}", param(first(), &mut params)),
            FilterOp::Lt | FilterOp::BeforeDate => format!("{expr} < {}", param(first(), &mut params)),
            FilterOp::Lte => format!("{expr} <= {}", param(first(), &mut params)),
            FilterOp::InDateRange | FilterOp::NotInDateRange => {
                let range = if values.len() == 1 { values[0].clone() } else { Json::Array(values.clone()) };
                let (from, to) = date_range(&range, now).map_err(invalid)?;
                let from = param(Json::String(Timestamp::from_micros(from).to_rfc3339()), &mut params);
                let to = param(Json::String(Timestamp::from_micros(to).to_rfc3339()), &mut params);
                let inside = format!("{expr} >= {from}::timestamptz AND {expr} < {to}::timestamptz");
                if filter.op == FilterOp::InDateRange {
                    inside
                } else {
                    format!("NOT ({inside})")
                }
            }
        };
        conditions.push(condition);
    }
    for member in &query.measures {
        let m = cube.measure(member).ok_or_else(|| invalid(format!("cube '{}' has no measure '{member}'", cube.name)))?;
        let field = m.field.as_deref().map(|f| expression(f, DimensionType::Number));
        let aggregate = match (m.agg, field) {
            (AggFunction::Count, None) => "count(*)".to_string(),
            (AggFunction::Count, Some(_)) => format!("count(data->>{})", quote_literal(m.field.as_deref().unwrap_or_default())),
            (AggFunction::CountDistinct, _) => format!("count(DISTINCT data->>{})", quote_literal(m.field.as_deref().unwrap_or_default())),
            (agg, Some(expr)) => format!("{}({expr})", agg.name()),
            (agg, None) => format!("{}(NULL)", agg.name()),
        };
        select.push(format!("{aggregate} AS {}", quote_ident(member)));
    }
    let mut sql = format!("SELECT {} FROM {}", select.join(", "), quote_ident(&crate::pg_model::table(&cube.object)));
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if !group.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", group.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ")));
    }
    if !query.order.is_empty() {
        let order: Vec<String> = query.order.iter().map(|(m, desc)| format!("{} {}", quote_ident(m), if *desc { "DESC" } else { "ASC" })).collect();
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    sql.push_str(&format!(" LIMIT {}", query.limit.unwrap_or(10_000)));
    if query.offset > 0 {
        sql.push_str(&format!(" OFFSET {}", query.offset));
    }
    Ok((sql, params))
}
