//! Analytics (IAnalyticsService): `POST /api/v1/analytics/query`,
//! `GET /api/v1/analytics/meta[/{cube}]`, `POST /api/v1/analytics/sql` (the
//! SQL the query is on PostgreSQL) and `POST /api/v1/analytics/explain`,
//! answered from the columnar analytics read model.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::ErrorCode;
use projections::analytics::{parse_query, sql, AnalyticsQuery, Cube};
use serde_json::{json, Value as Json};

use super::support::{barrier_on, ok};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::Caller;

fn cube_of(system: &System, name: &str) -> Result<Cube, ApiError> {
    let model = system.analytics_model.read().expect("analytics model lock");
    let cubes = model.cubes(&system.cubes);
    let known: Vec<String> = cubes.iter().map(|c| c.name.clone()).collect();
    cubes
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ApiError::new(ErrorCode::ObjectNotFound, format!("no cube '{name}' (known: {})", known.join(", "))))
}

/// Analytics reads whole columns: the caller must read the cube's object,
/// every row of it (row rules are not compiled into cubes yet), and every
/// field the query names as a measure, dimension or filter.
fn allowed(system: &System, caller: &Caller, cube: &Cube, query: &AnalyticsQuery) -> Result<(), ApiError> {
    let catalog = system.reader.catalog();
    let Some(definition) = catalog.get(&cube.object) else { return Ok(()) };
    let grant = caller.access().grant(&catalog, definition);
    if !grant.permission.can_read() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", cube.object)));
    }
    if grant.read_rows.is_some() {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("analytics over {} needs access to all of its records (view all records)", cube.object),
        ));
    }
    let members = query
        .measures
        .iter()
        .chain(query.dimensions.iter())
        .chain(query.filters.iter().map(|f| &f.member))
        .chain(query.time_dimensions.iter().map(|t| &t.dimension))
        .chain(query.order.iter().map(|(m, _)| m));
    for member in members {
        let name = member.rsplit('.').next().unwrap_or(member);
        // A generated member is the field itself or `<field>_<measure>`.
        if let Some(hidden) = grant.hidden.iter().find(|h| name == h.as_str() || name.strip_prefix(h.as_str()).is_some_and(|rest| rest.starts_with('_'))) {
            return Err(ApiError::new(ErrorCode::FieldNotAccessible, format!("field '{hidden}' of {} is not accessible", cube.object)));
        }
    }
    Ok(())
}

async fn prepare(system: &System, caller: &Caller, headers: &HeaderMap, body: &Json) -> Result<(Cube, AnalyticsQuery), ApiError> {
    barrier_on(system, &system.analytics, headers, None).await?;
    let query = parse_query(body)?;
    let cube = cube_of(system, &query.cube)?;
    allowed(system, caller, &cube, &query)?;
    Ok((cube, query))
}

fn csv_cell(value: &Json) -> String {
    let text = match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `POST /api/v1/analytics/query` with `{cube, query, format?: json|csv}` or a bare query.
pub(crate) async fn query(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let (cube, query) = prepare(&system, &caller, &headers, &body).await?;
    let now = commands::clock::now();
    let result = system.analytics_model.read().expect("analytics model lock").run(&cube, &query, now)?;
    match body.get("format").and_then(Json::as_str).unwrap_or("json") {
        "json" => {
            let (sql, _) = sql::generate(&cube, &query, now)?;
            let mut payload = result.to_json();
            payload["sql"] = json!(sql);
            Ok(JsonResponse(ok(payload)).into_response())
        }
        "csv" => {
            let mut out = result.fields.iter().map(|(n, _)| csv_cell(&json!(n))).collect::<Vec<_>>().join(",");
            out.push('\n');
            for row in &result.rows {
                let cells: Vec<String> = result.fields.iter().map(|(n, _)| csv_cell(row.get(n).unwrap_or(&Json::Null))).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        other => Err(ApiError::new(ErrorCode::ValidationError, format!("format '{other}' is not offered: use json or csv"))),
    }
}

/// `GET /api/v1/analytics/meta` -> `{cubes: [...]}`.
pub(crate) async fn meta(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap) -> Result<JsonResponse<Json>, ApiError> {
    barrier_on(&system, &system.analytics, &headers, None).await?;
    let catalog = system.reader.catalog();
    let readable = |object: &str| catalog.get(object).is_some_and(|d| caller.access().grant(&catalog, d).permission.can_read());
    let model = system.analytics_model.read().expect("analytics model lock");
    let cubes: Vec<Json> = model.cubes(&system.cubes).iter().filter(|c| readable(&c.object)).map(Cube::meta).collect();
    Ok(JsonResponse(ok(json!({"cubes": cubes}))))
}

/// `GET /api/v1/analytics/meta/{cube}`.
pub(crate) async fn meta_of(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<JsonResponse<Json>, ApiError> {
    barrier_on(&system, &system.analytics, &headers, None).await?;
    let cube = cube_of(&system, &name)?;
    let catalog = system.reader.catalog();
    if !catalog.get(&cube.object).is_some_and(|d| caller.access().grant(&catalog, d).permission.can_read()) {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", cube.object)));
    }
    Ok(JsonResponse(ok(cube.meta())))
}

/// `POST /api/v1/analytics/sql` -> `{sql, params}` (a dry run).
pub(crate) async fn sql(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    let (cube, query) = prepare(&system, &caller, &headers, &body).await?;
    let (sql, params) = sql::generate(&cube, &query, commands::clock::now())?;
    Ok(JsonResponse(ok(json!({"sql": sql, "params": params}))))
}

/// `POST /api/v1/analytics/explain` -> how the query is answered.
pub(crate) async fn explain(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    let (cube, query) = prepare(&system, &caller, &headers, &body).await?;
    let (sql, params) = sql::generate(&cube, &query, commands::clock::now())?;
    let rows = system.analytics_model.read().expect("analytics model lock").row_counts().into_iter().find(|(o, _)| *o == cube.object).map_or(0, |(_, n)| n);
    let plan = vec![
        format!("cube '{}' reads object '{}' from the columnar analytics model ({rows} live rows)", cube.name, cube.object),
        format!(
            "one pass: {} filter(s), {} time dimension(s), grouping by {} dimension(s)",
            query.filters.len(),
            query.time_dimensions.len(),
            query.dimensions.len()
        ),
        format!("measures accumulated per group: {}", query.measures.join(", ")),
        "then ordered, offset and limited".to_string(),
    ];
    Ok(JsonResponse(ok(json!({"cube": cube.name, "object": cube.object, "rows": rows, "plan": plan, "sql": sql, "params": params}))))
}
