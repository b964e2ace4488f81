//! Projection status and live rebuilds: `GET /api/v1/projections[/{name}]`,
//! `POST /api/v1/projections/{name}/rebuild` (answers 202 and rebuilds in the
//! background), the dead letters (`POST
//! /api/v1/projections/{name}/dead-letters/{position}/retry`, and `/skip`
//! with `{"reason": ...}`), and Prometheus metrics at `/metrics`; answered by
//! [`crate::service::projection_admin`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::{projection_admin, Caller};
use crate::wire::ok;

/// Prometheus text.
pub(crate) async fn metrics(State(system): State<Arc<System>>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], projection_admin::metrics(&system, &caller)?))
}

pub(crate) async fn list(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"projections": projection_admin::all(&system, &caller)?, "processes": projection_admin::processes(&system, &caller)?}))))
}

pub(crate) async fn one(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(projection_admin::status(&system, &caller, &name)?)))
}

pub(crate) async fn start_rebuild(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<Response, ApiError> {
    let status = projection_admin::start_rebuild(&system, &caller, &name)?;
    Ok((StatusCode::ACCEPTED, JsonResponse(ok(status))).into_response())
}

pub(crate) async fn retry(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((name, position)): Path<(String, u64)>,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(projection_admin::retry(&system, &caller, &name, position).await?)))
}

pub(crate) async fn skip(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((name, position)): Path<(String, u64)>,
    JsonBody(body): JsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    let reason = match body.get("reason") {
        Some(Json::String(reason)) if !reason.trim().is_empty() => reason.clone(),
        _ => return Err(ApiError::new(domain::ErrorCode::ValidationError, "say why the event is skipped: {\"reason\": \"...\"}")),
    };
    Ok(JsonResponse(ok(projection_admin::skip(&system, &caller, &name, position, reason).await?)))
}
