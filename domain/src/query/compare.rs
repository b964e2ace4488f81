//! The value tests of filter conditions, one meaning for every evaluator:
//! the in-process read model's matcher and the command service's checks of
//! row rules (`security::matches`). The PostgreSQL model compiles the same
//! meaning to SQL.

use std::cmp::Ordering;

use regex::Regex;

use super::ast::{Condition, Op, Operand};
use crate::error::DomainError;
use crate::value::Value;

/// A SQL `LIKE` pattern (`%`, `_`) as a case-insensitive regex.
pub fn like_to_regex(pattern: &str) -> String {
    let mut out = String::from("(?is)^");
    for c in pattern.chars() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    out
}

/// Memory one compiled pattern may take (the regex crate's default is 10 MiB;
/// a pattern that needs more is refused as too complex).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The compiled pattern of a `regex` or `like` condition.
pub fn pattern_of(condition: &Condition) -> Result<Option<Regex>, DomainError> {
    let pattern = match (&condition.op, &condition.value) {
        (Op::Regex, Operand::Value(Value::Text(p))) => Some(p.clone()),
        (Op::Like, Operand::Value(Value::Text(p))) => Some(like_to_regex(p)),
        _ => None,
    };
    pattern
        .map(|p| {
            regex::RegexBuilder::new(&p)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| DomainError::InvalidFilter(format!("field '{}': bad pattern: {e}", condition.field)))
        })
        .transpose()
}

/// `exists`: the field is present and not null, or (with `false`) not.
pub fn exists(present: bool, value: &Value, operand: &Value) -> bool {
    (present && !value.is_null()) == matches!(operand, Value::Bool(true))
}

fn text_lower(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.to_lowercase()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(value.to_json().to_string()),
        _ => None,
    }
}

fn equals(value: &Value, operand: &Value) -> bool {
    match value {
        // A list field equals a scalar when it contains it (multi-select, tags).
        Value::List(items) if !matches!(operand, Value::List(_)) => items.iter().any(|i| i.loose_eq(operand)),
        _ => value.loose_eq(operand),
    }
}

fn compare(value: &Value, operand: &Value, accept: impl Fn(Ordering) -> bool) -> bool {
    value.partial_compare(operand).is_some_and(accept)
}

pub fn test(op: Op, value: &Value, operand: &Value, pattern: Option<&Regex>) -> bool {
    match op {
        Op::Eq => equals(value, operand),
        Op::Ne => !equals(value, operand),
        Op::Gt => compare(value, operand, |o| o == Ordering::Greater),
        Op::Gte => compare(value, operand, |o| o != Ordering::Less),
        Op::Lt => compare(value, operand, |o| o == Ordering::Less),
        Op::Lte => compare(value, operand, |o| o != Ordering::Greater),
        Op::In => match operand {
            Value::List(options) => options.iter().any(|o| equals(value, o)),
            _ => false,
        },
        Op::Nin => match operand {
            Value::List(options) => !options.iter().any(|o| equals(value, o)),
            _ => true,
        },
        Op::Between => match operand {
            Value::List(bounds) if bounds.len() == 2 => {
                compare(value, &bounds[0], |o| o != Ordering::Less) && compare(value, &bounds[1], |o| o != Ordering::Greater)
            }
            _ => false,
        },
        Op::Contains | Op::NotContains => {
            let found = match (value, operand) {
                (Value::List(items), _) => items.iter().any(|i| i.loose_eq(operand)),
                _ => match (text_lower(value), text_lower(operand)) {
                    (Some(haystack), Some(needle)) => haystack.contains(&needle),
                    _ => false,
                },
            };
            found == (op == Op::Contains)
        }
        Op::StartsWith => {
            matches!((text_lower(value), text_lower(operand)), (Some(h), Some(n)) if h.starts_with(&n))
        }
        Op::EndsWith => {
            matches!((text_lower(value), text_lower(operand)), (Some(h), Some(n)) if h.ends_with(&n))
        }
        Op::Like | Op::Regex => match (value, pattern) {
            (Value::Text(s), Some(re)) => re.is_match(s),
            _ => false,
        },
        Op::Null => value.is_null() == matches!(operand, Value::Bool(true)),
        // Needs to know whether the field is present at all: see [`exists`].
        Op::Exists => !value.is_null() == matches!(operand, Value::Bool(true)),
    }
}
