//! Data routes: list, query, get, create, update, delete. Parse, call
//! [`crate::service::data`] / [`crate::service::writes`], render.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::query::{parse_query, parse_url_params, Query};
use domain::value::record_to_json;
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use crate::app::System;
use crate::error::{json_kind, ApiError};
use crate::extract::{JsonBody, QueryPairs};
use crate::service::data::{self, QueryOutput};
use crate::service::writes::{self, Command, Outcome};
use crate::service::Caller;
use crate::wire::{expected_version, min_position, ok, position_headers};

/// The list payload (`FindDataResponse`), serialized straight from the records.
#[derive(serde::Serialize)]
struct ListPayload<'a> {
    object: &'a str,
    records: &'a [std::sync::Arc<domain::value::Record>],
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(rename = "hasMore")]
    has_more: bool,
}

#[derive(serde::Serialize)]
struct Envelope<T> {
    success: bool,
    data: T,
}

/// Headers of a read: the position the read model had reached, and the as-of position.
fn reading(position: u64, as_of: Option<u64>) -> HeaderMap {
    let mut headers = position_headers(position);
    if let Some(as_of) = as_of {
        headers.insert("x-as-of-position", HeaderValue::from(as_of));
    }
    headers
}

fn list_response(object: &str, read: &data::Read) -> Response {
    let output: &QueryOutput = &read.output;
    let payload = ListPayload { object, records: &output.records, total: output.total, has_more: output.has_more };
    (reading(read.position, read.as_of), JsonResponse(Envelope { success: true, data: payload })).into_response()
}

async fn answer_list(
    system: &System,
    caller: &Caller,
    headers: &HeaderMap,
    min: Option<String>,
    object: &str,
    query: Query,
    as_of: Option<String>,
) -> Result<Response, ApiError> {
    let read = data::query(system, caller, min_position(headers, min)?, query, as_of.as_deref()).await?;
    Ok(list_response(object, &read))
}

pub(crate) async fn list(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    let min = params.take("minPosition");
    let as_of = params.take("asOf");
    let explain = params.take("explain");
    let query = parse_url_params(&*data::object(&system, &object)?, &params.0)?;
    match explain.as_deref() {
        None | Some("false") => answer_list(&system, &caller, &headers, min, &object, query, as_of).await,
        Some("true") if as_of.is_none() => {
            let explained = data::explain(&system, &caller, min_position(&headers, min)?, query).await?;
            Ok(axum::Json(ok(json!({"object": object, "explain": explained}))).into_response())
        }
        Some("true") => Err(ApiError::new(ErrorCode::InvalidQuery, "explain covers reads of now, not asOf")),
        Some(other) => Err(ApiError::new(ErrorCode::InvalidQuery, format!("explain must be true or false, got '{other}'"))),
    }
}

pub(crate) async fn query(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let min = params.take("minPosition");
    let as_of = params.take("asOf");
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unsupported query parameter '{key}' on a query (the query goes in the body)")));
    }
    let query = parse_query(&object, &body)?;
    answer_list(&system, &caller, &headers, min, &object, query, as_of).await
}

pub(crate) async fn get_one(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    let min = min_position(&headers, params.take("minPosition"))?;
    let as_of = params.take("asOf");
    let mut body = Map::new();
    for (key, value) in params.0 {
        match key.as_str() {
            "select" | "fields" | "$select" | "expand" | "populate" | "$expand" => {
                body.insert(key, Json::String(value));
            }
            other => return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unsupported query parameter '{other}' on a record (use select or expand)"))),
        }
    }
    let shape = parse_query(&object, &Json::Object(body))?;
    let one = data::get(&system, &caller, min, &object, &id, shape, as_of.as_deref()).await?;
    let mut response_headers = reading(one.position, one.as_of);
    if let Some(version) = one.version {
        response_headers.insert(axum::http::header::ETAG, HeaderValue::from_str(&format!("\"{version}\"")).expect("digits"));
    }
    Ok((response_headers, JsonResponse(ok(json!({"object": object, "id": id, "record": record_to_json(&one.record)})))).into_response())
}

fn object_body(body: Json) -> Result<Map<String, Json>, ApiError> {
    match body {
        Json::Object(map) => Ok(map),
        other => Err(ApiError::new(ErrorCode::ValidationError, format!("the body must be a JSON object of fields, got {}", json_kind(&other)))),
    }
}

/// The idempotency key a request carries.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(key) = headers.get("idempotency-key") else { return Ok(None) };
    let key = key.to_str().map_err(|_| ApiError::new(ErrorCode::InvalidField, "Idempotency-Key must be text"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::new(ErrorCode::InvalidField, "Idempotency-Key must have 1 to 255 characters"));
    }
    Ok(Some(key.to_string()))
}

/// The record a write left, as JSON for the caller.
pub(crate) fn written_json(system: &System, caller: &Caller, outcome: &Outcome) -> Json {
    writes::written_record(system, caller, outcome).map(|r| record_to_json(&r)).unwrap_or(Json::Null)
}

/// A write's answer: its position and version in headers; the warnings of
/// rules of severity warning, and of workflow rules that could not set their
/// fields, beside the record (the write itself succeeded).
fn write_response(status: StatusCode, outcome: &Outcome, mut payload: Json) -> Response {
    if !outcome.warnings.is_empty() {
        payload["warnings"] = crate::error::field_errors_json(&outcome.warnings);
    }
    let mut headers = position_headers(outcome.position);
    headers.insert(axum::http::header::ETAG, HeaderValue::from_str(&format!("\"{}\"", outcome.version)).expect("digits"));
    (status, headers, JsonResponse(ok(payload))).into_response()
}

pub(crate) async fn create(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut data = object_body(body)?;
    let id = writes::take_id(&mut data)?;
    let outcome = writes::execute(&system, &caller, idempotency_key(&headers)?, Command::Create { object: object.clone(), id, data }).await?;
    let record = written_json(&system, &caller, &outcome);
    Ok(write_response(StatusCode::CREATED, &outcome, json!({"object": outcome.object, "id": outcome.id, "record": record})))
}

pub(crate) async fn update(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut patch = object_body(body)?;
    // The expected version, from the body, `?expectedVersion=` or `If-Match` (in that order).
    let in_query = params.take("expectedVersion").map(Json::String);
    let explicit = patch.remove("expectedVersion").or(in_query);
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unsupported query parameter '{key}' on update")));
    }
    let expected_version = expected_version(&headers, explicit.as_ref())?;
    let outcome = writes::execute(&system, &caller, idempotency_key(&headers)?, Command::Update { object, id, patch, expected_version }).await?;
    let record = written_json(&system, &caller, &outcome);
    Ok(write_response(StatusCode::OK, &outcome, json!({"object": outcome.object, "id": outcome.id, "record": record})))
}

pub(crate) async fn delete(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    let explicit = params.take("expectedVersion").map(Json::String);
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unsupported query parameter '{key}' on delete")));
    }
    let expected_version = expected_version(&headers, explicit.as_ref())?;
    let outcome = writes::execute(&system, &caller, idempotency_key(&headers)?, Command::Delete { object, id, expected_version }).await?;
    Ok(write_response(StatusCode::OK, &outcome, json!({"object": outcome.object, "id": outcome.id, "success": true, "deleted": true})))
}
