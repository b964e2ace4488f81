//! Metadata routes: types, items, one item (strong ETag, 304), and PUT.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use commands::service::Command;
use domain::metadata::{MetadataCommand, ObjectSpec};
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use super::data::{idempotency_key, kind};
use super::support::{ok, position_headers, read_barrier, wait_for};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryPairs};
use crate::service::{writes, Caller};
use domain::security::SystemPermission;

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

/// An object's definition as a caller may see it: fields it may not read are not described.
fn described(caller: &Caller, catalog: &domain::metadata::Catalog, object: &domain::metadata::ObjectDef) -> Option<Json> {
    let grant = caller.access().grant(catalog, object);
    if !grant.permission.can_read() && !grant.permission.create {
        return None;
    }
    let mut raw = object.raw.clone();
    let hidden: Vec<&String> = grant.hidden.iter().filter(|f| !grant.passwords.contains(*f)).collect();
    match raw.get_mut("fields") {
        Some(Json::Object(fields)) => hidden.iter().for_each(|f| {
            fields.remove(f.as_str());
        }),
        Some(Json::Array(fields)) => fields.retain(|f| !hidden.iter().any(|h| f.get("name").and_then(Json::as_str) == Some(h.as_str()))),
        _ => {}
    }
    Some(raw)
}

pub(crate) async fn items(
    State(system): State<Arc<System>>,
    Path(kind): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    check_kind(&kind)?;
    read_barrier(&system, &headers, params.take("minPosition")).await?;
    let catalog = system.reader.catalog();
    let items: Vec<Json> = catalog.objects().filter_map(|o| described(&caller, &catalog, o)).collect();
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
    read_barrier(&system, &headers, params.take("minPosition")).await?;
    let catalog = system.reader.catalog();
    // An object the caller may not use is not found (its existence is not told).
    let definition = described(&caller, &catalog, catalog.require(&name)?).ok_or_else(|| ApiError::from(domain::DomainError::ObjectNotFound(name.clone())))?;
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
    caller.require(SystemPermission::ManageMetadata)?;
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
    let namespace = system.commands.catalog().namespace_of(&name).map(str::to_string);
    let command = Command::Metadata(MetadataCommand::PutObjects { objects: vec![ObjectSpec { definition: Json::Object(definition), namespace }] });
    let outcome = system.commands.execute(command, writes::meta(&system, &caller, None, idempotency_key(&headers)?)?).await?;
    wait_for(&system, Some(outcome.position)).await?;
    let changed = !outcome.events.is_empty();
    let message = if changed { format!("object '{name}' saved") } else { format!("object '{name}' unchanged") };
    Ok((
        position_headers(outcome.position),
        JsonResponse(json!({"success": true, "message": message, "data": {"name": name, "changed": changed, "position": outcome.position}})),
    )
        .into_response())
}

fn kind_of(json: &Json) -> &'static str {
    kind(json)
}
