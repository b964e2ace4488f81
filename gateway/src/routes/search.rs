//! Full-text search: `GET /api/v1/search` (the ISearchService result shape),
//! and the QueryAST `search` clause of list and `/query`, which narrows the
//! query to the matching records and orders them by relevance.
//!
//! The search model finds and ranks; the query read model supplies the
//! documents, applies filters (with the query semantics) and counts facets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::query::{parse_filter, Condition, Filter, Op, Operand, Query};
use domain::value::{record_to_json, Record, Value};
use domain::{DomainError, ErrorCode};
use projections::search::{highlight, SearchRequest};
use projections::QueryOutput;
use serde_json::{json, Map, Value as Json};

use super::support::{barrier_on, ok, read_barrier};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::service::Caller;

/// Most hits ranked per search; filters, facets and totals under a filter work on these.
pub const CANDIDATES: usize = 10_000;

fn ids_filter(ids: Vec<String>) -> Filter {
    Filter::Cond(Condition { field: "id".into(), op: Op::In, value: Operand::Value(Value::List(ids.into_iter().map(Value::Text).collect())) })
}

fn run(system: &System, request: &SearchRequest) -> Result<projections::search::SearchHits, ApiError> {
    {
        let model = system.search_model.read().expect("search model lock");
        if !model.is_dirty() {
            return Ok(model.search(request)?);
        }
    }
    // Applied but not yet committed: commit first, so the read sees every applied write.
    let mut model = system.search_model.write().expect("search model lock");
    model.make_visible();
    Ok(model.search(request)?)
}

/// A list query with a `search` clause: the matching records only, by
/// relevance unless the query sorts (or aggregates) otherwise.
pub(crate) async fn query_with_search(system: &System, caller: &Caller, mut query: Query) -> Result<QueryOutput, ApiError> {
    let viewer = &caller.viewer;
    let Some(search) = query.search.take() else {
        return Ok(system.reader.execute(viewer, query).await?);
    };
    barrier_on(system, &system.search, &HeaderMap::new(), None).await?;
    let definition = system.reader.catalog().require(&query.object)?.clone();
    let Some(fields) = visible_search_fields(system, caller, std::slice::from_ref(&definition.name), &search.fields)? else {
        query.filter = Some(ids_filter(Vec::new()));
        return Ok(system.reader.execute(viewer, query).await?);
    };
    let request = SearchRequest {
        query: search.query.clone(),
        objects: vec![definition.name.clone()],
        fields,
        boost: search.boost.clone(),
        fuzzy: search.fuzzy,
        match_all: search.match_all,
        limit: CANDIDATES,
        min_score: search.min_score,
    };
    let hits = run(system, &request)?;
    let scores: HashMap<String, f32> = hits.hits.iter().map(|h| (h.id.clone(), h.score)).collect();
    let ids: Vec<String> = hits.hits.into_iter().map(|h| h.id).collect();
    query.filter = Some(match query.filter.take() {
        Some(filter) => Filter::and(vec![filter, ids_filter(ids.clone())]),
        None => ids_filter(ids.clone()),
    });
    if !query.order_by.is_empty() || !query.group_by.is_empty() || !query.aggregations.is_empty() {
        return Ok(system.reader.execute(viewer, query).await?);
    }
    // By relevance: every match, ordered by score, then paged here.
    let (limit, offset) = (query.limit.unwrap_or(projections::query_model::DEFAULT_LIMIT) as usize, query.offset as usize);
    query.limit = Some(ids.len().max(1) as u64);
    query.offset = 0;
    let mut output = system.reader.execute(viewer, query).await?;
    let score = |r: &Record| r.get("id").and_then(Value::as_str).and_then(|id| scores.get(id)).copied().unwrap_or(0.0);
    output.records.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let total = output.records.len();
    output.records = output.records.into_iter().skip(offset).take(limit).collect();
    output.has_more = offset + output.records.len() < total;
    output.total = output.total.map(|_| total as u64);
    Ok(output)
}

/// The fields a caller's search may match: those it names (each must be
/// readable: no oracle), or, when it names none, every searchable field it may
/// read (an empty list when it may read them all, the index's default);
/// `None` when it may read no searchable field at all.
fn visible_search_fields(system: &System, caller: &Caller, objects: &[String], requested: &[String]) -> Result<Option<Vec<String>>, ApiError> {
    let catalog = system.reader.catalog();
    let model = system.search_model.read().expect("search model lock");
    let mut visible = Vec::new();
    let mut any_hidden = false;
    for object in objects {
        let Some(definition) = catalog.get(object) else { continue };
        let grant = caller.access().grant(&catalog, definition);
        for field in requested {
            if !grant.can_read_field(field) {
                return Err(ApiError::new(ErrorCode::FieldNotAccessible, format!("field '{field}' of {object} is not accessible")));
            }
        }
        for field in model.fields_of(&definition.name) {
            if grant.can_read_field(&field) {
                visible.push(field);
            } else {
                any_hidden = true;
            }
        }
    }
    if !requested.is_empty() {
        return Ok(Some(requested.to_vec()));
    }
    if !any_hidden {
        return Ok(Some(Vec::new()));
    }
    visible.sort();
    visible.dedup();
    Ok((!visible.is_empty()).then_some(visible))
}

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

fn facet_key(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        other => Some(other.to_json().to_string()),
    }
}

/// `GET /api/v1/search?q=&object=&fields=&filter=&facets=&highlight=&fuzzy=&operator=and|or&boost={..}&minScore=&limit=&offset=`
/// -> `{hits: [{id, object, score, document, highlights?}], totalHits, processingTimeMs, facets?}`.
pub(crate) async fn search(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap, params: QueryPairs) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(search_result(&system, &caller, &headers, params).await?)))
}

