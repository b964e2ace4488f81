//! The audit trail: `GET /api/v1/audit` and a record's history at
//! `GET /api/v1/data/{object}/{id}/history`, newest first, with filters and paging.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::{ErrorCode, Timestamp};
use projections::audit_model::AuditQuery;
use serde_json::{json, Value as Json};

use super::support::{barrier_on, ok};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::service::Caller;
use domain::security::SystemPermission;

/// Largest page of audit entries.
const MAX_LIMIT: usize = 1000;

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message)
}

/// A time bound: an ISO-8601 datetime or date.
fn time_of(key: &str, text: &str) -> Result<i64, ApiError> {
    Timestamp::parse(text).map(Timestamp::micros).ok_or_else(|| bad(format!("{key} must be an ISO-8601 datetime, got '{text}'")))
}

pub(crate) fn parse(params: Vec<(String, String)>, fixed: bool) -> Result<AuditQuery, ApiError> {
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
            "minPosition" => {}
            other => return Err(bad(format!("unknown audit parameter '{other}'"))),
        }
    }
    if query.record_id.is_some() && query.object.is_none() {
        return Err(bad("recordId needs object".into()));
    }
    Ok(query)
}

/// Takes out of an entry the changes of fields the caller may not read (and
/// the token and key hashes of sessions and API keys).
fn mask_entry(caller: &Caller, catalog: &domain::metadata::Catalog, entry: &mut Json) {
    let object = entry["target"]["type"].as_str().unwrap_or_default().to_string();
    let hidden: std::collections::BTreeSet<String> = if domain::security::INTERNAL_OBJECTS.contains(&object.as_str()) {
        domain::security::SECRET_FIELDS.iter().map(|f| f.to_string()).collect()
    } else {
        match catalog.get(&object) {
            Some(definition) => caller.access().grant(catalog, definition).hidden,
            None => Default::default(),
        }
    };
    if let Some(Json::Array(changes)) = entry.get_mut("changes") {
        changes.retain(|c| !hidden.contains(c["field"].as_str().unwrap_or_default()));
    }
}

/// `{entries, records, total, hasMore}` (REST and GraphQL), as the caller may see them.
pub(crate) fn page(system: &System, caller: &Caller, query: &AuditQuery) -> Json {
    let catalog = system.reader.catalog();
    let model = system.audit_model.read().expect("audit lock");
    let (entries, total) = model.query(query);
    let entries: Vec<Json> = entries
        .iter()
        .map(|e| {
            let mut entry = e.to_json();
            mask_entry(caller, &catalog, &mut entry);
            entry
        })
        .collect();
    let has_more = query.offset + entries.len() < total;
    json!({"entries": entries, "records": entries, "total": total, "hasMore": has_more})
}

fn answer(system: &System, caller: &Caller, query: &AuditQuery) -> JsonResponse<Json> {
    JsonResponse(ok(page(system, caller, query)))
}

/// The whole audit trail needs `view_audit_trail`.
pub(crate) async fn audit(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    caller.require(SystemPermission::ViewAuditTrail)?;
    barrier_on(&system, &system.audit, &headers, params.take("minPosition")).await?;
    let query = parse(params.0, false)?;
    Ok(answer(&system, &caller, &query))
}

/// A record's history: for a record the caller sees now (a deleted or hidden one needs `view_audit_trail`).
pub(crate) async fn history(
    State(system): State<Arc<System>>,
    Path((object, id)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    mut params: QueryPairs,
) -> Result<JsonResponse<Json>, ApiError> {
    let min_position = params.take("minPosition");
    super::support::read_barrier(&system, &headers, min_position.clone()).await?;
    barrier_on(&system, &system.audit, &headers, min_position).await?;
    let definition = system.reader.catalog().require(&object)?.clone();
    if !caller.access().has(SystemPermission::ViewAuditTrail) && system.reader.get(&caller.viewer, &definition.name, &id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object}")));
    }
    let mut query = parse(params.0, true)?;
    query.object = Some(definition.name.clone());
    query.record_id = Some(id);
    Ok(answer(&system, &caller, &query))
}
