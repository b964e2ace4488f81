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
use crate::service::{automation, meta, Caller};
use crate::wire::{min_position, ok, position_headers};

/// Objects, or a kind of automation definition (`workflow`, `flow`, `webhook`, `job`, `approval`).
enum Kind {
    Object,
    Automation,
}

fn check_kind(kind: &str) -> Result<Kind, ApiError> {
    match kind {
        "object" | "objects" => Ok(Kind::Object),
        other if domain::automation::list_key(other).is_some() => Ok(Kind::Automation),
        other => {
            Err(ApiError::new(ErrorCode::EndpointNotFound, format!("unknown metadata type '{other}' (known: object, workflow, flow, webhook, job, approval)")))
        }
    }
}

/// A strong ETag: a hash of the definition's JSON text.
fn etag_of(definition: &Json) -> String {
    let hash = domain::hash::fnv64(definition.to_string().as_bytes());
    format!("\"{hash:016x}\"")
}

pub(crate) async fn types() -> JsonResponse<Json> {
    JsonResponse(ok(json!({"types": ["object", "workflow", "flow", "webhook", "job", "approval"]})))
}

pub(crate) async fn items(
    State(system): State<Arc<System>>,
    Path(kind): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    if let Kind::Automation = check_kind(&kind)? {
        return Ok(JsonResponse(ok(json!({"type": kind, "items": automation::definitions(&system, &caller, &kind)?}))));
    }
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
    let definition = match check_kind(&kind)? {
        Kind::Automation => automation::definitions(&system, &caller, &kind)?
            .into_iter()
            .find(|d| d.get("name").and_then(Json::as_str) == Some(name.as_str()))
            .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, format!("no {kind} named '{name}'")))?,
        Kind::Object => meta::object(&system, &caller, &name, min_position(&headers, params.take("minPosition"))?).await?,
    };
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
    let is_automation = matches!(check_kind(&kind)?, Kind::Automation);
    let (body, migration) = if is_automation { (body, None) } else { meta::with_migration(&name, body)? };
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
    if is_automation {
        let position = automation::put_definition(&system, &caller, &kind, &name, Some(Json::Object(definition))).await?;
        let data = json!({"name": name, "type": kind, "position": position});
        return Ok(
            (position_headers(position), JsonResponse(json!({"success": true, "message": format!("{kind} '{name}' saved"), "data": data}))).into_response()
        );
    }
    let saved = meta::put_object(&system, &caller, &name, Json::Object(definition), migration, idempotency_key(&headers)?).await?;
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

/// `DELETE /api/v1/meta/{kind}/{name}` for automation definitions: the app
/// file's definition of that name stops running too (objects are not deleted here).
pub(crate) async fn delete_item(State(system): State<Arc<System>>, Path((kind, name)): Path<(String, String)>, caller: Caller) -> Result<Response, ApiError> {
    if let Kind::Object = check_kind(&kind)? {
        return Err(ApiError::new(ErrorCode::NotImplemented, "objects are not removed through this route"));
    }
    let position = automation::put_definition(&system, &caller, &kind, &name, None).await?;
    Ok((
        position_headers(position),
        JsonResponse(json!({"success": true, "message": format!("{kind} '{name}' removed"), "data": {"name": name, "position": position}})),
    )
        .into_response())
}