/// The search result for the REST parameters (also what GraphQL's `search` answers).
pub(crate) async fn search_result(system: &System, caller: &Caller, headers: &HeaderMap, mut params: QueryPairs) -> Result<Json, ApiError> {
    let started = Instant::now();
    let min_position = params.take("minPosition");
    read_barrier(system, headers, min_position.clone()).await?;
    barrier_on(system, &system.search, headers, min_position).await?;
    let text = params.take("q").or_else(|| params.take("query")).unwrap_or_default();
    let mut objects = list(params.take("object").or_else(|| params.take("objects")));
    let fields = list(params.take("fields"));
    let facets = list(params.take("facets"));
    // Only objects the caller may read are searched; naming another is refused.
    let catalog = system.reader.catalog();
    let governed = !caller.access().is_system() && !caller.access().is_open();
    if objects.is_empty() {
        objects = catalog.objects().filter(|o| caller.access().grant(&catalog, o).permission.can_read()).map(|o| o.name.clone()).collect();
        if objects.is_empty() {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "you may not read any object"));
        }
    }
    for object in &objects {
        let definition = catalog.require(object)?;
        let grant = caller.access().grant(&catalog, definition);
        if !grant.permission.can_read() {
            return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {object}")));
        }
        for facet in &facets {
            if !grant.can_read_field(facet) {
                return Err(ApiError::new(ErrorCode::FieldNotAccessible, format!("field '{facet}' of {object} is not accessible")));
            }
        }
    }
    let Some(fields) = visible_search_fields(system, caller, &objects, &fields)? else {
        return Ok(json!({"hits": [], "totalHits": 0, "processingTimeMs": 0.0, "hasMore": false}));
    };
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
    let highlighting = flag(params.take("highlight"), "highlight")?;
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
    let limit = whole(params.take("limit").or_else(|| params.take("top")), "limit", 20)?.min(1_000);
    let offset = whole(params.take("offset").or_else(|| params.take("skip")), "offset", 0)?;
    if offset.saturating_add(limit) > CANDIDATES {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("search pages reach the best {CANDIDATES} hits: offset + limit is {}", offset.saturating_add(limit)),
        ));
    }
    if let Some((key, _)) = params.0.first() {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unknown search parameter '{key}'")));
    }
    if text.trim().is_empty() {
        return Err(ApiError::from(DomainError::InvalidQuery("search needs q (the text to look for)".into())));
    }
    if filter.is_some() && objects.len() != 1 {
        return Err(ApiError::new(ErrorCode::InvalidFilter, "a search filter needs exactly one object"));
    }
    // Unfiltered, the index ranks and counts; filtered or faceted, the candidates are joined with the read model.
    // Row rules: hits are joined with the read model under the caller's rules, so totals count only visible ones.
    let narrowing = filter.is_some() || !facets.is_empty() || governed;
    let request =
        SearchRequest { query: text.clone(), objects, fields, boost, fuzzy, match_all, limit: if narrowing { CANDIDATES } else { offset + limit }, min_score };
    let hits = run(system, &request)?;
    let viewer = &caller.viewer;
    // Documents (and the filter) from the query model, one read per object.
    let mut by_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let wanted = if narrowing { hits.hits.len() } else { (offset + limit).min(hits.hits.len()) };
    for hit in &hits.hits[..wanted] {
        by_object.entry(hit.object.clone()).or_default().push(hit.id.clone());
    }
    let mut documents: HashMap<(String, String), Arc<Record>> = HashMap::new();
    for (object, ids) in by_object {
        let mut query = Query::new(&object);
        query.limit = Some(ids.len() as u64);
        query.filter = Some(match &filter {
            Some(f) => Filter::and(vec![f.clone(), ids_filter(ids)]),
            None => ids_filter(ids),
        });
        for record in system.reader.execute(viewer, query).await?.records {
            if let Some(id) = record.get("id").and_then(Value::as_str) {
                documents.insert((object.clone(), id.to_string()), record.clone());
            }
        }
    }
    let matched: Vec<(&projections::search::SearchHit, &Arc<Record>)> =
        hits.hits[..wanted].iter().filter_map(|h| documents.get(&(h.object.clone(), h.id.clone())).map(|d| (h, d))).collect();
    let total = if narrowing { matched.len() } else { hits.total };
    let mut facet_counts = Map::new();
    for field in &facets {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (_, document) in &matched {
            match document.get(field) {
                Some(Value::List(items)) => items.iter().filter_map(facet_key).for_each(|k| *counts.entry(k).or_default() += 1),
                Some(value) => {
                    if let Some(k) = facet_key(value) {
                        *counts.entry(k).or_default() += 1;
                    }
                }
                None => {}
            }
        }
        facet_counts.insert(field.clone(), json!(counts));
    }
    let model = system.search_model.read().expect("search model lock");
    let page: Vec<Json> = matched
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(hit, document)| {
            let mut entry = json!({"id": hit.id, "object": hit.object, "score": hit.score, "document": record_to_json(document)});
            if highlighting {
                let mut marks = Map::new();
                for field in model.fields_of(&hit.object) {
                    if let Some(Value::Text(text)) = document.get(&field) {
                        if let Some(marked) = highlight(text, &request.query, fuzzy) {
                            marks.insert(field, json!([marked]));
                        }
                    }
                }
                entry["highlights"] = Json::Object(marks);
            }
            entry
        })
        .collect();
    let mut result = json!({
        "hits": page,
        "totalHits": total,
        "processingTimeMs": started.elapsed().as_secs_f64() * 1000.0,
        "hasMore": offset + page.len() < total,
    });
    if !facets.is_empty() {
        result["facets"] = Json::Object(facet_counts);
    }
    Ok(result)
}
