//! `GET /api/v1/search`: the query parameters parsed into a
//! [`crate::service::search::Search`], answered by the service.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::query::parse_filter;
use domain::ErrorCode;
use serde_json::Value as Json;

use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::service::search::{self, Search};
use crate::service::Caller;
use crate::wire::{min_position, ok};

fn flag(value: Option<String>, name: &str) -> Result<bool, ApiError> {
    match value.as_deref() {
        None => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ApiError::new(ErrorCode::InvalidQuery, format!("{name} must be true or false, got '{other}'"))),
    }
}

fn whole(value: Option<String>, name: &str, default: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| ApiError::new(ErrorCode::InvalidQuery, format!("{name} must be a whole number, got '{text}'"))),
    }
}

fn list(value: Option<String>) -> Vec<String> {
    value.map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// The search the query parameters ask for.
fn parse(headers: &HeaderMap, mut params: QueryPairs) -> Result<Search, ApiError> {
    let min_position = min_position(headers, params.take("minPosition"))?;
    let text = params.take("q").or_else(|| params.take("query")).unwrap_or_default();
    let objects = list(params.take("object").or_else(|| params.take("objects")));
    let fields = list(params.take("fields"));
    let facets = list(params.take("facets"));
    let filter = match params.take("filter").or_else(|| params.take("where")) {
        Some(raw) => {
            let json: Json = serde_json::from_str(&raw).map_err(|e| ApiError::new(ErrorCode::InvalidFilter, format!("filter must be JSON: {e}")))?;
            Some(parse_filter(&json)?)
        }
        None => None,
    };
    let boost: BTreeMap<String, f64> = match params.take("boost") {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("boost must be a JSON object of numbers: {e}")))?,
        None => BTreeMap::new(),
    };
    let highlight = flag(params.take("highlight"), "highlight")?;
    let fuzzy = match params.take("fuzzy") {
        None => true,
        other => flag(other, "fuzzy")?,
    };
    let match_all = match params.take("operator").as_deref() {
        None | Some("or") => false,
        Some("and") => true,
        Some(other) => return Err(ApiError::new(ErrorCode::InvalidQuery, format!("operator must be 'and' or 'or', got '{other}'"))),
    };
    let min_score = match params.take("minScore") {
        Some(raw) => Some(raw.parse::<f64>().map_err(|_| ApiError::new(ErrorCode::InvalidQuery, format!("minScore must be a number, got '{raw}'")))?),
        None => None,
    };
    let limit = whole(params.take("limit").or_else(|| params.take("top")), "limit", 20)?;
    let offset = whole(params.take("offset").or_else(|| params.take("skip")), "offset", 0)?;
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unknown search parameter '{key}'")));
    }
    Ok(Search { text, objects, fields, facets, filter, boost, highlight, fuzzy, match_all, min_score, limit, offset, min_position })
}

/// `GET /api/v1/search?q=&object=&fields=&filter=&facets=&highlight=&fuzzy=&operator=and|or&boost={..}&minScore=&limit=&offset=`
/// -> `{hits: [{id, object, score, document, highlights?}], totalHits, processingTimeMs, facets?}`.
pub(crate) async fn search(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap, params: QueryPairs) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(search::search(&system, &caller, parse(&headers, params)?).await?)))
}
