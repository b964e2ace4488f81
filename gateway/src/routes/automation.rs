//! Automation routes: `GET /api/v1/automation` (rules and processes),
//! `GET /api/v1/jobs`, `GET /api/v1/jobs/{name}/executions?limit=`,
//! `POST /api/v1/jobs/{name}/trigger` (202 with the run's id),
//! `GET /api/v1/webhooks`, `GET /api/v1/webhooks/{name}/deliveries?limit=`,
//! `POST /api/v1/automation/trigger/{name}` (a flow, the body its inputs);
//! answered by [`crate::service::automation`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::error::ApiError;
use crate::extract::{OptionalJsonBody, QueryPairs};
use crate::service::{automation, Caller};
use crate::wire::ok;

fn limit(mut query: QueryPairs) -> Result<Option<usize>, ApiError> {
    match query.take("limit") {
        None => Ok(None),
        Some(text) => {
            text.parse().map(Some).map_err(|_| ApiError::new(domain::ErrorCode::ValidationError, format!("limit must be a whole number, not '{text}'")))
        }
    }
}

pub(crate) async fn overview(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(automation::overview(&system, &caller)?)))
}

pub(crate) async fn jobs(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"jobs": automation::jobs(&system, &caller)?}))))
}

pub(crate) async fn executions(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path(name): Path<String>,
    query: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"executions": automation::executions(&system, &caller, &name, limit(query)?)?}))))
}

pub(crate) async fn trigger(State(system): State<Arc<System>>, caller: Caller, Path(name): Path<String>) -> Result<Response, ApiError> {
    let run = automation::trigger(&system, &caller, &name).await?;
    Ok((StatusCode::ACCEPTED, JsonResponse(json!({"success": true, "jobId": name, "runId": run, "data": {"jobId": name, "runId": run}}))).into_response())
}

pub(crate) async fn webhooks(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"webhooks": automation::webhooks(&system, &caller)?}))))
}

pub(crate) async fn deliveries(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path(name): Path<String>,
    query: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(json!({"deliveries": automation::deliveries(&system, &caller, &name, limit(query)?)?}))))
}

pub(crate) async fn trigger_flow(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    let input = match body.unwrap_or(Json::Null) {
        Json::Object(map) => map,
        Json::Null => Default::default(),
        _ => return Err(ApiError::new(domain::ErrorCode::ValidationError, "the body is the flow's inputs: a JSON object")),
    };
    let key = super::data::idempotency_key(&headers)?;
    let (run, output) = automation::trigger_flow(&system, &caller, &name, input, key).await?;
    Ok(JsonResponse(json!({"success": true, "jobId": run, "result": output, "data": {"runId": run, "result": output}})))
}
