//! A query body (`POST /data/{o}/query`, QueryAST or engine options) to [`Query`].

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::ast::{AggFunction, Aggregation, Query, Search};
use super::filter::parse_filter;
use super::sort::parse_sort;
use crate::error::DomainError;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidQuery(message.into())
}

/// The slots of a query and the spellings each accepts (QueryAST, engine options, OData).
pub(crate) const SLOTS: &[(&str, &[&str])] = &[
    ("where", &["where", "filter", "filters", "$filter"]),
    ("fields", &["fields", "select", "$select"]),
    ("orderBy", &["orderBy", "sort", "$orderby"]),
    ("offset", &["offset", "skip", "$skip"]),
    ("limit", &["limit", "top", "$top"]),
    ("expand", &["expand", "populate", "$expand"]),
    ("count", &["count", "$count"]),
    ("search", &["search", "$search"]),
    ("searchFields", &["searchFields", "$searchFields"]),
    ("groupBy", &["groupBy"]),
    ("aggregations", &["aggregations"]),
    ("having", &["having"]),
    ("distinct", &["distinct"]),
    ("cursor", &["cursor"]),
    ("object", &["object"]),
];

/// The slot a key belongs to, if any.
pub(crate) fn slot_of(key: &str) -> Option<&'static str> {
    SLOTS.iter().find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(key))).map(|(slot, _)| *slot)
}

/// Parses a query body for `object`. Unknown keys and two spellings of one slot are errors.
pub fn parse_query(object: &str, body: &Json) -> Result<Query, DomainError> {
    let map = match body {
        Json::Object(map) => map,
        Json::Null => return Ok(Query::new(object)),
        other => return Err(invalid(format!("a query must be a JSON object, got {other}"))),
    };
    let mut slots: BTreeMap<&str, (&str, &Json)> = BTreeMap::new();
    for (key, value) in map {
        let slot = slot_of(key).ok_or_else(|| invalid(format!("unknown query key '{key}'")))?;
        if let Some((first, _)) = slots.insert(slot, (key, value)) {
            return Err(invalid(format!("'{first}' and '{key}' both set {slot}")));
        }
    }
    let mut query = Query::new(object);
    if let Some((_, Json::String(named))) = slots.get("object") {
        if named != object {
            return Err(invalid(format!("query names object '{named}' but is sent to '{object}'")));
        }
    }
    for (slot, (key, value)) in &slots {
        apply_slot(&mut query, slot, key, value)?;
    }
    Ok(query)
}

/// Sets one slot from its JSON value.
pub(crate) fn apply_slot(query: &mut Query, slot: &str, key: &str, value: &Json) -> Result<(), DomainError> {
    match slot {
        "where" => query.filter = Some(parse_filter(value)?),
        "having" => query.having = Some(parse_filter(value)?),
        "fields" => query.fields = Some(string_list(value, key)?),
        "orderBy" => query.order_by = parse_sort(value)?,
        "offset" => query.offset = count_of(value, key)?,
        "limit" => query.limit = Some(count_of(value, key)?),
        "expand" => query.expand = parse_expand(value)?,
        "count" => query.count = bool_of(value, key)?,
        "distinct" => query.distinct = bool_of(value, key)?,
        "groupBy" => query.group_by = string_list(value, key)?,
        "aggregations" => query.aggregations = parse_aggregations(value)?,
        "search" => query.search = parse_search(value)?,
        "searchFields" => {
            let fields = string_list(value, key)?;
            query
                .search
                .get_or_insert_with(|| Search {
                    query: String::new(),
                    fields: vec![],
                    fuzzy: false,
                    match_all: false,
                    boost: BTreeMap::new(),
                    min_score: None,
                    highlight: false,
                })
                .fields = fields;
        }
        "cursor" | "object" => {}
        _ => return Err(invalid(format!("unknown query key '{key}'"))),
    }
    Ok(())
}

fn count_of(value: &Json, key: &str) -> Result<u64, DomainError> {
    match value {
        Json::Number(n) => n.as_u64().ok_or_else(|| invalid(format!("'{key}' must be a whole number >= 0, got {n}"))),
        Json::String(s) => s.trim().parse::<u64>().map_err(|_| invalid(format!("'{key}' must be a whole number >= 0, got '{s}'"))),
        other => Err(invalid(format!("'{key}' must be a whole number >= 0, got {other}"))),
    }
}

fn bool_of(value: &Json, key: &str) -> Result<bool, DomainError> {
    match value {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s == "true" || s == "1" => Ok(true),
        Json::String(s) if s == "false" || s == "0" => Ok(false),
        other => Err(invalid(format!("'{key}' must be true or false, got {other}"))),
    }
}

