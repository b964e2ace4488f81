//! Projection status and live rebuilds: `GET /api/v1/projections[/{name}]`,
//! `POST /api/v1/projections/{name}/rebuild` (answers 202 and rebuilds in the
//! background), and Prometheus metrics at `/metrics`; answered by
//! [`crate::service::projections`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::error::ApiError;
use crate::service::{projection_admin, Caller};
use crate::wire::ok;

/// Prometheus text.
pub(crate) async fn metrics(State(system): State<Arc<System>>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], projection_admin::metrics(&system, &caller)?))
}

pub(crate) async fn list(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"projections": projection_admin::all(&system, &caller)?}))))
}

pub(crate) async fn one(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(projection_admin::status(&system, &caller, &name)?)))
}

pub(crate) async fn start_rebuild(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<Response, ApiError> {
    let status = projection_admin::start_rebuild(&system, &caller, &name)?;
    Ok((StatusCode::ACCEPTED, JsonResponse(ok(status))).into_response())
}
