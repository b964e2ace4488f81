//! Batch routes: `/batch` (create, update, upsert, delete), `/createMany`,
//! `/updateMany`, `/deleteMany`. Parse the body, call [`crate::service::batch`], render.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use super::data::idempotency_key;
use crate::app::System;
use crate::error::json_kind as kind;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::batch::{options, run, Operation};
use crate::service::Caller;
use crate::wire::{ok, position_headers};

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationError, message)
}

fn respond(status: StatusCode, position: u64, payload: Json) -> Response {
    (status, position_headers(position), JsonResponse(ok(payload))).into_response()
}

pub(crate) async fn batch(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body.as_object().ok_or_else(|| bad(format!("a batch request is an object, got {}", kind(&body))))?;
    if let Some(unknown) = map.keys().find(|k| !["operation", "records", "options"].contains(&k.as_str())) {
        return Err(bad(format!("unknown batch key '{unknown}'")));
    }
    let operation = match map.get("operation").and_then(Json::as_str) {
        Some("create") => Operation::Create,
        Some("update") => Operation::Update,
        Some("upsert") => Operation::Upsert,
        Some("delete") => Operation::Delete,
        other => return Err(bad(format!("operation must be create, update, upsert or delete, got {}", other.unwrap_or("nothing")))),
    };
    let records = map.get("records").and_then(Json::as_array).cloned().ok_or_else(|| bad("records must be a list"))?;
    let (position, payload) = run(&system, &caller, object, idempotency_key(&headers)?, operation, records, options(map.get("options"), false)?).await?;
    Ok(respond(StatusCode::OK, position, payload))
}

pub(crate) async fn create_many(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let records = match body {
        Json::Array(items) => items,
        Json::Object(mut map) => match map.remove("records") {
            Some(Json::Array(items)) => items,
            _ => return Err(bad("createMany takes a list of records (or {records: [...]})")),
        },
        other => return Err(bad(format!("createMany takes a list of records, got {}", kind(&other)))),
    };
    let items: Vec<Json> = records.into_iter().map(|data| json!({"data": data})).collect();
    let (position, payload) = run(&system, &caller, object.clone(), idempotency_key(&headers)?, Operation::Create, items, options(None, true)?).await?;
    if payload["success"] != json!(true) {
        let first = payload["results"].as_array().and_then(|r| r.iter().find(|e| e["success"] == json!(false))).cloned().unwrap_or(Json::Null);
        let mut error = ApiError::new(ErrorCode::ValidationError, format!("createMany failed: {}", first["error"].as_str().unwrap_or("a record was refused")));
        error.details = Some(Box::new(first));
        return Err(error);
    }
    let records: Vec<Json> = payload["results"].as_array().into_iter().flatten().map(|r| r["record"].clone()).collect();
    let count = records.len();
    Ok(respond(StatusCode::CREATED, position, json!({"object": object, "records": records, "count": count})))
}

pub(crate) async fn update_many(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let records = body.get("records").and_then(Json::as_array).cloned().ok_or_else(|| bad("updateMany takes {records: [{id, data}], options?}"))?;
    let (position, payload) =
        run(&system, &caller, object, idempotency_key(&headers)?, Operation::Update, records, options(body.get("options"), false)?).await?;
    Ok(respond(StatusCode::OK, position, payload))
}

pub(crate) async fn delete_many(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let ids = body.get("ids").and_then(Json::as_array).cloned().ok_or_else(|| bad("deleteMany takes {ids: [...], options?}"))?;
    let items: Vec<Json> = ids.into_iter().map(|id| json!({"id": id})).collect();
    let (position, payload) = run(&system, &caller, object, idempotency_key(&headers)?, Operation::Delete, items, options(body.get("options"), false)?).await?;
    Ok(respond(StatusCode::OK, position, payload))
}
