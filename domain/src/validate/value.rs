//! Value rules per field type: what a write may put in one field.

use serde_json::Value as JsonValue;

use super::formats::{is_color, is_email, is_phone, is_time, is_url};
use crate::error::{ErrorCode, FieldError};
use crate::metadata::{FieldDef, FieldType};
use crate::time::{parse_date, Timestamp};
use crate::value::Value;

/// Checks one written value and returns it normalised (datetimes in UTC
/// RFC 3339, option labels mapped to values). `null` passes here; whether the
/// field may be empty is the record's business ([`super::check_rules`] and `decide`).
pub fn check_value(field: &FieldDef, json: &JsonValue) -> Result<Value, FieldError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    if has_nul(json) {
        return Err(err(field, ErrorCode::InvalidFormat, format!("{} contains a NUL character (\\u0000), which cannot be stored", field.name)));
    }
    if field.field_type.is_read_only() {
        return Err(err(field, ErrorCode::InvalidField, format!("{} is read-only ({})", field.name, field.field_type.as_str())));
    }
    if field.is_list() && field.field_type != FieldType::Vector {
        let items = json.as_array().ok_or_else(|| wrong_type(field, "an array", json))?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let value = check_single(field, item)?;
            if matches!(field.field_type, FieldType::Multiselect | FieldType::Checkboxes | FieldType::Select) && out.contains(&value) {
                return Err(err(field, ErrorCode::InvalidFormat, format!("{}: value {} is listed twice", field.name, item)));
            }
            out.push(value);
        }
        return Ok(Value::List(out));
    }
    check_single(field, json)
}

/// Whether a NUL character is anywhere in the value (keys of nested objects
/// too). No text column or `jsonb` value of PostgreSQL can hold one, so every
/// store refuses it alike.
pub fn has_nul(json: &JsonValue) -> bool {
    match json {
        JsonValue::String(s) => s.contains('\0'),
        JsonValue::Array(items) => items.iter().any(has_nul),
        JsonValue::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn err(field: &FieldDef, code: ErrorCode, message: String) -> FieldError {
    FieldError::new(&field.name, code, message)
}

fn wrong_type(field: &FieldDef, expected: &str, json: &JsonValue) -> FieldError {
    let got = match json {
        JsonValue::Null => "null",
        JsonValue::Bool(_) => "a boolean",
        JsonValue::Number(_) => "a number",
        JsonValue::String(_) => "a string",
        JsonValue::Array(_) => "an array",
        JsonValue::Object(_) => "an object",
    };
    err(field, ErrorCode::InvalidFormat, format!("{} must be {expected} ({}), got {got}", field.name, field.field_type.as_str()))
}

fn text<'a>(field: &FieldDef, json: &'a JsonValue) -> Result<&'a str, FieldError> {
    json.as_str().ok_or_else(|| wrong_type(field, "a string", json))
}

fn check_length(field: &FieldDef, s: &str) -> Result<(), FieldError> {
    let len = s.chars().count() as u64;
    if let Some(max) = field.max_length {
        if len > max {
            return Err(err(field, ErrorCode::ValueTooLong, format!("{} is {len} characters; at most {max} allowed", field.name)));
        }
    }
    if let Some(min) = field.min_length {
        if len < min {
            return Err(err(field, ErrorCode::ValueTooShort, format!("{} is {len} characters; at least {min} required", field.name)));
        }
    }
    Ok(())
}

