//! The client's workflow namespace: `GET /api/v1/workflow/{object}/config`,
//! `GET /api/v1/workflow/{object}/{id}/state?field=`, `GET .../history?field=`,
//! `POST /api/v1/workflow/{object}/{id}/transition {targetState, field?}`,
//! and approvals: `POST .../submit {process?}`, `.../approve {comment?}`,
//! `.../reject {comment?}`, `.../recall`; answered by
//! [`crate::service::workflow_state`] and [`crate::service::approvals`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde_json::Value as Json;

use crate::app::System;
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, QueryPairs};
use crate::service::{approvals, workflow_state, Caller};
use crate::wire::ok;

pub(crate) async fn config(State(system): State<Arc<System>>, caller: Caller, Path(object): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(workflow_state::config(&system, &caller, &object).await?)))
}

pub(crate) async fn state(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    mut query: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(workflow_state::state(&system, &caller, &object, &id, query.take("field").as_deref()).await?)))
}

pub(crate) async fn history(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    mut query: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(workflow_state::history(&system, &caller, &object, &id, query.take("field").as_deref()).await?)))
}

pub(crate) async fn transition(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Some(target) = body.get("targetState").or_else(|| body.get("state")).and_then(Json::as_str) else {
        return Err(ApiError::new(domain::ErrorCode::ValidationError, "send {\"targetState\": \"<state>\"}"));
    };
    let field = body.get("field").and_then(Json::as_str);
    let key = super::data::idempotency_key(&headers)?;
    let (position, result) = workflow_state::transition(&system, &caller, &object, &id, target, field, key).await?;
    Ok((crate::wire::position_headers(position), JsonResponse(ok(result))).into_response())
}

fn text(body: &Option<Json>, key: &str) -> Option<String> {
    body.as_ref().and_then(|b| b.get(key)).and_then(Json::as_str).map(str::to_string)
}

pub(crate) async fn submit(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(approvals::submit(&system, &caller, &object, &id, text(&body, "process").as_deref()).await?)))
}

pub(crate) async fn approve(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    answer(&system, &caller, &object, &id, true, body).await
}

pub(crate) async fn reject(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    answer(&system, &caller, &object, &id, false, body).await
}

/// An approver's answer, with its optional `comment`.
async fn answer(system: &System, caller: &Caller, object: &str, id: &str, approved: bool, body: Option<Json>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(approvals::decide(system, caller, object, id, approved, text(&body, "comment")).await?)))
}

pub(crate) async fn recall(
    State(system): State<Arc<System>>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(approvals::recall(&system, &caller, &object, &id).await?)))
}
