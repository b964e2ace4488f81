//! Metadata routes: types, items, one item (strong ETag, 304), and PUT.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use super::data::idempotency_key;
use crate::app::System;
use crate::error::json_kind as kind;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryPairs};
use crate::service::{meta, Caller};
use crate::wire::{min_position, ok, position_headers};

fn check_kind(kind: &str) -> Result<(), ApiError> {
    match kind {
        "object" | "objects" => Ok(()),
        other => Err(ApiError::new(ErrorCode::EndpointNotFound, format!("unknown metadata type '{other}' (known: object)"))),
    }
}

/// A strong ETag: a hash of the definition's JSON text.
fn etag_of(definition: &Json) -> String {
    let hash = domain::hash::fnv64(definition.to_string().as_bytes());
    format!("\"{hash:016x}\"")
}

pub(crate) async fn types() -> JsonResponse<Json> {
    JsonResponse(ok(json!({"types": ["object"]})))
}

pub(crate) async fn items(
    State(system): State<Arc<System>>,
    Path(kind): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    check_kind(&kind)?;
    let items = meta::objects(&system, &caller, min_position(&headers, params.take("minPosition"))?).await?;
    Ok(JsonResponse(ok(json!({"type": "object", "items": items}))))
}

pub(crate) async fn item(
    State(system): State<Arc<System>>,
    Path((kind, name)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<Response, ApiError> {
    check_kind(&kind)?;
    let definition = meta::object(&system, &caller, &name, min_position(&headers, params.take("minPosition"))?).await?;
    let etag = etag_of(&definition);
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/").trim_matches('"') == etag.trim_matches('"') || tag.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    // The bare definition: what the client's getCached reads as-is, and getItem takes when there is no envelope.
    Ok((response_headers, JsonResponse(definition)).into_response())
}

pub(crate) async fn put_item(
    State(system): State<Arc<System>>,
    Path((kind, name)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    check_kind(&kind)?;
    let Json::Object(mut definition) = body else {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("an object definition is a JSON object, got {}", kind_of(&body))));
    };
    match definition.get("name") {
        None => {
            definition.insert("name".into(), Json::String(name.clone()));
        }
        Some(Json::String(given)) if *given == name => {}
        Some(other) => return Err(ApiError::new(ErrorCode::InvalidField, format!("the definition names {other} but the path names '{name}'"))),
    }
    let saved = meta::put_object(&system, &caller, &name, Json::Object(definition), idempotency_key(&headers)?).await?;
    let message = if saved.changed { format!("object '{name}' saved") } else { format!("object '{name}' unchanged") };
    Ok((
        position_headers(saved.position),
        JsonResponse(json!({"success": true, "message": message, "data": {"name": name, "changed": saved.changed, "position": saved.position}})),
    )
        .into_response())
}

fn kind_of(json: &Json) -> &'static str {
    kind(json)
}
