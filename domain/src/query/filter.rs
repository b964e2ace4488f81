//! Filter parsing: every accepted form to one [`Filter`] tree.
//!
//! Forms: object/Mongo (`{"a": 1, "b": {"$gt": 2}, "$or": [...]}`), nested
//! relation objects (`{"account": {"industry": "tech"}}`), bare tuples
//! (`["a", "=", 1]`), prefix arrays (`["or", c1, c2]`), infix arrays
//! (`[c1, "or", c2, "and", c3]`, AND binding tighter than OR, adjacent
//! conditions ANDed), lists of conditions (AND), and AST nodes
//! (`{"type": "comparison", ...}`, `{"type": "logical", ...}`).

use serde_json::{Map, Value as Json};

use super::ast::{Condition, Filter, Op, Operand};
use super::operators::resolve;
use crate::error::DomainError;
use crate::value::Value;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidFilter(message.into())
}

/// Parses any accepted filter form. An empty object or array means "no condition" (`And([])`).
pub fn parse_filter(json: &Json) -> Result<Filter, DomainError> {
    match json {
        Json::Object(map) => parse_object(map, ""),
        Json::Array(items) => parse_array(items),
        Json::Null => Ok(Filter::And(vec![])),
        other => Err(invalid(format!("a filter must be an object or an array, got {other}"))),
    }
}

fn parse_object(map: &Map<String, Json>, prefix: &str) -> Result<Filter, DomainError> {
    if prefix.is_empty() {
        if let Some(Json::String(node_type)) = map.get("type") {
            if node_type == "comparison" || node_type == "logical" {
                return parse_ast_node(map);
            }
        }
    }
    let mut parts = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "$and" | "$or" => {
                let items = value.as_array().ok_or_else(|| invalid(format!("{key} takes a list of filters")))?;
                let list = items.iter().map(parse_filter).collect::<Result<Vec<_>, _>>()?;
                parts.push(if key == "$and" { Filter::and(list) } else { Filter::Or(list) });
            }
            "$not" => parts.push(Filter::Not(Box::new(parse_filter(value)?))),
            other if other.starts_with('$') => return Err(invalid(format!("unknown logical operator '{other}'"))),
            field => {
                let path = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
                parts.push(parse_field_condition(&path, value)?);
            }
        }
    }
    Ok(Filter::and(parts))
}

/// `field: value` (equality), `field: {$op: v, ...}`, or `field: {sub: ...}` (relation path).
fn parse_field_condition(path: &str, value: &Json) -> Result<Filter, DomainError> {
    let Json::Object(ops) = value else {
        return Ok(Filter::Cond(Condition { field: path.to_string(), op: Op::Eq, value: Operand::Value(Value::from_json(value)) }));
    };
    if ops.contains_key("$field") && ops.len() == 1 {
        return Ok(Filter::Cond(Condition { field: path.to_string(), op: Op::Eq, value: operand(value)? }));
    }
    let has_ops = ops.keys().any(|k| k.starts_with('$'));
    if !has_ops {
        return parse_object(ops, path);
    }
    let mut parts = Vec::new();
    for (name, operand_json) in ops {
        if name == "$options" {
            continue;
        }
        if !name.starts_with('$') {
            return Err(invalid(format!("field '{path}': cannot mix operators and sub-fields ('{name}')")));
        }
        if name == "$not" {
            parts.push(Filter::Not(Box::new(parse_field_condition(path, operand_json)?)));
            continue;
        }
        let (op, implied) = resolve(name).ok_or_else(|| invalid(format!("unknown operator '{name}' on field '{path}'")))?;
        let mut cond = condition(path, op, implied, operand_json)?;
        if op == Op::Regex {
            if let Some(Json::String(options)) = ops.get("$options") {
                if let Operand::Value(Value::Text(pattern)) = &cond.value {
                    cond.value = Operand::Value(Value::Text(format!("(?{options}){pattern}")));
                }
            }
            check_regex(&cond)?;
        }
        parts.push(Filter::Cond(cond));
    }
    Ok(Filter::and(parts))
}

fn check_regex(cond: &Condition) -> Result<(), DomainError> {
    if let Operand::Value(Value::Text(pattern)) = &cond.value {
        regex::Regex::new(pattern).map_err(|e| invalid(format!("field '{}': bad regex: {e}", cond.field)))?;
    }
    Ok(())
}

fn operand(json: &Json) -> Result<Operand, DomainError> {
    if let Json::Object(map) = json {
        if let Some(field) = map.get("$field") {
            return field.as_str().map(|f| Operand::Field(f.to_string())).ok_or_else(|| invalid("$field takes a field name"));
        }
    }
    Ok(Operand::Value(Value::from_json(json)))
}

