//! A small JSON Schema checker for `json_schema` rules: type, enum, const,
//! required, properties, additionalProperties (false), items, min/max,
//! minLength/maxLength, pattern, minItems/maxItems. Unknown keywords are ignored.

use serde_json::Value as Json;

/// The first violation found, as a message with a JSON pointer.
pub fn first_violation(schema: &Json, value: &Json, path: &str) -> Option<String> {
    let here = if path.is_empty() { "/" } else { path };
    if let Some(expected) = schema.get("type") {
        let types: Vec<&str> = match expected {
            Json::String(t) => vec![t.as_str()],
            Json::Array(list) => list.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| matches_type(t, value)) {
            return Some(format!("{here}: expected {}", types.join(" or ")));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Json::as_array) {
        if !options.contains(value) {
            return Some(format!("{here}: not one of the allowed values"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Some(format!("{here}: must equal {constant}"));
        }
    }
    match value {
        Json::Object(map) => {
            for key in schema.get("required").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str) {
                if !map.contains_key(key) {
                    return Some(format!("{here}: missing property '{key}'"));
                }
            }
            let properties = schema.get("properties").and_then(Json::as_object);
            for (key, item) in map {
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => {
                        if let Some(v) = first_violation(sub, item, &format!("{path}/{key}")) {
                            return Some(v);
                        }
                    }
                    None if schema.get("additionalProperties") == Some(&Json::Bool(false)) => {
                        return Some(format!("{here}: property '{key}' is not allowed"));
                    }
                    None => {}
                }
            }
        }
        Json::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Json::as_u64) {
                if (items.len() as u64) < min {
                    return Some(format!("{here}: fewer than {min} items"));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Json::as_u64) {
                if (items.len() as u64) > max {
                    return Some(format!("{here}: more than {max} items"));
                }
            }
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = first_violation(sub, item, &format!("{path}/{i}")) {
                        return Some(v);
                    }
                }
            }
        }
        Json::String(s) => {
            let len = s.chars().count() as u64;
            if schema.get("minLength").and_then(Json::as_u64).is_some_and(|m| len < m) {
                return Some(format!("{here}: too short"));
            }
            if schema.get("maxLength").and_then(Json::as_u64).is_some_and(|m| len > m) {
                return Some(format!("{here}: too long"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Json::as_str) {
                if regex::Regex::new(pattern).map(|re| !re.is_match(s)).unwrap_or(true) {
                    return Some(format!("{here}: does not match {pattern}"));
                }
            }
        }
        Json::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if schema.get("minimum").and_then(Json::as_f64).is_some_and(|m| x < m) {
                return Some(format!("{here}: less than the minimum"));
            }
            if schema.get("maximum").and_then(Json::as_f64).is_some_and(|m| x > m) {
                return Some(format!("{here}: greater than the maximum"));
            }
        }
        _ => {}
    }
    None
}

fn matches_type(expected: &str, value: &Json) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}
