//! Full-text search (ISearchService): hits ranked by the search model, joined
//! with the query read model under the caller's viewer (so documents, filters,
//! facets and totals cover only what the caller may see), searching only the
//! fields the caller may read; and the QueryAST `search` clause of list and
//! `/query`, which narrows a query to the matches and orders them by relevance.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::value::{record_to_json, Record, Value};
use domain::{DomainError, ErrorCode};
use projections::search::{highlight, SearchRequest};
use projections::QueryOutput;
use serde_json::{json, Map, Value as Json};

use super::barrier::{barrier_on, read_barrier};
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// Most hits ranked per search; filters, facets and totals under a filter work on these.
pub const CANDIDATES: usize = 10_000;

/// A search as every surface asks it.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub text: String,
    /// Objects to search (empty: every object the caller may read).
    pub objects: Vec<String>,
    /// Fields to match (empty: every searchable field the caller may read).
    pub fields: Vec<String>,
    pub facets: Vec<String>,
    pub filter: Option<Filter>,
    pub boost: BTreeMap<String, f64>,
    pub highlight: bool,
    pub fuzzy: bool,
    /// Every term must match (`operator=and`).
    pub match_all: bool,
    pub min_score: Option<f64>,
    pub limit: usize,
    pub offset: usize,
    /// A position the client got from another node.
    pub min_position: Option<u64>,
}

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
    barrier_on(system, &system.search, None).await?;
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

/// `{hits: [{id, object, score, document, highlights?}], totalHits, processingTimeMs, hasMore, facets?}`.
pub async fn search(system: &System, caller: &Caller, search: Search) -> Result<Json, ApiError> {
    let started = Instant::now();
    read_barrier(system, search.min_position).await?;
    barrier_on(system, &system.search, search.min_position).await?;
    let Search { text, mut objects, fields, facets, filter, boost, highlight: highlighting, fuzzy, match_all, min_score, limit, offset, .. } = search;
    let limit = limit.min(1_000);
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
    if offset.saturating_add(limit) > CANDIDATES {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("search pages reach the best {CANDIDATES} hits: offset + limit is {}", offset.saturating_add(limit)),
        ));
    }
    if text.trim().is_empty() {
        return Err(ApiError::from(DomainError::InvalidQuery("search needs q (the text to look for)".into())));
    }
    if filter.is_some() && objects.len() != 1 {
        return Err(ApiError::new(ErrorCode::InvalidFilter, "a search filter needs exactly one object"));
    }
    let Some(fields) = visible_search_fields(system, caller, &objects, &fields)? else {
        return Ok(json!({"hits": [], "totalHits": 0, "processingTimeMs": 0.0, "hasMore": false}));
    };
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