fn check_number(field: &FieldDef, json: &JsonValue) -> Result<Value, FieldError> {
    let n = json.as_f64().ok_or_else(|| wrong_type(field, "a number", json))?;
    let (default_min, default_max) = match field.field_type {
        FieldType::Rating => (Some(0.0), Some(field.max_rating.unwrap_or(5.0))),
        FieldType::Progress => (Some(0.0), Some(100.0)),
        _ => (None, None),
    };
    let min = field.min.or(default_min);
    let max = field.max.or(default_max);
    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
        let range = format!("{}..{}", min.map_or("".into(), |m| m.to_string()), max.map_or("".into(), |m| m.to_string()));
        return Err(err(field, ErrorCode::ValueOutOfRange, format!("{} = {n} is outside {range}", field.name)));
    }
    if field.field_type == FieldType::Rating {
        let steps = if field.allow_half { n * 2.0 } else { n };
        if steps.fract() != 0.0 {
            let what = if field.allow_half { "whole or half" } else { "whole" };
            return Err(err(field, ErrorCode::InvalidFormat, format!("{} must be a {what} number, got {n}", field.name)));
        }
    }
    if let (FieldType::Slider, Some(step)) = (field.field_type, field.step) {
        let base = min.unwrap_or(0.0);
        let k = (n - base) / step;
        if step > 0.0 && (k - k.round()).abs() > 1e-9 {
            return Err(err(field, ErrorCode::InvalidFormat, format!("{} must be a multiple of {step} from {base}", field.name)));
        }
    }
    if let Some(scale) = field.decimal_places() {
        let scaled = n * 10f64.powi(scale as i32);
        if (scaled - scaled.round()).abs() > 1e-6 * scaled.abs().max(1.0) {
            return Err(err(field, ErrorCode::InvalidFormat, format!("{} allows at most {scale} decimal places, got {n}", field.name)));
        }
    }
    if let Some(precision) = field.precision {
        let integer_digits = if n.abs() < 1.0 { 0 } else { (n.abs().log10().floor() as u32) + 1 };
        let allowed = precision.saturating_sub(field.scale.unwrap_or(0));
        if integer_digits > allowed {
            return Err(err(field, ErrorCode::ValueOutOfRange, format!("{} = {n} has more than {allowed} integer digits", field.name)));
        }
    }
    Ok(Value::from_json(json))
}

fn check_option(field: &FieldDef, json: &JsonValue) -> Result<Value, FieldError> {
    let given = text(field, json)?;
    if let Some(option) = field.options.iter().find(|o| o.value == given) {
        return Ok(Value::Text(option.value.clone()));
    }
    // A kindness to users: an option's label, case-insensitively, stands for its value.
    if let Some(option) = field.options.iter().find(|o| o.label.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(given))) {
        return Ok(Value::Text(option.value.clone()));
    }
    let allowed: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
    Err(err(field, ErrorCode::InvalidFormat, format!("{}: '{given}' is not one of {}", field.name, allowed.join(", "))))
}

fn check_object(field: &FieldDef, json: &JsonValue, allowed: &[&str]) -> Result<(), FieldError> {
    let map = json.as_object().ok_or_else(|| wrong_type(field, "an object", json))?;
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(field, ErrorCode::InvalidFormat, format!("{}: unknown key '{unknown}' (allowed: {})", field.name, allowed.join(", "))));
    }
    Ok(())
}