fn string_list(value: &Json, key: &str) -> Result<Vec<String>, DomainError> {
    match value {
        Json::String(s) if s.trim_start().starts_with('[') => {
            let parsed: Json = serde_json::from_str(s).map_err(|e| invalid(format!("'{key}' is not valid JSON: {e}")))?;
            string_list(&parsed, key)
        }
        Json::String(s) => Ok(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.clone()),
                Json::Object(node) => {
                    node.get("field").and_then(Json::as_str).map(str::to_string).ok_or_else(|| invalid(format!("'{key}' item needs 'field'")))
                }
                other => Err(invalid(format!("'{key}' must list field names, got {other}"))),
            })
            .collect(),
        other => Err(invalid(format!("'{key}' must be a list of field names, got {other}"))),
    }
}

fn parse_expand(value: &Json) -> Result<BTreeMap<String, Query>, DomainError> {
    let mut out = BTreeMap::new();
    match value {
        Json::Object(map) => {
            for (relation, sub) in map {
                let sub_query = match sub {
                    Json::Bool(true) | Json::Null => Query::new(""),
                    Json::String(_) => Query::new(""),
                    Json::Object(inner) => {
                        let mut inner = inner.clone();
                        inner.remove("object");
                        parse_query("", &Json::Object(inner))?
                    }
                    other => return Err(invalid(format!("expand of '{relation}' must be an object or true, got {other}"))),
                };
                out.insert(relation.clone(), sub_query);
            }
        }
        other => {
            for relation in string_list(other, "expand")? {
                out.insert(relation, Query::new(""));
            }
        }
    }
    Ok(out)
}

fn agg_function(name: &str) -> Result<AggFunction, DomainError> {
    AggFunction::parse(name).ok_or_else(|| invalid(format!("unknown aggregation function '{}'", name.to_ascii_lowercase())))
}

fn parse_aggregations(value: &Json) -> Result<Vec<Aggregation>, DomainError> {
    let value = match value {
        Json::String(s) => serde_json::from_str(s).map_err(|e| invalid(format!("aggregations is not valid JSON: {e}")))?,
        other => other.clone(),
    };
    let items = value.as_array().ok_or_else(|| invalid("aggregations must be a list"))?;
    let mut out = Vec::new();
    for item in items {
        let map: &Map<String, Json> = item.as_object().ok_or_else(|| invalid(format!("an aggregation must be an object, got {item}")))?;
        let name = map.get("function").or(map.get("method")).and_then(Json::as_str).ok_or_else(|| invalid("an aggregation needs 'function'"))?;
        let function = agg_function(name)?;
        let field = map.get("field").and_then(Json::as_str).map(str::to_string);
        if field.is_none() && function != AggFunction::Count {
            return Err(invalid(format!("aggregation '{name}' needs 'field'")));
        }
        let alias = match map.get("alias").and_then(Json::as_str) {
            Some(alias) => alias.to_string(),
            None => format!("{}_{}", name.to_ascii_lowercase(), field.as_deref().unwrap_or("all")),
        };
        out.push(Aggregation {
            function,
            field,
            alias,
            distinct: map.get("distinct").and_then(Json::as_bool).unwrap_or(false),
            filter: map.get("filter").map(parse_filter).transpose()?,
        });
    }
    Ok(out)
}

fn parse_search(value: &Json) -> Result<Option<Search>, DomainError> {
    let empty = |query: String| Search { query, fields: vec![], fuzzy: false, match_all: false, boost: BTreeMap::new(), min_score: None, highlight: false };
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(empty(s.clone()))),
        Json::Object(map) => {
            let text = map.get("query").and_then(Json::as_str).ok_or_else(|| invalid("search needs 'query'"))?;
            let mut search = empty(text.to_string());
            if let Some(fields) = map.get("fields") {
                search.fields = string_list(fields, "search.fields")?;
            }
            search.fuzzy = map.get("fuzzy").and_then(Json::as_bool).unwrap_or(false);
            search.match_all = map.get("operator").and_then(Json::as_str).is_some_and(|o| o.eq_ignore_ascii_case("and"));
            search.highlight = map.get("highlight").and_then(Json::as_bool).unwrap_or(false);
            search.min_score = map.get("minScore").and_then(Json::as_f64);
            if let Some(boost) = map.get("boost").and_then(Json::as_object) {
                for (field, factor) in boost {
                    let factor = factor.as_f64().ok_or_else(|| invalid(format!("boost of '{field}' must be a number")))?;
                    search.boost.insert(field.clone(), factor);
                }
            }
            Ok(Some(search))
        }
        other => Err(invalid(format!("search must be a string or an object, got {other}"))),
    }
}
