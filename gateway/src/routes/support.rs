//! Shared pieces of handlers: envelopes, waiting for positions, versions.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use domain::ErrorCode;
use projections::ProjectionHandle;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::error::ApiError;

pub(crate) const LOG_POSITION: HeaderName = HeaderName::from_static("x-log-position");
pub(crate) const MIN_POSITION: HeaderName = HeaderName::from_static("x-min-position");

/// `{success: true, data}`.
pub(crate) fn ok(data: Json) -> Json {
    json!({"success": true, "data": data})
}

fn parse_position(text: &str, source: &str) -> Result<u64, ApiError> {
    text.trim().parse::<u64>().map_err(|_| ApiError::new(ErrorCode::InvalidQuery, format!("{source} must be a log position (a whole number), got '{text}'")))
}

/// The minimum position a read asks for: `X-Min-Position` or `?minPosition=`.
pub(crate) fn min_position(headers: &HeaderMap, param: Option<String>) -> Result<Option<u64>, ApiError> {
    if let Some(text) = param {
        return parse_position(&text, "minPosition").map(Some);
    }
    match headers.get(MIN_POSITION) {
        Some(value) => parse_position(value.to_str().unwrap_or(""), "X-Min-Position").map(Some),
        None => Ok(None),
    }
}

/// The read barrier: a read sees every write acknowledged on this node before
/// it started (the store's head then), and at least the position the client
/// names. Writes answer as soon as they are durable; reads do the waiting,
/// which is none when the read model keeps up.
pub(crate) async fn read_barrier(system: &System, headers: &HeaderMap, param: Option<String>) -> Result<(), ApiError> {
    barrier_on(system, &system.query, headers, param).await
}

/// The read barrier on a given projection.
pub(crate) async fn barrier_on(system: &System, projection: &ProjectionHandle, headers: &HeaderMap, param: Option<String>) -> Result<(), ApiError> {
    let head = *system.commands.store().head().borrow();
    let position = head.max(min_position(headers, param)?.unwrap_or(0));
    if projection.wait_for(position, system.read_wait).await {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Timeout, format!("the {} read model has not reached position {position} yet; retry", projection.name())))
    }
}

/// Waits (bounded) until the query model has applied `position`.
pub(crate) async fn wait_for(system: &System, position: Option<u64>) -> Result<(), ApiError> {
    let Some(position) = position else {
        return Ok(());
    };
    if system.query.wait_for(position, system.read_wait).await {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Timeout, format!("the read model has not reached position {position} yet; retry")))
    }
}

pub(crate) fn position_headers(position: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(LOG_POSITION, HeaderValue::from(position));
    headers
}

/// An expected version from `If-Match` (`"3"`, `W/"3"`, `3`) or an explicit value.
pub(crate) fn expected_version(headers: &HeaderMap, explicit: Option<&Json>) -> Result<Option<u64>, ApiError> {
    if let Some(value) = explicit {
        return match value {
            Json::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
            Json::String(s) => parse_position(s, "expectedVersion").map(Some),
            other => Err(ApiError::new(ErrorCode::InvalidField, format!("expectedVersion must be a whole number, got {other}"))),
        };
    }
    match headers.get(axum::http::header::IF_MATCH) {
        Some(value) => {
            let text = value.to_str().unwrap_or("").trim().trim_start_matches("W/").trim_matches('"').to_string();
            parse_position(&text, "If-Match").map(Some)
        }
        None => Ok(None),
    }
}
