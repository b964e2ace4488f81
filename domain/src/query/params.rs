//! URL query parameters of `GET /data/{o}` to [`Query`] (query.md §G, 17.x rules).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::ast::{Condition, Filter, Op, Operand, Query};
use super::parse::{apply_slot, slot_of};
use crate::error::DomainError;
use crate::metadata::{FieldType, ObjectDef, SYSTEM_FIELDS};
use crate::value::Value;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidQuery(message.into())
}

/// Parses URL parameters. Known slots take their aliases (`filter`/`filters`/
/// `where`, `top`/`limit`, ...); JSON-valued slots are parsed as JSON. Leftover
/// parameters that name fields are equality filters, ANDed with `filter`;
/// any other leftover parameter is an error, and so is a second spelling of a slot.
pub fn parse_url_params(object: &ObjectDef, params: &[(String, String)]) -> Result<Query, DomainError> {
    let mut query = Query::new(&object.name);
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut equalities = Vec::new();
    for (key, raw) in params {
        if let Some(slot) = slot_of(key) {
            if let Some(first) = seen.insert(slot, key) {
                return Err(invalid(format!("'{first}' and '{key}' both set {slot}")));
            }
            let value = match slot {
                "where" | "having" | "aggregations" => {
                    serde_json::from_str::<Json>(raw).map_err(|e| DomainError::InvalidFilter(format!("'{key}' is not valid JSON: {e}")))?
                }
                "search" if raw.trim_start().starts_with('{') => {
                    serde_json::from_str::<Json>(raw).map_err(|e| invalid(format!("'{key}' is not valid JSON: {e}")))?
                }
                "expand" if raw.trim_start().starts_with('{') => {
                    serde_json::from_str::<Json>(raw).map_err(|e| invalid(format!("'{key}' is not valid JSON: {e}")))?
                }
                _ => Json::String(raw.clone()),
            };
            apply_slot(&mut query, slot, key, &value)?;
            continue;
        }
        if key.starts_with('$') {
            return Err(invalid(format!("unsupported query parameter '{key}'")));
        }
        let name = if key == "_id" { "id" } else { key.as_str() };
        let value = if SYSTEM_FIELDS.contains(&name) {
            Value::Text(raw.clone())
        } else {
            let field = object.field(name).ok_or_else(|| invalid(format!("unknown query parameter '{key}': not a field of '{}'", object.name)))?;
            typed_param(field.field_type, raw)
        };
        equalities.push(Filter::Cond(Condition { field: name.to_string(), op: Op::Eq, value: Operand::Value(value) }));
    }
    if !equalities.is_empty() {
        let mut all = equalities;
        if let Some(existing) = query.filter.take() {
            all.insert(0, existing);
        }
        query.filter = Some(Filter::and(all));
    }
    Ok(query)
}

/// A URL value typed by the field it filters.
fn typed_param(field_type: FieldType, raw: &str) -> Value {
    if field_type.is_numeric() {
        if let Ok(n) = raw.parse::<f64>() {
            return if n.fract() == 0.0 && n.abs() < 9e15 { Value::Int(n as i64) } else { Value::Float(n) };
        }
    }
    if matches!(field_type, FieldType::Boolean | FieldType::Toggle) {
        match raw {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    Value::Text(raw.to_string())
}
