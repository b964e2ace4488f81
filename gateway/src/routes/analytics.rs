//! Analytics routes: `POST /api/v1/analytics/query`,
//! `GET /api/v1/analytics/meta[/{cube}]`, `POST /api/v1/analytics/sql` and
//! `POST /api/v1/analytics/explain`, answered by [`crate::service::analytics`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::{analytics, Caller};
use crate::wire::ok;

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
pub(crate) async fn query(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let format = body.get("format").and_then(Json::as_str).unwrap_or("json").to_string();
    if format != "json" && format != "csv" {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("format '{format}' is not offered: use json or csv")));
    }
    let (result, sql) = analytics::run(&system, &caller, &body).await?;
    if format == "json" {
        let mut payload = result.to_json();
        payload["sql"] = json!(sql);
        return Ok(JsonResponse(ok(payload)).into_response());
    }
    let mut out = result.fields.iter().map(|(n, _)| csv_cell(&json!(n))).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in &result.rows {
        let cells: Vec<String> = result.fields.iter().map(|(n, _)| csv_cell(row.get(n).unwrap_or(&Json::Null))).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
}

/// `GET /api/v1/analytics/meta` -> `{cubes: [...]}`.
pub(crate) async fn meta(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(analytics::cubes(&system, &caller).await?)))
}

/// `GET /api/v1/analytics/meta/{cube}`.
pub(crate) async fn meta_of(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(analytics::cube(&system, &caller, &name).await?)))
}

/// `POST /api/v1/analytics/sql` -> `{sql, params}` (a dry run).
pub(crate) async fn sql(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(analytics::to_sql(&system, &caller, &body).await?)))
}

/// `POST /api/v1/analytics/explain` -> how the query is answered.
pub(crate) async fn explain(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(analytics::explain(&system, &caller, &body).await?)))
}