fn check_single(field: &FieldDef, json: &JsonValue) -> Result<Value, FieldError> {
    use FieldType::*;
    match field.field_type {
        Text | Textarea | Password | Markdown | Html | Richtext | Code | Signature | Qrcode => {
            let s = text(field, json)?;
            check_length(field, s)?;
            Ok(Value::Text(s.to_string()))
        }
        Email | Url | Phone | Color => {
            let s = text(field, json)?;
            check_length(field, s)?;
            let ok = match field.field_type {
                Email => is_email(s),
                Url => is_url(s),
                Phone => is_phone(s),
                _ => is_color(s, field.color_format.as_deref()),
            };
            if !ok {
                return Err(err(field, ErrorCode::InvalidFormat, format!("{}: '{s}' is not a valid {}", field.name, field.field_type.as_str())));
            }
            Ok(Value::Text(s.to_string()))
        }
        Number | Currency | Percent | Rating | Slider | Progress => check_number(field, json),
        Date => {
            let s = text(field, json)?;
            // A full ISO datetime is accepted too and stored as its UTC date.
            if parse_date(s).is_none() && s.len() > 10 {
                if let Some(t) = Timestamp::parse(s) {
                    return Ok(Value::Text(t.to_date_string()));
                }
            }
            match parse_date(s) {
                Some(_) => Ok(Value::Text(s.to_string())),
                None => Err(err(field, ErrorCode::InvalidFormat, format!("{}: '{s}' is not a date (YYYY-MM-DD)", field.name))),
            }
        }
        Datetime => {
            let s = text(field, json)?;
            match Timestamp::parse(s) {
                Some(t) => Ok(Value::Text(t.to_rfc3339())),
                None => Err(err(field, ErrorCode::InvalidFormat, format!("{}: '{s}' is not an ISO-8601 datetime", field.name))),
            }
        }
        Time => {
            let s = text(field, json)?;
            if is_time(s) {
                Ok(Value::Text(s.to_string()))
            } else {
                Err(err(field, ErrorCode::InvalidFormat, format!("{}: '{s}' is not a time (HH:mm[:ss])", field.name)))
            }
        }
        Boolean | Toggle => json.as_bool().map(Value::Bool).ok_or_else(|| wrong_type(field, "a boolean", json)),
        Select | Radio | Multiselect | Checkboxes => check_option(field, json),
        Lookup | MasterDetail | Tree => {
            let id = text(field, json)?;
            if id.is_empty() {
                return Err(err(field, ErrorCode::InvalidReference, format!("{}: an empty id is not a reference", field.name)));
            }
            Ok(Value::Text(id.to_string()))
        }
        Image | Avatar | Video | Audio => Ok(Value::Text(text(field, json)?.to_string())),
        File => match json {
            JsonValue::String(s) => Ok(Value::Text(s.clone())),
            JsonValue::Object(map) if map.get("url").or(map.get("id")).is_some_and(JsonValue::is_string) => Ok(Value::from_json(json)),
            _ => Err(wrong_type(field, "a file id, URL, or an object with 'url' or 'id'", json)),
        },
        Location => {
            check_object(field, json, &["latitude", "longitude", "altitude", "accuracy"])?;
            let coordinate = |key: &str, limit: f64| -> Result<(), FieldError> {
                match json.get(key).and_then(JsonValue::as_f64) {
                    Some(v) if v.abs() <= limit => Ok(()),
                    Some(v) => Err(err(field, ErrorCode::ValueOutOfRange, format!("{}.{key} = {v} is outside -{limit}..{limit}", field.name))),
                    None => Err(err(field, ErrorCode::InvalidFormat, format!("{}.{key} is required and must be a number", field.name))),
                }
            };
            coordinate("latitude", 90.0)?;
            coordinate("longitude", 180.0)?;
            for key in ["altitude", "accuracy"] {
                if json.get(key).is_some_and(|v| !v.is_number()) {
                    return Err(err(field, ErrorCode::InvalidFormat, format!("{}.{key} must be a number", field.name)));
                }
            }
            Ok(Value::from_json(json))
        }
        Address => {
            let keys = ["street", "city", "state", "postalCode", "country", "countryCode", "formatted"];
            check_object(field, json, &keys)?;
            if let Some((key, _)) = json.as_object().into_iter().flatten().find(|(_, v)| !v.is_string() && !v.is_null()) {
                return Err(err(field, ErrorCode::InvalidFormat, format!("{}.{key} must be a string", field.name)));
            }
            Ok(Value::from_json(json))
        }
        Json => Ok(Value::from_json(json)),
        Tags => {
            let s = text(field, json)?;
            if s.trim().is_empty() {
                return Err(err(field, ErrorCode::InvalidFormat, format!("{}: tags must not be empty", field.name)));
            }
            Ok(Value::Text(s.to_string()))
        }
        Vector => {
            let items = json.as_array().ok_or_else(|| wrong_type(field, "an array of numbers", json))?;
            let dimensions = field.vector_dimensions().unwrap_or(items.len());
            if items.len() != dimensions {
                return Err(err(field, ErrorCode::InvalidFormat, format!("{} needs {dimensions} dimensions, got {}", field.name, items.len())));
            }
            if items.iter().any(|v| !v.is_number()) {
                return Err(wrong_type(field, "an array of numbers", json));
            }
            Ok(Value::from_json(json))
        }
        Formula | Summary | Autonumber => unreachable!("read-only types are refused above"),
    }
}
