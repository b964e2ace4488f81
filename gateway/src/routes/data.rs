//! Data routes: list, query, get, create, update, delete.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use commands::service::{Command, Outcome};
use domain::query::{parse_query, parse_url_params, Condition, Filter, Op, Operand, Query};
use domain::value::{record_to_json, Value};
use domain::ErrorCode;
use projections::as_of::{query_model_as_of, record_as_of, AsOf};
use projections::QueryOutput;
use serde_json::{json, Map, Value as Json};

use super::support::{expected_version, ok, position_headers, read_barrier};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryPairs};
use crate::service::{writes, Caller};

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

fn list_response(system: &System, object: &str, output: &QueryOutput) -> Response {
    let payload = ListPayload { object, records: &output.records, total: output.total, has_more: output.has_more };
    (reading(system), JsonResponse(Envelope { success: true, data: payload })).into_response()
}

/// Headers of a read: the position the read model had reached.
fn reading(system: &System) -> HeaderMap {
    position_headers(system.query.checkpoint())
}

/// `asOf=` as sent: a log position or an ISO-8601 time.
fn parse_as_of(text: &str) -> Result<AsOf, ApiError> {
    AsOf::parse(text).ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, format!("asOf must be a log position or an ISO-8601 time, got '{text}'")))
}

/// Runs a query on the read model, or, with `asOf`, on the model folded from the log up to then.
async fn run_query(system: &System, caller: &Caller, query: Query, as_of: Option<&str>) -> Result<(QueryOutput, Option<u64>), ApiError> {
    match as_of {
        None => Ok((super::search::query_with_search(system, caller, query).await?, None)),
        Some(text) => {
            let (model, position) = query_model_as_of(system.commands.store(), parse_as_of(text)?).await?;
            Ok((model.execute(&caller.viewer, query)?, Some(position)))
        }
    }
}

fn as_of_header(response: &mut Response, position: Option<u64>) {
    if let Some(position) = position {
        response.headers_mut().insert("x-as-of-position", HeaderValue::from(position));
    }
}

/// The common end of `GET /data/{o}` and `POST /data/{o}/query`.
async fn answer_list(system: &System, caller: &Caller, object: &str, query: Query, as_of: Option<String>) -> Result<Response, ApiError> {
    let (output, position) = run_query(system, caller, query, as_of.as_deref()).await?;
    let mut response = list_response(system, object, &output);
    as_of_header(&mut response, position);
    Ok(response)
}

pub(crate) async fn list(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    read_barrier(&system, &headers, params.take("minPosition")).await?;
    let as_of = params.take("asOf");
    let query = parse_url_params(system.reader.catalog().require(&object)?, &params.0)?;
    answer_list(&system, &caller, &object, query, as_of).await
}

pub(crate) async fn query(
    State(system): State<Arc<System>>,
    Path(object): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    read_barrier(&system, &headers, params.take("minPosition")).await?;
    let as_of = params.take("asOf");
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unsupported query parameter '{key}' on a query (the query goes in the body)")));
    }
    let query = parse_query(&object, &body)?;
    answer_list(&system, &caller, &object, query, as_of).await
}

pub(crate) async fn get_one(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    read_barrier(&system, &headers, params.take("minPosition")).await?;
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
    let catalog = system.reader.catalog();
    let definition = catalog.require(&object)?.clone();
    let grant = caller.access().grant(&catalog, &definition);
    if let (Some(text), true, true) = (as_of.as_deref(), body.is_empty(), grant.read_rows.is_none()) {
        // A record as of a moment needs only its own stream (when no row rule needs the rest of the model).
        if !grant.permission.can_read() {
            return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", definition.name)));
        }
        let moment = AsOf::parse(text)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, format!("asOf must be a log position or an ISO-8601 time, got '{text}'")))?;
        let Some(mut record) = record_as_of(system.commands.store(), &system.snapshots, &definition, &id, moment).await? else {
            return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object} as of {text}")));
        };
        for hidden in &grant.hidden {
            record.remove(hidden);
        }
        return Ok((reading(&system), JsonResponse(ok(json!({"object": object, "id": id, "record": record_to_json(&record)})))).into_response());
    }
    let mut query = parse_query(&object, &Json::Object(body))?;
    query.filter = Some(Filter::Cond(Condition { field: "id".into(), op: Op::Eq, value: Operand::Value(Value::Text(id.clone())) }));
    query.limit = Some(1);
    let (output, position) = run_query(&system, &caller, query, as_of.as_deref()).await?;
    let Some(record) = output.records.first() else {
        return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object}")));
    };
    let version = system.commands.version_of(&object, &id);
    let mut response_headers = reading(&system);
    if position.is_none() {
        response_headers.insert(axum::http::header::ETAG, HeaderValue::from_str(&format!("\"{version}\"")).expect("digits"));
    }
    let mut response = (response_headers, JsonResponse(ok(json!({"object": object, "id": id, "record": record_to_json(record)})))).into_response();
    as_of_header(&mut response, position);
    Ok(response)
}