/// Builds one condition, checking the operand's shape for the operator.
fn condition(field: &str, op: Op, implied: Option<bool>, value: &Json) -> Result<Condition, DomainError> {
    let value = match implied {
        Some(flag) => Operand::Value(Value::Bool(flag)),
        None => operand(value)?,
    };
    if let Operand::Value(v) = &value {
        let shape_ok = match op {
            Op::In | Op::Nin => matches!(v, Value::List(_)),
            Op::Between => matches!(v, Value::List(items) if items.len() == 2),
            Op::Null | Op::Exists => matches!(v, Value::Bool(_)),
            Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith | Op::Like | Op::Regex => matches!(v, Value::Text(_)),
            _ => true,
        };
        if !shape_ok {
            let expected = match op {
                Op::In | Op::Nin => "a list",
                Op::Between => "a list of two values [min, max]",
                Op::Null | Op::Exists => "true or false",
                _ => "a string",
            };
            return Err(invalid(format!("field '{field}': operator {op:?} takes {expected}, got {}", v.to_json())));
        }
    }
    // `like` without a `%` or `_` wildcard is a case-insensitive substring match (what the client means by it).
    let op = match (&op, &value) {
        (Op::Like, Operand::Value(Value::Text(pattern))) if !pattern.contains(['%', '_']) => Op::Contains,
        _ => op,
    };
    let cond = Condition { field: field.to_string(), op, value };
    if op == Op::Regex {
        check_regex(&cond)?;
    }
    Ok(cond)
}

fn is_connector(item: &Json) -> Option<&'static str> {
    match item.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("and") => Some("and"),
        Some("or") => Some("or"),
        _ => None,
    }
}

fn parse_array(items: &[Json]) -> Result<Filter, DomainError> {
    if items.is_empty() {
        return Ok(Filter::And(vec![]));
    }
    // A bare tuple: [field, op, value] (or [field, op] for is_null-style operators).
    // A leading "and"/"or" is a connector unless what follows is an operator.
    if let Some(Json::String(field)) = items.first() {
        let op_follows = items.len() <= 3 && items.get(1).and_then(Json::as_str).and_then(resolve).is_some();
        if is_connector(&items[0]).is_none() || op_follows {
            let Some(Json::String(op_name)) = items.get(1) else {
                return Err(invalid(format!("a condition is [field, operator, value]; '{field}' has no operator")));
            };
            if items.len() > 3 {
                return Err(invalid(format!("a condition is [field, operator, value]; got {} elements", items.len())));
            }
            let (op, implied) = resolve(op_name).ok_or_else(|| invalid(format!("unknown operator '{op_name}' on field '{field}'")))?;
            if implied.is_none() && items.len() < 3 && !matches!(op, Op::Null | Op::Exists) {
                return Err(invalid(format!("condition on '{field}' has no value")));
            }
            return Ok(Filter::Cond(condition(field, op, implied, items.get(2).unwrap_or(&Json::Null))?));
        }
    }
    // Prefix: ["and" | "or", c1, c2, ...] with no further connectors.
    if let Some(connector) = is_connector(&items[0]) {
        if items[1..].iter().all(|i| is_connector(i).is_none()) {
            let list = items[1..].iter().map(parse_filter).collect::<Result<Vec<_>, _>>()?;
            return Ok(if connector == "and" { Filter::and(list) } else { Filter::Or(list) });
        }
    }
    // Infix (or a plain list, which is AND): split on "or"; within a group, AND.
    let mut groups: Vec<Vec<Filter>> = vec![Vec::new()];
    let mut expect_operand = true;
    for item in items {
        match is_connector(item) {
            Some(connector) => {
                if expect_operand && !(groups.len() == 1 && groups[0].is_empty()) {
                    return Err(invalid(format!("'{connector}' must stand between two conditions")));
                }
                if connector == "or" {
                    groups.push(Vec::new());
                }
                expect_operand = true;
            }
            None => {
                match item {
                    Json::Array(_) | Json::Object(_) => {}
                    other => return Err(invalid(format!("unexpected {other} in a filter list"))),
                }
                groups.last_mut().expect("one group").push(parse_filter(item)?);
                expect_operand = false;
            }
        }
    }
    if expect_operand {
        return Err(invalid("a filter list cannot end with a connector"));
    }
    let mut ors: Vec<Filter> = groups.into_iter().map(Filter::and).collect();
    Ok(if ors.len() == 1 { ors.pop().expect("one group") } else { Filter::Or(ors) })
}

fn parse_ast_node(map: &Map<String, Json>) -> Result<Filter, DomainError> {
    let text = |key: &str| map.get(key).and_then(Json::as_str).ok_or_else(|| invalid(format!("AST node needs '{key}'")));
    match text("type")? {
        "comparison" => {
            let field = text("field")?;
            let op_name = text("operator")?;
            let (op, implied) = resolve(op_name).ok_or_else(|| invalid(format!("unknown operator '{op_name}' on field '{field}'")))?;
            Ok(Filter::Cond(condition(field, op, implied, map.get("value").unwrap_or(&Json::Null))?))
        }
        _ => {
            let list = map.get("conditions").and_then(Json::as_array).ok_or_else(|| invalid("logical node needs 'conditions'"))?;
            let list = list.iter().map(parse_filter).collect::<Result<Vec<_>, _>>()?;
            match text("operator")?.to_ascii_lowercase().as_str() {
                "and" => Ok(Filter::and(list)),
                "or" => Ok(Filter::Or(list)),
                "not" => Ok(Filter::Not(Box::new(Filter::and(list)))),
                other => Err(invalid(format!("unknown logical operator '{other}'"))),
            }
        }
    }
}
