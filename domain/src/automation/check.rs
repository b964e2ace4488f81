//! Checks every automation definition shares: the protocol's names and the
//! properties a definition may use (a typo such as `critera` is refused, not ignored).

use serde_json::{Map, Value as Json};

use crate::error::DomainError;

/// The definition as an object, with only `allowed` properties.
pub(super) fn properties<'a>(what: &str, json: &'a Json, allowed: &[&str]) -> Result<&'a Map<String, Json>, DomainError> {
    let map = json.as_object().ok_or_else(|| invalid(format!("{what}: a definition must be a JSON object")))?;
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!("{what}: unknown property '{unknown}' (allowed: {})", allowed.join(", "))));
    }
    Ok(map)
}

/// A snake_case name (`^[a-z][a-z0-9_]*$`, at least two characters).
pub(super) fn name<'a>(kind: &str, map: &'a Map<String, Json>) -> Result<&'a str, DomainError> {
    let name = map.get("name").and_then(Json::as_str).ok_or_else(|| invalid(format!("a {kind} needs a 'name'")))?;
    let valid = name.len() >= 2
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(invalid(format!("{kind} '{name}': a name is lowercase snake_case (a-z, 0-9, _), 2 to 64 characters")));
    }
    Ok(name)
}

pub(super) fn text<'a>(what: &str, map: &'a Map<String, Json>, key: &str) -> Result<Option<&'a str>, DomainError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{what}: '{key}' must be a string"))),
    }
}

pub(super) fn boolean(what: &str, map: &Map<String, Json>, key: &str, default: bool) -> Result<bool, DomainError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("{what}: '{key}' must be true or false"))),
    }
}

/// A whole number within `min..=max`.
pub(super) fn number(what: &str, map: &Map<String, Json>, key: &str, default: u64, min: u64, max: u64) -> Result<u64, DomainError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(value) => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(invalid(format!("{what}: '{key}' must be a whole number from {min} to {max}"))),
        },
    }
}

pub(super) fn invalid(message: String) -> DomainError {
    DomainError::InvalidDefinition(message)
}
