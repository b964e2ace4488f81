//! Sort parsing: `[{field, order}]`, `[["f","desc"]]`, `{f: "asc" | 1 | -1}`,
//! `"a,-b"`, `"a asc, b desc"`, and a JSON array sent as a string.

use serde_json::Value as Json;

use super::ast::{SortNode, SortOrder};
use crate::error::DomainError;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidSort(message.into())
}

fn order_of(json: &Json, field: &str) -> Result<SortOrder, DomainError> {
    match json {
        Json::Null => Ok(SortOrder::Asc),
        Json::Number(n) if n.as_i64() == Some(1) => Ok(SortOrder::Asc),
        Json::Number(n) if n.as_i64() == Some(-1) => Ok(SortOrder::Desc),
        Json::String(s) if s.eq_ignore_ascii_case("asc") || s.eq_ignore_ascii_case("ascending") => Ok(SortOrder::Asc),
        Json::String(s) if s.eq_ignore_ascii_case("desc") || s.eq_ignore_ascii_case("descending") => Ok(SortOrder::Desc),
        other => Err(invalid(format!("sort order of '{field}' must be asc or desc (or 1/-1), got {other}"))),
    }
}

fn parse_text(text: &str) -> Result<Vec<SortNode>, DomainError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let json: Json = serde_json::from_str(trimmed).map_err(|e| invalid(format!("sort is not valid JSON: {e}")))?;
        return parse_sort(&json);
    }
    let mut out = Vec::new();
    for part in trimmed.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let name = words.next().unwrap_or_default();
        let (field, mut order) = match name.strip_prefix('-') {
            Some(rest) => (rest, SortOrder::Desc),
            None => (name.strip_prefix('+').unwrap_or(name), SortOrder::Asc),
        };
        if let Some(word) = words.next() {
            order = order_of(&Json::String(word.to_string()), field)?;
        }
        if words.next().is_some() || field.is_empty() {
            return Err(invalid(format!("cannot read sort '{part}'")));
        }
        out.push(SortNode { field: field.to_string(), order });
    }
    Ok(out)
}

/// Parses every accepted sort form.
pub fn parse_sort(json: &Json) -> Result<Vec<SortNode>, DomainError> {
    match json {
        Json::Null => Ok(vec![]),
        Json::String(text) => parse_text(text),
        Json::Object(map) => {
            if let Some(Json::String(field)) = map.get("field") {
                let order = map.get("order").or(map.get("direction")).unwrap_or(&Json::Null);
                return Ok(vec![SortNode { field: field.clone(), order: order_of(order, field)? }]);
            }
            map.iter().map(|(field, order)| Ok(SortNode { field: field.clone(), order: order_of(order, field)? })).collect()
        }
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Json::Array(tuple) => match tuple.as_slice() {
                        [Json::String(field)] => out.push(SortNode { field: field.clone(), order: SortOrder::Asc }),
                        [Json::String(field), order] => out.push(SortNode { field: field.clone(), order: order_of(order, field)? }),
                        _ => return Err(invalid(format!("a sort tuple is [field, order], got {item}"))),
                    },
                    Json::String(_) | Json::Object(_) => out.extend(parse_sort(item)?),
                    other => return Err(invalid(format!("cannot read sort item {other}"))),
                }
            }
            Ok(out)
        }
        other => Err(invalid(format!("cannot read sort {other}"))),
    }
}
