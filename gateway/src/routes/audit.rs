//! The audit trail: `GET /api/v1/audit` and a record's history at
//! `GET /api/v1/data/{object}/{id}/history`, newest first, with filters and
//! paging; parsed here, answered by [`crate::service::audit`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::{ErrorCode, Timestamp};
use serde_json::Value as Json;

use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::service::audit::{self, AuditQuery, MAX_LIMIT};
use crate::service::Caller;
use crate::wire::{min_position, ok};

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message)
}

/// A time bound: an ISO-8601 datetime or date.
fn time_of(key: &str, text: &str) -> Result<i64, ApiError> {
    Timestamp::parse(text).map(Timestamp::micros).ok_or_else(|| bad(format!("{key} must be an ISO-8601 datetime, got '{text}'")))
}

fn parse(params: Vec<(String, String)>, fixed: bool) -> Result<AuditQuery, ApiError> {
    let mut query = AuditQuery { limit: 50, ..AuditQuery::default() };
    for (key, value) in params {
        match key.as_str() {
            "object" if !fixed => query.object = Some(value),
            "recordId" if !fixed => query.record_id = Some(value),
            "actor" => query.actor = Some(value),
            "eventType" => query.event_type = Some(value),
            "from" => query.from = Some(time_of("from", &value)?),
            "to" => query.to = Some(time_of("to", &value)?),
            "limit" | "top" => {
                query.limit = value.parse().map_err(|_| bad(format!("limit must be a whole number, got '{value}'")))?;
                if query.limit > MAX_LIMIT {
                    return Err(bad(format!("limit {} is above the maximum of {MAX_LIMIT}", query.limit)));
                }
            }
            "offset" | "skip" => query.offset = value.parse().map_err(|_| bad(format!("offset must be a whole number, got '{value}'")))?,
            other => return Err(bad(format!("unknown audit parameter '{other}'"))),
        }
    }
    if query.record_id.is_some() && query.object.is_none() {
        return Err(bad("recordId needs object".into()));
    }
    Ok(query)
}

pub(crate) async fn audit(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    let min = min_position(&headers, params.take("minPosition"))?;
    let query = parse(params.0, false)?;
    Ok(JsonResponse(ok(audit::trail(&system, &caller, &query, min).await?)))
}

pub(crate) async fn history(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    let min = min_position(&headers, params.take("minPosition"))?;
    let query = parse(params.0, true)?;
    Ok(JsonResponse(ok(audit::history(&system, &caller, &object, &id, query, min).await?)))
}