fn object_body(body: Json) -> Result<Map<String, Json>, ApiError> {
    match body {
        Json::Object(map) => Ok(map),
        other => Err(ApiError::new(ErrorCode::ValidationError, format!("the body must be a JSON object of fields, got {}", kind(&other)))),
    }
}

pub(crate) fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Takes the record id out of a create body (`id`, or `_id` as an alias).
pub(crate) fn take_id(data: &mut Map<String, Json>) -> Result<Option<String>, ApiError> {
    let mut id = None;
    for key in ["id", "_id"] {
        match data.remove(key) {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) => id = Some(s),
            Some(other) => return Err(ApiError::new(ErrorCode::InvalidField, format!("{key} must be a string, got {}", kind(&other)))),
        }
    }
    Ok(id)
}

/// The record to return after a write: the command's result with its formula
/// fields computed (reads of this node will see the same, see `read_barrier`),
/// without the fields the caller may not read.
pub(crate) fn written_record(system: &System, caller: &Caller, outcome: &Outcome) -> Json {
    written_record_value(system, caller, outcome).map(|r| record_to_json(&r)).unwrap_or(Json::Null)
}

/// [`written_record`] as a record.
pub(crate) fn written_record_value(system: &System, caller: &Caller, outcome: &Outcome) -> Option<domain::value::Record> {
    let record = outcome.record.as_ref()?;
    let now = domain::Timestamp::from_micros(outcome.events.last().map(|e| e.occurred_at).unwrap_or_default());
    let object = system.commands.object(&outcome.object)?;
    let mut record = domain::formula::with_formula_fields(&object, record, now);
    let grant = caller.access().grant(&system.commands.catalog(), &object);
    for hidden in &grant.hidden {
        record.remove(hidden);
    }
    Some(record)
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

/// Runs one record command for a caller: its rights checked (under the write lock), its fields prepared.
pub(crate) async fn execute(system: &System, caller: &Caller, headers: &HeaderMap, command: Command) -> Result<Outcome, ApiError> {
    execute_with_key(system, caller, idempotency_key(headers)?, command).await
}

/// [`execute`] with the idempotency key given.
pub(crate) async fn execute_with_key(system: &System, caller: &Caller, key: Option<String>, mut command: Command) -> Result<Outcome, ApiError> {
    let object = match &command {
        Command::Create { object, .. } | Command::Update { object, .. } | Command::Delete { object, .. } => Some(object.clone()),
        Command::Metadata(_) => None,
    };
    let meta = writes::meta(system, caller, object.as_deref(), key)?;
    writes::prepare(system, caller, &meta, &mut command).await?;
    Ok(system.commands.execute(command, meta).await?)
}

fn write_response(status: StatusCode, outcome: &Outcome, payload: Json) -> Response {
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
    let id = take_id(&mut data)?;
    let outcome = execute(&system, &caller, &headers, Command::Create { object: object.clone(), id, data }).await?;
    let record = written_record(&system, &caller, &outcome);
    Ok(write_response(StatusCode::CREATED, &outcome, json!({"object": outcome.object, "id": outcome.id, "record": record})))
}

pub(crate) async fn update(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut patch = object_body(body)?;
    let explicit = patch.remove("expectedVersion");
    let expected_version = expected_version(&headers, explicit.as_ref())?;
    let outcome = execute(&system, &caller, &headers, Command::Update { object, id, patch, expected_version }).await?;
    let record = written_record(&system, &caller, &outcome);
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
    let outcome = execute(&system, &caller, &headers, Command::Delete { object, id, expected_version }).await?;
    Ok(write_response(StatusCode::OK, &outcome, json!({"object": outcome.object, "id": outcome.id, "success": true, "deleted": true})))
}
